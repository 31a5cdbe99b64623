"""Adapt the shipped model to your own code: `make train SOURCES="DIR [DIR ...]"` runs this.

    python scripts/finetune.py ~/code/proj1 ~/code/proj2 --out checkpoints/personal.pt [--steps 540 | --minutes M]

1. corpus of the folders' .py files (cleaned like the default corpus), encoded with the starting
   checkpoint's tokenizer (no new BPE); a held-out slice of the files (--valid-fraction) is the validation
   split;
2. `train.py --init CKPT` on it with the recipe chosen by measurement (docs/training.md): lr 2e-4, short
   warmup, cosine decay over the budget, part of every batch replayed from the default corpus when it is
   built (6 of 8 rows, against forgetting), validation on the held-out slice every --eval-every steps, early stopping
   and best.pt = the best held-out loss (never worse than the starting model) among the steps whose loss on
   the default corpus's validation rose at most --guard-rise (4.5 %) over the start's (train.py --guard);
   a step budget, so that the cosine decay ends inside it (a wall-clock budget ends it at a different step
   on every machine: at 10 minutes on one thread, or 7 minutes on two, early stopping fired while the rate
   was still high and the model kept what it had shaken loose; docs/training.md): 540 steps for a small
   project, more for a large one (budget_steps: 1.3 passes over your code, at most 1,620 steps and what fits
   15 minutes at the speed measured here before the run);
3. OUT = best.pt exported (fp16), written atomically: a failed or interrupted run leaves OUT untouched;
   `--resume` continues an interrupted run from WORK/run/last.pt;
4. what it saves in the editor: up to --typing-chars (4,000) characters of the held-out files typed with the
   starting and the fine-tuned model, the project as context (evaluate/gain.py), keystrokes saved printed last.

Exit codes: 0 done, 1 a write refused (a full disk: the message names the file and the space left; OUT
untouched), 2 bad input (missing folder, no .py files or notebooks, nothing usable, bad checkpoint, WORK in use by
another run), 130/143 interrupted (OUT untouched; run again with --resume).

The run takes only the CPU time the server and the editor leave (--priority idle, cpu_priority.py), and one
run at a time holds WORK (dataset/folder_lock.py).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import statistics
import sys
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from dataset.corpus import corpus_dir, load_meta  # noqa: E402
from dataset.encode import file_sha256  # noqa: E402
from dataset.folder_lock import FolderBusy, folder_lock  # noqa: E402
from dataset.personal import (MAX_VALID_CHARS, SourceError, build_personal_corpus, code_digest,  # noqa: E402
                              source_path)
from models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint  # noqa: E402
from cpu_priority import PRIORITIES, lower_priority  # noqa: E402

# The recipe (measured: docs/training.md, "Train on your own code").
RECIPE = {"lr": 2e-4, "warmup": 20, "min_lr_ratio": 0.1, "batch_size": 8, "seq_len": 256, "dropout": 0.1,
          # No dropout on the attention weights: on a CPU the fused attention kernel then runs (dropout needs the
          # unfused one and a random mask of batch x heads x 256 x 256): 1.35x faster steps, more of them in the minutes
          "attn_dropout": 0.0,
          "weight_decay": 0.1, "eval_every": 25, "patience": 4, "replay_fraction": 0.75,
          "guard_rise": 0.045, "steps": 540,
          # The budget grows with your code (budget_steps): about 1.3 passes over it, from the 540 steps measured on
          # small projects up to 1,620 steps, and no more than fits 15 minutes on this machine.
          "passes": 1.3, "max_steps": 1620, "budget_minutes": 15.0,
          # A checkpoint trained to fill in the middle keeps doing it on your code (its FIM rate)
          "fim_rate": 0.5,
          # The run ends by typing this much of your held-out files with both models (evaluate/gain.py): bits per
          # character do not say what the editor will save with your project as context (~1 minute on one thread)
          "typing_chars": 4000}


def budget_steps(train_tokens: int, project_tokens_per_step: float, seconds_per_step: float,
                 seconds_per_validation: float, eval_every: int) -> int:
    """The step budget when none is given: as many steps as RECIPE["passes"] passes over your code need (a step
    trains on batch x (1 - replay) x seq_len tokens of it), at least RECIPE["steps"], at most RECIPE["max_steps"],
    and no more than fit RECIPE["budget_minutes"] of steps and validations (one every eval_every steps) at this
    machine's speed (cut to a multiple of eval_every when the minutes decide).

    Why: 540 steps are 2.8-5 passes over a small project (marshmallow, sqlparse, dateutil; twice the steps
    gained within a point there), but 0.4 of a pass over celery's 645K tokens, where 1,620 steps (1.3 passes)
    gained 1.8 more points on its held-out files (docs/training.md "A budget that grows with your code").
    The steps stay fixed for the run once chosen, so the cosine decay still ends inside the budget."""
    want = math.ceil(RECIPE["passes"] * train_tokens / project_tokens_per_step)
    steps = min(max(want, RECIPE["steps"]), RECIPE["max_steps"])
    per_step = seconds_per_step + seconds_per_validation / eval_every
    if per_step <= 0:  # not measured (a GPU)
        return steps
    fits = int(RECIPE["budget_minutes"] * 60 / per_step) // eval_every * eval_every
    return max(RECIPE["steps"], min(steps, fits))


def measure_step_seconds(init, batch_size: int, seq_len: int, precision: str, dropout: float,
                         attn_dropout: float) -> float:
    """Seconds of one training step of the init checkpoint's architecture at this batch on this machine, in the
    precision train.py will use: the median of five timed steps after three warm-up steps (random weights and
    tokens, ~6 s). Measured on a 2-core AMD EPYC VM, 2 threads, before celery's runs:
    - Three warm-up steps, because a new process's first steps are slow: after one, the probe read 0.96 s where
      the run's steps took 0.68-0.77 s.
    - The median, not the fastest: this VM's speed varies from minute to minute, and the fastest of five read
      0.54 s before a run whose steps took 0.62-0.75 s, a budget 25 % too long (the fastest of three: 0.70 and
      0.78 s before runs at 0.68 and 0.66 s). Nor the mean: with four short jobs beside it, the mean of two read
      1.79 s where the run then took 0.76 s.
    """
    from benchmarks.train_speed import step_seconds
    config = replace(init.config, dropout=dropout, attn_dropout=attn_dropout)  # seq_len <= its max_len (main)
    return statistics.median(step_seconds(config, batch_size, seq_len, 5, bf16=precision == "bf16", warmup=3))


def measure_validation_seconds(init, data: Path, batch_size: int, seq_len: int, precision: str) -> float:
    """Seconds a validation spends on one token, measured as train.py validates: `train.Validation` of the init
    model on the first 8 windows of each of the built held-out split's streams (~2 s), the mean of two. The
    run's own code, not a forward of random tokens: at celery's run's start such a forward read 4.7 s for the
    49K held-out and guard tokens, where the run's validations took 6.5 s (this way: 6.1-6.9 s)."""
    import time
    import torch
    import train
    from dataset.corpus import load_split
    cfg = train.TrainConfig(data=str(data), batch_size=batch_size, seq_len=seq_len,
                            eval_tokens=8 * batch_size * seq_len + 1)
    validation = train.Validation(load_split(str(data), "valid"), init.tokenizer, cfg)
    model = init.model.float()
    seconds = []
    for _ in range(2):
        t0 = time.perf_counter()
        validation(model, torch.device("cpu"), precision)
        seconds.append(time.perf_counter() - t0)
    return statistics.mean(seconds) / validation.tokens.size


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/finetune.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("sources", nargs="*", help="folders of your Python code")
    p.add_argument("--init", default="checkpoints/default.pt", help="checkpoint to start from")
    p.add_argument("--out", default="checkpoints/personal.pt", help="the fine-tuned model (for make serve MODEL=)")
    p.add_argument("--work", default=None,
                   help="corpus and run folder (last.pt, best.pt); default runs/NAME for --out .../NAME.pt "
                        "(runs/personal for the default --out), so that each project's model has its own run: "
                        "trained side by side, resumed on its own")
    p.add_argument("--steps", type=int, default=argparse.SUPPRESS,
                   help=f"step budget, the learning rate decays over it (default: from your code's size, "
                        f"{RECIPE['passes']} passes, {RECIPE['steps']} to {RECIPE['max_steps']} steps, at most "
                        f"{RECIPE['budget_minutes']:.0f} minutes on this machine; budget_steps)")
    p.add_argument("--minutes", type=float, default=argparse.SUPPRESS,
                   help="a wall-clock budget instead of --steps (the decay then follows the time used)")
    p.add_argument("--replay", default="data/default-model",
                   help="corpus replayed against forgetting (same tokenizer); skipped when not built")
    p.add_argument("--replay-fraction", type=float, default=RECIPE["replay_fraction"])
    p.add_argument("--guard-rise", type=float, default=RECIPE["guard_rise"],
                   help="the replay corpus's valid loss may rise at most this much (relative) in best.pt; 0: no guard")
    p.add_argument("--valid-fraction", type=float, default=0.1,
                   help=f"share of your files held out for validation (at most {MAX_VALID_CHARS:,} characters "
                        f"of them)")
    p.add_argument("--lr", type=float, default=RECIPE["lr"])
    p.add_argument("--fim-rate", type=float, default=RECIPE["fim_rate"],
                   help="share of windows in fill-in-the-middle order (only for a checkpoint with FIM tokens)")
    p.add_argument("--warmup", type=int, default=RECIPE["warmup"])
    p.add_argument("--batch-size", type=int, default=RECIPE["batch_size"])
    p.add_argument("--eval-every", type=int, default=RECIPE["eval_every"])
    p.add_argument("--patience", type=int, default=RECIPE["patience"], help="0: no early stopping")
    p.add_argument("--dropout", type=float, default=RECIPE["dropout"])
    p.add_argument("--attn-dropout", type=float, default=RECIPE["attn_dropout"], help="< 0: the same as --dropout")
    p.add_argument("--exclude", nargs="*", default=[], metavar="PATH",
                   help="relative paths left out of the corpus (benchmarks hold files out this way)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--priority", choices=PRIORITIES, default="idle",
                   help="CPU priority of the whole run: idle (the default) takes only the CPU time the server and "
                        "the editor leave (cpu_priority.py), low is nice 19, normal competes with them")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue WORK/run/last.pt (corpus reused)")
    p.add_argument("--no-progress", action="store_true", help="log lines instead of a progress bar")
    p.add_argument("--if-changed", action="store_true",
                   help="do nothing (exit 0) when OUT was fine-tuned from this --init on exactly this code with these "
                        "settings: for a scheduled job (OUT's meta keeps the digests)")
    p.add_argument("--typing-chars", type=int, default=RECIPE["typing_chars"], metavar="N",
                   help="at the end, type up to N characters of the held-out files with the starting and the "
                        "fine-tuned model, the project as context, and print the keystrokes saved (0: skip)")
    args = p.parse_args(argv)
    if args.work is None:
        args.work = str(Path("runs") / Path(args.out).stem)
    steps, minutes = getattr(args, "steps", None), getattr(args, "minutes", None)
    if steps is not None and minutes is not None:
        p.error("give --steps or --minutes, not both")
    args.auto_steps = steps is None and minutes is None  # budget_steps decides once the corpus is built
    args.steps, args.minutes = steps or 0, minutes or 0.0
    if args.steps < 0 or args.minutes < 0 or not (args.steps or args.minutes or args.auto_steps):
        p.error("the budget must be positive: --steps N or --minutes M")
    return args


