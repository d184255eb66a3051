#!/usr/bin/env python3
"""The independent reference for loom's BERT network (run with the .venv that
scripts/setup.sh makes: Debian's python3-torch + Hugging Face transformers).

  bert_reference.py CASE.h5 REF.h5
      reads a case a loom test wrote, runs Hugging Face's BertForPreTraining in float64 on
      it and writes the logits, the loss and every parameter's gradient to REF.h5.
  bert_reference.py --self-test
      builds random cases (padding, ignored MLM slots, an ignored NSP label, a pad token
      inside the batch) and checks HF's float64 gradients against central finite
      differences of its own loss on a few entries of several parameters, the pad row
      rule of nn.Embedding(padding_idx) (only the tied decoder reaches that row), that the
      padded keys change nothing, and the REF.h5 layout.

CASE.h5 (written by the loom test), row-major:
  /  attrs  vocab_size (V), hidden (C), n_layer, n_head, intermediate (I), max_position,
            type_vocab, pad_id: integers; ln_eps: LayerNorm epsilon as text ("1e-12")
  /model/<name>   float64, loom's parameter names (DESIGN.md's, the original BERT's:
                  embeddings.*, encoder.layer.<i>.*, pooler.dense.*, cls.*), which are
                  BertForPreTraining's state_dict names less the "bert." before the first
                  three (hf_name), and its layout (linear weights [out, in]), without the
                  decoder's tied copies (cls.predictions.decoder.weight =
                  embeddings.word_embeddings.weight, cls.predictions.decoder.bias =
                  cls.predictions.bias)
  /batch/tokens, /batch/segments, /batch/key_mask  (B, T) int64; key_mask 1 = real token
  /batch/mlm_positions (B, P) int64 positions in [0, T), -1 = empty slot
  /batch/mlm_labels    (B, P) int64 the token to predict there, -1 = none (a position may
                       carry at most one label)
  /batch/nsp_labels    (B) int64 0 / 1, -1 = ignored

REF.h5:
  /  attrs  reference: "transformers <version> BertForPreTraining"; torch_version
  /loss        (1,) HF's total loss: mean MLM cross-entropy over the labelled slots +
               mean NSP cross-entropy over the counted labels
  /mlm_loss, /nsp_loss (1,) the two means
  /mlm_logits  (B, P, V) prediction_logits at each slot's position (zeros for -1)
  /nsp_logits  (B, 2) seq_relationship_logits
  /grad/<name> one per /model/<name>, same shape: the gradient of /loss

The model: BertConfig(hidden_act="gelu" (erf), dropout 0, eager attention) in float64 with
attention_mask = key_mask and token_type_ids = segments; labels = mlm_labels scattered to
their positions, -100 elsewhere; next_sentence_label = nsp_labels with -1 -> -100.
"""
import argparse
import os
import sys
import tempfile

import numpy as np

torch = None   # imported in main(): --help works without torch

ATTRS = ["vocab_size", "hidden", "n_layer", "n_head", "intermediate", "max_position",
         "type_vocab", "pad_id"]
BATCH = ["tokens", "segments", "key_mask", "mlm_positions", "mlm_labels", "nsp_labels"]


def hf_name(name):
    """BertForPreTraining's name for loom's parameter `name` (its BertModel is `bert`)."""
    return name if name.startswith("cls.") else "bert." + name


def _import_torch():
    global torch
    import torch as _torch
    torch = _torch
    torch.set_num_threads(int(os.environ.get("LOOM_TORCH_THREADS", "2")))


