#!/usr/bin/env python3
"""PyTorch's side of bench/bert.sh's learning comparison: Hugging Face BertForPreTraining
(float32, no dropout) trained on loom's own examples - dumped by bench/bert_dump_examples in
loom's global order with loom's masking - with loom's optimizer and schedule, then
evaluated on loom's held-out examples.

  bert_learn_torch.py --train DUMP_DIR --heldout DUMP_DIR --steps S [--batch-size 16]
                      [--n-layer 4 --n-head 4 --hidden 256 --intermediate 1024]
                      [--lr 5e-4 --warmup-steps W --weight-decay 0.01 --grad-clip 1.0]
                      [--threads 2] [--seed 1] [--eval-examples N]
  bert_learn_torch.py --calibrate K ...   time K steps (after 2) and print steps/s only
  bert_learn_torch.py --from-export DIR --heldout DUMP_DIR   evaluate a model exported by
      `loom export --format safetensors` instead of training one (loom's own evaluation of
      the same examples must agree: the check that the dump is loom's held-out data)

Step s trains on dumped rows [s B, (s + 1) B) (loom's global batch s), the loss is HF's
(mean MLM loss over the batch's masked positions + mean NSP loss: the same as loom's, Note
[BERT data parallelism] in models/bert/bert.h). The optimizer is loom's bert: AdamW (betas
0.9 / 0.999, eps 1e-6, decoupled weight decay on everything but biases and LayerNorm
weights), clipping by the global norm, lr = bert_lr (models/bert/bert.cpp): linear warm-up
lr (s + 1) / W for s < W, then linear decay to 0 at s = S. The initialisation is HF's own
(loom's draws the same distributions, not the same numbers).

Evaluation over the first N held-out rows (all by default): MLM accuracy (argmax of the
prediction logits at the masked positions against the original ids) and loss, NSP
accuracy and loss, and the chance levels: always predicting the most frequent original id
among those masked positions, and the larger NSP class's share (0.5 by construction, up to
sampling). Prints a last line `RESULT {json}`.
"""
import argparse
import json
import os
import sys
import time


def load_dump(torch, np, path):
    arrays = {k: np.load(os.path.join(path, k + ".npy")) for k in
              ("input_ids", "segment_ids", "lengths", "mlm_positions", "mlm_labels", "nsp_labels")}
    info = json.load(open(os.path.join(path, "info.json")))
    return {k: torch.from_numpy(v.astype(np.int64)) for k, v in arrays.items()}, info


def batch(torch, d, first, count):
    """HF's inputs for dumped rows [first, first + count): dense labels, -100 off the masked
    positions (a position's slot with label -1 is padding of mlm_positions)."""
    ids = d["input_ids"][first:first + count]
    T = ids.shape[1]
    attention = (torch.arange(T)[None, :] < d["lengths"][first:first + count, None]).long()
    labels = torch.full_like(ids, -100)
    pos, lab = d["mlm_positions"][first:first + count], d["mlm_labels"][first:first + count]
    rows = torch.arange(count)[:, None].expand_as(pos)
    keep = lab >= 0
    labels[rows[keep], pos[keep]] = lab[keep]
    return dict(input_ids=ids, token_type_ids=d["segment_ids"][first:first + count],
                attention_mask=attention, labels=labels,
                next_sentence_label=d["nsp_labels"][first:first + count])


def bert_lr(lr, warmup, steps, step):
    """models/bert/bert.cpp bert_lr, linear schedule, lr_min 0."""
    if warmup > 0 and step < warmup:
        return lr * (step + 1) / warmup
    if steps <= warmup:
        return lr
    frac = min(max((step - warmup) / (steps - warmup), 0.0), 1.0)
    return lr * (1.0 - frac)


def evaluate(torch, model, d, count, batch_size):
    model.eval()
    sums = dict(mlm_loss=0.0, mlm=0, mlm_correct=0, nsp_loss=0.0, nsp=0, nsp_correct=0)
    ce = torch.nn.functional.cross_entropy
    with torch.no_grad():
        for first in range(0, count, batch_size):
            n = min(batch_size, count - first)
            x = batch(torch, d, first, n)
            # The encoder, then the heads on the masked rows only (BertForPreTraining's
            # cls.predictions on every row gives the same logits there, at T / P times the cost).
            seq, pooled = model.bert(input_ids=x["input_ids"], token_type_ids=x["token_type_ids"],
                                     attention_mask=x["attention_mask"])[:2]
            keep = x["labels"] >= 0
            logits, target = model.cls.predictions(seq[keep]), x["labels"][keep]
            nsp_logits = model.cls.seq_relationship(pooled)
            sums["mlm_loss"] += ce(logits, target, reduction="sum").item()
            sums["mlm"] += int(target.numel())
            sums["mlm_correct"] += int((logits.argmax(-1) == target).sum())
            nsp = x["next_sentence_label"]
            sums["nsp_loss"] += ce(nsp_logits, nsp, reduction="sum").item()
            sums["nsp"] += n
            sums["nsp_correct"] += int((nsp_logits.argmax(-1) == nsp).sum())
    model.train()
    return dict(mlm_loss=sums["mlm_loss"] / max(1, sums["mlm"]),
                mlm_accuracy=sums["mlm_correct"] / max(1, sums["mlm"]),
                nsp_loss=sums["nsp_loss"] / max(1, sums["nsp"]),
                nsp_accuracy=sums["nsp_correct"] / max(1, sums["nsp"]),
                masked_positions=sums["mlm"], examples=count)