def auto_budget(args, init, data: Path, run: Path, replay: str, seq_len: int) -> int:
    """budget_steps for this corpus and machine; on --resume the budget the interrupted run started with."""
    last = run / "last.pt"
    if args.resume and last.is_file():
        steps = (load_checkpoint(last).train_config or {}).get("steps", 0)
        if steps:
            return steps
    import torch
    import train
    meta = load_meta(data)
    project_share = 1.0 - (args.replay_fraction if replay else 0.0)
    valid_tokens = meta["splits"]["valid"]["tokens"] + (train.TrainConfig.guard_tokens if replay else 0)
    if torch.cuda.is_available():  # a GPU's steps take milliseconds: the passes alone decide
        step_s, valid_s = 0.0, 0.0
    else:  # both probes in the threads and the precision the run will use
        torch.set_num_threads(args.threads)
        precision = train.resolve_precision(train.TrainConfig(model=init.config.arch), torch.device("cpu"))
        step_s = measure_step_seconds(init, args.batch_size, seq_len, precision, args.dropout, args.attn_dropout)
        valid_s = valid_tokens * measure_validation_seconds(init, data, args.batch_size, seq_len, precision)
    steps = budget_steps(meta["splits"]["train"]["tokens"], args.batch_size * project_share * seq_len, step_s,
                         valid_s, args.eval_every)
    print(f"budget: {steps} steps ({RECIPE['passes']} passes over your code's "
          f"{meta['splits']['train']['tokens']:,} tokens, {RECIPE['steps']} to {RECIPE['max_steps']}, at most "
          f"{RECIPE['budget_minutes']:.0f} minutes here: {step_s:.2f} s a step, {valid_s:.1f} s a validation)",
          flush=True)
    return steps


