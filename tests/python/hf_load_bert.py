#!/usr/bin/env python3
"""Loads loom's BERT export with Hugging Face transformers, as a user would, and runs it.

  hf_load_bert.py EXPORT_DIR CASE.h5 OUT.h5
      BertForPreTraining.from_pretrained(EXPORT_DIR) in float32, eval mode. Prints
      transformers' loading info and fails (exit 1) when a weight is missing, unexpected or
      of the wrong shape, except the two tied decoder keys (cls.predictions.decoder.weight,
      tied to bert.embeddings.word_embeddings.weight, and cls.predictions.decoder.bias,
      tied to cls.predictions.bias), which Note [BERT export layout] leaves out; it then
      checks that both are tied, and that model.safetensors' keys are exactly the model's
      state_dict keys less those two (the "bert." prefix included). Runs CASE.h5's /batch/tokens, /batch/segments and
      /batch/key_mask (B, T) int and writes OUT.h5 /mlm_logits (B, T, V) and /nsp_logits
      (B, 2) float32. Then BertTokenizerFast.from_pretrained(EXPORT_DIR) encodes CASE.h5's
      root attr `text` (UTF-8, no special tokens added) into OUT.h5 /token_ids (N,) int64.
      OUT.h5 attrs: transformers_version, torch_version, missing_keys (the tied ones seen).
"""
import os
import sys

TIED = {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    export_dir, case_path, out_path = argv
    import h5py
    import numpy as np
    import torch
    import transformers
    from transformers import BertForPreTraining, BertTokenizerFast
    torch.set_num_threads(int(os.environ.get("LOOM_TORCH_THREADS", "2")))
    transformers.logging.set_verbosity_error()

    try:
        model, info = BertForPreTraining.from_pretrained(export_dir, torch_dtype=torch.float32,
                                                         output_loading_info=True)
    except Exception as e:   # noqa: BLE001 -- report whatever transformers raised, and fail
        print(f"{export_dir}: BertForPreTraining.from_pretrained failed: {type(e).__name__}: {e}",
              file=sys.stderr)
        return 1
    print(f"{export_dir}: loading info {info}")
    problems = [f"missing_keys: {sorted(set(info['missing_keys']) - TIED)}"] \
        if set(info.get("missing_keys", [])) - TIED else []
    problems += [f"{kind}: {info[kind]}" for kind in ("unexpected_keys", "mismatched_keys", "error_msgs")
                 if info.get(kind)]
    if problems:
        print(f"{export_dir}: the export does not match BertForPreTraining:\n  " + "\n  ".join(problems),
              file=sys.stderr)
        return 1
    # Exactly the state_dict's names, checked by name: from_pretrained's prefix handling
    # (it adds or strips the base model's "bert." when ALL keys lack or have it) could let
    # a wrong layout through or refuse it with a message that names no key.
    from safetensors import safe_open
    with safe_open(os.path.join(export_dir, "model.safetensors"), framework="pt") as f:
        keys = set(f.keys())
    want = set(model.state_dict().keys()) - TIED
    if keys != want:
        print(f"{export_dir}: model.safetensors keys are not BertForPreTraining's state_dict names: "
              f"not in the model {sorted(keys - want)}, absent {sorted(want - keys)}", file=sys.stderr)
        return 1
    decoder = model.cls.predictions.decoder
    if decoder.weight.data_ptr() != model.bert.embeddings.word_embeddings.weight.data_ptr():
        print(f"{export_dir}: cls.predictions.decoder.weight is not tied to the word embeddings",
              file=sys.stderr)
        return 1
    if decoder.bias is None or decoder.bias.data_ptr() != model.cls.predictions.bias.data_ptr():
        print(f"{export_dir}: cls.predictions.decoder.bias is not tied to cls.predictions.bias",
              file=sys.stderr)
        return 1
    model.eval()

    with h5py.File(case_path, "r") as f:
        def batch(name):
            return torch.from_numpy(np.asarray(f["batch/" + name][()], np.int64))
        tokens, segments, key_mask = batch("tokens"), batch("segments"), batch("key_mask")
        text = f.attrs.get("text")
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    with torch.no_grad():
        out = model(input_ids=tokens, token_type_ids=segments, attention_mask=key_mask)
    mlm = out.prediction_logits.float().numpy()           # (B, T, V)
    nsp = out.seq_relationship_logits.float().numpy()     # (B, 2)

    tok = BertTokenizerFast.from_pretrained(export_dir)
    ids = np.asarray(tok(str(text or ""), add_special_tokens=False).input_ids, np.int64)

    with h5py.File(out_path, "w") as f:
        f.create_dataset("mlm_logits", data=mlm.astype(np.float32))
        f.create_dataset("nsp_logits", data=nsp.astype(np.float32))
        f.create_dataset("token_ids", data=ids)
        f.attrs["transformers_version"] = str(transformers.__version__)
        f.attrs["torch_version"] = str(torch.__version__)
        f.attrs["missing_keys"] = ",".join(sorted(info.get("missing_keys", [])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
