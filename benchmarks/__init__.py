"""Benchmarks: one module a part, each `run(args) -> str` returning a markdown table."""
from __future__ import annotations


def part_main(doc: str, add_arguments, run, argv=None, data: str = "data") -> int:
    """`python -m benchmarks.<part>`: that part alone, with --model, --data and the part's own options
    (`python -m benchmarks --only <part>` runs the same `run` among the others)."""
    import argparse
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="checkpoints/default.pt")
    parser.add_argument("--data", default=data)
    add_arguments(parser)
    print(run(parser.parse_args(argv)))
    return 0
