"""Evaluation metrics: keystrokes saved, next-token accuracy and bits per character, line completion.

Keystrokes saved (the reference's measure): type a file one character at a time; before each keystroke
ask for the top suggestion with the last `context_lines` lines before the cursor as the prompt (what the
editor extension sends). If the suggestion is exactly the next characters of the file, accepting it costs
one keystroke; otherwise one character is typed. saved = 1 - keystrokes / characters. This is the
typed-through workload the prefix cache is made for: consecutive prompts share all but their end.

Bits per character: -log2 P(token) summed over a file (fed in chunks, each with the state of the one
before, from end-of-text as documents start in training) and divided by its characters; next-token
accuracy is how often the arg-max token is the real one.

Line completion (CodeXGLUE-style): cut lines at random points, complete the rest of the line, compare
with the real rest: exact match, and edit similarity 1 - Levenshtein / max(len).

Edit in the middle: regions of a few whole lines inside a file are deleted and retyped while the rest of
the file stays; with the suffix, each request also carries the text after the region (its first
`suffix_lines` lines, as the editor sends them), without it only the rest of the cursor line (empty there,
today's editor). Line completion has the same two variants: the rest of the cut line is deleted and the
following lines are, or are not, the suffix.
"""
from __future__ import annotations

import bisect
import math
import random
import re
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from serving.indent import blank_line_indent
from .kinds import string_end


def prompt_at(text: str, line_starts: list[int], cursor: int, context_lines: int) -> str:
    """The last `context_lines` lines before the cursor (the current, partial line included); 0: the whole
    text before the cursor (the project-aware protocol)."""
    if context_lines <= 0:
        return text[:cursor]
    line = bisect.bisect_right(line_starts, cursor) - 1
    return text[line_starts[max(0, line - context_lines + 1)]:cursor]


def line_starts_of(text: str) -> list[int]:
    return [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]


def clip_text(text: str, max_chars: int | None) -> str:
    """The first `max_chars` characters, ending at a line end when there is one."""
    if max_chars is None or len(text) <= max_chars:
        return text
    cut = text.rfind("\n", 0, max_chars)
    return text[:cut + 1] if cut > 0 else text[:max_chars]


@dataclass
class TypingResult:
    chars: int
    keystrokes: int
    accepted: list[tuple[int, int]] = field(default_factory=list)  # [start, end) of accepted suggestions
    indented: list[tuple[int, int]] = field(default_factory=list)  # [start, end) of blanks the editor put there
    request_ms: list[float] = field(default_factory=list)
    shown: int = 0  # requests that offered a suggestion (the editor would show it); len(accepted) of them were taken

    @property
    def saved(self) -> float:
        return 1 - self.keystrokes / self.chars if self.chars else 0.0


# VS Code's word, as its "Accept Next Word Of Inline Suggestion" (Ctrl+Right) takes it: the editor's default
# word definition (Python's language configuration sets none), ASCII classes as in JavaScript.
WORD_SEPARATORS = "`~!@#$%^&*()-=+[{]}\\|;:'\",.<>/?"
WORD = re.compile(r"(-?\d*\.\d\w*)|([^" + re.escape(WORD_SEPARATORS) + r"\s]+)", re.ASCII)
BLANKS = re.compile(r"\s+")


def next_word_end(suggestion: str) -> int:
    """How much of `suggestion` one Ctrl+Right accepts (VS Code's `acceptNextWord`, read in code-server 4.139.1's
    workbench): a word at its start, else what comes before the next word, but never past the end of its first
    run of blanks (`"self.x"` -> `self`, then `.`, then `x`; `" = y"` -> `" "`)."""
    found = WORD.search(suggestion)
    end = (found.end() if found.start() == 0 else found.start()) if found else len(suggestion)
    blanks = BLANKS.search(suggestion)
    return blanks.end() if blanks and blanks.end() < end else end


