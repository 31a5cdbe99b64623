"""Fill in the middle at inference: the code after the cursor in the model's input, and no completion that
runs into it.

A model trained with FIM (dataset/fim.py, `train.py --fim-rate`) has the three FIM tokens in its tokenizer.
When a request's `suffix` holds more than the rest of the cursor line (text on a following line), the
engine feeds, in the suffix-prefix-middle order the model was trained on,

    <PRE> <SUF> suffix' <MID> window of the prompt            (then generates the middle)

- suffix' is the start of the suffix cut to `max_suffix_tokens` at a line end when one fits (the lines
  nearest the cursor matter most; at training the suffix is also the part cut at the window's end).
- The head [PRE SUF suffix' MID] does not change while the user types on a line, and the prompt only
  grows, so consecutive keystrokes share a token prefix and the prefix cache serves them as before; token
  healing works as left to right because prefix + middle is one text encoded in one piece.
- The window of the prompt gets what is left of the prompt budget after the head.
- The model ends the middle with eot where it meets the suffix, which finishes the hypothesis.

Requests whose suffix is only the rest of the line (or empty), and models without FIM tokens, are served
left to right exactly as before.

**Never run into the suffix** (`trim_to_suffix`, for every model): a completion is cut before a generated
line that equals the first non-blank line after the cursor line, and dropped when the line it completes
would be that following line itself (the duplicate a left-to-right model typically proposes). Inside a line,
the search stops before closing what the rest of the line closes (kinds.py), and a single-line completion
loses an end that repeats the start of that rest (`max(` + `, 0)`: `x, ` -> `x`; `for x in ` + `:`: `items:`
-> `items`; `with open(p)` + ` as f:`: ` as f:` -> nothing).
"""
from __future__ import annotations

from dataclasses import dataclass

from dataset.tokenizer import Tokenizer

from .kinds import completed_line, rest_of_line


@dataclass
class FimConfig:
    # Most suffix tokens in the model's input (the rest of the 256-token window holds the prompt).
    max_suffix_tokens: int = 64


def following_line(suffix: str) -> str:
    """The first non-blank line after the cursor line, stripped ('' when there is none). Reads the suffix only up
    to that line: it is asked for every candidate of a request, and the suffix may be 16K characters."""
    start = suffix.find("\n")
    while start >= 0:
        end = suffix.find("\n", start + 1)
        line = suffix[start + 1:end if end >= 0 else len(suffix)].strip()
        if line:
            return line
        start = end
    return ""


def has_following_lines(suffix: str) -> bool:
    """True when the suffix holds more than the rest of the cursor line: non-blank text on a later line."""
    return bool(following_line(suffix))


def fim_head(tokenizer: Tokenizer, suffix: str, config: FimConfig) -> tuple[int, ...]:
    """[PRE SUF suffix' MID] for `suffix`, or () when the request is served left to right."""
    if tokenizer.fim_ids is None or not has_following_lines(suffix) or config.max_suffix_tokens <= 0:
        return ()
    pre, suf, mid = tokenizer.fim_ids
    # Encode only about as much as can be kept (8 chars per token is more than code ever needs).
    text = suffix[:8 * config.max_suffix_tokens]
    ids = tokenizer.encode(text)
    if len(ids) > config.max_suffix_tokens:
        ids = ids[:config.max_suffix_tokens]
        # Prefer ending at the last complete line that fits.
        line_end = tokenizer.decode_bytes(ids).rfind(b"\n")
        if line_end > 0:
            kept = text.encode("utf-8")[:line_end + 1].decode("utf-8", "ignore")
            ids = tokenizer.encode(kept)[:config.max_suffix_tokens]
    return (pre, suf, *ids, mid)


_BRACKETS_QUOTES = frozenset("()[]{}\"'`")


def trim_rest_of_line(completion: str, suffix: str) -> str:
    """A single-line `completion` without the end that repeats the start of the rest of the cursor line ('' drops
    it): inserted, that end and the rest would read it twice (`max(` + `, 0)`: `x, ` -> `x`; `for x in ` + `:`:
    `items:` -> `items`; `with open(p)` + ` as f:`: ` as f:` -> ''). Only the rest's start before its first
    bracket or quote can be repeated: those are the stop rule's (kinds.py), which knows which closer is whose;
    `f(x)` ending with the `)` of the rest is no repeat of it."""
    rest = rest_of_line(suffix)
    if not rest.strip() or "\n" in completion:
        return completion
    head = rest[:next((i for i, c in enumerate(rest) if c in _BRACKETS_QUOTES), len(rest))].rstrip()
    for k in range(min(len(head), len(completion)), 0, -1):
        if completion.endswith(head[:k]):
            return completion[:len(completion) - k]
    return completion


def trim_to_suffix(completion: str, cursor_line: str, suffix: str) -> str:
    """`completion` cut so it does not repeat the rest of the cursor line (`trim_rest_of_line`) or the line
    that follows the cursor line ('' drops it)."""
    completion = trim_rest_of_line(completion, suffix)
    if not completion:
        return ""
    following = following_line(suffix)
    if not following:
        return completion
    lines = completion.split("\n")
    completed = completed_line(cursor_line, completion, rest_of_line(suffix))
    if lines[0] and completed.strip() == following and cursor_line.strip() != following:
        return ""
    for i in range(1, len(lines)):
        if lines[i].strip() == following:
            return "\n".join(lines[:i])
    return completion
