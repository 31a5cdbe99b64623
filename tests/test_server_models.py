"""A model per project on one server (serving/models.py), for real: `server.py` processes on 127.0.0.1 with
`--models-dir` holding two different real models. A request's "model" picks the model that answers (the same
answers as that checkpoint in this process), with the worker pool and with the in-process engine; unknown or
malformed names are the client's mistake (404 / 400) and reach no worker; a broken file is 503 and leaves the
other models serving; a new file under a served name is swapped in with no request failing; a worker holds at
most --max-models of them."""
import os
import shutil
import time

import pytest
import requests
import torch

from benchmarks.server_load import ServerProcess
from tests.test_server_reload import (EXACT, PROMPTS, Typist, local_answers, metric,  # noqa: F401
                                     other_checkpoint, replace)

torch.set_num_threads(1)


def answers(url: str, model: str | None = None) -> tuple[list[list[str]], set[str]]:
    """Each prompt's suggestions, and the set of `model` fields (sha256 prefixes) that answered."""
    out, shas = [], set()
    with requests.Session() as s:
        for p in PROMPTS:
            body = {"prompt": p, "max_suggestions": 3}
            if model is not None:
                body["model"] = model
            r = s.post(url + "/autocomplete", json=body, timeout=60)
            assert r.status_code == 200, r.text
            out.append(r.json()["prediction"])
            shas.add(r.json()["model"])
    return out, shas


@pytest.fixture(scope="module")
def models_dir(checkpoint, other_checkpoint, tmp_path_factory):
    """`default.pt`: the server's --model too; `billing.pt`: another model; `notes.txt`: not a model."""
    d = tmp_path_factory.mktemp("models")
    shutil.copyfile(checkpoint, d / "default.pt")
    shutil.copyfile(other_checkpoint, d / "billing.pt")
    (d / "notes.txt").write_text("not a model")
    return d


@pytest.mark.parametrize("workers", ["1", "0"])
def test_the_named_model_answers(models_dir, checkpoint, other_checkpoint, workers):
    default_answers, billing_answers = local_answers(checkpoint), local_answers(other_checkpoint)
    assert default_answers != billing_answers  # two models that can be told apart
    with ServerProcess(models_dir / "default.pt", *EXACT, "--workers", workers, "--models-dir", str(models_dir)) as s:
        sha = requests.get(s.url + "/health", timeout=30).json()["model"]["sha256"]
        got, shas = answers(s.url, "billing")
        assert got == billing_answers and len(shas) == 1 and sha not in shas
        # no "model", an empty or null one, or the default's own name: the default model, not a second copy
        for name in (None, "", "default"):
            assert answers(s.url, name) == (default_answers, {sha})
        requests.post(s.url + "/autocomplete", json={"prompt": "x", "model": None}, timeout=30).raise_for_status()
        # and back: each request gets its own model, whatever came before
        assert answers(s.url, "billing") == (billing_answers, shas)
        assert requests.get(s.url + "/models", timeout=30).json() == {"default": "default", "models": ["billing"]}
        assert metric(s.url, "autocomplete_engine_models_loaded") == 1
        assert metric(s.url, "autocomplete_engine_model_loads_total") == 1
        # answers by the model asked for: 2 x 4 prompts named billing; 3 x 4 and one more the default
        assert metric(s.url, 'autocomplete_model_requests_total{model="billing"}') == 2 * len(PROMPTS)
        assert metric(s.url, 'autocomplete_model_requests_total{model="default"}') == 3 * len(PROMPTS) + 1


def test_a_name_that_is_not_there_is_the_clients_mistake(models_dir, checkpoint):
    with ServerProcess(models_dir / "default.pt", *EXACT, "--workers", "1", "--models-dir", str(models_dir)) as s:
        for name in ("payroll", "notes", "../billing", "billing.pt", "/etc/passwd", ".hidden", "x" * 70):
            r = requests.post(s.url + "/autocomplete", json={"prompt": "x", "model": name}, timeout=30)
            assert r.status_code == 404, (name, r.text)
            body = r.json()
            assert body["type"] == "unknown_model" and "'billing'" in body["error"] and "'default'" in body["error"]
        for bad in (3, ["billing"], {"name": "billing"}, True):
            r = requests.post(s.url + "/autocomplete", json={"prompt": "x", "model": bad}, timeout=30)
            assert r.status_code == 400 and r.json()["type"] == "bad_field", r.text
        assert metric(s.url, "autocomplete_engine_model_loads_total") == 0  # no worker saw any of them
        assert metric(s.url, 'autocomplete_errors_total{kind="unknown_model"}') == 7
    # a server without --models-dir says how to get one
    with ServerProcess(checkpoint, *EXACT, "--workers", "0") as s:
        r = requests.post(s.url + "/autocomplete", json={"prompt": "x", "model": "billing"}, timeout=30)
        assert r.status_code == 404 and "--models-dir" in r.json()["error"]
        assert requests.get(s.url + "/models", timeout=30).json() == {"default": checkpoint.stem, "models": []}