# The extension's default suffix (`pythonAutocomplete.suffixLines`): the lines after the cursor's line, of
# which the engine keeps the first 16K characters (PredictorConfig.max_suffix_chars): in effect the rest of
# the file. 20 until 2026-12-05 (docs/evaluation.md "How much of the code below").
EDITOR_SUFFIX_LINES = 1000


def following_lines(text: str, pos: int, n: int) -> str:
    """text[pos:] up to the end of its n-th line break (the suffix the editor sends: rest of the line + n lines)."""
    end = pos - 1
    for _ in range(n + 1):
        end = text.find("\n", end + 1)
        if end < 0:
            return text[pos:]
    return text[pos:end]


def sample_regions(text: str, n: int, n_lines: int, rng: random.Random) -> list[tuple[int, int]]:
    """Up to n non-overlapping regions [a, b) of `n_lines` whole lines (b: after the last line's newline)
    with code in them, and at least one non-blank line after them (there is a suffix to use)."""
    starts = line_starts_of(text)
    lines = text.split("\n")
    candidates = [i for i in range(len(lines) - n_lines)
                  if sum(len(l.strip()) for l in lines[i:i + n_lines]) >= 10 * n_lines // 2
                  and any(l.strip() for l in lines[i + n_lines:])]
    rng.shuffle(candidates)
    chosen: list[int] = []
    for i in candidates:
        if all(abs(i - j) >= n_lines for j in chosen):
            chosen.append(i)
            if len(chosen) == n:
                break
    return [(starts[i], starts[i + n_lines]) for i in sorted(chosen)]


_PAIRS = {"(": ")", "[": "]", "{": "}"}


def bracket_spans(line: str) -> list[tuple[int, int]]:
    """[a, b) of every bracket pair's inside on one line of code (a after the opener, b at its closer) and,
    where the inside has top-level commas, of each of its elements (blanks around them left out: `f(a, b)`
    -> `a, b`, `a`, `b`), found by a scan that skips string literals and stops at a comment. A line whose
    brackets or strings do not close on it gives only the pairs that do."""
    spans, stack, i = [], [], 0  # stack: (opener, its index, the top-level commas inside it)
    while i < len(line):
        c = line[i]
        if c == "#":
            break
        if c in "\"'":
            close = string_end(line, i + 1, c)
            if close < 0:
                break
            i = close
            continue
        if c in _PAIRS:
            stack.append((c, i, []))
        elif c == "," and stack:
            stack[-1][2].append(i)
        elif c in ")]}":
            if not stack or _PAIRS[stack[-1][0]] != c:
                break  # closes what opened on an earlier line
            _, opener, commas = stack.pop()
            spans.append((opener + 1, i))
            if commas:
                for a, b in zip([opener + 1] + [k + 1 for k in commas], commas + [i]):
                    element = line[a:b]
                    if element.strip():
                        a += len(element) - len(element.lstrip())
                        spans.append((a, a + len(element.strip())))
        i += 1
    return spans


_HEADER = re.compile(r"[ \t]*(?:async[ \t]+)?(?:if|elif|while|for|with)[ \t]+()[^#]*?()[ \t]*:[ \t]*$")


def header_span(line: str) -> tuple[int, int] | None:
    """[a, b) of a one-line compound statement header's clause (`if x is None:` -> `x is None`), or None."""
    m = _HEADER.match(line)
    return (m.start(1), m.start(2)) if m and m.start(2) > m.start(1) else None


def sample_inside_spans(text: str, n: int, rng: random.Random, min_chars: int = 3) -> list[tuple[int, int]]:
    """Up to n spans [a, b) of the file, one per line, each what is retyped when a line is edited inside while
    the rest of it stays: the inside of a bracket pair on the line (a call's arguments, a subscript, a
    literal: `print(|)` + `)` after the cursor), one of its comma-separated elements (`max(|, 0)`) or a
    header's clause (`if |:` + `:`), with at least `min_chars` non-blank characters."""
    starts = line_starts_of(text)
    candidates = []
    for number, line in enumerate(text.split("\n")):
        header = header_span(line)
        spans = [(a, b) for a, b in bracket_spans(line) + ([header] if header else [])
                 if len(line[a:b].replace(" ", "")) >= min_chars]
        if spans:
            candidates.append((number, spans))
    rng.shuffle(candidates)
    chosen = [(starts[number] + a, starts[number] + b) for number, spans in candidates[:n]
              for a, b in [rng.choice(spans)]]
    return sorted(chosen)


