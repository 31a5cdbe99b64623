"""A model per project on one server: a request's `"model": "NAME"` is answered by `--models-dir DIR`/NAME.pt.

Why. `make train SOURCES=~/code/billing OUT=checkpoints/billing.pt` gives a project its own model, and a team
works on several projects. One model fine-tuned on all of them costs each project about a point of
keystrokes saved (docs/training.md "Several projects in one model"), and a server per project costs a set of
engine workers each (~140 MiB PSS a worker, docs/server.md). The models are small (4.2M parameters, ~5 MB of
int8 weights), so one server holds several. Like Ollama's or llama.cpp's router, the request names its model;
the editor sends its workspace's `pythonAutocomplete.model`, which a repository can commit in its
`.vscode/settings.json` so that everyone working on it is served its model.

Names. NAME is a file name without `.pt` (letters, digits, `_`, `-`, `.`, at most 64, not starting with `.`),
so a request cannot reach outside DIR. No name, or the name of the `--model` file when it lies in DIR, is the
default model, which the server loads at start as before (and reloads by serving/reload.py). The HTTP
process checks the name against the directory before a worker sees the request (`model_path`): an unknown
name is the client's mistake (404 with the names there are), never a worker's error.

Where the models live (`ModelSet`). Every engine process (each worker, or the server process itself with
`--workers 0`) keeps the named models it has been asked for: loaded on the first request that names one
(~0.5 s for the shipped model's size on the 2-core AMD EPYC VM: the file read, int8 quantization, the engine's
tables; that request waits for it), each with its own slot predictors, batching wrapper and caches (bounded by
`--cache-mb` like the default model's), at most `max_models` of them: beyond, the least recently used is
dropped. A request in flight keeps the model it started with. With `--preload-models` each engine process loads
them at its start instead, on a thread while it serves (`preload_order`: the newest files first, at most
`max_models`), so no request waits for a load; each costs its memory (~34 MiB per model and worker) whether asked
for or not.

A new file under a served name (make train wrote it). Before a named model answers, its file's signature
(one `os.stat`) is compared with the one it was loaded from, at most every `check_interval_s`; a signature
that changed and settled (reload.FileWatch, as for the default model) is loaded on a thread while the old model
keeps answering, and swapped in when ready (a file that fails to load is logged and not tried again until it
changes). As with the
default model, every answer names the model file that computed it (`model`: its sha256 prefix), so the
editor drops its cached answers.
"""
from __future__ import annotations

import gc
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .reload import FileWatch, file_signature

log = logging.getLogger("autocomplete.models")
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")
CHECKPOINT_SUFFIX = ".pt"
DEFAULT_MAX_MODELS = 4
DEFAULT_CHECK_INTERVAL_S = 2.0


class UnknownModel(Exception):
    """A request named a model the server does not have (the message says which it has)."""


class ModelUnavailable(Exception):
    """A named model's file cannot be loaded (broken, truncated, another format): the server's problem, 503."""


def model_names(models_dir: str | os.PathLike | None) -> list[str]:
    """The names `models_dir` serves: its `NAME.pt` files, sorted."""
    if not models_dir:
        return []
    try:
        entries = list(os.scandir(models_dir))
    except OSError:
        return []
    names = []
    for e in entries:
        name = e.name[:-len(CHECKPOINT_SUFFIX)]
        if e.name.endswith(CHECKPOINT_SUFFIX) and NAME_PATTERN.fullmatch(name) and e.is_file():
            names.append(name)
    return sorted(names)


def served_names(models_dir: str | os.PathLike | None, default: str | os.PathLike) -> list[str]:
    """The names a request may send besides the default's: `model_names` less the default model's file."""
    out = []
    for name in model_names(models_dir):
        try:
            if name != Path(default).stem and not os.path.samefile(Path(models_dir) / f"{name}{CHECKPOINT_SUFFIX}",
                                                                     default):
                out.append(name)
        except OSError:  # vanished since the listing, or the default's file is gone (it stays loaded)
            out.append(name)
    return out


