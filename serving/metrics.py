"""/metrics through prometheus_client, one registry per app (tests build several apps in one process).

With worker processes the figures are aggregated in the HTTP process, not with prometheus_client's
multiprocess mode: every request passes through this process anyway (request counts, latency histogram,
errors are observed here), and each worker sends its engine counters and memory with its answers (when
idle, and every 16th request), so the parent sums them at scrape time. No shared metrics directory to
manage, and a replaced worker's counters are not lost twice: its last report stays until the new one
reports (documented as a reset, as Prometheus counters allow).
"""
from __future__ import annotations

import threading
from collections import OrderedDict

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

try:  # the *_created samples only add noise to this endpoint
    from prometheus_client import disable_created_metrics
    disable_created_metrics()
except ImportError:  # older prometheus_client
    pass

# Answers whose model a later suggestion event can still be told by (ids of ~32 characters: ~1 MB at most). An
# editor reports a view within a second of the answer and an accept within seconds more; an event for an id
# forgotten (older, from before a restart, answered by another replica) is counted as model "unknown".
ANSWERS_REMEMBERED = 8192
UNKNOWN_MODEL = "unknown"

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self, state):
        self.registry = CollectorRegistry()
        self.requests = Counter("autocomplete_requests", "HTTP requests by endpoint, method and status.",
                                ["endpoint", "method", "status"], registry=self.registry)
        self.latency = Histogram("autocomplete_request_duration_seconds",
                                 "/autocomplete latency inside the server (queue + engine).",
                                 buckets=BUCKETS, registry=self.registry)
        self.engine_seconds = Counter("autocomplete_engine_seconds", "Time spent inside the completion engine.",
                                      registry=self.registry)
        self.errors = Counter("autocomplete_errors", "Failed requests by kind.", ["kind"], registry=self.registry)
        self.reloads = Counter("autocomplete_model_reloads",
                               "Reloads of the checkpoint (the file changed, or SIGUSR1) by result: ok, failed.",
                               ["result"], registry=self.registry)
        # by the model that answered: the default's name or a --models-dir name (serving/models.py); the names
        # are the directory's files, so the label set stays as small as the team's projects
        self.model_requests = Counter("autocomplete_model_requests", "Completions answered, by the model asked for.",
                                      ["model"], registry=self.registry)
        # by the person whose token asked (--tokens-file, serving/tokens.py): one label per line of that file
        self.user_requests = Counter("autocomplete_user_requests", "Completions answered, by the token's user.",
                                     ["user"], registry=self.registry)
        # what editors did with the suggestions shown (Tabby's agent and the extension post them, serving/tabby.py):
        # select over view is how often the team takes a suggestion, per model (a project's fine-tuned one against
        # the default); the type is one of serving.tabby.EVENT_TYPES or "other", the model that of the answer the
        # event names (`answered_by`), else UNKNOWN_MODEL
        self.client_events = Counter("autocomplete_client_events",
                                     "Suggestion events editors reported, by type and by the model that answered.",
                                     ["type", "model"], registry=self.registry)
        self.answered_by: OrderedDict[str, str] = OrderedDict()  # answer id -> model name, the newest last
        self._answers_lock = threading.Lock()
        self.registry.register(_StateCollector(state))

    def observe(self, endpoint: str, method: str, status: int, seconds: float | None = None):
        self.requests.labels(endpoint, method, str(status)).inc()
        if seconds is not None:
            self.latency.observe(seconds)

    def error(self, kind: str):
        self.errors.labels(kind).inc()

    def reload(self, result: str):
        self.reloads.labels(result).inc()

    def answered(self, model: str, user: str | None = None):
        self.model_requests.labels(model).inc()
        if user is not None:
            self.user_requests.labels(user).inc()

    def remember_answer(self, answer_id: str, model: str):
        """An answer sent with `answer_id` (the `id` editors name in their events) was computed by `model`."""
        with self._answers_lock:
            self.answered_by[answer_id] = model
            while len(self.answered_by) > ANSWERS_REMEMBERED:
                self.answered_by.popitem(last=False)

    def client_event(self, kind: str, answer_id: str):
        with self._answers_lock:
            model = self.answered_by.get(answer_id, UNKNOWN_MODEL)
        self.client_events.labels(kind, model).inc()

    def add_engine_time(self, seconds: float):
        self.engine_seconds.inc(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector:
    """Levels read at scrape time: queue, readiness, workers, and the engines' own counters."""

    def __init__(self, state):
        self.state = state

    def describe(self):
        return []  # dynamic: no fixed description (keeps the registry from collecting at register time)

    def collect(self):
        from .worker import ENGINE_GAUGES
        state = self.state
        engine = state.engine
        yield GaugeMetricFamily("autocomplete_queue_depth", "Requests waiting for an engine slot right now.",
                                value=engine.depth if engine is not None else 0)
        yield GaugeMetricFamily("autocomplete_queue_capacity", "Requests that may wait for one worker before 503.",
                                value=state.config.queue_size)
        yield GaugeMetricFamily("autocomplete_model_ready", "1 once the model is loaded (a worker is ready).",
                                value=int(engine is not None and engine.healthy))
        snapshot = engine.snapshot() if engine is not None else {}
        ready = GaugeMetricFamily("autocomplete_worker_ready", "Engine worker ready (1) or restarting (0).",
                                  labels=["worker"])
        in_flight = GaugeMetricFamily("autocomplete_worker_in_flight", "Requests on each engine worker.",
                                      labels=["worker"])
        rss = GaugeMetricFamily("autocomplete_worker_resident_bytes",
                                "VmRSS of each engine worker at its last report.", labels=["worker"])
        restarts = CounterMetricFamily("autocomplete_worker_restarts", "Engine workers replaced after dying.",
                                       labels=["worker"])
        totals: dict[str, float] = {}
        for w, snap in snapshot.items():
            ready.add_metric([str(w)], int(snap.get("ready", False)))
            in_flight.add_metric([str(w)], snap.get("in_flight", 0))
            rss.add_metric([str(w)], snap.get("rss_bytes", 0))
            restarts.add_metric([str(w)], snap.get("restarts", 0))
            for k, v in snap.items():
                if k in ("ready", "in_flight", "restarts", "pid", "rss_bytes", "pss_bytes"):
                    continue
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    totals[k] = totals.get(k, 0) + v
        yield from (ready, in_flight, rss, restarts)
        for name, value in sorted(totals.items()):
            if name in ENGINE_GAUGES:
                yield GaugeMetricFamily(f"autocomplete_engine_{name}", "Engine level, summed over workers and slots.",
                                        value=value)
            else:
                yield CounterMetricFamily(f"autocomplete_engine_{name.removesuffix('_total')}",
                                          "Engine counter, summed over workers and slots.", value=value)


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample named `name` (`autocomplete_errors_total`, ...) in a /metrics page, read
    by prometheus_client's own parser: how the scripts and benchmarks read the server's figures."""
    return [(dict(s.labels), s.value) for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == name]


def sample_value(text: str, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (all of them when none are given); 0.0 when
    there is none (a labelled counter has no sample before its first count)."""
    return sum(value for have, value in samples(text, name)
               if all(have.get(k) == v for k, v in labels.items()))
