// Config: defaults, file + --set precedence, every error kind with its message, range and
// enum edges, round trip through config_to_toml, --describe; plus the generic engine on a
// test schema for the kinds loom's sections do not use yet (bool, list of strings).
#include <algorithm>
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"
#include "launch/config/config.h"
#include "launch/config/config_engine.h"
#include "launch/kinds/glove.h"
#include "launch/kinds/word2vec.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

// The ConfigError message of `fn`, or a test failure when it does not throw one.
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.exit_code(), kExitUsage);
    return e.what();
  }
  ADD_FAILURE() << "expected a loom::ConfigError";
  return "";
}

std::string text_error(const std::string& text, const std::vector<std::string>& overrides = {}) {
  return error_of([&] { load_config_text(text, "run.toml", overrides); });
}

std::string set_error(const std::string& assignment) {
  return error_of([&] { load_config_text("", "run.toml", {assignment}); });
}

#define EXPECT_CONTAINS(haystack, needle)                                          \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos)                 \
      << "expected \"" << (needle) << "\" in:\n  " << (haystack)

TEST(Config, DefaultsWhenAbsent) {
  const Config c = load_config("", {});
  EXPECT_EQ(c, Config{});
  EXPECT_EQ(c.run.name, "loom");
  EXPECT_EQ(c.run.dir, "runs/loom");
  EXPECT_EQ(c.run.seed, 1234);
  EXPECT_EQ(c.run.threads, 0);
  EXPECT_EQ(c.run.log_level, "info");
  EXPECT_EQ(c.comm.timeout_s, 600.0);
  EXPECT_EQ(c.status.port, -1);
  EXPECT_EQ(c.status.bind, "127.0.0.1");
  EXPECT_EQ(c.progress.interval_s, 10.0);
  EXPECT_EQ(c.progress.bar, "auto");
  EXPECT_EQ(c.progress.metrics_every, 1);
  EXPECT_EQ(c.selftest.steps, 200);
  EXPECT_EQ(c.selftest.max_bytes, 1 << 22);
  EXPECT_EQ(c.selftest.step_sleep_ms, 0);
  EXPECT_EQ(c.selftest.stall_rank, -1);
  EXPECT_EQ(c.selftest.stall_step, -1);
  EXPECT_EQ(c.selftest.stall_seconds, 3600.0);
  // A file that sets one key leaves every other at its default.
  const Config one = load_config_text("[run]\nseed = 7\n", "run.toml", {});
  Config expected;
  expected.run.seed = 7;
  EXPECT_EQ(one, expected);
}

TEST(Config, FileThenOverridesLaterWins) {
  test::TempDir dir;
  test::write_file(dir.file("run.toml"),
                   "[run]\nname = \"file\"\nseed = 5\n[comm]\ntimeout_s = 30\n"
                   "[progress]\nbar = \"on\"\n");
  const Config c = load_config(dir.file("run.toml"),
                               {"run.seed=7", "progress.bar=off", "run.seed=9", "run.name=\"x y\""});
  EXPECT_EQ(c.run.seed, 9);
  EXPECT_EQ(c.progress.bar, "off");
  EXPECT_EQ(c.run.name, "x y");
  EXPECT_EQ(c.comm.timeout_s, 30.0);  // an integer where a double is expected
}

TEST(Config, OverrideValueForms) {
  auto one = [](const std::string& s) { return load_config_text("", "t", {s}); };
  EXPECT_EQ(one("run.name=x y").run.name, "x y");          // bare text is the string itself
  EXPECT_EQ(one("run.name=2024").run.name, "2024");        // even when it looks like a number
  EXPECT_EQ(one("run.name='lit'").run.name, "lit");        // a TOML literal string
  EXPECT_EQ(one("run.name=").run.name, "");
  EXPECT_EQ(one("status.bind=0.0.0.0").status.bind, "0.0.0.0");
  EXPECT_EQ(one("comm.timeout_s=1.5e2").comm.timeout_s, 150.0);
  EXPECT_EQ(one("selftest.max_bytes=0x100").selftest.max_bytes, 256);
  EXPECT_EQ(one("run.seed = 3").run.seed, 3);
  EXPECT_EQ(one(" run.name =  padded  ").run.name, "padded");    // verbatim text is trimmed
  EXPECT_EQ(one("run.name=\" padded \"").run.name, " padded ");  // a quoted string is not
}

