"""Engine workers and batching, for real: a `server.py` process with 2 worker processes x 4 slots on
127.0.0.1 and the tiny checkpoint. Concurrent requests (batched) give the answers of sequential ones, a
killed worker costs at most a retry (never a hang) and is replaced, caches stay inside their byte bounds;
and the batched forward itself equals the model's own forward."""
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import requests
import torch

import server
from benchmarks.server_load import ServerProcess, children_by_parent
from serving.batching import BatchingModel, transformer_forward
from serving.caches import BytePrefixCache, bound_predictor, tensor_bytes
from serving.memory import find_jemalloc

torch.set_num_threads(1)
# Float weights: batched = sequential is exact for a float model; int8 rows of one forward share their
# activation scale (models/quantize.py), so that equality would hold only within quantization noise.
# No latency budget (the server's default is 250 ms): a search cut short on a busy machine would answer
# differently from the sequential one.
POOL_ARGS = ("--torch-threads", "1", "--workers", "2", "--slots", "4", "--quantize", "none", "--time-budget-ms", "0")
PROMPTS = ["import os\n", "def add(a, b):\n    return a", "class Stack:\n    def __init__(self", "for i in range(",
           "    def push(self, item):\n        self.items.", "import unittest\n\n\ndef mul(a, b):\n    return ",
           "class A:\n    def pop(self):\n        return self.", "x = add(1, 2)\nassert x == "]


@pytest.fixture(scope="module")
def pool_srv(checkpoint):
    with ServerProcess(checkpoint, *POOL_ARGS) as s:
        yield s


def bodies():
    out = []
    for i, p in enumerate(PROMPTS * 3):
        out.append({"prompt": p, "kind": [None, "word", "line", "block"][i % 4], "max_suggestions": 3})
    return out


def answer(session, url, body, client):
    r = session.post(url + "/autocomplete", json=body, headers={"X-Client-Id": client}, timeout=60)
    assert r.status_code == 200, r.text
    j = r.json()
    return j["prediction"], j["probs"]


def metric(url, name) -> float:
    total = 0.0
    for line in requests.get(url + "/metrics", timeout=30).text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_concurrent_requests_give_the_sequential_answers(pool_srv, checkpoint):
    url = pool_srv.url
    # Sequential: one request at a time (no batch can form), each prompt as its own client.
    with requests.Session() as s:
        sequential = [answer(s, url, b, f"seq-{i}") for i, b in enumerate(bodies())]
    batches, calls = metric(url, "autocomplete_engine_batches_total"), metric(url, "autocomplete_engine_batched_calls_total")
    # Concurrent: 16 clients fire all prompts at once, several rounds, in different orders.
    results: dict[int, list] = {}
    errors = []

    def client(c):
        try:
            with requests.Session() as s:
                for rnd in range(3):
                    for i, b in enumerate(bodies()):
                        if (i + c + rnd) % 4 == 0:
                            results.setdefault(i, []).append(answer(s, url, b, f"client-{c}"))
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and not any(t.is_alive() for t in threads)
    for i, got in results.items():
        for prediction, probs in got:
            assert prediction == sequential[i][0], (bodies()[i], prediction, sequential[i][0])
            assert probs == pytest.approx(sequential[i][1], rel=1e-4, abs=1e-6)
    # ... and some of them really ran as shared batches (more calls than batches)
    new_batches = metric(url, "autocomplete_engine_batches_total") - batches
    new_calls = metric(url, "autocomplete_engine_batched_calls_total") - calls
    assert new_calls > new_batches > 0
    # The in-process engine (no workers, no batching) agrees too.
    predictor, _ = server.load_model(str(checkpoint))
    for i, b in enumerate(bodies()[:8]):
        local = predictor.complete(b["prompt"], kind=b["kind"], max_suggestions=3)
        assert [c.text for c in local] == sequential[i][0]


def children(pid: int) -> list[int]:
    """The child pids of process `pid` (an unreaped zombie still counts)."""
    return children_by_parent().get(pid, [])