def simulate_typing(predictor, text: str, kind: str | None = None, context_lines: int = 20,
                    extra: list[str] | None = None, start: int = 0, end: int | None = None,
                    suffix: str = "", autoindent: bool = False, accept_words: bool = False) -> TypingResult:
    """Type text[start:end] (the text before `start` is already there); `extra` goes with every request
    (the project-aware protocol: other files of the project); `suffix` (the code after the cursor, the
    edit-in-the-middle protocol) too.

    `autoindent`: the editor indents each new line as Vim's and VS Code's Python rules do (serving/indent.py
    `blank_line_indent`: the line above's indentation, one level more after `:`, one less after `return`, ...).
    Where that is the line's indentation its blanks cost nothing; elsewhere the typist types them one by one as
    without it (deleting a guess that is too deep is not counted).

    `accept_words`: a typist who also takes a suggestion word by word (Ctrl+Right in VS Code, `next_word_end`;
    llama.vim's `keymap_fim_accept_word`): where the whole suggestion is not the next characters but its
    next word is, one keystroke accepts that word, and the next request comes from after it."""
    starts = line_starts_of(text)
    end = len(text) if end is None else end
    result = TypingResult(chars=end - start, keystrokes=0)
    options = {"extra": extra} if extra else {}
    if suffix:
        options["suffix"] = suffix
    i = start
    while i < end:
        prompt = prompt_at(text, starts, i, context_lines)
        t0 = time.perf_counter()
        suggestions = predictor.complete(prompt, kind=kind, max_suggestions=1, **options)
        result.request_ms.append((time.perf_counter() - t0) * 1000)
        result.keystrokes += 1
        s = suggestions[0].text if suggestions else ""
        result.shown += bool(s)
        if s and text.startswith(s, i) and i + len(s) <= end:
            result.accepted.append((i - start, i - start + len(s)))
            i += len(s)
        elif accept_words and s and text.startswith(s[:(w := next_word_end(s))], i) and i + w <= end:
            result.accepted.append((i - start, i - start + w))
            i += w
        else:
            i += 1
        if autoindent and i < end and text[i - 1] == "\n":
            indent = blank_line_indent(text[:i], 0)
            if indent and text.startswith(indent, i) and i + len(indent) < end and text[i + len(indent)] != "\n":
                result.indented.append((i - start, i - start + len(indent)))
                i += len(indent)
    return result


@dataclass
class TokenStats:
    bits: float  # -log2 P summed over tokens
    tokens: int
    correct: int  # arg-max predictions equal to the real token
    chars: int
    token_bits: np.ndarray  # [tokens] -log2 P of each token
    ids: list[int]

    @property
    def bits_per_char(self) -> float:
        return self.bits / self.chars if self.chars else 0.0


@torch.inference_mode()
def token_stats(model, tokenizer, text: str, chunk: int = 256) -> TokenStats:
    """Per-token surprise of `text` after end-of-text, fed in chunks carrying the state."""
    ids = tokenizer.encode(text)
    inputs = [tokenizer.eot_id] + ids[:-1]
    state, bits, correct = None, [], 0
    for s in range(0, len(ids), chunk):
        x = torch.tensor([inputs[s:s + chunk]], dtype=torch.long)
        y = torch.tensor(ids[s:s + chunk], dtype=torch.long)
        logits, state = model(x, state)
        logp = torch.log_softmax(logits[0].float(), dim=-1)  # [T, V]
        bits.append(-logp.gather(1, y[:, None])[:, 0] / math.log(2))
        correct += int((logp.argmax(-1) == y).sum())
    token_bits = torch.cat(bits).numpy() if bits else np.zeros(0)
    return TokenStats(float(token_bits.sum()), len(ids), correct, len(text), token_bits, ids)


