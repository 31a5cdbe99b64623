"""Process memory: what the server reads (/proc) and how glibc malloc is kept from hoarding (no torch
import here: the HTTP process of a worker pool never loads torch).

glibc raises its mmap threshold dynamically once large blocks are freed, after which the 0.25-2 MB
tensors of model states come from the heap and fragment it; and every thread that allocates gets its own
arena. A fixed mmap threshold (256 KiB: states and batched logits are mmapped and returned to the OS
when freed), at most 2 arenas, and `malloc_trim` after idle moments keep RSS at what is live. The byte
bounds of the engine caches are in caches.py. Measured: docs/server.md.
"""
from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path


def proc_memory_kib(pid: int | str = "self") -> dict[str, int]:
    """VmRSS / VmHWM from /proc/PID/status and Pss / Private (USS) from smaps_rollup, in KiB."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
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


def tune_malloc(arenas: int = 2, mmap_threshold: int = 256 * 1024) -> None:
    """Cap glibc's arenas and fix its mmap threshold (see the module docstring), unless the environment
    sets MALLOC_ARENA_MAX / MALLOC_MMAP_THRESHOLD_ itself. Call before threads start."""
    libc = _glibc()
    if libc is None:
        return
    try:
        if "MALLOC_ARENA_MAX" not in os.environ:
            libc.mallopt(-8, arenas)  # M_ARENA_MAX
        if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
            libc.mallopt(-3, mmap_threshold)  # M_MMAP_THRESHOLD (also stops its dynamic growth)
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
