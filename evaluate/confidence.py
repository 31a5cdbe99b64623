"""How sure a keystrokes-saved figure is: bootstrap intervals over files, alone and paired.

Every design decision here rests on figures like "66.4 % against 66.2 %" from a few dozen files, one seed; a
difference of 0.2 points can be chance. The unit that varies is the file (keystrokes inside one file move
together: a file that repeats itself is easy for every variant), so the intervals resample files:

    saved(F)       = 1 - sum_f keystrokes_f / sum_f chars_f         over a multiset F of files (a ratio of sums,
                                                                      as `python -m evaluate` reports it)
    interval       F* = n files drawn with replacement from the n files, B times; the 2.5th and 97.5th
                   percentiles of saved(F*) (the percentile bootstrap, Efron & Tibshirani 1993, ch. 13)
    paired         two columns typed over the same files (a and b: two models, two engines, or one report's
                   `middle` and `middle-nosuffix`): the same draws F* for both, and the percentiles of
                   saved_a(F*) - saved_b(F*). Pairing removes what the files share (their difficulty), so a
                   difference can be sure although each figure alone is not.

A paired interval that excludes 0 says the difference holds on files like these; it says nothing about
projects unlike them (30 validation files are mostly httpx: resampling files cannot show project-to-project
spread). The draws come from a fixed seed, so a report prints the same interval every time.

    python -m evaluate.confidence runs/A/eval.json [runs/B/eval.json] [--columns COL ...]

One report: each column's interval, and the paired gain of each `X` over `X-nosuffix` (#11's suffix gain).
Two reports: the paired difference B - A of every column they share, over the files they share.
A report may be several joined by `+` (`top/eval.json+middle/eval.json`: the same files typed at several
places, `--start-fraction`): each file's characters and keystrokes are summed over them first, so the file
stays the unit that is resampled.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95


@dataclass
class Interval:
    value: float  # the figure on all files
    low: float
    high: float
    files: int

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def file_counts(report: dict, column: str) -> dict[str, tuple[int, int]]:
    """file -> (chars typed, keystrokes) of `column` in an `evaluate` report (files that typed nothing left out)."""
    counts = {}
    for row in report["files"]:
        chars = row.get(f"chars_typed_{column}", 0)
        if chars:
            counts[row["file"]] = (chars, row[f"keystrokes_{column}"])
    return counts


def _arrays(counts: dict[str, tuple[int, int]], files) -> tuple[np.ndarray, np.ndarray]:
    """(chars [n], keystrokes [n]) of `files`, in their order."""
    files = list(files)
    return (np.array([counts[f][0] for f in files], dtype=np.float64),
            np.array([counts[f][1] for f in files], dtype=np.float64))


def pooled_report(reports: list[dict]) -> dict:
    """One report of several typing the same files (at different places): per file, each shared column's
    characters and keystrokes summed. A file counts where it was typed in every report."""
    columns = [c for c in reports[0]["columns"] if all(c in r["columns"] for r in reports[1:])]
    rows: dict[str, dict] = {}
    seen: dict[str, int] = {}  # file -> how many of the reports typed it
    for report in reports:
        for row in report["files"]:
            total = rows.setdefault(row["file"], {"file": row["file"]})
            seen[row["file"]] = seen.get(row["file"], 0) + 1
            for c in columns:
                for key in (f"chars_typed_{c}", f"keystrokes_{c}"):
                    total[key] = total.get(key, 0) + row.get(key, 0)
    return {"columns": columns, "files": [row for f, row in rows.items() if seen[f] == len(reports)]}


def saved_over(counts: dict[str, tuple[int, int]], files) -> float:
    """Keystrokes saved over `files` of `counts` (a ratio of sums, as the report's overall row)."""
    chars, keys = _arrays(counts, files)
    return float(_saved(np.ones(len(chars)), chars, keys)) if chars.sum() else 0.0


def _draws(n: int, resamples: int, seed: int) -> np.ndarray:
    """How often each of n files is drawn in each resample: int [resamples, n]."""
    picks = np.random.default_rng(seed).integers(0, n, size=(resamples, n))  # [R, n] file indexes
    counts = np.zeros((resamples, n), dtype=np.int64)
    np.add.at(counts, (np.arange(resamples)[:, None], picks), 1)
    return counts


def _saved(weights: np.ndarray, chars: np.ndarray, keys: np.ndarray) -> np.ndarray:
    # weights [R, n] (or [n]) file multiplicities -> 1 - sum keystrokes / sum chars per resample
    return 1.0 - (weights @ keys) / (weights @ chars)


def _interval(values: np.ndarray, value: float, files: int, level: float) -> Interval:
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(float(value), float(low), float(high), files)


def interval(counts: dict[str, tuple[int, int]], resamples: int = RESAMPLES, level: float = LEVEL,
             seed: int = 0) -> Interval:
    """Keystrokes saved over the files of `counts` (file -> (chars, keystrokes)) and its bootstrap interval."""
    if not counts:
        raise ValueError("no files typed")
    chars, keys = _arrays(counts, counts)
    values = _saved(_draws(len(chars), resamples, seed), chars, keys)
    return _interval(values, saved_over(counts, counts), len(chars), level)


def paired_difference(a: dict[str, tuple[int, int]], b: dict[str, tuple[int, int]], resamples: int = RESAMPLES,
                      level: float = LEVEL, seed: int = 0) -> Interval:
    """saved(b) - saved(a) over the files both typed, with the interval of the same resamples for both."""
    files = sorted(set(a) & set(b))
    if not files:
        raise ValueError("the two columns share no typed file")
    (ca, ka), (cb, kb) = _arrays(a, files), _arrays(b, files)
    w = _draws(len(files), resamples, seed)
    ones = np.ones(len(files))
    value = float(_saved(ones, cb, kb) - _saved(ones, ca, ka))
    return _interval(_saved(w, cb, kb) - _saved(w, ca, ka), value, len(files), level)


def suffix_gains(counts: dict[str, dict[str, tuple[int, int]]], resamples: int = RESAMPLES,
                 seed: int = 0) -> list[tuple[str, str, Interval]]:
    """(X, X-nosuffix, saved(X) - saved(X-nosuffix) paired) for the columns of `counts` (column -> file_counts)
    that have both: the suffix's gain."""
    return [(c, f"{c}-nosuffix", paired_difference(counts[f"{c}-nosuffix"], counts[c], resamples, seed=seed))
            for c in counts if f"{c}-nosuffix" in counts]


def summary_lines(report: dict) -> list[str]:
    """The lines `python -m evaluate` prints under its table: each column's interval, each suffix gain's."""
    counts = {c: file_counts(report, c) for c in report["columns"]}
    counts = {c: n for c, n in counts.items() if len(n) >= 2}  # one file: nothing to resample
    if not counts:
        return []
    parts = [f"{c} {_range(interval(n))}" for c, n in counts.items()]
    lines = [f"95 % intervals (bootstrap over files, `python -m evaluate.confidence`): " + ", ".join(parts) + "."]
    for with_suffix, without, d in suffix_gains(counts):
        lines.append(f"The suffix's gain ({with_suffix} - {without}): {_points(d)}.")
    return lines


def _range(iv: Interval) -> str:
    return f"{100 * iv.low:.1f}–{100 * iv.high:.1f} %"


def _points(iv: Interval) -> str:
    return f"{100 * iv.value:+.1f} points (95 % interval {100 * iv.low:+.1f} … {100 * iv.high:+.1f}, {iv.files} files)"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m evaluate.confidence", description=__doc__.split("\n\n")[0])
    p.add_argument("reports", nargs="+", help="eval.json of `python -m evaluate` (one, or two to compare: B - A); "
                                              "A+A2+...: several pooled by file")
    p.add_argument("--columns", nargs="*", help="columns to compare (default: all the reports share)")
    p.add_argument("--resamples", type=int, default=RESAMPLES)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if len(args.reports) > 2:
        p.error("one report, or two to compare")
    try:
        reports = [pooled_report([json.loads(Path(part).read_text(encoding="utf-8")) for part in r.split("+")])
                   for r in args.reports]
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    shared = [c for c in reports[0]["columns"] if all(c in r["columns"] for r in reports[1:])]
    columns = args.columns or shared
    missing = [c for c in columns if c not in shared]
    if missing:
        print(f"error: column(s) {', '.join(missing)} not in every report (they have: {', '.join(shared)})",
              file=sys.stderr)
        return 2
    if len(reports) == 1:
        counts = {c: file_counts(reports[0], c) for c in columns}
        for c, n in counts.items():
            iv = interval(n, args.resamples, seed=args.seed)
            print(f"{c}: {100 * iv.value:.1f} % (95 % interval {_range(iv)}, {iv.files} files)")
        for with_suffix, without, d in suffix_gains(counts, args.resamples, args.seed):
            print(f"suffix gain {with_suffix} - {without}: {_points(d)}")
        return 0
    for c in columns:
        a, b = (file_counts(r, c) for r in reports)
        shared_files = set(a) & set(b)
        d = paired_difference(a, b, args.resamples, seed=args.seed)
        saved_a, saved_b = (saved_over(x, shared_files) for x in (a, b))
        sure = "" if d.excludes_zero() else "  (the interval holds 0: not told apart)"
        print(f"{c}: {100 * saved_b:.1f} % (B) - {100 * saved_a:.1f} % (A) = {_points(d)}{sure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
