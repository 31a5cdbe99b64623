"""Experiment (measured, not kept): identifier completion from the request's memory as a post-search override.

    .venv/bin/python scripts/identifier_lexicon.py project '{"min": 2, "share": 0.5}' --model checkpoints/default.pt \
        --data data/default-model --split valid --max-files 16 --max-chars 1000 --seed 2 --protocol project

When the text before the cursor ends in an identifier prefix p (at least `min` characters) and the engine's top
suggestion does not complete p into an identifier that occurs in the memory (the text before p, the
input_extra chunks, the suffix), offer the rest of the most frequent memory identifier that extends p, if it has
at least `share` of the occurrences of all such identifiers (and `count` occurrences). '{}' = the engine alone.
Modes: `project` (the project-aware protocol), `middle` (edit in the middle, the rest of the file as suffix) or
`middle-nosuffix` (the same regions without it).
"""
import collections
import json
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from evaluate.__main__ import _region, _retype_regions, load_texts, parse_args  # noqa: E402
from evaluate.metrics import sample_regions, simulate_typing  # noqa: E402
from evaluate.predictor import Completion, Predictor, PredictorConfig  # noqa: E402

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TAIL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")


class LexiconOverride:
    def __init__(self, predictor, rule: dict):
        self.predictor, self.rule, self.memo, self.overrides = predictor, rule, {}, 0

    def clear_cache(self):
        self.predictor.clear_cache()

    def counts(self, texts):
        key = tuple(map(hash, texts))
        if key not in self.memo:
            self.memo = {key: collections.Counter(w for t in texts for w in IDENT.findall(t))}
        return self.memo[key]

    def complete(self, prompt, kind=None, max_suggestions=1, extra=None, suffix=""):
        out = self.predictor.complete(prompt, kind=kind, max_suggestions=max_suggestions, extra=list(extra or []),
                                       suffix=suffix)
        m = TAIL.search(prompt[-200:])
        if not self.rule or not m or len(m.group()) < self.rule.get("min", 2):
            return out
        p = m.group()
        counts = self.counts([prompt[:len(prompt) - len(p)], *(extra or []), suffix])
        s = out[0].text if out else ""
        completed = p + re.match(r"[A-Za-z0-9_]*", s).group()
        if len(completed) > len(p) and counts.get(completed, 0) > 0:
            return out  # the engine completes a known identifier
        cands = {w: c for w, c in counts.items() if w.startswith(p) and len(w) > len(p)}
        if not cands:
            return out
        w, c = max(cands.items(), key=lambda x: x[1])
        if c / sum(cands.values()) < self.rule.get("share", 0.5) or c < self.rule.get("count", 1):
            return out
        self.overrides += 1
        return [Completion(text=w[len(p):], prob=0.0)]


def main():
    mode, rule = sys.argv[1], json.loads(sys.argv[2])
    args = parse_args(sys.argv[3:] + ["--line-samples", "0"])
    torch.set_num_threads(1)
    texts, extras = load_texts(args)
    lex = LexiconOverride(Predictor.from_checkpoint(args.model, config=PredictorConfig(), quantize="auto"), rule)
    chars = keystrokes = 0
    for name, text in texts.items():
        lex.clear_cache()
        if mode == "project":
            start, end = _region(text, args)
            r = simulate_typing(lex, text, None, 0, extra=extras.get(name), start=start, end=end)
        else:
            regions = sample_regions(text, args.regions, args.region_lines, random.Random(f"{args.seed}/{name}"))
            r = _retype_regions(lex, text, regions, None, args,
                                suffix_lines=args.suffix_lines if mode == "middle" else None)
            if r is None:
                continue
        chars, keystrokes = chars + r.chars, keystrokes + r.keystrokes
    print(f"{mode} {json.dumps(rule)}: {chars} characters, saved {1 - keystrokes / chars:.2%}, {lex.overrides} overrides")


if __name__ == "__main__":
    main()
