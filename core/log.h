#pragma once
// One line per event, prefixed with rank and subsystem: "[r1/3][comm] message".
// Thread-safe. Rank 0 reports progress (info); other ranks print only warn and error
// unless set_all_ranks(true) (config run.log_all_ranks). Output goes to stderr so stdout
// stays for data.
#include <string_view>

namespace loom::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// Called once the communicator knows rank and size; before that the prefix is "[r?/?]".
void set_rank(int rank, int size);
void set_level(Level level);
Level level();
// true: every rank prints its debug and info lines too, not only rank 0 (run.log_all_ranks,
// applied by the Session at start-up). Off by default.
void set_all_ranks(bool all);

void debug(std::string_view subsystem, std::string_view message);
void info(std::string_view subsystem, std::string_view message);     // rank 0 only
void warn(std::string_view subsystem, std::string_view message);
void error(std::string_view subsystem, std::string_view message);
// Every rank, info level (for the rank-ordered start-up listing and per-rank reports).
void info_all(std::string_view subsystem, std::string_view message);

// "[r1/3]" for the current process, used in error messages printed by main().
std::string_view rank_prefix();

}  // namespace loom::log
