"""Engine worker pool: every core computes, each client keeps reaching the same prefix cache.

Design. The HTTP process (Flask under waitress) holds no model and imports no torch. `--workers N`
engine processes (default: one per core) each load the model once and run `--slots S` engine slots, one
`Predictor` (its own prefix/step/context caches) on its own thread per slot, over one shared model whose
concurrent forward calls are batched (batching.py). A slot computes one request at a time; in front of
each worker the HTTP process keeps one bounded FIFO over its slots (gate.SlotGate: queue size, wait bound,
503 + Retry-After, hung-up clients dropped before they reach the engine; the first slot to free up takes
the oldest request).

Why processes. Measured on this 2-core CPU with 16 clients (docs/server.md): two single-slot worker
processes 33.3 requests/s, two engine threads in one process 26.6, the single engine before 18.5. A search
step is mostly Python op dispatch holding the GIL, so threads partly serialise; processes share no GIL.
Why one slot per worker by default: on 2 cores, 4 slots per worker (concurrent searches, steps batched)
answered 27.4/s, better than 4 unbatched slots (16.7/s) but below one slot per worker. They are forked from
a forkserver that imported torch once, so torch's pages are shared between workers (see PSS in the
memory table); the forkserver is stopped once they run and the HTTP process adopts them (processes.py:
~70 MiB less), so a replacement starts a new forkserver first (~3 s instead of ~1 s).

Affinity. A request's key is its `X-Client-Id` header, else its TCP connection (an editor keeps one
keep-alive connection while typing). crc32(key) picks a home worker and a home slot in it, so a
client's consecutive keystrokes find their prefix state in that slot's cache. A request goes to its home
worker unless another has at least 2 requests fewer in flight or waiting, and there to its home slot if
that is free, else to any free slot, else it waits for the first to free up (a typing client sends one
request at a time, so it nearly always finds home free; a burst spreads over the cores and slots).

Failure. Each worker talks over its own pipe; a reader thread per worker resolves the requests it
answers. When a worker dies (EOF on the pipe) every request in flight on it gets 503 + Retry-After at
once (none hangs), its slots take no new requests, and a replacement is started; `/health` answers 503
only when no worker is ready. A worker that does not answer within `request_timeout_s` is killed and
replaced the same way.
"""
from __future__ import annotations

import itertools
import json
import logging
import multiprocessing
import os
import threading
import time
import zlib
from dataclasses import dataclass

from . import processes
from .gate import ModelGate, SlotGate
from .memory import proc_memory_kib
from .models import DEFAULT_CHECK_INTERVAL_S, DEFAULT_MAX_MODELS, ModelSet, ModelUnavailable

log = logging.getLogger("autocomplete.pool")


class NoWorker(Exception):
    """No engine worker is ready (all restarting)."""


# What the forkserver preloads (preload.py): set in the environment it is started with.
PRELOAD_ENV = "AUTOCOMPLETE_PRELOAD_MODEL"


class WorkerLost(Exception):
    """The worker computing a request died or stopped answering (answered 503: retry)."""


class EngineError(Exception):
    """The engine raised (a bug, answered 500)."""


@dataclass
class PoolConfig:
    model: str
    workers: int = 2
    slots: int = 1                 # engine slots (Predictors) per worker
    device: str = "cpu"
    quantize: str = "auto"         # models/quantize.py: int8 weights on the CPU
    torch_threads: int = 1
    cache_mb: float = 64.0         # per worker: prefix + step caches + context store of all its slots
    batching: bool = True
    batch_wait_ms: float = 2.0
    queue_size: int = 16           # requests that may wait for one worker's slots
    request_timeout_s: float = 60.0
    start_timeout_s: float = 300.0
    release_forkserver: bool = True  # stop the forkserver while no worker is being started (processes.py)
    preload_model: bool = True     # load the model in the forkserver: the workers share it (preload.py)
    max_models: int = DEFAULT_MAX_MODELS  # named models (--models-dir) each worker holds at most (models.py)
    check_interval_s: float = DEFAULT_CHECK_INTERVAL_S  # how often a named model's file is looked at
    models_dir: str | None = None  # --models-dir, for --preload-models (models.py preload_order)
    preload_models: bool = False   # each worker loads the named models at its start, not at their first request


