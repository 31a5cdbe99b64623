"""`python server.py` start-up: bad checkpoints and unsafe binds end with one clear line and exit 2;
a non-loopback bind with a token enforces it over real HTTP."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from benchmarks.server_load import SERVER, ServerProcess

TOKEN = "a-long-random-token-0123456789"


def run_server(*args, env_extra=None, timeout=120):
    env = {k: v for k, v in os.environ.items() if k != "AUTOCOMPLETE_API_TOKEN"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, str(SERVER), "--port", "0", "--torch-threads", "1", *args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=SERVER.parent)


def assert_one_line_error(result, *words):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0], errors[0]


def test_missing_checkpoint(tmp_path):
    result = run_server("--model", str(tmp_path / "nope.pt"))
    assert_one_line_error(result, "not found", "nope.pt")


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all\n" * 10, "truncated"])
def test_corrupt_checkpoint(tmp_path, checkpoint, content):
    bad = tmp_path / "bad.pt"
    if content == "truncated":
        data = checkpoint.read_bytes()
        content = data[: len(data) // 2]
    bad.write_bytes(content)
    result = run_server("--model", str(bad))
    assert_one_line_error(result, "cannot load", "bad.pt")


def test_checkpoint_is_a_directory(tmp_path):
    assert_one_line_error(run_server("--model", str(tmp_path)), "not found")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.org"])
def test_non_loopback_without_token_refuses_to_start(checkpoint, host):
    result = run_server("--host", host, "--model", str(checkpoint))
    assert_one_line_error(result, "token", "AUTOCOMPLETE_API_TOKEN")


def test_blank_token_does_not_count(checkpoint):
    result = run_server("--host", "0.0.0.0", "--model", str(checkpoint),
                        env_extra={"AUTOCOMPLETE_API_TOKEN": "  "})
    assert_one_line_error(result, "token")


def test_port_in_use(checkpoint):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, str(SERVER), "--port", str(port), "--model", str(checkpoint)],
                                capture_output=True, text=True, timeout=60)
    assert_one_line_error(result, "cannot listen", str(port))


def test_any_address_with_token_enforces_it(checkpoint):
    with ServerProcess(checkpoint, "--torch-threads", "1", "--token", TOKEN, host="0.0.0.0") as srv:
        ok = {"Authorization": f"Bearer {TOKEN}"}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            r = requests.post(srv.url + "/autocomplete", json={"prompt": "x"}, headers=headers, timeout=30)
            assert r.status_code == 401 and r.json()["success"] is False
            assert requests.get(srv.url + "/metrics", headers=headers, timeout=30).status_code == 401
        r = requests.post(srv.url + "/autocomplete", json={"prompt": "x"}, headers=ok, timeout=30)
        assert r.status_code == 200 and r.json()["success"] is True
        assert requests.get(srv.url + "/metrics", headers=ok, timeout=30).status_code == 200
        health = requests.get(srv.url + "/health", timeout=30)
        assert health.status_code == 200 and health.json() == {"status": "ok"}


def test_token_from_environment(checkpoint):
    env = {"AUTOCOMPLETE_API_TOKEN": TOKEN}
    with ServerProcess(checkpoint, "--torch-threads", "1", host="0.0.0.0", env=env) as srv:
        assert requests.post(srv.url + "/autocomplete", json={"prompt": "x"}, timeout=30).status_code == 401
        r = requests.post(srv.url + "/autocomplete", json={"prompt": "x"}, timeout=30,
                          headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200


def test_help_lists_options():
    out = subprocess.run([sys.executable, str(SERVER), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for option in ("--host", "--port", "--model", "--token", "--queue-size", "--max-wait-ms"):
        assert option in out.stdout
    assert Path(SERVER).name == "server.py"


@pytest.mark.parametrize("args, words", [
    (("--workers", "-1"), ("--workers",)), (("--workers", "many"), ("--workers",)),
    (("--slots", "0"), ("--slots",)), (("--workers", "0", "--slots", "2"), ("--slots",)),
    (("--cache-mb", "0"), ("--cache-mb",)),
    (("--time-budget-ms", "-5"), ("--time-budget-ms",)),
    (("--models-dir", "/nonexistent/models"), ("--models-dir", "not a directory")),
    (("--max-models", "0"), ("--max-models",))])
def test_bad_pool_options(checkpoint, args, words):
    assert_one_line_error(run_server("--model", str(checkpoint), *args), *words)


def test_device_cuda_without_cuda_fails_in_one_line(checkpoint):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: --device cuda would work")
    for workers in ("0", "1"):
        result = run_server("--model", str(checkpoint), "--device", "cuda", "--workers", workers)
        assert_one_line_error(result, "CUDA is not available", str(checkpoint))


@pytest.mark.parametrize("args", [("--workers", "0", "--device", "cpu"), ("--workers", "1", "--device", "auto")])
def test_device_reported_by_health(checkpoint, args):
    import torch
    with ServerProcess(checkpoint, "--torch-threads", "1", *args) as srv:
        model = requests.get(srv.url + "/health", timeout=30).json()["model"]
        assert model["device"] == ("cuda" if "auto" in args and torch.cuda.is_available() else "cpu")
        assert requests.post(srv.url + "/autocomplete", json={"prompt": "x"}, timeout=30).status_code == 200


def test_the_http_process_does_not_import_torch():
    """With engine workers the HTTP process only parses, queues and forwards: importing the engine (or
    anything that imports torch) there costs ~160 MiB of PSS (benchmarks/context.py, 2026-12-05)."""
    code = "import sys, server; print(sorted(m for m in ('torch', 'numpy', 'evaluate') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=SERVER.parent)
    assert result.returncode == 0, result.stderr
    assert "torch" not in result.stdout and "evaluate" not in result.stdout, result.stdout
