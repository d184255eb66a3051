#!/usr/bin/env python3
"""PyTorch's side of bench/bert_net_bench.cpp: Hugging Face BertForPreTraining in float32
doing forward + backward (+ an AdamW step unless --no-step) on random tokens, N threads.

  bert_net_torch.py [--shape tiny|base] [--threads 2] [--steps 10] [--warmup 2]
                    [--batch 16] [--seq 128] [--predictions 20] [--no-step]

The MLM labels sit on P positions per sequence (-100 elsewhere), as loom's; HF's head still
computes the logits of every position (that is what BertForPreTraining does). Prints
ms/step and tokens/s.
"""
import argparse
import os
import sys
import time


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", choices=["tiny", "base"], default="tiny")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--predictions", type=int, default=20)
    ap.add_argument("--no-step", action="store_true")
    a = ap.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(a.threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch
    import transformers
    from transformers import BertConfig, BertForPreTraining
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    shape = dict(vocab_size=8192, num_hidden_layers=4, num_attention_heads=4, hidden_size=256,
                 intermediate_size=1024) if a.shape == "tiny" else {}
    cfg = BertConfig(**shape, hidden_act="gelu", hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0)
    model = BertForPreTraining(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    B, T, P, V = a.batch, a.seq, a.predictions, cfg.vocab_size
    tokens = torch.randint(1, V, (B, T))
    segments = (torch.arange(T) >= T // 2).long().expand(B, T).contiguous()
    mask = torch.ones(B, T, dtype=torch.long)
    labels = torch.full((B, T), -100, dtype=torch.long)
    pos = 1 + (torch.arange(P) * (T - 1)) // P
    labels[:, pos] = torch.randint(0, V, (B, P))
    nsp = torch.arange(B) % 2

    def step():
        opt.zero_grad(set_to_none=True)
        out = model(input_ids=tokens, token_type_ids=segments, attention_mask=mask,
                    labels=labels, next_sentence_label=nsp)
        out.loss.backward()
        if not a.no_step:
            opt.step()
        return out.loss.item()

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    secs = time.perf_counter() - t0
    print(f"torch {torch.__version__} transformers {transformers.__version__} "
          f"BertForPreTraining {a.shape} ({model.config._attn_implementation} attention): "
          f"B={B} T={T} P={P} threads={a.threads} step={'no' if a.no_step else 'AdamW'}: "
          f"{1e3 * secs / a.steps:.1f} ms/step, {B * T * a.steps / secs:.0f} tokens/s, "
          f"loss {loss:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
