"""What a latency budget costs a typist on a loaded server: keystrokes saved with and without load.

    python -m benchmarks --only budget --model checkpoints/default.pt --data data/default-model
    python -m benchmarks.budget --model checkpoints/default.pt --data data/default-model --budget-ms 250

`time_budget_ms` counts from a request's arrival, its wait for a worker included (server.py,
`with_remaining_budget`): under load a request that waited gets a shorter search instead of a later
answer. That bounds the tail (server_load's `w2s1` row against `w2s1b0`: since 2026-11-24 evening 250 ms is `server.py`'s default), but a search cut short may suggest less. This
measures how much less, paired: one real server (`--workers 2 --time-budget-ms B`); one typist
(`python -m evaluate --server`, the 20-line protocol) types the same held-out files first alone, then while
`--budget-load-clients` other clients send cold 20-line requests back to back (the 16-client load of
server_load). Without load nothing is cut, so the difference between the two runs is what the cuts cost.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks import part_main
from benchmarks.server_load import Client, ServerProcess, metric_value, percentile, sample_prompts

ROOT = Path(__file__).resolve().parent.parent


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--budget-ms", type=float, default=250.0, help="budget: the server's --time-budget-ms")
    parser.add_argument("--budget-load-clients", type=int, default=15,
                        help="budget: clients loading the server while the typist types")
    parser.add_argument("--budget-files", type=int, default=3, help="budget: held-out files the typist types")
    parser.add_argument("--budget-chars", type=int, default=800, help="budget: characters typed per file")


def type_files(url: str, model: str, data: str, files: int, chars: int, out: Path) -> dict:
    """The typist: `python -m evaluate --server` on `files` held-out files; its eval.json."""
    cmd = [sys.executable, "-m", "evaluate", "--model", str(model), "--data", data, "--split", "test",
           "--max-files", str(files), "--max-chars", str(chars), "--protocol", "lines", "--line-samples", "0",
           "--threads", "1", "--server", url, "--out", str(out)]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads((out / "eval.json").read_text())


def saved(report: dict) -> float:
    """Overall keystrokes saved (%) of the default kind in an eval.json."""
    return 100 * report["overall"]["saved_auto"]


def request_p(report: dict, q: str) -> float:
    """The typist's request latency percentile `q` ("p50", "p99") in ms."""
    return report["overall"][f"{q}_ms_auto"]


def run(args) -> str:
    model, data = args.model, getattr(args, "data", "data")
    budget = getattr(args, "budget_ms", 250.0)
    n_load = getattr(args, "budget_load_clients", 15)
    files, chars = getattr(args, "budget_files", 3), getattr(args, "budget_chars", 800)
    out = ROOT / "reports" / "bench-budget"
    with ServerProcess(model, "--workers", "2", "--time-budget-ms", f"{budget:g}") as srv:
        alone = type_files(srv.url, model, data, files, chars, out / "alone")
        stop = threading.Event()
        prompts = sample_prompts(data, 4000, seed=5)
        load_ms: list[float] = []

        def load(i: int):
            c, j = Client(srv.port, client_id=f"load-{i}"), i
            while not stop.is_set():
                status, ms, _ = c.complete(prompts[j % len(prompts)])
                if status == 200:
                    load_ms.append(ms)
                j += n_load

        cut0 = metric_value(srv.port, "autocomplete_engine_timeouts_total")
        requests0 = metric_value(srv.port, "autocomplete_engine_requests_total")
        threads = [threading.Thread(target=load, args=(i,), daemon=True) for i in range(n_load)]
        for t in threads:
            t.start()
        loaded = type_files(srv.url, model, data, files, chars, out / "loaded")
        stop.set()
        for t in threads:
            t.join(30)
        time.sleep(0.5)  # the idle workers report their counters
        cut = metric_value(srv.port, "autocomplete_engine_timeouts_total") - cut0
        served = metric_value(srv.port, "autocomplete_engine_requests_total") - requests0
    lines = [f"| typist | keystrokes saved | typist's request p50 / p99 ms | load clients' p50 / p99 ms | "
             f"searches cut by the {budget:g} ms budget |", "|---|---:|---:|---:|---:|",
             f"| alone | {saved(alone):.1f} % | {request_p(alone, 'p50'):.1f} / {request_p(alone, 'p99'):.1f} | – | – |",
             f"| with {n_load} clients loading the server | {saved(loaded):.1f} % | "
             f"{request_p(loaded, 'p50'):.1f} / {request_p(loaded, 'p99'):.1f} | "
             f"{percentile(load_ms, 50):.1f} / {percentile(load_ms, 99):.1f} | "
             f"{100 * cut / max(served, 1):.1f} % of {served:,.0f} |", "",
             f"Server: `--workers 2 --time-budget-ms {budget:g}`, model {model}; typist: `python -m evaluate "
             f"--server` (20-line prompts, default kind) on {files} held-out files of {data}, {chars} characters "
             f"each; load: cold 20-line requests back to back."]
    return "\n".join(lines)


def main(argv=None) -> int:
    return part_main(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
