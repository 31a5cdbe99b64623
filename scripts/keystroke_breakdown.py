"""Where the keystrokes go: the typing simulation of `python -m evaluate`, broken down by what was typed.

    .venv/bin/python scripts/keystroke_breakdown.py --model checkpoints/default.pt --data data/default-model \
        --split valid --max-files 16 --max-chars 1000 --seed 2 --protocol project
    .venv/bin/python scripts/keystroke_breakdown.py ... --max-files 15 --protocol middle middle-nosuffix

Takes `python -m evaluate`'s file and protocol options and prints two tables for each protocol:

- characters by where they are (code / string / comment, by Python's tokenizer) and what they are
  (identifier characters, punctuation, spaces, a line's indentation, newlines): how many were typed by
  hand (the rest came with accepted suggestions), and their share of all keystrokes;
- identifiers of 4+ characters by where else the request could have seen them: earlier on the same line (L),
  earlier in the span being typed (R), in the text before the span that the requests send (P: all of it
  for `project`, the 20-line window otherwise), above that window in the file (A: never sent), in the
  `input_extra` chunks (X), in the suffix (S); keystrokes spent on them (typed characters inside, plus one
  per accepted suggestion that starts inside).

Validation files only (the test projects are for reporting, not for finding what to change). The coarser
classes every `python -m evaluate` report records (evaluate/breakdown.py) need no second typing run.
"""
from __future__ import annotations

import collections
import io
import random
import re
import sys
import tokenize
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

IDENT = re.compile(r"[A-Za-z_]\w{3,}")


def char_places(text: str) -> list[str]:
    """Per character: 'str', 'comment' or 'code' (Python's tokenizer; 'code' where it gives up)."""
    places = ["code"] * len(text)
    offsets = [0]
    for line in text.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    strings = {tokenize.STRING, tokenize.COMMENT, getattr(tokenize, "FSTRING_MIDDLE", -1)}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type in strings:
                a = offsets[tok.start[0] - 1] + tok.start[1]
                b = offsets[tok.end[0] - 1] + tok.end[1]
                places[a:b] = ["comment" if tok.type == tokenize.COMMENT else "str"] * (min(b, len(text)) - a)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass  # a file the tokenizer cannot finish: the rest counts as code
    return places


def char_class(text: str, i: int) -> str:
    c = text[i]
    if c == "\n":
        return "newline"
    if c == " " and not text[text.rfind("\n", 0, i) + 1:i].strip():
        return "indent"
    if c.isspace():
        return "space"
    return "ident" if c.isalnum() or c == "_" else "punct"


def keystrokes_in(accepted: list[tuple[int, int]], a: int, b: int) -> int:
    """Keystrokes spent on text[a:b]: characters not inside an accepted suggestion, plus one per
    suggestion accepted from inside it (`accepted`: absolute [start, end) ranges)."""
    covered = [False] * (b - a)
    n = 0
    for s, e in accepted:
        n += a <= s < b
        for i in range(max(s, a), min(e, b)):
            covered[i - a] = True
    return n + covered.count(False)


class Breakdown:
    def __init__(self):
        self.chars = collections.Counter()  # (place, class) -> characters
        self.typed = collections.Counter()  # (place, class) -> typed by hand
        self.idents = collections.defaultdict(lambda: [0, 0, 0])  # where -> [identifiers, chars, keystrokes]
        self.accepts = self.keystrokes = self.total = 0

    def add(self, text: str, places: list[str], a: int, b: int, accepted: list[tuple[int, int]], keystrokes: int,
            prompt_text: str, extra: str, suffix: str) -> None:
        """One typed span text[a:b] (places: char_places(text); accepted: absolute ranges); what the requests
        could see besides it."""
        covered = set()
        for s, e in accepted:
            covered.update(range(s, e))
        self.accepts += len(accepted)
        self.keystrokes += keystrokes
        self.total += b - a
        for i in range(a, b):
            key = (places[i], char_class(text, i))
            self.chars[key] += 1
            self.typed[key] += i not in covered
        above = text[:a - len(prompt_text)] if len(prompt_text) < a else ""
        for m in IDENT.finditer(text, a, b):
            w = m.group()
            line_start = max(a, text.rfind("\n", 0, m.start()) + 1)
            where = "".join(tag for tag, seen in (
                ("L", w in text[line_start:m.start()]), ("R", w in text[a:line_start]), ("P", w in prompt_text),
                ("A", w in above), ("X", w in extra), ("S", w in suffix)) if seen) or "new"
            row = self.idents[where]
            row[0] += 1
            row[1] += len(w)
            row[2] += keystrokes_in(accepted, m.start(), m.end())

    def tables(self) -> str:
        out = [f"{self.total:,} characters, {self.keystrokes:,} keystrokes (saved {1 - self.keystrokes / self.total:.1%}), "
               f"{self.accepts:,} of them accepts", "", "| where | what | characters | typed by hand | share of keystrokes |",
               "|---|---|---:|---:|---:|"]
        for (place, cls), n in self.chars.most_common():
            t = self.typed[(place, cls)]
            out.append(f"| {place} | {cls} | {n:,} | {t:,} ({t / n:.0%}) | {t / self.keystrokes:.1%} |")
        out += ["", "| identifier also seen in | identifiers | characters | keystrokes | per identifier |",
                "|---|---:|---:|---:|---:|"]
        for where, (n, c, k) in sorted(self.idents.items(), key=lambda x: -x[1][2]):
            out.append(f"| {where} | {n:,} | {c:,} | {k:,} ({k / self.keystrokes:.1%}) | {k / n:.2f} |")
        return "\n".join(out)


def main(argv=None) -> int:
    import torch

    from evaluate.__main__ import _region, load_texts, parse_args
    from evaluate.metrics import following_lines, prompt_at, line_starts_of, sample_regions, simulate_typing
    from evaluate.predictor import Predictor, PredictorConfig
    args = parse_args(list(sys.argv[1:] if argv is None else argv) + ["--line-samples", "0"])
    torch.set_num_threads(args.threads or 1)
    config = PredictorConfig(auto_beam_width=args.auto_beam_width)
    predictor = Predictor.from_checkpoint(args.model, config=config, quantize=args.quantize)
    texts, extras, _ = load_texts(args)
    for protocol in args.protocol:
        result = Breakdown()
        for name, text in texts.items():
            extra = extras.get(name) if protocol == "project" else None
            if protocol.startswith("middle"):
                spans = sample_regions(text, args.regions, args.region_lines, random.Random(f"{args.seed}/{name}"))
                spans = [(a, b - 1) for a, b in spans]  # the region's last newline stays (evaluate's protocol)
            else:
                spans = [_region(text, args)]
            lines = 0 if protocol == "project" else args.context_lines
            starts, places = line_starts_of(text), char_places(text)
            for a, b in spans:
                suffix = following_lines(text, b, args.suffix_lines) if protocol == "middle" else ""
                predictor.clear_cache()
                r = simulate_typing(predictor, text, None, lines, extra=extra, start=a, end=b, suffix=suffix)
                accepted = [(s + a, e + a) for s, e in r.accepted]
                result.add(text, places, a, b, accepted, r.keystrokes, prompt_at(text, starts, a, lines),
                           "\n".join(t for _, t in extra or []), suffix)
            print(f"{protocol} {name}", file=sys.stderr, flush=True)
        print(f"### {protocol}\n\n{result.tables()}\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
