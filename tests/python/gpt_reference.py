#!/usr/bin/env python3
"""The independent reference for loom's GPT (run with the .venv that scripts/setup.sh makes:
Debian's python3-torch + Hugging Face transformers, see scripts/python-requirements.txt).

  gpt_reference.py CASE.h5 REF.h5 [--impl both|hf|torch] [--tolerance 1e-9]
      reads a case a loom test wrote, computes logits, loss and every parameter's gradient
      in float64, writes REF.h5. --impl both (the default) runs Hugging Face's
      GPT2LMHeadModel AND the plain-torch implementation below, writes HF's figures and
      exits 1 if the two disagree by more than --tolerance (relative to each array's
      largest magnitude).
  gpt_reference.py --self-test
      builds random cases (with and without biases, ignored targets, T < n_positions),
      checks HF against plain torch, central finite differences of the loss for a few
      entries of several parameters, the frozen zero biases and the REF.h5 layout.

CASE.h5 (written by the loom test), everything row-major:
  /  attrs  n_layer, n_head, d_model (C), n_positions (P), vocab_size (V): integers
            bias: 1 when linear layers and LayerNorms have biases, 0 when none exist
            ln_eps: LayerNorm epsilon (1e-5)
  /model/<name>   float32, loom's checkpoint names and layout (linear weights [out, in]):
      wte.weight (V, C)      wpe.weight (P, C)            ln_f.weight, ln_f.bias (C)
      h.<i>.ln_1.weight, h.<i>.ln_1.bias (C)              h.<i>.ln_2.weight / .bias (C)
      h.<i>.attn.c_attn.weight (3C, C), .bias (3C)   rows: q [0, C), k [C, 2C), v [2C, 3C);
                                                     head h uses rows h*C/NH .. (h+1)*C/NH
                                                     of each (GPT-2's split)
      h.<i>.attn.c_proj.weight (C, C), .bias (C)
      h.<i>.mlp.c_fc.weight (4C, C), .bias (4C)      h.<i>.mlp.c_proj.weight (C, 4C), .bias (C)
    The LM head is tied to wte (logits = ln_f(x) @ wte.weight^T, no head bias). With
    bias=0 there are no .bias datasets at all.
  /batch/inputs  (B, T) int32 token ids, T <= P
  /batch/targets (B, T) int32: the token to predict at each position (already shifted by
                 the caller: usually inputs shifted left by one); -1 = ignored

REF.h5:
  /  attrs  loss: float64, mean cross-entropy over the targets that are not -1 (NaN if all
            are ignored; also the dataset /loss (1,) for readers without float attributes); reference: "transformers <version> GPT2LMHeadModel" or
            "plain torch"; torch_version
  /logits          (B, T, V) float64
  /grad/<name>     float64, one per /model/<name>, same shape and layout ([out, in]); the
                   gradient of `loss`; wte's includes the tied head's contribution

The model: GPT-2 (pre-LayerNorm blocks, causal self-attention scaled by 1/sqrt(C/NH),
gelu_new = tanh approximation, final LayerNorm, tied head), no dropout. Missing biases
(bias=0) are zeros that are frozen, so no gradient is reported for them.
"""
import argparse
import math
import os
import sys
import tempfile

import numpy as np

torch = None   # imported in main(): --help works without torch


def _import_torch():
    global torch
    import torch as _torch
    torch = _torch
    torch.set_num_threads(int(os.environ.get("LOOM_TORCH_THREADS", "2")))


# ---- the case ----------------------------------------------------------------------------

