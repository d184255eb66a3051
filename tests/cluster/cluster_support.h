#pragma once
// Shared by the cluster tests: shell helpers, the paths of the scripts in tests/cluster,
// and configs derived from loom's examples. The checkpoint comparison (bit for bit, as
// tests/fault/glove_resume_test.cpp does) is tests/support/checkpoint_state.h.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/checkpoint_state.h"
#include "tests/support/test_support.h"

namespace loom::test {

inline std::string cluster_script(const std::string& name) { return std::string(LOOM_CLUSTER_DIR) + "/" + name; }

// Runs a shell command line; returns {status, out, err}.
inline RunResult sh(const std::string& line, std::chrono::milliseconds timeout = std::chrono::seconds(60),
                    const std::vector<std::string>& env = {}) {
  return run({"/bin/bash", "-c", line}, timeout, env);
}

// The text of an example config (examples/NAME) with some keys changed: each
// "section.key=value" replaces that key's line in its [section], or is added to the section
// when the example does not set it (a section the example lacks is appended). Config files
// have no include mechanism, so a test that needs settings the job script cannot pass
// (it passes only run.dir) writes this text to a file and submits that as LOOM_CONFIG; the
// rest of the example stays as users run it.
inline std::string config_from_example(const std::string& name, const std::vector<std::string>& sets) {
  struct Set {
    std::string section, key, value;
    bool done = false;
  };
  std::vector<Set> todo;
  for (const std::string& s : sets) {
    const size_t dot = s.find('.'), eq = s.find('=');
    if (dot == std::string::npos || eq == std::string::npos || dot > eq)
      throw std::runtime_error("config_from_example: '" + s + "' is not section.key=value");
    todo.push_back({s.substr(0, dot), s.substr(dot + 1, eq - dot - 1), s.substr(eq + 1)});
  }
  const std::string path = std::string(LOOM_SOURCE_DIR) + "/examples/" + name;
  std::istringstream in(read_file(path));
  std::string out, section;
  auto finish_section = [&] {   // keys of `section` the example did not set
    for (Set& t : todo)
      if (!t.done && t.section == section) {
        out += t.key + " = " + t.value + "\n";
        t.done = true;
      }
  };
  for (std::string line; std::getline(in, line);) {
    const size_t first = line.find_first_not_of(" \t");
    const std::string text = first == std::string::npos ? "" : line.substr(first);
    if (text.rfind('[', 0) == 0) {
      finish_section();
      section = text.substr(1, text.find(']') - 1);
    } else if (!text.empty() && text[0] != '#' && text.find('=') != std::string::npos) {
      std::string key = text.substr(0, text.find('='));
      key.erase(key.find_last_not_of(" \t") + 1);
      for (Set& t : todo)
        if (!t.done && t.section == section && t.key == key) {
          line = key + " = " + t.value + "   # set by the test; the example has: " + text;
          t.done = true;
        }
    }
    out += line + "\n";
  }
  finish_section();
  for (Set& t : todo)
    if (!t.done) {
      section = t.section;
      out += "\n[" + section + "]\n";
      finish_section();
    }
  return out;
}

}  // namespace loom::test
