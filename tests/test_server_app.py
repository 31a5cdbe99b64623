"""The Flask app in process (Flask's test client) around a real tiny model: API shape, validation,
errors as JSON, token checks, loading state, metrics; and the model gate's queue discipline."""
import threading
import time

import pytest
import torch

import server
from server import ModelGate, QueueFull, ServerConfig, app_state, create_app
from tests.tiny_model import make_tiny_checkpoint

torch.set_num_threads(1)
TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    make_tiny_checkpoint(path)
    return server.load_model(str(path))  # (predictor, info)


@pytest.fixture(scope="module")
def client(loaded):
    predictor, info = loaded
    return create_app(predictor, ServerConfig(model_info=info)).test_client()


@pytest.fixture(scope="module")
def token_client(loaded):
    predictor, info = loaded
    return create_app(predictor, ServerConfig(token=TOKEN, model_info=info)).test_client()


def test_autocomplete_returns_reference_shape(client):
    r = client.post("/autocomplete", json={"prompt": "def add(a, b):\n    return a"})
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.get_json()
    assert body["success"] is True
    assert isinstance(body["prediction"], list) and 1 <= len(body["prediction"]) <= 3
    assert all(isinstance(t, str) for t in body["prediction"])
    assert len(body["probs"]) == len(body["prediction"])
    assert all(0.0 <= p <= 1.0 for p in body["probs"])
    # kind "line" ranks by probability (the default kind ranks by expected saving): best first
    line = client.post("/autocomplete", json={"prompt": "def add(a, b):\n    return a", "kind": "line"})
    assert line.get_json()["probs"] == sorted(line.get_json()["probs"], reverse=True)
    assert isinstance(body["id"], str) and body["id"]
    assert body["ms"] >= 0
    timing = dict(part.strip().split(";dur=") for part in r.headers["Server-Timing"].split(","))
    assert set(timing) == {"queue", "engine", "compute"}
    assert 0 <= float(timing["compute"]) <= float(timing["engine"]) + 0.01


@pytest.mark.parametrize("extra", [
    {"kind": "word"}, {"kind": "line"}, {"kind": "block"}, {"kind": None},
    {"suffix": ")\n"}, {"max_suggestions": 1}, {"max_suggestions": 10},
    {"unknown_field": [1, 2, {"x": None}]},  # unknown fields are ignored
    {"time_budget_ms": 50},
])
def test_autocomplete_options(client, extra):
    r = client.post("/autocomplete", json={"prompt": "import os\nos.path.", **extra})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert len(r.get_json()["prediction"]) <= extra.get("max_suggestions", 3)


def test_max_suggestions_one_gives_at_most_one(client):
    r = client.post("/autocomplete", json={"prompt": "for i in ", "max_suggestions": 1})
    assert len(r.get_json()["prediction"]) <= 1


def test_long_prompt_is_cut_to_its_end_not_refused(client):
    # 600 KB of prompt fits the 1 MB body cap; the server keeps the last 64K characters.
    prompt = "x = 1\n" * 100_000 + "def f("
    r = client.post("/autocomplete", json={"prompt": prompt})
    assert r.status_code == 200, r.get_data(as_text=True)


def test_lone_surrogates_are_tolerated(client):
    r = client.post("/autocomplete", data='{"prompt": "s = \\"\\ud800"}', content_type="application/json")
    assert r.status_code == 200, r.get_data(as_text=True)