TEST(Config, RoundTripEverySection) {
  Config c;
  c.run.name = "quote\" back\\slash \t tab \u00e9";
  c.run.dir = "/scratch/{name}/{job}";
  c.run.seed = 0;
  c.run.threads = 3;
  c.run.log_level = "debug";
  c.comm.timeout_s = 0.1;
  c.status.port = 0;
  c.status.bind = "0.0.0.0";
  c.progress.interval_s = 1e-300;
  c.progress.bar = "off";
  c.progress.metrics_every = 50;
  c.selftest.steps = 3;
  c.selftest.max_bytes = 1 << 30;
  c.selftest.step_sleep_ms = 25;
  c.selftest.stall_rank = 1;
  c.selftest.stall_step = 2;
  c.selftest.stall_seconds = 2.5;
  const std::string text = config_to_toml(c);
  EXPECT_EQ(load_config_text(text, "resolved.toml", {}), c) << text;
  EXPECT_EQ(load_config_text(config_to_toml(Config{}), "d", {}), Config{});
  for (const auto& key : config_keys()) {  // every key is written, as "key = "
    EXPECT_CONTAINS(text, key.substr(key.find('.') + 1) + " = ");
  }
  EXPECT_CONTAINS(text, "[selftest]");
  EXPECT_CONTAINS(text, "timeout_s = 0.1\n");
}

TEST(Config, DescribeListsEveryKey) {
  const std::string table = describe_config_schema();
  const std::vector<std::string> keys = config_keys();
  EXPECT_GE(keys.size(), 17u);   // sections grow as models land
  for (const char* key : {"run.seed", "comm.timeout_s", "status.port", "progress.bar", "selftest.steps"})
    EXPECT_NE(std::find(keys.begin(), keys.end(), key), keys.end()) << key;
  for (const auto& key : keys) EXPECT_CONTAINS(table, key);
  EXPECT_CONTAINS(table, "(0, 604800]");
  EXPECT_CONTAINS(table, "[-1, 65535]");
  EXPECT_CONTAINS(table, "[8, 1073741824]");
  EXPECT_CONTAINS(table, "'debug', 'info', 'warn', 'error'");
  EXPECT_CONTAINS(table, "\"runs/loom\"");
  EXPECT_CONTAINS(table, "deadline in seconds");
}

TEST(ConfigErrors, UnknownKeySuggestsNearMiss) {
  const std::string msg = text_error("[comm]\ntimeout = 5\n");
  EXPECT_CONTAINS(msg, "unknown config key 'comm.timeout' at run.toml:2");
  EXPECT_CONTAINS(msg, "did you mean 'comm.timeout_s'?");
}

TEST(ConfigErrors, UnknownKeySuggestsAcrossSections) {
  EXPECT_CONTAINS(text_error("[comm]\nport = 8080\n"), "did you mean 'status.port'?");
  EXPECT_CONTAINS(text_error("[run]\nstall_rnak = 1\n"), "did you mean 'selftest.stall_rank'?");
  const std::string top = text_error("# seed\nseed = 3\n");
  EXPECT_CONTAINS(top, "'seed' at run.toml:2 is outside any section");
  EXPECT_CONTAINS(top, "did you mean 'run.seed'?");
}

TEST(ConfigErrors, UnknownKeyWithoutNearMiss) {
  const std::string msg = text_error("[run]\nname = \"a\"\ncompletely_different = 1\n");
  EXPECT_CONTAINS(msg, "unknown config key 'run.completely_different' at run.toml:3");
  EXPECT_EQ(msg.find("did you mean"), std::string::npos) << msg;
}

TEST(ConfigErrors, UnknownSection) {
  const std::string msg = text_error("[run]\nseed = 1\n\n[comn]\ntimeout_s = 5\n");
  EXPECT_CONTAINS(msg, "unknown config section '[comn]' at run.toml:4");
  EXPECT_CONTAINS(msg, "did you mean '[comm]'?");
  EXPECT_CONTAINS(text_error("run = 5\n"), "'run' at run.toml:1 must be a section ([run]), got an integer");
}