def forkservers(srv) -> list[int]:
    """Children of a server that are multiprocessing forkservers (not the workers forked from one)."""
    workers = set(requests.get(srv.url + "/health", timeout=30).json()["workers"]["pids"])
    return [p for p in children(srv.proc.pid) if p not in workers
            and "multiprocessing.forkserver" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")]


def test_health_and_metrics_show_workers(pool_srv):
    h = requests.get(pool_srv.url + "/health", timeout=30).json()
    assert h["workers"]["configured"] == 2 and h["workers"]["ready"] == 2 and h["workers"]["slots"] == 4
    assert len(set(h["workers"]["pids"])) == 2 and pool_srv.proc.pid not in h["workers"]["pids"]
    # The forkserver is stopped once the workers run, and the HTTP process adopted them (serving/processes.py).
    assert set(h["workers"]["pids"]) <= set(children(pool_srv.proc.pid))
    assert not forkservers(pool_srv)
    assert h["model"]["preloaded"] is True  # loaded once, in the forkserver: the workers share it (preload.py)
    text = requests.get(pool_srv.url + "/metrics", timeout=30).text
    assert 'autocomplete_worker_ready{worker="1"} 1.0' in text
    assert "# TYPE autocomplete_requests_total counter" in text  # prometheus_client's exposition
    # Each worker's VmRSS, read from /proc by its pid at scrape time (a process that imported torch: > 50 MB),
    # even before it answered any request.
    for w in (0, 1):
        assert metric(pool_srv.url, f'autocomplete_worker_resident_bytes{{worker="{w}"}}') > 50e6


def test_a_worker_takes_the_preloaded_model_only_if_it_is_the_one_asked_for(checkpoint, tmp_path, monkeypatch):
    """What the forkserver preloaded (serving/preload.py) is used for the same file, unchanged, with the same
    quantization; anything else is loaded by the worker itself."""
    import importlib
    import json
    import shutil

    from serving import pool, preload
    copy = tmp_path / "copy.pt"
    shutil.copy(checkpoint, copy)
    monkeypatch.setenv(pool.PRELOAD_ENV, json.dumps({"model": str(copy), "device": "cpu", "quantize": "int8"}))
    importlib.reload(preload)  # what the forkserver does on import
    try:
        ckpt, model, info = preload.take(str(copy), "int8")
        assert info["preloaded"] is True and info["quantize"] == "int8" and ckpt.model is model
        assert preload.take(str(copy), "int8")[1] is model  # one model, not a copy per worker
        assert preload.take(str(copy), "none") is None
        assert preload.take(str(checkpoint), "int8") is None
        os.utime(copy, ns=(time.time_ns(), time.time_ns() + 10**9))  # the file changed since
        assert preload.take(str(copy), "int8") is None
        monkeypatch.setenv(pool.PRELOAD_ENV, json.dumps({"model": str(tmp_path / "gone.pt"), "device": "cpu",
                                                         "quantize": "int8"}))
        importlib.reload(preload)  # nothing to load: no error (the worker reports it when it loads)
        assert preload.take(str(tmp_path / "gone.pt"), "int8") is None
    finally:
        monkeypatch.delenv(pool.PRELOAD_ENV)
        importlib.reload(preload)


def test_a_client_keeps_its_worker_slot(pool_srv):
    """Typing (one request at a time) under one X-Client-Id: every keystroke after the first reuses the
    prefix state, so they all went to the same slot's cache."""
    text = "    def push(self, item):\n        self.items.append(item)\n"
    hits0 = metric(pool_srv.url, "autocomplete_engine_cache_hits_total")
    with requests.Session() as s:
        for n in range(30, len(text)):
            answer(s, pool_srv.url, {"prompt": text[:n]}, "typist")
        time.sleep(0.2)
        answer(s, pool_srv.url, {"prompt": text}, "typist")  # idle now: this one reports the stats
    hits = metric(pool_srv.url, "autocomplete_engine_cache_hits_total") - hits0
    assert hits >= (len(text) - 30) * 0.8, hits


def test_killed_worker_is_replaced_and_no_request_hangs(checkpoint):
    with ServerProcess(checkpoint, *POOL_ARGS) as s:
        pids = requests.get(s.url + "/health", timeout=30).json()["workers"]["pids"]
        statuses, stop = [], threading.Event()

        def client(c):
            with requests.Session() as sess:
                while not stop.is_set():
                    # a hang would end in this timeout and fail the test
                    r = sess.post(s.url + "/autocomplete", json={"prompt": PROMPTS[c % 8], "kind": "block"},
                                  headers={"X-Client-Id": f"k{c}"}, timeout=30)
                    statuses.append((r.status_code, r.json().get("type")))

        threads = [threading.Thread(target=client, args=(c,)) for c in range(8)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        os.kill(pids[0], signal.SIGKILL)
        time.sleep(2.0)
        stop.set()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads)
        assert {code for code, _ in statuses} <= {200, 502}
        assert all(kind in ("worker_lost", "no_worker") for code, kind in statuses if code == 502)
        assert sum(code == 200 for code, _ in statuses) > 20
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            h = requests.get(s.url + "/health", timeout=30)
            if h.status_code == 200 and h.json()["workers"]["ready"] == 2:
                break
            time.sleep(0.2)
        workers = h.json()["workers"]
        assert workers["ready"] == 2 and workers["restarts"] == 1 and pids[0] not in workers["pids"]
        assert h.json()["model"]["preloaded"] is True  # the new forkserver preloaded the model again
        # the dead worker was reaped (no zombie), the replacement adopted, its forkserver stopped again
        deadline = time.monotonic() + 10
        while forkservers(s) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not forkservers(s)
        # An exiting forkserver's command line reads empty before the kernel hands its children (the
        # replacement) to the server: wait for the adoption, as the forkserver above (seen once in CI).
        deadline = time.monotonic() + 10
        kids = children(s.proc.pid)
        while not (pids[0] not in kids and set(workers["pids"]) <= set(kids)) and time.monotonic() < deadline:
            time.sleep(0.1)
            kids = children(s.proc.pid)
        assert pids[0] not in kids and set(workers["pids"]) <= set(kids)
        assert metric(s.url, "autocomplete_worker_restarts_total") == 1
        for c in range(8):  # every client is served again, whichever worker is its home
            r = requests.post(s.url + "/autocomplete", json={"prompt": "x"}, headers={"X-Client-Id": f"k{c}"},
                              timeout=30)
            assert r.status_code == 200
    # SIGTERM: the server stops its workers, none outlives it
    assert s.proc.returncode == 0
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{p}").exists() for p in workers["pids"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{p}").exists() for p in workers["pids"])


