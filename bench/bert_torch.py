#!/usr/bin/env python3
"""PyTorch's side of bench/bert.sh: Hugging Face BertForPreTraining (transformers, float32,
no dropout) doing forward + backward + gradient clipping + AdamW steps on random token
batches, on N threads (default 2).

  bert_torch.py --shape tiny|base [--steps S] [--warmup W] [--threads N]
                [--vocab V --n-layer L --n-head H --hidden C --intermediate I
                 --seq-len T --batch-size B --predictions P]

  tiny: vocab 8192,  4 layers,  4 heads, hidden 256, intermediate 1024, seq 128, batch 16
  base: vocab 30522, 12 layers, 12 heads, hidden 768, intermediate 3072, seq 128, batch 8

Each sequence has P = 20 masked positions (distinct, random, never position 0) with random
labels and -100 elsewhere, a random NSP label, segment 1 on its second half and an
all-ones attention mask (full length). The optimizer is BERT's: AdamW (eps 1e-6, weight
decay 0.01 on everything but biases and LayerNorm weights), clip at global norm 1.0.

Prints the BLAS torch uses, the timed steps' tokens/s, the matmul FLOP rate counted as
loom counts it (BertNet::matmul_flops x 3: the encoder's linear layers and attention
products, pooler + NSP, and the MLM head on the B x P labelled rows only; Hugging Face's
head also runs on the other B x (T - P) rows, work this figure does not count), that rate
with HF's actual MLM head on all B x T rows, the peak RSS of this process (getrusage
ru_maxrss) and a last line `RESULT {json}` for the script. One shape per process, so that
the peak RSS is that shape's.
"""
import argparse
import json
import os
import resource
import sys
import time

SHAPES = {
    "tiny": dict(vocab=8192, n_layer=4, n_head=4, hidden=256, intermediate=1024, seq_len=128,
                 batch_size=16, predictions=20),
    "base": dict(vocab=30522, n_layer=12, n_head=12, hidden=768, intermediate=3072, seq_len=128,
                 batch_size=8, predictions=20),
}


def set_threads_before_import(argv):
    """OpenBLAS and OpenMP read their thread counts when torch loads: set them first."""
    threads = "2"
    if "--threads" in argv:
        threads = argv[argv.index("--threads") + 1]
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = threads
    # libgomp's spin-waiting costs milliseconds per small op on shared cores (bench/gpt_torch.py);
    # export OMP_WAIT_POLICY to override.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return int(threads)


def matmul_flops(shape, B, mlm_rows):
    """BertNet::matmul_flops (models/bert/bert_net.cpp) for one forward: 2 x multiply-adds."""
    C, I, V, T, L = shape["hidden"], shape["intermediate"], shape["vocab"], shape["seq_len"], shape["n_layer"]
    per_block = 2.0 * B * T * (3 * C * C + C * C + 2 * C * I) + 2.0 * 2.0 * B * T * T * C
    pooler = 2.0 * B * (C * C + 2 * C)
    mlm = 2.0 * mlm_rows * (C * C + V * C)
    return L * per_block + pooler + mlm


def bert_model(torch, shape, seed):
    """BertForPreTraining at `shape`, float32, dropout off, HF's own initialisation."""
    import transformers
    from transformers import BertConfig, BertForPreTraining
    transformers.logging.set_verbosity_error()
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=shape["vocab"], hidden_size=shape["hidden"],
                     num_hidden_layers=shape["n_layer"], num_attention_heads=shape["n_head"],
                     intermediate_size=shape["intermediate"], max_position_embeddings=512,
                     hidden_act="gelu", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertForPreTraining(cfg).train()


