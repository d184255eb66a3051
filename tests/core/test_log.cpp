// core/log.h: which ranks print which levels, the run.log_all_ranks switch, and log lines
// above the live line (Note [Log lines above the live line]; the screen a user sees is
// checked in a pseudo-terminal by tests/e2e/terminal_test.cpp).
#include <gtest/gtest.h>

#include <string>

#include "core/log.h"

namespace loom {
namespace {

std::string printed(void (*say)(std::string_view, std::string_view)) {
  testing::internal::CaptureStderr();
  say("test", "hello");
  return testing::internal::GetCapturedStderr();
}

// Rank 1 of 2 prints warnings and errors only, unless every rank is asked to log; rank 0
// prints info either way.
TEST(Log, AllRanksSwitch) {
  log::set_rank(1, 2);
  EXPECT_EQ(printed(log::info), "");
  EXPECT_EQ(printed(log::warn), "[r1/2][test] warning: hello\n");
  log::set_all_ranks(true);
  EXPECT_EQ(printed(log::info), "[r1/2][test] hello\n");
  log::set_all_ranks(false);
  EXPECT_EQ(printed(log::info), "");
  log::set_rank(0, 2);
  EXPECT_EQ(printed(log::info), "[r0/2][test] hello\n");
  log::set_rank(0, 1);
}

// Every byte in order: a log line erases the live line, prints whole, and the live line is
// drawn again below it; ending the live line prints it as an ordinary line.
TEST(Log, LinesPrintAboveTheLiveLine) {
  log::set_rank(0, 1);
  testing::internal::CaptureStderr();
  log::set_live_line("[##--] step 1/2");
  log::info("test", "hello");
  log::set_live_line("[####] step 2/2");
  log::warn("test", "careful");
  log::end_live_line("[####] step 2/2 done");
  log::info("test", "after");
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "\r[##--] step 1/2\x1b[K"
            "\r\x1b[K[r0/1][test] hello\n[##--] step 1/2"
            "\r[####] step 2/2\x1b[K"
            "\r\x1b[K[r0/1][test] warning: careful\n[####] step 2/2"
            "\r[####] step 2/2 done\x1b[K\n"
            "[r0/1][test] after\n");
  testing::internal::CaptureStderr();
  log::set_live_line("bar");
  log::clear_live_line();
  log::info("test", "plain");
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "\rbar\x1b[K\r\x1b[K[r0/1][test] plain\n");
}

// Every line of a multi-line message carries the prefix (Note [Whole lines from every rank]
// in core/log.cpp): a reader of two ranks' stream can tell whose each line is. A trailing
// newline ends the message; an empty line inside it keeps its prefix.
TEST(Log, EveryLineOfAMessageHasThePrefix) {
  log::set_rank(1, 2);
  log::set_all_ranks(true);
  testing::internal::CaptureStderr();
  log::info("cfg", "a = 1\n\n[run]\nb = 2\n");
  log::warn("cfg", "two\nlines");
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "[r1/2][cfg] a = 1\n[r1/2][cfg] \n[r1/2][cfg] [run]\n[r1/2][cfg] b = 2\n"
            "[r1/2][cfg] warning: two\n[r1/2][cfg] lines\n");
  // More than PIPE_BUF bytes of lines: all of them arrive, whole and in order.
  std::string big, expected;
  for (int i = 0; i < 500; ++i) {
    big += (i ? "\n" : "") + std::string("line ") + std::to_string(i) + std::string(20, '.');
    expected += "[r1/2][cfg] line " + std::to_string(i) + std::string(20, '.') + "\n";
  }
  testing::internal::CaptureStderr();
  log::info("cfg", big);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), expected);
  log::set_all_ranks(false);
  log::set_rank(0, 1);
}

}  // namespace
}  // namespace loom