# What decides the fine-tuned weights besides the code and the starting file (not threads, priority, reports)
RUN_SETTINGS = ("lr", "warmup", "batch_size", "replay", "replay_fraction", "guard_rise", "valid_fraction", "fim_rate",
                "dropout", "attn_dropout", "eval_every", "patience", "seed", "exclude", "minutes")


def run_fingerprint(args, code_sha256: str) -> dict:
    """The digests `--if-changed` compares, kept in OUT's meta: the code, the starting file, the settings."""
    settings = {k: getattr(args, k) for k in RUN_SETTINGS}
    settings["exclude"] = sorted(settings["exclude"])
    settings["steps"] = "auto" if args.auto_steps else args.steps  # the measured budget varies with the machine
    return {"code_sha256": code_sha256, "init_sha256": file_sha256(args.init),
            "settings_sha256": hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()}


def already_trained(out: str, fingerprint: dict) -> bool:
    """OUT exists and was fine-tuned with this fingerprint (the same code, starting file and settings)."""
    if not Path(out).is_file():
        return False
    try:
        meta = load_checkpoint(out).meta or {}
    except CheckpointError:  # unreadable: a new run replaces it
        return False
    return all(meta.get(k) == v for k, v in fingerprint.items())


def held_out_change(meta: dict) -> str:
    """The starting model's and the written model's held-out figures, as the user reads them."""
    bpc, start = meta.get("valid_bpc", float("nan")), meta.get("init_valid_bpc")
    if start is None:  # a checkpoint from before train.py recorded the start
        return f"{bpc:.3f} bits/char"
    return f"{start:.3f} -> {bpc:.3f} bits/char ({bpc / start - 1:+.1%} against the starting model)"