def client_slot(key: str, workers: int, slots: int) -> tuple[int, int]:
    h = zlib.crc32(key.encode("utf-8", "replace"))
    return h % workers, (h // workers) % slots


class Slot:
    def __init__(self, worker: int, index: int):
        self.worker, self.index = worker, index


class _Worker:
    def __init__(self, index: int):
        self.index = index
        self.process = None
        self.conn = None
        self.send_lock = threading.Lock()
        self.ready = False
        self.pending: dict[int, dict] = {}  # request id -> {"event", "result"}
        self.in_flight = 0
        self.stats: dict = {}
        self.restarts = 0
        self.info: dict = {}
        self.retired = False  # replaced by a reload: finishes what it has, is never respawned


class WorkerPool:
    """N engine processes x S slots. `start()` blocks until every worker has loaded the model."""

    def __init__(self, config: PoolConfig):
        self.config = config
        self.workers = [_Worker(i) for i in range(config.workers)]
        self.slots = [[Slot(w, s) for s in range(config.slots)] for w in range(config.workers)]
        self.gates = [SlotGate(row, config.queue_size) for row in self.slots]
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._closed = False
        self.info: dict = {}
        self.deaths = 0
        self._forking = 0  # spawns under way: the forkserver is stopped only when none is
        self._fork_lock = threading.Lock()
        self._adopts = processes.become_subreaper() if config.release_forkserver else False
        self._ctx = multiprocessing.get_context("forkserver")
        # Imported once in the forkserver; every worker forked from it shares these pages, and the model
        # (preload.py) when it can be loaded there.
        if config.preload_model:
            os.environ[PRELOAD_ENV] = json.dumps(
                {"model": str(config.model), "device": config.device, "quantize": config.quantize})
        else:
            os.environ.pop(PRELOAD_ENV, None)
        self._ctx.set_forkserver_preload(["torch", "serving.worker", "serving.batching", "evaluate.predictor",
                                          "models.checkpoint", "serving.preload", "serving.freeze"])

    # ------------------------------------------------------------------ life cycle
    def start(self) -> dict:
        self._spawn_all(self.workers)
        if not any(w.ready for w in self.workers):
            raise RuntimeError(self.workers[0].info.get("error", "no engine worker started"))
        self.info = next(w.info for w in self.workers if w.ready)
        return self.info

    def reload(self) -> dict:
        """Serve `config.model` as the file is now (reload.py): a new worker per old one, all loaded before
        any is swapped in; the old ones finish their requests and stop. Raises RuntimeError, the old workers
        still serving, when a new one cannot start. Returns the new model's info."""
        with self._reload_lock:
            fresh = [_Worker(w.index) for w in self.workers]
            self._spawn_all(fresh)
            failed = [w for w in fresh if not w.ready]
            with self._lock:
                closed = self._closed
                if not failed and not closed:
                    old, self.workers = self.workers, fresh
                    for new, before in zip(fresh, old):
                        new.restarts = before.restarts
                        before.retired = True
            if failed or closed:
                for w in fresh:
                    if w.ready:
                        w.retired = True
                        self._retire(w)
                raise RuntimeError(failed[0].info.get("error", "engine worker did not start") if failed
                                   else "the pool is closed")
            self.info = fresh[0].info
        for w in old:
            threading.Thread(target=self._retire, args=(w,), name=f"pool-retire-{w.index}", daemon=True).start()
        return self.info

    def _retire(self, w: _Worker) -> None:
        """Stop worker `w`, replaced by a reload, once the requests sent to it are answered."""
        deadline = time.monotonic() + self.config.request_timeout_s
        while w.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._lock:
            w.ready = False
        if w.process is None:  # it never started
            return
        self._send_stop(w)
        processes.reap_or_kill(w.process.pid, 5)

    def _spawn_all(self, workers: list[_Worker]) -> None:
        """Start `workers` side by side and wait until each has loaded the model or failed."""
        with self._fork_lock:
            self._forking += len(workers)
        threads = [threading.Thread(target=self._spawn, args=(w, True), daemon=True) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _spawn(self, w: _Worker, counted: bool = False) -> None:
        """Start worker `w` and wait until it has loaded the model (or failed: `w.info["error"]`); then stop
        the forkserver if no other spawn is under way (`counted`: start() has counted this one already)."""
        if not counted:
            with self._fork_lock:
                self._forking += 1
        try:
            self._start_worker(w)
        finally:
            with self._fork_lock:
                self._forking -= 1
                if self._forking == 0 and self._adopts and not self._closed:
                    processes.stop_forkserver()

    def _start_worker(self, w: _Worker) -> None:
        from . import worker as worker_module
        parent, child = self._ctx.Pipe(duplex=True)
        cfg = self.config
        process = self._ctx.Process(
            target=worker_module.main, name=f"engine-worker-{w.index}", daemon=True,
            args=(child, dict(model=cfg.model, slots=cfg.slots, device=cfg.device,
                              torch_threads=cfg.torch_threads, cache_mb=cfg.cache_mb, batching=cfg.batching,
                              batch_wait_ms=cfg.batch_wait_ms, index=w.index, quantize=cfg.quantize,
                              max_models=cfg.max_models, check_interval_s=cfg.check_interval_s,
                              models_dir=cfg.models_dir, preload_models=cfg.preload_models)))
        process.start()
        child.close()  # the worker holds its end: its death reads as EOF here
        deadline = time.monotonic() + cfg.start_timeout_s
        while not parent.poll(0.2):
            if not process.is_alive() or time.monotonic() > deadline:
                process.kill()
                w.info = {"error": f"engine worker {w.index} did not start (exit {process.exitcode})"}
                return
        try:
            kind, payload = parent.recv()
        except (EOFError, OSError):
            process.join(5)
            w.info = {"error": f"engine worker {w.index} exited while loading (exit {process.exitcode})"}
            return
        if kind != "ready":
            process.join(5)
            w.info = {"error": payload}
            return
        with self._lock:
            if self._closed or w.retired:  # closed, or replaced by a reload while it started
                process.kill()
                return
            w.process, w.conn, w.info = process, parent, payload
            w.ready = True
        threading.Thread(target=self._reader, args=(w, parent), name=f"pool-reader-{w.index}",
                         daemon=True).start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = [w for w in self.workers if w.process is not None]
        for w in workers:
            self._send_stop(w)
        for w in workers:
            processes.reap_or_kill(w.process.pid, 5)

    @staticmethod
    def _send_stop(w: _Worker) -> None:
        """Ask worker `w` to exit and close our end of its pipe. A stop message, not only close(): the reader
        thread blocked in recv() on this connection keeps the socket open after close(), so the worker would
        see no EOF (and be killed 5 s later)."""
        try:
            with w.send_lock:
                w.conn.send(None)
            w.conn.close()
        except OSError:  # it died meanwhile (its connection closed)
            pass

    @property
    def healthy(self) -> bool:
        return any(w.ready for w in self.workers)

    def pids(self) -> list[int]:
        return [w.process.pid for w in self.workers if w.ready and w.process is not None]

    # ------------------------------------------------------------------ routing
    def enter(self, key: str, timeout: float) -> Slot | None:
        """A slot for a request with affinity `key` (see the module docstring), once one is free; None after
        `timeout` s; raises QueueFull, or NoWorker when no worker is ready. Give it back with `leave`."""
        live = [w for w in self.workers if w.ready]
        if not live:
            raise NoWorker
        home_w, home_s = client_slot(key, len(self.workers), self.config.slots)
        if not self.workers[home_w].ready:
            home_w = live[home_w % len(live)].index

        def load(w):
            return w.in_flight + self.gates[w.index].depth

        least = min(live, key=load)
        w = least.index if load(least) + 2 <= load(self.workers[home_w]) else home_w
        return self.gates[w].enter(self.slots[w][home_s], timeout)

    def leave(self, slot: Slot) -> None:
        self.gates[slot.worker].leave(slot)

    @property
    def depth(self) -> int:
        return sum(g.depth for g in self.gates)

    # ------------------------------------------------------------------ requests
    def complete(self, slot: Slot, args: dict):
        """Run a validated request on `slot` (whose gate the caller holds): (completions, engine ms, the
        sha256 prefix of the model file that computed them: a reload may have swapped it since)."""
        rid = next(self._ids)
        entry = {"event": threading.Event(), "result": None}
        with self._lock:
            w = self.workers[slot.worker]  # read with its in_flight count: a reload retires it only when 0
            if not w.ready:
                raise WorkerLost(f"engine worker {w.index} is restarting")
            w.pending[rid] = entry
            w.in_flight += 1
        try:
            try:
                with w.send_lock:
                    w.conn.send((rid, slot.index, args))
            except (OSError, ValueError) as e:
                raise WorkerLost(f"engine worker {w.index} is gone ({e})") from None
            if not entry["event"].wait(self.config.request_timeout_s):
                log.error("engine worker %d did not answer in %.0f s: replacing it", w.index,
                          self.config.request_timeout_s)
                self._lost(w, kill=True)
                raise WorkerLost(f"engine worker {w.index} did not answer in time")
        finally:
            with self._lock:
                w.pending.pop(rid, None)
                w.in_flight -= 1
        kind, payload = entry["result"]
        if kind == "ok":
            completions, engine_ms, stats, sha = payload
            if stats is not None:
                w.stats = stats
            return completions, engine_ms, sha or w.info.get("sha256")  # sha: a named model's (models.py)
        if kind == "lost":
            raise WorkerLost(payload)
        if kind == "unavailable":
            raise ModelUnavailable(payload)
        raise EngineError(payload)

    def _reader(self, w: _Worker, conn) -> None:
        while True:
            try:
                rid, kind, payload = conn.recv()
            except (EOFError, OSError, TypeError, ValueError):
                break
            with self._lock:
                entry = w.pending.get(rid)
            if entry is not None:
                entry["result"] = (kind, payload)
                entry["event"].set()
        if w.conn is conn:
            self._lost(w, kill=False)

    def _lost(self, w: _Worker, kill: bool) -> None:
        """Worker `w` died or hung: fail what it was computing, and start a replacement."""
        with self._lock:
            if not w.ready:
                return
            w.ready = False
            pending = list(w.pending.values())
            process, conn = w.process, w.conn
            closed = self._closed or w.retired  # a retired worker (reload) has its replacement already
            if not closed:
                self.deaths += 1
                w.restarts += 1
        for entry in pending:
            entry["result"] = ("lost", f"engine worker {w.index} died; retry")
            entry["event"].set()
        if kill:
            processes.kill(process.pid)
        try:
            conn.close()
        except OSError:
            pass
        if closed:
            return
        log.error("engine worker %d (pid %s) exited; starting a replacement", w.index, process.pid)

        def respawn():
            processes.reap_or_kill(process.pid, 10)
            while not self._closed and not w.retired:
                self._spawn(w)
                if w.ready or self._closed:
                    return
                time.sleep(1.0)  # a worker that cannot start: try again, do not spin
        threading.Thread(target=respawn, name=f"pool-respawn-{w.index}", daemon=True).start()

    # ------------------------------------------------------------------ metrics
    def snapshot(self) -> dict:
        """Per worker: ready, in flight, restarts, resident bytes (read from /proc by its pid now, not by the
        worker on its answer path) and its last stats (engine counters summed over slots)."""
        out = {}
        for w in self.workers:
            pid = w.process.pid if w.process is not None else None
            rss = proc_memory_kib(pid, rollup=False).get("VmRSS", 0) * 1024 if w.ready and pid else 0
            out[w.index] = {"ready": w.ready, "in_flight": w.in_flight, "restarts": w.restarts, "pid": pid,
                            "rss_bytes": rss, **w.stats}
        return out


class LocalEngine:
    """`--workers 0`: the predictor in the HTTP process, one slot (the single-model server of before).
    `loader() -> (predictor, model info)` loads the model again for `reload` (reload.py)."""

    def __init__(self, predictor, queue_size: int, loader=None, model: str | None = None,
                 models: ModelSet | None = None):
        # (predictor, the sha256 prefix of its file or None where a test gave only a predictor): one
        # attribute, so that a reload replaces both in one assignment and a request reads a matching pair
        self.serving = (predictor, model)
        if models is None:  # named models (models.py) as the server loads them by default on the CPU
            from .worker import served_loader
            models = ModelSet(served_loader(1, PoolConfig.cache_mb, "cpu", False, 0.0, "auto"))
        self.models = models
        self.loader = loader
        self.slot = Slot(0, 0)
        self.slot.gate = ModelGate(queue_size)
        self.slots = [[self.slot]]
        self.healthy = True
        self.deaths = 0
        self.stats: dict = {}

    def enter(self, key: str, timeout: float) -> Slot | None:
        return self.slot if self.slot.gate.enter(timeout) else None

    def leave(self, slot: Slot) -> None:
        slot.gate.leave()

    @property
    def depth(self) -> int:
        return self.slot.gate.depth

    def reload(self) -> dict:
        if self.loader is None:
            raise RuntimeError("this engine was given no way to load its model again")
        predictor, info = self.loader()
        self.serving = (predictor, info.get("sha256"))  # a request in flight keeps the pair it started with
        self.stats = {}
        del predictor
        import gc

        from .memory import trim
        gc.collect()  # the old model's cycles (modules, caches), then its freed heap back to the OS:
        trim()        # without these the process kept ~130 MiB more after a reload (benchmarks/reload.py)
        return info

    def complete(self, slot: Slot, args: dict):
        t0 = time.perf_counter()
        if args.get("model_path"):  # a named model (models.py)
            named = self.models.get(args["model_path"])
            predictor, model = named.predictors[0], named.sha256
        else:
            predictor, model = self.serving
        completions = predictor.complete(args["prompt"], suffix=args["suffix"], kind=args["kind"],
                                              max_suggestions=args["max_suggestions"],
                                              time_budget_ms=args["time_budget_ms"], extra=args["extra"])
        engine_ms = (time.perf_counter() - t0) * 1000
        from .worker import engine_stats
        self.stats = {**engine_stats(predictor), **self.models.stats()}  # read while we hold the slot: never waits
        return [(c.text, c.prob) for c in completions], engine_ms, model

    def snapshot(self) -> dict:
        rss = proc_memory_kib(rollup=False).get("VmRSS", 0) * 1024
        return {0: {"ready": True, "in_flight": int(self.slot.gate.busy), "restarts": 0, "pid": os.getpid(),
                    "rss_bytes": rss, **self.stats}}

    def close(self) -> None:
        pass