def chance(torch, d, count):
    """The accuracy of always answering the most frequent masked id / the larger NSP class."""
    lab = d["mlm_labels"][:count]
    lab = lab[lab >= 0]
    mlm = torch.bincount(lab).max().item() / max(1, lab.numel())
    nsp = d["nsp_labels"][:count].float().mean().item()
    return dict(mlm_chance=mlm, mlm_chance_id=int(torch.bincount(lab).argmax()),
                nsp_chance=max(nsp, 1.0 - nsp))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train")
    ap.add_argument("--from-export", help="evaluate this exported model, no training")
    ap.add_argument("--heldout")
    ap.add_argument("--steps", type=int, default=0, help="optimizer steps (the schedule's length)")
    ap.add_argument("--calibrate", type=int, default=0, help="time this many steps, print steps/s")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--intermediate", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--warmup-steps", type=int, default=-1, help="default: steps / 10")
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--eval-examples", type=int, default=0, help="0: every dumped held-out row")
    a = ap.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(a.threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")   # see bench/gpt_torch.py
    import numpy as np
    import torch
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bert_torch import bert_adamw, bert_model, peak_rss_gib
    torch.set_num_threads(a.threads)

    if a.from_export:
        from transformers import BertForPreTraining
        model = BertForPreTraining.from_pretrained(a.from_export).float()
        held, _ = load_dump(torch, np, a.heldout)
        n = held["input_ids"].shape[0]
        n = min(n, a.eval_examples) if a.eval_examples > 0 else n
        result = {"tool": "loom-export", **evaluate(torch, model, held, n, 32), **chance(torch, held, n)}
        print(f"{a.from_export} ({n} held-out examples): MLM accuracy {result['mlm_accuracy']:.4f}, loss "
              f"{result['mlm_loss']:.4f}; NSP accuracy {result['nsp_accuracy']:.4f}, loss {result['nsp_loss']:.4f}")
        print("RESULT " + json.dumps(result))
        return 0
    if not a.train:
        ap.error("--train is required unless --from-export")
    train, info = load_dump(torch, np, a.train)
    T, B = train["input_ids"].shape[1], a.batch_size
    shape = dict(vocab=info["vocab_size"], n_layer=a.n_layer, n_head=a.n_head, hidden=a.hidden,
                 intermediate=a.intermediate, seq_len=T)
    steps = a.calibrate + 2 if a.calibrate else a.steps
    if steps * B > train["input_ids"].shape[0]:
        sys.exit(f"bert_learn_torch.py: {steps} steps of {B} need {steps * B} training examples, "
                 f"{a.train} holds {train['input_ids'].shape[0]}")
    warmup = a.warmup_steps if a.warmup_steps >= 0 else steps // 10
    model = bert_model(torch, shape, a.seed)
    opt = bert_adamw(torch, model, lr=a.lr, weight_decay=a.weight_decay)

    def step(s):
        for g in opt.param_groups:
            g["lr"] = bert_lr(a.lr, warmup, steps, s)
        out = model(**batch(torch, train, s * B, B))
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        if a.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), a.grad_clip)
        opt.step()
        return out.loss.item()

    if a.calibrate:
        step(0)
        step(1)
        t0 = time.perf_counter()
        for s in range(2, steps):
            step(s)
        secs = time.perf_counter() - t0
        print(f"calibration: {a.calibrate} steps in {secs:.2f} s")
        print("RESULT " + json.dumps({"steps_per_s": a.calibrate / secs,
                                      "tokens_per_s": a.calibrate * B * T / secs}))
        return 0

    print(f"Hugging Face BertForPreTraining {shape}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M "
          f"parameters; {steps} steps of {B} examples, lr {a.lr} warm-up {warmup}, linear decay, "
          f"weight decay {a.weight_decay}, clip {a.grad_clip}, {a.threads} threads", flush=True)
    t0 = time.perf_counter()
    losses = []
    for s in range(steps):
        losses.append(step(s))
        if (s + 1) % max(1, steps // 10) == 0 or s + 1 == steps:
            el = time.perf_counter() - t0
            print(f"step {s + 1}/{steps}: loss {losses[-1]:.4f}, {el:.0f} s, "
                  f"{(s + 1) * B * T / el:,.0f} tokens/s", flush=True)
    train_s = time.perf_counter() - t0
    result = {"tool": "pytorch", "steps": steps, "batch_size": B, "seq_len": T, "lr": a.lr,
              "warmup_steps": warmup, "train_s": train_s, "tokens_per_s": steps * B * T / train_s,
              "final_loss": losses[-1] if losses else float("nan")}
    if a.heldout:
        held, _ = load_dump(torch, np, a.heldout)
        n = held["input_ids"].shape[0]
        n = min(n, a.eval_examples) if a.eval_examples > 0 else n
        t1 = time.perf_counter()
        result.update(evaluate(torch, model, held, n, 32))
        result["eval_s"] = time.perf_counter() - t1
        result.update(chance(torch, held, n))
        print(f"held-out ({n} examples, {result['masked_positions']} masked positions): MLM accuracy "
              f"{result['mlm_accuracy']:.4f} (chance {result['mlm_chance']:.4f}), loss {result['mlm_loss']:.4f}; "
              f"NSP accuracy {result['nsp_accuracy']:.4f} (chance {result['nsp_chance']:.4f}), "
              f"loss {result['nsp_loss']:.4f}")
    result["peak_rss_gb"] = peak_rss_gib()
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