class Case:
    def __init__(self, attrs, params, inputs, targets):
        self.n_layer = int(attrs["n_layer"])
        self.n_head = int(attrs["n_head"])
        self.d_model = int(attrs["d_model"])
        self.n_positions = int(attrs["n_positions"])
        self.vocab_size = int(attrs["vocab_size"])
        self.bias = bool(int(attrs["bias"]))
        self.ln_eps = float(attrs["ln_eps"])
        self.params = params            # name -> float32 ndarray, loom layout
        self.inputs = inputs            # (B, T) int
        self.targets = targets          # (B, T) int, -1 ignored

    def expected_shapes(self):
        C, V, P = self.d_model, self.vocab_size, self.n_positions
        shapes = {"wte.weight": (V, C), "wpe.weight": (P, C), "ln_f.weight": (C,)}
        if self.bias:
            shapes["ln_f.bias"] = (C,)
        for i in range(self.n_layer):
            h = f"h.{i}."
            for name, w, b in [("ln_1", (C,), (C,)), ("ln_2", (C,), (C,)),
                               ("attn.c_attn", (3 * C, C), (3 * C,)), ("attn.c_proj", (C, C), (C,)),
                               ("mlp.c_fc", (4 * C, C), (4 * C,)), ("mlp.c_proj", (C, 4 * C), (C,))]:
                shapes[h + name + ".weight"] = w
                if self.bias:
                    shapes[h + name + ".bias"] = b
        return shapes

    def validate(self, where):
        def fail(msg):
            raise SystemExit(f"{where}: {msg}")
        if self.d_model % self.n_head:
            fail(f"d_model {self.d_model} is not a multiple of n_head {self.n_head}")
        want = self.expected_shapes()
        for name in sorted(set(want) - set(self.params)):
            fail(f"/model/{name} is missing (bias={int(self.bias)})")
        for name in sorted(set(self.params) - set(want)):
            fail(f"/model/{name} is not a parameter of this GPT (bias={int(self.bias)})")
        for name, shape in want.items():
            if tuple(self.params[name].shape) != shape:
                fail(f"/model/{name} has shape {self.params[name].shape}, expected {shape}")
        if self.inputs.ndim != 2 or self.inputs.shape != self.targets.shape:
            fail(f"/batch/inputs {self.inputs.shape} and /batch/targets {self.targets.shape} "
                 "must both be (B, T)")
        if self.inputs.shape[1] > self.n_positions:
            fail(f"T = {self.inputs.shape[1]} exceeds n_positions {self.n_positions}")
        if self.inputs.min() < 0 or self.inputs.max() >= self.vocab_size:
            fail("/batch/inputs holds ids outside [0, vocab_size)")
        t = self.targets[self.targets != -1]
        if t.size and (t.min() < 0 or t.max() >= self.vocab_size):
            fail("/batch/targets holds ids outside [0, vocab_size) other than -1")


def _attr(v):
    a = np.asarray(v)
    if a.dtype.kind in "SO":
        return a.reshape(-1)[0]
    return a.reshape(-1)[0].item()


def read_case(path):
    import h5py
    with h5py.File(path, "r") as f:
        attrs = {k: _attr(f.attrs[k]) for k in
                 ["n_layer", "n_head", "d_model", "n_positions", "vocab_size", "bias", "ln_eps"]}
        params = {}
        f["model"].visititems(lambda n, o: params.__setitem__(n, np.asarray(o[()], np.float32))
                              if isinstance(o, h5py.Dataset) else None)
        case = Case(attrs, params, np.asarray(f["batch/inputs"][()], np.int64),
                    np.asarray(f["batch/targets"][()], np.int64))
    case.validate(path)
    return case


def write_case(path, case):
    import h5py
    with h5py.File(path, "w") as f:
        for k in ["n_layer", "n_head", "d_model", "n_positions", "vocab_size"]:
            f.attrs[k] = np.int64(getattr(case, k))
        f.attrs["bias"] = np.int64(case.bias)
        f.attrs["ln_eps"] = np.float64(case.ln_eps)
        for name, value in case.params.items():
            f[f"model/{name}"] = value.astype(np.float32)
        f["batch/inputs"] = case.inputs.astype(np.int32)
        f["batch/targets"] = case.targets.astype(np.int32)


