"""Where the keystrokes go: every keystroke of a typing run, by what it was spent on.

A typing run (`metrics.simulate_typing`) spends one keystroke per accepted suggestion and one per character
the typist types. Keystrokes saved say how many there were, not what they were spent on, and that is what a
next design has to aim at: a model that knows the project better can only save the keystrokes spent on what
the project holds. Each keystroke falls in one class:

    accept              accepting a suggestion (one per suggestion, whatever its length)
    space               a typed space, tab or newline
    punct               a typed character outside names: operators, brackets, quotes
    name_start          the first character of a name (a run of \\w: identifier, keyword, number, word of
                        prose): the choice of which name comes next
    name_rest_file      a later character of a name the text before it already holds (the file so far)
    name_rest_project   a later character of a name only the project's other files hold (those the project
                        protocol sends as `input_extra`, for every column alike, so that columns compare; none
                        when only the 20-line protocol runs): what project context and fine-tuning can teach
    name_rest_new       a later character of a name neither holds: new to the project

A name is classed by where it occurs as a whole word, so `get_user` is new even where `get_users` is not.
Counts are of keystrokes; as shares of the characters typed they sum to 1 - keystrokes saved. Two runs over
the same text (the same files, the same `--project-root`) compare class by class:

    python -m evaluate.breakdown BASE/eval.json FINE_TUNED/eval.json

`python -m evaluate` records these counts in every report at no cost. The deeper probe,
scripts/keystroke_breakdown.py, types the files again to split them further (code, strings and comments;
which part of a request held each identifier).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

CLASSES = ("accept", "space", "punct", "name_start", "name_rest_file", "name_rest_project", "name_rest_new")

NAME = re.compile(r"\w+")


def project_names(texts) -> set[str]:
    """Every name (a run of \\w) in the given texts."""
    return {m.group() for text in texts for m in NAME.finditer(text)}


def keystroke_breakdown(text: str, start: int, end: int, accepted: list[tuple[int, int]],
                        in_project: set[str], indented: list[tuple[int, int]] = ()) -> Counter:
    """Keystrokes of typing text[start:end] by class (CLASSES). `accepted`: the [a, b) spans of accepted
    suggestions, relative to `start` (TypingResult.accepted); `indented`: blanks the editor put there
    (TypingResult.indented, no keystroke); every other character was typed. The text before `start` was there
    already and counts as the file's."""
    counts = Counter({c: 0 for c in CLASSES})
    counts["accept"] = len(accepted)
    typed = bytearray(b"\x01") * (end - start)  # 1: typed, 0: came with a suggestion or the editor's indentation
    for a, b in [*accepted, *indented]:
        typed[a:b] = bytes(b - a)
    seen: set[str] = set()  # names of the text before the one at hand
    for m in NAME.finditer(text, 0, end):
        name, a, b = m.group(), m.start(), m.end()
        rest = ("name_rest_file" if name in seen else
                "name_rest_project" if name in in_project else "name_rest_new")
        for i in range(max(a, start), b):
            if typed[i - start]:
                counts["name_start" if i == a else rest] += 1
                typed[i - start] = 0  # counted: what stays typed lies outside names
        seen.add(name)
    for i in range(start, end):
        if typed[i - start]:
            counts["space" if text[i].isspace() else "punct"] += 1
    return counts


def shares(counts: dict, chars: int) -> dict[str, float]:
    """Each class's keystrokes per character typed."""
    return {c: counts.get(c, 0) / chars if chars else 0.0 for c in CLASSES}


def table(reports: list[tuple[str, dict]]) -> str:
    """Markdown: one row per report and column (saved, then each class as % of the characters typed)."""
    lines = ["| report | column | saved | " + " | ".join(CLASSES) + " |",
             "|---|---|---:|" + "---:|" * len(CLASSES)]
    missing = []
    for label, report in reports:
        o = report["overall"]
        for col in report["columns"]:
            counts = o.get(f"keystrokes_by_class_{col}")
            if counts is None:  # a span protocol's column, or a report from before the breakdown
                missing.append(f"{label} {col}")
                continue
            s = shares(counts, o[f"chars_typed_{col}"])
            lines.append(f"| {label} | {col} | {o[f'saved_{col}']:.1%} | "
                         + " | ".join(f"{100 * s[c]:.1f}" for c in CLASSES) + " |")
    if missing:
        lines.append(f"\nNo breakdown (an edit protocol's column, or a report written before 2026-12-07): "
                     + ", ".join(missing))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evaluate.breakdown",
        description="Where the keystrokes of `python -m evaluate` reports went, as % of the characters typed "
                    "(the classes: this module's docstring).")
    parser.add_argument("reports", nargs="+", help="eval.json files (or folders holding one)")
    args = parser.parse_args(argv)
    reports = []
    for arg in args.reports:
        path = Path(arg) / "eval.json" if Path(arg).is_dir() else Path(arg)
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            print(f"error: cannot read {path}: {e}", file=sys.stderr)
            return 2
        if not isinstance(report, dict) or not isinstance(report.get("overall"), dict) or "columns" not in report:
            print(f"error: {path} is not a `python -m evaluate` report (no overall figures)", file=sys.stderr)
            return 2
        reports.append((arg, report))
    print(table(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
