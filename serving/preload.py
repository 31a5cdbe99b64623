"""The pool's model, loaded once in the forkserver before the engine workers are forked from it.

Why: each worker used to load the checkpoint itself, after the fork, so each held its own copy of what
loading makes: the weights (int8 linear layers and their packed copies, float embeddings), the tokenizer and
the Python objects around them (the engine's own tables are still built in each worker). Loaded before the
fork, those pages are shared by the workers (copy-on-write; inference only reads them). Measured on the
default server (2 workers, smaps_rollup once loaded): 58 -> 22 MiB private per worker, 318 -> 249 MiB summed
PSS (with jemalloc's single arena, memory.py); after a 30-minute 16-client soak 483 -> 400 MiB
(docs/server.md). The forkserver itself is stopped once the workers run (processes.py); its pages stay
shared by them.

How: pool.py puts what to load in the environment the forkserver is started with (`PRELOAD_ENV`: JSON of
model, device, quantize) and imports this module there (its preload list, before serving.freeze, so these
objects are frozen too); the HTTP process never imports it (it loads on import, and must not load torch).
A worker takes the preloaded model when it is the one it was asked for (the same file, size and modification
time, the same quantization) and loads its own otherwise.

Only on the CPU: a process that has touched CUDA cannot fork children that use it, so with a CUDA build of
torch and a device other than "cpu" nothing is preloaded (`torch.cuda.is_available()` itself would
initialise the driver here). The forkserver keeps torch to one thread: a process that forks must not have
started an OpenMP thread pool (GNU libgomp's does not survive a fork). A failure here is never raised (an
exception would kill the forkserver): the worker loads the model itself and reports the error as before.
"""
from __future__ import annotations

import json
import os

from .pool import PRELOAD_ENV

_loaded: tuple | None = None  # (key, (checkpoint, model, info))


def _key(model: str, quantize: str) -> tuple | None:
    try:
        st = os.stat(model)
    except OSError:
        return None
    return os.path.realpath(model), st.st_size, st.st_mtime_ns, quantize


def _preload() -> None:
    global _loaded
    try:
        spec = json.loads(os.environ.get(PRELOAD_ENV) or "null")
        if not spec:
            return
        import torch
        if spec["device"] != "cpu" and torch.backends.cuda.is_built():
            return
        key = _key(spec["model"], spec["quantize"])
        if key is None:
            return
        torch.set_num_threads(1)
        from .loading import load_for_inference
        _loaded = key, load_for_inference(spec["model"], "cpu", spec["quantize"])
    except Exception:  # noqa: BLE001 - see the module docstring
        _loaded = None


def take(model: str, quantize: str):
    """(checkpoint, model, info) preloaded in the forkserver if it is `model` with `quantize`, else None."""
    if _loaded is None or _key(model, quantize) != _loaded[0]:
        return None
    ckpt, model_, info = _loaded[1]
    return ckpt, model_, dict(info, preloaded=True)


_preload()
