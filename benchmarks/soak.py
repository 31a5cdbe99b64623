"""Memory soak: 16 clients type through held-out files for N minutes against one server; the memory of
the server and its workers is sampled all along.

    python -m benchmarks.soak --model checkpoints/default.pt --data data/default-model --minutes 30 \
        --out reports/soak.md          # (nohup ... & : it takes the whole time)
    python -m benchmarks --only soak --soak-minutes 30 ...                       # the same, inside make bench
    python -m benchmarks.soak ... --minutes 10 --soak-extra-kb 128                # project-aware requests

Each client types one character after another at random points of held-out files (the 20 lines before
the cursor and the cursor line as the prompt, its own X-Client-Id and keep-alive connection, back to
back, no think time) and jumps to a new random point every 40 keystrokes. Reported: summed VmRSS and PSS
of the server's processes after loading, after 10,000 requests, at every 5 minutes, and the growth over the
last 20 minutes; the samples go to a CSV next to the table.
"""
from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from pathlib import Path

import requests

from benchmarks.context import extra_chunks
from benchmarks.server_load import (Client, ServerProcess, describe_statuses, percentile, prompt_files,
                                    tree_memory_mib, tree_pids)


def add_arguments(parser: argparse.ArgumentParser):
    parser.add_argument("--soak-minutes", type=float, default=2.0, help="soak: how long the clients type")
    parser.add_argument("--soak-clients", type=int, default=16, help="soak: concurrent typing clients")
    parser.add_argument("--soak-server-args", default="", help="soak: extra server.py options (one string)")
    parser.add_argument("--soak-sample-s", type=float, default=15.0, help="soak: memory sample interval")
    parser.add_argument("--soak-extra-kb", type=int, default=0,
                        help="soak: project-aware requests with this much input_extra (the extension sends 128)")


def process_roles(server_pid: int, pids: list[int], cmdlines: dict[int, str], workers: set) -> dict[int, str]:
    roles = {}
    for p in pids:
        cmd = cmdlines.get(p, "")
        if p == server_pid:
            roles[p] = "HTTP server (waitress + Flask, no torch)"
        elif p in workers:
            roles[p] = "engine worker (model, slots)"
        elif "resource_tracker" in cmd:
            roles[p] = "multiprocessing resource tracker"
        elif "forkserver" in cmd:
            roles[p] = "forkserver (torch imported, no model)"
        else:
            roles[p] = "process"
    return roles


def typing_requests(files: list[Path], rng: random.Random, jump_every: int = 40, extra_chars: int = 0,
                    prompt_chars: int = 32768):
    """Endless keystroke requests: 20 lines + the cursor line up to the cursor, the rest of the line. With
    `extra_chars`, the project-aware request the extension sends: the last `prompt_chars` characters before
    the cursor and `input_extra` of other held-out files (its folder first), new at every jump."""
    while True:
        path = rng.choice(files)
        text = path.read_text(encoding="utf-8", errors="replace")
        if len(text) < 400:
            continue
        cursor = rng.randrange(100, len(text) - jump_every)
        extra = extra_chunks(path, files, extra_chars, rng) if extra_chars else None
        for pos in range(cursor, cursor + jump_every):
            line_start = text.rfind("\n", 0, pos) + 1
            start = line_start
            for _ in range(20):
                if start == 0:
                    break
                start = text.rfind("\n", 0, start - 1) + 1
            end = text.find("\n", pos)
            body = {"prompt": text[start:pos], "suffix": text[pos:end if end >= 0 else len(text)]}
            if extra is not None:
                body.update(prompt=text[max(0, pos - prompt_chars):pos], input_extra=extra)
            yield body


