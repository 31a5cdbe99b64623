"""Tabby's server API on this server (serving/tabby.py), with the tiny real model: /v1/completions asks the
engine what /autocomplete asks for the same text and context, other languages get nothing, a blank best
completion goes on to the code; /v1/health, /v1beta/server_setting and /v1/events answer as Tabby's agent reads
them, behind the token; client mistakes are 4xx, never 5xx (fuzzed against a real server process).
scripts/tabby_agent_check.py runs the real agent (`make test-tabby`)."""
import json
import re
import shutil

import pytest
import requests
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.server_load import ServerProcess
from server import ServerConfig, create_app
from serving import tabby
from serving.metrics import sample_value
from tests.test_server_http import SERVER_ARGS, json_values
from tests.test_server_infill import answered, client, loaded  # noqa: F401 - fixtures: the tiny model's app
from tests.test_server_reload import other_checkpoint  # noqa: F401 - a fixture
from tests.tiny_model import TINY_TEXT

torch.set_num_threads(1)
TOKEN = "tabby-token-for-tests"
PREFIX = "import unittest\n\n\nclass TestAdd(unittest.TestCase):\n    def test_add(self):\n        self.assertEq"


def autocomplete(client, prompt: str, suffix: str = "", extra=None) -> list[str]:
    r = client.post("/autocomplete", json={"prompt": prompt, "suffix": suffix, "input_extra": extra})
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()["prediction"]


def complete(client, segments: dict, language="python") -> dict:
    r = client.post("/v1/completions", json={"language": language, "segments": segments})
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def test_completions_ask_what_autocomplete_asks(client):
    answer = complete(client, {"prefix": PREFIX, "suffix": "\n"})
    expected = [t for t in autocomplete(client, PREFIX, "\n") if t.strip()]
    assert [c["text"] for c in answer["choices"]] == expected and expected[0].startswith("ual(")
    assert [c["index"] for c in answer["choices"]] == list(range(len(expected)))
    assert answer["id"].startswith("cmpl-") and answer["id"] != complete(client, {"prefix": PREFIX})["id"]
    # the language may be left out, or be "python" in any case
    assert complete(client, {"prefix": PREFIX, "suffix": "\n"}, language="Python")["choices"] == answer["choices"]
    assert client.post("/v1/completions", json={"segments": {"prefix": PREFIX, "suffix": "\n"}}).get_json()[
        "choices"] == answer["choices"]


def test_declarations_and_snippets_are_the_project_context(client):
    declarations = [{"filepath": "calc.py", "body": "def add(a, b):\n    return a + b\n"}]
    snippets = [{"filepath": "util.py", "body": "def assertEqualish(a, b):\n    pass\n", "score": 0.9}]
    answer = complete(client, {"prefix": PREFIX, "suffix": "\n", "declarations": declarations,
                               "relevant_snippets_from_changed_files": snippets, "clipboard": "ignored"})
    extra = [{"filename": "calc.py", "text": declarations[0]["body"]},
             {"filename": "util.py", "text": snippets[0]["body"]}]
    expected = [t for t in autocomplete(client, PREFIX, "\n", extra) if t.strip()]
    assert [c["text"] for c in answer["choices"]] == expected
    # the context reached the engine: without it the engine's answer differs
    assert expected != [t for t in autocomplete(client, PREFIX, "\n") if t.strip()]


def test_other_languages_get_no_choices_and_no_worker(client):
    asked = answered(client)
    answer = complete(client, {"prefix": "fn main() {\n    let x = "}, language="rust")
    assert answer["choices"] == [] and answer["id"].startswith("cmpl-")
    assert answered(client) == asked
    complete(client, {"prefix": PREFIX})
    assert answered(client) == asked + 1


def test_a_blank_best_completion_goes_on_to_the_code(client):
    # at the end of a line that opens a block the tiny model's best is the next line's indentation alone,
    # which Tabby's agent drops: the engine is asked again after it
    text = TINY_TEXT[:TINY_TEXT.index("    def test_add(self):") + len("    def test_add(self):")]
    blanks = autocomplete(client, text, "\n\n")[0]
    assert blanks.startswith("\n") and not blanks.strip()
    asked = answered(client)
    first = complete(client, {"prefix": text, "suffix": "\n\n"})["choices"][0]["text"]
    assert answered(client) == asked + 1  # one request answered, though the engine computed twice
    code = autocomplete(client, text + blanks, "\n\n")[0]
    assert code.strip() and first == blanks + code