def char_surprise(tokenizer, text: str, stats: TokenStats) -> list[float]:
    """Bits per character: each token's -log2 P spread evenly over its bytes, summed per character."""
    byte_bits = np.zeros(len(text.encode("utf-8")))
    pos = 0
    for tok, b in zip(stats.ids, stats.token_bits):
        n = len(tokenizer.token_bytes[tok])
        byte_bits[pos:pos + n] = b / max(n, 1)
        pos += n
    out, pos = [], 0
    for c in text:
        n = len(c.encode("utf-8"))
        out.append(float(byte_bits[pos:pos + n].sum()))
        pos += n
    return out


def levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def edit_similarity(a: str, b: str) -> float:
    """1 - Levenshtein(a, b) / max(len): 1.0 for equal strings (CodeXGLUE's fuzz.ratio is close to it)."""
    if not a and not b:
        return 1.0
    return 1 - levenshtein(a, b) / max(len(a), len(b))


@dataclass
class LineSample:
    file: str
    prompt_tail: str  # the typed part of the line
    truth: str
    pred: str
    ms: float


def sample_line_cuts(texts: dict[str, str], n: int, seed: int = 0, min_rest: int = 1):
    """n (file, cursor offset, rest of line) cuts at random points of random non-blank lines."""
    rng = random.Random(seed)
    candidates = []
    for name, text in texts.items():
        pos = 0
        for line in text.split("\n"):
            indent = len(line) - len(line.lstrip())
            if len(line.strip()) >= 2:
                candidates.append((name, pos, indent, len(line.rstrip())))
            pos += len(line) + 1
    rng.shuffle(candidates)
    cuts = []
    for name, start, indent, end in candidates[:n]:
        cut = rng.randint(start + indent, start + end - min_rest)
        cuts.append((name, cut, texts[name][cut:start + end]))
    return cuts


def line_completion(predictor, texts: dict[str, str], n: int = 200, seed: int = 0,
                    context_lines: int = 20, extra: dict[str, list[str]] | None = None,
                    suffix_lines: int = 0) -> list[LineSample]:
    """`extra`: file name -> the chunks sent with its requests (project-aware protocol). `suffix_lines`
    > 0: the rest of the cut line is deleted and the next `suffix_lines` lines are the suffix."""
    samples = []
    starts = {name: line_starts_of(t) for name, t in texts.items()}
    for name, cut, truth in sample_line_cuts(texts, n, seed):
        text = texts[name]
        prompt = prompt_at(text, starts[name], cut, context_lines)
        options = {"extra": extra[name]} if extra and extra.get(name) else {}
        if suffix_lines > 0:
            options["suffix"] = following_lines(text, cut + len(truth), suffix_lines)
        t0 = time.perf_counter()
        out = predictor.complete(prompt, kind="line", max_suggestions=1, **options)
        ms = (time.perf_counter() - t0) * 1000
        pred = out[0].text.split("\n", 1)[0] if out else ""
        samples.append(LineSample(name, prompt.rsplit("\n", 1)[-1], truth, pred, ms))
    return samples


def line_scores(samples: list[LineSample]) -> dict:
    if not samples:
        return {"samples": 0, "exact_match": 0.0, "edit_similarity": 0.0}
    em = sum(s.pred.rstrip() == s.truth.rstrip() for s in samples) / len(samples)
    es = sum(edit_similarity(s.pred.rstrip(), s.truth.rstrip()) for s in samples) / len(samples)
    return {"samples": len(samples), "exact_match": em, "edit_similarity": es}


def percentile(values, q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else float("nan")
