"""Encoding while typing: the lines above the cursor line are remembered, only the cursor line is encoded.

Every keystroke encodes the window (~860 characters, ~0.2 ms on this CPU) and, for a long prompt, a longer
tail to choose the window start from (~1,600 characters, ~0.4 ms), although only the cursor line changed.

Byte-level BPE with GPT-2's pre-tokenizer regex
    's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
merges only inside a pre-token, and every pre-token is either whitespace only or an optional single space
followed by non-whitespace. So no pre-token spans a non-whitespace character followed by a whitespace one:

    encode(a + b) == encode(a) + encode(b)   when a ends with non-whitespace and b starts with whitespace.

The text is cut before the whitespace run that holds its last newline (`...foo)` | `\\n    bar = ba`); the
head's ids come from a small LRU keyed by the head's text, and only the rest is encoded. A tokenizer with
another pre-tokenizer is always encoded whole (`splits` is False).
"""
from __future__ import annotations

from collections import OrderedDict

from dataset.tokenizer import Tokenizer

# Split only where the rule above holds for sure: these are whitespace for Python and for the regex.
_RUN = " \t\r\n"


def split_point(text: str) -> int:
    """Where `text` can be cut so that the two parts encode independently (0: nowhere): before the
    whitespace run holding the last newline, when a non-whitespace character precedes that run."""
    j = text.rfind("\n")
    if j <= 0:
        return 0
    while j > 0 and text[j - 1] in _RUN:
        j -= 1
    if j == 0 or text[j - 1].isspace():  # exotic whitespace (\x0c, \xa0, ...): do not guess
        return 0
    return j


def splits_at_whitespace(tokenizer: Tokenizer) -> bool:
    """True when `tokenizer` pre-tokenizes with the byte-level GPT-2 regex (the rule above holds). Read from
    the tokenizer object: serialising it to JSON to look took ~75 ms per Predictor."""
    from tokenizers.pre_tokenizers import ByteLevel
    pre = tokenizer.hf.pre_tokenizer
    return isinstance(pre, ByteLevel) and bool(pre.use_regex)


class LineMemoEncoder:
    """`encode(text)` equal to `tokenizer.encode(text)`, remembering the ids of the text before its last line."""

    def __init__(self, tokenizer: Tokenizer, size: int = 8, max_head_chars: int = 32 * 1024):
        self.tokenizer = tokenizer
        self.size = size
        self.max_head_chars = max_head_chars  # longer heads are rare (tails are ~1,600 characters): not kept
        self.splits = splits_at_whitespace(tokenizer)
        self.memo: OrderedDict[str, list[int]] = OrderedDict()
        self.hits = 0

    def encode(self, text: str) -> list[int]:
        cut = split_point(text) if self.splits else 0
        if cut == 0:
            return self.tokenizer.encode(text)
        head = text[:cut]
        ids = self.memo.get(head)
        if ids is not None:
            self.memo.move_to_end(head)
            self.hits += 1
        else:
            ids = self.tokenizer.encode(head)
            if len(head) <= self.max_head_chars:
                self.memo[head] = ids
                while len(self.memo) > self.size:
                    self.memo.popitem(last=False)
        return ids + self.tokenizer.encode(text[cut:])
