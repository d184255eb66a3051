#pragma once
// Small measuring and formatting helpers every report uses: seconds since a time point,
// a number with fixed digits, this process's peak resident set.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace loom {

using SteadyClock = std::chrono::steady_clock;

inline double seconds_since(SteadyClock::time_point t0) {
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

// "3.14" for fixed(3.14159, 2).
inline std::string fixed(double value, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, value);
  return buf;
}

// Peak resident set of this process so far, in GiB (getrusage's ru_maxrss is in KiB).
inline double peak_rss_gb() {
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / (1024.0 * 1024.0);
}

}  // namespace loom
