"""Token healing: back off the partly typed last token(s) and make generation re-type them exactly.

The prompt usually ends mid-word (`self.assertEq`). Its BPE tokens end with a fragment (`Eq`) that the
model rarely saw as a token of its own, because in training text the whole word was merged (`Equal`).
Feeding the fragment conditions the model on a tokenization it never saw. Instead we drop the tokens
covering the trailing identifier fragment (at least the last token) from the context, and while
generating we only allow tokens consistent with the dropped bytes R:

    token t is allowed  <=>  bytes(t) is a prefix of R   (t re-types part of R), or
                             R is a prefix of bytes(t)   (t finishes R and continues with new text)

Allowed tokens keep their model probabilities (search.py divides whole paths by P(typed) at the end),
so the reported probabilities are P(continuation | what was typed).

`TokenIndex` answers both questions in O(len(R) + log V): a dict from bytes to id for the prefixes of R,
and the token byte strings sorted, where the tokens starting with R form one contiguous range.
"""
from __future__ import annotations

import bisect
import re
from functools import lru_cache

import numpy as np
import torch

from dataset.tokenizer import Tokenizer

# The trailing identifier fragment of a prompt (unicode letters count as identifier characters).
_TRAILING_WORD = re.compile(r"\w+\Z")


class TokenIndex:
    """Lookups over `tokenizer.token_bytes` for healing and for prefix probabilities."""

    def __init__(self, tokenizer: Tokenizer):
        self.token_bytes = tokenizer.token_bytes
        self.vocab_size = len(self.token_bytes)
        # Tokens with no text (eot, special tokens) are never allowed while re-typing.
        self.by_bytes: dict[bytes, int] = {}
        for i, b in enumerate(self.token_bytes):
            if b and b not in self.by_bytes:
                self.by_bytes[b] = i
        self.max_token_len = max((len(b) for b in self.token_bytes), default=1)
        # Non-empty tokens in byte order: tokens starting with a given prefix are a contiguous range.
        order = sorted((b, i) for i, b in enumerate(self.token_bytes) if b)
        self.sorted_bytes: list[bytes] = [b for b, _ in order]
        self.sorted_ids = torch.tensor([i for _, i in order], dtype=torch.long)  # [V']
        self._allowed = lru_cache(maxsize=4096)(self._allowed_uncached)
        self._ranges = lru_cache(maxsize=65536)(self._prefix_ranges_uncached)
        # Tokens with no text other than eot (special tokens): never generated. LongTensor[n], built once
        # (a scan of the vocabulary per request cost ~0.3 ms).
        self.never_generated = torch.tensor([i for i, b in enumerate(self.token_bytes)
                                             if not b and i != tokenizer.eot_id], dtype=torch.long)

    def prefix_range(self, prefix: bytes) -> tuple[int, int]:
        """[lo, hi) in sorted order of the tokens whose bytes start with `prefix`."""
        lo = bisect.bisect_left(self.sorted_bytes, prefix)
        hi = bisect.bisect_left(self.sorted_bytes, prefix + b"\xff" * (self.max_token_len + 1), lo)
        return lo, hi

    def allowed(self, remaining: bytes) -> torch.Tensor:
        """Ids of the tokens allowed while `remaining` typed bytes are still to be re-typed: LongTensor[n]."""
        return self._allowed(remaining)

    def _allowed_uncached(self, remaining: bytes) -> torch.Tensor:
        ids = []
        for n in range(1, min(len(remaining), self.max_token_len) + 1):  # tokens that are prefixes of R
            i = self.by_bytes.get(remaining[:n])
            if i is not None:
                ids.append(i)
        lo, hi = self.prefix_range(remaining)  # tokens that start with R (includes R itself, if a token)
        extra = self.sorted_ids[lo:hi].tolist()
        return torch.tensor(sorted(set(ids) | set(extra)), dtype=torch.long)

    def prefix_ranges(self, token: int) -> tuple[tuple[int, int], ...]:
        """For m = 1 .. len(bytes(token)) - 1: the sorted-order range of tokens starting with bytes[:m]."""
        return self._ranges(token)

    def _prefix_ranges_uncached(self, token: int) -> tuple[tuple[int, int], ...]:
        b = self.token_bytes[token]
        return tuple(self.prefix_range(b[:m]) for m in range(1, len(b)))


def back_off(tokenizer: Tokenizer, prompt: str, ids: list[int], max_tokens: int = 3) -> int:
    """How many trailing tokens of `ids` (the encoding of `prompt`) to drop and re-type while generating:
    every token overlapping the trailing identifier fragment, at least one (the last token may merge with
    what comes next: `(` + `)` -> `()`, `\\n` + spaces), at most `max_tokens`."""
    if not ids:
        return 0
    m = _TRAILING_WORD.search(prompt)
    word_start = len(prompt[:m.start()].encode("utf-8")) if m else None
    tb = tokenizer.token_bytes
    n, end = 0, sum(len(tb[i]) for i in ids)
    while n < min(len(ids), max_tokens):
        n += 1
        end -= len(tb[ids[-n]])  # byte offset where the n-th token from the end starts
        if word_start is None or end <= word_start:
            break
    return n


def token_offsets(tokenizer: Tokenizer, ids: list[int]) -> np.ndarray:
    """Byte offset where each token starts, plus the total length at the end: int64[len(ids) + 1]."""
    lengths = np.fromiter((len(tokenizer.token_bytes[i]) for i in ids), dtype=np.int64, count=len(ids))
    return np.concatenate(([0], np.cumsum(lengths)))
