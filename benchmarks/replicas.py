"""Scale-out benchmark: N `server.py` replicas behind nginx (serving/nginx.py's recipe) on loopback, with
16 clients; then one replica is killed mid-run and the clients (retrying a failed request once) keep going.

    python -m benchmarks.replicas --model checkpoints/default.pt --data data/default-model
    python -m benchmarks --only replicas ...                               # the same, inside make bench

Needs nginx on PATH (Debian: apt-get install -y nginx); without it the part says so and measures nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks import part_main
from benchmarks.server_load import (Client, ServerProcess, describe_statuses, load_average, percentile, prompt_files,
                                    run_clients, sample_prompts)


def add_arguments(parser: argparse.ArgumentParser):
    parser.add_argument("--replicas", type=int, default=2, help="replicas: server.py processes behind nginx")
    parser.add_argument("--replica-args", default="--workers 1",
                        help="replicas: options of each server.py (one string)")
    parser.add_argument("--replicas-clients", type=int, default=16, help="replicas: concurrent clients")
    parser.add_argument("--replicas-seconds", type=float, default=20.0,
                        help="replicas: length of the run in which one replica is killed (at half time)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args) -> str:
    from serving.nginx import Nginx, nginx_binary
    if nginx_binary() is None:
        return "nginx is not installed (apt-get install -y nginx): nothing measured."
    n = getattr(args, "replicas", 2)
    extra = getattr(args, "replica_args", "--workers 1").split()
    clients = getattr(args, "replicas_clients", 16)
    seconds = getattr(args, "replicas_seconds", 20.0)
    data = getattr(args, "data", None)
    servers = [ServerProcess(args.model, "--torch-threads", "1", *extra) for _ in range(n)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="nginx-bench-") as tmp:
        try:
            for s in servers:
                s.start()
            with Nginx(Path(tmp), free_port(), [f"127.0.0.1:{s.port}" for s in servers]) as lb:
                for body in sample_prompts(data, 8, seed=99):
                    Client(lb.port).complete(body)
                # 1. steady: the same cold 20-line prompts as the server_load benchmark
                prompts = sample_prompts(data, clients * 20, seed=1 + clients)
                res = run_clients(lb.port, prompts, clients)
                lat = res["latencies"]
                rows.append((f"{n} replicas behind nginx, {clients} clients", len(lat), percentile(lat, 50),
                             percentile(lat, 99), len(lat) / res["wall"], describe_statuses(res["failures"]), "–"))
                # 2. one replica killed at half time; every client retries a failed request once
                pool = sample_prompts(data, 4000, seed=7)
                lat, failed, retried, stop = [], [], [], threading.Event()
                served = {}
                lock = threading.Lock()

                def client(i):
                    c = Client(lb.port, client_id=f"client-{i}")
                    k = i
                    while not stop.is_set():
                        body = pool[k % len(pool)]
                        k += clients
                        for attempt in (1, 2):
                            try:
                                t0 = time.perf_counter()
                                c.conn.request("POST", "/autocomplete", json.dumps(body), c.headers)
                                r = c.conn.getresponse()
                                r.read()
                                ms = (time.perf_counter() - t0) * 1000
                                status, upstream = r.status, r.getheader("X-Upstream", "?")
                            except OSError as e:
                                status, upstream, ms = repr(e)[:40], None, 0.0
                                c = Client(lb.port, client_id=f"client-{i}")
                            with lock:
                                if status == 200:
                                    lat.append(ms)
                                    served[upstream] = served.get(upstream, 0) + 1
                                    break
                                (retried if attempt == 1 else failed).append(status)

                threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
                t0 = time.perf_counter()
                for t in threads:
                    t.start()
                time.sleep(seconds / 2)
                victim = servers[0]
                os.kill(victim.proc.pid, signal.SIGKILL)
                killed_at = time.perf_counter() - t0
                time.sleep(seconds / 2)
                stop.set()
                for t in threads:
                    t.join(60)
                wall = time.perf_counter() - t0
                rows.append((f"{n} replicas, one killed at {killed_at:.0f} s of {wall:.0f} s (clients retry once)",
                             len(lat), percentile(lat, 50), percentile(lat, 99), len(lat) / wall,
                             describe_statuses(failed), describe_statuses(retried)))
                per_replica = ", ".join(f"{u}: {k}" for u, k in sorted(served.items()))
        finally:
            for s in servers:
                s.stop()
    lines = ["| run | answered 200 | p50 ms | p99 ms | req/s | failed after the retry | retried |",
             "|---|---:|---:|---:|---:|---|---|"]
    lines += [f"| {name} | {k} | {p50:.1f} | {p99:.1f} | {rps:.1f} | {fail} | {retry} |"
              for name, k, p50, p99, rps, fail, retry in rows]
    lines += ["", f"Answers per replica in the kill run: {per_replica} (the first was killed).",
              f"Each replica: `server.py {' '.join(extra)} --torch-threads 1`; nginx {nginx_version()} with "
              f"serving/nginx.py's configuration (hash on X-Client-Id, max_fails=1 fail_timeout=5s, "
              f"proxy_next_upstream error timeout http_502 non_idempotent, 2 tries); prompts from "
              f"{prompt_files(data)[1]}; {os.cpu_count()} CPUs, load average "
              f"{load_average()} (1/5/15 min, other processes too)."]
    return "\n".join(lines)


def nginx_version() -> str:
    import subprocess
    from serving.nginx import nginx_binary
    r = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True)
    return (r.stderr or r.stdout).strip().split("/")[-1]


def main(argv=None) -> int:
    return part_main(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
