"""HTTP completion server: one shared model behind a bounded FIFO queue, served by waitress.

`python server.py --host 127.0.0.1 --port 5000 --model checkpoints/default.pt` binds first, answers
`/health` with 503 while the model loads in a background thread, then serves:

    POST /autocomplete  {"prompt", "suffix"?, "kind"?, "max_suggestions"?, "time_budget_ms"?, "input_extra"?,
                         "model"?}
                        -> {"success": true, "prediction": [str], "probs": [float], "id": str, "ms": float,
                            "model": str (which model file answered: the sha256 prefix /health shows)}

`prompt` may be the whole text before the cursor (the last `max_prompt_chars` are kept: the model's window
and the engine's project context); `input_extra` is llama.cpp /infill's list of
`{"filename": str, "text": str}` chunks (other files, recently edited regions) for the project context.
    POST /infill        llama.cpp's fill-in-the-middle request and answer (serving/infill.py): llama.vim and
                        llama.vscode use this server as they use llama-server
    POST /v1/completions, GET /v1/health, GET /v1beta/server_setting, POST /v1/events
                        Tabby's server API (serving/tabby.py): Tabby's agent, and the editors it serves
    GET  /health        200 {"status": "ok", "model": {...}} when ready, 503 while loading
    GET  /metrics       Prometheus text format (prometheus_client)
    GET  /models        {"default": str, "models": [str]}: the names "model" may take

A new file at `--model`'s path (`make train` writes one) is served without a restart (serving/reload.py).
`--models-dir DIR` serves every DIR/NAME.pt too, to requests that send `"model": "NAME"` (a model per
project on one server, serving/models.py).

The first three response fields are those of labml's python_autocomplete reference server, so its
clients keep working. Tests build the app around their own model with `create_app(predictor, config)`.

Concurrency: `--workers N` engine processes (default: one per core) with `--slots S` engine slots each
(serving/pool.py: client affinity by `X-Client-Id` or connection; serving/batching.py: concurrent
search steps of one worker run as one batched forward); `--workers 0` runs the engine in this process
(the single-model server of before). Each slot runs one request at a time; requests that find it busy
wait in a FIFO of `queue_size` places; a request that finds the queue full, or that waits longer than
`max_wait_ms`, gets 503 with Retry-After instead of piling up. A request whose client has hung up while
it waited is dropped before it reaches the engine (a peek at its socket sees EOF).
"""
from __future__ import annotations

import argparse
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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask, Response, g, has_request_context, jsonify, request
from werkzeug.exceptions import HTTPException

from serving import infill, tabby
from serving.gate import ModelGate, QueueFull  # noqa: F401 - re-exported (tests, embedders)
from serving.loading import load_for_inference, load_model, model_info, plain  # noqa: F401 - re-exported
from serving.metrics import Metrics
from serving.models import (DEFAULT_MAX_MODELS, ModelSet, ModelUnavailable, UnknownModel, model_path, served_path,
                            served_names)
from serving.pool import EngineError, LocalEngine, NoWorker, PoolConfig, WorkerLost, WorkerPool
from serving.reload import CheckpointWatcher, ModelReloader
from serving.tokens import SHARED_USER, TokenFileError, TokenSet