def test_the_repositorys_model_answers(loaded, checkpoint, other_checkpoint, tmp_path):
    """With --models-dir, `segments.git_url` names the model: DIR/billing.pt answers .../billing.git."""
    shutil.copyfile(checkpoint, tmp_path / "default.pt")
    shutil.copyfile(other_checkpoint, tmp_path / "billing.pt")
    predictor, info = loaded
    team = create_app(predictor, ServerConfig(model_info=info, default_model=str(tmp_path / "default.pt"),
                                              models_dir=str(tmp_path))).test_client()
    prompt = "def add(a, b):\n    return "

    def choices(git_url=None):
        return [c["text"] for c in complete(team, {"prefix": prompt, "git_url": git_url})["choices"]]

    def asked(model=None):
        r = team.post("/autocomplete", json={"prompt": prompt, "model": model})
        return [t for t in r.get_json()["prediction"] if t.strip()]

    assert asked("billing") != asked()  # two models that can be told apart
    for url in ("https://github.com/acme/billing.git", "git@github.com:acme/billing.git", "/srv/repos/billing/"):
        assert choices(url) == asked("billing"), url
    for url in (None, "", "https://github.com/acme/payroll.git", "https://h/x/../../etc/passwd"):
        assert choices(url) == asked(), url  # no model by that name: the default, never an error
    # the agent's events on each answer count for the model that gave it
    for url in ("https://github.com/acme/billing.git", "https://github.com/acme/payroll.git"):
        cid = complete(team, {"prefix": prompt, "git_url": url})["id"]
        team.post("/v1/events", json={"type": "select", "completion_id": cid, "choice_index": 0})
    assert events(team, type="select", model="billing") == 1 and events(team, type="select", model="default") == 1


def test_repository_name():
    assert tabby.repository_name("https://github.com/acme/billing.git") == "billing"
    assert tabby.repository_name("git@github.com:acme/billing.git") == "billing"
    assert tabby.repository_name("file:///srv/repos/billing/") == "billing"
    assert tabby.repository_name("C:\\code\\billing") == "billing"
    assert tabby.repository_name("") == ""


def test_answer_drops_blank_and_repeated_choices():
    assert tabby.answer(["a", "  ", "a", "b\n", ""], "cmpl-x") == {
        "id": "cmpl-x", "choices": [{"index": 0, "text": "a"}, {"index": 1, "text": "b\n"}]}


def test_health_and_settings_as_the_agent_reads_them(client):
    for method in ("get", "post"):  # the agent tries POST when GET answers 405
        health = getattr(client, method)("/v1/health").get_json()
        assert health["model"] == "tiny" and health["device"] == "cpu" and health["cuda_devices"] == []
        assert health["cpu_count"] >= 1 and health["cpu_info"]
    # the agent asks for the server's settings only from version 0.9.0 (semver.coerce of git_describe)
    version = re.search(r"(\d+)\.(\d+)\.(\d+)", health["version"]["git_describe"]).groups()
    assert tuple(map(int, version)) >= (0, 9, 0)
    assert client.get("/v1beta/server_setting").get_json() == {"disable_client_side_telemetry": True}


def events(client, **labels) -> float:
    return sample_value(client.get("/metrics").get_data(as_text=True), "autocomplete_client_events_total", **labels)


def test_events_are_counted(client):
    before = {k: events(client, type=k) for k in ("view", "select", "dismiss", "other")}
    for kind in ("view", "view", "select", "dismiss", "tweet"):
        r = client.post("/v1/events?select_kind=line", json={"type": kind, "completion_id": "cmpl-1",
                                                             "choice_index": 0, "view_id": "v", "elapsed": 5})
        assert r.status_code == 200 and r.get_data() == b""
    assert {k: events(client, type=k) - before[k] for k in before} == \
        {"view": 2, "select": 1, "dismiss": 1, "other": 1}


def test_events_name_the_model_that_answered(client):
    """An event is counted under the model of the answer it names (the agent's choice id, the extension's
    /autocomplete answer id), so that select over view compares models; an id the server did not give is
    "unknown"."""
    tabby_id = complete(client, {"prefix": PREFIX, "suffix": "\n"})["id"]
    r = client.post("/autocomplete", json={"prompt": PREFIX})
    extension_id = r.get_json()["id"]
    before = {(t, m): events(client, type=t, model=m) for t in ("view", "select") for m in ("tiny", "unknown")}
    for kind, cid in [("view", tabby_id), ("select", tabby_id), ("view", extension_id), ("view", "cmpl-never")]:
        client.post("/v1/events", json={"type": kind, "completion_id": cid, "choice_index": 0})
    after = {key: events(client, type=key[0], model=key[1]) - n for key, n in before.items()}
    assert after == {("view", "tiny"): 2, ("select", "tiny"): 1, ("view", "unknown"): 1, ("select", "unknown"): 0}


