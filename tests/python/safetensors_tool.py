#!/usr/bin/env python3
"""The Python `safetensors` package as the reference for loom's safetensors files
(tests/io/test_safetensors.cpp; run with the .venv that scripts/setup.sh makes).

  safetensors_tool.py check
      exits 0 when `safetensors` and numpy import; prints the versions
  safetensors_tool.py resave IN OUT
      loads IN with safetensors' own reader (safe_open, numpy), prints one JSON line
      {"tensors": {name: {"dtype", "shape"}}, "metadata": {...}} and writes the same tensors
      and metadata to OUT with safetensors' own writer, so the C++ test can compare the
      values bit for bit with what it wrote
"""
import json
import sys


def main(argv):
    if len(argv) >= 1 and argv[0] == "check":
        import numpy
        import safetensors
        print(f"safetensors {safetensors.__version__}, numpy {numpy.__version__}")
        return 0
    if len(argv) == 3 and argv[0] == "resave":
        from safetensors import safe_open
        from safetensors.numpy import save_file
        tensors, summary = {}, {}
        with safe_open(argv[1], framework="numpy") as f:
            metadata = f.metadata() or {}
            for name in f.keys():
                t = f.get_tensor(name)
                tensors[name] = t
                summary[name] = {"dtype": str(t.dtype), "shape": list(t.shape)}
        print(json.dumps({"tensors": summary, "metadata": metadata}, sort_keys=True))
        save_file(tensors, argv[2], metadata=metadata or None)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