__version__ = "0.1.0"
KINDS = ("word", "line", "block")
TOKEN_ENV = "AUTOCOMPLETE_API_TOKEN"
DEFAULT_MODEL = "checkpoints/default.pt"
# What `server.py` gives a request that sends no time_budget_ms: under overload a request that waited gets a
# shorter search instead of a late answer (16 clients on 2 cores: p99 367 -> 269 ms, a typist's keystrokes
# saved 51.7 % alone / 51.8 % under that load; docs/server.md "Latency budget under load").
DEFAULT_TIME_BUDGET_MS = 250.0
# How often the server looks at its checkpoint's file for a new model (serving/reload.py).
DEFAULT_RELOAD_INTERVAL_S = 2.0
# Routes that speak llama-server's dialect (serving/infill.py), errors included.
LLAMA_CPP_PATHS = ("/infill",)
log = logging.getLogger("autocomplete.server")


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 5000
    token: str | None = None              # when set, /autocomplete and /metrics need `Bearer TOKEN`
    tokens: TokenSet | None = None        # --tokens-file: a token per person (serving/tokens.py), beside `token`
    queue_size: int = 16                  # requests that may wait for the busy model
    max_wait_ms: float = 2000.0           # a request waiting longer than this gets 503
    retry_after_s: int = 1                # Retry-After on every 503
    time_budget_ms: float | None = None   # latency budget per request from its arrival (None: no budget)
    max_time_budget_ms: float = 5000.0    # cap on a client's own "time_budget_ms"
    # What the engine reads (PredictorConfig.max_prompt_chars / max_suffix_chars), written out: importing the
    # engine would load torch into the HTTP process (+160 MiB PSS; tests/test_server_cli.py holds it off).
    max_prompt_chars: int = 64 * 1024     # keep only the last 64K characters of the prompt
    max_suffix_chars: int = 16 * 1024     # and the first 16K characters of the suffix
    max_extra_chunks: int = 256           # input_extra: at most this many chunks (more: 413)
    max_extra_chars: int = 512 * 1024     # and this many characters of chunk text in all (more: 413)
    max_filename_chars: int = 4096        # an input_extra filename longer than this: 400
    max_body_bytes: int = 4 * 1024 * 1024  # larger bodies get 413
    max_suggestions_limit: int = 10
    threads: int | None = None            # waitress threads; None: slots + queue_size + 4 (room for /health)
    model_info: dict = field(default_factory=dict)  # shown by /health (name, arch, sha256, ...)
    workers: int = 0                      # engine processes (0: the engine runs in this process)
    slots: int = 1                        # engine slots per worker (concurrent requests, batched)
    default_model: str = DEFAULT_MODEL    # the --model file: what a request without "model" gets
    models_dir: str | None = None         # --models-dir: DIR/NAME.pt answers "model": "NAME" (serving/models.py)

    @property
    def waitress_threads(self) -> int:
        # every slot running + queue_size waiting + spare threads so /health and /metrics answer under load.
        return self.threads or max(self.workers, 1) * self.slots + self.queue_size + 4


def engine_stats(predictor) -> dict[str, float]:
    from serving.worker import engine_stats as stats
    return stats(predictor)


class AppState:
    """What the request handlers share: the engine (None while loading: a WorkerPool, or a LocalEngine
    around an in-process predictor), metrics."""

    def __init__(self, predictor, config: ServerConfig):
        self.config = config
        self.engine = None
        self.model_info = dict(config.model_info)
        self.metrics = Metrics(self)
        self.reloader: ModelReloader | None = None  # set by main(): the checkpoint can be served anew
        if predictor is not None:
            self.set_ready(predictor)

    @property
    def gate(self) -> ModelGate:
        """The in-process engine's one gate (--workers 0)."""
        return self.engine.slot.gate

    def set_ready(self, engine, model_info: dict | None = None):
        """`engine`: a WorkerPool (started) or a Predictor (run in this process)."""
        if model_info:
            self.model_info.update(model_info)
        if not isinstance(engine, (WorkerPool, LocalEngine)):
            engine = LocalEngine(engine, self.config.queue_size)
        self.engine = engine


class ClientGone(Exception):
    """The client hung up while its request waited: the request is dropped (499, which nobody reads)."""


@dataclass
class Computed:
    """An engine's answer to one request, and where its time went (milliseconds)."""
    completions: list            # [(text, probability)], best first
    model_sha: str | None        # the sha256 prefix of the model file that answered
    queue_ms: float              # waiting for an engine slot
    engine_ms: float             # the engine as this process sees it (the hop to its worker included)
    compute_ms: float            # the worker's own computation

    def continued(self, more: "Computed") -> "Computed":
        """The best completion followed by `more`'s best (computed after it), the time of both."""
        (text, p), rest = self.completions[0], self.completions[1:]
        head = [(text + t, p * q) for t, q in more.completions[:1]] or [(text, p)]
        return Computed(head + rest, more.model_sha or self.model_sha, self.queue_ms + more.queue_ms,
                        self.engine_ms + more.engine_ms, self.compute_ms + more.compute_ms)

    def timings(self) -> dict[str, float]:
        return {"queue_ms": round(self.queue_ms, 3), "engine_ms": round(self.engine_ms, 3),
                "compute_ms": round(self.compute_ms, 3)}

    def server_timing(self) -> str:
        """W3C Server-Timing header: clients and the load benchmark read where the time went."""
        return f"queue;dur={self.queue_ms:.3f}, engine;dur={self.engine_ms:.3f}, compute;dur={self.compute_ms:.3f}"


