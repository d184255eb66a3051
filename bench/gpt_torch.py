#!/usr/bin/env python3
"""PyTorch's side of bench/gpt.sh: a GPT-2-architecture model (nanoGPT's layout, plain torch,
float32) doing forward + backward + AdamW steps on random tokens, on N threads (default 2).

  gpt_torch.py --shape tiny|124m [--steps S] [--warmup W] [--threads N] [--no-bias]
               [--vocab V --n-layer L --n-head H --d-model C --seq-len T --batch-size B]

  tiny: vocab 8192, 4 layers, 4 heads, d 256, seq 256, batch 8
  124m: vocab 50257, 12 layers, 12 heads, d 768, seq 256, batch 4 (GPT-2 small)

Prints the BLAS torch uses, the timed steps' tokens/s, the model FLOP rate (6 N + 12 L C T
FLOPs per token, N = parameters with the tied head counted once), the peak RSS of this
process (getrusage ru_maxrss), and a last line `RESULT {json}` for the script. Run one
shape per process so the peak RSS is that shape's. The module also holds the model that
bench/gpt_shakespeare_torch.py trains.
"""
import argparse
import json
import math
import os
import resource
import sys
import time

SHAPES = {
    "tiny": dict(vocab=8192, n_layer=4, n_head=4, d_model=256, seq_len=256, batch_size=8),
    "124m": dict(vocab=50257, n_layer=12, n_head=12, d_model=768, seq_len=256, batch_size=4),
}


def set_threads_before_import(argv):
    """OpenBLAS and OpenMP read their thread counts when torch loads: set them first."""
    threads = "2"
    if "--threads" in argv:
        threads = argv[argv.index("--threads") + 1]
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = threads
    # libgomp's default spin-waiting makes every small op cost milliseconds when the cores
    # are shared (measured: 2.9 s vs 0.25 s per Shakespeare step on a loaded 2-core host).
    # Passive waiting is what a shared machine needs; export OMP_WAIT_POLICY to override.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return int(threads)


def build_model_classes(torch):
    nn = torch.nn
    F = torch.nn.functional

    class CausalSelfAttention(nn.Module):
        def __init__(self, d_model, n_head, seq_len, bias):
            super().__init__()
            self.n_head = n_head
            self.c_attn = nn.Linear(d_model, 3 * d_model, bias=bias)
            self.c_proj = nn.Linear(d_model, d_model, bias=bias)
            mask = torch.tril(torch.ones(seq_len, seq_len, dtype=torch.bool))
            self.register_buffer("mask", mask.view(1, 1, seq_len, seq_len), persistent=False)

        def forward(self, x):                                   # x: (B, T, C)
            B, T, C = x.shape
            hs = C // self.n_head
            q, k, v = self.c_attn(x).split(C, dim=2)
            q, k, v = (t.view(B, T, self.n_head, hs).transpose(1, 2) for t in (q, k, v))
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))   # (B, NH, T, T)
            att = att.masked_fill(~self.mask[:, :, :T, :T], float("-inf")).softmax(dim=-1)
            y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
            return self.c_proj(y)

    class Block(nn.Module):
        def __init__(self, d_model, n_head, seq_len, bias):
            super().__init__()
            self.ln_1 = nn.LayerNorm(d_model, elementwise_affine=True)
            self.attn = CausalSelfAttention(d_model, n_head, seq_len, bias)
            self.ln_2 = nn.LayerNorm(d_model, elementwise_affine=True)
            self.c_fc = nn.Linear(d_model, 4 * d_model, bias=bias)
            self.gelu = nn.GELU(approximate="tanh")
            self.c_proj = nn.Linear(4 * d_model, d_model, bias=bias)
            if not bias:   # torch 1.13's LayerNorm always has a bias: keep it zero and frozen
                for ln in (self.ln_1, self.ln_2):
                    ln.bias.requires_grad_(False)

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.c_proj(self.gelu(self.c_fc(self.ln_2(x))))

    class GPT(nn.Module):
        def __init__(self, vocab, n_layer, n_head, d_model, seq_len, bias=True):
            super().__init__()
            self.wte = nn.Embedding(vocab, d_model)
            self.wpe = nn.Embedding(seq_len, d_model)
            self.h = nn.ModuleList(Block(d_model, n_head, seq_len, bias) for _ in range(n_layer))
            self.ln_f = nn.LayerNorm(d_model)
            if not bias:
                self.ln_f.bias.requires_grad_(False)
            self.lm_head = nn.Linear(d_model, vocab, bias=False)
            self.lm_head.weight = self.wte.weight          # tied, as GPT-2
            self.apply(self._init)
            for name, p in self.named_parameters():        # GPT-2's scaled residual init
                if name.endswith("c_proj.weight"):
                    nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

        @staticmethod
        def _init(m):
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

        def forward(self, idx, targets=None):                # idx, targets: (B, T)
            T = idx.shape[1]
            pos = torch.arange(T, device=idx.device)
            x = self.wte(idx) + self.wpe(pos)
            for block in self.h:
                x = block(x)
            logits = self.lm_head(self.ln_f(x))               # (B, T, V)
            if targets is None:
                return logits, None
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1),
                                   ignore_index=-1)
            return logits, loss

        def optimizer(self, lr, weight_decay, betas, eps=1e-8):
            """AdamW with weight decay on the 2-D weights only (nanoGPT's grouping)."""
            params = [p for p in self.parameters() if p.requires_grad]
            decay = [p for p in params if p.dim() >= 2]
            no_decay = [p for p in params if p.dim() < 2]
            return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                      {"params": no_decay, "weight_decay": 0.0}],
                                     lr=lr, betas=betas, eps=eps)

    return GPT


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


