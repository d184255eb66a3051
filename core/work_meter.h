#pragma once
// The work meter: how far this process is through the data stage that runs now (counting
// the vocabulary, the co-occurrences, tokenizing). The loops that do the work add what
// they will read (add_total) and what they have read (advance); the run's stage display
// (launch/monitor/stage_progress.h) reads it from its own thread and draws progress and
// /status from it. Two relaxed atomics: a loop may call advance() once per chunk on every
// thread at no measurable cost, and nothing below launch knows who reads it.
#include <cstdint>

namespace loom::work_meter {

struct Reading {
  int64_t done = 0;    // units (bytes) this process has worked through in the current stage
  int64_t total = 0;   // units it will work through, as far as the loops have said yet
};

void reset();                 // a new stage begins: done = total = 0
void add_total(int64_t n);    // this process will work through n more units
void advance(int64_t n);      // n more units done
Reading read();

}  // namespace loom::work_meter
