"""train.py end to end, as subprocesses on a tiny real corpus: resume after SIGKILL reproduces an
uninterrupted run exactly, SIGTERM saves before exiting, 2-process torchrun (gloo) equals 1 process."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from models.checkpoint import load_checkpoint
from test_train_tiny_corpus import make_tiny_corpus

REPO = Path(__file__).resolve().parents[1]
# Bit-for-bit equality (resume, 2 processes = 1) is a CPU property: these runs hide any GPU. The GPU's resume
# is checked on its own against the GPU's run-to-run noise (test_resume_on_cuda_...).
CUDA_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
ENV = {**CUDA_ENV, "CUDA_VISIBLE_DEVICES": ""}
TINY = ["--d-model", "32", "--layers", "2", "--heads", "4", "--seq-len", "32", "--threads", "1",
        "--eval-tokens", "2048", "--warmup", "5", "--seed", "3", "--log-every", "10"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_tiny_corpus(tmp_path_factory.mktemp("data"))


def train_cmd(data, out, *extra) -> list[str]:
    return [sys.executable, "train.py", "--data", str(data), "--out", str(out), *TINY, *extra]


def run(cmd, timeout=180, env=ENV) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def wait_for_checkpoint(path: Path, proc: subprocess.Popen, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if path.exists():
            try:
                if load_checkpoint(path).step >= 20:
                    return
            except Exception:
                pass  # being replaced right now: atomic, so just look again
        time.sleep(0.1)
    raise AssertionError(f"no checkpoint at {path} (process exit code {proc.poll()})")


def final_loss(stdout: str) -> float:
    return float(re.search(r"final train loss ([0-9.]+)", stdout).group(1))


def weights(path: Path) -> dict:
    return load_checkpoint(path).model.state_dict()


def kill_then_resume(data, out: Path, args: list[str], env: dict) -> subprocess.CompletedProcess:
    """Start a run, SIGKILL it after its first checkpoint, resume it to the end; the resumed run's result."""
    proc = subprocess.Popen(train_cmd(data, out, *args), cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_checkpoint(out / "last.pt", proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at = load_checkpoint(out / "last.pt").step
    assert 0 < killed_at < 400, "the run was not interrupted in the middle"
    resumed = run(train_cmd(data, out, *args, "--resume"), env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert f"from step {killed_at}" in resumed.stdout
    return resumed


RESUME_ARGS = ["--batch-size", "8", "--steps", "400", "--eval-every", "100", "--dropout", "0.1",
               "--checkpoint-minutes", "0.003"]


def test_sigkill_then_resume_matches_an_uninterrupted_run(data, tmp_path):
    reference = run(train_cmd(data, tmp_path / "ref", *RESUME_ARGS))
    assert reference.returncode == 0, reference.stderr
    resumed = kill_then_resume(data, tmp_path / "run", RESUME_ARGS, ENV)
    last = load_checkpoint(tmp_path / "run" / "last.pt")
    assert last.step == 400
    assert load_checkpoint(tmp_path / "run" / "best.pt").meta["valid_bpc"] > 0
    # Same data order, same dropout masks, same optimizer state: the same weights as never stopping.
    ref = weights(tmp_path / "ref" / "last.pt")
    for name, tensor in last.model.state_dict().items():
        torch.testing.assert_close(tensor, ref[name], atol=1e-6, rtol=0)
    assert final_loss(resumed.stdout) == pytest.approx(final_loss(reference.stdout), abs=1e-6)


def test_batches_made_ahead_in_a_thread_train_and_resume_exactly_as_in_line(data, tmp_path):
    """--prefetch 2 (what CUDA runs get), with the FIM rewrite: the same weights as batches made in line,
    also after a SIGKILL and --resume (the checkpoint saves the generators after the last batch trained on)."""
    args = [*RESUME_ARGS, "--fim-rate", "0.5"]
    reference = run(train_cmd(data, tmp_path / "ref", *args, "--prefetch", "0"))
    assert reference.returncode == 0, reference.stderr
    assert "prefetch 0" in reference.stdout
    resumed = kill_then_resume(data, tmp_path / "run", [*args, "--prefetch", "2"], ENV)
    assert "prefetch 2" in resumed.stdout
    ref = weights(tmp_path / "ref" / "last.pt")
    for name, tensor in weights(tmp_path / "run" / "last.pt").items():
        torch.testing.assert_close(tensor, ref[name], atol=1e-6, rtol=0)
    assert final_loss(resumed.stdout) == pytest.approx(final_loss(reference.stdout), abs=1e-6)


def max_difference(a: dict, b: dict) -> float:
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_resume_on_cuda_is_as_close_as_two_uninterrupted_gpu_runs(data, tmp_path):
    """GPU kernels are not bit-reproducible (atomics), so a resumed GPU run is held to the GPU's own run-to-run
    difference; dropout masks drawn from an unrestored CUDA RNG would put it orders of magnitude above that."""
    runs = [run(train_cmd(data, tmp_path / f"ref{i}", *RESUME_ARGS), env=CUDA_ENV) for i in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr
    kill_then_resume(data, tmp_path / "run", RESUME_ARGS, CUDA_ENV)
    ref0, ref1 = weights(tmp_path / "ref0" / "last.pt"), weights(tmp_path / "ref1" / "last.pt")
    noise = max_difference(ref0, ref1)
    resumed = max_difference(weights(tmp_path / "run" / "last.pt"), ref0)
    assert resumed <= 10 * max(noise, 1e-5), (resumed, noise)


def test_sigterm_saves_a_checkpoint_before_exiting(data, tmp_path):
    proc = subprocess.Popen(train_cmd(data, tmp_path, "--model", "lstm", "--batch-size", "8", "--minutes", "10",
                                      "--checkpoint-minutes", "0.003", "--eval-every", "0"),
                            cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_checkpoint(tmp_path / "last.pt", proc)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert "after signal" in out
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt.step >= 20 and ckpt.config.arch == "lstm"
    assert ckpt.resume["train_seconds"] < 600


def test_torchrun_two_processes_equal_one_process_with_the_same_global_batch(data, tmp_path):
    # The global batch is drawn from the seed alone and split by rank, and DDP averages gradients, so
    # 2 x batch 4 computes the same updates as 1 x batch 8: final losses agree to float rounding (we
    # allow 1e-3 nats; measured difference ~1e-5). Dropout 0: dropout masks are drawn per rank.
    args = ["--steps", "30", "--eval-every", "0", "--dropout", "0"]
    one = run(train_cmd(data, tmp_path / "one", "--batch-size", "8", *args))
    assert one.returncode == 0, one.stderr
    # --standalone: a local rendezvous on a free port. A new session, so a timeout can end the workers too.
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             *train_cmd(data, tmp_path / "two", "--batch-size", "4", *args)[1:]],
                            cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    two = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "x2" in two.stdout  # really ran with world size 2
    assert final_loss(two.stdout) == pytest.approx(final_loss(one.stdout), abs=1e-3)
    assert load_checkpoint(tmp_path / "two" / "last.pt").step == 30
    assert not list((tmp_path / "two").glob("*.tmp"))  # no temporary file of an atomic write left


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_torchrun_with_more_processes_than_gpus_says_so(data, tmp_path):
    n = torch.cuda.device_count() + 1
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
                          *train_cmd(data, tmp_path, "--steps", "2", "--eval-every", "0")[1:]],
                         cwd=REPO, env=CUDA_ENV, capture_output=True, text=True, timeout=180)
    assert out.returncode != 0
    assert f"GPU(s): use --nproc_per_node" in out.stderr and "invalid device ordinal" not in out.stderr


@pytest.mark.parametrize("arch", ["highway", "transformer_xl"])
def test_other_architectures_train_and_improve(data, tmp_path, arch):
    out = run(train_cmd(data, tmp_path, "--model", arch, "--batch-size", "4", "--steps", "40",
                        "--eval-every", "0", "--lr", "3e-3", "--seq-len", "16"))
    assert out.returncode == 0, out.stderr[-3000:]
    losses = [float(x) for x in re.findall(r"\] loss ([0-9.]+)", out.stdout)]
    assert losses[-1] < losses[0] - 0.3, losses
    assert ("streams" in out.stdout) == (arch == "transformer_xl")
    ckpt = load_checkpoint(tmp_path / "best.pt")
    assert ckpt.config.arch == arch and ckpt.meta["valid_accuracy"] > 0


def test_bad_input_gives_a_clear_error(data, tmp_path):
    out = run([sys.executable, "train.py", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o"),
               "--steps", "1"])
    assert out.returncode == 2 and "no corpus" in out.stderr and "Traceback" not in out.stderr

    for option, value, message in (("--prefetch", "-2", "--prefetch must be"), ("--fim-rate", "1.5", "--fim-rate")):
        out = run(train_cmd(data, tmp_path / "o", "--steps", "1", option, value))
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def cpu_flags() -> set[str]:
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("no /proc/cpuinfo to read the CPU's flags from")
    line = next((l for l in cpuinfo.read_text().splitlines() if l.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def test_auto_precision_is_bf16_on_the_cpu_only_where_it_has_bf16_instructions(data, tmp_path):
    # Emulated bf16 made a fine-tune 13-24x slower on an AVX2-only CPU (train.cpu_has_native_bf16).
    import train
    # oneDNN's bf16 needs AVX-512 core (avx512bw comes with it on every such CPU) or bf16 instructions
    native = bool(cpu_flags() & {"avx512bw", "avx512_bf16", "amx_bf16"})
    assert train.cpu_has_native_bf16() == native
    out = run(train_cmd(data, tmp_path, "--batch-size", "2", "--steps", "2", "--eval-every", "0"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"device cpu x1, {'bf16' if native else 'fp32'}," in out.stdout
    lstm = run(train_cmd(data, tmp_path / "lstm", "--model", "lstm", "--batch-size", "2", "--steps", "2",
                         "--eval-every", "0"))
    assert lstm.returncode == 0 and "device cpu x1, fp32," in lstm.stdout
    forced = run(train_cmd(data, tmp_path / "forced", "--precision", "bf16", "--batch-size", "2", "--steps", "2",
                           "--eval-every", "0"))
    assert forced.returncode == 0 and "device cpu x1, bf16," in forced.stdout