def main(argv):
    threads = set_threads_before_import(argv)
    import torch
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    for k in ("vocab", "n_layer", "n_head", "d_model", "seq_len", "batch_size"):
        ap.add_argument("--" + k.replace("_", "-"), type=int, dest=k)
    ap.add_argument("--steps", type=int, default=10, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-bias", action="store_true", help="nanoGPT's bias=False")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args(argv)
    shape = dict(SHAPES[args.shape])
    shape.update({k: getattr(args, k) for k in shape if getattr(args, k) is not None})

    torch.set_num_threads(threads)
    torch.manual_seed(args.seed)
    GPT = build_model_classes(torch)
    model = GPT(shape["vocab"], shape["n_layer"], shape["n_head"], shape["d_model"],
                shape["seq_len"], bias=not args.no_bias)
    model.train()
    opt = model.optimizer(lr=6e-4, weight_decay=0.1, betas=(0.9, 0.95))
    n_params = sum(p.numel() for p in model.parameters())   # the tied head once
    B, T, L, C = shape["batch_size"], shape["seq_len"], shape["n_layer"], shape["d_model"]
    flops_per_token = 6 * n_params + 12 * L * C * T

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads "
          f"(OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}), {blas_info(torch)}")
    print(f"shape {args.shape}: {shape}, bias {not args.no_bias}, {n_params / 1e6:.2f} M parameters")

    gen = torch.Generator().manual_seed(args.seed)

    def step():
        x = torch.randint(0, shape["vocab"], (B, T), generator=gen)
        y = torch.randint(0, shape["vocab"], (B, T), generator=gen)
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    times, loss = [], float("nan")
    for _ in range(args.steps):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
    total = sum(times)
    tokens_per_s = B * T * args.steps / total
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2   # KiB -> GiB
    result = {"tool": "pytorch", "shape": args.shape, **shape, "bias": not args.no_bias,
              "threads": threads, "params": n_params, "steps": args.steps,
              "warmup": args.warmup, "seconds": total, "step_s_min": min(times),
              "step_s_median": sorted(times)[len(times) // 2], "tokens_per_s": tokens_per_s,
              "model_gflops": flops_per_token * tokens_per_s / 1e9, "peak_rss_gb": rss_gb,
              "last_loss": loss, "torch": torch.__version__}
    print(f"{args.steps} timed steps after {args.warmup} warm-up: {total:.2f} s, "
          f"{tokens_per_s:,.0f} tokens/s, step median {result['step_s_median'] * 1e3:.0f} ms, "
          f"model {result['model_gflops']:.1f} GFLOP/s, peak RSS {rss_gb:.2f} GiB, loss {loss:.3f}")
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