def run(args) -> str:
    minutes = getattr(args, "soak_minutes", 2.0)
    clients = getattr(args, "soak_clients", 16)
    extra = (getattr(args, "soak_server_args", "") or "").split()
    every = getattr(args, "soak_sample_s", 15.0)
    extra_chars = getattr(args, "soak_extra_kb", 0) * 1000
    out = getattr(args, "out", None)
    files, where = prompt_files(getattr(args, "data", None))
    samples = []  # (seconds, requests, rss MiB, pss MiB, processes)
    latencies, failures, count = [], [], [0]
    lock = threading.Lock()
    stop = threading.Event()
    csv_path = Path(out).with_suffix(".csv") if out and str(out).endswith(".md") else None

    with ServerProcess(args.model, "--torch-threads", "1", *extra) as srv:
        t0 = time.monotonic()
        loaded = tree_memory_mib(srv.proc.pid)
        samples.append((0.0, 0, loaded["rss"], loaded["pss"], loaded["processes"]))

        def client(i: int):
            rng = random.Random(1000 + i)
            c = Client(srv.port, client_id=f"soak-{i}")
            for body in typing_requests(files, rng, extra_chars=extra_chars):
                if stop.is_set():
                    return
                try:
                    status, ms, _ = c.complete(body)
                except OSError as e:  # keep typing on a new connection; the failure is counted
                    status, ms = repr(e)[:60], 0.0
                    c = Client(srv.port, client_id=f"soak-{i}")
                with lock:
                    count[0] += 1
                    if status == 200:
                        latencies.append(ms)
                    else:
                        failures.append(status)

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
        for t in threads:
            t.start()
        at_10k = None
        next_sample = every
        while (elapsed := time.monotonic() - t0) < minutes * 60:
            time.sleep(min(1.0, max(0.0, next_sample - elapsed)))
            elapsed = time.monotonic() - t0
            if at_10k is None and count[0] >= 10_000:
                m = tree_memory_mib(srv.proc.pid)
                at_10k = (elapsed, count[0], m["rss"], m["pss"], m["processes"])
            if elapsed >= next_sample:
                m = tree_memory_mib(srv.proc.pid)
                samples.append((elapsed, count[0], m["rss"], m["pss"], m["processes"]))
                next_sample += every
                if csv_path:
                    csv_path.parent.mkdir(parents=True, exist_ok=True)
                    csv_path.write_text("seconds,requests,rss_mib,pss_mib,processes\n" + "".join(
                        f"{s:.0f},{n},{r:.1f},{p:.1f},{k}\n" for s, n, r, p, k in samples))
                print(f"soak {elapsed / 60:.1f} min: {count[0]} requests, RSS {m['rss']:.0f} MiB, "
                      f"PSS {m['pss']:.0f} MiB, {len(failures)} failures", file=sys.stderr, flush=True)
        stop.set()
        for t in threads:
            t.join(30)
        wall = time.monotonic() - t0
        final = tree_memory_mib(srv.proc.pid)
        from serving.memory import proc_memory_kib
        per_process = [(p, proc_memory_kib(p)) for p in tree_pids(srv.proc.pid)]
        try:
            workers = set(requests.get(srv.url + "/health", timeout=30).json().get("workers", {}).get("pids", []))
        except (requests.RequestException, ValueError):
            workers = set()
        cmdlines = {p: Path(f"/proc/{p}/cmdline").read_text().replace("\0", " ") for p, _ in per_process}

    def row(name, s):
        return f"| {name} | {s[1]:,} | {s[2]:.0f} MiB | {s[3]:.0f} MiB |"

    what = (f"project-aware requests (the last 32K characters before the cursor + {extra_chars // 1000} KB of "
            "input_extra, new at every jump)" if extra_chars else "20-line requests")
    lines = [f"{clients} clients typing ({what}) for {minutes:g} min against "
             f"`server.py {' '.join(extra) or '(defaults)'}`: "
             f"{count[0]:,} requests ({count[0] / wall:.1f}/s), p50 {percentile(latencies, 50):.1f} ms, "
             f"p99 {percentile(latencies, 99):.1f} ms, not 200: {describe_statuses(failures)}.", "",
             "| when | requests so far | VmRSS, all processes | PSS, all processes |", "|---|---:|---:|---:|",
             row("model loaded", samples[0])]
    if at_10k:
        lines.append(row(f"after 10,000 requests ({at_10k[0] / 60:.1f} min)", at_10k))
    for s in samples[1:]:
        if int(s[0]) % 300 < every or s is samples[-1]:
            lines.append(row(f"{s[0] / 60:.1f} min", s))
    lines.append(row("end", (wall, count[0], final["rss"], final["pss"], final["processes"])))
    if minutes >= 20:
        ref = min(samples, key=lambda s: abs(s[0] - (wall - 20 * 60)))
        window = [s for s in samples if s[0] >= ref[0]]
        lines += ["", f"Over the last 20 minutes (from {ref[0] / 60:.1f} min): PSS {ref[3]:.0f} → {final['pss']:.0f} MiB "
                      f"({final['pss'] - ref[3]:+.0f}), VmRSS {ref[2]:.0f} → {final['rss']:.0f} MiB "
                      f"({final['rss'] - ref[2]:+.0f}); PSS range in that window "
                      f"{min(s[3] for s in window):.0f}–{max(s[3] for s in window):.0f} MiB."]
    lines += ["", "| process | VmRSS | VmHWM (peak) | PSS | private (USS) |", "|---|---:|---:|---:|---:|"]
    roles = process_roles(srv.proc.pid, [p for p, _ in per_process], cmdlines, workers)
    for p, m in per_process:
        if m:
            lines.append(f"| {roles[p]} (pid {p}) | {m.get('VmRSS', 0) / 1024:.0f} MiB | "
                         f"{m.get('VmHWM', 0) / 1024:.0f} MiB | {m.get('Pss', 0) / 1024:.0f} MiB | "
                         f"{m.get('USS', 0) / 1024:.0f} MiB |")
    lines += ["", f"Prompts from {where}; model {args.model}; memory from /proc/PID/status and smaps_rollup of the "
                  "server and every descendant (forkserver, engine workers, multiprocessing's resource tracker)."]
    text = "\n".join(lines)
    if out and str(out).endswith(".md") and "soak" in str(out):
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="checkpoints/default.pt")
    parser.add_argument("--data", default="data")
    parser.add_argument("--minutes", type=float, dest="soak_minutes", default=30.0)
    parser.add_argument("--out", default="reports/soak.md")
    add_arguments(parser)
    args = parser.parse_args(argv)
    print(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
