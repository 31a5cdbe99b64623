"""One engine worker process (pool.py starts them): loads the model, runs `slots` engine slots over one
batching model (batching.py), answers requests from its pipe. The HTTP process imports this module too
(to name the worker's entry point, and for `engine_stats`), so torch is imported only inside functions:
the forkserver preloads torch itself (pool.py)."""
from __future__ import annotations

import gc
import math
import os
import queue
import threading
import time
from dataclasses import asdict, is_dataclass

from .memory import trim, tune_malloc
from .processes import leave_forkserver

IDLE_TRIM_S = 1.0  # a worker this long without a request gives its free heap back to the OS

# Engine stats that are levels, not counters (the rest only grow).
ENGINE_GAUGES = {"cache_entries", "cache_size", "mean_ms", "context_blocks", "context_block_bytes",
                 "context_segments", "context_segment_bytes", "cache_bytes", "cache_max_bytes",
                 "step_cache_bytes", "step_cache_max_bytes", "names_tables",
                 "names_table_bytes", "imports_modules", "imports_module_bytes", "models_loaded"}


def engine_stats(predictor) -> dict[str, float]:
    """The predictor's numeric stats (cache hits, ...) as metric-name-safe keys; {} if it has none."""
    stats = getattr(predictor, "stats", None)
    if callable(stats):
        stats = stats()
    if stats is None:
        return {}
    if is_dataclass(stats):
        stats = asdict(stats)
    elif not isinstance(stats, dict):
        stats = getattr(stats, "__dict__", {})
    for _ in range(3):  # the engine may add a key while we copy; try again
        try:
            stats = dict(stats)
            break
        except RuntimeError:
            continue
    from .caches import cache_usage
    stats.update(cache_usage(predictor))
    out = {}
    for key, value in stats.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        name = "".join(c if c.isalnum() else "_" for c in str(key)).strip("_").lower()
        if name:
            out[name] = int(value) if isinstance(value, int) else float(value)  # not numpy's: see loading.plain
    return out


def resolve_device(device: str) -> str:
    import torch
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"--device {device}: CUDA is not available to this torch ({torch.__version__})")
    return device