def write_ref(path, result, reference):
    import h5py
    with h5py.File(path, "w") as f:
        f.attrs["loss"] = np.float64(result["loss"])
        f.create_dataset("loss", data=np.array([result["loss"]], dtype=np.float64))
        f.attrs["reference"] = str(reference)
        f.attrs["torch_version"] = str(torch.__version__)
        f.create_dataset("logits", data=result["logits"].astype(np.float64))
        for name, g in result["grads"].items():
            f.create_dataset(f"grad/{name}", data=g.astype(np.float64))


def _loss(logits, targets):
    V = logits.shape[-1]
    return torch.nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1),
                                             ignore_index=-1, reduction="mean")


# ---- path 1: Hugging Face GPT2LMHeadModel ------------------------------------------------

def _conv1d_names(case):
    """(loom name, HF parameter) pairs; Conv1D weights are stored [in, out] in HF."""
    names = ["wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias"]
    for i in range(case.n_layer):
        for m in ["ln_1", "ln_2", "attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]:
            names += [f"h.{i}.{m}.weight", f"h.{i}.{m}.bias"]
    return names


def run_hf(case):
    import transformers
    from transformers import GPT2Config, GPT2LMHeadModel
    transformers.logging.set_verbosity_error()
    cfg = GPT2Config(vocab_size=case.vocab_size, n_positions=case.n_positions,
                     n_embd=case.d_model, n_layer=case.n_layer, n_head=case.n_head,
                     activation_function="gelu_new", layer_norm_epsilon=case.ln_eps,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=True,
                     scale_attn_weights=True, scale_attn_by_inverse_layer_idx=False,
                     reorder_and_upcast_attn=False, use_cache=False)
    try:
        model = GPT2LMHeadModel(cfg, attn_implementation="eager")
    except TypeError:   # older transformers: eager is the only implementation
        model = GPT2LMHeadModel(cfg)
    model = model.double()
    model.train()   # dropout is 0 everywhere; train mode changes nothing else
    hf_params = dict(model.transformer.named_parameters())
    frozen = []
    with torch.no_grad():
        for name in _conv1d_names(case):
            p = hf_params[name]
            if name in case.params:
                v = torch.from_numpy(case.params[name].astype(np.float64))
                is_conv1d = name.endswith(".weight") and (".attn." in name or ".mlp." in name)
                p.copy_(v.t() if is_conv1d else v)
            else:       # bias=0: the bias exists in HF's module but is zero and frozen
                assert name.endswith(".bias"), name
                p.zero_()
                p.requires_grad_(False)
                frozen.append(p)
    assert model.lm_head.weight is model.transformer.wte.weight, "LM head is not tied"
    inputs = torch.from_numpy(case.inputs)
    targets = torch.from_numpy(case.targets)
    logits = model(input_ids=inputs).logits              # (B, T, V)
    loss = _loss(logits, targets)
    loss.backward()
    grads = {}
    for name in case.params:
        g = hf_params[name].grad
        g = torch.zeros_like(hf_params[name]) if g is None else g
        is_conv1d = name.endswith(".weight") and (".attn." in name or ".mlp." in name)
        grads[name] = (g.t() if is_conv1d else g).detach().numpy().copy()
    for p in frozen:
        assert p.grad is None and not p.abs().max().item(), "a frozen bias moved"
    return {"logits": logits.detach().numpy(), "loss": loss.item(), "grads": grads,
            "reference": f"transformers {transformers.__version__} GPT2LMHeadModel"}


# ---- path 2: plain torch, written from the GPT-2 paper's description ---------------------

def _gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def run_plain(case):
    P = {n: torch.tensor(v.astype(np.float64), requires_grad=True) for n, v in case.params.items()}
    F = torch.nn.functional
    C, NH = case.d_model, case.n_head
    hs = C // NH

    def linear(x, name):
        y = x @ P[name + ".weight"].t()
        return y + P[name + ".bias"] if case.bias else y

    def layernorm(x, name):
        mean = x.mean(-1, keepdim=True)
        var = ((x - mean) ** 2).mean(-1, keepdim=True)
        y = (x - mean) / torch.sqrt(var + case.ln_eps) * P[name + ".weight"]
        return y + P[name + ".bias"] if case.bias else y

    idx = torch.from_numpy(case.inputs)
    B, T = idx.shape
    x = P["wte.weight"][idx] + P["wpe.weight"][:T]           # (B, T, C)
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for i in range(case.n_layer):
        h = f"h.{i}."
        qkv = linear(layernorm(x, h + "ln_1"), h + "attn.c_attn")   # (B, T, 3C)
        q, k, v = (t.reshape(B, T, NH, hs).transpose(1, 2) for t in qkv.split(C, dim=2))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)             # (B, NH, T, T)
        att = att.masked_fill(~causal, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + linear(y, h + "attn.c_proj")
        x = x + linear(_gelu_new(linear(layernorm(x, h + "ln_2"), h + "mlp.c_fc")), h + "mlp.c_proj")
    logits = layernorm(x, "ln_f") @ P["wte.weight"].t()              # (B, T, V)
    loss = _loss(logits, torch.from_numpy(case.targets))
    loss.backward()
    return {"logits": logits.detach().numpy(), "loss": loss.item(),
            "grads": {n: p.grad.numpy().copy() for n, p in P.items()}, "reference": "plain torch"}


# ---- comparison, self-test ---------------------------------------------------------------

def rel_diff(a, b):
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0), 1e-300)
    return float(np.abs(a - b).max(initial=0.0) / scale)


