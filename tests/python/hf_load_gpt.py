#!/usr/bin/env python3
"""Loads loom's GPT export with Hugging Face transformers, as a user would, and runs it.

  hf_load_gpt.py EXPORT_DIR CASE.h5 OUT.h5
      GPT2LMHeadModel.from_pretrained(EXPORT_DIR) in float32, eval mode; fails (exit 1)
      when any weight is missing, unexpected or of the wrong shape (from_pretrained itself
      would only warn and initialise it at random). Runs CASE.h5's /batch/inputs (B, T)
      int32 and writes OUT.h5 /logits (B, T, V) float32. When EXPORT_DIR holds vocab.json,
      also loads GPT2TokenizerFast.from_pretrained(EXPORT_DIR) and, if CASE.h5 has a root
      attr `text` (UTF-8 string), writes its ids as OUT.h5 /token_ids (N,) int32 (no special
      tokens added). OUT.h5 attrs: transformers_version, torch_version, loaded_keys.

The export layout this accepts (checked against transformers 4.46.3 + torch 1.13.1 by
saving a GPT2LMHeadModel with save_pretrained(safe_serialization=True) and loading variants):

  EXPORT_DIR/config.json
      {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
       "vocab_size": V, "n_positions": P, "n_ctx": P, "n_embd": C, "n_layer": L,
       "n_head": NH, "n_inner": null (= 4C), "activation_function": "gelu_new",
       "layer_norm_epsilon": 1e-05, "tie_word_embeddings": true,
       "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
       "scale_attn_weights": true, "scale_attn_by_inverse_layer_idx": false,
       "reorder_and_upcast_attn": false,
       "bos_token_id": E, "eos_token_id": E (E = the id of <|endoftext|> in vocab.json),
       "torch_dtype": "float32"}
      Only model_type and the five sizes are strictly needed (the rest default to GPT-2's
      values, which are loom's except the dropouts, 0.1 by default: write 0.0 so that
      fine-tuning in HF matches loom's training).
  EXPORT_DIR/model.safetensors
      __metadata__ MUST hold {"format": "pt"}: without metadata from_pretrained crashes
      (AttributeError), with another format ("np") it refuses the file.
      Keys: plain GPT-2 names as the hub's gpt2 uses, "wte.weight" (V, C), "wpe.weight"
      (P, C), "h.<i>.ln_1.weight"/".bias", "h.<i>.attn.c_attn.weight" (C, 3C) [in, out],
      "h.<i>.attn.c_attn.bias" (3C), "h.<i>.attn.c_proj.weight" (C, C) [in, out],
      "h.<i>.mlp.c_fc.weight" (C, 4C), "h.<i>.mlp.c_proj.weight" (4C, C), their biases,
      "h.<i>.ln_2.*", "ln_f.weight"/".bias"; F32. The "transformer." prefix
      (what save_pretrained writes) is accepted too, but do not mix the two.
      Conv1D weights are [in, out]: the TRANSPOSE of loom's [out, in]. A square c_proj
      (C, C) left untransposed loads without any complaint and gives wrong logits, so the
      export test must compare logits, not just load.
      Biases: every one must exist. A bias-free loom model exports zeros: missing biases
      are reported as missing keys and initialised by HF (this script refuses that).
      No "lm_head.weight" (the head is tied to wte): with plain names, a file holding
      lm_head.weight is refused ("state dictionary ... corrupted"). The "h.<i>.attn.bias"
      / "attn.masked_bias" buffers of old checkpoints are not needed (ignored if present).
  EXPORT_DIR/vocab.json, EXPORT_DIR/merges.txt (optional, for the tokenizer)
      GPT-2's byte-level BPE files; GPT2TokenizerFast builds itself from them (no
      tokenizer.json needed), add_prefix_space false, bos = eos = unk = "<|endoftext|>",
      which should be in vocab.json (else HF appends it as a new id).
"""
import os
import sys


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    export_dir, case_path, out_path = argv
    import h5py
    import numpy as np
    import torch
    import transformers
    from transformers import GPT2LMHeadModel, GPT2TokenizerFast
    torch.set_num_threads(int(os.environ.get("LOOM_TORCH_THREADS", "2")))
    transformers.logging.set_verbosity_error()

    try:
        model, info = GPT2LMHeadModel.from_pretrained(export_dir, torch_dtype=torch.float32,
                                                      output_loading_info=True)
    except Exception as e:   # noqa: BLE001 -- report whatever transformers raised, and fail
        print(f"{export_dir}: GPT2LMHeadModel.from_pretrained failed: {type(e).__name__}: {e}",
              file=sys.stderr)
        return 1
    problems = [f"{kind}: {info[kind]}" for kind in ("missing_keys", "unexpected_keys",
                                                     "mismatched_keys", "error_msgs") if info.get(kind)]
    if problems:
        print(f"{export_dir}: the export does not match GPT2LMHeadModel:\n  " + "\n  ".join(problems),
              file=sys.stderr)
        return 1
    if model.lm_head.weight.data_ptr() != model.transformer.wte.weight.data_ptr():
        print(f"{export_dir}: lm_head is not tied to wte", file=sys.stderr)
        return 1
    model.eval()

    with h5py.File(case_path, "r") as f:
        inputs = torch.from_numpy(np.asarray(f["batch/inputs"][()], np.int64))
        text = f.attrs.get("text")
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    with torch.no_grad():
        logits = model(input_ids=inputs).logits.float().numpy()     # (B, T, V)

    ids = None
    if os.path.exists(os.path.join(export_dir, "vocab.json")):
        tok = GPT2TokenizerFast.from_pretrained(export_dir)
        if text is not None:
            ids = np.asarray(tok(str(text), add_special_tokens=False).input_ids, np.int32)

    with h5py.File(out_path, "w") as f:
        f.create_dataset("logits", data=logits.astype(np.float32))
        if ids is not None:
            f.create_dataset("token_ids", data=ids)
        f.attrs["transformers_version"] = str(transformers.__version__)
        f.attrs["torch_version"] = str(torch.__version__)
        f.attrs["loaded_keys"] = len(model.state_dict())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
