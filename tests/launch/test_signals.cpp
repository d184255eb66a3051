// Stop requests: a signal is recorded, not fatal; the first one wins; Ctrl-C twice kills.
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>

#include <gtest/gtest.h>

#include "launch/run/signals.h"

namespace loom {
namespace {

class SignalsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    install_stop_handlers();
    clear_stop_request();
  }
  void TearDown() override { clear_stop_request(); }
};

TEST_F(SignalsTest, NoRequestAtStart) { EXPECT_EQ(pending_stop_signal(), 0); }

TEST_F(SignalsTest, Sigusr1IsRecorded) {
  ASSERT_EQ(std::raise(SIGUSR1), 0);
  EXPECT_EQ(pending_stop_signal(), SIGUSR1);
  clear_stop_request();
  EXPECT_EQ(pending_stop_signal(), 0);
}

TEST_F(SignalsTest, SigtermIsRecorded) {
  ASSERT_EQ(std::raise(SIGTERM), 0);
  EXPECT_EQ(pending_stop_signal(), SIGTERM);
}

TEST_F(SignalsTest, FirstRequestWins) {
  ASSERT_EQ(std::raise(SIGTERM), 0);
  ASSERT_EQ(std::raise(SIGUSR1), 0);
  EXPECT_EQ(pending_stop_signal(), SIGTERM);
}

TEST_F(SignalsTest, OneSigintIsAStopRequestAndClearRearmsIt) {
  ASSERT_EQ(std::raise(SIGINT), 0);
  EXPECT_EQ(pending_stop_signal(), SIGINT);
  clear_stop_request();   // re-arms the one-shot SIGINT handler
  ASSERT_EQ(std::raise(SIGINT), 0);
  EXPECT_EQ(pending_stop_signal(), SIGINT);
  clear_stop_request();
}

// Ctrl-C twice kills: run in a child so the second SIGINT's default action ends only it.
TEST_F(SignalsTest, SecondSigintKills) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0) << std::strerror(errno);
  if (child == 0) {
    // Only async-signal-safe calls from here on (the parent may have threads).
    std::raise(SIGINT);
    if (pending_stop_signal() != SIGINT) ::_exit(3);
    std::raise(SIGINT);
    ::_exit(4);   // still alive: the second SIGINT did not kill
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status)
                                   << " (3: first SIGINT not recorded, 4: second did not kill)";
  EXPECT_EQ(WTERMSIG(status), SIGINT);
}

TEST(SignalNames, NamesTheStopSignals) {
  EXPECT_STREQ(stop_signal_name(SIGINT), "SIGINT");
  EXPECT_STREQ(stop_signal_name(SIGTERM), "SIGTERM");
  EXPECT_STREQ(stop_signal_name(SIGUSR1), "SIGUSR1");
  EXPECT_STREQ(stop_signal_name(SIGHUP), "SIGHUP");
  EXPECT_STREQ(stop_signal_name(SIGKILL), "SIGKILL");
  EXPECT_STREQ(stop_signal_name(SIGQUIT), "signal 3");
}

}  // namespace
}  // namespace loom