def test_all_workers_dead_means_unhealthy_until_replaced(checkpoint):
    with ServerProcess(checkpoint, "--torch-threads", "1", "--workers", "1", "--slots", "1") as s:
        pid = requests.get(s.url + "/health", timeout=30).json()["workers"]["pids"][0]
        os.kill(pid, signal.SIGKILL)
        health, answers = [], []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            health.append(requests.get(s.url + "/health", timeout=30).status_code)
            r = requests.post(s.url + "/autocomplete", json={"prompt": "x"}, timeout=30)
            answers.append((r.status_code, r.json().get("type"), r.headers.get("Retry-After")))
            if health[-1] == 200 and 503 in health:
                break
        # out of service while it had no worker (a load balancer takes it out), then back
        assert 503 in health and health[-1] == 200
        assert {a for a in answers if a[0] != 200} <= {(502, "no_worker", "1"), (502, "worker_lost", "1")}
        assert (502, "no_worker", "1") in answers
        assert requests.post(s.url + "/autocomplete", json={"prompt": "x"}, timeout=30).status_code == 200


@pytest.mark.skipif(find_jemalloc() is None, reason="libjemalloc.so.2 not installed (Debian: libjemalloc2)")
def test_engine_workers_use_jemalloc_and_the_http_process_glibc(checkpoint):
    for allocator, in_workers in (("auto", True), ("glibc", False)):
        with ServerProcess(checkpoint, "--torch-threads", "1", "--workers", "1", "--allocator", allocator) as s:
            pid = requests.get(s.url + "/health", timeout=30).json()["workers"]["pids"][0]
            assert ("libjemalloc" in Path(f"/proc/{pid}/maps").read_text()) is in_workers, allocator
            assert "libjemalloc" not in Path(f"/proc/{s.proc.pid}/maps").read_text()
            assert ("malloc: jemalloc" in s.output()) is in_workers
            r = requests.post(s.url + "/autocomplete", json={"prompt": "import os\n"}, timeout=30)
            assert r.status_code == 200 and r.json()["prediction"]


# ---- in process: the batched forward and the byte bounds ----

@pytest.fixture(scope="module")
def tiny(checkpoint):
    from models.checkpoint import load_checkpoint
    return load_checkpoint(checkpoint)


