"""A typist at a human rhythm: how often a suggestion is on screen before the next key, per debounce.

    python -m benchmarks --only typing --model checkpoints/default.pt --data data/default-model
    python -m benchmarks.typing --typing-debounces 0 50 100 150 --typing-typists 239 150

A real `server.py` (its defaults) serves `--model`; the extension's own engine (vscode-extension/src/engine.ts:
cache, debounce, one live request, filters; `src/test/bench/typing.ts`, run with node) types the first
`--typing-chars` characters of `--typing-files` held-out files, one key at a time at log-normal intervals whose
mean is each of `--typing-typists` (238.7 ms: the mean of 168,000 typists, Dhakal et al., CHI 2018; 150 ms: a
fast one), asking for a suggestion after every key and cancelling the ask before when the next key comes, as VS
Code does. Every debounce types the same texts at the same moments (seeded).

Reported per typist and debounce: the share of keys after which a suggestion arrived in time (90 ms, VS Code's
own scheduling and rendering measured by the e2e test, before the next key), and a right one (what the typist
then types: accepting it would have saved keys), the median time from a key to a
server's answer, requests per typed character, and the server's CPU time per typed character (its processes'
user + system time from /proc while that typist typed).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import tempfile
from pathlib import Path

from benchmarks import part_main

from .server_load import ROOT, ServerProcess, prompt_files, tree_pids

EXTENSION = ROOT / "vscode-extension"
SCRIPT = EXTENSION / "out" / "test" / "bench" / "typing.js"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def add_arguments(parser: argparse.ArgumentParser):
    parser.add_argument("--typing-debounces", type=int, nargs="+", default=[0, 50, 100, 150],
                        help="typing: pythonAutocomplete.debounceMs values (ms)")
    parser.add_argument("--typing-typists", type=float, nargs="+", default=[238.7, 150.0],
                        help="typing: each typist's mean interval between keys (ms)")
    parser.add_argument("--typing-files", type=int, default=3, help="typing: held-out files typed")
    parser.add_argument("--typing-chars", type=int, default=200, help="typing: characters typed of each")
    parser.add_argument("--typing-seed", type=int, default=1)


def process_tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of `pid` and its descendants (the server's engine workers), from /proc."""
    total = 0.0
    for p in tree_pids(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    return total


def typed_texts(data_dir: str, files: int, chars: int, seed: int) -> list[dict]:
    """The first `chars` characters of `files` held-out files (seeded), each long enough."""
    found, _ = prompt_files(data_dir)
    rng = random.Random(seed)
    texts = []
    for path in rng.sample(found, len(found)):
        text = path.read_text(encoding="utf-8", errors="replace").replace("\r\n", "\n")
        if len(text) >= chars:
            texts.append({"name": path.name, "text": text[:chars]})
        if len(texts) == files:
            break
    return texts


def run(args) -> str:
    subprocess.run(["make", "-s", "-C", str(EXTENSION), "compile"], check=True)  # a no-op when up to date
    texts = typed_texts(args.data, args.typing_files, args.typing_chars, args.typing_seed)
    cpu: dict[tuple[float, int], float] = {}
    with ServerProcess(args.model) as srv, tempfile.TemporaryDirectory(prefix="typing-bench-") as tmp:
        (Path(tmp) / "texts.json").write_text(json.dumps(texts))
        env = {**os.environ, "SERVER_URL": srv.url, "TEXTS": str(Path(tmp) / "texts.json"),
               "OUT": str(Path(tmp) / "out.json"), "SEED": str(args.typing_seed),
               "DEBOUNCES": ",".join(map(str, args.typing_debounces)),
               "TYPISTS": ",".join(map(str, args.typing_typists))}
        node = subprocess.Popen(["node", str(SCRIPT)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        started = 0.0
        for line in node.stdout:  # a line as each (typist, debounce) starts and ends
            mark = json.loads(line)
            if "start" in mark:
                started = process_tree_cpu_s(srv.proc.pid)
            else:
                cpu[(mark["end"]["meanMs"], mark["end"]["debounceMs"])] = process_tree_cpu_s(srv.proc.pid) - started
        if node.wait() != 0:
            raise RuntimeError("the typing script failed")
        results = json.loads((Path(tmp) / "out.json").read_text())
    lines = [f"{len(texts)} held-out files, their first {args.typing_chars} characters each, typed key by key "
             f"through the extension's engine against `server.py` (its defaults); in time = a suggestion 90 ms "
             f"before the next key.", "",
             "| typist (mean interval between keys) | debounce | keys with a suggestion in time | ... a right one "
             "| ... from the server (not the cache) | key → server answer, median | requests per key | server CPU "
             "per key |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        keys = r["chars"]
        answer = f"{statistics.median(r['answerMs']):.0f} ms" if r["answerMs"] else "–"
        lines.append(f"| {r['meanMs']:.0f} ms | {r['debounceMs']} ms | {r['inTime'] / keys:.1%} | "
                     f"{r['rightInTime'] / keys:.1%} | {r['inTimeFromServer'] / keys:.1%} | {answer} | {r['requests'] / keys:.2f} | "
                     f"{1000 * cpu[(r['meanMs'], r['debounceMs'])] / keys:.1f} ms |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(part_main(__doc__, add_arguments, run, data="data/default-model"))
