"""Process memory: what the server reads (/proc) and how glibc malloc is kept from hoarding (no torch
import here: the HTTP process of a worker pool never loads torch).

glibc raises its mmap threshold dynamically once large blocks are freed, after which the 0.25-2 MB
tensors of model states come from the heap and may fragment it; and every thread that allocates gets its
own arena. What is set here: at most 2 arenas; a fixed mmap threshold of 32 MiB and a trim threshold of
64 MiB, so that the states a search allocates and frees come from the heap and are reused, not mmapped and
unmapped; and `malloc_trim` (worker.py) when a worker has been idle for a moment and every 2 s under
load, which gives what is free back to the OS. Why not a small mmap threshold (256 KiB, the first version:
every state its own mapping, returned to the OS when freed): each request then faulted ~1,500 fresh pages
(`ru_minflt`), 1,537 against 110 per request with 32 MiB, a few ms of every keystroke in a worker on this
VM. The byte bounds of the engine caches are in caches.py. Measured: docs/server.md.

jemalloc for the engine workers (`--allocator auto`, the default, when Debian's libjemalloc2 or another
libjemalloc.so.2 is installed): even so, glibc kept ~45 MiB per worker beyond the engine's accounted caches
under 16 typing clients (states of many sizes freed in every order fragment its arenas, and `malloc_trim`
returns only whole free pages). jemalloc's size classes and its decay of unused pages (1 s here) hold less:
3-minute soaks of the same server, 16 clients, no budget: summed PSS 461 MiB with glibc, 407 with jemalloc,
the same throughput (59.2 / 57.6 requests/s). It is preloaded (`LD_PRELOAD`) into the forkserver the workers
are forked from, so only they use it; the HTTP process keeps glibc (it allocates little).
"""
from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path


def proc_memory_kib(pid: int | str = "self", rollup: bool = True) -> dict[str, int]:
    """VmRSS / VmHWM from /proc/PID/status and, with `rollup`, Pss / Private (USS) from smaps_rollup, in KiB.
    status costs ~0.03 ms; smaps_rollup ~5 ms in a process that has loaded torch (it walks every mapping)."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
        for line in (Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines() if rollup else ()):
            key, _, value = line.partition(":")
            if key in ("Pss", "Private_Clean", "Private_Dirty", "Shared_Clean", "Shared_Dirty"):
                out[key] = int(value.split()[0])
    except (OSError, ValueError):
        pass
    if "Private_Clean" in out:
        out["USS"] = out["Private_Clean"] + out.get("Private_Dirty", 0)
    return out


_libc = None


def _glibc():
    global _libc
    if _libc is None and sys.platform.startswith("linux"):
        try:
            _libc = ctypes.CDLL("libc.so.6")
        except OSError:
            _libc = False
    return _libc or None


def tune_malloc(arenas: int = 2, mmap_threshold: int = 32 * 2**20, trim_threshold: int = 64 * 2**20) -> None:
    """Cap glibc's arenas and fix its mmap and trim thresholds (see the module docstring), unless the
    environment sets MALLOC_ARENA_MAX / MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ itself. Call
    before threads start."""
    libc = _glibc()
    if libc is None:
        return
    try:
        if "MALLOC_ARENA_MAX" not in os.environ:
            libc.mallopt(-8, arenas)  # M_ARENA_MAX
        if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
            libc.mallopt(-3, mmap_threshold)  # M_MMAP_THRESHOLD (also stops its dynamic growth)
        if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
            libc.mallopt(-1, trim_threshold)  # M_TRIM_THRESHOLD: free() keeps this much at the heap's top
    except AttributeError:
        pass


def trim() -> None:
    """Hand freed heap pages back to the OS (glibc malloc_trim)."""
    libc = _glibc()
    if libc is not None:
        try:
            libc.malloc_trim(0)
        except AttributeError:
            pass


JEMALLOC_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
                 "/usr/local/lib", "/opt/homebrew/lib")
JEMALLOC_CONF = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:1"


def find_jemalloc() -> str | None:
    """Path of an installed libjemalloc.so.2 (Linux), or None."""
    if not sys.platform.startswith("linux"):
        return None
    for d in JEMALLOC_DIRS:
        path = Path(d) / "libjemalloc.so.2"
        if path.is_file():
            return str(path)
    return None


def engine_allocator(choice: str) -> str:
    """Arrange for processes started from now on (the engine workers' forkserver) to use `choice`: "auto"
    (jemalloc when installed, else glibc), "jemalloc" (ValueError when it is not installed) or "glibc".
    Sets LD_PRELOAD / MALLOC_CONF in this process's environment unless LD_PRELOAD is set already.
    Returns what the workers will use ("jemalloc PATH", "glibc" or "LD_PRELOAD=...")."""
    if choice not in ("auto", "jemalloc", "glibc"):
        raise ValueError(f"unknown allocator {choice!r}")
    if os.environ.get("LD_PRELOAD"):
        return f"LD_PRELOAD={os.environ['LD_PRELOAD']}"  # the operator's choice
    path = find_jemalloc() if choice != "glibc" else None
    if path is None:
        if choice == "jemalloc":
            raise ValueError("--allocator jemalloc: libjemalloc.so.2 not found (Debian: apt install libjemalloc2)")
        return "glibc"
    os.environ["LD_PRELOAD"] = path
    os.environ.setdefault("MALLOC_CONF", JEMALLOC_CONF)
    return f"jemalloc {path}"
