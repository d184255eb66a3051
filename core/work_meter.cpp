#include "core/work_meter.h"

#include <atomic>

namespace loom::work_meter {
namespace {

std::atomic<int64_t> g_done{0};
std::atomic<int64_t> g_total{0};

}  // namespace

void reset() {
  g_done.store(0, std::memory_order_relaxed);
  g_total.store(0, std::memory_order_relaxed);
}

void add_total(int64_t n) { g_total.fetch_add(n, std::memory_order_relaxed); }
void advance(int64_t n) { g_done.fetch_add(n, std::memory_order_relaxed); }

Reading read() {
  return Reading{g_done.load(std::memory_order_relaxed), g_total.load(std::memory_order_relaxed)};
}

}  // namespace loom::work_meter