@pytest.mark.parametrize("path,body,status", [
    ("/v1/completions", {}, 400), ("/v1/completions", {"segments": "x"}, 400),
    ("/v1/completions", {"segments": {}}, 400), ("/v1/completions", {"segments": {"prefix": 3}}, 400),
    ("/v1/completions", {"segments": {"prefix": "x", "suffix": 3}}, 400),
    ("/v1/completions", {"language": 3, "segments": {"prefix": "x"}}, 400),
    ("/v1/completions", {"segments": {"prefix": "x", "declarations": "x"}}, 400),
    ("/v1/completions", {"segments": {"prefix": "x", "declarations": [3]}}, 400),
    ("/v1/completions", {"segments": {"prefix": "x", "declarations": [{"filepath": "a.py"}]}}, 400),
    ("/v1/completions", {"segments": {"prefix": "x", "relevant_snippets_from_changed_files": [
        {"filepath": 3, "body": "x"}]}}, 400),
    ("/v1/completions", {"segments": {"prefix": "x", "declarations": [{"filepath": "a.py", "body": "x"}] * 257}},
     413),
    ("/v1/events", {}, 400), ("/v1/events", {"type": "view"}, 400),
    ("/v1/events", {"type": "view", "completion_id": "c", "choice_index": -1}, 400),
    ("/v1/events", {"type": "view", "completion_id": "c" * 300, "choice_index": 0}, 400),
    ("/v1/events", {"type": 1, "completion_id": "c", "choice_index": 0}, 400),
])
def test_client_mistakes_are_4xx(client, path, body, status):
    r = client.post(path, json=body)
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.get_json()["success"] is False and r.get_json()["error"]


def test_malformed_bodies_and_methods(client):
    for path in ("/v1/completions", "/v1/events"):
        assert client.post(path, data="{not json", content_type="application/json").status_code == 400
        assert client.post(path, data="x", content_type="text/plain").status_code == 415
        assert client.post(path, json=[1]).status_code == 400
        assert client.get(path).status_code == 405
    assert client.post("/v1beta/server_setting").status_code == 405


def test_every_route_needs_the_token(loaded):
    predictor, info = loaded
    locked = create_app(predictor, ServerConfig(token=TOKEN, model_info=info)).test_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    event = {"type": "view", "completion_id": "c", "choice_index": 0}
    calls = [("get", "/v1/health", None), ("post", "/v1/health", None), ("get", "/v1beta/server_setting", None),
             ("post", "/v1/completions", {"segments": {"prefix": "x"}}), ("post", "/v1/events", event)]
    for method, path, body in calls:
        r = getattr(locked, method)(path, json=body)
        # 401, which the agent turns into its "unauthorized" status and the editor's prompt for a token
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer"), path
        assert getattr(locked, method)(path, json=body, headers=auth).status_code == 200, path


def test_health_while_loading_is_503(checkpoint):
    loading = create_app(None, ServerConfig()).test_client()
    r = loading.get("/v1/health")
    assert r.status_code == 503 and r.headers["Retry-After"]


# ---- a real server process ----

@pytest.fixture(scope="module")
def srv(checkpoint):
    with ServerProcess(checkpoint, *SERVER_ARGS, "--workers", "1", env={"AUTOCOMPLETE_API_TOKEN": TOKEN}) as s:
        yield s


def test_the_agents_requests_over_http(srv, loaded):
    """The bodies tabby-agent 1.5.0 sends (its createSegments: the 20 lines around the cursor, the filepath
    relative to the workspace, declarations, snippets, clipboard; `user` from its auth)."""
    predictor = loaded[0]
    with requests.Session() as s:
        s.headers.update({"Authorization": f"Bearer {TOKEN}"})
        assert s.get(srv.url + "/v1/health", timeout=30).json()["model"] == "tiny"
        body = {"language": "python", "user": None, "segments": {
            "prefix": PREFIX, "suffix": "\n", "filepath": "tests/test_add.py", "git_url": None,
            "declarations": [{"filepath": "calc.py", "body": "def add(a, b):\n    return a + b\n"}],
            "relevant_snippets_from_changed_files": [], "clipboard": None}}
        r = s.post(srv.url + "/v1/completions", json=body, timeout=60)
        assert r.status_code == 200 and r.headers["Server-Timing"].startswith("queue;dur=")
        expected = predictor.complete(PREFIX, "\n", max_suggestions=3,
                                      extra=[("calc.py", "def add(a, b):\n    return a + b\n")])
        assert r.json()["choices"][0]["text"] == expected[0].text
        r = s.post(srv.url + "/v1/events", params={"select_kind": "line"}, timeout=30,
                   json={"type": "select", "completion_id": r.json()["id"], "choice_index": 0})
        assert r.status_code == 200
        metrics = s.get(srv.url + "/metrics", timeout=30).text
    assert 'autocomplete_requests_total{endpoint="/v1/completions",method="POST",status="200"} 1.0' in metrics
    assert sample_value(metrics, "autocomplete_client_events_total", type="select", model="tiny") == 1.0