def main(argv=None) -> int:
    args = parse_args(argv)
    # before the corpus and torch's threads: all of the run inherits it
    print(f"priority: {lower_priority(args.priority)}", flush=True)
    try:
        with folder_lock(Path(args.work), "finetune", wait=False):  # a second run on WORK would clobber this one's
            return finetune(args)
    except FolderBusy as e:
        print(f"error: {e}; nothing written to {args.out}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a folder it may not write: OUT, written last and atomically, is untouched
        last = Path(args.work) / "run" / "last.pt"
        hint = f"; {last} keeps the last step saved: make room and run again with --resume" if last.is_file() else ""
        print(f"error: {e}; nothing written to {args.out}{hint}", file=sys.stderr)
        return 1


def finetune(args) -> int:
    work = Path(args.work)
    data, run = work / "data", work / "run"
    try:
        init = load_checkpoint(args.init)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # ---- corpus (reused as it is on --resume, so the run continues on the same token arrays)
    if not (args.resume and (data / "corpus" / "meta.json").is_file() and (run / "last.pt").is_file()):
        try:
            from dataset.personal import gather
            described: list[dict] = []
            records = gather(args.sources, described=described)  # fail on bad input before touching WORK
            excluded = set(args.exclude)
            kept = [r for r in records if r["path"] not in excluded]  # as the corpus will hold them
            if args.if_changed and already_trained(args.out, run_fingerprint(args, code_digest(kept))):
                print(f"{args.out} was fine-tuned from {args.init} on this code ({len(kept):,} files, none "
                      f"changed since) with these settings: nothing to do", flush=True)
                return 0
            shutil.rmtree(data, ignore_errors=True)
            shutil.rmtree(run, ignore_errors=True)
            meta = build_personal_corpus(args.sources, data, init.tokenizer, valid_fraction=args.valid_fraction,
                                         exclude=set(args.exclude), progress=not args.no_progress,
                                         gathered=(records, described))
        except SourceError as e:
            print(f"error: {e}; nothing written to {args.out}", file=sys.stderr)
            return 2
        sp = meta["splits"]
        for src in meta["sources"]:
            for warning in src.get("warnings", []):
                print(f"warning: {warning}", file=sys.stderr, flush=True)
            notebooks = src.get("notebooks", 0)
            print(f"{src['path']}: {src['py_files']:,} .py files"
                  + (f", {notebooks:,} notebooks" if notebooks else "") + (
                f" (git: its ignore rules leave out {src['files_ignored']:,} more)" if src["files_ignored"]
                else " (git)" if src["listed_by"] == "git" else ""), flush=True)
        print(f"corpus: {sp['train']['files']} train files ({sp['train']['tokens']:,} tokens), "
              f"{sp['valid']['files']} held-out files ({sp['valid']['tokens']:,} tokens) for early stopping, "
              f"tokenizer of {args.init}", flush=True)
    else:  # --resume: the interrupted run goes on, on its own corpus, which must be of these folders
        stored = sorted(src["path"] for src in load_meta(data).get("sources") or [])
        given = sorted(str(source_path(src).resolve()) for src in args.sources)
        if stored != given:
            print(f"error: --resume: {run / 'last.pt'} is a run on {', '.join(stored) or 'other folders'}, "
                  f"not on {', '.join(given) or 'no folder'}: give its folders, or this one its own --work "
                  f"(make train WORK=); nothing written to {args.out}", file=sys.stderr)
            return 2
    replay = ""
    if args.replay and args.replay_fraction > 0:
        try:
            corpus_dir(args.replay)
            replay = args.replay
        except FileNotFoundError:
            print(f"warning: no replay corpus in {args.replay} (`make data-default` builds it): fine-tuning "
                  f"without replay or the guard against forgetting (measured: the standard test projects lost "
                  f"~4 points, docs/training.md)", file=sys.stderr)
    # ---- the step budget: as given, as the interrupted run had it (--resume), or from your code's size
    import train
    seq_len = min(RECIPE["seq_len"], init.config.max_len)
    if args.auto_steps:
        args.steps = auto_budget(args, init, data, run, replay, seq_len)
    cfg = train.TrainConfig(
        data=str(data), out=str(run), init=args.init, resume=args.resume, minutes=args.minutes, steps=args.steps,
        lr=args.lr, warmup=args.warmup, min_lr_ratio=RECIPE["min_lr_ratio"], batch_size=args.batch_size,
        seq_len=seq_len, dropout=args.dropout, attn_dropout=args.attn_dropout,
        weight_decay=RECIPE["weight_decay"], eval_every=args.eval_every, eval_tokens=0, patience=args.patience,
        replay=replay, replay_fraction=args.replay_fraction if replay else 0.0, threads=args.threads,
        guard=replay if args.guard_rise > 0 else "", guard_rise=args.guard_rise,
        fim_rate=args.fim_rate if init.tokenizer.fim_ids is not None else 0.0,
        seed=args.seed, sample_tokens=0, track=False, checkpoint_minutes=1.0, progress_bar=not args.no_progress)
    try:
        train.train(cfg)
    except (FileNotFoundError, ValueError, CheckpointError) as e:
        print(f"error: {e}; nothing written to {args.out}", file=sys.stderr)
        return 2
    except SystemExit as e:  # a signal: last.pt is saved, OUT is untouched
        print(f"interrupted: {args.out} untouched; continue with --resume", file=sys.stderr)
        return int(e.code or 1)
    # ---- export best.pt (the best held-out loss; the starting model if nothing beat it) atomically to OUT
    best = load_checkpoint(run / "best.pt")
    meta = dict(best.meta)
    meta.update({"exported_from": str(run / "best.pt"), "finetuned_from": args.init,
                 **run_fingerprint(args, load_meta(data)["personal"].get("code_sha256")),
                 "sources": [str(source_path(s).resolve()) for s in args.sources],
                 "params": best.model.num_params()})
    save_checkpoint(args.out, best.model, best.config, best.tokenizer, step=best.step,
                    train_config=best.train_config, meta=meta, half=True)
    print(f"wrote {args.out}: step {best.step}; your held-out files: {held_out_change(best.meta)}; "
          f"serve it: make serve MODEL={args.out} (a server serving it already swaps it in within seconds), or "
          f"beside other projects' models: make serve MODELS_DIR={Path(args.out).parent} and "
          f"\"pythonAutocomplete.model\": \"{Path(args.out).stem}\" in the project's .vscode/settings.json",
          flush=True)
    # ---- what it saves in the editor: the held-out files typed by both models (evaluate/gain.py)
    if args.typing_chars > 0:
        from evaluate.gain import typing_gain  # in train.py's threads (--threads)
        print(f"typing up to {args.typing_chars:,} characters of your held-out files with both models "
              f"(--typing-chars 0, make train TYPING_CHARS=0, skips it)...", flush=True)
        try:
            gain = typing_gain(args.init, args.out, data, max_chars=args.typing_chars)
        except KeyboardInterrupt:  # OUT is written whole: only the report is lost
            print(f"typing interrupted; {args.out} is written", file=sys.stderr)
            return 130
        except Exception as e:  # a failed report does not fail the run that wrote OUT
            print(f"warning: could not type the held-out files ({type(e).__name__}: {e}); {args.out} is written",
                  file=sys.stderr)
            return 0
        print(gain.summary() if gain else "no held-out file to type", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
