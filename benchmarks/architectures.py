"""Architecture study table: each architecture trained for the same CPU budget
(`scripts/architecture_study.sh MINUTES THREADS` -> runs/study/<arch>/best.pt), then measured the same
way through the completion engine: validation bits/char and next-token accuracy (from training), keystrokes
saved with the default kind on held-out files, and request latency while typing (prefix cache on).

    python -m benchmarks.architectures --study runs/study --data data/default-model
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ARCHS = ["transformer", "lstm", "highway", "transformer_xl"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--study", default="runs/study", help="folder of <arch>/best.pt runs")
    parser.add_argument("--study-files", type=int, default=6, help="held-out files typed per model")
    parser.add_argument("--study-chars", type=int, default=1500, help="characters typed per file")


def run(args) -> str:
    from evaluate.__main__ import main as evaluate_main
    from models.checkpoint import load_checkpoint
    rows = ["| architecture | params | train steps | tokens seen | valid bits/char | next-token acc "
            "| keystrokes saved | latency p50 / p90 (ms) |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for arch in ARCHS:
        path = Path(args.study) / arch / "best.pt"
        if not path.is_file():
            rows.append(f"| {arch} | – | – | – | – | – | – | not trained ({path} missing) |")
            continue
        ckpt = load_checkpoint(path)
        meta = ckpt.meta
        with tempfile.TemporaryDirectory() as out:
            code = evaluate_main(["--model", str(path), "--data", args.data, "--max-files", str(args.study_files),
                                  "--max-chars", str(args.study_chars), "--line-samples", "0", "--threads", "1",
                                  "--out", out])
            if code != 0:
                rows.append(f"| {arch} | evaluation failed ({code}) |")
                continue
            o = json.loads((Path(out) / "eval.json").read_text())["overall"]
        rows.append(f"| {arch} | {meta.get('params', 0) / 1e6:.1f}M | {ckpt.step} | {meta.get('tokens_seen', 0):,} "
                    f"| {meta.get('valid_bpc', float('nan')):.3f} | {meta.get('valid_accuracy', float('nan')):.1%} "
                    f"| {o['saved_auto']:.1%} | {o['p50_ms_auto']:.1f} / {o['p90_ms_auto']:.1f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/default-model")
    add_arguments(parser)
    print(run(parser.parse_args()))
    sys.exit(0)
