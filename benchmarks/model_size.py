"""What a bigger default model would cost a typing request on this CPU.

A typed-through request of the default kind is a few search steps, each one forward of the live beams (3 rows,
one new token) over the KV cache of the ~200-token window; a cold request first feeds the window. Both costs
grow with the model's weights (on a CPU a one-token forward mostly reads them), so this table measures them
per transformer size, fp32 and int8 (`models/quantize.py`, the server's default on a CPU), one torch thread,
random weights (the cost does not depend on their values). The shipped 4x256's typed-through p50 (the
latency benchmark) times the ratio of step costs estimates a larger model's, before a GPU trains it.

    python -m benchmarks.model_size
"""
from __future__ import annotations

import argparse
import time

import torch

SIZES = [(256, 4), (320, 6), (384, 6), (384, 8), (512, 6), (512, 8)]  # (d_model, layers); the default first
WINDOW = 200  # tokens of context a typing request keeps (the model's window minus room to generate)
ROWS = 3  # beams of the default kind


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size-steps", type=int, default=100, help="timed one-token forwards per model size")


def measure(d_model: int, layers: int, quantize: str, steps: int, vocab: int = 4099) -> dict:
    """{'params', 'feed_ms', 'step_ms'} of a random transformer of that size (median of `steps` steps)."""
    from models import ModelConfig, build_model
    from models.quantize import quantize_model
    model = build_model(ModelConfig(arch="transformer", vocab_size=vocab, d_model=d_model, n_layers=layers,
                                    n_heads=8, max_len=256)).eval()
    params = sum(p.numel() for p in model.parameters())
    if quantize != "none":
        model = quantize_model(model, quantize)
    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        prompt = torch.randint(0, vocab, (1, WINDOW), generator=gen)
        model(prompt)  # warm up the kernels
        t0 = time.perf_counter()
        _, state = model(prompt)  # [1, WINDOW] -> state
        feed_ms = (time.perf_counter() - t0) * 1000
        state = model.select_state(state, torch.zeros(ROWS, dtype=torch.long))
        token = torch.randint(0, vocab, (ROWS, 1), generator=gen)
        times = []
        for _ in range(steps + 5):
            t0 = time.perf_counter()
            model(token, state, last_only=True)  # [ROWS, 1] over the cache; the state is not kept
            times.append((time.perf_counter() - t0) * 1000)
    times = sorted(times[5:])
    return {"params": params, "feed_ms": feed_ms, "step_ms": times[len(times) // 2]}


def run(args) -> str:
    torch.set_num_threads(1)
    rows = [f"one thread; {ROWS} rows x 1 token over a {WINDOW}-token cache (median of {args.size_steps}), "
            f"a {WINDOW}-token feed; random weights", "",
            "| transformer | params | step fp32 | step int8 | feed fp32 | feed int8 | int8 step / default's |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    from models.quantize import int8_supported
    if not int8_supported():
        return "int8 kernels are not available on this CPU (models/quantize.py): nothing to compare"
    base = None
    for d, layers in SIZES:
        fp32 = measure(d, layers, "none", args.size_steps)
        int8 = measure(d, layers, "int8", args.size_steps)
        base = base or int8["step_ms"]
        rows.append(f"| {layers}x{d} | {fp32['params'] / 1e6:.1f}M | {fp32['step_ms']:.2f} ms | {int8['step_ms']:.2f} ms "
                    f"| {fp32['feed_ms']:.1f} ms | {int8['feed_ms']:.1f} ms | {int8['step_ms'] / base:.2f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(p)
    print(run(p.parse_args()))
