"""Project-context latency through a real server: what typing costs with 200 KB of `input_extra`.

    python -m benchmarks --only context --model checkpoints/default.pt --data data/default-model
    python -m benchmarks.context --model checkpoints/default.pt --data data/default-model --context-runs 8

A real `server.py` process (1 torch thread, its default), one keep-alive client (http.client), held-out
files (the test split of --data). For each run a file and a cursor point are picked; `input_extra` is
other held-out files (its own project's first, then others) up to --context-extra-kb:
- first request: the first keystroke of a run brings chunks the server has never seen (tokenise, index);
- typed-through: the next --context-run-chars keystrokes, one request per character, the same chunks;
  `prompt` = the whole text before the cursor (at most 64K characters), as the extension sends it;
- for comparison the same keystrokes with today's request: the last 20 lines, no `input_extra`.
Then the server's memory (PSS and VmRSS summed over the HTTP process and its engine workers) and its
context store's bytes from /metrics.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

from benchmarks import part_main
from benchmarks.server_load import Client, ServerProcess, metric_value, percentile, prompt_files, tree_memory_mib
from evaluate.metrics import line_starts_of, prompt_at


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--context-runs", type=int, default=8, help="context: typed runs (each with new chunks)")
    parser.add_argument("--context-run-chars", type=int, default=40, help="context: keystrokes per run")
    parser.add_argument("--context-extra-kb", type=int, default=200, help="context: KB of input_extra per request")
    parser.add_argument("--context-seed", type=int, default=0)


def extra_chunks(target: Path, files: list[Path], budget: int, rng: random.Random) -> list[dict]:
    """Other held-out files up to `budget` characters: the target's folder first, then random others; named
    by their path below the files' common folder, as the editor names them by their path in the workspace
    (the engine's imports resolve `from package.module import` by it)."""
    root = Path(os.path.commonpath(files)) if len(files) > 1 else target.parent
    same = sorted(p for p in files if p.parent == target.parent and p != target)
    others = [p for p in files if p.parent != target.parent]
    rng.shuffle(others)
    chunks, left = [], budget
    for p in same + others:
        text = p.read_text(encoding="utf-8", errors="replace")[:left]
        if text.strip():
            chunks.append({"filename": p.relative_to(root).as_posix(), "text": text})
            left -= len(text)
        if left <= 0:
            break
    return chunks


def run(args) -> str:
    files, where = prompt_files(getattr(args, "data", None))
    rng = random.Random(args.context_seed)
    big = [p for p in files if len(p.read_text(encoding="utf-8", errors="replace")) > 3000]
    budget = args.context_extra_kb * 1000
    first, typed, today, extra_sizes = [], [], [], []
    with ServerProcess(args.model) as server:
        client = Client(server.port)
        mem_loaded = tree_memory_mib(server.proc.pid)  # the HTTP process and its engine workers
        for run_index in range(args.context_runs):
            target = rng.choice(big)
            text = target.read_text(encoding="utf-8", errors="replace")
            starts = line_starts_of(text)
            cursor = rng.randrange(len(text) // 3, len(text) - args.context_run_chars)
            extra = extra_chunks(target, files, budget, rng)
            extra_sizes.append(sum(len(c["text"]) for c in extra))
            for k in range(args.context_run_chars):
                i = cursor + k
                status, ms, _ = client.complete({"prompt": text[max(0, i - 64 * 1024):i], "input_extra": extra})
                if status != 200:
                    raise RuntimeError(f"server answered {status}")
                (first if k == 0 else typed).append(ms)
            for k in range(args.context_run_chars):
                status, ms, _ = client.complete({"prompt": prompt_at(text, starts, cursor + k, 20)})
                today.append(ms)
        mem_after = tree_memory_mib(server.proc.pid)
        store = {name: metric_value(server.port, f"autocomplete_engine_context_{name}")
                 for name in ("block_bytes", "blocks", "segment_bytes", "segments")}

    def row(name, ms):
        return f"| {name} | {len(ms)} | {percentile(ms, 50):.1f} | {percentile(ms, 90):.1f} | " \
               f"{percentile(ms, 99):.1f} | {max(ms):.1f} |"

    out = [f"Model `{args.model}`, a real server (1 torch thread), one keep-alive client; {args.context_runs} runs "
           f"of {args.context_run_chars} keystrokes at random points of {where}; input_extra "
           f"{min(extra_sizes) / 1000:.0f}-{max(extra_sizes) / 1000:.0f} KB of other held-out files per run "
           "(new chunks each run). Client-side ms per request.", "",
           "| request | n | p50 | p90 | p99 | max |", "|---|---:|---:|---:|---:|---:|",
           row("first request bringing new chunks (whole prompt + input_extra)", first),
           row("typed-through, whole prompt + input_extra", typed),
           row("typed-through, today's request (20 lines, no input_extra)", today), "",
           f"Server memory ({mem_after['processes']} processes, summed): PSS {mem_loaded['pss']:.0f} MiB after "
           f"loading, {mem_after['pss']:.0f} MiB after the runs (VmRSS {mem_loaded['rss']:.0f} / "
           f"{mem_after['rss']:.0f} MiB); "
           f"context store: {store['block_bytes'] / 2**20:.1f} MiB of token ids "
           f"in {store['blocks']:.0f} blocks, "
           f"{store['segment_bytes'] / 2**20:.1f} MiB of indexes in "
           f"{store['segments']:.0f} segments."]
    return "\n".join(out)


def main(argv=None) -> int:
    return part_main(__doc__, add_arguments, run, argv, data="data/default-model")


if __name__ == "__main__":
    sys.exit(main())
