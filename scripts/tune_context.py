"""Pick the context store's settings by measurement on the VALIDATION split (never the test projects).

    .venv/bin/python scripts/tune_context.py --data data/default-model --files 8 --chars 600 \
        '{}' '{"max_weight": 0.8}' '{"scale_bytes": 6}' '{"context": null}'

Each argument is a JSON object of `ContextConfig` or `PredictorConfig` fields ({"auto_beam_width": 1},
{"max_tokens": {"line": 16}}; {"time_budget_ms": 40}: a time budget per request; {"context": null}: no context store,
{"context_prompt": "before_window" | "none"}: what of the prompt is remembered, {"context_lines": 20}:
today's 20-line prompt, {"extra": false}: no other files); every variant types the same files with the project-aware
protocol (whole text before the cursor + the other files of the project) and prints keystrokes saved and
request latency, and each variant's difference from the first with its paired 95 % interval over the files
(evaluate/confidence.py). Variants run in parallel, one per core (`--jobs`), one torch thread each.
`--projects DIR [DIR ...]` types files of local folders instead (each folder one project), a second validation
set from projects outside the corpus, e.g. unpacked sdists (`pip download --no-binary :all: marshmallow==4.4.0`).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluate.confidence import paired_difference, saved_over  # noqa: E402


def files_of(data: str, split: str, n: int, seed: int, extra_chars: int, projects: list[str] | None = None):
    """(name, text, input_extra) of n files sampled from the split's projects, or from `projects`: local
    folders, each one project (its .py files cleaned as the corpus is: dataset/personal.py)."""
    from evaluate.project import neighbours, split_projects
    if projects:
        from dataset.personal import gather
        members: dict[str, dict[str, str]] = {}
        for r in gather(projects):
            members.setdefault(r["project"], {})[r["path"]] = r["text"]
    else:
        members = {project: {rel: path.read_text(encoding="utf-8") for rel, path in files.items()}
                   for project, files in split_projects(data, split).items()}
    # Files of projects with at least 3 files (a project context to use), at least 1500 characters long.
    pool = [(p, r) for p, m in sorted(members.items()) if len(m) >= 3 for r, t in sorted(m.items()) if len(t) > 1500]
    chosen = random.Random(seed).sample(pool, min(n, len(pool)))
    return [(f"{p}/{r}", members[p][r], neighbours(r, members[p], extra_chars)) for p, r in chosen]


def run_variant(args_tuple):
    model, variant, files, chars, start_fraction = args_tuple
    import torch
    torch.set_num_threads(1)
    from evaluate.context import ContextConfig
    from evaluate.metrics import clip_text, percentile, simulate_typing
    from evaluate.predictor import Predictor, PredictorConfig
    variant = dict(variant)
    config = PredictorConfig()
    if "context" in variant and variant.pop("context") is None:
        config.context = None
    config.context_prompt = variant.pop("context_prompt", "all")
    lines = variant.pop("context_lines", 0)
    use_extra = variant.pop("extra", True)
    budget = variant.pop("time_budget_ms", None)
    from dataclasses import fields
    for f in fields(PredictorConfig):  # PredictorConfig fields (auto_beam_width, max_tokens, ...)
        if f.name in variant and f.name != "context":
            value = variant.pop(f.name)
            if f.name == "max_tokens":
                value = {**config.max_tokens, **value}
            elif f.name in ("names", "imports") and isinstance(value, dict):  # {"names": {"min_share": 0.5}}
                value = replace(getattr(config, f.name), **value)
            setattr(config, f.name, value)
    if config.context is not None:
        if "segment_weights" in variant:
            variant["segment_weights"] = tuple(variant["segment_weights"])
        config.context = replace(ContextConfig(), **variant)
    predictor = Predictor.from_checkpoint(model, config=config)
    if budget is not None:  # what a server started with --time-budget-ms does to every request
        complete = predictor.complete
        predictor.complete = lambda *a, **kw: complete(*a, time_budget_ms=budget, **kw)
    ms = []
    per_file = {}  # name -> (chars, keystrokes)
    for name, text, extra in files:
        start = text.rfind("\n", 0, int(len(text) * start_fraction)) + 1
        end = start + len(clip_text(text[start:], chars))
        predictor.clear_cache()
        r = simulate_typing(predictor, text, None, lines, extra=extra if use_extra else None, start=start, end=end)
        ms += r.request_ms
        per_file[name] = (r.chars, r.keystrokes)
    return saved_over(per_file, per_file), percentile(ms, 50), percentile(ms, 99), per_file


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("variants", nargs="+", help="JSON objects of ContextConfig fields")
    p.add_argument("--model", default="checkpoints/default.pt")
    p.add_argument("--data", default="data/default-model")
    p.add_argument("--split", default="valid")
    p.add_argument("--projects", nargs="+", metavar="DIR",
                   help="type files of these folders (each one project, e.g. unpacked sdists) instead of --data's split")
    p.add_argument("--files", type=int, default=8)
    p.add_argument("--chars", type=int, default=600)
    p.add_argument("--start-fraction", type=float, default=0.3)
    p.add_argument("--extra-chars", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args(argv)
    files = files_of(args.data, args.split, args.files, args.seed, args.extra_chars, args.projects)
    variants = [json.loads(v) for v in args.variants]
    t0 = time.time()
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run_variant, [(args.model, v, files, args.chars, args.start_fraction) for v in variants]))
    source = " ".join(args.projects) if args.projects else f"the {args.split} split"
    print(f"{len(files)} files of {source} ({', '.join(n for n, _, _ in files)}), "
          f"{args.chars} chars each from {args.start_fraction:.0%} into the file, {time.time() - t0:.0f} s\n")
    # Each variant against the first, paired over the same files (evaluate/confidence.py): what the files tell apart.
    print("| variant | keystrokes saved | against the first, 95 % interval | p50 ms | p99 ms | per file |")
    print("|---|---:|---:|---:|---:|---|")
    first = results[0][3]
    for i, (v, (saved, p50, p99, per_file)) in enumerate(zip(args.variants, results)):
        versus = "–"
        if i and len(first) >= 2:
            d = paired_difference(first, per_file)
            versus = f"{100 * d.value:+.1f} ({100 * d.low:+.1f} … {100 * d.high:+.1f})"
        shares = " ".join(f"{1 - k / c:.0%}" if c else "–" for c, k in per_file.values())
        print(f"| `{v}` | {saved:.1%} | {versus} | {p50:.1f} | {p99:.1f} | {shares} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