@pytest.mark.parametrize("kwargs, status, words", [
    (dict(data="prompt=x", content_type="application/x-www-form-urlencoded"), 415, "application/json"),
    (dict(data='{"prompt": "x"}', content_type="text/plain"), 415, "application/json"),
    (dict(data='{"prompt": "x"}'), 415, "application/json"),  # no content type at all
    (dict(data="{", content_type="application/json"), 400, "malformed JSON"),
    (dict(data="", content_type="application/json"), 400, "malformed JSON"),
    (dict(data=b'{"prompt": "\xff"}', content_type="application/json"), 400, "malformed JSON"),
    (dict(data="[" * 100_000, content_type="application/json"), 400, "malformed JSON"),
    (dict(data='{"prompt": "x", "max_suggestions": 1' + "0" * 5000 + "}",
          content_type="application/json"), 400, "malformed JSON"),
    (dict(json=["prompt"]), 400, "object"),
    (dict(json="prompt"), 400, "object"),
    (dict(data="null", content_type="application/json"), 400, "object"),
    (dict(json={}), 400, "prompt"),
    (dict(json={"prompt": 5}), 400, "prompt"),
    (dict(json={"prompt": None}), 400, "prompt"),
    (dict(json={"prompt": "x", "suffix": 3}), 400, "suffix"),
    (dict(json={"prompt": "x", "kind": "sentence"}), 400, "kind"),
    (dict(json={"prompt": "x", "kind": ["line"]}), 400, "kind"),
    (dict(json={"prompt": "x", "max_suggestions": 0}), 400, "max_suggestions"),
    (dict(json={"prompt": "x", "max_suggestions": 11}), 400, "max_suggestions"),
    (dict(json={"prompt": "x", "max_suggestions": 2.0}), 400, "max_suggestions"),
    (dict(json={"prompt": "x", "max_suggestions": "3"}), 400, "max_suggestions"),
    (dict(json={"prompt": "x", "max_suggestions": True}), 400, "max_suggestions"),
    (dict(json={"prompt": "x", "time_budget_ms": -1}), 400, "time_budget_ms"),
    (dict(data='{"prompt": "x", "time_budget_ms": Infinity}', content_type="application/json"), 400,
     "time_budget_ms"),
    (dict(data=b"{" + b" " * ServerConfig.max_body_bytes + b"}", content_type="application/json"), 413,
     "too large"),
    (dict(json={"prompt": "x", "input_extra": "def f(): pass"}), 400, "input_extra"),
    (dict(json={"prompt": "x", "input_extra": {"filename": "a.py", "text": "x"}}), 400, "input_extra"),
    (dict(json={"prompt": "x", "input_extra": ["def f(): pass"]}), 400, "input_extra"),
    (dict(json={"prompt": "x", "input_extra": [{"filename": "a.py"}]}), 400, "text"),
    (dict(json={"prompt": "x", "input_extra": [{"filename": "a.py", "text": 7}]}), 400, "text"),
    (dict(json={"prompt": "x", "input_extra": [{"filename": ["a.py"], "text": "x"}]}), 400, "filename"),
    (dict(json={"prompt": "x", "input_extra": [{"filename": "a" * 5000, "text": "x"}]}), 400, "filename"),
    (dict(json={"prompt": "x", "input_extra": [{"text": "x = 1\n"}] * (ServerConfig.max_extra_chunks + 1)}),
     413, "chunks"),
    (dict(json={"prompt": "x", "input_extra": [{"filename": f"{i}.py", "text": "y" * 200_000} for i in range(3)]}),
     413, "characters"),
])
def test_client_mistakes_get_json_4xx(client, kwargs, status, words):
    r = client.post("/autocomplete", **kwargs)
    assert r.status_code == status, r.get_data(as_text=True)
    body = r.get_json()
    assert body["success"] is False and body["status"] == status
    assert words in body["error"]


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/autocomplete", 405), ("PUT", "/autocomplete", 405), ("DELETE", "/health", 405),
    ("POST", "/health", 405), ("POST", "/metrics", 405), ("GET", "/", 404), ("GET", "/nope", 404),
    ("POST", "/autocomplete/extra", 404),
])
def test_routing_errors_are_json(client, method, path, status):
    r = client.open(path, method=method)
    assert r.status_code == status
    assert r.get_json()["status"] == status
    if status == 405:
        assert "Allow" in r.headers


def test_health_reports_model(client, loaded):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.get_json()
    assert body["status"] == "ok"
    assert body["model"]["sha256"] == loaded[1]["sha256"]
    assert body["model"]["params"] > 0 and body["version"] == server.__version__


def test_metrics_prometheus_text(client):
    client.post("/autocomplete", json={"prompt": "a"})
    client.post("/autocomplete", json={"prompt": 1})
    r = client.get("/metrics")
    assert r.status_code == 200 and r.mimetype == "text/plain"
    text = r.get_data(as_text=True)
    for needle in ['autocomplete_requests_total{endpoint="/autocomplete",method="POST",status="200"}',
                   'autocomplete_requests_total{endpoint="/autocomplete",method="POST",status="400"}',
                   'autocomplete_request_duration_seconds_bucket{le="+Inf"}',
                   'autocomplete_errors_total{kind="bad_field"}', "autocomplete_queue_depth 0",
                   "autocomplete_model_ready 1"]:
        assert needle in text
    # every sample line is `name{labels} number`
    for line in text.splitlines():
        if not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])