def bert_adamw(torch, model, lr, weight_decay=0.01, eps=1e-6, betas=(0.9, 0.999)):
    """BERT's AdamW grouping: no decay on biases and LayerNorm weights (loom's decay_mask
    with bert.decay_embeddings = true decays the same set; the tied MLM decoder weight is the
    word embeddings, counted once)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if name.endswith(".bias") or "LayerNorm" in name else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=lr, betas=betas, eps=eps)


def blas_info(torch):
    """torch's BLAS as built (BLAS_INFO) and the library actually mapped in this process."""
    built = next((part.strip() for line in torch.__config__.show().splitlines()
                  for part in line.split(",") if "BLAS_INFO" in part), "BLAS_INFO=?")
    mapped = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            if any(s in path for s in ("blas", "mkl", "lapack")):
                mapped.add(os.path.realpath(path))
    return f"{built}; mapped: {', '.join(sorted(mapped)) or 'none found'}"


def peak_rss_gib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2   # KiB -> GiB


def main(argv):
    threads = set_threads_before_import(argv)
    import torch
    import transformers
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    for k in SHAPES["tiny"]:
        ap.add_argument("--" + k.replace("_", "-"), type=int, dest=k)
    ap.add_argument("--steps", type=int, default=10, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args(argv)
    shape = dict(SHAPES[args.shape])
    shape.update({k: getattr(args, k) for k in shape if getattr(args, k) is not None})

    torch.set_num_threads(threads)
    model = bert_model(torch, shape, args.seed)
    opt = bert_adamw(torch, model, lr=1e-4)
    B, T, P, V = shape["batch_size"], shape["seq_len"], shape["predictions"], shape["vocab"]
    n_params = sum(p.numel() for p in model.parameters())   # the tied decoder once
    flops_step = 3.0 * matmul_flops(shape, B, B * P)
    flops_step_hf = 3.0 * matmul_flops(shape, B, B * T)

    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"{torch.get_num_threads()} threads (OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}), "
          f"{model.config._attn_implementation} attention, {blas_info(torch)}")
    print(f"shape {args.shape}: {shape}, {n_params / 1e6:.2f} M parameters")

    gen = torch.Generator().manual_seed(args.seed)
    segments = (torch.arange(T) >= T // 2).long().expand(B, T).contiguous()
    attention = torch.ones(B, T, dtype=torch.long)
    special = 5   # ids below it are [PAD] [UNK] [CLS] [SEP] [MASK] in loom's vocab.txt

    def batch():
        tokens = torch.randint(special, V, (B, T), generator=gen)
        labels = torch.full((B, T), -100, dtype=torch.long)
        for b in range(B):   # P distinct positions in [1, T)
            pos = 1 + torch.randperm(T - 1, generator=gen)[:P]
            labels[b, pos] = torch.randint(special, V, (P,), generator=gen)
        nsp = torch.randint(0, 2, (B,), generator=gen)
        return tokens, labels, nsp

    def step():
        tokens, labels, nsp = batch()
        opt.zero_grad(set_to_none=True)
        out = model(input_ids=tokens, token_type_ids=segments, attention_mask=attention,
                    labels=labels, next_sentence_label=nsp)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return out.loss.item()

    for _ in range(args.warmup):
        step()
    times, loss = [], float("nan")
    for _ in range(args.steps):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
    total = sum(times)
    tokens_per_s = B * T * args.steps / total
    rss = peak_rss_gib()
    result = {"tool": "pytorch", "shape": args.shape, **shape, "threads": threads,
              "params": n_params, "steps": args.steps, "warmup": args.warmup, "seconds": total,
              "step_s_min": min(times), "step_s_median": sorted(times)[len(times) // 2],
              "tokens_per_s": tokens_per_s,
              "matmul_gflops": flops_step * args.steps / total / 1e9,
              "matmul_gflops_hf_head": flops_step_hf * args.steps / total / 1e9,
              "peak_rss_gb": rss, "last_loss": loss, "torch": torch.__version__,
              "transformers": transformers.__version__}
    print(f"{args.steps} timed steps after {args.warmup} warm-up: {total:.2f} s, "
          f"{tokens_per_s:,.0f} tokens/s, step median {result['step_s_median'] * 1e3:.0f} ms, "
          f"matmul {result['matmul_gflops']:.1f} GFLOP/s as loom counts "
          f"({result['matmul_gflops_hf_head']:.1f} with HF's MLM head on every position), "
          f"peak RSS {rss:.2f} GiB, loss {loss:.3f}")
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
