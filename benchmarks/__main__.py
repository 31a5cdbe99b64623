"""`make bench`: run every part's benchmark and print (and save) their markdown tables.

Each `benchmarks/<part>.py` exposes `add_arguments(parser)` (optional) and `run(args) -> str`.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

PARTS = ["dataset", "train_speed", "batches", "latency", "model_size", "server_load", "budget", "context", "replicas",
         "reload", "models", "finetune_beside", "typing", "soak"]


def main(argv=None) -> int:
    # -h is added after the parts' own options: `--only reload -h` then lists them too
    parser = argparse.ArgumentParser(description=__doc__, add_help=False)
    parser.add_argument("--model", default="checkpoints/default.pt", help="checkpoint to benchmark")
    parser.add_argument("--data", default="data", help="corpus folder (held-out files for prompts)")
    parser.add_argument("--only", nargs="*", choices=PARTS, help="run only these parts")
    parser.add_argument("--out", default="reports/bench.md", help="where to save the tables")
    args, _ = parser.parse_known_args(argv)
    modules = {p: importlib.import_module(f"benchmarks.{p}") for p in (args.only or PARTS)}
    for m in modules.values():  # let each part add its own options, then parse again
        if hasattr(m, "add_arguments"):
            m.add_arguments(parser)
    parser.add_argument("-h", "--help", action="help", help="show this help message (with the parts' options) and exit")
    args = parser.parse_args(argv)
    sections = []
    for part, module in modules.items():
        t0 = time.time()
        print(f"== {part} ...", file=sys.stderr, flush=True)
        table = module.run(args)
        sections.append(f"## {part} ({time.time() - t0:.0f} s)\n\n{table}\n")
        print(sections[-1], flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(sections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
