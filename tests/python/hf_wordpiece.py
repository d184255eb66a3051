#!/usr/bin/env python3
"""Hugging Face as the reference for loom's WordPiece (BERT) tokenizer tests and benchmarks.

  hf_wordpiece.py check
      exits 0 when `tokenizers` and `transformers` import; prints their versions
  hf_wordpiece.py train --texts T.json --vocab-size N --out DIR [--cased]
      BertWordPieceTokenizer(lowercase=not cased).train_from_iterator (min_frequency 2,
      limit_alphabet 1000, BERT's special tokens); writes DIR/vocab.txt
  hf_wordpiece.py encode --vocab V.txt --texts T.json --out IDS.json [--cased]
      the ids of each text (no [CLS]/[SEP]) from tokenizers' BertWordPieceTokenizer, checked
      equal to transformers' BertTokenizerFast(vocab_file, do_lower_case) on every text
  hf_wordpiece.py decode --vocab V.txt --ids IDS.json --out TEXTS.json [--cased]
      BertWordPieceTokenizer.decode(ids, skip_special_tokens=False) of each id list
  hf_wordpiece.py speed --vocab V.txt --text FILE [--threads N]
      encode_batch over FILE's non-empty lines on N threads (RAYON_NUM_THREADS): MB/s, the
      token count and the CRC-32 (zlib) of the id stream as little-endian uint32, each
      line's ids followed by [SEP]

Texts travel as JSON, so they must be valid Unicode (no lone surrogates).
"""
import argparse
import array
import json
import os
import sys
import time
import zlib

if len(sys.argv) > 1 and sys.argv[1] == "speed":   # before tokenizers starts its thread pool
    os.environ["RAYON_NUM_THREADS"] = (sys.argv[sys.argv.index("--threads") + 1]
                                       if "--threads" in sys.argv else "1")

CHUNK_LINES = 50000
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def wordpiece(vocab, cased):
    from tokenizers import BertWordPieceTokenizer
    return BertWordPieceTokenizer(vocab, lowercase=not cased)


def load_texts(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def cmd_check(_):
    import tokenizers
    import transformers
    print("tokenizers", tokenizers.__version__, "transformers", transformers.__version__)


def cmd_train(args):
    from tokenizers import BertWordPieceTokenizer
    tok = BertWordPieceTokenizer(lowercase=not args.cased)
    tok.train_from_iterator(load_texts(args.texts), vocab_size=args.vocab_size, min_frequency=2,
                            limit_alphabet=1000, special_tokens=SPECIALS, show_progress=False)
    os.makedirs(args.out, exist_ok=True)
    tok.save_model(args.out)


def cmd_encode(args):
    from transformers import BertTokenizerFast
    texts = load_texts(args.texts)
    tok = wordpiece(args.vocab, args.cased)
    ids = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
    fast = BertTokenizerFast(vocab_file=args.vocab, do_lower_case=not args.cased)
    fast_ids = fast(texts, add_special_tokens=False)["input_ids"]
    for i, (a, b) in enumerate(zip(ids, fast_ids)):
        if a != b:
            sys.exit("BertWordPieceTokenizer and BertTokenizerFast differ on text #%d: %r" % (i, texts[i][:200]))
    with open(args.out, "w") as f:
        json.dump(ids, f)


def cmd_decode(args):
    tok = wordpiece(args.vocab, args.cased)
    with open(args.ids) as f:
        ids = json.load(f)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump([tok.decode(x, skip_special_tokens=False) for x in ids], f)


def cmd_speed(args):
    """encode_batch over all lines (in chunks of CHUNK_LINES) on --threads threads, timed;
    the count and CRC of the ids (each line's ids followed by [SEP]: loom's token stream
    with documents = line) outside the timing."""
    tok = wordpiece(args.vocab, args.cased)
    with open(args.text, encoding="utf-8") as f:
        lines = [line for line in f.read().split("\n") if line]
    size = sum(len(s.encode("utf-8")) for s in lines)
    version = __import__("tokenizers").__version__
    sep = tok.token_to_id("[SEP]")
    crc, tokens, seconds = 0, 0, 0.0
    for at in range(0, len(lines), CHUNK_LINES):   # in chunks: the Encodings of 100 MB need GBs
        start = time.perf_counter()
        encodings = tok.encode_batch(lines[at:at + CHUNK_LINES], add_special_tokens=False)
        seconds += time.perf_counter() - start
        for e in encodings:
            ids = array.array("I", e.ids)
            ids.append(sep)
            crc = zlib.crc32(ids.tobytes(), crc)
            tokens += len(ids)
    print("hf tokenizers %s BertWordPiece encode_batch: %d bytes, %d lines, %d tokens (with [SEP]), "
          "crc32 %08x, %.2f s, %.2f MB/s (%s threads)"
          % (version, size, len(lines), tokens, crc, seconds, size / seconds / 1e6,
             os.environ["RAYON_NUM_THREADS"]))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("check")
    t = sub.add_parser("train")
    t.add_argument("--texts", required=True)
    t.add_argument("--vocab-size", type=int, required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--cased", action="store_true")
    e = sub.add_parser("encode")
    e.add_argument("--vocab", required=True)
    e.add_argument("--texts", required=True)
    e.add_argument("--out", required=True)
    e.add_argument("--cased", action="store_true")
    d = sub.add_parser("decode")
    d.add_argument("--vocab", required=True)
    d.add_argument("--ids", required=True)
    d.add_argument("--out", required=True)
    d.add_argument("--cased", action="store_true")
    s = sub.add_parser("speed")
    s.add_argument("--vocab", required=True)
    s.add_argument("--text", required=True)
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--cased", action="store_true")
    args = p.parse_args()
    {"check": cmd_check, "train": cmd_train, "encode": cmd_encode, "decode": cmd_decode,
     "speed": cmd_speed}[args.cmd](args)


if __name__ == "__main__":
    main()
