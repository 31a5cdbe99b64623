"""Server load benchmark: latency and throughput with 1/4/16 clients for several server configurations
(the single in-process engine of before, worker processes, slots, batching), memory, engine-only p50.

    python -m benchmarks --only server_load --model checkpoints/default.pt --data data/default-model
    python -m benchmarks.server_load --model checkpoints/default.pt --data data/default-model   # the same
    python -m benchmarks.server_load --server-variants before w2s4 --server-clients 1 16      # a subset

Real `server.py` processes on 127.0.0.1 (a free port each) serve the requests; the engine-only figure runs
the same 1-client prompts through `Predictor.complete` in a process of its own, so the difference is what
HTTP, Flask, waitress and the queue add. `ServerProcess` is also what the server tests use to start servers.
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

from serving.metrics import sample_value

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "server.py"


def stop_process(proc: subprocess.Popen, grace_s: float):
    """SIGTERM, then SIGKILL if it has not ended within grace_s; reaped either way."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


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

    def stop(self):
        if self.proc:
            stop_process(self.proc, grace_s=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class EngineProcess:
    """`Predictor.complete` alone in a child process: send a request, get back its time in ms."""

    def __init__(self, model, threads: int, device: str = "cpu"):
        self.cmd = [sys.executable, "-m", "benchmarks.server_load", "--engine-worker", str(model),
                    "--server-torch-threads", str(threads), "--server-device", device]

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


def engine_worker(model: str, threads: int, device: str = "cpu"):
    """The child of EngineProcess: JSON requests on stdin, ms per `complete` on stdout."""
    import torch

    import server
    torch.set_num_threads(threads)
    predictor, info = server.load_model(model, device, quantize="auto")  # the server's default weights
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


def sample_prompts(data_dir: str | None, n: int, seed: int = 0, lines: int = 20) -> list[dict]:
    """Cursor positions in real Python files: held-out corpus files if present, else the stdlib.

    Each request is today's editor request: the `lines` lines before the cursor's line plus that line up
    to the cursor, and the rest of the line as the suffix.
    """
    files, _ = prompt_files(data_dir)
    rng = random.Random(seed)
    prompts = []
    while len(prompts) < n:
        text = rng.choice(files).read_text(encoding="utf-8", errors="replace")
        if len(text) < 200:
            continue
        cursor = rng.randrange(100, len(text))
        line_start = text.rfind("\n", 0, cursor) + 1
        start = line_start
        for _ in range(lines):
            if start == 0:
                break
            start = text.rfind("\n", 0, start - 1) + 1
        line_end = text.find("\n", cursor)
        line_end = len(text) if line_end < 0 else line_end
        prompts.append({"prompt": text[start:cursor], "suffix": text[cursor:line_end]})
    return prompts


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, for a table's footer (other processes' load shows there too)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


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

    def __init__(self, port: int, headers: dict | None = None, client_id: str | None = None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        if client_id:
            self.headers["X-Client-Id"] = client_id

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
        c = Client(port, headers, client_id=f"client-{i}")
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


def children_by_parent() -> dict[int, list[int]]:
    """{pid: its child pids} of every process, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return children


def tree_pids(pid: int) -> list[int]:
    """`pid` and all its descendants (the server and its engine workers, and a forkserver while one runs)."""
    children = children_by_parent()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def tree_memory_mib(pid: int) -> dict[str, float]:
    """Summed VmRSS and PSS (MiB) of a server and its worker processes, and how many processes."""
    from serving.memory import proc_memory_kib
    rss = pss = n = 0
    for p in tree_pids(pid):
        m = proc_memory_kib(p)
        if m:
            rss, pss, n = rss + m.get("VmRSS", 0), pss + m.get("Pss", 0), n + 1
    return {"rss": rss / 1024, "pss": pss / 1024, "processes": n}


def metric_value(port: int, name: str, **labels: str) -> float:
    """A figure of the server's /metrics: `name`'s samples with `labels`, summed (serving/metrics.py)."""
    return sample_value(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text, name, **labels)


VARIANTS = {
    "before": ("single engine in the HTTP process, one request at a time, fp32 weights (before; "
               "`--workers 0 --quantize none --time-budget-ms 0`)", ["--workers", "0", "--quantize", "none",
                                                                     "--time-budget-ms", "0"]),
    "w2s1fp32": ("2 worker processes x 1 slot, fp32 weights (`--quantize none`)",
                 ["--workers", "2", "--slots", "1", "--quantize", "none"]),
    "w1s2nb": ("1 worker process, 2 engine threads, no batching (`--workers 1 --slots 2 --no-batching`)",
               ["--workers", "1", "--slots", "2", "--no-batching"]),
    "w2s1": ("2 worker processes x 1 slot, int8 weights, 250 ms latency budget (the default)",
             ["--workers", "2", "--slots", "1"]),
    "w2s1b0": ("2 workers x 1 slot, no latency budget (`--time-budget-ms 0`)",
               ["--workers", "2", "--slots", "1", "--time-budget-ms", "0"]),
    "w2s4nb": ("2 workers x 4 slots, no batching (`--no-batching`)",
               ["--workers", "2", "--slots", "4", "--no-batching"]),
    "w2s4": ("2 workers x 4 slots, batched (`--slots 4`)", ["--workers", "2", "--slots", "4"]),
    "w2s8": ("2 workers x 8 slots, batched", ["--workers", "2", "--slots", "8"]),
    "w1s4": ("1 worker process x 4 slots (threads), batched", ["--workers", "1", "--slots", "4"]),
    "w1s8": ("1 worker process x 8 slots (threads), batched", ["--workers", "1", "--slots", "8"]),
}


def add_arguments(parser: argparse.ArgumentParser):
    parser.add_argument("--server-requests", type=int, default=100,
                        help="server_load: requests for the 1-client and engine-only runs")
    parser.add_argument("--server-torch-threads", type=int, default=1,
                        help="server_load: torch threads, in the server and for the engine-only run")
    parser.add_argument("--server-clients", type=int, nargs="+", default=[1, 4, 16],
                        help="server_load: concurrent client counts (1 uses --server-requests)")
    parser.add_argument("--server-requests-per-client", type=int, default=20,
                        help="server_load: requests each concurrent client sends")
    parser.add_argument("--server-variants", nargs="+",
                        default=["before", "w1s2nb", "w2s1", "w2s1b0", "w2s4nb", "w2s4"],
                        choices=list(VARIANTS),
                        help="server_load: server configurations to compare")
    parser.add_argument("--server-device", default="cpu", choices=("auto", "cpu", "cuda"),
                        help="server_load: the servers' and the engine-only run's --device")


def run(args) -> str:
    model = args.model
    n1 = getattr(args, "server_requests", 100)
    client_counts = getattr(args, "server_clients", [1, 4, 16])
    if isinstance(client_counts, int):
        client_counts = [client_counts]
    per_client = getattr(args, "server_requests_per_client", 20)
    variants = getattr(args, "server_variants", ["before", "w1s2nb", "w2s1", "w2s1b0", "w2s4nb", "w2s4"])
    data = getattr(args, "data", None)
    threads = getattr(args, "server_torch_threads", 1)
    device = getattr(args, "server_device", "cpu")

    # The engine alone in its own process, the same 1-client prompts: what HTTP and the server add.
    prompts_1 = sample_prompts(data, n1, seed=1)
    with EngineProcess(model, threads, device) as eng:
        info = eng.info
        eng.complete(prompts_1[0])
        engine = [eng.complete(body) for body in prompts_1]
        eng.stop()

    rows, memory, notes = [], [], []
    for key in variants:
        label, extra = VARIANTS[key]
        with ServerProcess(model, "--torch-threads", str(threads), "--device", device, *extra) as srv:
            for body in sample_prompts(data, 8, seed=99):  # warm-up: first-call costs are not the load
                Client(srv.port).complete(body)
            mem_ready = tree_memory_mib(srv.proc.pid)
            for clients in client_counts:
                n = n1 if clients == 1 else clients * per_client
                prompts = sample_prompts(data, n, seed=1 if clients == 1 else 1 + clients)
                batches0 = metric_value(srv.port, "autocomplete_engine_batches_total")
                calls0 = metric_value(srv.port, "autocomplete_engine_batched_calls_total")
                cut0 = metric_value(srv.port, "autocomplete_engine_timeouts_total")
                res = run_clients(srv.port, prompts, clients)
                lat = res["latencies"]
                overhead = [c - e for c, e in zip(lat, res["engine_ms"]) if e is not None]
                time.sleep(0.3)  # the idle workers have reported their counters
                cut = metric_value(srv.port, "autocomplete_engine_timeouts_total") - cut0
                rows.append((label, clients, len(lat), percentile(lat, 50), percentile(lat, 99),
                             len(lat) / res["wall"], res["failures"], percentile(overhead, 50),
                             100 * cut / max(len(lat), 1)))
                if key == "w2s4" and clients == max(client_counts):
                    time.sleep(0.5)  # idle: the workers report their counters
                    Client(srv.port).complete(prompts[0])
                    b = metric_value(srv.port, "autocomplete_engine_batches_total") - batches0
                    c = metric_value(srv.port, "autocomplete_engine_batched_calls_total") - calls0
                    if b:
                        notes.append(f"Batching, {clients} clients: {c:,.0f} forward calls ran in {b:,.0f} "
                                     f"forwards ({c / b:.2f} calls per forward).")
            memory.append((label, mem_ready, tree_memory_mib(srv.proc.pid)))

    load = load_average()
    lines = ["| server | clients | answered 200 | p50 ms | p99 ms | req/s | not 200 | client − engine p50 ms | "
             "searches cut by the budget |",
             "|---|---:|---:|---:|---:|---:|---|---:|---:|",
             f"| engine only (own process, no HTTP, `--quantize auto` as the server) | 1 | {len(engine)} | {percentile(engine, 50):.1f} | "
             f"{percentile(engine, 99):.1f} | {len(engine) / (sum(engine) / 1000):.1f} | 0 | – | – |"]
    lines += [f"| {label} | {clients} | {n} | {p50:.1f} | {p99:.1f} | {rps:.1f} | {describe_statuses(fail)} | "
              f"{ovh:.2f} | {cut:.1f} % |" for label, clients, n, p50, p99, rps, fail, ovh, cut in rows]
    lines += ["", "| server | processes | VmRSS sum, loaded | VmRSS sum, after the runs | PSS sum, loaded | "
              "PSS sum, after the runs |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {label} | {after['processes']} | {ready['rss']:.0f} MiB | {after['rss']:.0f} MiB | "
              f"{ready['pss']:.0f} MiB | {after['pss']:.0f} MiB |" for label, ready, after in memory]
    lines += ["", *notes,
              "PSS (proportional set size) counts a page shared by k processes (torch's code and data, shared "
              "by the workers forked from one forkserver) as 1/k in each, so its sum is what the server "
              "really occupies; VmRSS sums count shared pages once per process.",
              f"Model: {info['name']} ({info['arch']}, {info['params']:,} parameters, sha256 {info['sha256']}) on "
              f"{info['device']}; "
              f"torch threads {threads} per engine; {os.cpu_count()} CPUs, load average {load} "
              f"(1/5/15 min, from other processes too); prompts: the 20 lines before a random cursor and its "
              f"line up to it, in {prompt_files(data)[1]}, kind=None, max_suggestions=3; every client its own "
              f"keep-alive connection and X-Client-Id, sending back to back."]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="checkpoints/default.pt")
    parser.add_argument("--data", default="data")
    parser.add_argument("--engine-worker", metavar="MODEL", help=argparse.SUPPRESS)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.engine_worker:
        engine_worker(args.engine_worker, args.server_torch_threads, args.server_device)
        return 0
    print(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
