"""HTTP completion server: one shared model behind a bounded FIFO queue, served by waitress.

`python server.py --host 127.0.0.1 --port 5000 --model checkpoints/default.pt` binds first, answers
`/health` with 503 while the model loads in a background thread, then serves:

    POST /autocomplete  {"prompt", "suffix"?, "kind"?, "max_suggestions"?, "time_budget_ms"?, "input_extra"?}
                        -> {"success": true, "prediction": [str], "probs": [float], "id": str, "ms": float}

`prompt` may be the whole text before the cursor (the last `max_prompt_chars` are kept: the model's window
and the engine's project context); `input_extra` is llama.cpp /infill's list of
`{"filename": str, "text": str}` chunks (other files, recently edited regions) for the project context.
    GET  /health        200 {"status": "ok", "model": {...}} when ready, 503 while loading
    GET  /metrics       Prometheus text format

The first three response fields are those of labml's python_autocomplete reference server, so its
clients keep working. Tests build the app around their own model with `create_app(predictor, config)`.

Concurrency: the model runs one request at a time (the engine is thread-safe under a lock). Requests
that find it busy wait in a FIFO of `queue_size` places; a request that finds the queue full, or that
waits longer than `max_wait_ms`, gets 503 with Retry-After instead of piling up. A request whose client
has hung up while it waited is dropped before it reaches the model (a peek at its socket sees EOF).
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import os
import socket
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

__version__ = "0.1.0"
KINDS = ("word", "line", "block")
TOKEN_ENV = "AUTOCOMPLETE_API_TOKEN"
DEFAULT_MODEL = "checkpoints/default.pt"
log = logging.getLogger("autocomplete.server")


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 5000
    token: str | None = None              # when set, /autocomplete and /metrics need `Bearer TOKEN`
    queue_size: int = 16                  # requests that may wait for the busy model
    max_wait_ms: float = 2000.0           # a request waiting longer than this gets 503
    retry_after_s: int = 1                # Retry-After on every 503
    time_budget_ms: float | None = None   # engine time budget per request (None: the engine's default)
    max_time_budget_ms: float = 5000.0    # cap on a client's own "time_budget_ms"
    max_prompt_chars: int = 64 * 1024     # keep only the last 64K characters of the prompt
    max_suffix_chars: int = 16 * 1024     # and the first 16K characters of the suffix
    max_extra_chunks: int = 256           # input_extra: at most this many chunks (more: 413)
    max_extra_chars: int = 512 * 1024     # and this many characters of chunk text in all (more: 413)
    max_filename_chars: int = 4096        # an input_extra filename longer than this: 400
    max_body_bytes: int = 4 * 1024 * 1024  # larger bodies get 413
    max_suggestions_limit: int = 10
    threads: int | None = None            # waitress threads; None: queue_size + 4 (room for /health)
    model_info: dict = field(default_factory=dict)  # shown by /health (name, arch, sha256, ...)

    @property
    def waitress_threads(self) -> int:
        # queue_size waiting + 1 running + spare threads so /health and /metrics answer under load.
        return self.threads or self.queue_size + 4


class QueueFull(Exception):
    pass


class ModelGate:
    """Mutual exclusion on the model with a bounded FIFO of waiters.

    `enter(timeout)` returns True when the caller owns the model, False when it waited `timeout`
    seconds in vain, and raises QueueFull when `capacity` callers already wait. `leave()` hands the
    model straight to the oldest waiter (FIFO keeps the tail latency fair under load).
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._mutex = threading.Lock()
        self._busy = False
        self._waiters: deque[threading.Event] = deque()

    @property
    def depth(self) -> int:
        return len(self._waiters)

    def enter(self, timeout: float) -> bool:
        with self._mutex:
            if not self._busy and not self._waiters:
                self._busy = True
                return True
            if len(self._waiters) >= self.capacity:
                raise QueueFull
            turn = threading.Event()
            self._waiters.append(turn)
        if turn.wait(timeout):
            return True
        with self._mutex:
            if turn.is_set():  # handed over just as the wait ran out: we own it
                return True
            self._waiters.remove(turn)
            return False

    def leave(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().set()  # stays busy: ownership passes on
            else:
                self._busy = False


# Latency histogram buckets in seconds (Prometheus convention).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Counters for /metrics, written in the Prometheus text format by hand (no extra dependency)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = {}  # (endpoint, method, status) -> count
        self.errors: dict[str, int] = {}                     # kind -> count
        self.bucket_counts = [0] * (len(BUCKETS) + 1)        # last one is +Inf
        self.latency_sum = 0.0
        self.latency_count = 0
        self.engine_seconds = 0.0

    def observe(self, endpoint: str, method: str, status: int, seconds: float | None = None):
        with self._lock:
            key = (endpoint, method, status)
            self.requests[key] = self.requests.get(key, 0) + 1
            if seconds is not None:
                i = next((i for i, b in enumerate(BUCKETS) if seconds <= b), len(BUCKETS))
                self.bucket_counts[i] += 1
                self.latency_sum += seconds
                self.latency_count += 1

    def error(self, kind: str):
        with self._lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1

    def add_engine_time(self, seconds: float):
        with self._lock:
            self.engine_seconds += seconds

    def render(self, state: "AppState") -> str:
        with self._lock:
            requests = dict(self.requests)
            errors = dict(self.errors)
            buckets = list(self.bucket_counts)
            lat_sum, lat_count, engine_s = self.latency_sum, self.latency_count, self.engine_seconds
        out = ["# HELP autocomplete_requests_total HTTP requests by endpoint, method and status.",
               "# TYPE autocomplete_requests_total counter"]
        for (endpoint, method, status), n in sorted(requests.items()):
            out.append(f'autocomplete_requests_total{{endpoint="{endpoint}",method="{method}",'
                       f'status="{status}"}} {n}')
        out += ["# HELP autocomplete_request_duration_seconds /autocomplete latency (queue + engine).",
                "# TYPE autocomplete_request_duration_seconds histogram"]
        cumulative = 0
        for bound, n in zip(list(BUCKETS) + [math.inf], buckets):
            cumulative += n
            le = "+Inf" if bound == math.inf else repr(bound)
            out.append(f'autocomplete_request_duration_seconds_bucket{{le="{le}"}} {cumulative}')
        out.append(f"autocomplete_request_duration_seconds_sum {lat_sum:.6f}")
        out.append(f"autocomplete_request_duration_seconds_count {lat_count}")
        out += ["# HELP autocomplete_engine_seconds_total Time spent inside the completion engine.",
                "# TYPE autocomplete_engine_seconds_total counter",
                f"autocomplete_engine_seconds_total {engine_s:.6f}",
                "# HELP autocomplete_errors_total Failed requests by kind.",
                "# TYPE autocomplete_errors_total counter"]
        for kind, n in sorted(errors.items()):
            out.append(f'autocomplete_errors_total{{kind="{kind}"}} {n}')
        out += ["# HELP autocomplete_queue_depth Requests waiting for the model right now.",
                "# TYPE autocomplete_queue_depth gauge",
                f"autocomplete_queue_depth {state.gate.depth}",
                "# HELP autocomplete_queue_capacity Requests that may wait before 503.",
                "# TYPE autocomplete_queue_capacity gauge",
                f"autocomplete_queue_capacity {state.gate.capacity}",
                "# HELP autocomplete_model_ready 1 once the model is loaded.",
                "# TYPE autocomplete_model_ready gauge",
                f"autocomplete_model_ready {int(state.predictor is not None)}"]
        for name, value in state.engine_stats.items():
            # The engine's counters only grow (cache hits, tokens fed, ...); a few are levels.
            if name in ENGINE_GAUGES:
                out += [f"# TYPE autocomplete_engine_{name} gauge", f"autocomplete_engine_{name} {value}"]
            else:
                metric = f"autocomplete_engine_{name.removesuffix('_total')}_total"
                out += [f"# TYPE {metric} counter", f"{metric} {value}"]
        return "\n".join(out) + "\n"


ENGINE_GAUGES = {"cache_entries", "cache_size", "mean_ms", "context_blocks", "context_block_bytes",
                 "context_segments", "context_segment_bytes"}


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
    out = {}
    for key, value in stats.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        name = "".join(c if c.isalnum() else "_" for c in str(key)).strip("_").lower()
        if name:
            out[name] = value
    return out


class AppState:
    """What the request handlers share: the predictor (None while loading), gate, metrics."""

    def __init__(self, predictor, config: ServerConfig):
        self.predictor = predictor
        self.config = config
        self.gate = ModelGate(config.queue_size)
        self.metrics = Metrics()
        self.model_info = dict(config.model_info)
        # The engine's stats as of its last request: read while this server owns the model, so
        # /metrics never waits for the engine's lock behind a running completion.
        self.engine_stats: dict[str, float] = engine_stats(predictor) if predictor is not None else {}

    def set_ready(self, predictor, model_info: dict | None = None):
        if model_info:
            self.model_info.update(model_info)
        self.engine_stats = engine_stats(predictor)
        self.predictor = predictor


class ApiError(Exception):
    """A client mistake (or overload) answered as JSON with this status."""

    def __init__(self, status: int, message: str, kind: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.headers = status, message, kind, headers or {}


def error_response(status: int, message: str, name: str, headers=None) -> Response:
    response = jsonify({"success": False, "error": message, "status": status, "type": name})
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def token_matches(header_value: str | None, token: str) -> bool:
    """Constant-time check of `Authorization: Bearer TOKEN`."""
    if not header_value:
        return False
    scheme, _, given = header_value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    # WSGI headers arrive latin-1 decoded: back to the raw bytes before comparing.
    given_bytes = given.strip().encode("latin-1", errors="replace")
    return hmac.compare_digest(given_bytes, token.encode("utf-8"))


def parse_completion_request(config: ServerConfig) -> dict:
    """Validate the body of POST /autocomplete; raise ApiError(4xx) on any client mistake."""
    if not request.is_json:
        raise ApiError(415, "Content-Type must be application/json", "unsupported_media_type")
    raw = request.get_data(cache=False)  # 413 from MAX_CONTENT_LENGTH happens here
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as e:  # includes bad UTF-8 and huge integers
        raise ApiError(400, f"malformed JSON: {str(e)[:200]}", "bad_json") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the JSON body must be an object", "bad_json")

    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise ApiError(400, '"prompt" is required and must be a string', "bad_field")
    suffix = body.get("suffix", "")
    if suffix is None:
        suffix = ""
    if not isinstance(suffix, str):
        raise ApiError(400, '"suffix" must be a string', "bad_field")
    kind = body.get("kind")
    if kind is not None and kind not in KINDS:
        raise ApiError(400, f'"kind" must be one of {", ".join(KINDS)} (or absent)', "bad_field")
    n = body.get("max_suggestions", 3)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= config.max_suggestions_limit:
        raise ApiError(400, f'"max_suggestions" must be an integer in 1..{config.max_suggestions_limit}',
                       "bad_field")
    budget = body.get("time_budget_ms", config.time_budget_ms)
    if budget is not None:
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not budget > 0 \
                or not math.isfinite(budget):
            raise ApiError(400, '"time_budget_ms" must be a positive number', "bad_field")
        budget = min(float(budget), config.max_time_budget_ms)
    extra = parse_input_extra(body.get("input_extra"), config)
    # Keep what the model can use: the end of the prompt and the start of the suffix. (Lone surrogates,
    # valid in JSON but not in UTF-8, are the engine's to replace: Predictor.complete does it.)
    prompt = prompt[-config.max_prompt_chars:]
    suffix = suffix[:config.max_suffix_chars]
    return {"prompt": prompt, "suffix": suffix, "kind": kind, "max_suggestions": n,
            "time_budget_ms": budget, "extra": extra}


def parse_input_extra(chunks, config: ServerConfig) -> list[str]:
    """The texts of `input_extra` ([{"filename": str, "text": str}, ...], llama.cpp's convention; absent or
    null: none). Wrong shapes or types: 400; too many chunks or characters: 413 (nothing is cut silently:
    the client chose those chunks and should choose fewer)."""
    if chunks is None:
        return []
    if not isinstance(chunks, list):
        raise ApiError(400, '"input_extra" must be a list of {"filename": str, "text": str} objects', "bad_field")
    if len(chunks) > config.max_extra_chunks:
        raise ApiError(413, f'"input_extra" has {len(chunks)} chunks; at most {config.max_extra_chunks} are '
                            "accepted", "too_large")
    texts, total = [], 0
    for i, chunk in enumerate(chunks):
        if not isinstance(chunk, dict):
            raise ApiError(400, f'"input_extra"[{i}] must be an object {{"filename": str, "text": str}}',
                           "bad_field")
        text, filename = chunk.get("text"), chunk.get("filename", "")
        if not isinstance(text, str):
            raise ApiError(400, f'"input_extra"[{i}].text is required and must be a string', "bad_field")
        if filename is not None and not isinstance(filename, str):
            raise ApiError(400, f'"input_extra"[{i}].filename must be a string', "bad_field")
        if filename and len(filename) > config.max_filename_chars:
            raise ApiError(400, f'"input_extra"[{i}].filename is longer than {config.max_filename_chars} '
                                "characters", "bad_field")
        total += len(text)
        if total > config.max_extra_chars:
            raise ApiError(413, f'"input_extra" holds more than {config.max_extra_chars} characters of text '
                                "in all; send fewer or smaller chunks", "too_large")
        texts.append(text)
    return texts


def create_app(predictor, config: ServerConfig | None = None) -> Flask:
    """The Flask app around `predictor` (None: still loading; call `app_state(app).set_ready` later)."""
    config = config or ServerConfig()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.sort_keys = False
    state = AppState(predictor, config)
    app.extensions["autocomplete"] = state

    def authorized() -> bool:
        return config.token is None or token_matches(request.headers.get("Authorization"), config.token)

    def require_token():
        if not authorized():
            state.metrics.error("unauthorized")
            raise ApiError(401, "missing or wrong API token (send Authorization: Bearer TOKEN)",
                           "unauthorized", {"WWW-Authenticate": 'Bearer realm="autocomplete"'})

    @app.errorhandler(ApiError)
    def on_api_error(e: ApiError):
        return error_response(e.status, e.message, e.kind, e.headers)

    @app.errorhandler(HTTPException)
    def on_http_error(e: HTTPException):
        # 404, 405 (keeps its Allow header), 413, ...: JSON like every other answer.
        state.metrics.error(f"http_{e.code}")
        headers = {k: v for k, v in e.get_headers() if k.lower() not in ("content-type", "content-length")}
        name = (e.name or "error").lower().replace(" ", "_")
        message = e.description or e.name
        if e.code == 413:
            message = f"request body too large (limit {config.max_body_bytes} bytes)"
        return error_response(e.code or 500, message, name, headers)

    @app.errorhandler(Exception)
    def on_unexpected(e: Exception):
        log.exception("internal error")
        state.metrics.error("internal")
        return error_response(500, "internal server error", "internal_error")

    @app.after_request
    def count(response: Response):
        endpoint = request.url_rule.rule if request.url_rule else "other"
        seconds = g.get("latency_seconds")
        state.metrics.observe(endpoint, request.method if request.method in
                              ("GET", "POST", "HEAD", "OPTIONS") else "other",
                              response.status_code, seconds)
        return response

    @app.post("/autocomplete")
    def autocomplete():
        start = time.perf_counter()
        require_token()
        try:
            args = parse_completion_request(config)
        except ApiError as e:
            state.metrics.error(e.kind)
            raise
        retry = {"Retry-After": str(config.retry_after_s)}
        predictor = state.predictor
        if predictor is None:
            state.metrics.error("loading")
            raise ApiError(503, "the model is still loading", "loading", retry)
        try:
            entered = state.gate.enter(config.max_wait_ms / 1000)
        except QueueFull:
            state.metrics.error("queue_full")
            raise ApiError(503, "server busy: the request queue is full", "queue_full", retry) from None
        if not entered:
            state.metrics.error("queue_timeout")
            raise ApiError(503, "server busy: waited too long for the model", "queue_timeout", retry)
        queued = time.perf_counter()
        try:
            if client_disconnected(request.environ):
                # Nobody will read the answer: leave the model to requests that still matter.
                state.metrics.error("client_gone")
                return Response(status=499)
            completions = predictor.complete(args["prompt"], suffix=args["suffix"], kind=args["kind"],
                                             max_suggestions=args["max_suggestions"],
                                             time_budget_ms=args["time_budget_ms"], extra=args["extra"])
            engine_done = time.perf_counter()
            state.engine_stats = engine_stats(predictor)
        except Exception:
            log.exception("completion engine failed")
            state.metrics.error("engine")
            return error_response(500, "the completion engine failed", "engine_error")
        finally:
            state.gate.leave()
        state.metrics.add_engine_time(engine_done - queued)
        done = time.perf_counter()
        g.latency_seconds = done - start
        response = jsonify({
            "success": True,
            "prediction": [c.text for c in completions],
            "probs": [float(c.prob) if math.isfinite(c.prob) else 0.0 for c in completions],
            "id": uuid.uuid4().hex,
            "ms": round((done - start) * 1000, 3),
        })
        # Where the time went, for clients and the load benchmark (W3C Server-Timing).
        response.headers["Server-Timing"] = \
            f"queue;dur={(queued - start) * 1000:.3f}, engine;dur={(engine_done - queued) * 1000:.3f}"
        return response

    @app.get("/health")
    def health():
        if state.predictor is None:
            return error_response(503, "the model is loading", "loading",
                                  {"Retry-After": str(config.retry_after_s)})
        body = {"status": "ok"}
        if authorized():  # with a token set, anonymous callers learn only that it is up
            body.update(model=state.model_info, version=__version__,
                        queue={"depth": state.gate.depth, "capacity": state.gate.capacity})
        return jsonify(body)

    @app.get("/metrics")
    def metrics():
        require_token()
        return Response(state.metrics.render(state), mimetype="text/plain",
                        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    return app


def client_disconnected(environ) -> bool:
    """Has the client closed its connection? Peeks at waitress's socket: EOF reads as b"".

    waitress only notices a hang-up itself while it reads ahead (channel_request_lookahead), which
    costs latency; a one-byte MSG_PEEK costs microseconds and consumes nothing. (A client that
    half-closes its side after sending counts as gone; HTTP clients do not do that.)
    """
    check = environ.get("waitress.client_disconnected")
    sock = getattr(getattr(check, "__self__", None), "socket", None)  # waitress's HTTPChannel
    if not isinstance(sock, socket.socket):
        return bool(check and check())
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False  # nothing to read: still there, waiting for the answer
    except OSError:
        return True  # reset by the peer


def app_state(app: Flask) -> AppState:
    return app.extensions["autocomplete"]


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost could resolve anywhere


def load_model(path: str):
    """Load a checkpoint into a Predictor; returns (predictor, model info for /health)."""
    import torch
    from evaluate.predictor import Predictor
    from models.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    predictor = Predictor(ckpt.model, ckpt.tokenizer)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    config = ckpt.config
    info = {"name": Path(path).stem, "path": str(path), "sha256": digest[:16],
            "arch": getattr(config, "arch", None), "step": getattr(ckpt, "step", None),
            "params": sum(p.numel() for p in ckpt.model.parameters()),
            "vocab_size": getattr(config, "vocab_size", None), "torch": torch.__version__,
            "meta": {k: v for k, v in (getattr(ckpt, "meta", None) or {}).items()
                     if isinstance(v, (str, int, float, bool)) or v is None}}
    return predictor, info


def make_wsgi_server(app: Flask, config: ServerConfig):
    """A bound (not yet running) waitress server for `app`; `.run()` serves, `.effective_port` tells."""
    import waitress
    return waitress.create_server(
        app, host=config.host, port=config.port, threads=config.waitress_threads,
        # No channel_request_lookahead: it would let waitress notice hang-ups itself, but costs ~3 ms
        # a request; client_disconnected() peeks at the socket instead.
        # waitress buffers whole bodies before the app sees them: stop absurd ones early. Bodies
        # between max_body_bytes and this get Flask's JSON 413; beyond it waitress's plain-text 413.
        max_request_body_size=8 * config.max_body_bytes,
        ident="python-autocomplete")


def one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text[:500]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Python code-completion HTTP server (waitress).")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=5000, help="port (0: any free port, printed at start)")
    p.add_argument("--model", default=DEFAULT_MODEL, help="checkpoint (default: %(default)s)")
    p.add_argument("--token", default=None,
                   help=f"API token (or env {TOKEN_ENV}); required to bind a non-loopback address")
    d = ServerConfig()
    p.add_argument("--queue-size", type=int, default=d.queue_size, help="requests that may wait")
    p.add_argument("--max-wait-ms", type=float, default=d.max_wait_ms, help="longest wait in the queue")
    p.add_argument("--time-budget-ms", type=float, default=None, help="engine time budget per request")
    p.add_argument("--threads", type=int, default=None, help="waitress threads (default queue-size + 4)")
    p.add_argument("--torch-threads", type=int, default=1,
                   help="torch intra-op threads (default 1: one small batch-1 forward gains little from "
                        "more, and extra threads spin and stall when the CPU is shared)")
    return p.parse_args(argv)


def limit_malloc_arenas(n: int = 2) -> None:
    """Cap glibc's malloc arenas (as MALLOC_ARENA_MAX=n would) unless the environment sets it.

    glibc gives threads that allocate their own arenas (up to 8 per core); the engine runs on
    whichever waitress thread holds the model, so its tensors end up spread over many arenas, each
    keeping freed memory. Measured with the 4.2M-parameter model: 700 -> 633 MiB RSS after the load
    benchmark. Only one thread computes at a time, so arena contention costs nothing here.
    """
    if "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").mallopt(-8, n)  # -8: M_ARENA_MAX
    except (OSError, AttributeError):
        pass  # not glibc


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return 2


def main(argv=None) -> int:
    args = parse_args(argv)
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV)
    token = token.strip() if token else None
    if not is_loopback(args.host) and not token:
        return fail(f"refusing to listen on non-loopback address {args.host!r} without an API token: "
                    f"pass --token TOKEN or set {TOKEN_ENV}")
    if not 0 <= args.port <= 65535:
        return fail(f"--port must be in 0..65535, got {args.port}")
    if args.queue_size < 1 or args.max_wait_ms <= 0:
        return fail("--queue-size must be >= 1 and --max-wait-ms > 0")
    if args.host.lower() == "localhost":
        args.host = "127.0.0.1"  # one socket (waitress would bind ::1 too, each on its own port 0)
    model = Path(args.model)
    if not model.is_file():
        return fail(f"model checkpoint not found: {model} (pass --model PATH)")
    limit_malloc_arenas()  # before any thread starts
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    config = ServerConfig(host=args.host, port=args.port, token=token, queue_size=args.queue_size,
                          max_wait_ms=args.max_wait_ms, time_budget_ms=args.time_budget_ms,
                          threads=args.threads, model_info={"name": model.stem, "path": str(model)})
    app = create_app(None, config)

    try:
        server = make_wsgi_server(app, config)
    except OSError as e:
        return fail(f"cannot listen on {args.host}:{args.port}: {one_line(e)}")
    port = getattr(server, "effective_port", args.port)
    print(f"listening on http://{args.host}:{port} (loading {model} ...)", flush=True)

    def load():
        t0 = time.perf_counter()
        try:
            if args.torch_threads:
                import torch  # most of the start-up time: imported here, after binding
                torch.set_num_threads(args.torch_threads)
            predictor, info = load_model(str(model))
            app_state(app).set_ready(predictor, info)
            print(f"model ready: {model} ({info['arch']}, {info['params']:,} parameters, "
                  f"{time.perf_counter() - t0:.1f} s)", flush=True)
        except BaseException as e:  # noqa: BLE001 - any failure to load ends the server, in one line
            # A CheckpointError already names the file and the reason.
            message = one_line(e) if str(model) in str(e) else f"cannot load model {model}: {one_line(e)}"
            print(f"error: {message}", file=sys.stderr, flush=True)
            os._exit(2)

    threading.Thread(target=load, name="model-loader", daemon=True).start()
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