def test_batched_forward_equals_the_models_own(tiny):
    model = tiny.model
    torch.manual_seed(0)
    with torch.inference_mode():
        calls = []
        for length, rows in ((5, 1), (17, 2), (1, 1), (40, 3)):
            _, state = model(torch.randint(0, 100, (1, length)), None)
            state = model.select_state(state, torch.zeros(rows, dtype=torch.long))
            calls.append((torch.randint(0, 100, (rows, 1)), state))
        calls.append((torch.randint(0, 100, (2, 1)), None))
        batched = transformer_forward(model, calls)
        for (tokens, state), (logits, new) in zip(calls, batched):
            ref_logits, ref = model(tokens, state)
            assert logits.shape == (tokens.shape[0], 1, ref_logits.shape[-1])
            assert torch.allclose(logits[:, -1], ref_logits[:, -1], atol=1e-5)
            assert new.position == ref.position
            new, ref = model.flatten_state(new), model.flatten_state(ref)  # the model's own keeps a shared part
            for a, b in zip(new.keys + new.values, ref.keys + ref.values):
                assert torch.allclose(a, b, atol=1e-5)
        # prompt feeds (T > 1) too, with and without a cached state, past the sliding window
        _, long_state = model(torch.randint(0, 100, (1, model.config.max_len + 7)), None)
        for state in (None, long_state):
            tokens = torch.randint(0, 100, (1, 30))
            (logits, new), = transformer_forward(model, [(tokens, state)])
            ref_logits, ref = model(tokens, state)
            assert torch.allclose(logits[:, -1], ref_logits[:, -1], atol=1e-5)
            assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(new.keys, ref.keys))