def test_metrics_samples_are_read_by_label(client):
    """serving.metrics.sample_value, how the scripts and benchmarks read /metrics, sums a name's samples whose
    labels include the ones asked for."""
    from serving.metrics import samples, sample_value

    def page():
        return client.get("/metrics").get_data(as_text=True)
    ok = sample_value(page(), "autocomplete_requests_total", endpoint="/autocomplete", status="200")
    bad = sample_value(page(), "autocomplete_requests_total", endpoint="/autocomplete", status="400")
    every = sample_value(page(), "autocomplete_requests_total")
    client.post("/autocomplete", json={"prompt": "a"})
    client.post("/autocomplete", json={"prompt": "b"})
    client.post("/autocomplete", json={"prompt": 1})
    text = page()
    assert sample_value(text, "autocomplete_requests_total", endpoint="/autocomplete", status="200") == ok + 2
    assert sample_value(text, "autocomplete_requests_total", endpoint="/autocomplete", status="400") == bad + 1
    # and the /metrics page `every` was read from (a page counts itself once it is sent)
    assert sample_value(text, "autocomplete_requests_total") == every + 3 + 1
    assert sample_value(text, "autocomplete_requests_total", status="999") == 0.0
    assert sample_value(text, "autocomplete_queue_depth") == 0.0 and sample_value(text, "autocomplete_model_ready") == 1.0
    assert {"endpoint": "/autocomplete", "method": "POST", "status": "400"} in \
        [labels for labels, _ in samples(text, "autocomplete_requests_total")]


def test_metrics_include_engine_stats(client):
    client.post("/autocomplete", json={"prompt": "import sys\nsys."})
    client.post("/autocomplete", json={"prompt": "import sys\nsys."})
    text = client.get("/metrics").get_data(as_text=True)
    assert "autocomplete_engine_" in text.replace("autocomplete_engine_seconds_total", "")


@pytest.mark.parametrize("auth", [None, "Bearer wrong", "Basic czNjcmV0", f"Bearer {TOKEN}x", TOKEN,
                                  f"Bearer {TOKEN[:-1]}"])
def test_token_required(token_client, auth):
    headers = {"Authorization": auth} if auth else {}
    for r in (token_client.post("/autocomplete", json={"prompt": "x"}, headers=headers),
              token_client.get("/metrics", headers=headers)):
        assert r.status_code == 401
        assert r.get_json()["type"] == "unauthorized"
        assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_token_accepted(token_client):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert token_client.post("/autocomplete", json={"prompt": "x"}, headers=headers).status_code == 200
    assert token_client.get("/metrics", headers=headers).status_code == 200
    assert "model" in token_client.get("/health", headers=headers).get_json()


def test_health_leaks_nothing_without_token(token_client):
    r = token_client.get("/health")
    assert r.status_code == 200 and r.get_json() == {"status": "ok"}


def test_loading_then_ready(loaded):
    predictor, info = loaded
    app = create_app(None, ServerConfig(retry_after_s=2))
    c = app.test_client()
    r = c.get("/health")
    assert r.status_code == 503 and r.headers["Retry-After"] == "2"
    r = c.post("/autocomplete", json={"prompt": "x"})
    assert r.status_code == 503 and r.get_json()["type"] == "loading"
    assert c.post("/autocomplete", json={"prompt": 5}).status_code == 400  # validation still first
    app_state(app).set_ready(predictor, info)
    assert c.get("/health").status_code == 200
    assert c.post("/autocomplete", json={"prompt": "x"}).status_code == 200


def test_request_of_departed_client_is_dropped(loaded):
    predictor, info = loaded
    app = create_app(predictor, ServerConfig())
    c = app.test_client()
    r = c.post("/autocomplete", json={"prompt": "x"},
               environ_overrides={"waitress.client_disconnected": lambda: True})
    assert r.status_code == 499
    assert 'autocomplete_errors_total{kind="client_gone"} 1' in c.get("/metrics").get_data(as_text=True)
    # the model was released: the next request runs
    assert c.post("/autocomplete", json={"prompt": "x"}).status_code == 200