def compare(a, b, tolerance):
    """Lines describing every array where a and b differ by more than tolerance."""
    bad = []
    d = rel_diff(a["logits"], b["logits"])
    if d > tolerance:
        bad.append(f"logits differ: {d:.3g}")
    if not (abs(a["loss"] - b["loss"]) <= tolerance * max(1.0, abs(a["loss"]))):
        bad.append(f"loss differs: {a['loss']!r} vs {b['loss']!r}")
    for name in a["grads"]:
        d = rel_diff(a["grads"][name], b["grads"][name])
        if d > tolerance:
            bad.append(f"grad/{name} differs: {d:.3g}")
    return bad


def random_case(rng, n_layer, n_head, d_model, n_positions, vocab_size, bias, B, T):
    case = Case({"n_layer": n_layer, "n_head": n_head, "d_model": d_model,
                 "n_positions": n_positions, "vocab_size": vocab_size, "bias": int(bias),
                 "ln_eps": 1e-5}, {}, None, None)
    for name, shape in case.expected_shapes().items():
        if name.endswith(".weight") and ("ln_" in name):
            v = 1.0 + 0.1 * rng.standard_normal(shape)
        elif name.endswith(".bias"):
            v = 0.1 * rng.standard_normal(shape)
        else:
            v = 0.3 * rng.standard_normal(shape)    # large enough that attention is not flat
        case.params[name] = v.astype(np.float32)
    case.inputs = rng.integers(0, vocab_size, size=(B, T))
    case.targets = rng.integers(0, vocab_size, size=(B, T))
    case.targets[rng.random((B, T)) < 0.2] = -1
    case.targets[0, 0] = 3                         # at least one counted target
    return case


def finite_difference_check(case, result, rng, entries_per_param=2, eps=1e-5):
    """Central differences of Hugging Face's float64 loss against `result`'s gradients."""
    worst = 0.0
    names = ["wte.weight", "wpe.weight", "h.0.attn.c_attn.weight", "h.0.mlp.c_proj.weight",
             f"h.{case.n_layer - 1}.ln_2.weight", "ln_f.weight"]
    if case.bias:
        names += ["h.0.attn.c_attn.bias", "ln_f.bias"]
    for name in names:
        shape = case.params[name].shape
        for _ in range(entries_per_param):
            j = tuple(int(rng.integers(0, s)) for s in shape)
            if name == "wte.weight":        # a row that the batch uses: embedding and head
                j = (int(case.inputs[0, 0]), j[1])
            losses = []
            for sign in (+1, -1):
                c = Case.__new__(Case)      # the same case with float64 parameters, one moved
                c.__dict__.update(case.__dict__)
                c.params = {n: v.astype(np.float64) for n, v in case.params.items()}
                c.params[name][j] += sign * eps
                losses.append(run_hf(c)["loss"])
            fd = (losses[0] - losses[1]) / (2 * eps)
            g = result["grads"][name][j]
            err = abs(fd - g) / max(1e-6, abs(fd), abs(g))
            worst = max(worst, err)
            if err > 1e-6:
                raise AssertionError(f"finite difference of {name}{list(j)}: {fd!r} vs grad {g!r}")
    return worst


