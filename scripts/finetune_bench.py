"""Benchmark of `make train SOURCES=...` on a real project the default corpus never saw.

    python scripts/finetune_bench.py /tmp/marshmallow-4.4.0 --minutes 8 --work runs/ft-marshmallow

Holds out a fifth of the project's (cleaned) files, chosen by a hash of their path; fine-tunes the shipped
model on the rest (scripts/finetune.py with --exclude); then types the held-out files with the shipped and
the fine-tuned model, from the top of each file or at `--places` inside it (`python -m evaluate --files ...
--protocol lines project --project-root PROJECT`: the
project-aware requests carry the project's other files, those the model was fine-tuned on among them, as the
editor's workspace context sends them) and the standard held-out
test projects with the fine-tuned model (the command in docs/training.md), and prints the held-out gain with its
95 % interval paired over the files (`python -m evaluate.confidence`) and where it came from, keystroke class by
class (`python -m evaluate.breakdown`). One torch thread throughout.
Prints the commands it runs; their reports are under WORK/eval-*.
"""
from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dataset.personal import gather  # noqa: E402


def held_out_fifth(project: Path) -> list[dict]:
    records = gather([project])
    order = sorted(records, key=lambda r: hashlib.sha256(r["path"].encode()).hexdigest())
    return order[:max(1, round(len(order) / 5))]


def sh(cmd: list[str]) -> None:
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=REPO, check=True)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="after --: extra scripts/finetune.py options, e.g. -- --lr 3e-4")
    p.add_argument("project", type=Path)
    p.add_argument("--work", required=True)
    p.add_argument("--minutes", type=float, default=None,
                   help="a wall-clock budget instead of the recipe's steps (scripts/finetune.py)")
    p.add_argument("--max-chars", type=int, default=1000)
    p.add_argument("--places", type=float, nargs="+", default=[0.0], metavar="F",
                   help="type each held-out file from these fractions of it, the text before present (python -m "
                        "evaluate --start-fraction; reports eval-*-fNN; 0: from the top, the first protocol); with "
                        "several, the gain pooled by file over them is printed last")
    p.add_argument("--eval-files", type=int, default=0, metavar="N",
                   help="type only the first N held-out files (their hash order; a large project's fifth is "
                        "hundreds of files); all of them are still kept out of training")
    p.add_argument("--skip-base", action="store_true", help="the shipped model's held-out figures exist")
    p.add_argument("--skip-standard", action="store_true")
    p.add_argument("--skip-train", action="store_true",
                   help="evaluate WORK/personal.pt as it is (re-measure a run with today's engine)")
    p.add_argument("--neighbours", choices=["project", "typed"], default="project",
                   help="the project protocol's other files: the whole project folder, as the editor's workspace "
                        "sends them (python -m evaluate --project-root; since 2026-12-06), or only the other typed "
                        "held-out files (the protocol before)")
    p.add_argument("--also", nargs="+", default=[], metavar="DIR",
                   help="more folders to fine-tune on beside the project (its dependencies, say); the held-out "
                        "fifth and the project protocol's files are still the project's own")
    p.add_argument("--tag", default="", help="appended to the report folders' names (eval-heldout-ft-TAG, ...)")
    # split at "--" by hand: argparse gives a trailing nargs="*" positional nothing after the first positional
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    args = p.parse_args(argv[:cut])
    if not all(0 <= f < 1 for f in args.places):
        p.error("--places: fractions in [0, 1)")
    args.finetune_args = argv[cut + 1:]
    return args


def place_suffix(fraction: float) -> str:
    """The report folders' suffix of a place: none for the top (the first protocol's names), -f33 for 0.33."""
    return f"-f{round(100 * fraction)}" if fraction > 0 else ""


def heldout_options(args: argparse.Namespace, files: list[str], place: float = 0.0) -> list[str]:
    """`python -m evaluate` options typing the held-out files, 20 lines and project-aware, from the top or from
    `place` (a fraction) of each file; the project-aware requests' other files come from the whole project
    unless --neighbours typed."""
    options = ["--files", *files, "--protocol", "lines", "project"]
    if place > 0:
        options += ["--start-fraction", str(place)]
    if args.neighbours == "project":
        options += ["--project-root", str(args.project.resolve())]
    return options


def finetune_command(args: argparse.Namespace, held_paths: list[str], model: str) -> list[str]:
    """scripts/finetune.py on the project (and the --also folders) without the held-out files, one thread."""
    budget = ["--minutes", str(args.minutes)] if args.minutes is not None else []
    return [sys.executable, "scripts/finetune.py", str(args.project), *map(str, args.also), "--work", str(args.work),
            "--out", model, *budget, "--threads", "1", "--no-progress", "--exclude", *held_paths,
            *args.finetune_args]


def main(argv=None) -> int:
    args = parse_args(argv)
    work = Path(args.work)
    held = held_out_fifth(args.project)
    typed = held[:args.eval_files] if args.eval_files > 0 else held
    files = [str(args.project.resolve() / r["path"]) for r in typed]
    print(f"held out {len(held)} files, typing {len(typed)}: {', '.join(r['path'] for r in typed)}", flush=True)
    py = sys.executable
    model = str(work / "personal.pt")
    if not args.skip_train:
        sh(finetune_command(args, [r["path"] for r in held], model))
    tag = f"-{args.tag}" if args.tag else ""
    evaluate = [py, "-m", "evaluate", "--threads", "1", "--line-samples", "0", "--max-chars", str(args.max_chars)]
    pairs = []  # (the shipped model's report, the fine-tuned model's) at each place
    for place in args.places:
        heldout = heldout_options(args, files, place)
        name = f"{tag}{place_suffix(place)}"
        if not args.skip_base:
            sh([*evaluate, "--model", "checkpoints/default.pt", *heldout, "--out", str(work / f"eval-heldout-base{name}")])
        sh([*evaluate, "--model", model, *heldout, "--out", str(work / f"eval-heldout-ft{name}")])
        base = work / f"eval-heldout-base{name}" / "eval.json"
        if not base.exists():
            base = work / f"eval-heldout-base{place_suffix(place)}" / "eval.json"  # --tag, --skip-base: the untagged
        if base.exists():  # the gain with its paired interval over the held-out files (evaluate/confidence.py)
            pairs.append((str(base), str(work / f"eval-heldout-ft{name}" / "eval.json")))
            sh([py, "-m", "evaluate.confidence", *pairs[-1]])
            sh([py, "-m", "evaluate.breakdown", *pairs[-1]])  # where the gain came from, class by class
    if len(args.places) > 1 and len(pairs) == len(args.places):  # all places pooled by file
        sh([py, "-m", "evaluate.confidence", "+".join(b for b, _ in pairs), "+".join(f for _, f in pairs)])
    if not args.skip_standard:
        sh([*evaluate, "--model", model, "--data", "data/default-model", "--split", "test", "--max-files", "12",
            "--protocol", "lines", "--out", str(work / f"eval-standard-ft{tag}")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