TEST(ConfigErrors, WrongType) {
  EXPECT_CONTAINS(text_error("[comm]\n\n\ntimeout_s = \"x\"\n"),
                  "'comm.timeout_s' at run.toml:4 must be a number, got a string");
  EXPECT_CONTAINS(text_error("[run]\nseed = 1.5\n"),
                  "'run.seed' at run.toml:2 must be an integer, got a float");
  EXPECT_CONTAINS(text_error("[run]\nseed = 1.0\n"), "must be an integer, got a float");
  EXPECT_CONTAINS(text_error("[run]\nname = 3\n"), "'run.name' at run.toml:2 must be a string, got an integer");
  EXPECT_CONTAINS(text_error("[status]\nport = [1]\n"), "must be an integer, got a list");
  EXPECT_CONTAINS(text_error("[progress]\nbar = true\n"),
                  "'progress.bar' at run.toml:2 must be a string, one of 'auto', 'on', 'off', got a boolean");
}

TEST(ConfigErrors, OutOfRange) {
  const std::string msg = text_error("[selftest]\nmax_bytes = 4\n");
  EXPECT_CONTAINS(msg, "'selftest.max_bytes' at run.toml:2 is 4, outside the allowed range [8, 1073741824]");
  EXPECT_CONTAINS(text_error("[comm]\ntimeout_s = 0\n"), "is 0.0, outside the allowed range (0, 604800]");
  EXPECT_CONTAINS(text_error("[run]\nseed = -1\n"), "is -1, outside the allowed range >= 0");
  EXPECT_CONTAINS(text_error("[progress]\ninterval_s = 0.0\n"), "outside the allowed range > 0");
  // Non-finite values are refused before the range: "> 0" would let inf through.
  EXPECT_CONTAINS(text_error("[comm]\ntimeout_s = nan\n"), "'comm.timeout_s' at run.toml:2 is nan: it must be a finite number");
  EXPECT_CONTAINS(text_error("[progress]\ninterval_s = inf\n"), "'progress.interval_s' at run.toml:2 is inf: it must be a finite number");
  EXPECT_CONTAINS(text_error("[progress]\ninterval_s = -inf\n"), "is -inf: it must be a finite number");
}

TEST(ConfigErrors, RangeEdges) {
  auto ok = [](const std::string& text) {
    EXPECT_NO_THROW(load_config_text(text, "edge.toml", {})) << text;
  };
  auto bad = [](const std::string& text) { EXPECT_CONTAINS(text_error(text), "outside the allowed range"); };
  // comm.timeout_s in (0, 604800]: the low bound is exclusive, the high one inclusive.
  bad("[comm]\ntimeout_s = 0.0");
  ok("[comm]\ntimeout_s = 1e-9");
  ok("[comm]\ntimeout_s = 604800");
  bad("[comm]\ntimeout_s = 604800.0000001");
  EXPECT_CONTAINS(text_error("[comm]\ntimeout_s = inf"), "is inf: it must be a finite number");
  // status.port in [-1, 65535].
  ok("[status]\nport = -1");
  bad("[status]\nport = -2");
  ok("[status]\nport = 65535");
  bad("[status]\nport = 65536");
  // selftest.max_bytes in [8, 1 << 30].
  ok("[selftest]\nmax_bytes = 8");
  bad("[selftest]\nmax_bytes = 7");
  ok("[selftest]\nmax_bytes = 1073741824");
  bad("[selftest]\nmax_bytes = 1073741825");
  bad("[selftest]\nmax_bytes = 9223372036854775807");
  // progress.interval_s > 0, metrics_every >= 1.
  bad("[progress]\ninterval_s = 0");
  ok("[progress]\ninterval_s = 5e-324");
  bad("[progress]\nmetrics_every = 0");
  ok("[progress]\nmetrics_every = 1");
  // selftest: stall_* >= -1, stall_seconds >= 0, steps >= 1, step_sleep_ms >= 0.
  ok("[selftest]\nstall_rank = -1\nstall_step = -1\nstall_seconds = 0");
  bad("[selftest]\nstall_rank = -2");
  bad("[selftest]\nstall_step = -2");
  bad("[selftest]\nstall_seconds = -0.5");
  bad("[selftest]\nsteps = 0");
  bad("[selftest]\nstep_sleep_ms = -1");
  ok("[run]\nseed = 0\nthreads = 0");
  bad("[run]\nthreads = -1");
}

TEST(ConfigErrors, EnumValues) {
  const std::string msg = text_error("[progress]\nbar = \"maybe\"\n");
  EXPECT_CONTAINS(msg, "'progress.bar' at run.toml:2 is 'maybe'; allowed values: 'auto', 'on', 'off'");
  EXPECT_CONTAINS(text_error("[run]\nlog_level = \"INFO\"\n"), "allowed values: 'debug', 'info', 'warn', 'error'");
  for (const char* level : {"debug", "info", "warn", "error"})
    EXPECT_EQ(load_config_text("", "t", {std::string("run.log_level=") + level}).run.log_level, level);
}