def served_path(name: str, models_dir: str | os.PathLike | None, default: str | os.PathLike) -> tuple[bool, str | None]:
    """(whether `name` is served, the checkpoint that answers it: None for the default model). A few stats, no
    directory listing: Tabby's route asks it of every request's repository name (serving/tabby.py)."""
    if name == Path(default).stem:
        return True, None
    if models_dir and NAME_PATTERN.fullmatch(name):
        path = Path(models_dir) / f"{name}{CHECKPOINT_SUFFIX}"
        if path.is_file():
            try:
                return True, None if os.path.samefile(path, default) else str(path)
            except OSError:  # the default's file is gone (it is loaded): this one is another model
                return True, str(path)
    return False, None


def model_path(name: str, models_dir: str | os.PathLike | None, default: str | os.PathLike) -> str | None:
    """The checkpoint a request's `"model": name` is answered by: None for the default model (`default`'s own
    name, or a file in `models_dir` that is `default`), else `models_dir`/name.pt. Raises UnknownModel, whose
    message lists the names served."""
    served, path = served_path(name, models_dir, default)
    if served:
        return path
    if not models_dir:
        raise UnknownModel(f"this server serves one model, {Path(default).stem!r}; start it with --models-dir DIR "
                           f"to serve DIR/NAME.pt as \"model\": \"NAME\"")
    names = served_names(models_dir, default)
    shown = ", ".join(repr(n) for n in names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
    raise UnknownModel(f"no model {name[:100]!r} on this server; it serves {Path(default).stem!r} (the default)"
                       + (f" and {shown}" if names else ", and its models directory holds no NAME.pt file"))


def preload_order(models_dir: str | os.PathLike | None, default: str | os.PathLike, limit: int) -> list[str]:
    """The named models' files to load ahead of requests: the newest first (the projects worked on now; a
    nightly `make train` rewrites them), at most `limit`."""
    paths = []
    for name in served_names(models_dir, default):
        path = Path(models_dir) / f"{name}{CHECKPOINT_SUFFIX}"
        try:
            paths.append((path.stat().st_mtime, str(path)))
        except OSError:
            continue  # gone since the listing
    return [path for _, path in sorted(paths, reverse=True)[:limit]]


@dataclass
class Served:
    """One loaded model in an engine process: what its slots run."""
    predictors: list          # one Predictor per slot
    shared: object            # the model under them (serving/batching.BatchingModel)
    sha256: str               # of the file it was loaded from (the answers' "model")
    signature: tuple | None   # reload.file_signature of that file when it was read


@dataclass
class _Entry:
    path: str
    served: Served
    watch: FileWatch                # its file; `known`: the signature served, or the last that failed to load
    loading: bool = False


class ModelSet:
    """The named models of one engine process. `load(path) -> Served` builds one (worker.served_loader)."""

    def __init__(self, load: Callable[[str], Served], max_models: int = DEFAULT_MAX_MODELS,
                 check_interval_s: float = DEFAULT_CHECK_INTERVAL_S):
        self.load = load
        self.max_models = max_models
        self.check_interval_s = check_interval_s
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # path -> entry, least recently used first
        self._lock = threading.Lock()
        self._first_loads: dict[str, threading.Lock] = {}
        self._failed: dict[str, tuple[tuple | None, str]] = {}  # path -> (its signature, why it did not load)
        self.loads = 0        # counters for /metrics (worker.engine stats)
        self.reloads = 0
        self.evictions = 0

    def get(self, path: str) -> Served:
        """The model of `path`, loaded now if it is not (the caller waits), its newer file swapped in when one
        has settled (on a thread: the caller gets the model as it is)."""
        with self._lock:
            entry = self._entries.get(path)
            if entry is not None:
                self._entries.move_to_end(path)
                self._look(entry)
                return entry.served
            first = self._first_loads.setdefault(path, threading.Lock())
        with first:  # one load per path; other paths' requests go on meanwhile
            with self._lock:
                entry = self._entries.get(path)
            if entry is None:
                served = self._first_load(path)
                with self._lock:
                    watch = FileWatch(path, self.check_interval_s, served.signature)
                    entry = self._entries[path] = _Entry(path, served, watch)
                    self._first_loads.pop(path, None)
                    self.loads += 1
                    dropped = self._evict()
                if dropped:
                    log.info("models: dropped %s (least recently used of %d)", ", ".join(dropped),
                             self.max_models + 1)
                    gc.collect()
            return entry.served

    def start_preload(self, models_dir: str | os.PathLike | None, default: str | os.PathLike) -> threading.Thread:
        """--preload-models: load `models_dir`'s models (preload_order, at most max_models) on a thread of their
        own while this engine serves."""
        paths = preload_order(models_dir, default, self.max_models)
        thread = threading.Thread(target=self.preload, args=(paths,), name="models-preload", daemon=True)
        thread.start()
        return thread

    def preload(self, paths: list[str]) -> int:
        """Load `paths` before any request asks for them, one after the other on the caller's thread; a request
        for one meanwhile waits for that load as for a first one. A file that does not load is logged and
        answered 503 when asked for, as without preloading. Returns how many loaded."""
        loaded = 0
        t0 = time.perf_counter()
        for path in paths:
            try:
                self.get(path)
                loaded += 1
            except ModelUnavailable:
                continue
        log.info("models: %d of %d preloaded in %.1f s", loaded, len(paths), time.perf_counter() - t0)
        return loaded

    def _first_load(self, path: str) -> Served:
        """Load `path`, or raise ModelUnavailable; a file that failed is not read again until it changes."""
        signature = file_signature(path)
        failed = self._failed.get(path)
        if failed is not None and failed[0] == signature:
            raise ModelUnavailable(failed[1])
        try:
            served = self.load(path)
        except Exception as e:  # noqa: BLE001 - any failure to load is the file's: said in one line
            why = f"model {Path(path).stem!r} cannot be loaded: {' '.join(str(e).split())[:300]}"
            self._failed[path] = (signature, why)
            log.error("models: %s", why)
            raise ModelUnavailable(why) from None
        self._failed.pop(path, None)
        return served

    def served(self) -> list[Served]:
        with self._lock:
            return [e.served for e in self._entries.values()]

    def _evict(self) -> list[str]:
        dropped = []
        while len(self._entries) > self.max_models:
            path, _ = self._entries.popitem(last=False)
            dropped.append(path)
            self.evictions += 1
        return dropped

    def _look(self, entry: _Entry) -> None:
        """(Holding the lock.) Start a reload once the file has changed and settled (reload.FileWatch: a file
        that is gone is still served from memory)."""
        if entry.loading:
            return
        changed = entry.watch.change(time.monotonic())
        if changed is None:
            return
        entry.loading = True
        threading.Thread(target=self._reload, args=(entry, changed[0]), name="model-set-reload", daemon=True).start()

    def _reload(self, entry: _Entry, signature: tuple) -> None:
        try:
            served = self.load(entry.path)
        except Exception as e:  # noqa: BLE001 - a bad file must not stop the old model serving
            log.error("models: reload of %s failed, still serving the model loaded before: %s", entry.path,
                      " ".join(str(e).split())[:300])
            with self._lock:
                entry.watch.known, entry.loading = signature, False  # not tried again until it changes
            return
        with self._lock:
            entry.served, entry.watch.known, entry.loading = served, served.signature, False
            self.reloads += 1
        log.info("models: serving the new %s (sha256 %s)", entry.path, served.sha256)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"models_loaded": len(self._entries), "model_loads": self.loads, "model_reloads": self.reloads,
                    "model_evictions": self.evictions}
