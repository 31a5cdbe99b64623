"""`python -m evaluate --model CKPT --data DIR`: keystrokes saved, bits/char, accuracy, line completion.

    python -m evaluate --model checkpoints/default.pt --data data --split test --max-files 8 --out reports/eval
    python -m evaluate --model runs/x/best.pt --files my_module.py other.py --kind auto line word

Prints a markdown table (per file and overall) and writes to --out: eval.json (every figure), and per
file <name>.keystrokes.html (accepted vs typed characters) and <name>.surprise.html (-log2 p map).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path, PurePosixPath

import torch

from dataset.clean import normalise_newlines
from dataset.notebooks import NotebookError, read_source
from dataset.workspace import project_source_files
from models.quantize import QUANTIZE_CHOICES

from .breakdown import keystroke_breakdown, project_names
from .confidence import summary_lines
from .metrics import (EDITOR_SUFFIX_LINES, char_surprise, clip_text, following_lines, line_completion, line_scores,
                      percentile, sample_inside_spans, sample_regions, simulate_typing, token_stats)
from .predictor import Predictor, PredictorConfig
from .project import EXTRA_CHARS, neighbours, split_projects
from .remote import InfillPredictor, RemotePredictor, TabbyPredictor
from .views import keystrokes_html, surprise_html

# --server-api: which of the server's APIs the typing simulation asks, with which client's request
REMOTE_APIS = {"autocomplete": RemotePredictor, "infill": InfillPredictor, "tabby": TabbyPredictor}

KIND_NAMES = {"auto": None, "word": "word", "line": "line", "block": "block"}
PROTOCOLS = ["lines", "project", "middle", "middle-nosuffix", "inside", "inside-nosuffix"]
# The edit protocols: what is retyped in each file, and which suffix goes with it (None: none; N: the rest of
# the line and N lines; "editor": --suffix-lines)
SPAN_PROTOCOLS = {"middle": "editor", "middle-nosuffix": None, "inside": "editor", "inside-nosuffix": 0}


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
    p.add_argument("--files-per-project", type=int, default=0,
                   help="sample this many files from every project of the split instead of --max-files overall")
    p.add_argument("--max-chars", type=int, default=2000, help="characters typed per file (cut at a line end)")
    p.add_argument("--context-lines", type=int, default=20,
                   help="lines before the cursor sent as the prompt (the 'lines' and 'middle' protocols); 0: the "
                        "whole text before the cursor, as the editor sends it")
    p.add_argument("--protocol", nargs="+", default=["lines"], choices=PROTOCOLS,
                   help="lines: the last --context-lines lines as the prompt (today's editor); project: the whole "
                        "text before the cursor + other files of the same project as input_extra; middle: retype "
                        "--regions regions of --region-lines lines inside each file with the next --suffix-lines "
                        "lines after the region as the suffix; middle-nosuffix: the same regions without it; inside: "
                        "retype --spans spans per file inside a line (a call's arguments, a subscript, `if` clause) with "
                        "the rest of the line and the next --suffix-lines lines as the suffix; inside-nosuffix: "
                        "the same spans with only the rest of the line")
    p.add_argument("--regions", type=int, default=4, help="middle protocols: regions retyped per file")
    p.add_argument("--region-lines", type=int, default=5, help="middle protocols: lines per region")
    p.add_argument("--spans", type=int, default=12, help="inside protocols: spans (one per line) retyped per file")
    p.add_argument("--suffix-lines", type=int, default=EDITOR_SUFFIX_LINES,
                   help="middle protocol: lines after the cursor line sent as the suffix (default: the editor's, of "
                        "which the engine keeps 16K characters; 20 until 2026-12-05)")
    p.add_argument("--extra-chars", type=int, default=EXTRA_CHARS,
                   help="project protocol: characters of other files sent with each request")
    p.add_argument("--project-root", metavar="DIR",
                   help="with --files: the project they belong to; the project protocol's other files are all of its "
                        ".py files and notebooks (as the editor's workspace sends them), not only the other files "
                        "given")
    p.add_argument("--span-extra", action="store_true",
                   help="middle and inside protocols: send the project's other files (as the project protocol does) "
                        "with every request; with --context-lines 0 the request is the editor's whole request")
    p.add_argument("--autoindent", action="store_true",
                   help="lines and project protocols: the editor indents each new line (evaluate/metrics.py "
                        "simulate_typing); its blanks cost nothing where that is the line's indentation")
    p.add_argument("--accept-words", action="store_true",
                   help="lines and project protocols: the typist also accepts a suggestion's next word alone "
                        "(Ctrl+Right in VS Code) where the whole suggestion is not right (evaluate/metrics.py "
                        "simulate_typing)")
    p.add_argument("--start-fraction", type=float, default=0.0,
                   help="type each file from this fraction of it (0: from the top; the text before is there)")
    p.add_argument("--no-context", action="store_true",
                   help="in-process predictor without the context store (the n-gram copy model)")
    p.add_argument("--no-names", action="store_true",
                   help="in-process predictor without completing names of the project (PredictorConfig.names)")
    p.add_argument("--fim-suffix-tokens", type=int, default=None,
                   help="most suffix tokens in a FIM model's input (FimConfig.max_suffix_tokens; 0: no FIM prompt)")
    p.add_argument("--no-context-suffix", action="store_true",
                   help="keep the suffix's lines out of the copy model's memory (PredictorConfig.context_suffix)")
    p.add_argument("--line-samples", type=int, default=200, help="random line cuts for line completion")
    p.add_argument("--cache-size", type=int, default=32, help="prefix cache entries (0 disables it)")
    p.add_argument("--beam-width", type=int, default=PredictorConfig.beam_width,
                   help="beams for the word/line/block kinds")
    p.add_argument("--auto-beam-width", type=int, default=PredictorConfig.auto_beam_width,
                   help="beams for the default kind (1: greedy)")
    p.add_argument("--saving-power", type=float, default=PredictorConfig.saving_power,
                   help="default kind: cut where (chars - 1) * P(prefix) ** this is largest")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--quantize", choices=QUANTIZE_CHOICES, default="auto",
                   help="the in-process model's weights (models/quantize.py; auto = int8 on the CPU, as served)")
    p.add_argument("--server", metavar="URL",
                   help="type through a running completion server (e.g. http://127.0.0.1:5000) instead of an "
                        "in-process predictor; --model still gives bits/char and accuracy")
    p.add_argument("--server-api", choices=list(REMOTE_APIS), default="autocomplete",
                   help="with --server: ask POST /autocomplete (the extension's request), the llama.cpp-compatible "
                        "POST /infill with llama.vim's request (evaluate/remote.py InfillPredictor) or Tabby's "
                        "POST /v1/completions with Tabby's agent's request (TabbyPredictor)")
    p.add_argument("--tabby-lines", type=int, nargs=2, metavar=("ABOVE", "BELOW"), default=(20, 20),
                   help="with --server-api tabby: the lines before and after the cursor the agent sends (its "
                        "completion.prompt.maxPrefixLines / maxSuffixLines; 20 and 20 by default)")
    p.add_argument("--token", help="API token for --server")
    p.add_argument("--server-model", metavar="NAME",
                   help="with --server: the server's model NAME answers (one of its --models-dir DIR/NAME.pt, "
                        "serving/models.py); --model should be that file, for bits/char")
    p.add_argument("--out", default="reports/eval", help="folder for eval.json and the HTML views")
    args = p.parse_args(argv)
    if not 0 <= args.start_fraction < 1:
        p.error("--start-fraction must be in [0, 1)")
    if args.server_model and not args.server:
        p.error("--server-model names a model of the server given by --server")
    for name in ("max_files", "max_chars", "context_lines", "line_samples", "cache_size", "beam_width",
                 "auto_beam_width", "extra_chars", "files_per_project", "regions", "region_lines", "suffix_lines",
                 "spans"):
        if getattr(args, name) < 0 or (name in ("beam_width", "auto_beam_width", "region_lines")
                                       and getattr(args, name) < 1):
            p.error(f"--{name.replace('_', '-')} must be positive")
    return args


def unique_names(items: list[tuple[str, str]]) -> list[str]:
    """A short name per (prefix, relative path): `prefix/basename`, or `prefix/relative path` where two share a
    basename (a project's several `__init__.py`; before 2026-12-06 such files overwrote each other)."""
    short = [f"{prefix}/{PurePosixPath(rel).name}".lstrip("/") for prefix, rel in items]
    taken = Counter(short)
    return [s if taken[s] == 1 else f"{prefix}/{rel}".lstrip("/") for s, (prefix, rel) in zip(short, items)]


def project_files(root: Path) -> dict[str, Path]:
    """The project's source files (`.py` files and notebooks) under `root` by relative path, as the editor lists a
    workspace: what git would commit, without virtual environments, caches and build output (dataset/workspace.py).
    A notebook is sent as its module of code cells (`_read`), as the editor sends it."""
    listing = project_source_files(root)
    for warning in listing.warnings:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    return {rel: root / rel for rel in listing.files}


def load_texts(args) -> tuple[dict[str, str], dict[str, list[tuple[str, str]]], dict[str, str]]:
    """(name -> text of the files to evaluate, name -> (path, text) of the other files of its project for the
    project-aware protocol, chosen by `project.neighbours` within --extra-chars, name -> its project)."""
    if args.files:
        given = [Path(f) for f in args.files]
        for path in given:
            if not path.is_file():
                raise SystemExit(f"error: no such file: {path}")
        if args.project_root:
            # The files belong to this project: their neighbours are all its files (the editor's workspace).
            root = Path(args.project_root).resolve()
            if not root.is_dir():
                raise SystemExit(f"error: --project-root {args.project_root} is not a folder")
            rels = []
            for path in given:
                try:
                    rels.append(path.resolve().relative_to(root).as_posix())
                except ValueError:
                    raise SystemExit(f"error: {path} is not under --project-root {args.project_root}")
            members = {"files": project_files(root)}
            members["files"].update(zip(rels, given))
        else:
            # The files given form one project: each one's neighbours are the others.
            root = Path(os.path.commonpath([str(p.resolve().parent) for p in given]))
            rels = [p.resolve().relative_to(root).as_posix() for p in given]
            members = {"files": dict(zip(rels, given))}
        names = unique_names([("", r) for r in rels])
        paths = list(zip(names, given))
        projects = {name: ("files", rel) for name, rel in zip(names, rels)}
    else:
        if args.project_root:
            raise SystemExit("error: --project-root goes with --files (a split's projects are its own)")
        try:
            members = split_projects(args.data, args.split)
        except FileNotFoundError as e:
            raise SystemExit(f"error: {e}")
        if not members:
            raise SystemExit(f"error: the {args.split} split of {args.data} has no files")
        # (project, path relative to it, file), in path order
        found = sorted(((p, r, f) for p, files in members.items() for r, f in files.items()), key=lambda x: str(x[2]))
        if args.files_per_project:  # the same number from every project (seeded), for per-project figures
            rng, picked = random.Random(args.seed), []
            for project in sorted(members):
                mine = [x for x in found if x[0] == project]
                picked += rng.sample(mine, min(args.files_per_project, len(mine)))
            found = sorted(picked, key=lambda x: str(x[2]))
        elif args.max_files and len(found) > args.max_files:
            found = sorted(random.Random(args.seed).sample(found, args.max_files), key=lambda x: str(x[2]))
        names = unique_names([(project, str(rel)) for project, rel, _ in found])
        paths = [(name, path) for name, (_, _, path) in zip(names, found)]
        projects = {name: (project, rel) for name, (project, rel, _) in zip(names, found)}
    texts = {}
    for name, path in paths:
        text = _read(path)
        if text is not None and text.strip():
            texts[name] = text
    if not texts:
        raise SystemExit("error: no non-empty UTF-8 files to evaluate")
    extras: dict[str, list[tuple[str, str]]] = {}
    if any(sends_extra(protocol, args) for protocol in args.protocol):
        project_texts: dict[str, dict[str, str]] = {}  # each project's files read once
        for name in texts:
            project, rel = projects[name]
            if project not in project_texts:
                project_texts[project] = {r: t for r, p in members[project].items() if (t := _read(p)) is not None}
            extras[name] = neighbours(rel, project_texts[project], args.extra_chars)
    return texts, extras, {name: project for name, (project, _) in projects.items()}


def _read(path: Path) -> str | None:
    """A file's text to type or send; a Jupyter notebook's code cells (dataset/notebooks.py), which `make train`
    reads too, so a notebook's held-out copy is typed as the code it trained on."""
    try:
        return normalise_newlines(read_source(path))
    except UnicodeDecodeError:
        print(f"skipping {path}: not UTF-8", file=sys.stderr)
        return None
    except NotebookError as e:
        print(f"skipping {path}: {e}", file=sys.stderr)
        return None


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def sends_extra(protocol: str, args) -> bool:
    """Whether the protocol's requests carry the project's other files as `input_extra`: the project protocol's
    always, the edit protocols' with --span-extra."""
    return protocol == "project" or (args.span_extra and protocol in SPAN_PROTOCOLS)


def _col(kind: str, protocol: str) -> str:
    """Report key suffix: today's protocol keeps its old names (saved_auto), the others add theirs."""
    return kind if protocol == "lines" else f"{kind}_{protocol}"


def _retype_spans(completer, text: str, spans, kind, args, suffix_lines: int | None, extra=None):
    """The edit protocols: each span [a, b) deleted and retyped, the prompt the last --context-lines lines; the
    suffix the text from b: the rest of b's line and its next `suffix_lines` lines, or (None) nothing; `extra`
    (--span-extra) the project's other files with every request."""
    total = None
    for a, b in spans:
        suffix = following_lines(text, b, suffix_lines) if suffix_lines is not None else ""
        r = simulate_typing(completer, text, kind, args.context_lines, extra=extra, start=a, end=b, suffix=suffix)
        if total is None:
            total = r
        else:
            total.chars += r.chars
            total.keystrokes += r.keystrokes
            total.request_ms += r.request_ms
            total.shown += r.shown
            total.accepted += r.accepted
    return total


def _region(text: str, args) -> tuple[int, int]:
    """[start, end) typed in a file: --max-chars from --start-fraction of it, both cut at line ends."""
    start = 0
    if args.start_fraction > 0:
        start = text.rfind("\n", 0, int(len(text) * args.start_fraction)) + 1
    typed = clip_text(text[start:], args.max_chars)
    return start, start + len(typed)


def evaluate(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    config = PredictorConfig(cache_size=args.cache_size, beam_width=args.beam_width,
                             auto_beam_width=args.auto_beam_width, saving_power=args.saving_power)
    if args.no_context:
        config.context = None
    if args.fim_suffix_tokens is not None:
        config.fim.max_suffix_tokens = args.fim_suffix_tokens
    config.context_suffix = not args.no_context_suffix
    if args.no_names:
        config.names = None
    predictor = Predictor.from_checkpoint(args.model, config=config, quantize=args.quantize)
    model, tokenizer = predictor.model, predictor.tokenizer
    # What the typing simulation and line completion ask: this process's predictor, or the server.
    remote = REMOTE_APIS[args.server_api]
    lines = {"prefix_lines": args.tabby_lines[0], "suffix_lines": args.tabby_lines[1]} \
        if args.server_api == "tabby" else {}
    completer = remote(args.server, args.token, model=args.server_model, **lines) if args.server else predictor
    texts, extras, project_of = load_texts(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    chunk = model.max_context or 512
    cols = [(kind, protocol) for protocol in args.protocol for kind in args.kind]
    report = {"model": str(args.model), "server": args.server, "server_model": args.server_model,
              "server_api": args.server_api if args.server else None, "autoindent": args.autoindent,
              "accept_words": args.accept_words,
              "tabby_lines": list(args.tabby_lines) if args.server and args.server_api == "tabby" else None,
              "beam_width": args.beam_width,
              "auto_beam_width": args.auto_beam_width, "split": None if args.files else args.split, "files": [],
              "kinds": args.kind, "protocols": args.protocol, "columns": [_col(k, p) for k, p in cols],
              "context_lines": args.context_lines, "extra_chars": args.extra_chars, "max_chars": args.max_chars,
              "start_fraction": args.start_fraction, "span_extra": args.span_extra, "context": not args.no_context}
    totals = {_col(k, p): [0, 0] for k, p in cols}  # column -> [chars, keystrokes]
    all_ms = {_col(k, p): [] for k, p in cols}
    shown = {_col(k, p): [0, 0] for k, p in cols}  # column -> [suggestions shown, taken]
    by_class = {_col(k, p): Counter() for k, p in cols if p not in SPAN_PROTOCOLS}  # column -> keystrokes by class
    bits = tokens = correct = chars = 0
    t_start = time.time()
    for name, text in texts.items():
        row = {"file": name, "project": project_of[name],
               "extra_chars": sum(len(t) for _, t in extras.get(name, [])), "chars_typed": 0}
        start, end = _region(text, args)
        # Edit in the middle: whole lines, each region's last newline stays (the cursor is on its own line, the
        # rest of it empty). Inside: bracket pairs' insides and headers' clauses, the rest of their line stays.
        spans = {"middle": [(a, b - 1) for a, b in sample_regions(text, args.regions, args.region_lines,
                                                                     random.Random(f"{args.seed}/{name}"))],
                 "inside": sample_inside_spans(text, args.spans, random.Random(f"{args.seed}/inside/{name}"))}
        in_project = project_names(t for _, t in extras.get(name, []))  # the same classes for every column
        for i, (kind, protocol) in enumerate(cols):
            col = _col(kind, protocol)
            completer.clear_cache()
            extra = extras.get(name) if sends_extra(protocol, args) else None
            if protocol in SPAN_PROTOCOLS:
                suffix_lines = args.suffix_lines if SPAN_PROTOCOLS[protocol] == "editor" else SPAN_PROTOCOLS[protocol]
                r = _retype_spans(completer, text, spans[protocol.split("-")[0]], KIND_NAMES[kind], args, suffix_lines,
                                  extra)
                if r is None:
                    continue
            else:
                lines = args.context_lines if protocol == "lines" else 0  # project: the whole text before the cursor
                r = simulate_typing(completer, text, KIND_NAMES[kind], lines, extra=extra, start=start, end=end,
                                    autoindent=args.autoindent, accept_words=args.accept_words)
            totals[col][0] += r.chars
            totals[col][1] += r.keystrokes
            all_ms[col] += r.request_ms
            shown[col][0] += r.shown
            shown[col][1] += len(r.accepted)
            row[f"saved_{col}"] = r.saved
            row[f"shown_{col}"], row[f"taken_{col}"] = r.shown, len(r.accepted)
            row[f"keystrokes_{col}"] = r.keystrokes
            row[f"chars_typed_{col}"] = r.chars
            row["chars_typed"] = max(row.get("chars_typed", 0), r.chars)
            row[f"p50_ms_{col}"] = percentile(r.request_ms, 50)
            if protocol in SPAN_PROTOCOLS:
                continue  # the spans are pieces of the file: no single view
            counts = keystroke_breakdown(text, start, end, r.accepted, in_project, r.indented)
            row[f"keystrokes_by_class_{col}"] = dict(counts)
            by_class[col].update(counts)
            (out / f"{_safe(name)}.{col}.keystrokes.html").write_text(
                keystrokes_html(f"{name}: keystrokes ({col})", text[start:end], r.accepted, r.saved),
                encoding="utf-8")
        stats = token_stats(model, tokenizer, text, chunk)
        row.update(chars=stats.chars, tokens=stats.tokens, bits_per_char=stats.bits_per_char,
                   accuracy=stats.correct / max(stats.tokens, 1))
        bits, tokens, correct, chars = bits + stats.bits, tokens + stats.tokens, correct + stats.correct, chars + stats.chars
        (out / f"{_safe(name)}.surprise.html").write_text(
            surprise_html(f"{name}: surprise", text, char_surprise(tokenizer, text, stats), stats.bits_per_char),
            encoding="utf-8")
        report["files"].append(row)
        print(f"{name}: " + ", ".join(f"saved[{c}] {row.get(f'saved_{c}', float('nan')):.1%}" for c in report["columns"])
              + f", {row['bits_per_char']:.3f} bits/char ({time.time() - t_start:.0f} s)", file=sys.stderr, flush=True)
    line_results = {}
    if args.line_samples:
        for protocol in args.protocol:
            if protocol.startswith("inside"):
                continue  # its spans are the line completion of that edit
            completer.clear_cache()
            lines = 0 if protocol == "project" else args.context_lines
            samples = line_completion(completer, texts, args.line_samples, args.seed, lines,
                                      extra=extras if sends_extra(protocol, args) else None,
                                      suffix_lines=args.suffix_lines if protocol == "middle" else 0)
            line_results[protocol] = samples
    projects: dict[str, dict] = {}
    for row in report["files"]:
        p = projects.setdefault(row["project"], {"files": 0, "chars_typed": 0, **{c: [0, 0] for c in totals}})
        p["files"] += 1
        p["chars_typed"] += row["chars_typed"]
        for c in totals:
            p[c][0] += row.get(f"chars_typed_{c}", 0)
            p[c][1] += row.get(f"keystrokes_{c}", 0)
    report["projects"] = {name: {"files": p["files"], "chars_typed": p["chars_typed"],
                                 **{f"saved_{c}": 1 - p[c][1] / p[c][0] if p[c][0] else 0.0 for c in totals}}
                          for name, p in projects.items()}
    report["overall"] = {
        "files": len(texts),
        **{f"saved_{c}": 1 - ks / n if n else 0.0 for c, (n, ks) in totals.items()},
        **{f"p50_ms_{c}": percentile(all_ms[c], 50) for c in totals},
        **{f"p90_ms_{c}": percentile(all_ms[c], 90) for c in totals},
        **{f"p99_ms_{c}": percentile(all_ms[c], 99) for c in totals},
        # as the file rows: the most any protocol typed (the middle protocols type only their regions)
        "chars_typed": sum(row["chars_typed"] for row in report["files"]),
        **{f"chars_typed_{c}": n for c, (n, _) in totals.items()},
        **{f"keystrokes_by_class_{c}": dict(counts) for c, counts in by_class.items()},
        # the share of the suggestions shown that the typist took (an editor's select / view)
        **{f"shown_{c}": n for c, (n, _) in shown.items()},
        **{f"taken_{c}": k for c, (_, k) in shown.items()},
        "bits_per_char": bits / max(chars, 1), "accuracy": correct / max(tokens, 1), "tokens": tokens,
        "line_completion": {p: line_scores(s) for p, s in line_results.items()},
        "seconds": time.time() - t_start,
    }
    report["line_samples"] = {p: [s.__dict__ for s in samples[:50]] for p, samples in line_results.items()}
    report["predictor"] = completer.stats()
    (out / "eval.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report


def table(report: dict) -> str:
    cols = report["columns"]
    head = "| file | chars typed | " + " | ".join(f"saved ({c})" for c in cols) + " | bits/char | next-token acc |"
    lines = [head, "|" + "---|" * (4 + len(cols))]
    for r in report["files"]:
        lines.append(f"| {r['file']} | {r['chars_typed']} | " + " | ".join(f"{r.get(f'saved_{c}', float('nan')):.1%}" for c in cols)
                     + f" | {r['bits_per_char']:.3f} | {r['accuracy']:.1%} |")
    for name, p in sorted(report["projects"].items()):
        lines.append(f"| *{name} ({p['files']} files)* | {p['chars_typed']} | "
                     + " | ".join(f"*{p[f'saved_{c}']:.1%}*" for c in cols) + " | | |")
    o = report["overall"]
    lines.append(f"| **overall ({o['files']} files)** | {o['chars_typed']} | "
                 + " | ".join(f"**{o[f'saved_{c}']:.1%}**" for c in cols)
                 + f" | **{o['bits_per_char']:.3f}** | **{o['accuracy']:.1%}** |")
    lines.append("")
    for protocol, lc in o["line_completion"].items():
        lines.append(f"Line completion, {protocol} protocol ({lc['samples']} random cuts): exact match "
                     f"**{lc['exact_match']:.1%}**, edit similarity **{lc['edit_similarity']:.1%}**.")
    if any(f"shown_{c}" in o for c in cols):
        lines.append("Suggestions taken (of those shown; the editors' select / view, docs/server.md): "
                     + ", ".join(f"{c} {o[f'taken_{c}']:,} of {o[f'shown_{c}']:,} "
                                 f"({o[f'taken_{c}'] / o[f'shown_{c}']:.1%})" for c in cols if o.get(f"shown_{c}"))
                     + ".")
    lines += summary_lines(report)
    lines.append("Request latency while typing: "
                 + ", ".join(f"{c} p50 {o[f'p50_ms_{c}']:.1f} / p90 {o[f'p90_ms_{c}']:.1f} / p99 {o[f'p99_ms_{c}']:.1f} ms"
                             for c in cols)
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