TEST(ConfigErrors, MalformedToml) {
  EXPECT_CONTAINS(text_error("[run]\nseed = = 3\n"), "malformed TOML at run.toml:2:");
  EXPECT_CONTAINS(text_error("[run]\nseed = 1\nseed = 2\n"), "malformed TOML at run.toml:3:");
  EXPECT_CONTAINS(text_error("[run\n"), "malformed TOML at run.toml:1:");
}

TEST(ConfigErrors, OverrideErrors) {
  EXPECT_CONTAINS(set_error("run.seed"), "--set run.seed must have the form section.key=value");
  EXPECT_CONTAINS(set_error("seed=3"), "--set seed=3 must have the form section.key=value");
  const std::string unknown = set_error("comm.timout_s=5");
  EXPECT_CONTAINS(unknown, "unknown config key 'comm.timout_s' in --set comm.timout_s=5");
  EXPECT_CONTAINS(unknown, "did you mean 'comm.timeout_s'?");
  EXPECT_CONTAINS(set_error("nope.seed=1"), "did you mean 'run.seed'?");
  EXPECT_CONTAINS(set_error("run.seed=abc"),
                  "'run.seed' in --set run.seed=abc must be an integer, got 'abc', which is not a TOML value");
  EXPECT_CONTAINS(set_error("run.seed=1.5"), "'run.seed' in --set run.seed=1.5 must be an integer, got a float");
  EXPECT_CONTAINS(set_error("run.seed=\"7\""), "must be an integer, got a string");
  EXPECT_CONTAINS(set_error("comm.timeout_s=0"),
                  "'comm.timeout_s' in --set comm.timeout_s=0 is 0.0, outside the allowed range (0, 604800]");
  EXPECT_CONTAINS(set_error("progress.bar=maybe"), "in --set progress.bar=maybe is 'maybe'; allowed values");
  EXPECT_CONTAINS(set_error("run.seed=1\nfoo = 2"), "which is not a TOML value");
  EXPECT_CONTAINS(set_error("run.seed="), "must be an integer");
}

TEST(ConfigErrors, MissingOrUnreadableFile) {
  test::TempDir dir;
  const std::string missing = dir.file("no_such.toml");
  const std::string msg = error_of([&] { load_config(missing, {}); });
  EXPECT_CONTAINS(msg, "cannot read config file '" + missing + "'");
  EXPECT_CONTAINS(msg, "No such file");
  EXPECT_CONTAINS(error_of([&] { load_config(dir.path(), {}); }), "is a directory");
  test::write_file(dir.file("bad.toml"), "[run]\n\nseed = \"x\"\n");
  EXPECT_CONTAINS(error_of([&] { load_config(dir.file("bad.toml"), {}); }),
                  "'run.seed' at " + dir.file("bad.toml") + ":3 must be an integer");
}

TEST(Config, ExpandRunDir) {
  RunSection run;
  run.name = "exp1";
  run.dir = "runs/{name}/{job}";
  EXPECT_EQ(expand_run_dir(run, ""), "runs/exp1/local");
  EXPECT_EQ(expand_run_dir(run, "4242"), "runs/exp1/4242");
  EXPECT_EQ(expand_run_dir("r/{job}-{name}", "n", "7"), "r/7-n");
  run.dir = "plain";
  EXPECT_EQ(expand_run_dir(run, "1"), "plain");
  run.dir = "{name}{name}";
  EXPECT_EQ(expand_run_dir(run, "1"), "exp1exp1");
  run.dir = "runs/{user}";
  EXPECT_CONTAINS(error_of([&] { expand_run_dir(run, ""); }), "'run.dir' (\"runs/{user}\") has an unknown placeholder '{user}'");
  run.dir = "runs/{name";
  EXPECT_CONTAINS(error_of([&] { expand_run_dir(run, ""); }), "unknown placeholder '{name'");
  EXPECT_CONTAINS(text_error("[run]\ndir = \"x/{jobid}\"\n"), "unknown placeholder '{jobid}'");
}

// ---- the generic engine on a test schema: bool and list of strings ---------------------
#define LOOM_TEST_DEMO(X_BOOL, X_INT, X_REAL, X_STR, X_ENUM, X_LIST)           \
  X_BOOL(flag, true, "a switch")                                             \
  X_LIST(files, (std::vector<std::string>{"a.txt", "b.txt"}), "input files") \
  X_LIST(empty, {}, "an empty list")                                         \
  X_INT(count, 3, ConfigRange::between(0, 10), "a count")