def test_a_broken_model_is_503_and_the_others_keep_serving(models_dir, checkpoint, other_checkpoint, tmp_path):
    d = tmp_path / "models"
    d.mkdir()
    (d / "broken.pt").write_bytes(other_checkpoint.read_bytes()[:4096])
    shutil.copyfile(other_checkpoint, d / "billing.pt")
    with ServerProcess(checkpoint, *EXACT, "--workers", "1", "--models-dir", str(d)) as s:
        for _ in range(2):
            r = requests.post(s.url + "/autocomplete", json={"prompt": "x", "model": "broken"}, timeout=30)
            assert r.status_code == 503 and r.json()["type"] == "model_unavailable", r.text
            assert "'broken' cannot be loaded" in r.json()["error"] and "Retry-After" in r.headers
        assert answers(s.url, "billing")[0] == local_answers(other_checkpoint)
        assert answers(s.url)[0] == local_answers(checkpoint)
        assert requests.get(s.url + "/health", timeout=30).json()["workers"]["restarts"] == 0
        replace(other_checkpoint, d / "broken.pt")  # mended: read again because the file changed
        assert answers(s.url, "broken")[0] == local_answers(other_checkpoint)


@pytest.mark.parametrize("workers", ["1", "0"])
def test_a_new_file_under_a_served_name_is_swapped_in_and_no_request_fails(checkpoint, other_checkpoint, tmp_path,
                                                                          workers):
    d = tmp_path / "models"
    d.mkdir()
    shutil.copyfile(checkpoint, d / "billing.pt")
    with ServerProcess(checkpoint, *EXACT, "--workers", workers, "--models-dir", str(d),
                       "--reload-interval", "0.2") as s:
        before, old_shas = answers(s.url, "billing")
        assert before == local_answers(checkpoint)
        statuses = []
        with Typist(s.url, clients=2, body={"model": "billing"}) as typist:
            replace(other_checkpoint, d / "billing.pt")
            deadline = time.monotonic() + 30
            while metric(s.url, "autocomplete_engine_model_reloads_total") < 1:
                assert time.monotonic() < deadline, s.output()
                time.sleep(0.1)
            statuses = typist.statuses
        assert statuses and set(statuses) == {200}, sorted(set(statuses))
        after, new_shas = answers(s.url, "billing")
        assert after == local_answers(other_checkpoint) and new_shas.isdisjoint(old_shas)


def test_a_worker_holds_at_most_max_models(checkpoint, other_checkpoint, tmp_path):
    d = tmp_path / "models"
    d.mkdir()
    for name in ("a", "b"):
        shutil.copyfile(checkpoint if name == "a" else other_checkpoint, d / f"{name}.pt")
    with ServerProcess(checkpoint, *EXACT, "--workers", "1", "--models-dir", str(d), "--max-models", "1") as s:
        for _ in range(2):
            assert answers(s.url, "a")[0] == local_answers(checkpoint)
            assert answers(s.url, "b")[0] == local_answers(other_checkpoint)
        assert metric(s.url, "autocomplete_engine_models_loaded") == 1
        assert metric(s.url, "autocomplete_engine_model_loads_total") == 4
        assert metric(s.url, "autocomplete_engine_model_evictions_total") == 3
    assert os.path.exists(d / "a.pt")  # nothing is written or removed in the directory


@pytest.mark.parametrize("workers", ["1", "0"])
def test_preload_models_loads_them_before_any_request(checkpoint, other_checkpoint, tmp_path, workers):
    """--preload-models: each engine loads the newest --max-models named models at its start; a request then
    finds its model loaded (no load counted after it), and answers as that checkpoint does."""
    d = tmp_path / "models"
    d.mkdir()
    for age, name in enumerate(("newest", "middle", "oldest")):
        shutil.copyfile(other_checkpoint, d / f"{name}.pt")
        os.utime(d / f"{name}.pt", (time.time() - 1000 * age,) * 2)
    (d / "broken.pt").write_bytes(b"not a checkpoint")  # the oldest file: beyond --max-models 2, never read
    os.utime(d / "broken.pt", (time.time() - 5000,) * 2)
    with ServerProcess(checkpoint, *EXACT, "--workers", workers, "--models-dir", str(d), "--max-models", "2",
                       "--preload-models") as s:
        deadline = time.monotonic() + 60
        while True:  # an engine's counters come with its answers: ask the default model until they show both
            requests.post(s.url + "/autocomplete", json={"prompt": "x"}, timeout=30).raise_for_status()
            if metric(s.url, "autocomplete_engine_models_loaded") == 2:
                break
            assert time.monotonic() < deadline, s.output()
            time.sleep(0.1)
        loads = metric(s.url, "autocomplete_engine_model_loads_total")
        assert loads == 2
        for name in ("newest", "middle"):
            assert answers(s.url, name)[0] == local_answers(other_checkpoint)
        assert metric(s.url, "autocomplete_engine_model_loads_total") == loads  # nothing loaded on request
        assert "broken" not in s.output()
        assert answers(s.url, "oldest")[0] == local_answers(other_checkpoint)  # the others still load when asked
        assert metric(s.url, "autocomplete_engine_model_loads_total") == loads + 1


def test_preload_models_needs_a_models_dir(checkpoint):
    from server import main
    assert main(["--model", str(checkpoint), "--preload-models"]) == 2
