"""scripts/gpu_session.sh, the prepared device check, dry-run on the CPU (SMOKE=1): a GPU session gets one
try at it, so its command lines, export and the parts it sends back must already work here."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from models.checkpoint import load_checkpoint
from test_train_tiny_corpus import make_tiny_corpus

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "gpu_session.sh"


def session(tmp_path, data, **env) -> subprocess.CompletedProcess:
    env = {**os.environ, "OUT": str(tmp_path / "out"), "DATA": str(data), "RUNS": str(tmp_path / "runs"),
           "SMOKE": "1", "PY": sys.executable, "SITE": str(tmp_path / "site"), "OMP_NUM_THREADS": "1",
           "CUDA_VISIBLE_DEVICES": "", **env}
    return subprocess.run(["bash", str(SCRIPT)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_tiny_corpus(tmp_path_factory.mktemp("gpu-session-data"))


def test_candidates_come_back_as_parts_that_reassemble_into_their_checkpoints(data, tmp_path):
    r = session(tmp_path, data, CANDIDATES="one:1:32:1e-3 two:2:48:2e-3", PART_BYTES="20K")
    out = tmp_path / "out"
    log = (out / "session.log").read_text()
    # 20K parts make more files than a device call sends back (8): the session says so and fails
    assert r.returncode == 1 and "only 8 come back" in log, log
    for name, layers, d_model in (("one", 1, 32), ("two", 2, 48)):
        parts = sorted(out.glob(f"{name}.pt.part*"))
        assert len(parts) >= 2  # cut: one file may come back at most 16 MiB
        whole = tmp_path / f"{name}.pt"
        whole.write_bytes(b"".join(p.read_bytes() for p in parts))
        ckpt = load_checkpoint(whole)
        assert (ckpt.config.n_layers, ckpt.config.d_model) == (layers, d_model)
        assert ckpt.tokenizer.fim_ids is not None  # trained to fill in the middle, as the shipped model
    summary = (out / "summary.txt").read_text()
    assert "one: step 3: valid loss" in summary and "two: step 3: valid loss" in summary
    # default 15M parts: one each (the device empties $OUT before each call; here a fresh folder)
    r = session(tmp_path / "again", data, CANDIDATES="one:1:32:1e-3 two:2:48:2e-3")
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_missing_corpus_fails_at_once_with_a_clear_message(tmp_path):
    r = session(tmp_path, tmp_path / "nothing")
    assert r.returncode == 2
    assert "no corpus in" in (tmp_path / "out" / "session.log").read_text()
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_failed_candidate_fails_the_session(data, tmp_path):
    # 3 heads do not divide d_model 32: train.py refuses; the other candidate still comes back
    r = session(tmp_path, data, CANDIDATES="ok:1:32:1e-3 bad:1:31:1e-3")
    assert r.returncode == 1
    assert list((tmp_path / "out").glob("ok.pt.part*")) and not list((tmp_path / "out").glob("bad.pt.part*"))


def test_a_python_that_cannot_import_the_trainer_stops_before_training(data, tmp_path):
    # the device's image lacks labml / labml-nn unless their wheels travel in .whl: no run may start then
    fake = tmp_path / "python3"
    fake.write_text(f"#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = \"import models, train\" ] && "
                    f"echo \"ModuleNotFoundError: No module named 'labml_nn'\" >&2 && exit 1; done\n"
                    f"exec {sys.executable} \"$@\"\n")
    fake.chmod(0o755)
    r = session(tmp_path, data, PY=str(fake))
    log = (tmp_path / "out" / "session.log").read_text()
    assert r.returncode == 2 and "cannot import the trainer" in log and "labml_nn" in log, log
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
