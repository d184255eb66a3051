#!/usr/bin/env python3
"""nanoGPT's CPU character-level recipe on Tiny Shakespeare, in plain PyTorch (the model of
bench/gpt_torch.py): the reference curve for loom's GPT on the same data and settings.

  gpt_shakespeare_torch.py TINYSHAKESPEARE.txt [--iters 2000] [--threads 2] [--seed 1337]

Recipe (nanoGPT config/train_shakespeare_char.py with its CPU overrides): characters as
tokens (the sorted set of the file's characters), first 90 % train / last 10 % val;
4 layers, 4 heads, d_model 128, context 64, batch 12, no biases, no dropout; 2000
iterations, learning rate 1e-3 with 100 linear warm-up steps then cosine decay to 1e-4 at
iteration 2000; AdamW betas (0.9, 0.99), eps 1e-8, weight decay 0.1 on the 2-D weights
only (embeddings included, as nanoGPT); gradient clipping at global norm 1.0. Batches are
random windows (uniform start positions). Evaluation at iteration 0, every 250 and at the
end: mean loss over 20 random batches of each split (the model in eval mode).

Prints the curve (iteration, train loss, val loss, elapsed s) and the wall seconds of the
training (evaluation excluded and included), then `RESULT {json}`.
"""
import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt_torch import blas_info, build_model_classes, set_threads_before_import  # noqa: E402


def main(argv):
    threads = set_threads_before_import(argv)
    import torch
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("text")
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--eval-batches", type=int, default=20)
    args = ap.parse_args(argv)
    torch.set_num_threads(threads)
    torch.manual_seed(args.seed)

    text = open(args.text, encoding="utf-8").read()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    n = int(0.9 * len(data))
    splits = {"train": data[:n], "val": data[n:]}
    V, L, NH, C, T, B = len(chars), 4, 4, 128, 64, 12
    lr_peak, lr_min, warmup, decay_iters = 1e-3, 1e-4, 100, 2000

    GPT = build_model_classes(torch)
    model = GPT(V, L, NH, C, T, bias=False)
    opt = model.optimizer(lr=lr_peak, weight_decay=0.1, betas=(0.9, 0.99))
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads "
          f"(OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}), {blas_info(torch)}")
    print(f"{args.text}: {len(data):,} characters, vocab {V}, train {n:,} / val {len(data) - n:,}; "
          f"{n_params / 1e6:.3f} M parameters")

    def batch(split):
        d = splits[split]
        ix = torch.randint(len(d) - T, (B,))
        x = torch.stack([d[i:i + T] for i in ix])
        y = torch.stack([d[i + 1:i + 1 + T] for i in ix])
        return x, y

    def lr_at(it):
        if it < warmup:
            return lr_peak * (it + 1) / warmup
        if it > decay_iters:
            return lr_min
        ratio = (it - warmup) / (decay_iters - warmup)
        return lr_min + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr_peak - lr_min)

    @torch.no_grad()
    def evaluate():
        model.eval()
        out = {}
        for split in ("train", "val"):
            out[split] = sum(model(*batch(split))[1].item()
                             for _ in range(args.eval_batches)) / args.eval_batches
        model.train()
        return out

    curve = []
    train_s = 0.0
    start = time.perf_counter()
    print(f"{'iter':>6} {'train':>8} {'val':>8} {'elapsed s':>10}")
    for it in range(args.iters + 1):
        if it % args.eval_every == 0 or it == args.iters:
            e = evaluate()
            curve.append({"iter": it, "train_loss": e["train"], "val_loss": e["val"],
                          "elapsed_s": time.perf_counter() - start})
            print(f"{it:>6} {e['train']:>8.4f} {e['val']:>8.4f} {curve[-1]['elapsed_s']:>10.1f}",
                  flush=True)
        if it == args.iters:
            break
        t0 = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = lr_at(it)
        x, y = batch("train")
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        train_s += time.perf_counter() - t0
    wall = time.perf_counter() - start
    tokens_per_s = args.iters * B * T / train_s
    print(f"wall {wall:.1f} s ({train_s:.1f} s training, {wall - train_s:.1f} s evaluation), "
          f"{tokens_per_s:,.0f} tokens/s; final val loss {curve[-1]['val_loss']:.4f}")
    print("RESULT " + json.dumps({"tool": "pytorch", "iters": args.iters, "threads": threads,
                                  "params": n_params, "wall_s": wall, "train_s": train_s,
                                  "tokens_per_s": tokens_per_s, "curve": curve,
                                  "final_val_loss": curve[-1]["val_loss"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
