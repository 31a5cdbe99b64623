"""A new checkpoint under a running server (serving/reload.py), for real: `server.py` processes on 127.0.0.1
whose `--model` file is replaced as `make train` replaces it (an atomic rename), copied in place, broken, or
reloaded on SIGUSR1. The new model answers, no request fails meanwhile, a broken file leaves the old model
serving, and the retired workers are gone."""
import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
import requests
import torch

import server
from benchmarks.server_load import ServerProcess, children_by_parent
from models.checkpoint import load_checkpoint, save_checkpoint

torch.set_num_threads(1)
# Float weights and no latency budget: the server's answers equal an in-process predictor's (as in
# test_server_pool.py).
EXACT = ("--torch-threads", "1", "--quantize", "none", "--time-budget-ms", "0")
PROMPTS = ["class Stack:\n    def __init__(self", "    def push(self, item):\n        self.items.",
           "import unittest\n\n\ndef mul(a, b):\n    return ", "x = add(1, 2)\nassert x == "]


@pytest.fixture(scope="module")
def other_checkpoint(checkpoint, tmp_path_factory):
    """The tiny checkpoint with every weight moved: another real model of the same tokenizer, which answers
    differently (checked in the tests)."""
    ckpt = load_checkpoint(checkpoint)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in ckpt.model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * p.std() * 0.5)
    return save_checkpoint(tmp_path_factory.mktemp("other") / "other.pt", ckpt.model, ckpt.config, ckpt.tokenizer,
                           step=ckpt.step + 1, meta={"moved": True, "finetuned_from": "checkpoints/default.pt",
                                                     "sources": ["/home/me/code/proj"], "not_shown": [1, 2]})


