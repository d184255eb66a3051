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

// Note [Log lines above the live line]
// A progress bar on a terminal is one line redrawn in place with '\r'. Written by itself it
// would share its line with the next log line ("...elapsed 0s[r0/1][glove] epoch 2/6"), so
// the log owns it: set_live_line() draws (or redraws) it, and while one is shown every log
// line first erases it ("\r\x1b[K"), prints itself with its '\n', and draws it again below,
// all in one write under the log's mutex. Log lines scroll up above a bar that stays at the
// bottom, whichever thread logs. This process's lines only: under mpirun the other ranks'
// warnings reach the terminal through mpirun and may still land beside rank 0's bar.
//
// Shows `text` (one line, no '\n') as the live line at the bottom of stderr.
void set_live_line(std::string_view text);
// Prints `text` as an ordinary line in place of the live line, which is gone afterwards.
void end_live_line(std::string_view text);
// Erases the live line (nothing is shown until the next set_live_line).
void clear_live_line();

}  // namespace loom::log
