#!/usr/bin/env python3
"""Hugging Face `tokenizers` as the reference for loom's byte-level BPE tests and benchmarks.

  hf_bpe.py check
      exits 0 when `tokenizers` imports; prints its version
  hf_bpe.py train --texts T.json --vocab-size N [--min-frequency F] --out DIR
      learns a ByteLevel BPE (add_prefix_space=False, the 256-byte initial alphabet,
      special token <|endoftext|>) from the JSON list of documents; writes DIR/vocab.json
      and DIR/merges.txt
  hf_bpe.py encode --dir DIR --texts T.json --out IDS.json
      loads DIR/vocab.json + merges.txt as GPT-2 does (no prefix space, <|endoftext|>
      special) and writes the ids of each text as a JSON list of lists
  hf_bpe.py replace --hex IN.json --out OUT.json
      decodes each hex-encoded byte string with Python's errors="replace" and writes the
      UTF-8 result, hex-encoded (loom's InvalidUtf8::kReplace claims the same result)
  hf_bpe.py speed --dir DIR --text FILE [--threads N]
      encodes FILE's lines (paragraphs) on N threads (default 1) and prints MB/s

Texts travel as JSON, so they must be valid Unicode (no lone surrogates).
"""
import argparse
import json
import os
import sys
import time

if len(sys.argv) > 1 and sys.argv[1] == "speed":   # before tokenizers starts its thread pool
    os.environ["RAYON_NUM_THREADS"] = (sys.argv[sys.argv.index("--threads") + 1]
                                       if "--threads" in sys.argv else "1")


def gpt2_like(directory):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    tok = Tokenizer(models.BPE.from_file(os.path.join(directory, "vocab.json"),
                                         os.path.join(directory, "merges.txt")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>"])
    return tok


def cmd_check(_):
    import tokenizers
    print("tokenizers", tokenizers.__version__)


def cmd_train(args):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    with open(args.texts, encoding="utf-8") as f:
        texts = json.load(f)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=args.vocab_size, min_frequency=args.min_frequency,
                                  special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    os.makedirs(args.out, exist_ok=True)
    tok.model.save(args.out)


def cmd_encode(args):
    tok = gpt2_like(args.dir)
    with open(args.texts, encoding="utf-8") as f:
        texts = json.load(f)
    ids = [e.ids for e in tok.encode_batch(texts)]
    with open(args.out, "w") as f:
        json.dump(ids, f)


def cmd_replace(args):
    with open(args.hex) as f:
        texts = [bytes.fromhex(h) for h in json.load(f)]
    out = [t.decode("utf-8", errors="replace").encode("utf-8").hex() for t in texts]
    with open(args.out, "w") as f:
        json.dump(out, f)


def cmd_speed(args):
    """encode_batch over all lines on --threads threads (RAYON_NUM_THREADS, set before
    tokenizers loads), and encode line by line (one thread)."""
    tok = gpt2_like(args.dir)
    with open(args.text, encoding="utf-8") as f:
        lines = f.read().split("\n")
    size = sum(len(s.encode("utf-8")) for s in lines)
    version = __import__("tokenizers").__version__
    start = time.perf_counter()
    tokens = sum(len(e.ids) for e in tok.encode_batch(lines))
    seconds = time.perf_counter() - start
    print("hf tokenizers %s encode_batch: %d bytes, %d tokens, %.2f s, %.2f MB/s (%s threads)"
          % (version, size, tokens, seconds, size / seconds / 1e6, os.environ["RAYON_NUM_THREADS"]))
    start = time.perf_counter()
    tokens = sum(len(tok.encode(line).ids) for line in lines)
    seconds = time.perf_counter() - start
    print("hf tokenizers %s encode: %d bytes, %d tokens, %.2f s, %.2f MB/s (one thread)"
          % (version, size, tokens, seconds, size / seconds / 1e6))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("check")
    t = sub.add_parser("train")
    t.add_argument("--texts", required=True)
    t.add_argument("--vocab-size", type=int, required=True)
    t.add_argument("--min-frequency", type=int, default=2)
    t.add_argument("--out", required=True)
    e = sub.add_parser("encode")
    e.add_argument("--dir", required=True)
    e.add_argument("--texts", required=True)
    e.add_argument("--out", required=True)
    r = sub.add_parser("replace")
    r.add_argument("--hex", required=True)
    r.add_argument("--out", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--dir", required=True)
    s.add_argument("--text", required=True)
    s.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    {"check": cmd_check, "train": cmd_train, "encode": cmd_encode, "replace": cmd_replace,
     "speed": cmd_speed}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
