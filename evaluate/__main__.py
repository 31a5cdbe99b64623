"""`python -m evaluate --model CKPT --data DIR`: keystrokes saved, bits/char, accuracy, line completion.

    python -m evaluate --model checkpoints/default.pt --data data --split test --max-files 8 --out reports/eval
    python -m evaluate --model runs/x/best.pt --files my_module.py other.py --kind auto line word

Prints a markdown table (per file and overall) and writes to --out: eval.json (every figure), and per
file <name>.keystrokes.html (accepted vs typed characters) and <name>.surprise.html (-log2 p map).
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

import torch

from .metrics import (char_surprise, clip_text, line_completion, line_scores, percentile, simulate_typing,
                      token_stats)
from .predictor import Predictor, PredictorConfig
from .remote import RemotePredictor
from .views import keystrokes_html, surprise_html

KIND_NAMES = {"auto": None, "word": "word", "line": "line", "block": "block"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="checkpoint (.pt) to evaluate")
    p.add_argument("--data", default="data", help="corpus folder (holding corpus/) for --split")
    p.add_argument("--split", default="test", choices=["train", "valid", "test"], help="held-out split to use")
    p.add_argument("--files", nargs="+", help="evaluate these .py files instead of a split")
    p.add_argument("--kind", nargs="+", default=["auto"], choices=list(KIND_NAMES),
                   help="completion kinds to simulate typing with (auto = the default kind)")
    p.add_argument("--max-files", type=int, default=8, help="files sampled from the split (0: all)")
    p.add_argument("--max-chars", type=int, default=2000, help="characters typed per file (cut at a line end)")
    p.add_argument("--context-lines", type=int, default=20, help="lines before the cursor sent as the prompt")
    p.add_argument("--line-samples", type=int, default=200, help="random line cuts for line completion")
    p.add_argument("--cache-size", type=int, default=32, help="prefix cache entries (0 disables it)")
    p.add_argument("--beam-width", type=int, default=PredictorConfig.beam_width,
                   help="beams for the word/line/block kinds")
    p.add_argument("--auto-beam-width", type=int, default=PredictorConfig.auto_beam_width,
                   help="beams for the default kind (1: greedy)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--server", metavar="URL",
                   help="type through a running completion server (e.g. http://127.0.0.1:5000) instead of an "
                        "in-process predictor; --model still gives bits/char and accuracy")
    p.add_argument("--token", help="API token for --server")
    p.add_argument("--out", default="reports/eval", help="folder for eval.json and the HTML views")
    args = p.parse_args(argv)
    for name in ("max_files", "max_chars", "context_lines", "line_samples", "cache_size", "beam_width",
                 "auto_beam_width"):
        if getattr(args, name) < 0 or (name in ("context_lines", "beam_width", "auto_beam_width")
                                       and getattr(args, name) < 1):
            p.error(f"--{name.replace('_', '-')} must be positive")
    return args


def load_texts(args) -> dict[str, str]:
    """name -> text of the files to evaluate."""
    if args.files:
        paths = [(Path(f).name, Path(f)) for f in args.files]
        for _, path in paths:
            if not path.is_file():
                raise SystemExit(f"error: no such file: {path}")
    else:
        from dataset.corpus import split_files
        try:
            found = split_files(args.data, args.split)
        except FileNotFoundError as e:
            raise SystemExit(f"error: {e}")
        if not found:
            raise SystemExit(f"error: the {args.split} split of {args.data} has no files")
        found = sorted(found, key=lambda pf: str(pf[1]))
        if args.max_files and len(found) > args.max_files:
            found = sorted(random.Random(args.seed).sample(found, args.max_files), key=lambda pf: str(pf[1]))
        paths = [(f"{project}/{path.name}", path) for project, path in found]
    texts = {}
    for name, path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            print(f"skipping {path}: not UTF-8", file=sys.stderr)
            continue
        text = text.replace("\r\n", "\n")
        if text.strip():
            texts[name] = text
    if not texts:
        raise SystemExit("error: no non-empty UTF-8 files to evaluate")
    return texts


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def evaluate(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    config = PredictorConfig(cache_size=args.cache_size, beam_width=args.beam_width,
                             auto_beam_width=args.auto_beam_width)
    predictor = Predictor.from_checkpoint(args.model, config=config)
    model, tokenizer = predictor.model, predictor.tokenizer
    # What the typing simulation and line completion ask: this process's predictor, or the server.
    completer = RemotePredictor(args.server, args.token) if args.server else predictor
    texts = load_texts(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    chunk = model.max_context or 512
    report = {"model": str(args.model), "server": args.server, "beam_width": args.beam_width, "auto_beam_width": args.auto_beam_width, "split": None if args.files else args.split, "files": [],
              "kinds": args.kind, "context_lines": args.context_lines, "max_chars": args.max_chars}
    totals = {k: [0, 0] for k in args.kind}  # kind -> [chars, keystrokes]
    all_ms = {k: [] for k in args.kind}
    bits = tokens = correct = chars = 0
    t_start = time.time()
    for name, text in texts.items():
        row = {"file": name}
        typed = clip_text(text, args.max_chars)
        for i, kind in enumerate(args.kind):
            completer.clear_cache()
            r = simulate_typing(completer, typed, KIND_NAMES[kind], args.context_lines)
            totals[kind][0] += r.chars
            totals[kind][1] += r.keystrokes
            all_ms[kind] += r.request_ms
            row[f"saved_{kind}"] = r.saved
            row["chars_typed"] = r.chars
            row[f"p50_ms_{kind}"] = percentile(r.request_ms, 50)
            if i == 0:
                (out / f"{_safe(name)}.keystrokes.html").write_text(
                    keystrokes_html(f"{name}: keystrokes ({kind})", typed, r.accepted, r.saved), encoding="utf-8")
        stats = token_stats(model, tokenizer, text, chunk)
        row.update(chars=stats.chars, tokens=stats.tokens, bits_per_char=stats.bits_per_char,
                   accuracy=stats.correct / max(stats.tokens, 1))
        bits, tokens, correct, chars = bits + stats.bits, tokens + stats.tokens, correct + stats.correct, chars + stats.chars
        (out / f"{_safe(name)}.surprise.html").write_text(
            surprise_html(f"{name}: surprise", text, char_surprise(tokenizer, text, stats), stats.bits_per_char),
            encoding="utf-8")
        report["files"].append(row)
        print(f"{name}: " + ", ".join(f"saved[{k}] {row[f'saved_{k}']:.1%}" for k in args.kind)
              + f", {row['bits_per_char']:.3f} bits/char ({time.time() - t_start:.0f} s)", file=sys.stderr, flush=True)
    completer.clear_cache()
    samples = line_completion(completer, texts, args.line_samples, args.seed, args.context_lines)
    report["overall"] = {
        "files": len(texts),
        **{f"saved_{k}": 1 - ks / c if c else 0.0 for k, (c, ks) in totals.items()},
        **{f"p50_ms_{k}": percentile(all_ms[k], 50) for k in args.kind},
        **{f"p90_ms_{k}": percentile(all_ms[k], 90) for k in args.kind},
        **{f"p99_ms_{k}": percentile(all_ms[k], 99) for k in args.kind},
        "chars_typed": sum(c for c, _ in totals.values()) // max(len(totals), 1),
        "bits_per_char": bits / max(chars, 1), "accuracy": correct / max(tokens, 1), "tokens": tokens,
        "line_completion": line_scores(samples),
        "seconds": time.time() - t_start,
    }
    report["line_samples"] = [s.__dict__ for s in samples[:50]]
    report["predictor"] = completer.stats()
    (out / "eval.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report


def table(report: dict) -> str:
    kinds = report["kinds"]
    head = "| file | chars typed | " + " | ".join(f"saved ({k})" for k in kinds) + " | bits/char | next-token acc |"
    lines = [head, "|" + "---|" * (4 + len(kinds))]
    for r in report["files"]:
        lines.append(f"| {r['file']} | {r['chars_typed']} | " + " | ".join(f"{r[f'saved_{k}']:.1%}" for k in kinds)
                     + f" | {r['bits_per_char']:.3f} | {r['accuracy']:.1%} |")
    o = report["overall"]
    lines.append(f"| **overall ({o['files']} files)** | {o['chars_typed']} | "
                 + " | ".join(f"**{o[f'saved_{k}']:.1%}**" for k in kinds)
                 + f" | **{o['bits_per_char']:.3f}** | **{o['accuracy']:.1%}** |")
    lc = o["line_completion"]
    lines.append("")
    lines.append(f"Line completion ({lc['samples']} random cuts): exact match **{lc['exact_match']:.1%}**, "
                 f"edit similarity **{lc['edit_similarity']:.1%}**. Request latency while typing: "
                 + ", ".join(f"{k} p50 {o[f'p50_ms_{k}']:.1f} / p90 {o[f'p90_ms_{k}']:.1f} / p99 {o[f'p99_ms_{k}']:.1f} ms"
                            for k in kinds)
                 + f". ({o['seconds']:.0f} s)")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        report = evaluate(args)
    except Exception as e:  # a clear message, not a traceback, for bad checkpoints and the like
        from models.checkpoint import CheckpointError
        if isinstance(e, CheckpointError):
            print(f"error: {e}", file=sys.stderr)
            return 2
        raise
    print(table(report))
    if args.server:
        print(f"\n(typing and line completion through the server at {args.server})")
    print(f"\nsaved {Path(args.out) / 'eval.json'} and the HTML views in {args.out}/", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
