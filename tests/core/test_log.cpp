// core/log.h: which ranks print which levels, and the run.log_all_ranks switch.
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

}  // namespace
}  // namespace loom