def self_test():
    rng = np.random.default_rng(1234)
    configs = [dict(n_layer=2, n_head=2, d_model=8, n_positions=12, vocab_size=11, bias=True, B=2, T=7),
               dict(n_layer=2, n_head=4, d_model=16, n_positions=8, vocab_size=13, bias=False, B=3, T=8),
               dict(n_layer=1, n_head=1, d_model=4, n_positions=5, vocab_size=7, bias=True, B=1, T=1)]
    with tempfile.TemporaryDirectory() as tmp:
        for k, cfg in enumerate(configs):
            case = random_case(rng, **cfg)
            path = os.path.join(tmp, f"case{k}.h5")
            write_case(path, case)
            case = read_case(path)     # through the file, as a loom test's case arrives
            hf, plain = run_hf(case), run_plain(case)
            bad = compare(hf, plain, 1e-10)
            assert not bad, f"case {k}: HF and plain torch disagree: {bad}"
            fd = finite_difference_check(case, hf, rng)
            ref = os.path.join(tmp, f"ref{k}.h5")
            assert main_compute(path, ref, "both", 1e-10) == 0
            import h5py
            with h5py.File(ref, "r") as f:
                assert f["logits"].dtype == np.float64
                assert f["logits"].shape == case.inputs.shape + (case.vocab_size,)
                grads = set()
                f["grad"].visititems(lambda n, o: grads.add(n) if isinstance(o, h5py.Dataset) else None)
                assert grads == set(case.params), grads ^ set(case.params)
                for n in grads:
                    assert f["grad"][n].shape == case.params[n].shape
                assert np.isfinite(f.attrs["loss"])
                assert abs(f.attrs["loss"] - hf["loss"]) == 0.0
            # the tied head: wte's gradient has rows the inputs never touch but targets' logits do
            unused = sorted(set(range(case.vocab_size)) - set(case.inputs.ravel().tolist()))
            if unused:
                assert np.abs(hf["grads"]["wte.weight"][unused]).max() > 0, "tied head gradient missing"
            print(f"self-test case {k} ({cfg}): HF vs plain torch max rel diff "
                  f"{max(rel_diff(hf['logits'], plain['logits']), *[rel_diff(hf['grads'][n], plain['grads'][n]) for n in hf['grads']]):.2e}, "
                  f"finite differences worst rel err {fd:.2e}, loss {hf['loss']:.6f}")
    print("self-test passed")
    return 0


def main_compute(case_path, ref_path, impl, tolerance):
    case = read_case(case_path)
    results = {}
    if impl in ("hf", "both"):
        results["hf"] = run_hf(case)
    if impl in ("torch", "both"):
        results["torch"] = run_plain(case)
    chosen = results.get("hf") or results["torch"]
    write_ref(ref_path, chosen, chosen["reference"])
    if impl == "both":
        bad = compare(results["hf"], results["torch"], tolerance)
        if bad:
            print(f"{case_path}: Hugging Face and plain torch disagree:\n  " + "\n  ".join(bad),
                  file=sys.stderr)
            return 1
    return 0


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("case", nargs="?")
    ap.add_argument("ref", nargs="?")
    ap.add_argument("--impl", choices=["both", "hf", "torch"], default="both")
    ap.add_argument("--tolerance", type=float, default=1e-9)
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args(argv)
    _import_torch()
    if args.self_test:
        return self_test()
    if not args.case or not args.ref:
        ap.error("CASE.h5 and REF.h5 are required (or --self-test)")
    return main_compute(args.case, args.ref, args.impl, args.tolerance)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
