"""A new checkpoint under a serving server (serving/reload.py): how long until it serves it, and what the
clients typing meanwhile see.

    python -m benchmarks --only reload --model checkpoints/default.pt --data data/default-model
    python -m benchmarks.reload --model checkpoints/default.pt --reload-clients 1 4

For each server configuration a real `server.py` serves a copy of `--model` in a temporary folder, with
the default `--reload-interval` (2 s). Clients send requests back to back (the 20 lines before a random
cursor in held-out files, as benchmarks/server_load.py): first `--reload-steady-s` seconds undisturbed,
then the file is replaced `--reload-times` times as `make train` replaces it (a copy beside it, one
rename), each time waiting until /health reports the swap, then 2-4 s more (a random phase of the watcher's
looks). Reported: the time from the
rename to the swap (the watcher's wait included) and the server's own load-and-swap time, the latency of
the requests answered in the 3 s after each rename against the undisturbed ones, the requests that did not
get 200 (the point: none), and the server's memory at its peak during a reload (the second set of workers)
against before.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import requests

from benchmarks import part_main
from .server_load import (Client, ServerProcess, describe_statuses, load_average, percentile, sample_prompts,
                          tree_memory_mib)

VARIANTS = {
    "w2s1": ("2 worker processes x 1 slot (the default)", ["--workers", "2", "--slots", "1"]),
    "w0": ("the engine in the server process (`--workers 0`)", ["--workers", "0"]),
}


def add_arguments(parser: argparse.ArgumentParser):
    parser.add_argument("--reload-clients", type=int, nargs="+", default=[1, 4],
                        help="reload: concurrent typing clients")
    parser.add_argument("--reload-times", type=int, default=5, help="reload: file replacements per run")
    parser.add_argument("--reload-steady-s", type=float, default=10.0,
                        help="reload: seconds of undisturbed load first")
    parser.add_argument("--reload-variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS),
                        help="reload: server configurations")


def reloads_ok(url: str) -> int:
    return requests.get(url + "/health", timeout=30).json()["reload"]["ok"]


def run_one(model: Path, extra: list[str], clients: int, times: int, steady_s: float, data) -> dict:
    prompts = sample_prompts(data, 400, seed=7)
    with tempfile.TemporaryDirectory(prefix="reload-bench-") as tmp:
        served = Path(tmp) / "personal.pt"
        shutil.copyfile(model, served)
        with ServerProcess(served, "--torch-threads", "1", *extra) as srv:
            for body in prompts[:8]:  # warm-up
                Client(srv.port).complete(body)
            answered: list[tuple[float, float]] = []  # (time answered, latency ms)
            failures: list[int] = []
            stop = threading.Event()
            lock = threading.Lock()

            def client(i: int):
                c = Client(srv.port, client_id=f"typist-{i}")
                k = i
                while not stop.is_set():
                    status, ms, _ = c.complete(prompts[k % len(prompts)])
                    k += clients
                    with lock:
                        if status == 200:
                            answered.append((time.monotonic(), ms))
                        else:
                            failures.append(status)

            threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
            for t in threads:
                t.start()
            t_steady = time.monotonic()
            time.sleep(steady_s)
            before_mem = tree_memory_mib(srv.proc.pid)
            renames, to_swap, server_s, peak_pss = [], [], [], before_mem["pss"]
            rng = random.Random(0)
            for n in range(times):
                tmp_copy = served.with_suffix(".tmp")
                shutil.copyfile(model, tmp_copy)
                t0 = time.monotonic()
                os.replace(tmp_copy, served)
                renames.append(t0)
                while reloads_ok(srv.url) < n + 1:
                    peak_pss = max(peak_pss, tree_memory_mib(srv.proc.pid)["pss"])
                    assert time.monotonic() - t0 < 120, srv.output()
                    time.sleep(0.05)
                to_swap.append(time.monotonic() - t0)
                server_s.append(requests.get(srv.url + "/health", timeout=30).json()["reload"]["seconds"])
                time.sleep(2.0 + rng.uniform(0, 2.0))  # the next rename at any phase of the watcher's looks
            stop.set()
            for t in threads:
                t.join()
            after_mem = tree_memory_mib(srv.proc.pid)
    steady = [ms for t, ms in answered if t_steady <= t < renames[0]]
    during = [ms for t, ms in answered if any(r <= t < r + 3.0 for r in renames)]
    return {"to_swap": to_swap, "server_s": server_s, "steady": steady, "during": during, "failures": failures,
            "before_pss": before_mem["pss"], "peak_pss": peak_pss, "after_pss": after_mem["pss"]}


def run(args) -> str:
    clients_list = getattr(args, "reload_clients", [1, 4])
    times = getattr(args, "reload_times", 5)
    steady_s = getattr(args, "reload_steady_s", 10.0)
    variants = getattr(args, "reload_variants", list(VARIANTS))
    data = getattr(args, "data", None)
    if times < 1 or steady_s <= 0 or min(clients_list) < 1:
        raise SystemExit("error: --reload-times and --reload-clients must be >= 1, --reload-steady-s > 0")
    lines = ["| server | clients | rename → serving the new file, median (max) s | of which loading and swapping, "
             "median s | p50 / p99 ms, undisturbed | p50 / p99 ms, 3 s after each rename | not 200 | PSS before / "
             "peak during reloads / after |",
             "|---|---:|---:|---:|---:|---:|---|---:|"]
    for key in variants:
        label, extra = VARIANTS[key]
        for clients in clients_list:
            r = run_one(Path(args.model), extra, clients, times, steady_s, data)
            lines.append(
                f"| {label} | {clients} | {statistics.median(r['to_swap']):.2f} ({max(r['to_swap']):.2f}) | "
                f"{statistics.median(r['server_s']):.2f} | {percentile(r['steady'], 50):.1f} / "
                f"{percentile(r['steady'], 99):.1f} | {percentile(r['during'], 50):.1f} / "
                f"{percentile(r['during'], 99):.1f} | {describe_statuses(r['failures'])} | "
                f"{r['before_pss']:.0f} / {r['peak_pss']:.0f} / {r['after_pss']:.0f} MiB |")
    load = load_average()
    lines += ["", f"Model: {args.model}, replaced {times} times per row (a copy, one rename, as make train writes "
                  f"it); --reload-interval 2 (the default): a rename waits 0-2 s for the watcher's look and 0.5 s more "
                  f"for its second (the file must not move meanwhile). "
                  f"{os.cpu_count()} CPUs, load average {load}; every client its own keep-alive connection and "
                  f"X-Client-Id, sending back to back."]
    return "\n".join(lines)


def main(argv=None) -> int:
    return part_main(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
