"""Server load benchmark: HTTP latency with 1 and 16 clients, throughput, server memory, engine-only p50.

    python -m benchmarks --only server_load --model checkpoints/default.pt
    python -m benchmarks.server_load --model checkpoints/default.pt      # the same, this part alone

A real `server.py` process on 127.0.0.1 (a free port) serves the requests; the engine-only figure runs
the same prompts through `Predictor.complete` in this process, so "server overhead" is what HTTP,
Flask, waitress and the queue add. `ServerProcess` is also what the server tests use to start servers.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "server.py"


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of a process, in KiB, from /proc/PID/status."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


class ServerProcess:
    """`python server.py --port 0 ...` as a context manager: learns its port, waits for /health 200.

    `host` is where it binds; requests always go to 127.0.0.1 (also right for 0.0.0.0).
    """

    def __init__(self, model, *extra_args: str, host: str = "127.0.0.1", env: dict | None = None,
                 ready_timeout: float = 120.0):
        self.cmd = [sys.executable, str(SERVER), "--host", host, "--port", "0", "--model", str(model),
                    *extra_args]
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.ready_timeout = ready_timeout
        self.port: int | None = None
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.proc: subprocess.Popen | None = None
        self._listening = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _drain(self, stream, lines: list[str]):
        for line in stream:
            lines.append(line)
            if line.startswith("listening on http://"):
                self.port = int(line.split()[2].rsplit(":", 1)[1])
                self._listening.set()

    def start(self, wait_ready: bool = True) -> "ServerProcess":
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        for stream, lines in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr)):
            threading.Thread(target=self._drain, args=(stream, lines), daemon=True).start()
        deadline = time.monotonic() + self.ready_timeout
        while not self._listening.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start (exit {self.proc.poll()}): {self.output()}")
        if wait_ready:
            while True:
                try:
                    if requests.get(self.url + "/health", timeout=5).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server never became ready (exit {self.proc.poll()}): "
                                       f"{self.output()}")
                time.sleep(0.05)
        return self

    def output(self) -> str:
        time.sleep(0.1)  # let the drain threads catch up
        return "".join(self.stdout) + "".join(self.stderr)

    def rss_kib(self) -> dict[str, int]:
        return rss_kib(self.proc.pid)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class EngineProcess:
    """`Predictor.complete` alone in a child process: send a request, get back its time in ms."""

    def __init__(self, model, threads: int):
        self.cmd = [sys.executable, "-m", "benchmarks.server_load", "--engine-worker", str(model),
                    "--server-torch-threads", str(threads)]

    def __enter__(self):
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"engine worker failed to start (exit {self.proc.wait()})")
        self.info = json.loads(line)
        return self

    def complete(self, body: dict) -> float:
        self.proc.stdin.write(json.dumps(body) + "\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(30)

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def engine_worker(model: str, threads: int):
    """The child of EngineProcess: JSON requests on stdin, ms per `complete` on stdout."""
    import torch

    import server
    torch.set_num_threads(threads)
    predictor, info = server.load_model(model)
    print(json.dumps(info), flush=True)
    for line in sys.stdin:
        body = json.loads(line)
        t0 = time.perf_counter()
        predictor.complete(body["prompt"], suffix=body.get("suffix", ""))
        print((time.perf_counter() - t0) * 1000, flush=True)


def prompt_files(data_dir: str | None) -> tuple[list[Path], str]:
    """Held-out corpus files if the corpus is built, else this interpreter's standard library."""
    if data_dir:
        files = sorted((Path(data_dir) / "corpus" / "files" / "test").rglob("*.py"))
        if files:
            return files, f"{len(files)} held-out corpus files ({data_dir}/corpus/files/test)"
    import sysconfig
    return sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")), "standard-library files"


