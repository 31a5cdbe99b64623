"""Making training batches for an accelerator: is the CPU side fast enough not to keep the GPU waiting?

A GPU step of the 4.2M-parameter default (128 x 256 tokens) is a few tens of milliseconds, and train.py
makes each batch on the CPU: random windows of the corpus, then the FIM rewrite at rate 0.5 (decode, cut,
re-encode). This measures, on this machine's CPU and the real corpus:
- the time to make one batch in line (what every step waited for before dataset/prefetch.py);
- the time per step of a loop whose step is a stand-in for the GPU's: `step_ms` of waiting with the GIL
  released (as `loss.item()` waits on CUDA), with batches made in line (prefetch 0) and made ahead in a
  thread (prefetch 2, train.py's default on CUDA). Made ahead, a step costs max(step, batch), not the sum.

    python -m benchmarks --only batches --data data/default-model     # or: python -m benchmarks.batches
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def add_arguments(parser: argparse.ArgumentParser):
    g = parser.add_argument_group("batches")
    g.add_argument("--batch-rows", type=int, default=128)
    g.add_argument("--batch-seq", type=int, default=256)
    g.add_argument("--batch-steps", type=int, default=40, help="steps timed per row of the table")
    g.add_argument("--batch-step-ms", type=float, nargs="+", default=[10.0, 25.0, 50.0],
                   help="stand-in GPU step times to time the loop with")


def batch_maker(data: str, rows: int, seq: int, fim_rate: float = 0.5):
    """make() -> ((batch, mask), state) as train.py's: random windows, then the FIM rewrite."""
    from dataset.corpus import load_split, load_tokenizer
    from dataset.fim import fim_rows
    from train import Dist, RandomWindows
    tokenizer = load_tokenizer(data).with_fim_tokens()
    windows = RandomWindows(load_split(data, "train"), seq, rows, Dist(), seed=0)
    fim_rng = np.random.Generator(np.random.PCG64(1))

    def make():
        batch, _ = windows.next()
        return fim_rows(batch, tokenizer, fim_rng, fim_rate), None
    return make


def loop_ms(make, step_ms: float, steps: int, prefetch: int) -> float:
    """Mean ms per step of a training loop taking a batch, then waiting step_ms with the GIL released."""
    from dataset.prefetch import Prefetcher
    batches = Prefetcher(make, None, prefetch)
    try:
        batches.next()  # the first batch is never overlapped: start timing after it
        t0 = time.perf_counter()
        for _ in range(steps):
            batches.next()
            time.sleep(step_ms / 1000)
        return (time.perf_counter() - t0) / steps * 1000
    finally:
        batches.close()


def run(args) -> str:
    data = getattr(args, "data", "data")
    make = batch_maker(data, args.batch_rows, args.batch_seq)
    make()
    t0 = time.perf_counter()
    for _ in range(args.batch_steps):
        make()
    batch_ms = (time.perf_counter() - t0) / args.batch_steps * 1000
    rows = [f"One batch ({args.batch_rows} x {args.batch_seq + 1} tokens, FIM rate 0.5) made in line: "
            f"**{batch_ms:.1f} ms**\n",
            "| stand-in GPU step | ms per step, batches made in line | made ahead (prefetch 2) |",
            "|---:|---:|---:|"]
    for step_ms in args.batch_step_ms:
        inline = loop_ms(make, step_ms, args.batch_steps, 0)
        ahead = loop_ms(make, step_ms, args.batch_steps, 2)
        rows.append(f"| {step_ms:.0f} ms | {inline:.1f} | {ahead:.1f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", default="data")
    add_arguments(p)
    print(run(p.parse_args()))
