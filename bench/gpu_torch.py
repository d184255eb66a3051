#!/usr/bin/env python3
"""PyTorch's side of bench/gpu.sh: GPT-2 124M or BERT-base training steps on one GPU, eager
or torch.compile, in the precision loom runs (bf16 autocast with fp32 master weights, or
tf32 / fp32), on random ids, with fused AdamW and gradient clipping at 1.0 as loom's step.

  gpu_torch.py --model gpt|bert [--compile] [--precision bf16|tf32|fp32] [--steps 20]
               [--warmup 3] [--batch B] [--seq T] [--predictions P] [--peak-tflops 989.4]
  gpt:  nanoGPT's GPT-2 (bench/gpt_torch.py's model: vocab 50257, 12 layers, 12 heads,
        d 768, tied head), seq 1024, batch 8; attention through
        F.scaled_dot_product_attention (flash)
  bert: Hugging Face BertForPreTraining (BERT-base) when transformers is installed, else
        the same architecture in plain torch (said in the output), seq 128, batch 64, the
        MLM labels on P positions per sequence as loom's
  --matmul-peak: only time a bf16 8192^3 matmul (the machine's ceiling) and print TFLOP/s.

Prints tokens/s, the matmul FLOP rate (the same count as loom's: forward + backward of every
GEMM, attention's two products at full T x T) and MFU against --peak-tflops, and a last line
`RESULT {json}`. Exits 2 with a message when no GPU is visible.
"""
import argparse
import json
import math
import os
import sys
import time


def gpt_matmul_flops(B, T, L, C, V):
    per_block = 2.0 * B * T * (12 * C * C) + 4.0 * B * T * T * C
    return 3.0 * (L * per_block + 2.0 * B * T * V * C)


def bert_matmul_flops(B, T, P, L, C, I, V):
    N = B * T
    per_block = 2.0 * N * (4 * C * C + 2 * C * I) + 4.0 * B * T * T * C
    heads = 2.0 * B * (C * C + 2 * C) + 2.0 * B * P * (C * C + C * V)
    return 3.0 * (L * per_block + heads)