def test_batching_model_merges_concurrent_calls(tiny):
    model = BatchingModel(tiny.model, max_wait_ms=1000)
    with torch.inference_mode():
        _, state = tiny.model(torch.randint(0, 100, (1, 9)), None)
    out, barrier = {}, threading.Barrier(4)

    def slot(i):
        with model.request():
            barrier.wait()
            out[i] = model(torch.tensor([[i + 3]]), state)

    threads = [threading.Thread(target=slot, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert model.batched_calls == 4 and model.batches == 1 and model.rows == 4  # one forward for all four
    with torch.inference_mode():
        for i in range(4):
            ref, _ = tiny.model(torch.tensor([[i + 3]]), state)
            assert torch.allclose(out[i][0][:, -1], ref[:, -1], atol=1e-5)


def test_cache_byte_bounds_hold(tiny):
    from evaluate.predictor import Predictor
    predictor = Predictor(tiny.model, tiny.tokenizer)
    bound_predictor(predictor, 400_000)
    cache, steps = predictor.cache, predictor.step_cache
    assert isinstance(cache, BytePrefixCache) and cache.max_bytes == 150_000 and steps.max_bytes == 250_000
    text = open(__file__).read()
    for i in range(60):
        predictor.complete(text[:200 + 37 * i], kind="line")
        for c in (cache, steps):
            assert c.nbytes <= c.max_bytes
            assert c.nbytes == tensor_bytes(list(c.entries.values()))  # the books are right
    assert len(cache) < 32  # the byte bound, not the entry bound, is what evicted
    assert cache.hits + cache.misses >= 60 and len(cache) >= 1


def test_byte_cache_counts_a_shared_storage_once():
    from evaluate.cache import CacheEntry
    shared = torch.zeros(1000)  # 4,000 bytes held by both entries (a beam search's context keys)
    a = CacheEntry((shared[10:], torch.zeros(10)), torch.zeros(5))
    b = CacheEntry((shared[20:], torch.zeros(20)), torch.zeros(5))
    cache = BytePrefixCache(capacity=8, max_bytes=10_000)
    cache.put((1,), a)
    cache.put((2,), b)
    assert cache.nbytes == 4000 + 40 + 20 + 80 + 20
    cache.put((3,), CacheEntry((torch.zeros(1465),), torch.zeros(5)))  # 5,880 more: over 10,000
    assert list(cache.entries) == [(2,), (3,)]  # the oldest went, the shared storage stays for (2,)
    assert cache.nbytes == 4000 + 80 + 20 + 5880 == tensor_bytes(list(cache.entries.values()))
    cache.put((4,), CacheEntry((torch.zeros(100),), torch.zeros(5)))
    assert (2,) not in cache.entries and cache.nbytes == 5880 + 420  # last holder gone: counted out
    cache.put((3,), CacheEntry((torch.zeros(10),), torch.zeros(5)))  # replacing an entry releases the old
    assert cache.nbytes == 60 + 420


def test_server_cache_budget_is_respected(checkpoint):
    with ServerProcess(checkpoint, "--torch-threads", "1", "--workers", "1", "--slots", "2",
                       "--cache-mb", "1") as s:
        text = open(__file__).read()
        with requests.Session() as sess:
            for i in range(40):
                answer(sess, s.url, {"prompt": text[:300 + 53 * i]}, f"c{i % 3}")
        time.sleep(0.3)
        with requests.Session() as sess:
            answer(sess, s.url, {"prompt": "x"}, "last")  # idle: reports its stats
        used = metric(s.url, "autocomplete_engine_cache_bytes") + metric(s.url, "autocomplete_engine_step_cache_bytes")
        bound = metric(s.url, "autocomplete_engine_cache_max_bytes") + metric(s.url, "autocomplete_engine_step_cache_max_bytes")
        assert 0 < used <= bound <= 2**20 // 2 + 1


def test_slot_gate_prefers_home_hands_over_fifo_and_is_bounded():
    from serving.gate import QueueFull, SlotGate
    gate = SlotGate(["a", "b"], capacity=2)
    assert gate.enter("b", 0) == "b" and gate.enter("b", 0) == "a"  # home when free, else any free slot
    got, threads = [], []
    for i in range(2):
        threads.append(threading.Thread(target=lambda i=i: got.append((i, gate.enter("a", 10)))))
        threads[-1].start()
        while gate.depth < i + 1:
            time.sleep(0.001)
    with pytest.raises(QueueFull):
        gate.enter("a", 1)
    gate.leave("b")  # the first slot to free up goes to the oldest waiter, whatever its home
    threads[0].join(10)
    assert got == [(0, "b")]
    gate.leave("a")
    threads[1].join(10)
    assert got[1] == (1, "a") and gate.depth == 0
    assert gate.enter("a", 0.01) is None and gate.depth == 0  # timed out, left the queue
    gate.leave("a")
    assert gate.enter("b", 0) == "a"


def test_time_budget_counts_the_wait_for_a_worker(checkpoint):
    # One engine slot. Request A brings ~500K characters of new input_extra (the context store indexes them:
    # far longer than B's budget); B, sent while A computes, waits for the slot past its whole 60 ms budget.
    # B is still answered, from the prompt feed and the first search step: the engine got what was left of
    # B's budget (nothing), not 60 ms of its own, so B's search stopped at its first deadline check.
    import random
    rng = random.Random(0)
    words = [f"name_{i}" for i in range(5000)]
    extra = [{"filename": f"m{j}.py", "text": "\n".join(
        f"def {rng.choice(words)}({rng.choice(words)}):\n    return {rng.choice(words)} + {j}" for _ in range(900))}
        for j in range(10)]
    block = {"prompt": "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n",
             "kind": "block", "max_suggestions": 3}
    # no server-wide budget: only B sends one (A, with its large input_extra, must not be cut)
    with ServerProcess(checkpoint, "--torch-threads", "1", "--workers", "1", "--slots", "1",
                       "--time-budget-ms", "0") as s:
        requests.post(s.url + "/autocomplete", json=block, timeout=60)  # warm: B alone, no wait
        timeouts_before = metric(s.url, "autocomplete_engine_timeouts_total")
        answers = {}

        def send(name, body):
            answers[name] = requests.post(s.url + "/autocomplete", json=body, timeout=60)

        a = threading.Thread(target=send, args=("a", {"prompt": "x = 1\n", "input_extra": extra}))
        a.start()
        time.sleep(0.05)  # A is in the engine
        send("b", {**block, "time_budget_ms": 60})
        a.join(60)
        timing = {name: dict(p.strip().split(";dur=") for p in r.headers["Server-Timing"].split(","))
                  for name, r in answers.items()}
        assert answers["a"].status_code == 200 and answers["b"].status_code == 200
        assert float(timing["b"]["queue"]) > 60, timing  # B waited past its budget behind A
        assert answers["b"].json()["prediction"]  # and still got suggestions
        time.sleep(0.5)  # the idle worker reports its counters
        assert metric(s.url, "autocomplete_engine_timeouts_total") == timeouts_before + 1
