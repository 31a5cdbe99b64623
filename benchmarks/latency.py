"""Completion latency: p50/p90/p99 ms per request, each kind, with and without the prefix cache.

    python -m benchmarks --only latency --model checkpoints/default.pt
    python -m benchmarks.latency --model checkpoints/default.pt --latency-requests 50

Two workloads on held-out files (the test split of --data; the valid or train split if it has none):
- cold: prompts cut at random points, the last 20 lines before the cursor, a fresh cache each time
  (what a request costs when nothing is cached: the whole 20-line prompt is fed);
- typed-through: runs of consecutive keystrokes at random points, one request per character (what
  typing costs: with the cache only the tokens after the longest cached prefix are fed);
- typed-through with a suffix (default kind): the same, the rest of the line deleted and the lines after it
  sent as `suffix`, as the extension sends them (the rest of the file; the engine keeps 16K characters; fill
  in the middle: a FIM model's input starts with the suffix, fixed while typing).
The engine runs in this process with the torch threads of --latency-threads (the server's default: 1).
"""
from __future__ import annotations

import argparse
import random
import sys
import time

import torch

from benchmarks import part_main
from evaluate.metrics import EDITOR_SUFFIX_LINES, following_lines, line_starts_of, percentile, prompt_at
from evaluate.predictor import Predictor, PredictorConfig
from models.checkpoint import load_checkpoint
from models.quantize import QUANTIZE_CHOICES, quantize_model, resolve_quantize

KINDS = {"auto": None, "word": "word", "line": "line", "block": "block"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--latency-requests", type=int, default=60, help="latency: cold requests per kind")
    parser.add_argument("--latency-runs", type=int, default=6, help="latency: typed-through runs per kind")
    parser.add_argument("--latency-run-chars", type=int, default=40, help="latency: keystrokes per typed run")
    parser.add_argument("--latency-kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--latency-threads", type=int, default=1, help="latency: torch threads")
    parser.add_argument("--latency-context-lines", type=int, default=20)
    parser.add_argument("--latency-seed", type=int, default=0)
    parser.add_argument("--latency-quantize", choices=QUANTIZE_CHOICES, default="auto",
                        help="latency: model weights (models/quantize.py; auto = int8 on the CPU, as served)")
    parser.add_argument("--latency-auto-beam-width", type=int, default=None,
                        help="latency: beams for the default kind (default: PredictorConfig's)")


def held_out_texts(data: str, limit: int = 40, seed: int = 0) -> list[str]:
    from dataset.corpus import split_files
    for split in ("test", "valid", "train"):
        try:
            files = split_files(data, split)
        except (FileNotFoundError, ValueError):
            continue
        if files:
            files = random.Random(seed).sample(files, min(limit, len(files)))
            texts = [p.read_text(encoding="utf-8") for _, p in files]
            return [t for t in texts if len(t) > 200]
    from tests.tiny_model import TINY_TEXT  # no corpus: the tiny text still measures the engine
    return [TINY_TEXT]


def _row(name, kind, cache, ms) -> str:
    return (f"| {name} | {kind} | {cache} | {len(ms)} | {percentile(ms, 50):.1f} | {percentile(ms, 90):.1f} | "
            f"{percentile(ms, 99):.1f} | {sum(ms) / max(len(ms), 1):.1f} |")


def run(args) -> str:
    torch.set_num_threads(args.latency_threads)
    config = PredictorConfig(cache_size=32)
    if getattr(args, "latency_auto_beam_width", None):
        config.auto_beam_width = args.latency_auto_beam_width
    ckpt = load_checkpoint(args.model)
    params = sum(p.numel() for p in ckpt.model.parameters())  # before quantizing: int8 Linears hold none
    quantize = resolve_quantize(getattr(args, "latency_quantize", "auto"), "cpu")
    cached = Predictor(quantize_model(ckpt.model, quantize), ckpt.tokenizer, config=config)
    uncached = Predictor(cached.model, cached.tokenizer, config=PredictorConfig(**{**config.__dict__, "cache_size": 0}))
    texts = held_out_texts(args.data, seed=args.latency_seed)
    rng = random.Random(args.latency_seed)
    n_ctx = args.latency_context_lines

    def cursor():
        text = texts[rng.randrange(len(texts))]
        return text, line_starts_of(text), rng.randrange(1, len(text))

    def timed(predictor, prompt, kind, suffix=""):
        t0 = time.perf_counter()
        predictor.complete(prompt, kind=kind, suffix=suffix)
        return (time.perf_counter() - t0) * 1000

    def typed_through(label, kind_name, kind, with_suffix: bool) -> list[str]:
        """Runs of consecutive keystrokes, cached and uncached; with_suffix: the rest of the line deleted
        and the lines after it sent as `suffix`, as the extension does (EDITOR_SUFFIX_LINES; typing stops at
        the line end)."""
        typed = {"yes": [], "no": []}
        for _ in range(args.latency_runs):
            text, starts, i = cursor()
            end, suffix = len(text), ""
            if with_suffix:
                end = text.find("\n", i)
                end = len(text) if end < 0 else end
                suffix = following_lines(text, end, EDITOR_SUFFIX_LINES)
            cached.clear_cache()
            for j in range(i, min(i + args.latency_run_chars, end)):
                prompt = prompt_at(text, starts, j, n_ctx)
                typed["yes"].append(timed(cached, prompt, kind, suffix))
                typed["no"].append(timed(uncached, prompt, kind, suffix))
        return [_row(label, kind_name, "yes", typed["yes"]), _row(label, kind_name, "no", typed["no"])]

    lines = [f"Model `{args.model}` ({params / 1e6:.1f}M parameters, "
             f"{type(cached.model).__name__}, weights {'int8' if quantize == 'int8' else 'fp32'}), "
             f"torch threads {args.latency_threads}, default kind with "
             f"{config.auto_beam_width} beam(s), other kinds {config.beam_width}, "
             f"prompts: last {n_ctx} lines of held-out files. ms per request.", "",
             "| workload | kind | prefix cache | requests | p50 | p90 | p99 | mean |",
             "|---|---|---|---|---|---|---|---|"]
    uncached.complete("import os\n")  # warm up (first-call allocations)
    for kind_name in args.latency_kinds:
        kind = KINDS[kind_name]
        cold = []
        for _ in range(args.latency_requests):
            text, starts, i = cursor()
            cold.append(timed(uncached, prompt_at(text, starts, i, n_ctx), kind))
        lines.append(_row("cold 20-line prompt", kind_name, "no", cold))
        lines += typed_through("typed-through", kind_name, kind, with_suffix=False)
        if kind is None:
            lines += typed_through("typed-through + suffix (the rest of the file)", kind_name, kind, with_suffix=True)
        print(f"latency: {kind_name} done", file=sys.stderr, flush=True)
    s = cached.stats()
    lines += ["", f"Prefix cache over the typed-through runs: {s['cache_hits']} hits, {s['cache_misses']} misses, "
                  f"{s['tokens_reused']} tokens reused, {s['tokens_fed']} fed."]
    return "\n".join(lines)


def main(argv=None) -> int:
    return part_main(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
