"""Completions never make the cursor line a copy of the line above it.

A small model, and the copy model mixed into it (context.py), like to re-type the line just written: after
`self.x = x` it offers `self.x = x` again, where `self.y = y` was meant. Measured on the 30 validation files
(first 1,000 characters, the 20-line protocol; a throw-away script): 100 of 11,576 top suggestions made the
cursor line an exact copy of the line above it, none of them right, and in 27 of them another of the three
candidates was; in the corpus 0.08 % of the lines of 8+ characters equal the line above them (test data, URL
lists). So such a candidate is dropped and the next one takes its place (predictor.py ranks a few more, and
drops them last, after the project's names and imports are offered). Keystrokes saved barely move (the next
candidate is seldom right either: +0.06 points on that protocol); the reader no longer sees those suggestions.

The completed line is the cursor line + the completion's first line (+ the rest of the line after the cursor
when the completion is one line), compared with surrounding whitespace stripped, and only for lines of at
least MIN_CHARS characters (`)`, `pass`, `else:` repeat legitimately).
"""
from __future__ import annotations

from .kinds import completed_line

MIN_CHARS = 8


def line_above(prompt: str) -> str:
    """The line before the cursor's line ('' on the first line)."""
    end = prompt.rfind("\n")
    if end < 0:
        return ""
    return prompt[prompt.rfind("\n", 0, end) + 1:end]


def repeats_line_above(completion: str, cursor_line: str, above: str, rest_of_line: str = "") -> bool:
    """True when inserting `completion` makes the cursor line read `above` (the line before it)."""
    above = above.strip()
    if len(above) < MIN_CHARS:
        return False
    if not completion.partition("\n")[0].strip():
        return False  # the cursor line gets nothing (a new line and its indentation)
    return completed_line(cursor_line, completion, rest_of_line).strip() == above