class Case:
    def __init__(self, attrs, params, batch):
        for k in ATTRS:
            setattr(self, k, int(attrs[k]))
        self.ln_eps = float(attrs["ln_eps"])
        self.params = params    # name -> float64 ndarray
        self.batch = batch      # name -> int64 ndarray

    def expected_shapes(self):
        C, I, V = self.hidden, self.intermediate, self.vocab_size
        s = {"embeddings.word_embeddings.weight": (V, C),
             "embeddings.position_embeddings.weight": (self.max_position, C),
             "embeddings.token_type_embeddings.weight": (self.type_vocab, C),
             "embeddings.LayerNorm.weight": (C,), "embeddings.LayerNorm.bias": (C,)}
        for i in range(self.n_layer):
            p = f"encoder.layer.{i}."
            for name, w in [("attention.self.query", (C, C)), ("attention.self.key", (C, C)),
                            ("attention.self.value", (C, C)), ("attention.output.dense", (C, C)),
                            ("attention.output.LayerNorm", (C,)), ("intermediate.dense", (I, C)),
                            ("output.dense", (C, I)), ("output.LayerNorm", (C,))]:
                s[p + name + ".weight"] = w
                s[p + name + ".bias"] = (w[0],)
        s.update({"pooler.dense.weight": (C, C), "pooler.dense.bias": (C,),
                  "cls.predictions.bias": (V,),
                  "cls.predictions.transform.dense.weight": (C, C),
                  "cls.predictions.transform.dense.bias": (C,),
                  "cls.predictions.transform.LayerNorm.weight": (C,),
                  "cls.predictions.transform.LayerNorm.bias": (C,),
                  "cls.seq_relationship.weight": (2, C), "cls.seq_relationship.bias": (2,)})
        return s

    def validate(self, where):
        def fail(msg):
            raise SystemExit(f"{where}: {msg}")
        want = self.expected_shapes()
        for name in sorted(set(want) ^ set(self.params)):
            fail(f"/model/{name} is " + ("missing" if name in want else "not a BERT parameter"))
        for name, shape in want.items():
            if tuple(self.params[name].shape) != shape:
                fail(f"/model/{name} has shape {self.params[name].shape}, expected {shape}")
        b = self.batch
        B, T = b["tokens"].shape
        for k in ["segments", "key_mask"]:
            if b[k].shape != (B, T):
                fail(f"/batch/{k} has shape {b[k].shape}, expected {(B, T)}")
        if b["mlm_positions"].shape != b["mlm_labels"].shape or b["mlm_positions"].shape[0] != B:
            fail("/batch/mlm_positions and /batch/mlm_labels must both be (B, P)")
        if b["nsp_labels"].shape != (B,):
            fail(f"/batch/nsp_labels has shape {b['nsp_labels'].shape}, expected {(B,)}")
        if T > self.max_position:
            fail(f"T = {T} exceeds max_position {self.max_position}")
        for b_ in range(B):
            labelled = [int(t) for t, y in zip(b["mlm_positions"][b_], b["mlm_labels"][b_])
                        if y != -1]
            if len(labelled) != len(set(labelled)) or min(labelled, default=0) < 0:
                fail(f"sequence {b_}: a labelled MLM slot at -1 or two labels at one position")


def _attr(v):
    a = np.asarray(v)
    if a.dtype.kind in "SO":
        x = a.reshape(-1)[0]
        return x.decode() if isinstance(x, bytes) else x
    return a.reshape(-1)[0].item()


def read_case(path):
    import h5py
    with h5py.File(path, "r") as f:
        attrs = {k: _attr(f.attrs[k]) for k in ATTRS + ["ln_eps"]}
        params = {}
        f["model"].visititems(lambda n, o: params.__setitem__(n, np.asarray(o[()], np.float64))
                              if isinstance(o, h5py.Dataset) else None)
        batch = {k: np.asarray(f["batch/" + k][()], np.int64) for k in BATCH}
    case = Case(attrs, params, batch)
    case.validate(path)
    return case


def write_case(path, case):
    import h5py
    with h5py.File(path, "w") as f:
        for k in ATTRS:
            f.attrs[k] = np.int64(getattr(case, k))
        f.attrs["ln_eps"] = repr(case.ln_eps)
        for name, value in case.params.items():
            f[f"model/{name}"] = value.astype(np.float64)
        for k in BATCH:
            f[f"batch/{k}"] = case.batch[k].astype(np.int64)


