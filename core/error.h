#pragma once
// Two kinds of failure (STYLE.md rule 5):
//  - loom::Error and its subtypes: bad input or bad environment. The message says what
//    failed and where (file:line:byte, config key, dataset, rank and step) and what to do.
//    main() catches it, prints it with the rank prefix, aborts the job cleanly.
//  - LOOM_ASSERT: a broken invariant inside loom. Prints the expression and aborts.
#include <stdexcept>
#include <string>
#include <string_view>

namespace loom {

// Process exit statuses. Documented in README ("Exit status").
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;        // a loom::Error (bad input, I/O, ...)
inline constexpr int kExitUsage = 2;        // bad command line or config
inline constexpr int kExitWatchdog = 3;     // a collective missed its deadline
inline constexpr int kExitPeerLost = 4;     // another rank failed; this one was told to stop
// A clean stop on a signal exits with 128 + signal number (130 SIGINT, 138 SIGUSR1, 143 SIGTERM).

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
  // The exit status main() uses for this error.
  virtual int exit_code() const { return kExitError; }
};

// Config and command-line problems: unknown key, wrong type, out of range.
class ConfigError : public Error {
 public:
  using Error::Error;
  int exit_code() const override { return kExitUsage; }
};

// Files: missing, unreadable, damaged, full disk. The message names the path.
class IoError : public Error {
 public:
  using Error::Error;
};

// Input data that loom refuses (invalid UTF-8 under the strict policy, a bad checkpoint).
class DataError : public Error {
 public:
  using Error::Error;
};

// A failed collective or launcher mismatch. The message names the operation, step, rank.
class CommError : public Error {
 public:
  using Error::Error;
};

// A collective that did not finish within its deadline.
class TimeoutError : public CommError {
 public:
  using CommError::CommError;
  int exit_code() const override { return kExitWatchdog; }
};

// A foreign library (CUDA, cuBLAS, NCCL, MPI, HDF5) returned an error code.
class LibraryError : public Error {
 public:
  using Error::Error;
};

namespace detail {
[[noreturn]] void assert_fail(const char* expr, const char* file, int line, std::string_view msg);
[[noreturn]] void throw_library_error(std::string_view lib, const char* expr, const char* file,
                                      int line, std::string_view detail);
}  // namespace detail

}  // namespace loom

// LOOM_ASSERT(cond) or LOOM_ASSERT(cond, "message"): invariant; aborts with the expression.
#define LOOM_ASSERT(cond, ...)                                                         \
  do {                                                                                 \
    if (!(cond)) [[unlikely]]                                                          \
      ::loom::detail::assert_fail(#cond, __FILE__, __LINE__, std::string_view{__VA_ARGS__}); \
  } while (0)

// LOOM_CHECK(cond, ErrorType, message): input/environment check; throws ErrorType(message).
#define LOOM_CHECK(cond, ErrorType, msg)     \
  do {                                       \
    if (!(cond)) [[unlikely]]                \
      throw ErrorType(msg);                  \
  } while (0)
