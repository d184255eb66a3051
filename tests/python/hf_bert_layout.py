#!/usr/bin/env python3
"""The parameters of Hugging Face's BertForPreTraining of a given shape, built on torch's
meta device (shapes only: BERT-large's 335 M parameters allocate nothing).

  hf_bert_layout.py OUT.json --vocab-size V --hidden C --layers L --heads H
                    --intermediate I --max-position P [--type-vocab 2]
      writes {"count": N, "params": {name: [dims...]}, "transformers_version": ...}:
      model.named_parameters() (tied parameters once, under their first name: the
      decoder's weight is bert.embeddings.word_embeddings.weight, its bias
      cls.predictions.bias) and N the sum of their sizes.
"""
import argparse
import contextlib
import json
import sys


@contextlib.contextmanager
def meta_device(torch):
    """Modules built inside get their parameters on the meta device. torch 1.13 (Debian's)
    has no `with torch.device("meta")`: torch.empty and torch.zeros (what nn.Linear,
    nn.Embedding, nn.LayerNorm and BERT's prediction bias build their parameters with)
    default to meta, and a parameter registered anyway on another device is moved there."""
    saved = torch.empty, torch.zeros, torch.nn.Module.register_parameter

    def on_meta(factory):
        def make(*args, **kwargs):
            if kwargs.get("device") is None:
                kwargs["device"] = "meta"
            return factory(*args, **kwargs)
        return make

    def register(module, name, param):
        if param is not None and not param.is_meta:
            param = torch.nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        saved[2](module, name, param)

    torch.empty, torch.zeros = on_meta(saved[0]), on_meta(saved[1])
    torch.nn.Module.register_parameter = register
    try:
        yield
    finally:
        torch.empty, torch.zeros, torch.nn.Module.register_parameter = saved


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    for k in ["vocab-size", "hidden", "layers", "heads", "intermediate", "max-position"]:
        ap.add_argument("--" + k, type=int, required=True)
    ap.add_argument("--type-vocab", type=int, default=2)
    a = ap.parse_args(argv)
    import torch
    import transformers
    from transformers import BertConfig, BertForPreTraining
    transformers.logging.set_verbosity_error()
    cfg = BertConfig(vocab_size=a.vocab_size, hidden_size=a.hidden, num_hidden_layers=a.layers,
                     num_attention_heads=a.heads, intermediate_size=a.intermediate,
                     max_position_embeddings=a.max_position, type_vocab_size=a.type_vocab)
    with meta_device(torch):
        model = BertForPreTraining(cfg)
    params = {n: list(p.shape) for n, p in model.named_parameters()}
    assert all(p.is_meta for p in model.parameters()), "a parameter was allocated"
    count = sum(p.numel() for p in model.parameters())
    with open(a.out, "w") as f:
        json.dump({"count": count, "params": params,
                   "transformers_version": transformers.__version__}, f)
    print(f"BertForPreTraining(L={a.layers}, C={a.hidden}, H={a.heads}, I={a.intermediate}, "
          f"V={a.vocab_size}, P={a.max_position}): {count} parameters, {len(params)} tensors "
          f"(transformers {transformers.__version__}, meta device)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