def run_hf(case, untie=False):
    import transformers
    from transformers import BertConfig, BertForPreTraining
    transformers.logging.set_verbosity_error()
    cfg = BertConfig(vocab_size=case.vocab_size, hidden_size=case.hidden,
                     num_hidden_layers=case.n_layer, num_attention_heads=case.n_head,
                     intermediate_size=case.intermediate, hidden_act="gelu",
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                     max_position_embeddings=case.max_position, type_vocab_size=case.type_vocab,
                     layer_norm_eps=case.ln_eps, pad_token_id=case.pad_id,
                     attn_implementation="eager")
    model = BertForPreTraining(cfg).double().eval()   # eval: no dropout (it is 0 anyway)
    assert model.config._attn_implementation == "eager", model.config._attn_implementation
    named = dict(model.named_parameters())   # tied parameters appear once, by their first name
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert model.cls.predictions.decoder.bias is model.cls.predictions.bias
    with torch.no_grad():
        for name, value in case.params.items():
            named[hf_name(name)].copy_(torch.from_numpy(value))
    if untie:   # the decoder on a copy of the word embeddings (pad_row_check)
        model.cls.predictions.decoder.weight = torch.nn.Parameter(
            model.bert.embeddings.word_embeddings.weight.detach().clone())
    b = {k: torch.from_numpy(v) for k, v in case.batch.items()}
    B, T = b["tokens"].shape
    labels = torch.full((B, T), -100, dtype=torch.long)
    pos, lab = b["mlm_positions"], b["mlm_labels"]
    for i in range(B):
        for p in range(pos.shape[1]):
            if lab[i, p] != -1:
                labels[i, pos[i, p]] = lab[i, p]
    nsp = b["nsp_labels"].clone()
    nsp[nsp == -1] = -100
    out = model(input_ids=b["tokens"], token_type_ids=b["segments"],
                attention_mask=b["key_mask"], labels=labels, next_sentence_label=nsp)
    V = case.vocab_size
    mlm_loss = torch.nn.functional.cross_entropy(out.prediction_logits.reshape(-1, V),
                                                 labels.reshape(-1), ignore_index=-100)
    nsp_loss = torch.nn.functional.cross_entropy(out.seq_relationship_logits, nsp,
                                                 ignore_index=-100)
    out.loss.backward()
    gathered = torch.zeros(B, pos.shape[1], V, dtype=torch.float64)
    for i in range(B):
        for p in range(pos.shape[1]):
            if pos[i, p] >= 0:
                gathered[i, p] = out.prediction_logits[i, pos[i, p]].detach()
    grads = {}
    for name in case.params:
        p = named[hf_name(name)]
        grads[name] = (torch.zeros_like(p) if p.grad is None else p.grad).detach().numpy().copy()
    decoder = model.cls.predictions.decoder.weight.grad
    return {"decoder_grad": decoder.detach().numpy().copy() if untie else None,
            "loss": out.loss.item(), "mlm_loss": mlm_loss.item(), "nsp_loss": nsp_loss.item(),
            "mlm_logits": gathered.numpy(), "nsp_logits": out.seq_relationship_logits.detach().numpy(),
            "grads": grads, "reference": f"transformers {transformers.__version__} BertForPreTraining"}


def write_ref(path, r):
    import h5py
    with h5py.File(path, "w") as f:
        f.attrs["reference"] = r["reference"]
        f.attrs["torch_version"] = str(torch.__version__)
        for k in ["loss", "mlm_loss", "nsp_loss"]:
            f.create_dataset(k, data=np.array([r[k]], dtype=np.float64))
        f.create_dataset("mlm_logits", data=r["mlm_logits"].astype(np.float64))
        f.create_dataset("nsp_logits", data=r["nsp_logits"].astype(np.float64))
        for name, g in r["grads"].items():
            f.create_dataset(f"grad/{name}", data=g.astype(np.float64))


# ---- self-test ---------------------------------------------------------------------------

def random_case(rng, B, T, P, **shape):
    attrs = dict(shape, ln_eps=1e-12)
    case = Case(attrs, {}, {})
    for name, s in case.expected_shapes().items():
        base = 1.0 if "LayerNorm.weight" in name else 0.0
        case.params[name] = base + 0.3 * rng.standard_normal(s)
    V = case.vocab_size
    tokens = rng.integers(0, V, size=(B, T))
    lengths = rng.integers(2, T + 1, size=B)
    lengths[0] = T
    lengths[B - 1] = max(2, T - 2)                # padding in the last sequence
    key_mask = (np.arange(T)[None, :] < lengths[:, None]).astype(np.int64)
    tokens[key_mask == 0] = case.pad_id
    tokens[0, 1] = case.pad_id                    # a pad token among the real ones
    segments = rng.integers(0, case.type_vocab, size=(B, T))
    positions = np.stack([rng.permutation(T)[:P] for _ in range(B)])
    labels = rng.integers(0, V, size=(B, P))
    labels[rng.random((B, P)) < 0.25] = -1
    labels[0, 0] = 1
    positions[B - 1, P - 1] = -1                  # an empty slot
    labels[B - 1, P - 1] = -1
    nsp = rng.integers(0, 2, size=B)
    nsp[B - 1] = -1                               # an ignored NSP label
    nsp[0] = 1
    case.batch = dict(tokens=tokens, segments=segments, key_mask=key_mask,
                      mlm_positions=positions, mlm_labels=labels, nsp_labels=nsp)
    return case