class ApiError(Exception):
    """A client mistake (or overload) answered as JSON with this status."""

    def __init__(self, status: int, message: str, kind: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.headers = status, message, kind, headers or {}


def error_response(status: int, message: str, name: str, headers=None) -> Response:
    if has_request_context() and request.path in LLAMA_CPP_PATHS:  # a llama.cpp client reads its own shape
        response = jsonify(infill.error_body(status, message))
    else:
        response = jsonify({"success": False, "error": message, "status": status, "type": name})
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def bearer_token(header_value: str | None) -> bytes | None:
    """The raw bytes of `Authorization: Bearer TOKEN`'s token, or None for another scheme or none."""
    if not header_value:
        return None
    scheme, _, given = header_value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    # WSGI headers arrive latin-1 decoded: back to the raw bytes before comparing.
    return given.strip().encode("latin-1", errors="replace")


def token_matches(header_value: str | None, token: str) -> bool:
    """Constant-time check of `Authorization: Bearer TOKEN`."""
    given = bearer_token(header_value)
    return given is not None and hmac.compare_digest(given, token.encode("utf-8"))


def parse_completion_request(config: ServerConfig) -> dict:
    """Validate the body of POST /autocomplete; raise ApiError(4xx) on any client mistake."""
    return completion_args(read_json_object(), config)


def read_json_object() -> dict:
    """The request's body, a JSON object; ApiError(4xx) when it is not one."""
    if not request.is_json:
        raise ApiError(415, "Content-Type must be application/json", "unsupported_media_type")
    raw = request.get_data(cache=False)  # 413 from MAX_CONTENT_LENGTH happens here
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as e:  # includes bad UTF-8 and huge integers
        raise ApiError(400, f"malformed JSON: {str(e)[:200]}", "bad_json") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the JSON body must be an object", "bad_json")
    return body


def completion_args(body: dict, config: ServerConfig) -> dict:
    """The engine's arguments from a completion request's fields (/autocomplete's names); ApiError(4xx) on
    any client mistake."""
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
    name = body.get("model")
    path = None
    if name is not None and name != "":
        if not isinstance(name, str):
            raise ApiError(400, '"model" must be a string (a model\'s name: GET /models lists them)', "bad_field")
        try:
            path = model_path(name, config.models_dir, config.default_model)
        except UnknownModel as e:
            raise ApiError(404, str(e), "unknown_model") from None
    # Keep what the model can use: the end of the prompt and the start of the suffix. (Lone surrogates,
    # valid in JSON but not in UTF-8, are the engine's to replace: Predictor.complete does it.)
    prompt = prompt[-config.max_prompt_chars:]
    suffix = suffix[:config.max_suffix_chars]
    return {"prompt": prompt, "suffix": suffix, "kind": kind, "max_suggestions": n,
            "time_budget_ms": budget, "extra": extra, "model_path": path}


def with_remaining_budget(args: dict, waited_ms: float) -> dict:
    """`time_budget_ms` is the client's latency budget from the request's arrival: what the wait for an
    engine slot used is no longer the engine's. An editor's completion that comes late is stale (the user
    typed on), so under load a request that waited gets a shorter search rather than a later answer. Past
    its budget the engine still answers from the prompt feed and the search's first step (~0.001 ms left
    makes it stop at its first deadline check)."""
    budget = args.get("time_budget_ms")
    if budget is None:
        return args
    return {**args, "time_budget_ms": max(budget - waited_ms, 0.001)}


def parse_input_extra(chunks, config: ServerConfig) -> list[tuple[str, str]]:
    """(filename, text) of each `input_extra` chunk ([{"filename": str, "text": str}, ...], llama.cpp's
    convention; absent or null: none; the filename may be left out). Wrong shapes or types: 400; too many
    chunks or characters: 413 (nothing is cut silently: the client chose those chunks and should choose fewer)."""
    if chunks is None:
        return []
    if not isinstance(chunks, list):
        raise ApiError(400, '"input_extra" must be a list of {"filename": str, "text": str} objects', "bad_field")
    if len(chunks) > config.max_extra_chunks:
        raise ApiError(413, f'"input_extra" has {len(chunks)} chunks; at most {config.max_extra_chunks} are '
                            "accepted", "too_large")
    chunks_out, total = [], 0
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
        chunks_out.append((filename or "", text))
    return chunks_out


def create_app(predictor, config: ServerConfig | None = None) -> Flask:
    """The Flask app around `predictor` (None: still loading; call `app_state(app).set_ready` later)."""
    config = config or ServerConfig()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.sort_keys = False
    state = AppState(predictor, config)
    app.extensions["autocomplete"] = state

    def authorized() -> bool:
        """Does the request carry a token the server knows (or need none)? `g.user` names whose it is
        (serving/tokens.py) when the server has a tokens file."""
        if config.token is None and config.tokens is None:
            return True
        if "user" not in g:
            header = request.headers.get("Authorization")
            given = bearer_token(header)
            g.user = config.tokens.user_of(given) if config.tokens is not None and given is not None else None
            if g.user is None and config.token is not None and token_matches(header, config.token):
                g.user = SHARED_USER
        return g.user is not None

    def require_token():
        if not authorized():
            state.metrics.error("unauthorized")
            raise ApiError(401, "missing or wrong API token (send Authorization: Bearer TOKEN)",
                           "unauthorized", {"WWW-Authenticate": 'Bearer realm="autocomplete"'})

    @app.errorhandler(ClientGone)
    def on_client_gone(e: ClientGone):
        return Response(status=499)

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

    def compute(args: dict, start: float, answers: bool = True) -> Computed:
        """Wait for an engine slot (the client's, serving/pool.py) and compute `args`' completions;
        ApiError when there is no answer to give, ClientGone when nobody waits for it any more. `answers`:
        counted as a client's request answered (not for a second computation of one request's answer)."""
        retry = {"Retry-After": str(config.retry_after_s)}
        engine = state.engine
        if engine is None:
            state.metrics.error("loading")
            raise ApiError(503, "the model is still loading", "loading", retry)
        try:
            slot = engine.enter(client_key(request), config.max_wait_ms / 1000)
        except QueueFull:
            state.metrics.error("queue_full")
            raise ApiError(503, "server busy: the request queue is full", "queue_full", retry) from None
        except NoWorker:
            # 502, not 503: this server is a gateway to its engine workers and has none; a load balancer
            # retries 502 on another replica and takes this one out (serving/nginx.py), while 503 means
            # overload and goes back to the client.
            state.metrics.error("no_worker")
            raise ApiError(502, "no engine worker is ready (restarting)", "no_worker", retry) from None
        if slot is None:
            state.metrics.error("queue_timeout")
            raise ApiError(503, "server busy: waited too long for the model", "queue_timeout", retry)
        queued = time.perf_counter()
        args = with_remaining_budget(args, (queued - start) * 1000)
        try:
            if client_disconnected(request.environ):
                # Nobody will read the answer: leave the model to requests that still matter.
                state.metrics.error("client_gone")
                raise ClientGone()
            completions, compute_ms, model_sha = engine.complete(slot, args)
            engine_done = time.perf_counter()
        except WorkerLost as e:
            # The worker died under this request (and is being replaced): 502 like no_worker, so a load
            # balancer retries it on another replica; a direct client retries after Retry-After.
            state.metrics.error("worker_lost")
            raise ApiError(502, f"{e}", "worker_lost", retry) from None
        except ModelUnavailable as e:  # the named model's file does not load: the server's to mend, not 500
            state.metrics.error("model_unavailable")
            raise ApiError(503, f"{e}", "model_unavailable", retry) from None
        except (ApiError, ClientGone):
            raise
        except Exception:  # EngineError included: a bug in the engine, never the client's input
            log.exception("completion engine failed")
            state.metrics.error("engine")
            raise ApiError(500, "the completion engine failed", "engine_error") from None
        finally:
            engine.leave(slot)
        state.metrics.add_engine_time(engine_done - queued)
        if answers:
            state.metrics.answered(model_name(args), g.get("user") if config.tokens is not None else None)
        return Computed(completions, model_sha, queue_ms=(queued - start) * 1000,
                        engine_ms=(engine_done - queued) * 1000, compute_ms=compute_ms)

    def compute_showable(args: dict, start: float) -> Computed:
        """`compute`, for clients that show no completion of blanks only (llama.vim, llama.vscode, Tabby's
        agent): when the best is blanks and line breaks (`"\\n    "` after `for x in xs:`), the engine goes on
        after them, once (serving/infill.py `blanks_only`)."""
        computed = compute(args, start)
        if infill.blanks_only(computed.completions):
            now = time.perf_counter()
            after = {**args, "prompt": args["prompt"] + computed.completions[0][0], "max_suggestions": 1}
            more = compute(with_remaining_budget(after, (now - start) * 1000), now, answers=False)
            computed = computed.continued(more)
        return computed

    def model_name(args: dict) -> str:
        return Path(args["model_path"] or config.default_model).stem

    @contextmanager
    def reading_request():
        """Around reading a request's body: a field of the wrong shape for its dialect (serving/infill.py,
        serving/tabby.py) is a 400 `bad_field`, and every client mistake is counted by its kind."""
        try:
            try:
                yield
            except (infill.BadInfill, tabby.BadTabbyRequest) as e:
                raise ApiError(400, str(e), "bad_field") from None
        except ApiError as e:
            state.metrics.error(e.kind)
            raise

    @app.post("/autocomplete")
    def autocomplete():
        start = time.perf_counter()
        require_token()
        with reading_request():
            args = parse_completion_request(config)
        computed = compute(args, start)
        done = time.perf_counter()
        g.latency_seconds = done - start
        body = {
            "success": True,
            "prediction": [text for text, _ in computed.completions],
            "probs": [float(p) if math.isfinite(p) else 0.0 for _, p in computed.completions],
            "id": uuid.uuid4().hex,
            "ms": round((done - start) * 1000, 3),
        }
        state.metrics.remember_answer(body["id"], model_name(args))  # for the editor's events on it
        if computed.model_sha:  # which model answered (sha256 prefix of its file): a client's cache of
            body["model"] = computed.model_sha  # answers is void once it changes (a reload, serving/reload.py)
        response = jsonify(body)
        # Where the time went, for clients and the load benchmark (W3C Server-Timing): waiting for a slot,
        # the engine as this process sees it (with the hop to its worker), the worker's own computation.
        response.headers["Server-Timing"] = computed.server_timing()
        return response

    @app.post("/infill")
    def llama_cpp_infill():
        """llama.cpp's /infill (serving/infill.py): llama.vim and llama.vscode as they are."""
        start = time.perf_counter()
        require_token()
        with reading_request():
            fields, options = infill.translate_request(read_json_object(), config.max_suggestions_limit)
            args = completion_args(fields, config)
        truncated = len(fields["prompt"]) > config.max_prompt_chars
        if options.n_predict == 0:  # "read these chunks": nothing to compute (serving/infill.py)
            computed = Computed([], None, 0.0, 0.0, 0.0)
        else:
            computed = compute_showable(args, start)
        g.latency_seconds = time.perf_counter() - start
        results = infill.answers([text for text, _ in computed.completions], options, model_name(args), truncated,
                                 computed.timings())
        text, mimetype = infill.body(results, options)
        return Response(text, mimetype=mimetype, headers={"Server-Timing": computed.server_timing()})

    @app.post("/v1/completions")
    def tabby_completions():
        """Tabby's completion route (serving/tabby.py): Tabby's agent and the editors it serves."""
        start = time.perf_counter()
        require_token()
        with reading_request():
            asked = tabby.translate_request(read_json_object())
            if asked.repository and served_path(asked.repository, config.models_dir, config.default_model)[0]:
                asked.fields["model"] = asked.repository  # the repository's own model, where there is one
            args = completion_args(asked.fields, config)
        cid = tabby.completion_id()
        if not asked.python:  # a Python model has nothing to offer in another language's file
            return jsonify(tabby.answer([], cid))
        computed = compute_showable(args, start)
        g.latency_seconds = time.perf_counter() - start
        state.metrics.remember_answer(cid, model_name(args))  # for the agent's events on it
        response = jsonify(tabby.answer([text for text, _ in computed.completions], cid))
        response.headers["Server-Timing"] = computed.server_timing()
        return response

    @app.route("/v1/health", methods=["GET", "POST"])
    def tabby_health():
        require_token()  # as Tabby's: a 401 here is how the agent learns it needs a token
        if state.engine is None or not state.engine.healthy:
            return health()  # the 503 that /health gives
        return jsonify(tabby.health(Path(config.default_model).stem, __version__))

    @app.get("/v1beta/server_setting")
    def tabby_server_setting():
        require_token()
        return jsonify(tabby.server_setting())

    @app.post("/v1/events")
    def tabby_events():
        require_token()
        with reading_request():
            kind, answer_id = tabby.read_event(read_json_object())
        state.metrics.client_event(kind, answer_id)
        return Response("", status=200, mimetype="text/plain")

    @app.get("/health")
    def health():
        engine = state.engine
        if engine is None:
            return error_response(503, "the model is loading", "loading",
                                  {"Retry-After": str(config.retry_after_s)})
        if not engine.healthy:  # a load balancer takes this replica out until a worker is back
            return error_response(503, "no engine worker is ready (restarting)", "no_worker",
                                  {"Retry-After": str(config.retry_after_s)})
        body = {"status": "ok"}
        if authorized():  # with a token set, anonymous callers learn only that it is up
            workers = engine.snapshot()
            if state.reloader is not None:
                body["reload"] = state.reloader.snapshot()
            body.update(model=state.model_info, version=__version__,
                        queue={"depth": engine.depth, "capacity": config.queue_size},
                        workers={"configured": len(engine.slots), "ready": sum(
                            1 for w in workers.values() if w["ready"]), "slots": len(engine.slots[0]),
                            "restarts": sum(w["restarts"] for w in workers.values()),
                            "pids": [w["pid"] for w in workers.values() if w["ready"]]})
        return jsonify(body)

    @app.get("/models")
    def models():
        require_token()  # the names of a team's projects
        return jsonify({"default": Path(config.default_model).stem,
                        "models": served_names(config.models_dir, config.default_model)})

    @app.get("/metrics")
    def metrics():
        require_token()
        return Response(state.metrics.render(), mimetype="text/plain",
                        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    return app


def client_key(req) -> str:
    """Affinity key: the client's `X-Client-Id` (set it per editor, or let a load balancer set it), else
    its connection (an editor keeps one keep-alive connection while it types)."""
    given = req.headers.get("X-Client-Id")
    if given:
        return given[:200]
    env = req.environ
    return f"{env.get('REMOTE_ADDR', '')}:{env.get('REMOTE_PORT', '')}"


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
    p.add_argument("--tokens-file", default=None, metavar="FILE",
                   help="a token per person: lines `NAME TOKEN` (serving/tokens.py); read again when it changes; "
                        "counts as the token a non-loopback address requires")
    d = ServerConfig()
    p.add_argument("--queue-size", type=int, default=d.queue_size, help="requests that may wait")
    p.add_argument("--max-wait-ms", type=float, default=d.max_wait_ms, help="longest wait in the queue")
    p.add_argument("--time-budget-ms", type=float, default=DEFAULT_TIME_BUDGET_MS,
                   help="latency budget of a request that sends none, counted from its arrival (the wait for a "
                        "worker included): the search stops there and answers its best so far; 0: no budget "
                        f"(default {DEFAULT_TIME_BUDGET_MS:g}: keeps 16 busy clients' p99 under 300 ms on 2 cores "
                        "at no measured cost to keystrokes saved, docs/server.md)")
    p.add_argument("--allocator", choices=("auto", "jemalloc", "glibc"), default="auto",
                   help="malloc of the engine workers: auto = jemalloc when libjemalloc.so.2 is installed "
                        "(Debian: libjemalloc2; ~12 %% less memory under load, serving/memory.py), else glibc")
    p.add_argument("--threads", type=int, default=None, help="waitress threads (default queue-size + 4)")
    p.add_argument("--torch-threads", type=int, default=1,
                   help="torch intra-op threads per engine worker (default 1: one small forward gains little "
                        "from more, and extra threads spin and stall when the CPU is shared)")
    p.add_argument("--workers", default="auto",
                   help="engine processes (default auto: one per core; 0: the engine in the HTTP process, one "
                        "request at a time, as before)")
    p.add_argument("--slots", type=int, default=None,
                   help="engine slots per worker: requests computed at once, their search steps batched "
                        "(default 1: measured best on 2 cores, docs/server.md)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="where the model runs (auto: cuda when available, else cpu)")
    p.add_argument("--cache-mb", type=float, default=PoolConfig.cache_mb,
                   help="per worker: bytes of model states and project-context indexes its slots may cache")
    p.add_argument("--no-batching", action="store_true", help="run each slot's forward calls on their own")
    # models.quantize.QUANTIZE_CHOICES, spelled out: this process must not import torch (models/ does).
    p.add_argument("--quantize", choices=("auto", "none", "int8"), default=PoolConfig.quantize,
                   help="int8 weights in memory (models/quantize.py): auto = int8 on the CPU, none on a GPU")
    p.add_argument("--batch-wait-ms", type=float, default=PoolConfig.batch_wait_ms,
                   help="longest a forward call waits for others to join its batch")
    p.add_argument("--models-dir", default=None,
                   help="also serve every DIR/NAME.pt, to requests that send \"model\": \"NAME\" (a model per project: "
                        "make train SOURCES=... OUT=DIR/NAME.pt); each engine loads one when first asked for it "
                        "(serving/models.py)")
    p.add_argument("--max-models", type=int, default=DEFAULT_MAX_MODELS,
                   help="named models each engine worker holds at most, least recently used dropped beyond "
                        "(default %(default)s; each has its own --cache-mb of caches)")
    p.add_argument("--preload-models", action="store_true",
                   help="with --models-dir: each engine loads the named models (the newest files first, at most "
                        "--max-models) at its start, while it serves, instead of at each one's first request "
                        "(~0.5 s that request waits); costs their memory (~34 MiB per model and worker) at once")
    p.add_argument("--reload-interval", type=float, default=DEFAULT_RELOAD_INTERVAL_S,
                   help="seconds between looks at the checkpoint: a new file there (make train writes one) is "
                        "loaded and swapped in without dropping a request (serving/reload.py); 0: only on "
                        "SIGUSR1 (default %(default)s)")
    return p.parse_args(argv)


def tune_malloc() -> None:
    from serving.memory import tune_malloc as tune
    tune()


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return 2


def main(argv=None) -> int:
    args = parse_args(argv)
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV)
    token = token.strip() if token else None
    tokens = None
    if args.tokens_file is not None:
        try:
            tokens = TokenSet(args.tokens_file)
        except TokenFileError as e:
            return fail(f"--tokens-file: {e}")
        if not len(tokens):
            return fail(f"--tokens-file {args.tokens_file}: no `NAME TOKEN` line: nobody could use the server")
    if not is_loopback(args.host) and not token and tokens is None:
        return fail(f"refusing to listen on non-loopback address {args.host!r} without an API token: "
                    f"pass --token TOKEN, set {TOKEN_ENV} or give --tokens-file FILE")
    if not 0 <= args.port <= 65535:
        return fail(f"--port must be in 0..65535, got {args.port}")
    if args.queue_size < 1 or args.max_wait_ms <= 0:
        return fail("--queue-size must be >= 1 and --max-wait-ms > 0")
    if args.workers == "auto":
        args.workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        args.workers = int(args.workers)
    except ValueError:
        args.workers = -1
    if not 0 <= args.workers <= 64:
        return fail("--workers must be auto or an integer in 0..64")
    if args.slots is None:
        # 1: on this 2-core CPU two single-slot workers served 16 clients best (docs/server.md); more slots
        # per worker (concurrent requests whose search steps are batched) pay on more cores or a GPU.
        args.slots = 1
    if not 1 <= args.slots <= 64 or (args.workers == 0 and args.slots != 1):
        return fail("--slots must be in 1..64 (and 1 with --workers 0)")
    if args.cache_mb <= 0 or args.batch_wait_ms < 0:
        return fail("--cache-mb must be > 0 and --batch-wait-ms >= 0")
    if not args.time_budget_ms >= 0:
        return fail("--time-budget-ms must be >= 0 (0: no budget)")
    if args.models_dir is not None and not Path(args.models_dir).is_dir():
        return fail(f"--models-dir {args.models_dir}: not a directory")
    if not 1 <= args.max_models <= 64:
        return fail("--max-models must be in 1..64")
    if args.preload_models and args.models_dir is None:
        return fail("--preload-models preloads the models of --models-dir DIR: give it")
    if not 0 <= args.reload_interval <= 86400:
        return fail("--reload-interval must be in 0..86400 seconds (0: only on SIGUSR1)")
    if args.host.lower() == "localhost":
        args.host = "127.0.0.1"  # one socket (waitress would bind ::1 too, each on its own port 0)
    model = Path(args.model)
    if not model.is_file():
        return fail(f"model checkpoint not found: {model} (pass --model PATH)")
    allocator = "glibc (in the server process)"
    if args.workers > 0:
        from serving.memory import engine_allocator
        try:
            allocator = engine_allocator(args.allocator)  # before the pool starts the workers' forkserver
        except ValueError as e:
            return fail(str(e))
    tune_malloc()  # before any thread starts
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    config = ServerConfig(host=args.host, port=args.port, token=token, tokens=tokens, queue_size=args.queue_size,
                          max_wait_ms=args.max_wait_ms, time_budget_ms=args.time_budget_ms or None,
                          threads=args.threads, model_info={"name": model.stem, "file": model.name},
                          workers=args.workers, slots=args.slots, default_model=str(model),
                          models_dir=args.models_dir)
    app = create_app(None, config)

    try:
        server = make_wsgi_server(app, config)
    except OSError as e:
        return fail(f"cannot listen on {args.host}:{args.port}: {one_line(e)}")
    port = getattr(server, "effective_port", args.port)
    print(f"listening on http://{args.host}:{port} (loading {model} ...)", flush=True)

    pool = None
    state = app_state(app)
    # how often a --models-dir model's file is looked at (serving/models.py): as the --model file's, 2 s when 0
    check_interval_s = args.reload_interval or DEFAULT_RELOAD_INTERVAL_S

    def load():
        nonlocal pool
        t0 = time.perf_counter()
        try:
            reloader = ModelReloader(state, str(model))  # the file's signature before it is read
            if args.workers == 0:
                import torch  # most of the start-up time: imported here, after binding
                if args.torch_threads:
                    torch.set_num_threads(args.torch_threads)
                predictor, info = load_model(str(model), args.device, args.quantize)
                from serving.worker import served_loader
                named = ModelSet(served_loader(1, args.cache_mb, info["device"], False, 0.0, args.quantize),
                                 args.max_models, check_interval_s)
                engine = LocalEngine(predictor, config.queue_size, model=info.get("sha256"), models=named,
                                     loader=lambda: load_model(str(model), args.device, args.quantize))
                where = "in the server process"
                if args.preload_models:  # the named models load while this process serves (serving/models.py)
                    named.start_preload(args.models_dir, model)
            else:
                pool = WorkerPool(PoolConfig(
                    model=str(model), workers=args.workers, slots=args.slots, device=args.device,
                    torch_threads=args.torch_threads, cache_mb=args.cache_mb, batching=not args.no_batching,
                    quantize=args.quantize, max_models=args.max_models,
                    check_interval_s=check_interval_s, models_dir=args.models_dir,
                    preload_models=args.preload_models,
                    batch_wait_ms=args.batch_wait_ms, queue_size=args.queue_size))
                info = pool.start()
                engine = pool
                where = f"{args.workers} worker(s) x {args.slots} slot(s), malloc: {allocator}"
            state.set_ready(engine, info)
            state.reloader = reloader
            if args.reload_interval > 0:
                CheckpointWatcher(reloader, args.reload_interval).start()
            print(f"model ready: {model} ({info['arch']}, {info['params']:,} parameters, {info['device']}, "
                  f"{where}, {time.perf_counter() - t0:.1f} s)", flush=True)
        except BaseException as e:  # noqa: BLE001 - any failure to load ends the server, in one line
            # A CheckpointError already names the file and the reason.
            message = one_line(e) if str(model) in str(e) else f"cannot load model {model}: {one_line(e)}"
            print(f"error: {message}", file=sys.stderr, flush=True)
            os._exit(2)

    threading.Thread(target=load, name="model-loader", daemon=True).start()
    import signal

    def on_sigusr1(*_):
        if state.reloader is None:
            log.warning("SIGUSR1 while the model is still loading: ignored")
            return
        threading.Thread(target=state.reloader.reload, args=("SIGUSR1",), name="model-reloader",
                         daemon=True).start()
    # SIGUSR1, not nginx's SIGHUP: a terminal's hangup reaches the whole foreground group (make, the server,
    # its workers) and must still end the server, not leave it running without its terminal.
    if hasattr(signal, "SIGUSR1"):  # not on Windows: there the file watcher alone reloads
        signal.signal(signal.SIGUSR1, on_sigusr1)
    # SIGTERM (systemd, docker, the tests) ends the process like Ctrl-C: workers are stopped, not orphaned.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        if pool is not None:
            pool.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