def sample_prompts(data_dir: str | None, n: int, seed: int = 0, context_chars: int = 2000) -> list[dict]:
    """Cursor positions in real Python files: held-out corpus files if present, else the stdlib.

    Each request is the text before the cursor (up to `context_chars`) and the rest of its line.
    """
    files, _ = prompt_files(data_dir)
    rng = random.Random(seed)
    prompts = []
    while len(prompts) < n:
        text = rng.choice(files).read_text(encoding="utf-8", errors="replace")
        if len(text) < 200:
            continue
        cursor = rng.randrange(100, len(text))
        line_end = text.find("\n", cursor)
        line_end = len(text) if line_end < 0 else line_end
        prompts.append({"prompt": text[max(0, cursor - context_chars):cursor],
                        "suffix": text[cursor:line_end]})
    return prompts


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def server_timing_engine_ms(header: str) -> float:
    for part in header.split(","):
        name, _, dur = part.strip().partition(";dur=")
        if name == "engine":
            return float(dur)
    raise ValueError(header)


class Client:
    """One keep-alive HTTP connection (http.client: the lightest Python client, so the figures are
    the server's, not a client library's)."""

    def __init__(self, port: int, headers: dict | None = None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Content-Type": "application/json", **(headers or {})}

    def complete(self, body: dict) -> tuple[int, float, float | None]:
        """(status, client latency ms, engine ms from Server-Timing or None)."""
        data = json.dumps(body)
        t0 = time.perf_counter()
        self.conn.request("POST", "/autocomplete", data, self.headers)
        response = self.conn.getresponse()
        response.read()
        ms = (time.perf_counter() - t0) * 1000
        timing = response.getheader("Server-Timing")
        return response.status, ms, server_timing_engine_ms(timing) if timing else None


def run_clients(port: int, prompts: list[dict], clients: int, headers: dict | None = None) -> dict:
    """`clients` threads, each with its own keep-alive connection, share `prompts` round-robin."""
    latencies, engine_ms, failures = [], [], []
    lock = threading.Lock()

    def client(i: int):
        c = Client(port, headers)
        for body in prompts[i::clients]:
            status, ms, engine = c.complete(body)
            with lock:
                if status == 200:
                    latencies.append(ms)
                    engine_ms.append(engine)
                else:
                    failures.append(status)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"latencies": latencies, "engine_ms": engine_ms, "failures": failures, "wall": wall}


def describe_statuses(statuses: list[int]) -> str:
    """[503, 503, 500] -> "2 × 503, 1 × 500"; [] -> "0"."""
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    return ", ".join(f"{n} × {s}" for s, n in counts.items()) or "0"


def add_arguments(parser: argparse.ArgumentParser):
    parser.add_argument("--server-requests", type=int, default=100,
                        help="server_load: requests for the 1-client and engine-only runs")
    parser.add_argument("--server-torch-threads", type=int, default=1,
                        help="server_load: torch threads, in the server and for the engine-only run")
    parser.add_argument("--server-clients", type=int, default=16, help="server_load: concurrent clients")
    parser.add_argument("--server-requests-per-client", type=int, default=10,
                        help="server_load: requests each concurrent client sends")