LOOM_CONFIG_DEFINE_SECTION(demo, DemoSection, LOOM_TEST_DEMO, "demo")
struct DemoRoot {
  DemoSection demo;
  bool operator==(const DemoRoot&) const = default;
};

const ConfigSchema& demo_schema() {
  static const ConfigSchema kSchema = {LOOM_CONFIG_SECTION_INFO(DemoRoot, demo, LOOM_TEST_DEMO, "demo")};
  return kSchema;
}

std::string demo_error(const std::string& text, const std::string& assignment = "") {
  return error_of([&] {
    DemoRoot root;
    apply_config_text(demo_schema(), &root, text, "demo.toml");
    if (!assignment.empty()) apply_config_override(demo_schema(), &root, assignment);
  });
}

TEST(ConfigEngine, BoolAndListKinds) {
  DemoRoot root;
  EXPECT_TRUE(root.demo.flag);
  EXPECT_EQ(root.demo.files, (std::vector<std::string>{"a.txt", "b.txt"}));
  apply_config_text(demo_schema(), &root, "[demo]\nflag = false\nfiles = [\"x\", \"y\", \"z\"]\n", "demo.toml");
  EXPECT_FALSE(root.demo.flag);
  EXPECT_EQ(root.demo.files, (std::vector<std::string>{"x", "y", "z"}));
  apply_config_override(demo_schema(), &root, "demo.flag=true");
  apply_config_override(demo_schema(), &root, "demo.empty=[\"q\"]");
  apply_config_override(demo_schema(), &root, "demo.files=[]");
  EXPECT_TRUE(root.demo.flag);
  EXPECT_TRUE(root.demo.files.empty());
  EXPECT_EQ(root.demo.empty, std::vector<std::string>{"q"});

  DemoRoot back;
  apply_config_text(demo_schema(), &back, format_config_toml(demo_schema(), &root), "resolved");
  EXPECT_EQ(back, root);
  const DemoRoot defaults;
  const std::string table = describe_config(demo_schema(), &defaults);
  EXPECT_CONTAINS(table, "demo.files");
  EXPECT_CONTAINS(table, "list<string>");
  EXPECT_CONTAINS(table, "[\"a.txt\", \"b.txt\"]");
}

TEST(ConfigEngine, BoolAndListErrors) {
  EXPECT_CONTAINS(demo_error("[demo]\nflag = \"yes\"\n"),
                  "'demo.flag' at demo.toml:2 must be a boolean (true or false), got a string");
  EXPECT_CONTAINS(demo_error("[demo]\nflag = 1\n"), "must be a boolean (true or false), got an integer");
  EXPECT_CONTAINS(demo_error("[demo]\nfiles = \"a.txt\"\n"), "must be a list of strings, got a string");
  EXPECT_CONTAINS(demo_error("[demo]\n\nfiles = [\"a\", 2]\n"),
                  "'demo.files' at demo.toml:3 must be a list of strings, but item 1 is an integer");
  EXPECT_CONTAINS(demo_error("", "demo.flag=yes"), "in --set demo.flag=yes must be a boolean");
  EXPECT_CONTAINS(demo_error("", "demo.files=[a.txt"), "write one file as --set demo.files=a.txt, several as");
  EXPECT_CONTAINS(demo_error("", "demo.files=[1, 2]"), "must be a list of strings, but item 0 is an integer");
  EXPECT_CONTAINS(demo_error("", "demo.fiels=[]"), "did you mean 'demo.files'?");
}

// Note [A list from one word]: one word (bare or quoted) is the list of that word, '' the
// empty list, a TOML list is read as such.
TEST(ConfigEngine, ListOverrideFromOneWord) {
  DemoRoot root;
  apply_config_override(demo_schema(), &root, "demo.files=small.txt");
  EXPECT_EQ(root.demo.files, std::vector<std::string>{"small.txt"});
  apply_config_override(demo_schema(), &root, "demo.files=\"my corpus.txt\"");
  EXPECT_EQ(root.demo.files, std::vector<std::string>{"my corpus.txt"});
  apply_config_override(demo_schema(), &root, "demo.files=2024");
  EXPECT_EQ(root.demo.files, std::vector<std::string>{"2024"});
  apply_config_override(demo_schema(), &root, "demo.files=-");
  EXPECT_EQ(root.demo.files, std::vector<std::string>{"-"});
  apply_config_override(demo_schema(), &root, "demo.files=");
  EXPECT_TRUE(root.demo.files.empty());
  apply_config_override(demo_schema(), &root, "demo.files=[\"a\", \"b\"]");
  EXPECT_EQ(root.demo.files, (std::vector<std::string>{"a", "b"}));
}