def test_full_queue_gets_503_with_retry_after(loaded):
    predictor, info = loaded
    app = create_app(predictor, ServerConfig(queue_size=1, max_wait_ms=50))
    gate = app_state(app).gate
    assert gate.enter(0)  # someone holds the model
    c = app.test_client()
    r = c.post("/autocomplete", json={"prompt": "x"})  # waits 50 ms in the queue, then gives up
    assert r.status_code == 503 and r.get_json()["type"] == "queue_timeout"
    assert r.headers["Retry-After"] == "1"
    gate.leave()
    assert c.post("/autocomplete", json={"prompt": "x"}).status_code == 200


# ---- the gate itself: real threads ----

def test_gate_is_fifo_and_bounded():
    gate = ModelGate(capacity=3)
    assert gate.enter(0)
    order, threads = [], []
    for i in range(3):
        def wait(i=i):
            assert gate.enter(10)
            order.append(i)
            gate.leave()
        threads.append(threading.Thread(target=wait))
        threads[-1].start()
        while gate.depth < i + 1:  # queue them in a known order
            time.sleep(0.001)
    with pytest.raises(QueueFull):
        gate.enter(1)
    gate.leave()
    for t in threads:
        t.join(10)
    assert order == [0, 1, 2]
    assert gate.depth == 0 and gate.enter(0)  # free again


def test_gate_timeout_leaves_queue():
    gate = ModelGate(capacity=1)
    assert gate.enter(0)
    assert gate.enter(0.01) is False
    assert gate.depth == 0
    gate.leave()
    assert gate.enter(0)


def test_input_extra_is_used_and_its_absence_changes_nothing(loaded):
    """A name defined only in input_extra is completed; `input_extra` absent, null or [] give the same answer.
    (A strong copy weight: the over-fitted tiny model is far surer of itself than a real one.)"""
    from evaluate.context import ContextConfig
    from evaluate.predictor import Predictor, PredictorConfig
    predictor = Predictor(loaded[0].model, loaded[0].tokenizer,
                          config=PredictorConfig(context=ContextConfig(max_weight=0.99, scale_bytes=4)))
    client = create_app(predictor, ServerConfig()).test_client()
    prompt = "def main():\n    total = normalise_inv"
    plain = [client.post("/autocomplete", json=body).get_json()["prediction"] for body in (
        {"prompt": prompt}, {"prompt": prompt, "input_extra": None}, {"prompt": prompt, "input_extra": []})]
    assert plain[0] == plain[1] == plain[2]
    assert not any(t.startswith("oice_total") for t in plain[0])
    extra = [{"filename": "billing.py", "text": "def normalise_invoice_total(invoice):\n    return invoice\n"}]
    r = client.post("/autocomplete", json={"prompt": prompt, "input_extra": extra})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["prediction"][0].startswith("oice_total")


def test_input_extra_filenames_reach_the_engine(loaded):
    """`from .shapes import qzv_t` is completed with a name shapes.py defines (evaluate/imports.py) only when
    the chunk's filename says it is shapes.py; without it the memory's most used `qzv_` name comes first."""
    from evaluate.predictor import Predictor
    client = create_app(Predictor(loaded[0].model, loaded[0].tokenizer), ServerConfig()).test_client()
    shapes = "def qzv_trapezoid_area(a, b, h):\n    return (a + b) * h / 2\n"
    tracing = "def run():\n" + "    qzv_tracer_calls(1)\n" * 8
    first = {}
    for filename in ("src/geometry/shapes.py", ""):
        extra = [{"filename": filename, "text": shapes}, {"filename": "src/tracing.py", "text": tracing}]
        r = client.post("/autocomplete", json={"prompt": "from .shapes import qzv_t", "input_extra": extra})
        assert r.status_code == 200, r.get_data(as_text=True)
        first[filename] = r.get_json()["prediction"][0]
    assert first == {"src/geometry/shapes.py": "rapezoid_area", "": "racer_calls"}


def test_the_largest_accepted_input_extra_is_answered(client):
    """256 chunks and 512K characters in all (the accepted maximum) get a normal answer."""
    chunk = "x = 1\n" * (ServerConfig.max_extra_chars // ServerConfig.max_extra_chunks // 6)
    extra = [{"filename": f"m{i}.py", "text": chunk} for i in range(ServerConfig.max_extra_chunks)]
    assert sum(len(c["text"]) for c in extra) <= ServerConfig.max_extra_chars
    r = client.post("/autocomplete", json={"prompt": "import os\nos.pa", "input_extra": extra})
    assert r.status_code == 200, r.get_data(as_text=True)