def build_gpt(torch, V, L, H, C, T):
    nn, F = torch.nn, torch.nn.functional

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
            self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
            self.fc, self.proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

        def forward(self, x):
            B_, T_, _ = x.shape
            q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
            q, k, v = (t.view(B_, T_, H, C // H).transpose(1, 2) for t in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.c_proj(y.transpose(1, 2).contiguous().view(B_, T_, C))
            return x + self.proj(F.gelu(self.fc(self.ln_2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
            self.h = nn.ModuleList(Block() for _ in range(L))
            self.ln_f = nn.LayerNorm(C)
            self.apply(lambda m: nn.init.normal_(m.weight, std=0.02)
                       if isinstance(m, (nn.Linear, nn.Embedding)) else None)

        def forward(self, idx, targets):
            pos = torch.arange(idx.shape[1], device=idx.device)
            x = self.wte(idx) + self.wpe(pos)
            for b in self.h:
                x = b(x)
            logits = F.linear(self.ln_f(x), self.wte.weight)   # tied head
            return F.cross_entropy(logits.float().view(-1, V), targets.view(-1))

    return GPT()


def build_bert(torch, V, L, H, C, I, T):
    """(model, description). model(ids, segments, mask, mlm_labels, nsp) -> loss."""
    try:
        from transformers import BertConfig, BertForPreTraining
        cfg = BertConfig(vocab_size=V, hidden_size=C, num_hidden_layers=L, num_attention_heads=H,
                         intermediate_size=I, max_position_embeddings=512, hidden_act="gelu",
                         hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        try:
            hf = BertForPreTraining(cfg, attn_implementation="sdpa")
        except (TypeError, ValueError):   # a transformers without the argument: its default
            hf = BertForPreTraining(cfg)

        class Wrap(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.m = hf

            def forward(self, ids, seg, mask, labels, nsp):
                return self.m(input_ids=ids, token_type_ids=seg, attention_mask=mask, labels=labels,
                              next_sentence_label=nsp).loss

        return Wrap(), "Hugging Face BertForPreTraining (%s attention)" % getattr(
            hf.config, "_attn_implementation", "default")
    except ImportError:
        pass
    nn, F = torch.nn, torch.nn.functional

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv, self.out = nn.Linear(C, 3 * C), nn.Linear(C, C)
            self.ln1, self.ln2 = nn.LayerNorm(C, eps=1e-12), nn.LayerNorm(C, eps=1e-12)
            self.fc, self.proj = nn.Linear(C, I), nn.Linear(I, C)

        def forward(self, x, bias):
            B_, T_, _ = x.shape
            q, k, v = self.qkv(x).split(C, dim=2)
            q, k, v = (t.view(B_, T_, H, C // H).transpose(1, 2) for t in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
            x = self.ln1(x + self.out(y.transpose(1, 2).reshape(B_, T_, C)))
            return self.ln2(x + self.proj(F.gelu(self.fc(x))))

    class Bert(nn.Module):
        def __init__(self):
            super().__init__()
            self.word, self.pos, self.typ = nn.Embedding(V, C), nn.Embedding(512, C), nn.Embedding(2, C)
            self.ln = nn.LayerNorm(C, eps=1e-12)
            self.layers = nn.ModuleList(Layer() for _ in range(L))
            self.pool, self.nsp = nn.Linear(C, C), nn.Linear(C, 2)
            self.mlm_dense, self.mlm_ln = nn.Linear(C, C), nn.LayerNorm(C, eps=1e-12)
            self.mlm_bias = nn.Parameter(torch.zeros(V))

        def forward(self, ids, seg, mask, labels, nsp):
            pos = torch.arange(ids.shape[1], device=ids.device)
            x = self.ln(self.word(ids) + self.pos(pos) + self.typ(seg))
            bias = torch.zeros(mask.shape, dtype=x.dtype, device=x.device).masked_fill(mask == 0, -1e4)
            bias = bias[:, None, None, :]
            for layer in self.layers:
                x = layer(x, bias)
            nsp_logits = self.nsp(torch.tanh(self.pool(x[:, 0])))
            h = self.mlm_ln(F.gelu(self.mlm_dense(x)))   # every position, as HF's head
            logits = F.linear(h, self.word.weight, self.mlm_bias)
            return (F.cross_entropy(logits.float().view(-1, V), labels.view(-1), ignore_index=-100) +
                    F.cross_entropy(nsp_logits.float(), nsp))

    return Bert(), "plain-torch BERT-base (transformers is not installed)"


def matmul_peak(torch):
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t0, n = time.perf_counter(), 20
    for _ in range(n):
        a @ b
    torch.cuda.synchronize()
    return 2.0 * 8192 ** 3 * n / (time.perf_counter() - t0) / 1e12


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["gpt", "bert"], default="gpt")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--precision", choices=["bf16", "tf32", "fp32"], default="bf16")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--seq", type=int)
    ap.add_argument("--predictions", type=int)
    ap.add_argument("--peak-tflops", type=float, default=989.4)
    ap.add_argument("--matmul-peak", action="store_true")
    a = ap.parse_args(argv)
    import torch
    if not torch.cuda.is_available():
        print("gpu_torch.py: torch %s sees no CUDA device (CUDA_VISIBLE_DEVICES=%s): run it on a GPU machine"
              % (torch.__version__, os.environ.get("CUDA_VISIBLE_DEVICES", "(unset)")), file=sys.stderr)
        return 2
    if a.matmul_peak:
        tf = matmul_peak(torch)
        print("bf16 8192^3 matmul: %.1f TFLOP/s on %s" % (tf, torch.cuda.get_device_name(0)))
        print("RESULT " + json.dumps({"tool": "torch-matmul", "tflops": tf}))
        return 0
    torch.backends.cuda.matmul.allow_tf32 = a.precision == "tf32"
    torch.backends.cudnn.allow_tf32 = a.precision == "tf32"
    torch.manual_seed(1234)
    dev = "cuda"
    if a.model == "gpt":
        V, L, H, C = 50257, 12, 12, 768
        B, T = a.batch or 8, a.seq or 1024
        model = build_gpt(torch, V, L, H, C, T).to(dev)
        what = "nanoGPT GPT-2 124M (sdpa attention)"
        flops = gpt_matmul_flops(B, T, L, C, V)

        def batch():
            return (torch.randint(0, V, (B, T), device=dev), torch.randint(0, V, (B, T), device=dev))
    else:
        V, L, H, C, I = 30522, 12, 12, 768, 3072
        B, T = a.batch or 64, a.seq or 128
        P = a.predictions or (80 if T >= 512 else 20)
        model, what = build_bert(torch, V, L, H, C, I, T)
        model = model.to(dev)
        flops = bert_matmul_flops(B, T, P, L, C, I, V)

        def batch():
            ids = torch.randint(1, V, (B, T), device=dev)
            seg = (torch.arange(T, device=dev) >= T // 2).long().expand(B, T).contiguous()
            mask = torch.ones(B, T, dtype=torch.long, device=dev)
            labels = torch.full((B, T), -100, dtype=torch.long, device=dev)
            pos = 1 + torch.arange(P, device=dev) * (T - 1) // P
            labels[:, pos] = ids[:, pos]
            nsp = torch.randint(0, 2, (B,), device=dev)
            return ids, seg, mask, labels, nsp
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, fused=True)
    run = torch.compile(model) if a.compile else model
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=a.precision == "bf16")

    def step():
        inputs = batch()
        with autocast:
            loss = run(*inputs)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    for _ in range(a.warmup):
        step()
    torch.cuda.synchronize()
    times, loss = [], float("nan")
    for _ in range(a.steps):
        t0 = time.perf_counter()
        loss = step().item()   # the host waits for the step, as loom's does
        times.append(time.perf_counter() - t0)
    total = sum(times)
    tokens_per_s = B * T * a.steps / total
    tflops = flops * a.steps / total / 1e12
    mode = "torch.compile" if a.compile else "eager"
    print("torch %s on %s: %s, %s, %s, %.2f M parameters, batch %d x %d tokens" %
          (torch.__version__, torch.cuda.get_device_name(0), what, mode, a.precision, params / 1e6, B, T))
    print("%d timed steps after %d warm-up: %.3f s, %.0f tokens/s, step median %.1f ms, %.1f TFLOP/s, "
          "MFU %.1f %% of %.1f, loss %.3f" % (a.steps, a.warmup, total, tokens_per_s,
                                               sorted(times)[len(times) // 2] * 1e3, tflops,
                                               100 * tflops / a.peak_tflops, a.peak_tflops, loss))
    print("RESULT " + json.dumps({"tool": "pytorch-" + ("compile" if a.compile else "eager"), "model": a.model,
                                  "precision": a.precision, "batch": B, "seq": T, "steps": a.steps,
                                  "seconds": total, "tokens_per_s": tokens_per_s, "tflops": tflops,
                                  "mfu": tflops / a.peak_tflops, "loss": loss,
                                  "torch": torch.__version__, "what": what}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
