"""A fine-tune beside the serving server (cpu_priority.py): what the typist waits, and how fast it trains.

    python -m benchmarks --only finetune_beside --model checkpoints/default.pt --data data/default-model
    python -m benchmarks.finetune_beside --beside-priorities idle normal --beside-typing-s 60

`make train SOURCES=...` runs on the machine that serves the editor. A real `server.py` (its defaults: one
worker per core) serves `--model`; a typist sends one request every `--beside-interval-ms` (the 20 lines
before a random cursor in held-out files, as benchmarks/server_load.py), each after the last is answered.
First the typist alone, then for each priority a real `scripts/finetune.py` at `--priority P` on
`--beside-project` (by default the standard library's `email` package: real code, offline) with
`--beside-threads` threads (make train's 2) and an endless step budget, replaying the default corpus when
`--data` has it. Once its steps run: `--beside-quiet-s` seconds with nobody typing, then `--beside-typing-s`
seconds of typing; the trainer is then stopped. Reported: the typist's latency percentiles and the trainer's
steps per second in both phases (from its log lines, one per 10 steps).
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path

from benchmarks import part_main
from cpu_priority import PRIORITIES

from .server_load import (ROOT, Client, ServerProcess, describe_statuses, percentile, sample_prompts,
                          stop_process)

STEP_LINE = re.compile(r"step (\d+) \[")


def add_arguments(parser: argparse.ArgumentParser):
    parser.add_argument("--beside-priorities", nargs="+", default=list(PRIORITIES), choices=PRIORITIES,
                        help="finetune_beside: the trainer's --priority values")
    parser.add_argument("--beside-project", default=str(Path(sysconfig.get_paths()["stdlib"]) / "email"),
                        help="finetune_beside: the folder fine-tuned on")
    parser.add_argument("--beside-threads", type=int, default=2, help="finetune_beside: the trainer's threads")
    parser.add_argument("--beside-interval-ms", type=float, default=250.0,
                        help="finetune_beside: the typist's time from one request's start to the next's")
    parser.add_argument("--beside-quiet-s", type=float, default=20.0,
                        help="finetune_beside: seconds of training with nobody typing")
    parser.add_argument("--beside-typing-s", type=float, default=60.0,
                        help="finetune_beside: seconds of typing beside the training")


class Trainer:
    """scripts/finetune.py in a subprocess; its step log lines with the time each arrived."""

    def __init__(self, args, priority: str, work: Path):
        replay = Path(args.data) / "corpus" / "meta.json"
        self.cmd = [sys.executable, str(ROOT / "scripts" / "finetune.py"), args.beside_project,
                    "--init", args.model, "--work", str(work), "--out", str(work / "personal.pt"),
                    "--priority", priority, "--threads", str(args.beside_threads), "--steps", "1000000",
                    "--eval-every", "1000000", "--patience", "0", "--typing-chars", "0", "--no-progress",
                    "--replay", args.data if replay.is_file() else ""]
        self.steps: list[tuple[float, int]] = []  # (monotonic time, step)
        self.lines: list[str] = []

    def __enter__(self):
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        threading.Thread(target=self._drain, daemon=True).start()
        return self

    def _drain(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            m = STEP_LINE.match(line)
            if m:
                self.steps.append((time.monotonic(), int(m.group(1))))

    def wait_for_steps(self, timeout: float = 600.0):
        deadline = time.monotonic() + timeout
        while not self.steps:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the fine-tune never reached its steps: {''.join(self.lines[-20:])}")
            time.sleep(0.2)

    def steps_per_second(self, t0: float, t1: float) -> float:
        inside = [(t, s) for t, s in self.steps if t0 <= t <= t1]
        if len(inside) < 2:
            return float("nan")
        (ta, sa), (tb, sb) = inside[0], inside[-1]
        return (sb - sa) / (tb - ta)

    def __exit__(self, *exc):
        stop_process(self.proc, grace_s=60)  # on SIGTERM it saves last.pt first


def type_for(client: Client, prompts: list[dict], seconds: float, interval_s: float) -> tuple[list, list]:
    latencies, failures = [], []
    end, k = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        t0 = time.monotonic()
        status, ms, _ = client.complete(prompts[k % len(prompts)])
        k += 1
        if status == 200:
            latencies.append(ms)
        else:
            failures.append(status)
        time.sleep(max(0.0, interval_s - (time.monotonic() - t0)))
    return latencies, failures


def rate(steps_per_second: float) -> str:
    return "–" if steps_per_second != steps_per_second else f"{steps_per_second:.2f}"  # nan: no trainer


def run(args) -> str:
    prompts = sample_prompts(args.data, 400, seed=7)
    interval = args.beside_interval_ms / 1000
    rows = []
    with ServerProcess(args.model) as srv, tempfile.TemporaryDirectory(prefix="beside-bench-") as tmp:
        client = Client(srv.port, client_id="typist")
        for body in prompts[:8]:  # warm-up
            client.complete(body)
        latencies, failures = type_for(client, prompts, args.beside_typing_s, interval)
        rows.append(("none (the server alone)", latencies, failures, float("nan"), float("nan")))
        for priority in args.beside_priorities:
            with Trainer(args, priority, Path(tmp) / priority) as trainer:
                trainer.wait_for_steps()
                t0 = time.monotonic()
                time.sleep(args.beside_quiet_s)
                t1 = time.monotonic()
                latencies, failures = type_for(client, prompts, args.beside_typing_s, interval)
                t2 = time.monotonic()
                rows.append((f"`--priority {priority}`", latencies, failures, trainer.steps_per_second(t0, t1),
                             trainer.steps_per_second(t1, t2)))
    lines = [f"One typist, a request every {args.beside_interval_ms:.0f} ms ({args.beside_typing_s:.0f} s), against "
             f"`server.py` with its defaults; the fine-tune: `scripts/finetune.py {Path(args.beside_project).name} "
             f"--threads {args.beside_threads}`, steps/s with nobody typing ({args.beside_quiet_s:.0f} s) and while "
             f"typing.", "",
             "| fine-tune beside the server | requests | p50 ms | p90 ms | p99 ms | max ms | steps/s, nobody typing "
             "| steps/s, typing |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, lat, failures, quiet, typing in rows:
        status = "" if not failures else f" ({describe_statuses(failures)})"
        lines.append(f"| {name} | {len(lat)}{status} | {percentile(lat, 50):.1f} | {percentile(lat, 90):.1f} | "
                     f"{percentile(lat, 99):.1f} | {max(lat):.1f} | {rate(quiet)} | {rate(typing)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    return part_main(__doc__, add_arguments, run, argv, data="data/default-model")


if __name__ == "__main__":
    sys.exit(main())
