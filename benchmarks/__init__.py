"""Benchmarks: one module a part, each `run(args) -> str` returning a markdown table."""
from __future__ import annotations

from pathlib import Path


def part_main(doc: str, add_arguments, run, argv=None, data: str = "data") -> int:
    """`python -m benchmarks.<part>`: that part alone, with --model, --data and the part's own options
    (`python -m benchmarks --only <part>` runs the same `run` among the others)."""
    import argparse
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="checkpoints/default.pt")
    parser.add_argument("--data", default=data)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if not Path(args.model).is_file():
        parser.error(f"no checkpoint at {args.model}")
    print(run(args))
    return 0
