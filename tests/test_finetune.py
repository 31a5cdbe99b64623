"""Fine-tuning: `train.py --init`, the personal corpus (shipped tokenizer, no new BPE) and scripts/finetune.py.

Real files (tests/fixtures/finetune_project, a small package in one style), the tiny real checkpoint of
tests/tiny_model.py; each run is a few seconds on one thread.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

import train
from dataset.corpus import load_meta, load_split
from dataset.encode import train_tokenizer
from dataset.personal import MAX_VALID_CHARS, SourceError, build_personal_corpus, gather, split_records
from evaluate import __main__ as evaluate_main
from models.checkpoint import load_checkpoint, save_checkpoint
from tests.tiny_model import make_tiny_checkpoint

REPO = Path(__file__).resolve().parent.parent
PROJECT = REPO / "tests" / "fixtures" / "finetune_project"
IN_PROCESS = ["--priority", "normal"]  # a fine-tune run in pytest's own process must not lower pytest's priority

_spec = importlib.util.spec_from_file_location("finetune_script", REPO / "scripts" / "finetune.py")
finetune = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(finetune)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


def cfg(data, out, init, **kw) -> train.TrainConfig:
    base = dict(data=str(data), out=str(out), init=str(init), steps=1, lr=0.0, warmup=1, batch_size=4,
                seq_len=64, dropout=0.0, eval_every=0, eval_tokens=0, threads=1, sample_tokens=0,
                checkpoint_minutes=60)
    base.update(kw)
    return train.TrainConfig(**base)


def test_personal_corpus_uses_the_given_tokenizer_and_holds_files_out(tiny_ckpt, tmp_path):
    tok = load_checkpoint(tiny_ckpt).tokenizer
    meta = build_personal_corpus([PROJECT], tmp_path, tok, valid_fraction=0.2)
    assert meta["tokenizer_sha256"] == tok.sha256
    assert (tmp_path / "corpus" / "tokenizer.json").read_text() == tok.to_json()  # the same BPE, not a new one
    assert meta["splits"]["train"]["files"] >= 5 and meta["splits"]["valid"]["files"] >= 1
    valid = load_split(tmp_path, "valid")
    text = tok.decode([i for i in valid if i != tok.eot_id])
    train_text = tok.decode([i for i in load_split(tmp_path, "train") if i != tok.eot_id])
    held = [f for f in sorted((PROJECT / "inventory").glob("*.py")) if f.read_text() in text]
    assert held and all(f.read_text() not in train_text for f in held)  # a held-out file is not trained on


def test_a_large_code_base_holds_out_at_most_max_valid_chars():
    # Early stopping validates the whole held-out split every 25 steps: a tenth of a large code base would make
    # each validation minutes long. The rest of the files go to training.
    def records(n):
        return [{"project": "big", "path": f"pkg/m{i}.py", "chars": 10_000, "split": "train"} for i in range(n)]
    big = records(400)  # 4M characters: a tenth is 400K
    split_records(big, 0.1)
    held = sum(r["chars"] for r in big if r["split"] == "valid")
    assert MAX_VALID_CHARS <= held <= MAX_VALID_CHARS + 10_000
    small = records(40)  # 400K characters: a tenth, as before
    split_records(small, 0.1)
    assert sum(r["chars"] for r in small if r["split"] == "valid") == 40_000
    uncapped = records(400)
    split_records(uncapped, 0.1, max_valid_chars=10**9)
    assert sum(r["chars"] for r in uncapped if r["split"] == "valid") == 400_000


def test_init_starts_from_the_checkpoint_weights(tiny_ckpt, tmp_path, capsys):
    ckpt = load_checkpoint(tiny_ckpt)
    build_personal_corpus([PROJECT], tmp_path / "data", ckpt.tokenizer, valid_fraction=0.2)
    c = cfg(tmp_path / "data", tmp_path / "run", tiny_ckpt)
    expected = train.Validation(load_split(tmp_path / "data", "valid"), ckpt.tokenizer, c)(
        ckpt.model, torch.device("cpu"), "fp32")["loss"]
    train.train(c)
    step0 = float(re.search(r"step 0: valid loss ([0-9.]+)", capsys.readouterr().out).group(1))
    # bf16 autocast in training vs fp32 here: equal to rounding. (The tiny model learned one file by heart,
    # so on this project it is worse than a fresh model's ln(320) = 5.77: the two differ by ~2 nats.)
    assert step0 == pytest.approx(expected, abs=0.02)
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    assert best.config.d_model == ckpt.config.d_model and best.config.n_layers == ckpt.config.n_layers
    for name, t in ckpt.model.state_dict().items():  # lr 0: the weights are the checkpoint's
        torch.testing.assert_close(best.model.state_dict()[name], t)

    fresh = tmp_path / "fresh"
    train.train(cfg(tmp_path / "data", fresh, "", model="transformer", d_model=64, layers=2, heads=4))
    fresh_loss = load_checkpoint(fresh / "best.pt").meta["valid_loss"]
    assert abs(fresh_loss - expected) > 1.0


def test_init_with_a_longer_seq_len_widens_the_transformer_window(tiny_ckpt, tmp_path):
    """RoPE has no position parameters: the same weights run in a wider window, which the run then trains."""
    ckpt = load_checkpoint(tiny_ckpt)
    build_personal_corpus([PROJECT], tmp_path / "data", ckpt.tokenizer, valid_fraction=0.2)
    wider = 2 * ckpt.config.max_len
    train.train(cfg(tmp_path / "data", tmp_path / "run", tiny_ckpt, seq_len=wider))
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    assert best.config.max_len == wider and best.model.max_context == wider
    for name, t in ckpt.model.state_dict().items():  # lr 0: the checkpoint's weights in the wider window
        torch.testing.assert_close(best.model.state_dict()[name], t)


def test_a_corpus_encoded_with_another_tokenizer_is_refused(tiny_ckpt, tmp_path):
    other = train_tokenizer([(PROJECT / "inventory" / "widget.py").read_text()] * 3, vocab_size=300)
    build_personal_corpus([PROJECT], tmp_path / "data", other, valid_fraction=0.2)
    with pytest.raises(ValueError, match="tokenizer mismatch"):
        train.train(cfg(tmp_path / "data", tmp_path / "run", tiny_ckpt))
    assert train.main(["--data", str(tmp_path / "data"), "--init", str(tiny_ckpt), "--steps", "1",
                       "--out", str(tmp_path / "run"), "--threads", "1"]) == 2
    assert not (tmp_path / "run" / "last.pt").exists()


def test_replay_rows_come_from_the_replay_corpus():
    own, replay = np.zeros(1000, dtype=np.uint16), np.ones(1000, dtype=np.uint16)
    windows = train.MixedWindows(own, replay, 0.25, 16, 8, train.Dist(), seed=0)
    batch, _ = windows.next()
    assert batch.shape == (8, 17)
    assert (batch.sum(axis=1) > 0).sum() == 2  # 2 of 8 rows replayed


@pytest.mark.parametrize("case", ["missing", "no_python", "only_unusable", "none"])
def test_bad_sources_fail_cleanly_and_leave_out_untouched(tiny_ckpt, tmp_path, capsys, case):
    folder = tmp_path / "src"
    if case != "missing":
        folder.mkdir()
        (folder / "README.md").write_text("# not python\n")
    if case == "only_unusable":
        (folder / "big.py").write_text("x = 1\n" * 300_000)  # over 1 MB
        (folder / "gen.py").write_text("# Code generated by a tool. DO NOT EDIT.\nx = 1\n")
        (folder / "latin1.py").write_bytes(b"s = '\xe9t\xe9'\n")
    out = tmp_path / "personal.pt"
    out.write_bytes(b"previous model")
    args = ([] if case == "none" else [str(folder)]) + [
        "--init", str(tiny_ckpt), "--out", str(out), "--work", str(tmp_path / "work"), "--steps", "5",
        *IN_PROCESS]
    assert finetune.main(args) == 2
    err = capsys.readouterr().err
    expected = {"missing": "does not exist", "no_python": "has no .py files",
                "only_unusable": "no usable .py file", "none": "no source folder"}[case]
    assert expected in err, err
    assert out.read_bytes() == b"previous model"
    assert not (tmp_path / "work" / "run").exists()


def test_gather_names_skip_reasons(tmp_path):
    (tmp_path / "gen.py").write_text("# Code generated by a tool. DO NOT EDIT.\nx = 1\n")
    with pytest.raises(SourceError, match="generated"):
        gather([tmp_path])


def test_tiny_finetune_lowers_held_out_loss_and_writes_a_servable_model(tiny_ckpt, tmp_path, capsys):
    out = tmp_path / "personal.pt"
    rc = finetune.main([str(PROJECT), "--init", str(tiny_ckpt), "--out", str(out), "--work", str(tmp_path / "w"),
                        "--steps", "60", "--lr", "3e-3", "--warmup", "5", "--eval-every", "20",
                        "--batch-size", "4", "--valid-fraction", "0.2", "--no-progress", "--replay", "", *IN_PROCESS])
    assert rc == 0, capsys.readouterr().err
    log = capsys.readouterr().out
    losses = [float(x) for x in re.findall(r"step \d+: valid loss ([0-9.]+)", log)]
    assert len(losses) >= 2
    model = load_checkpoint(out)
    assert model.meta["valid_loss"] < losses[0] - 0.3, (losses, model.meta)  # held-out loss of the written model
    # The user is told what it gained: the starting model's held-out figure (step 0) beside the written one's.
    assert model.meta["init_valid_loss"] == pytest.approx(losses[0], abs=1e-4)
    start_bpc = float(re.search(r"step 0: valid loss [0-9.]+, ([0-9.]+) bits/char", log).group(1))
    said = re.search(r"your held-out files: ([0-9.]+) -> ([0-9.]+) bits/char \(([-+0-9.]+)%", log)
    assert said, log
    assert float(said.group(1)) == pytest.approx(start_bpc, abs=1e-3)
    assert float(said.group(2)) == pytest.approx(model.meta["valid_bpc"], abs=1e-3)
    assert model.meta["valid_bpc"] < start_bpc
    assert float(said.group(3)) < 0
    assert model.tokenizer.sha256 == load_checkpoint(tiny_ckpt).tokenizer.sha256
    assert (model.config.dropout, model.config.attention_dropout) == \
        (finetune.RECIPE["dropout"], finetune.RECIPE["attn_dropout"])
    assert not list(tmp_path.glob(".personal.pt.*"))  # no temporary left over
    # It ends by typing held-out files with both models (evaluate/gain.py): the fine-tuned model saves more.
    typed = re.search(r"typing (\d+) of your held-out files \(([0-9,]+) characters\) with the project as context: "
                      r"the starting model saves ([0-9.]+)% of keystrokes, yours ([0-9.]+)% \(([-+0-9.]+) points[,)]",
                      log)
    assert typed, log
    assert int(typed.group(1)) >= 1 and int(typed.group(2).replace(",", "")) > 0
    assert float(typed.group(4)) > float(typed.group(3)), typed.group(0)
    assert float(typed.group(5)) == pytest.approx(float(typed.group(4)) - float(typed.group(3)), abs=0.11)


def test_early_stopping_keeps_the_best_held_out_model(tiny_ckpt, tmp_path, capsys):
    ckpt = load_checkpoint(tiny_ckpt)
    build_personal_corpus([PROJECT], tmp_path / "data", ckpt.tokenizer, valid_fraction=0.2)
    # A learning rate far too high: the held-out loss gets worse, so the run stops and best.pt stays step 0.
    train.train(cfg(tmp_path / "data", tmp_path / "run", tiny_ckpt, steps=200, lr=0.5, warmup=1, eval_every=5,
                    patience=2))
    out = capsys.readouterr().out
    assert "early stop at step" in out
    assert load_checkpoint(tmp_path / "run" / "best.pt").step == 0
    assert load_checkpoint(tmp_path / "run" / "last.pt").step < 200


def test_guard_keeps_a_model_that_forgot_general_code_from_being_best(tiny_ckpt, tmp_path, capsys):
    """--guard: the tiny model knows TINY_TEXT by heart; fine-tuned on another project it forgets it. Without
    the guard a later step is best.pt; with it (no rise of the guard corpus's loss allowed) best.pt stays the
    starting model, and the forgetting is reported."""
    from tests.tiny_model import TINY_TEXT
    ckpt = load_checkpoint(tiny_ckpt)
    build_personal_corpus([PROJECT], tmp_path / "data", ckpt.tokenizer, valid_fraction=0.2)
    (tmp_path / "general").mkdir()
    (tmp_path / "general" / "stack.py").write_text(TINY_TEXT)
    build_personal_corpus([tmp_path / "general"], tmp_path / "guard", ckpt.tokenizer, valid_fraction=0.5)
    common = dict(steps=40, lr=3e-3, warmup=5, eval_every=10)
    train.train(cfg(tmp_path / "data", tmp_path / "free", tiny_ckpt, **common))
    assert load_checkpoint(tmp_path / "free" / "best.pt").step > 0
    capsys.readouterr()
    train.train(cfg(tmp_path / "data", tmp_path / "guarded", tiny_ckpt, guard=str(tmp_path / "guard"),
                    guard_rise=0.0, **common))
    out = capsys.readouterr().out
    assert "too much forgotten" in out
    rises = [float(x) for x in re.findall(r"guard loss [0-9.]+ \(([-+0-9.]+)%", out)]
    assert rises[0] == 0.0 and max(rises) > 0
    assert load_checkpoint(tmp_path / "guarded" / "best.pt").step == 0
    with pytest.raises(ValueError, match="--guard needs --init"):
        train.train(cfg(tmp_path / "data", tmp_path / "x", "", guard=str(tmp_path / "guard")))


def test_interrupted_run_leaves_out_untouched_and_resumes(tiny_ckpt, tmp_path, capsys):
    import signal
    import subprocess
    import sys
    import time
    out, work = tmp_path / "personal.pt", tmp_path / "w"
    out.write_bytes(b"previous model")
    cmd = [sys.executable, str(REPO / "scripts" / "finetune.py"), str(PROJECT), "--init", str(tiny_ckpt),
           "--out", str(out), "--work", str(work), "--batch-size", "2", "--eval-every", "5", "--no-progress",
           "--replay", "", "--patience", "0"]
    proc = subprocess.Popen([*cmd, "--steps", "1000000"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.time() + 120
        for line in proc.stdout:
            if re.match(r"step 10 \[", line) or time.time() > deadline:
                break
        # The default priority: every thread of the run (torch's too) only takes CPU time nothing else wants.
        if hasattr(os, "SCHED_IDLE"):
            threads = [int(t) for t in os.listdir(f"/proc/{proc.pid}/task")]
            assert {os.sched_getscheduler(t) for t in threads} == {os.SCHED_IDLE}
        # A second run on the same WORK is refused at once, naming the first; neither OUT nor the first run is touched.
        other = tmp_path / "other.pt"
        assert finetune.main([str(PROJECT), "--init", str(tiny_ckpt), "--out", str(other), "--work", str(work),
                              "--steps", "5", *IN_PROCESS]) == 2
        assert f"in use by another finetune (pid {proc.pid})" in capsys.readouterr().err
        assert not other.exists() and proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, rest
    assert out.read_bytes() == b"previous model"
    stopped = load_checkpoint(work / "run" / "last.pt").step
    assert stopped >= 10
    # Resuming it with other folders is refused: it would continue this run's corpus into their OUT.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "mod.py").write_text("def f(x):\n    return x + 1\n" * 20)
    refused = subprocess.run([*cmd[:2], str(elsewhere), *cmd[3:], "--steps", str(stopped), "--resume"], cwd=REPO,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2
    assert f"is a run on {PROJECT.resolve()}, not on {elsewhere.resolve()}" in refused.stderr
    assert out.read_bytes() == b"previous model" and load_checkpoint(work / "run" / "last.pt").step == stopped
    # Resume with a budget already reached: it continues from last.pt (same corpus) and writes OUT.
    done = subprocess.run([*cmd, "--steps", str(stopped), "--resume"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"from step {stopped}" in done.stdout
    assert load_checkpoint(out).tokenizer.sha256 == load_checkpoint(tiny_ckpt).tokenizer.sha256


def test_each_out_has_its_own_work_folder():
    """A model per project (`OUT=checkpoints/billing.pt`) trains in runs/billing: projects train side by side and
    resume on their own; the default OUT keeps runs/personal."""
    assert finetune.parse_args(["p"]).work == str(Path("runs") / "personal")
    assert finetune.parse_args(["p", "--out", "checkpoints/billing.pt"]).work == str(Path("runs") / "billing")
    assert finetune.parse_args(["p", "--out", "x/billing.pt", "--work", "w"]).work == "w"


def test_bench_passes_options_after_double_dash():
    spec = importlib.util.spec_from_file_location("finetune_bench", REPO / "scripts" / "finetune_bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = bench.parse_args(["/tmp/proj", "--work", "w", "--minutes", "5", "--", "--lr", "3e-4",
                             "--replay-fraction", "0.125"])
    assert args.minutes == 5 and args.finetune_args == ["--lr", "3e-4", "--replay-fraction", "0.125"]
    assert bench.parse_args(["/tmp/proj", "--work", "w"]).finetune_args == []
    # The project-aware requests carry the whole project (the editor's workspace), or only the typed files.
    assert bench.heldout_options(bench.parse_args(["/tmp/proj", "--work", "w"]), ["/tmp/proj/a.py"]) == [
        "--files", "/tmp/proj/a.py", "--protocol", "lines", "project", "--project-root", "/tmp/proj"]
    assert "--project-root" not in bench.heldout_options(
        bench.parse_args(["/tmp/proj", "--work", "w", "--neighbours", "typed"]), ["/tmp/proj/a.py"])
    # Typing from inside the files: python -m evaluate's own option at each place, reports named by the place.
    args = bench.parse_args(["/tmp/proj", "--work", "w", "--places", "0", "0.33", "0.67"])
    assert args.places == [0.0, 0.33, 0.67]
    assert [bench.place_suffix(f) for f in args.places] == ["", "-f33", "-f67"]
    assert evaluate_main.parse_args([*bench.heldout_options(args, ["a.py"], 0.33), "--model", "m.pt"]).start_fraction == 0.33
    assert "--start-fraction" not in bench.heldout_options(args, ["a.py"], 0.0)
    assert bench.parse_args(["/tmp/proj", "--work", "w"]).places == [0.0]  # the first protocol by default
    with pytest.raises(SystemExit):
        bench.parse_args(["/tmp/proj", "--work", "w", "--places", "1.0"])
    # --also: more folders trained on beside the project; finetune.py reads all of them as sources.
    args = bench.parse_args(["/tmp/proj", "--work", "w", "--also", "/tmp/dep1", "/tmp/dep2", "--", "--lr", "3e-4"])
    cmd = bench.finetune_command(args, ["pkg/held.py"], "w/personal.pt")
    parsed = finetune.parse_args(cmd[2:])
    assert parsed.sources == ["/tmp/proj", "/tmp/dep1", "/tmp/dep2"]
    assert parsed.exclude == ["pkg/held.py"] and parsed.lr == 3e-4 and parsed.out == "w/personal.pt"
    assert finetune.parse_args(bench.finetune_command(bench.parse_args(["/tmp/proj", "--work", "w"]), ["a.py"],
                                                      "m.pt")[2:]).sources == ["/tmp/proj"]


def test_the_recipe_budget_is_steps_unless_minutes_are_given():
    """Steps by default (chosen from the corpus once built), so the decay ends inside the budget on any machine."""
    args = finetune.parse_args(["src"])
    assert args.auto_steps and (args.steps, args.minutes) == (0, 0)
    assert not finetune.parse_args(["src", "--steps", "300"]).auto_steps
    args = finetune.parse_args(["src", "--minutes", "3"])
    assert (args.steps, args.minutes) == (0, 3.0)
    for bad in (["--steps", "5", "--minutes", "3"], ["--steps", "0"], ["--minutes", "-1"]):
        with pytest.raises(SystemExit) as e:
            finetune.parse_args(["src", *bad])
        assert e.value.code == 2


def test_make_train_builds_the_replay_corpus_first_when_absent(tmp_path):
    # Without the default corpus the recipe has neither replay nor guard (it forgot ~4 points of the standard
    # projects), so `make train SOURCES=...` builds it first, once. A dry run shows what make would run.
    def dry_run(default_data):
        return subprocess.run(["make", "-n", "train", f"SOURCES={PROJECT}", f"DEFAULT_DATA={default_data}"],
                              cwd=REPO, capture_output=True, text=True, check=True).stdout
    missing = tmp_path / "missing"
    out = dry_run(missing)
    assert f"dataset build --out {missing}" in out and f"--replay {missing}" in out
    built = tmp_path / "built"
    (built / "corpus").mkdir(parents=True)
    (built / "corpus" / "meta.json").write_text("{}")
    out = dry_run(built)
    assert "dataset build" not in out and f"scripts/finetune.py {PROJECT}" in out and f"--replay {built}" in out


def test_the_budget_grows_with_the_code_up_to_what_fits_the_minutes():
    r = finetune.RECIPE
    per_step = 8 * 0.25 * 256  # project tokens a step: 8 rows, 6 of them replayed
    fast = dict(project_tokens_per_step=per_step, seconds_per_step=0.4, seconds_per_validation=3.0, eval_every=25)
    assert finetune.budget_steps(100_000, **fast) == r["steps"]  # a small project: the 540 steps measured
    assert finetune.budget_steps(300_000, **fast) == 762  # 1.3 passes over 300K tokens
    assert finetune.budget_steps(645_000, **fast) == r["max_steps"]  # celery: the 1,620 steps measured
    assert finetune.budget_steps(40_000_000, **{**fast, "seconds_per_step": 0.0, "seconds_per_validation": 0.0}) \
        == r["max_steps"]  # a GPU: the passes alone, capped
    slow = {**fast, "seconds_per_step": 0.85, "seconds_per_validation": 5.0}  # fp32 on a 2-core AVX2 CPU
    steps = finetune.budget_steps(645_000, **slow)
    assert r["steps"] < steps < r["max_steps"]
    assert steps * (0.85 + 5.0 / 25) <= r["budget_minutes"] * 60 < (steps + 25) * (0.85 + 5.0 / 25)
    assert finetune.budget_steps(645_000, **{**slow, "seconds_per_step": 5.0}) == r["steps"]  # never below 540


def test_the_budget_is_measured_on_the_built_corpus_and_kept_on_resume(tiny_ckpt, tmp_path, capsys):
    init = load_checkpoint(tiny_ckpt)
    data, run = tmp_path / "data", tmp_path / "run"
    build_personal_corpus([PROJECT], data, init.tokenizer, valid_fraction=0.2)
    args = finetune.parse_args([str(PROJECT), "--threads", "1"])
    seq_len = min(finetune.RECIPE["seq_len"], init.config.max_len)  # as main() gives it
    assert finetune.auto_budget(args, init, data, run, replay="", seq_len=seq_len) == finetune.RECIPE["steps"]
    assert re.search(r"budget: 540 steps \(1.3 passes over your code's [0-9,]+ tokens.* s a step",
                     capsys.readouterr().out)
    # an interrupted run continues with the budget it started with, whatever this machine measures now
    save_checkpoint(run / "last.pt", init.model, init.config, init.tokenizer, step=3,
                    train_config={**init.train_config, "steps": 777} if init.train_config else {"steps": 777})
    resumed = finetune.parse_args([str(PROJECT), "--resume"])
    assert load_checkpoint(run / "last.pt").train_config["steps"] == 777
    assert finetune.auto_budget(resumed, init, data, run, replay="", seq_len=seq_len) == 777


def test_typing_gain_types_the_held_out_files_with_the_project_as_context(tiny_ckpt, tmp_path):
    """evaluate/gain.py: the held-out files (never their training neighbours) are typed, each with the project's
    other files as input_extra; one checkpoint against itself gains exactly nothing."""
    from evaluate.gain import held_out_requests, typing_gain
    ckpt = load_checkpoint(tiny_ckpt)
    meta = build_personal_corpus([PROJECT], tmp_path / "data", ckpt.tokenizer, valid_fraction=0.3)
    manifest = __import__("json").loads((tmp_path / "data" / "corpus" / "manifest.json").read_text())
    held = {f["path"] for f in manifest["files"] if f["split"] == "valid"}
    trained = {f["path"] for f in manifest["files"] if f["split"] == "train"}
    assert held and trained
    requests = held_out_requests(tmp_path / "data", max_chars=10**6, chars_per_file=300)
    assert len(requests) == meta["splits"]["valid"]["files"]
    sources = {p: (PROJECT / p).read_text() for p in held | trained}
    for text, extra in requests:
        typed_from = [p for p in held if sources[p].startswith(text)]
        assert len(typed_from) == 1 and len(text) <= 300  # the top of one held-out file, cut at a line end
        names = {name for name, _ in extra}
        assert typed_from[0] not in names and trained <= names  # its project's other files, not itself
    assert len(held_out_requests(tmp_path / "data", max_chars=1, chars_per_file=300)) == 1  # stops at max_chars
    gain = typing_gain(tiny_ckpt, tiny_ckpt, tmp_path / "data", max_chars=600, chars_per_file=300)
    assert gain.chars > 0 and gain.start_keystrokes == gain.tuned_keystrokes
    assert gain.start_keystrokes <= gain.chars and "(+0.0 points" in gain.summary()


def test_the_typing_report_says_when_a_few_files_cannot_tell_the_gain_from_none():
    from evaluate.gain import TypingGain

    def gain(tuned_keys: list[int]) -> TypingGain:
        start = {str(i): (1000, 500) for i in range(len(tuned_keys))}
        tuned = {str(i): (1000, k) for i, k in enumerate(tuned_keys)}
        return TypingGain(start_counts=start, tuned_counts=tuned)
    sure = gain([470, 460, 480, 455, 475]).summary()  # every file gains 2-4.5 points
    assert "(+3.2 points, 95 % interval +2." in sure and "not told apart" not in sure
    unsure = gain([420, 560, 470, 540, 500]).summary()  # +0.2 on average, files both ways
    assert "(+0.2 points, 95 % interval -" in unsure and "on 5 files not told apart from no gain" in unsure
    assert "interval" not in gain([470, 450]).summary()  # two files: too few to resample


def test_a_single_file_project_holds_out_its_tail_under_the_name_it_is_written(tiny_ckpt, tmp_path):
    """One file: its last tenth is the held-out record, and the manifest names the file as written, so the split's
    files (dataset.corpus.split_files) exist and can be typed."""
    from dataset.corpus import split_files
    from evaluate.gain import held_out_requests
    src = tmp_path / "src"
    src.mkdir()
    (src / "only.py").write_text((PROJECT / "inventory" / "store.py").read_text())
    build_personal_corpus([src], tmp_path / "data", load_checkpoint(tiny_ckpt).tokenizer, valid_fraction=0.2)
    valid = split_files(tmp_path / "data", "valid")
    assert [p.name for _, p in valid] == ["only.tail.py"] and all(p.is_file() for _, p in valid)
    assert len(held_out_requests(tmp_path / "data")) == 1


def test_a_failed_typing_report_keeps_the_written_model_and_exit_code(tiny_ckpt, tmp_path, capsys, monkeypatch):
    """The report comes after OUT is written: its failure is a warning, not a failed run."""
    import evaluate.gain

    def broken(*args, **kwargs):
        raise OSError("disk gone")
    monkeypatch.setattr(evaluate.gain, "typing_gain", broken)
    out = tmp_path / "personal.pt"
    rc = finetune.main([str(PROJECT), "--init", str(tiny_ckpt), "--out", str(out), "--work", str(tmp_path / "w"),
                        "--steps", "4", "--eval-every", "2", "--batch-size", "4", "--valid-fraction", "0.2",
                        "--no-progress", "--replay", "", *IN_PROCESS])
    assert rc == 0
    assert "warning: could not type the held-out files (OSError: disk gone)" in capsys.readouterr().err
    assert load_checkpoint(out).step >= 0


def test_if_changed_skips_a_run_on_the_same_code_and_trains_on_changed_code(tiny_ckpt, tmp_path, capsys):
    """A scheduled job: `--if-changed` does nothing while OUT was fine-tuned from this --init on this code with
    these settings."""
    import shutil
    project = tmp_path / "proj"
    shutil.copytree(PROJECT, project)
    out = tmp_path / "personal.pt"
    args = [str(project), "--init", str(tiny_ckpt), "--out", str(out), "--work", str(tmp_path / "w"), "--steps", "4",
            "--eval-every", "2", "--batch-size", "4", "--no-progress", "--replay", "", "--typing-chars", "0",
            "--if-changed", *IN_PROCESS]
    assert finetune.main(args) == 0  # no OUT yet: it trains
    first = out.read_bytes()
    assert load_checkpoint(out).meta["code_sha256"] == load_meta(tmp_path / "w" / "data")["personal"]["code_sha256"]
    capsys.readouterr()
    some = sorted(project.rglob("*.py"))[0]
    os.utime(some, (1, 1))  # touched, not changed: the digest is of the text
    assert finetune.main(args) == 0
    assert "none changed since) with these settings: nothing to do" in capsys.readouterr().out
    assert out.read_bytes() == first
    assert finetune.main([*args, "--lr", "1e-3"]) == 0  # other settings: it trains
    assert "nothing to do" not in capsys.readouterr().out
    assert out.read_bytes() != first
    assert finetune.main([*args, "--lr", "1e-3"]) == 0  # and then it is that run's OUT
    assert "nothing to do" in capsys.readouterr().out
    first = out.read_bytes()
    args = [*args, "--lr", "1e-3"]
    some.write_text(some.read_text() + "\n\ndef added_later(x):\n    return x + 1\n")
    assert finetune.main(args) == 0
    assert "nothing to do" not in capsys.readouterr().out
    assert out.read_bytes() != first


def test_a_refused_write_names_the_file_and_leaves_out_untouched(tiny_ckpt, tmp_path):
    """A full disk, as the kernel reports it to an unprivileged test: files over RLIMIT_FSIZE get EFBIG (Python
    ignores SIGXFSZ). The corpus fits; the first checkpoint (best.pt at step 0, ~1.5 MB) does not."""
    import resource
    import sys
    out, work = tmp_path / "personal.pt", tmp_path / "w"
    out.write_bytes(b"previous model")

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "finetune.py"), str(PROJECT), "--init", str(tiny_ckpt),
                           "--out", str(out), "--work", str(work), "--steps", "4", "--batch-size", "2",
                           "--no-progress", "--replay", "", "--typing-chars", "0"],
                          cwd=REPO, capture_output=True, text=True, timeout=120, preexec_fn=small_files)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert re.search(r"error: \[Errno 27\] could not write \S+best\.pt \([0-9.]+ MB\): File too large", done.stderr), \
        done.stderr
    assert out.read_bytes() == b"previous model"
    assert (work / "data" / "corpus" / "train.npy").is_file()  # the corpus was written
    assert not list(work.rglob("*.tmp"))  # no temporary file of the refused write left