def run(args) -> str:
    model = args.model
    n1 = getattr(args, "server_requests", 100)
    clients = getattr(args, "server_clients", 16)
    per_client = getattr(args, "server_requests_per_client", 10)
    data = getattr(args, "data", None)
    threads = getattr(args, "server_torch_threads", 1)
    prompts_1 = sample_prompts(data, n1, seed=1)
    prompts_n = sample_prompts(data, clients * per_client, seed=2)

    # Engine only (a fresh predictor in its own process, timed around `complete`) and the server with
    # 1 client (a fresh process, timed by the client), interleaved prompt by prompt, alternating who
    # goes first, so both see the same machine load. This process only sends and times: a client
    # that also computes would be slow to wake for its answers on a busy CPU.
    with EngineProcess(model, threads) as eng, ServerProcess(model, "--torch-threads", str(threads)) as srv:
        info = eng.info
        mem_ready = srv.rss_kib()  # model loaded, no request yet
        client = Client(srv.port)
        eng.complete({"prompt": prompts_1[0]["prompt"]})  # the same warm-up for both
        client.complete({"prompt": prompts_1[0]["prompt"]})
        engine, one, t_server = [], {"latencies": [], "engine_ms": [], "failures": []}, 0.0
        for i, body in enumerate(prompts_1):
            for side in ((0, 1) if i % 2 == 0 else (1, 0)):
                if side == 0:
                    engine.append(eng.complete(body))
                else:
                    status, ms, engine_ms = client.complete(body)
                    t_server += ms / 1000
                    if status == 200:
                        one["latencies"].append(ms)
                        one["engine_ms"].append(engine_ms)
                    else:
                        one["failures"].append(status)
        one["wall"] = t_server
        mem_engine, mem_one = rss_kib(eng.proc.pid), srv.rss_kib()  # after the same 100 requests
        eng.stop()
        many = run_clients(srv.port, prompts_n, clients)
        mem = srv.rss_kib()

    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    overhead = [c - e for c, e in zip(one["latencies"], one["engine_ms"])]
    rows = [
        ("engine only (own process)", len(engine), percentile(engine, 50), percentile(engine, 99), "–", []),
        ("server, 1 client", len(one["latencies"]), percentile(one["latencies"], 50),
         percentile(one["latencies"], 99), f"{len(one['latencies']) / one['wall']:.1f}",
         one["failures"]),
        ("↳ its engine time inside the server (Server-Timing)", len(one["engine_ms"]),
         percentile(one["engine_ms"], 50), percentile(one["engine_ms"], 99), "–", []),
        (f"server, {clients} clients", len(many["latencies"]), percentile(many["latencies"], 50),
         percentile(many["latencies"], 99), f"{len(many['latencies']) / many['wall']:.1f}",
         many["failures"]),
    ]
    lines = ["| run | answered 200 | p50 ms | p99 ms | req/s | not 200 |", "|---|---|---|---|---|---|"]
    lines += [f"| {name} | {n} | {p50:.1f} | {p99:.1f} | {rps} | {describe_statuses(fail)} |"
              for name, n, p50, p99, rps, fail in rows]
    # Same prompt, same order in both runs: per-prompt differences cancel the prompts' own spread.
    paired = [c - e for c, e in zip(one["latencies"], engine)] if not one["failures"] else [float("nan")]
    lines += ["",
              f"Server overhead, 1 client: p50 of (server latency − engine-alone time) for the same prompt "
              f"{percentile(paired, 50):+.2f} ms; p50 of (client latency − the server's own engine time, "
              f"Server-Timing) {percentile(overhead, 50):.2f} ms (p99 {percentile(overhead, 99):.2f}); "
              f"difference of the p50s {percentile(one['latencies'], 50) - percentile(engine, 50):+.2f} ms.",
              f"Server memory (VmRSS): {mem_ready.get('VmRSS', 0) / 1024:.0f} MiB with the model loaded, "
              f"{mem_one.get('VmRSS', 0) / 1024:.0f} MiB after the 1-client run (the engine alone in its "
              f"process: {mem_engine.get('VmRSS', 0) / 1024:.0f} MiB after the same requests), "
              f"{mem.get('VmRSS', 0) / 1024:.0f} MiB after the {clients}-client run, "
              f"peak VmHWM {mem.get('VmHWM', 0) / 1024:.0f} MiB.",
              f"Model: {info['name']} ({info['arch']}, {info['params']:,} parameters, sha256 {info['sha256']}); "
              f"torch threads {threads}; {os.cpu_count()} CPUs, load average {load} "
              f"(1/5/15 min, from other processes too); prompts: up to 2,000 chars "
              f"before a random cursor in {prompt_files(data)[1]}, "
              f"kind=None, max_suggestions=3."]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="checkpoints/default.pt")
    parser.add_argument("--data", default="data")
    parser.add_argument("--engine-worker", metavar="MODEL", help=argparse.SUPPRESS)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.engine_worker:
        engine_worker(args.engine_worker, args.server_torch_threads)
        return 0
    print(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
