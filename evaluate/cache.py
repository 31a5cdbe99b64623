"""Prefix cache: model states keyed by the token ids they have consumed (LRU).

Typing one more character changes the end of the prompt only, so the state after the longest cached
prefix of the new token ids can be reused and only the remaining ids fed. Keys are token-id tuples,
not text: appending a character can re-tokenize the last token(s) (`fo` -> `foo`, `(` -> `()`), and a key
is only reused when it is a true prefix of the new ids. States are never modified (models.base), so one
cached state can be shared by many requests.

Each entry also keeps the logits after its last token ([V]), so a fully cached prompt needs no forward.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class CacheEntry:
    state: Any  # the model state after feeding the key (batch of one; a search's batch step: B rows)
    logits: torch.Tensor  # [V] logits predicting the token after the key ([B, V] for B rows)


class PrefixCache:
    def __init__(self, capacity: int):
        if capacity < 0:
            raise ValueError(f"cache capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        self.entries: OrderedDict[tuple[int, ...], CacheEntry] = OrderedDict()
        self.hits = 0  # lookups that reused at least one token
        self.misses = 0
        self.tokens_reused = 0

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, ids: tuple[int, ...]) -> CacheEntry | None:
        """The entry for exactly `ids` (no statistics)."""
        entry = self.entries.get(ids)
        if entry is not None:
            self.entries.move_to_end(ids)
        return entry

    def longest_prefix(self, ids: tuple[int, ...], count: bool = True) -> tuple[int, CacheEntry | None]:
        """(n, entry) for the longest cached key equal to ids[:n]; (0, None) when there is none.
        A linear scan: capacities are small (tens) and tuple slices compare in C."""
        best_n, best = 0, None
        for key, entry in self.entries.items():
            n = len(key)
            if best_n < n <= len(ids) and ids[:n] == key:
                best_n, best = n, key
        if count:
            self.record(best_n)
        if best is None:
            return 0, None
        self.entries.move_to_end(best)
        return best_n, self.entries[best]

    def record(self, reused: int) -> None:
        if reused:
            self.hits += 1
            self.tokens_reused += reused
        else:
            self.misses += 1

    def put(self, ids: tuple[int, ...], entry: CacheEntry) -> None:
        if self.capacity == 0 or not ids:
            return
        self.entries[ids] = entry
        self.entries.move_to_end(ids)
        while len(self.entries) > self.capacity:
            self.entries.popitem(last=False)

    def clear(self) -> None:
        self.entries.clear()
