"""Corpus benchmark: build times (cold, warm) and the tokenizer's vocabulary-size trade-off.

    python -m benchmarks.dataset [--dataset-vocab-sizes 1024 4096 16384]

chars/token is measured on the held-out splits (valid + test projects) with a tokenizer trained on the
train split only, the same way `python -m dataset build` trains it.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from dataset.build import BuildConfig, gather_projects, scan
from dataset.encode import train_tokenizer
from dataset.split import assign_splits

ROOT = Path(__file__).resolve().parents[1]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset-vocab-sizes", type=int, nargs="*", default=[1024, 2048, 4096, 8192, 16384])
    parser.add_argument("--dataset-skip-build", action="store_true", help="only the vocabulary sweep")


def _timed_build(out: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dataset", "build", "--out", str(out), "--no-progress"],
                   cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def run(args) -> str:
    lines = []
    if not getattr(args, "dataset_skip_build", False):
        with tempfile.TemporaryDirectory() as tmp:
            cold = _timed_build(Path(tmp) / "data")
            warm = _timed_build(Path(tmp) / "data")
        lines += ["| build (stdlib, vocab 4096, `python -m dataset build`) | seconds |", "|---|---:|",
                  f"| cold (clean, train tokenizer, encode) | {cold:.1f} |",
                  f"| warm (nothing changed) | {warm:.2f} |", ""]

    config = BuildConfig(progress=False)
    projects, _ = gather_projects(config, Counter(), [])
    records = scan(projects, config, Counter(), [])
    chars = Counter()
    for r in records:
        chars[r["project"]] += r["chars"]
    split = assign_splits(dict(chars))
    train = [r["text"] for r in records if split[r["project"]] == "train"]
    held_out = [r["text"] for r in records if split[r["project"]] != "train"]
    lines += [f"Train: {len(train)} files, {sum(map(len, train)) / 1e6:.2f} M chars; "
              f"held out: {len(held_out)} files, {sum(map(len, held_out)) / 1e6:.2f} M chars.", "",
              "| vocab | train tokenizer s | held-out chars/token | train chars/token | encode MB/s |",
              "|---:|---:|---:|---:|---:|"]
    for vocab in args.dataset_vocab_sizes:
        start = time.perf_counter()
        tokenizer = train_tokenizer(train, vocab)
        trained = time.perf_counter() - start
        start = time.perf_counter()
        held_tokens = sum(map(len, tokenizer.encode_batch(held_out)))
        encode_s = time.perf_counter() - start
        train_tokens = sum(map(len, tokenizer.encode_batch(train[::10])))
        lines.append(f"| {vocab} | {trained:.1f} | {sum(map(len, held_out)) / held_tokens:.2f} | "
                     f"{sum(map(len, train[::10])) / train_tokens:.2f} | "
                     f"{sum(len(t.encode()) for t in held_out) / 1e6 / encode_s:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    print(run(parser.parse_args()))