def replace(src: Path, dest: Path) -> None:
    """What make train does: write beside, then one rename."""
    tmp = dest.with_suffix(".tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


def answers(url: str) -> list[list[str]]:
    out = []
    for p in PROMPTS:
        r = requests.post(url + "/autocomplete", json={"prompt": p, "max_suggestions": 3}, timeout=30)
        assert r.status_code == 200, r.text
        out.append(r.json()["prediction"])
    return out


def local_answers(path: Path) -> list[list[str]]:
    predictor, _ = server.load_model(str(path))
    return [[c.text for c in predictor.complete(p, max_suggestions=3)] for p in PROMPTS]


def health(url: str) -> dict:
    r = requests.get(url + "/health", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def wait_for(url: str, done, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        h = health(url)
        if done(h):
            return h
        assert time.monotonic() < deadline, h
        time.sleep(0.1)


def metric(url: str, sample: str) -> float:
    for line in requests.get(url + "/metrics", timeout=30).text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class Typist:
    """Clients sending requests without pause until stopped (with `body`'s fields); every status is kept."""

    def __init__(self, url: str, clients: int = 4, body: dict | None = None):
        self.url, self.statuses, self.stop, self.body = url, [], threading.Event(), body or {}
        self.threads = [threading.Thread(target=self.run, args=(c,)) for c in range(clients)]

    def run(self, c: int):
        with requests.Session() as s:
            while not self.stop.is_set():
                body = {"prompt": PROMPTS[c % len(PROMPTS)], "kind": "line", **self.body}
                r = s.post(self.url + "/autocomplete", json=body, headers={"X-Client-Id": f"c{c}"}, timeout=30)
                self.statuses.append(r.status_code)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(60)
        assert not any(t.is_alive() for t in self.threads)


def test_a_renamed_checkpoint_is_served_by_new_workers_and_no_request_fails(checkpoint, other_checkpoint, tmp_path):
    model = tmp_path / "personal.pt"
    shutil.copyfile(checkpoint, model)
    old_answers, new_answers = local_answers(checkpoint), local_answers(other_checkpoint)
    assert old_answers != new_answers  # two models that can be told apart
    with ServerProcess(model, *EXACT, "--workers", "2", "--reload-interval", "0.2") as s:
        before = health(s.url)
        assert before["reload"] == {"ok": 0, "failed": 0, "error": None, "loaded_at": before["reload"]["loaded_at"],
                                    "seconds": None}
        assert answers(s.url) == old_answers
        r = requests.post(s.url + "/autocomplete", json={"prompt": PROMPTS[0]}, timeout=30)
        assert r.json()["model"] == before["model"]["sha256"]
        with Typist(s.url) as typist:
            time.sleep(0.5)
            replace(other_checkpoint, model)
            after = wait_for(s.url, lambda h: h["reload"]["ok"] == 1)
            time.sleep(0.5)  # requests keep coming to the new workers
        assert typist.statuses and set(typist.statuses) == {200}, sorted(set(typist.statuses))
        assert after["model"]["sha256"] != before["model"]["sha256"]
        assert after["model"]["step"] == before["model"]["step"] + 1 and after["model"]["meta"]["moved"] is True
        # what the extension's tooltip names: where a fine-tuned model came from (lists of strings are shown),
        # by folder name only: everyone holding a team server's token reads /health (serving/loading.shown_text)
        assert after["model"]["meta"]["sources"] == ["proj"] and "not_shown" not in after["model"]["meta"]
        assert after["model"]["meta"]["finetuned_from"] == "checkpoints/default.pt"
        assert after["model"]["file"] == model.name and str(model.parent) not in json.dumps(after)
        assert after["reload"]["failed"] == 0 and after["reload"]["seconds"] > 0
        assert answers(s.url) == new_answers
        # every answer names the model that computed it, as /health does
        r = requests.post(s.url + "/autocomplete", json={"prompt": PROMPTS[0]}, timeout=30)
        assert r.json()["model"] == after["model"]["sha256"]
        # new processes; the old ones stopped and reaped, no restart counted, no forkserver left
        assert set(after["workers"]["pids"]).isdisjoint(before["workers"]["pids"])
        assert after["workers"]["ready"] == 2 and after["workers"]["restarts"] == 0
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{p}").exists() for p in before["workers"]["pids"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(Path(f"/proc/{p}").exists() for p in before["workers"]["pids"])
        kids = children_by_parent().get(s.proc.pid, [])
        forkservers = [p for p in kids if "multiprocessing.forkserver" in Path(f"/proc/{p}/cmdline").read_text()
                       and p not in after["workers"]["pids"]]
        deadline = time.monotonic() + 10
        while forkservers and time.monotonic() < deadline:
            time.sleep(0.1)
            forkservers = [p for p in forkservers if Path(f"/proc/{p}").exists()]
        assert not forkservers
        assert metric(s.url, 'autocomplete_model_reloads_total{result="ok"}') == 1


def test_a_broken_file_leaves_the_old_model_serving_until_a_good_one_comes(checkpoint, other_checkpoint, tmp_path):
    model = tmp_path / "personal.pt"
    shutil.copyfile(checkpoint, model)
    with ServerProcess(model, *EXACT, "--workers", "1", "--reload-interval", "0.2") as s:
        sha = health(s.url)["model"]["sha256"]
        old_answers = answers(s.url)
        with Typist(s.url, clients=2) as typist:
            broken = tmp_path / "broken.pt"
            broken.write_bytes(other_checkpoint.read_bytes()[:4096])  # a truncated file
            os.replace(broken, model)
            failed = wait_for(s.url, lambda h: h["reload"]["failed"] == 1)
        assert set(typist.statuses) == {200}
        assert failed["model"]["sha256"] == sha and failed["reload"]["ok"] == 0
        assert "cannot load" in failed["reload"]["error"] and str(model) in failed["reload"]["error"]
        assert failed["workers"]["ready"] == 1 and failed["workers"]["restarts"] == 0
        assert answers(s.url) == old_answers
        assert "still serving the model loaded at" in s.output()
        time.sleep(1.0)  # tried once: not again at every look while the file stays as it is
        assert health(s.url)["reload"]["failed"] == 1
        assert metric(s.url, 'autocomplete_model_reloads_total{result="failed"}') == 1
        replace(other_checkpoint, model)
        good = wait_for(s.url, lambda h: h["reload"]["ok"] == 1)
        assert good["reload"]["error"] is None and good["model"]["sha256"] != sha
        assert answers(s.url) == local_answers(other_checkpoint)


def test_a_file_copied_in_place_is_read_once_its_writer_stopped(checkpoint, other_checkpoint, tmp_path):
    """`cp new.pt personal.pt` rewrites the file where it is; the server must not load it half-written."""
    model = tmp_path / "personal.pt"
    shutil.copyfile(checkpoint, model)
    data = other_checkpoint.read_bytes()
    # A look every second, the second look 0.5 s after a change (serving/reload.py SETTLE_S): the writes below
    # come every 0.1 s, so only a writer stalled for 0.5 s would be read half-written.
    with ServerProcess(model, *EXACT, "--workers", "0", "--reload-interval", "1") as s:
        with open(model, "r+b") as f:  # the same inode, written slowly: ~1.6 s, several looks of the watcher
            f.truncate(0)
            for i in range(0, len(data), len(data) // 16 + 1):
                f.write(data[i:i + len(data) // 16 + 1])
                f.flush()
                time.sleep(0.1)
        h = wait_for(s.url, lambda h: h["reload"]["ok"] == 1)
        assert h["reload"]["failed"] == 0
        assert answers(s.url) == local_answers(other_checkpoint)


def test_sigusr1_reloads_the_in_process_engine_and_the_file_is_not_watched_with_interval_0(
        checkpoint, other_checkpoint, tmp_path):
    model = tmp_path / "personal.pt"
    shutil.copyfile(checkpoint, model)
    with ServerProcess(model, *EXACT, "--workers", "0", "--reload-interval", "0") as s:
        old_answers = answers(s.url)
        replace(other_checkpoint, model)
        time.sleep(1.0)
        assert health(s.url)["reload"]["ok"] == 0 and answers(s.url) == old_answers
        with Typist(s.url, clients=2) as typist:
            time.sleep(0.3)
            os.kill(s.proc.pid, signal.SIGUSR1)
            h = wait_for(s.url, lambda h: h["reload"]["ok"] == 1)
        assert set(typist.statuses) == {200}
        assert h["model"]["meta"]["moved"] is True
        assert answers(s.url) == local_answers(other_checkpoint)
        r = requests.post(s.url + "/autocomplete", json={"prompt": PROMPTS[0]}, timeout=30)
        assert r.json()["model"] == h["model"]["sha256"]  # the in-process engine names its model too
        assert "reloading" in s.output() and "(SIGUSR1)" in s.output()


def test_reload_interval_is_checked():
    assert server.main(["--reload-interval", "-1"]) == 2


def test_file_watch_reads_a_change_once_its_writer_stopped(tmp_path):
    """serving.reload.FileWatch, which the checkpoint watcher, the named models and the tokens file share."""
    from serving.reload import SETTLE_S, FileWatch, file_signature
    path = tmp_path / "watched"
    path.write_text("one")
    t = 1000.0  # the watch's own clock (monotonic seconds), given to each look
    watch = FileWatch(str(path), interval_s=2.0, known=file_signature(path))
    watch.checked = t
    assert watch.change(t + 2.0) is None  # unchanged
    path.write_text("two, longer")  # just written: its writer may go on
    assert watch.change(t + 3.0) is None  # not yet looked at: the interval since the last look has not passed
    assert watch.change(t + 4.0) is None and watch.wait_s == SETTLE_S  # seen; looked at again sooner
    assert watch.change(t + 4.0 + SETTLE_S / 2, due=True) is None  # held, but not for SETTLE_S yet
    new = file_signature(path)
    assert watch.change(t + 4.0 + SETTLE_S, due=True) == (new,)
    watch.known = new  # the caller read it
    assert watch.change(t + 10.0) is None and watch.wait_s == 2.0
    # a write that ended SETTLE_S ago (a file renamed into place): read at the first look
    path.write_text("three")
    os.utime(path, (time.time() - 2 * SETTLE_S,) * 2)
    assert watch.change(t + 12.0) == (file_signature(path),)
    watch.known = file_signature(path)
    # a write that goes on between looks is waited for
    path.write_text("four")
    assert watch.change(t + 14.0) is None
    path.write_text("four, more")
    assert watch.change(t + 14.0 + SETTLE_S, due=True) is None  # another signature: it settles from now
    assert watch.change(t + 14.0 + 2 * SETTLE_S, due=True) == (file_signature(path),)
    # a file that is gone: waited for, unless the caller wants to hear of it
    path.unlink()
    assert watch.change(t + 20.0) is None and watch.seen is None
    tokens_like = FileWatch(str(path), interval_s=2.0, known=("some", "signature", 1, 2), gone_is_change=True)
    assert tokens_like.change(time.monotonic(), due=True) == (None,)
