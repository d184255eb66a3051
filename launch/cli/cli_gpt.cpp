// `loom generate` (text from a GPT checkpoint) and `loom eval CKPT` for language models
// (held-out loss and perplexity). The checkpoint's stored config says how the run's
// corpus became tokens; its run directory's tokenizer/ holds the tokenizer.
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <iostream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "core/measure.h"
#include "dist/mpi_communicator.h"
#include "io/checkpoint.h"
#include "io/tokenizer.h"
#include "launch/cli/cli.h"
#include "launch/cli/cli_vectors.h"
#include "launch/config/config.h"
#include "launch/kinds/gpt.h"
#include "launch/kinds/gpt_files.h"
#include "launch/pipeline/model_registry.h"
#include "launch/pipeline/token_stage.h"
#include "launch/run/session.h"
#include "models/gpt/gpt_generate.h"

namespace loom {
namespace {

namespace fs = std::filesystem;

struct GptArgs {
  std::string checkpoint, prompt, prompt_file;
  int64_t max_tokens = 200;
  double temperature = 0.8;
  int top_k = 40;
  uint64_t seed = 1;
  int64_t windows = 0;
  std::vector<std::string> set;
};

int generate(const GptArgs& a) {
  const std::string path = checkpoint_file(a.checkpoint);
  CheckpointReader reader;
  reader.open(path);
  GptCheckpoint c = open_gpt_checkpoint(reader, 1, 0);
  std::string prompt = a.prompt;
  if (!a.prompt_file.empty()) {
    std::ifstream in(a.prompt_file, std::ios::binary);
    LOOM_CHECK(in.good(), IoError, "cannot read --prompt-file " + a.prompt_file);
    prompt.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::vector<uint32_t> ids = c.tokenizer->encode(prompt, {InvalidUtf8::kReplace, "--prompt"});
  if (ids.empty() && c.tokenizer->eot_id()) ids.push_back(*c.tokenizer->eot_id());
  LOOM_CHECK(!ids.empty(), ConfigError,
             "--prompt is empty and this tokenizer has no <|endoftext|> to start from: give a prompt");
  GenerateOptions o;
  o.max_tokens = a.max_tokens;
  o.temperature = a.temperature;
  o.top_k = a.top_k;
  o.seed = a.seed;
  if (c.tokenizer->eot_id()) o.stop_token = int32_t(*c.tokenizer->eot_id());
  std::vector<int32_t> prompt_ids(ids.begin(), ids.end());
  std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  std::fflush(stdout);
  // Decode incrementally: print the text of all ids so far minus what is printed (a BPE
  // token may end inside a UTF-8 character; the rest comes with the next token).
  std::vector<uint32_t> generated;
  size_t printed = 0;
  gpt_generate(*c.net, prompt_ids, o, [&](int32_t id) {
    generated.push_back(uint32_t(id));
    const std::string text = c.tokenizer->decode(generated);
    size_t end = text.size();
    while (end > printed && (static_cast<unsigned char>(text[end - 1]) & 0xC0) == 0x80) --end;
    if (end > printed && (static_cast<unsigned char>(text[end - 1]) & 0x80) != 0) --end;
    if (end > printed) {
      std::fwrite(text.data() + printed, 1, end - printed, stdout);
      std::fflush(stdout);
      printed = end;
    }
  });
  const std::string text = c.tokenizer->decode(generated);
  if (printed < text.size()) std::fwrite(text.data() + printed, 1, text.size() - printed, stdout);
  std::fputc('\n', stdout);
  return 0;
}

}  // namespace

void register_gpt_commands(CLI::App& app, CommandAction& chosen) {
  static GptArgs a;
  CLI::App* gen = add_command(
      app, "generate", "sample text from a GPT checkpoint",
      "  Loads CKPT (a checkpoint file, or a checkpoint directory: its `latest`) with the\n"
      "  tokenizer its run saved (RUN_DIR/tokenizer/), encodes the prompt and samples\n"
      "  --max-tokens tokens one at a time over the last n_positions tokens: softmax of the\n"
      "  logits / --temperature among the --top-k most likely (0: all; temperature 0: the\n"
      "  most likely token every time). The same --seed gives the same text. Stops early at\n"
      "  <|endoftext|>. Prints the prompt and the continuation to stdout as they come. Needs\n"
      "  no MPI launcher.\n",
      "  loom generate runs/gpt-shakespeare/checkpoints --prompt 'ROMEO:' --max-tokens 300\n"
      "  loom generate runs/gpt/checkpoints/step_00002000.h5 --prompt 'The' --temperature 0\n");
  gen->add_option("checkpoint", a.checkpoint, "checkpoint file or directory")->required();
  gen->add_option("--prompt", a.prompt, "text to continue");
  gen->add_option("--prompt-file", a.prompt_file, "read the prompt from this file");
  gen->add_option("--max-tokens", a.max_tokens, "tokens to generate (default 200)")->check(CLI::PositiveNumber);
  gen->add_option("--temperature", a.temperature, "sampling temperature; 0 = greedy (default 0.8)")
      ->check(CLI::NonNegativeNumber);
  gen->add_option("--top-k", a.top_k, "sample among the k most likely tokens; 0 = all (default 40)")
      ->check(CLI::NonNegativeNumber);
  gen->add_option("--seed", a.seed, "sampling seed (default 1)");
  gen->callback([&chosen] {
    chosen = [] { return run_local_command("generate", [] { return generate(a); }); };
  });
}

int run_lm_eval(const std::string& checkpoint, const std::vector<std::string>& overrides, int64_t windows) {
  std::string path, config_text;
  const ModelKind* kind = nullptr;
  const int pre = run_local_command("eval", [&] {
    path = checkpoint_file(checkpoint);
    CheckpointReader reader;
    reader.open(path);
    kind = &find_model_kind(reader.meta().model_kind);
    LOOM_CHECK(kind->evaluate_checkpoint != nullptr, ConfigError,
               path + " holds a " + reader.meta().model_kind +
                   " model: evaluate its vectors with `loom eval analogy` or `loom eval similarity`");
    config_text = reader.meta().config_toml;
    return 0;
  });
  if (pre != 0) return pre;
  SessionOptions options{"", overrides, false, "eval"};
  options.config_text = config_text;
  options.config_origin = path + " (stored config)";
  // The token shards are found where the run put them: a relative tokens.dir is inside the
  // run directory, which holds the checkpoint directory.
  const fs::path run_dir = fs::path(path).parent_path().parent_path();
  return with_session(options, [&](Session& s) {
    return kind->evaluate_checkpoint(s, path, run_dir.string(), windows);
  });
}

}  // namespace loom