TEST(ConfigEngine, ClosestName) {
  const std::vector<std::string> names = {"train", "tokenize", "export", "eval"};
  EXPECT_EQ(closest_name("trian", names), "train");
  EXPECT_EQ(closest_name("TRAIN", names), "train");
  EXPECT_EQ(closest_name("exprot", names), "export");
  EXPECT_EQ(closest_name("banana", names), "");
}

TEST(ConfigEngine, EditDistance) {
  EXPECT_EQ(config_edit_distance("", ""), 0u);
  EXPECT_EQ(config_edit_distance("abc", ""), 3u);
  EXPECT_EQ(config_edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(config_edit_distance("timeout", "timeout_s"), 2u);
}

// Every config the README points users to loads: known keys, right types, valid values.
// (A recipe that only fails when someone runs it is a broken recipe.)
TEST(Config, EveryExampleLoads) {
  int loaded = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(LOOM_SOURCE_DIR) + "/examples")) {
    if (entry.path().extension() != ".toml") continue;
    EXPECT_NO_THROW(load_config(entry.path().string(), {})) << entry.path();
    ++loaded;
  }
  EXPECT_GE(loaded, 6);
}

// The [word2vec] and [glove] sections restate the models' option defaults (the schema
// must print them); a default changed on one side only is a silent behaviour change for
// either the CLI or the library. (word2vec.step_words once differed: 2^20 vs 2^18.)
TEST(Config, ModelSectionDefaultsAreTheModelsDefaults) {
  const Config defaults;
  const Word2VecOptions w = word2vec_options(defaults, 1), wm;
  EXPECT_EQ(w.arch, wm.arch);
  EXPECT_EQ(w.dim, wm.dim);
  EXPECT_EQ(w.window, wm.window);
  EXPECT_EQ(w.negative, wm.negative);
  EXPECT_EQ(w.hs, wm.hs);
  EXPECT_EQ(w.shared_negatives, wm.shared_negatives);
  EXPECT_EQ(w.sample, wm.sample);
  EXPECT_EQ(w.alpha, wm.alpha);
  EXPECT_EQ(w.min_alpha_ratio, wm.min_alpha_ratio);
  EXPECT_EQ(w.ns_power, wm.ns_power);
  EXPECT_EQ(w.epochs, wm.epochs);
  EXPECT_EQ(w.sync, wm.sync);
  EXPECT_EQ(w.step_words, wm.step_words);
  EXPECT_EQ(w.average_above, wm.average_above);
  EXPECT_EQ(w.rare_below, wm.rare_below);
  EXPECT_EQ(w.rare_every, wm.rare_every);
  EXPECT_EQ(w.max_sentence_words, wm.max_sentence_words);
  EXPECT_EQ(w.prefetch, wm.prefetch);
  EXPECT_EQ(w.peer_memory, wm.peer_memory);
  // The keys that replaced LOOM_W2V_PREFETCH and LOOM_PEER_MEMORY reach the options.
  const Word2VecOptions off =
      word2vec_options(load_config_text("", "t", {"word2vec.prefetch=false", "comm.peer_memory=false"}), 1);
  EXPECT_FALSE(off.prefetch);
  EXPECT_FALSE(off.peer_memory);
  const GloveOptions g = glove_options(defaults, 1), gm;
  EXPECT_EQ(g.dim, gm.dim);
  EXPECT_EQ(g.x_max, gm.x_max);
  EXPECT_EQ(g.alpha, gm.alpha);
  EXPECT_EQ(g.eta, gm.eta);
  EXPECT_EQ(g.grad_clip, gm.grad_clip);
  EXPECT_EQ(g.epochs, gm.epochs);
  EXPECT_EQ(g.sync, gm.sync);
  EXPECT_EQ(g.step_nnz, gm.step_nnz);
  EXPECT_EQ(g.reshuffle, gm.reshuffle);
  EXPECT_EQ(g.output, gm.output);
}

}  // namespace
}  // namespace loom
