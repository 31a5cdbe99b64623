"""A model per project on one server (serving/models.py, `--models-dir`): what holding several models costs in
memory, what the first request naming a model waits, and whether typists on different models wait longer than
typists on one.

    python -m benchmarks --only models --model checkpoints/default.pt --data data/default-model
    python -m benchmarks.models --model checkpoints/default.pt --data data/default-model --models-requests 100

Each row starts a real `server.py` (the default 2 workers x 1 slot) whose `--model` is a copy of `--model` and
whose `--models-dir` holds four more copies under other names (p1 ... p4: the same weights, so the figures are
the cost of holding and switching models, not of what they predict). `--models-clients` clients type at once,
back to back, each with its own keep-alive connection and X-Client-Id, `--models-requests` requests each: the
20 lines before a random cursor in held-out files, with 64K characters of other held-out files as `input_extra`
(the editor sends up to 128K). The clients ask for the default model, or spread over 1, 2 or 4 named models;
the last row spreads them over the 4 with `--preload-models`, started once the workers hold all of them.
Reported: each client's first request (all sent at once: each loads its model into its worker, when no other
did, and may wait behind another's load), then, once all are answered, the latency of the rest, the requests that
did not get 200, the named models the workers hold at the end (a model a client's requests reached in both
workers is held by both), and the server's memory then (PSS of its processes) against the same clients on the
default model.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from benchmarks import part_main
from .server_load import (Client, ServerProcess, describe_statuses, load_average, metric_value, percentile,
                          prompt_files, sample_prompts, tree_memory_mib)

NAMES = ["p1", "p2", "p3", "p4"]


def add_arguments(parser: argparse.ArgumentParser):
    parser.add_argument("--models-clients", type=int, default=4, help="models: clients typing at once")
    parser.add_argument("--models-requests", type=int, default=100, help="models: requests per client")
    parser.add_argument("--models-spread", type=int, nargs="+", default=[0, 1, 2, 4],
                        help="models: how many named models the clients use (0: all on the default)")


def held_out_extra(data, chars: int = 64 * 1024) -> list[dict]:
    """`chars` characters of held-out files as input_extra chunks, 8K each."""
    files, _ = prompt_files(data)
    chunks, total = [], 0
    for f in files[::7]:
        text = f.read_text(encoding="utf-8", errors="replace")[:8192]
        chunks.append({"filename": f.name, "text": text})
        total += len(text)
        if total >= chars:
            break
    return chunks


def wait_preloaded(port: int, loaded: int, timeout_s: float = 120.0) -> float:
    """Seconds until the workers hold `loaded` named models in all (--preload-models). A worker's counters come
    with its answers: requests to the default model from varied client ids reach every worker."""
    t0 = time.monotonic()
    pings = [Client(port, client_id=f"ping-{i}") for i in range(8)]
    while metric_value(port, "autocomplete_engine_models_loaded") < loaded:
        if time.monotonic() - t0 > timeout_s:
            raise RuntimeError(f"the workers did not preload {loaded} models in {timeout_s:.0f} s")
        for c in pings:
            c.complete({"prompt": "import os\n"})
        time.sleep(0.2)
    return time.monotonic() - t0


def run_one(model: Path, spread: int, clients: int, requests_each: int, data, preload: bool = False) -> dict:
    prompts = sample_prompts(data, clients * requests_each, seed=11)
    extra = held_out_extra(data)
    with tempfile.TemporaryDirectory(prefix="models-bench-") as tmp:
        served = Path(tmp) / "default.pt"
        shutil.copyfile(model, served)
        models_dir = Path(tmp) / "models"
        models_dir.mkdir()
        for name in NAMES:
            shutil.copyfile(model, models_dir / f"{name}.pt")
        with ServerProcess(served, "--torch-threads", "1", "--models-dir", str(models_dir),
                           *(["--preload-models"] if preload else [])) as srv:
            preloaded_s = wait_preloaded(srv.port, 2 * len(NAMES)) if preload else None
            first, rest, failures = [], [], []
            lock = threading.Lock()
            all_started = threading.Barrier(clients)

            def client(i: int):
                c = Client(srv.port, client_id=f"typist-{i}")
                named = {"model": NAMES[i % spread]} if spread else {}
                for k, body in enumerate(prompts[i::clients]):
                    status, ms, _ = c.complete({**body, "input_extra": extra, **named})
                    with lock:
                        if status != 200:
                            failures.append(status)
                        else:
                            (first if k == 0 else rest).append(ms)
                    if k == 0:  # the first requests (the loads) all at once, then the typing: its figures steady
                        all_started.wait()

            threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            memory = tree_memory_mib(srv.proc.pid)
            loaded = metric_value(srv.port, "autocomplete_engine_models_loaded")
    return {"first": first, "rest": rest, "failures": failures, "pss": memory["pss"], "loaded": loaded,
            "preloaded_s": preloaded_s}


def run(args) -> str:
    clients = getattr(args, "models_clients", 4)
    requests_each = getattr(args, "models_requests", 100)
    spreads = getattr(args, "models_spread", [0, 1, 2, 4])
    data = getattr(args, "data", None)
    if clients < 1 or requests_each < 2 or any(not 0 <= s <= len(NAMES) for s in spreads):
        raise SystemExit(f"error: --models-clients >= 1, --models-requests >= 2, --models-spread in 0..{len(NAMES)}")
    lines = ["| clients ask for | first request of each client, median (max) ms | the other requests, p50 / p99 ms | "
             "not 200 | named models held by the 2 workers | server PSS at the end |",
             "|---|---:|---:|---:|---:|---:|"]
    # the last row: the clients spread over all the named models, which the workers loaded at their start
    rows = [(spread, False) for spread in spreads] + ([(len(NAMES), True)] if len(NAMES) in spreads else [])
    for spread, preload in rows:
        r = run_one(Path(args.model), spread, clients, requests_each, data, preload)
        who = "the default model" if spread == 0 else f"{spread} named model{'s' if spread > 1 else ''}"
        if preload:
            who += f", `--preload-models` (loaded {r['preloaded_s']:.1f} s after start)"
        lines.append(f"| {who} | {percentile(r['first'], 50):.0f} ({max(r['first']):.0f}) | "
                     f"{percentile(r['rest'], 50):.1f} / {percentile(r['rest'], 99):.1f} | "
                     f"{describe_statuses(r['failures'])} | {r['loaded']:.0f} | {r['pss']:.0f} MiB |")
    load = load_average()
    lines += ["", f"Model: {args.model} and four copies of it as the named models; {clients} clients typing back to "
                  f"back, {requests_each} requests each, 64K characters of input_extra on every request; 2 worker "
                  f"processes x 1 slot (the default), --max-models 4, --cache-mb 64 per model. {os.cpu_count()} "
                  f"CPUs, load average {load}."]
    return "\n".join(lines)


def main(argv=None) -> int:
    return part_main(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