def build_slots(model, tokenizer, slots: int, cache_mb: float, device: str, batching: bool,
                batch_wait_ms: float):
    """`slots` Predictors over one BatchingModel, all their caches within `cache_mb` together."""
    from evaluate.context import ContextConfig
    from evaluate.predictor import Predictor, PredictorConfig

    from .batching import BatchingModel
    from .caches import bound_predictor
    shared = BatchingModel(model, device=device, max_wait_ms=batch_wait_ms, batching=batching and slots > 1)
    budget = int(cache_mb * 2**20) // slots
    # Per slot: half for the model-state caches, half for the project-context store (its default split
    # 1:3 between token blocks and segment indexes).
    # The context store's lookup memos are bounded in entries, not bytes (4 memories x 2,048 lookups, ~1 KB
    # each, per slot): fewer per slot, so that slots do not multiply them (what a typing client needs is
    # the memory of its current line: 2 memories x 512 lookups cover ~15 keystrokes of searches).
    predictors, index = [], None
    for _ in range(slots):
        context = ContextConfig(max_block_bytes=budget // 8, max_segment_bytes=budget * 3 // 8,
                                memos=2, memo_size=512)
        p = Predictor(shared, tokenizer, config=PredictorConfig(context=context))
        bound_predictor(p, budget // 2)
        # One token index per worker: it is read-only apart from its lru_caches (thread-safe), which would
        # otherwise be kept once per slot.
        index = index or p.index
        p.index = index
        predictors.append(p)
    return shared, predictors


def served_loader(slots: int, cache_mb: float, device: str, batching: bool, batch_wait_ms: float, quantize: str):
    """`load(path) -> models.Served`: a named model (models.py) with its own slots, as `main` builds the
    default one."""
    def load(path: str):
        from .loading import load_for_inference
        from .models import Served
        from .reload import file_signature
        signature = file_signature(path)  # before the read: a file that changes while it is read loads again
        ckpt, model, info = load_for_inference(path, device, quantize)
        shared, predictors = build_slots(model, ckpt.tokenizer, slots, cache_mb, info["device"], batching,
                                         batch_wait_ms)
        return Served(predictors, shared, info["sha256"], signature)
    return load


def main(conn, cfg: dict) -> None:
    import torch
    leave_forkserver()  # the pool may stop the forkserver while this worker runs (processes.py)
    tune_malloc()
    torch.set_num_threads(cfg["torch_threads"])
    try:
        from .loading import load_for_inference
        from .preload import take
        loaded = take(cfg["model"], cfg["quantize"]) if resolve_device(cfg["device"]) == "cpu" else None
        ckpt, model, info = loaded or load_for_inference(cfg["model"], cfg["device"], cfg["quantize"])
        shared, predictors = build_slots(model, ckpt.tokenizer, cfg["slots"], cfg["cache_mb"], info["device"],
                                         cfg["batching"], cfg["batch_wait_ms"])
    except BaseException as e:  # noqa: BLE001 - reported to the parent in one line
        conn.send(("error", f"cannot load model {cfg['model']}: {' '.join(str(e).split())[:300]}"))
        return
    from .models import ModelSet, ModelUnavailable
    models = ModelSet(served_loader(cfg["slots"], cfg["cache_mb"], info["device"], cfg["batching"],
                                    cfg["batch_wait_ms"], cfg["quantize"]),
                      cfg["max_models"], cfg["check_interval_s"])
    gc.collect()
    trim()  # loading's transient copies (the checkpoint's tensors, quantization) back to the OS
    conn.send(("ready", info))
    if cfg.get("preload_models"):  # --preload-models: the named models load while this worker serves (models.py)
        models.start_preload(cfg.get("models_dir"), cfg["model"])
    send_lock = threading.Lock()
    queues = [queue.SimpleQueue() for _ in predictors]
    busy = [0]
    busy_lock = threading.Lock()
    last_trim = [time.monotonic()]
    trim_lock = threading.Lock()

    def send(message):
        with send_lock:
            try:
                conn.send(message)
            except (OSError, ValueError):
                os._exit(0)  # the server is gone

    def stats() -> dict:
        total: dict[str, float] = {}
        named = models.served()
        for p in predictors + [p for m in named for p in m.predictors]:
            for k, v in engine_stats(p).items():
                if k != "mean_ms":
                    total[k] = total.get(k, 0) + v
        batching = [shared] + [m.shared for m in named]
        total.update(batches=sum(b.batches for b in batching), batched_calls=sum(b.batched_calls for b in batching),
                     batched_rows=sum(b.rows for b in batching), **models.stats())
        # No /proc reads here: smaps_rollup costs ~5 ms in a torch process, on every idle answer. The HTTP
        # process reads a worker's memory by its pid when /metrics is scraped (pool.py).
        return total

    def serve(i: int):
        q = queues[i]
        while True:
            rid, args = q.get()
            t0 = time.perf_counter()
            sha, error_kind = None, "error"
            try:
                # "model_path": a named model (models.py), checked by the HTTP process; absent: the default
                if args.get("model_path"):
                    named = models.get(args["model_path"])
                    predictor, model, sha = named.predictors[i], named.shared, named.sha256
                else:
                    predictor, model = predictors[i], shared
                with model.request():
                    completions = predictor.complete(
                        args["prompt"], suffix=args["suffix"], kind=args["kind"],
                        max_suggestions=args["max_suggestions"], time_budget_ms=args["time_budget_ms"],
                        extra=args["extra"])
                ms = (time.perf_counter() - t0) * 1000
                answer = [(c.text, float(c.prob)) for c in completions]
                error = None
            except ModelUnavailable as e:
                error, error_kind = str(e), "unavailable"
            except Exception as e:  # noqa: BLE001 - the request fails, the worker lives on
                error = f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
            with busy_lock:
                busy[0] -= 1
                idle = busy[0] == 0
            if error is None:
                # Stats when idle and every 16th request (every slot's counters: ~0.05 ms).
                send((rid, "ok", (answer, ms, stats() if idle or rid % 16 == 0 else None, sha)))
            else:
                send((rid, error_kind, error))
            # Under load, give freed heap pages back to the OS every 2 s (without it RSS drifts up by the
            # transient peaks of concurrent searches); after the answer is sent, so no request waits for it.
            # Not after every idle answer: the next keystroke would fault the pages back in (below).
            if time.monotonic() - last_trim[0] > 2.0:
                trim_now()

    def trim_now():
        if trim_lock.acquire(blocking=False):
            try:
                last_trim[0] = time.monotonic()
                trim()
            finally:
                trim_lock.release()

    for i in range(len(predictors)):
        threading.Thread(target=serve, args=(i,), name=f"slot-{i}", daemon=True).start()
    served_since_trim = False
    while True:
        try:
            # Trim when no request came for IDLE_TRIM_S (the user paused): between a typist's keystrokes,
            # 0.1-0.3 s apart, it would cost the next request ~1,500 page faults.
            if not conn.poll(IDLE_TRIM_S):
                if served_since_trim and busy[0] == 0:
                    trim_now()
                    served_since_trim = False
                continue
            message = conn.recv()
            if message is None:  # the pool is closing (pool.close)
                os._exit(0)
            rid, slot, args = message
            served_since_trim = True
        except (EOFError, OSError):
            os._exit(0)  # the server closed the pipe or died: nothing left to serve
        with busy_lock:
            busy[0] += 1
        queues[slot].put((rid, args))
