#include "core/error.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/log.h"

namespace loom::detail {

void assert_fail(const char* expr, const char* file, int line, std::string_view msg) {
  std::string text = std::string(file) + ":" + std::to_string(line) + ": assertion failed: " + expr;
  if (!msg.empty()) text += " (" + std::string(msg) + ")";
  log::error("assert", text);
  std::fflush(stderr);
  std::abort();
}

void throw_library_error(std::string_view lib, const char* expr, const char* file, int line,
                         std::string_view detail) {
  throw LibraryError(std::string(lib) + " call failed: " + expr + " at " + file + ":" +
                     std::to_string(line) + ": " + std::string(detail));
}

}  // namespace loom::detail
