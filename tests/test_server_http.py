"""A real `server.py` process (waitress) on 127.0.0.1 with the tiny checkpoint: every endpoint over HTTP,
16 concurrent clients, overload answered with 503 + Retry-After, and fuzzed requests never giving 5xx."""
import json
import socket
import threading
import time

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.server_load import ServerProcess
from server import ServerConfig

SERVER_ARGS = ("--torch-threads", "1", "--time-budget-ms", "0")  # answers compared with the in-process engine


@pytest.fixture(scope="module")
def srv(checkpoint):
    with ServerProcess(checkpoint, *SERVER_ARGS) as s:
        yield s
    assert s.proc.returncode is not None


def test_binds_before_the_model_is_ready(srv):
    out = srv.output()
    assert out.index("listening on http://") < out.index("model ready")


def test_endpoints(srv):
    r = requests.post(srv.url + "/autocomplete", json={"prompt": "def main():\n    ", "kind": "line"},
                      timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert body["success"] is True and len(body["prediction"]) == len(body["probs"]) >= 1
    h = requests.get(srv.url + "/health", timeout=30)
    assert h.status_code == 200 and h.json()["model"]["arch"]
    assert h.json()["model"]["quantize"] == "int8"  # the default on the CPU (models/quantize.py)
    m = requests.get(srv.url + "/metrics", timeout=30)
    assert m.status_code == 200 and "autocomplete_requests_total" in m.text
    r = requests.post(srv.url + "/autocomplete", data="prompt=x", timeout=30,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415 and r.json()["success"] is False
    assert requests.get(srv.url + "/nothing", timeout=30).json()["status"] == 404


def test_oversized_bodies_are_413(srv):
    big = b'{"prompt": "' + b"x" * (ServerConfig.max_body_bytes + 1024) + b'"}'
    r = requests.post(srv.url + "/autocomplete", data=big, timeout=30,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["status"] == 413
    # chunked (no Content-Length): the cap still applies
    r = requests.post(srv.url + "/autocomplete", data=iter([big[i:i + 65536] for i in range(0, len(big), 65536)]),
                      timeout=30, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    # absurd: waitress stops reading it at 8 x max_body_bytes
    r = requests.post(srv.url + "/autocomplete", data=b"x" * (8 * ServerConfig.max_body_bytes + 1024), timeout=30,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert requests.get(srv.url + "/health", timeout=30).status_code == 200


def test_16_concurrent_clients_no_failures(srv):
    failures, done = [], []
    prompts = ["import os\n", "def f(x):\n    return x", "class A:\n    def __init__(self", "for i in range("]

    def client(i):
        with requests.Session() as s:
            for j in range(100):
                try:
                    r = s.post(srv.url + "/autocomplete", timeout=60,
                               json={"prompt": prompts[(i + j) % 4] + str(j), "max_suggestions": 2})
                    if r.status_code != 200 or not r.json()["success"]:
                        failures.append((r.status_code, r.text[:200]))
                    else:
                        done.append(1)
                except requests.RequestException as e:
                    failures.append(repr(e))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == [] and len(done) == 1600
    metrics = requests.get(srv.url + "/metrics", timeout=30).text
    assert "autocomplete_queue_depth 0" in metrics


def metric(srv, prefix: str) -> int:
    for line in requests.get(srv.url + "/metrics", timeout=30).text.splitlines():
        if line.startswith(prefix):
            return int(float(line.split()[-1]))
    return 0


GONE = 'autocomplete_errors_total{kind="client_gone"}'
SERVED = 'autocomplete_requests_total{endpoint="/autocomplete",method="POST",status="200"}'


def test_requests_of_clients_that_hung_up_are_dropped(srv):
    half_sent = (b"POST /autocomplete HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100\r\n\r\n{\"prompt\"")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(half_sent)
    # Complete requests whose clients close at once: the server sees EOF and skips the model. They
    # queue behind a slow request (a 64 KB prompt to tokenize), so their clients are long gone.
    gone, served = metric(srv, GONE), metric(srv, SERVED)
    slow = threading.Thread(target=requests.post, args=(srv.url + "/autocomplete",),
                            kwargs={"json": {"prompt": "total += item.price * 3\n" * 2700}, "timeout": 60})
    slow.start()
    time.sleep(0.02)
    whole = (b"POST /autocomplete HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             b"Content-Length: 15\r\n\r\n{\"prompt\": \"x\"}")
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(whole)
    slow.join()
    deadline = time.monotonic() + 30  # wait until all 6 are accounted for
    while metric(srv, GONE) + metric(srv, SERVED) < gone + served + 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert metric(srv, GONE) + metric(srv, SERVED) == gone + served + 6
    # (a client preempted between its send and its close may still be served: hence >= 1, not 5)
    assert metric(srv, GONE) - gone >= 1
    # a client that stays gets its answer
    assert requests.post(srv.url + "/autocomplete", json={"prompt": "x"}, timeout=30).status_code == 200


def test_overload_gets_503_with_retry_after_never_a_hang(checkpoint):
    # One place in the queue and a 20 ms wait bound: a burst of 16 simultaneous slow-ish requests
    # (large prompt, generous time budget) must be answered, mostly by quick 503s.
    with ServerProcess(checkpoint, *SERVER_ARGS, "--queue-size", "1", "--max-wait-ms", "20") as s:
        statuses, retry_after = [], []
        body = {"prompt": "value = compute(value)\n" * 2000, "kind": "block", "time_budget_ms": 2000}
        for _ in range(10):
            barrier = threading.Barrier(16)

            def client():
                barrier.wait()
                r = requests.post(s.url + "/autocomplete", json=body, timeout=60)  # a hang fails here
                statuses.append(r.status_code)
                if r.status_code == 503:
                    retry_after.append(r.headers.get("Retry-After"))
                    assert r.json()["type"] in ("queue_full", "queue_timeout")

            threads = [threading.Thread(target=client) for _ in range(16)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if 503 in statuses:
                break
        assert set(statuses) <= {200, 503}, statuses
        assert statuses.count(503) >= 1 and statuses.count(200) >= 1
        assert all(v == "1" for v in retry_after)
        metrics = requests.get(s.url + "/metrics", timeout=30).text
        assert 'status="503"' in metrics and "autocomplete_queue_capacity 1" in metrics
        # and afterwards it serves normally
        assert requests.post(s.url + "/autocomplete", json={"prompt": "x"}, timeout=30).status_code == 200


# ---- fuzzing: bodies, headers, methods ----

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20)
request_objects = st.fixed_dictionaries({}, optional={
    "prompt": st.text(max_size=200) | json_values, "suffix": st.text(max_size=50) | json_values,
    "kind": st.sampled_from(["word", "line", "block", None, "", "WORD"]) | json_values,
    "max_suggestions": st.integers(-3, 14) | json_values,
    "time_budget_ms": st.sampled_from([1, 10, 100.5, 0, -5]) | json_values,
    "extra": json_values})
valid_requests = st.fixed_dictionaries({"prompt": st.text(max_size=300)}, optional={
    "suffix": st.text(max_size=50), "kind": st.sampled_from(["word", "line", "block", None]),
    "max_suggestions": st.integers(1, 10), "time_budget_ms": st.integers(1, 200), "extra": json_values})
bodies = st.one_of(
    valid_requests.map(lambda d: json.dumps(d).encode()),
    request_objects.map(lambda d: json.dumps(d).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")))
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(str.strip)
headers = st.fixed_dictionaries({}, optional={
    "Content-Type": st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain",
                                     "application/x-www-form-urlencoded", "multipart/form-data",
                                     "application/vnd.api+json", "application/json; charset=latin-1",
                                     "json", ""]) | header_text,
    "Authorization": header_text, "Accept": header_text, "X-Whatever": header_text,
    "Accept-Encoding": st.sampled_from(["gzip", "identity", "*"]) | header_text})


@settings(max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "FOO"]),
       path=st.sampled_from(["/autocomplete", "/health", "/metrics", "/", "/autocomplete/", "//autocomplete",
                             "/autocomplete?x=1", "/%00", "/" + "a" * 3000]),
       body=bodies, hdrs=headers)
def test_fuzz_only_2xx_4xx(srv, method, path, body, hdrs):
    r = requests.request(method, srv.url + path, data=body, headers=hdrs, timeout=30)
    assert 200 <= r.status_code < 500 and r.status_code != 499, (r.status_code, r.text[:300])
    if method != "HEAD" and r.status_code >= 400:
        assert r.headers["Content-Type"].startswith("application/json")
        assert r.json()["success"] is False


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies, content_type=st.sampled_from(["application/json", "application/json; charset=utf-8"]))
def test_fuzz_autocomplete_bodies(srv, body, content_type):
    r = requests.post(srv.url + "/autocomplete", data=body, headers={"Content-Type": content_type}, timeout=30)
    assert r.status_code in (200, 400), (r.status_code, r.text[:300])
    assert r.json()["success"] is (r.status_code == 200)


def test_server_still_up_after_fuzzing(srv):
    assert srv.proc.poll() is None
    assert requests.get(srv.url + "/health", timeout=30).status_code == 200