segment_objects = st.fixed_dictionaries({}, optional={
    "prefix": st.text(max_size=200) | json_values, "suffix": st.text(max_size=50) | json_values,
    "filepath": st.text(max_size=20) | json_values, "git_url": json_values, "clipboard": json_values,
    "declarations": st.lists(st.fixed_dictionaries({}, optional={"filepath": st.text(max_size=10) | json_values,
                                                                 "body": st.text(max_size=50) | json_values}),
                             max_size=3) | json_values,
    "relevant_snippets_from_changed_files": json_values})
tabby_objects = st.fixed_dictionaries({}, optional={
    "language": st.sampled_from(["python", "rust", "", None]) | json_values, "segments": segment_objects | json_values,
    "user": json_values, "temperature": json_values, "debug_options": json_values})


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=tabby_objects)
def test_fuzz_completion_bodies(srv, body):
    r = requests.post(srv.url + "/v1/completions", data=json.dumps(body), timeout=30,
                      headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    assert r.status_code in (200, 400, 413), (r.status_code, r.text[:300])
    if r.status_code == 200:
        assert all(c["text"].strip() for c in r.json()["choices"])


def test_evaluate_types_with_the_agents_request(srv, loaded, tmp_path):
    """`python -m evaluate --server-api tabby` (evaluate/remote.py TabbyPredictor): the agent's request, the 20
    lines before and after the cursor, and its first choice."""
    from evaluate.__main__ import main
    from evaluate.remote import TabbyPredictor
    agent = TabbyPredictor(srv.url, TOKEN)
    assert agent.url == srv.url + "/v1/completions"
    body = agent.request("x\n" * 30 + "    y = f(", "z)\n" + "w\n" * 30, [("m.py", "v = 1\n")])
    assert body["segments"]["prefix"] == "x\n" * 19 + "    y = f("
    assert body["segments"]["suffix"] == "z)\n" + "w\n" * 19
    assert body["segments"]["relevant_snippets_from_changed_files"] == [{"filepath": "m.py", "body": "v = 1\n",
                                                                          "score": 1.0}]
    text = TINY_TEXT[:TINY_TEXT.index("        self.assertEqual(add(")] + "        self.assertEq"
    prefix = "".join(text.splitlines(keepends=True)[-20:])
    expected = loaded[0].complete(prefix, "", max_suggestions=3)[0].text
    assert [c.text for c in agent.complete(text)] == [expected]
    f = tmp_path / "tiny.py"
    f.write_text(TINY_TEXT)
    out = tmp_path / "tabby"
    assert main(["--model", str(srv.cmd[srv.cmd.index("--model") + 1]), "--files", str(f), "--max-chars", "300",
                 "--line-samples", "0", "--server", srv.url, "--token", TOKEN, "--server-api", "tabby",
                 "--out", str(out)]) == 0
    report = json.loads((out / "eval.json").read_text())
    assert report["server_api"] == "tabby" and report["overall"]["saved_auto"] > 0.3  # the tiny model knows its text


def test_the_answers_remembered_for_events_are_bounded(client, monkeypatch):
    import serving.metrics
    from server import app_state
    monkeypatch.setattr(serving.metrics, "ANSWERS_REMEMBERED", 3)
    metrics = app_state(client.application).metrics
    for i in range(4):
        metrics.remember_answer(f"a{i}", "tiny")
    assert len(metrics.answered_by) == 3 and "a0" not in metrics.answered_by  # the oldest goes first
    before = events(client, type="dismiss", model="unknown")
    metrics.client_event("dismiss", "a0")
    metrics.client_event("dismiss", "a3")
    assert events(client, type="dismiss", model="unknown") == before + 1