def finite_difference_check(case, result, rng, eps=1e-6):
    names = ["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
             "embeddings.token_type_embeddings.weight",
             "encoder.layer.0.attention.self.key.weight",
             "encoder.layer.0.attention.self.query.bias",
             f"encoder.layer.{case.n_layer - 1}.output.LayerNorm.weight",
             "pooler.dense.weight", "cls.predictions.bias",
             "cls.predictions.transform.dense.weight", "cls.seq_relationship.weight"]
    worst = 0.0
    for name in names:
        shape = case.params[name].shape
        picks = [tuple(int(rng.integers(0, s)) for s in shape) for _ in range(2)]
        if name.endswith("word_embeddings.weight"):
            # Not the pad row: padding_idx makes its gradient the decoder's part only, not
            # the derivative of the loss (pad_row_check covers it); a row the batch uses.
            used = [int(v) for v in np.unique(case.batch["tokens"]) if v != case.pad_id]
            picks = [(used[0], int(rng.integers(0, shape[1]))), (used[-1], 0)]
        for j in picks:
            losses = []
            for sign in (+1, -1):
                c = Case.__new__(Case)
                c.__dict__.update(case.__dict__)
                c.params = {n: v.copy() for n, v in case.params.items()}
                c.params[name][j] += sign * eps
                losses.append(run_hf(c)["loss"])
            fd = (losses[0] - losses[1]) / (2 * eps)
            g = result["grads"][name][j]
            err = abs(fd - g) / max(1e-6, abs(fd), abs(g))
            worst = max(worst, err)
            if err > 1e-6:
                raise AssertionError(f"finite difference of {name}{list(j)}: {fd!r} vs grad {g!r}")
    return worst


def pad_row_check(case, result):
    """nn.Embedding(padding_idx): the lookup gives the pad row no gradient, the tied decoder
    does. Untie the decoder (a copy of the word embeddings): the word table's pad row must
    get nothing, the decoder's must carry the whole tied pad row, and the tied gradient of
    every row must be the sum of the two. Then padded keys: changing a padded token changes
    no [CLS] output."""
    untied = run_hf(case, untie=True)
    w = "embeddings.word_embeddings.weight"
    tied = result["grads"][w]
    assert (case.batch["tokens"] == case.pad_id).any(), "the case holds no pad token"
    assert not np.abs(untied["grads"][w][case.pad_id]).any(), "the lookup reached the pad row"
    total = untied["grads"][w] + untied["decoder_grad"]
    assert np.abs(total - tied).max() <= 1e-12 * max(1.0, np.abs(tied).max()), "tied != sum"
    assert np.abs(tied[case.pad_id]).max() > 0, "the decoder's pad row gradient is missing"
    b = case.batch
    padded = np.argwhere(b["key_mask"] == 0)
    assert len(padded), "the case has no padding"
    i, t = padded[0]
    c2 = Case.__new__(Case)
    c2.__dict__.update(case.__dict__)
    c2.batch = {k: v.copy() for k, v in b.items()}
    c2.batch["tokens"][i, t] = (case.pad_id + 1) % case.vocab_size
    r2 = run_hf(c2)
    assert np.abs(r2["nsp_logits"][i] - result["nsp_logits"][i]).max() < 1e-12, \
        "a padded key changed the [CLS] output"


def self_test():
    rng = np.random.default_rng(4321)
    configs = [dict(vocab_size=13, hidden=8, n_layer=2, n_head=2, intermediate=12,
                    max_position=10, type_vocab=2, pad_id=0, B=3, T=7, P=4),
               dict(vocab_size=11, hidden=12, n_layer=1, n_head=3, intermediate=20,
                    max_position=6, type_vocab=3, pad_id=2, B=2, T=6, P=6)]
    with tempfile.TemporaryDirectory() as tmp:
        for k, cfg in enumerate(configs):
            B, T, P = cfg.pop("B"), cfg.pop("T"), cfg.pop("P")
            case = random_case(rng, B, T, P, **cfg)
            path = os.path.join(tmp, f"case{k}.h5")
            write_case(path, case)
            case = read_case(path)
            hf = run_hf(case)
            assert abs(hf["loss"] - (hf["mlm_loss"] + hf["nsp_loss"])) < 1e-12
            fd = finite_difference_check(case, hf, rng)
            pad_row_check(case, hf)
            ref = os.path.join(tmp, f"ref{k}.h5")
            assert main_compute(path, ref) == 0
            import h5py
            with h5py.File(ref, "r") as f:
                assert f["mlm_logits"].shape == (B, P, case.vocab_size)
                assert f["nsp_logits"].shape == (B, 2)
                grads = set()
                f["grad"].visititems(lambda n, o: grads.add(n) if isinstance(o, h5py.Dataset) else None)
                assert grads == set(case.params), grads ^ set(case.params)
                assert f["loss"][0] == hf["loss"]
            print(f"self-test case {k} ({cfg}, B={B} T={T} P={P}): finite differences worst "
                  f"rel err {fd:.2e}, loss {hf['loss']:.6f}")
    print("self-test passed")
    return 0


def main_compute(case_path, ref_path):
    write_ref(ref_path, run_hf(read_case(case_path)))
    return 0


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("case", nargs="?")
    ap.add_argument("ref", nargs="?")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args(argv)
    _import_torch()
    if args.self_test:
        return self_test()
    if not args.case or not args.ref:
        ap.error("CASE.h5 and REF.h5 are required (or --self-test)")
    return main_compute(args.case, args.ref)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
