"""Project context: an n-gram copy model over the user's own code, mixed into the search.

The model's window holds ~190 tokens (~860 characters) and the 4M-parameter model knows no project it
never saw. Code is local and repetitive (Tu, Su & Devanbu 2014, "On the localness of software";
Hellendoorn & Devanbu 2017, nested file/project caches): names defined far above or in another file,
lines repeated with small changes. This module remembers that text and predicts from it:

    memory   token ids of the prompt before the cursor line (the whole text before the cursor the client
             sent, not only the window) and of the `input_extra` chunks (other files, recent edits)
    match    for a beam's history h (context ids + generated ids), the longest n <= max_order such that
             h[-n:] occurs in memory followed by a token. Candidates come from hashed k-gram indexes (the
             largest k in ORDERS with a hit), then are extended backwards token by token to their length.
    predict  p_cache(t) = share of the longest-matching occurrences followed by t (the most recent
             `max_candidates` occurrences when there are more)
    mix      p(t) = (1 - lam) * p_model(t) + lam * p_cache(t),   lam = max_weight * (1 - exp(-b / scale))
             with b the matched length in bytes: "normalise_inv" (13 bytes in 4 tokens) is strong evidence,
             a match of "\\n" + indentation is not; lam = ident_weight (0.9) once the match ends in 12+
             identifier bytes (a project name the model cannot know: `normalise_invoice_`) while the copy
             model's most likely next token goes on with the name (`total`, not the ` as` or `(` after a
             complete one). Chosen by measurement (docs/evaluation.md).

The search (search.py) mixes each beam's next-token distribution before healing masks it, so healing,
beam scores and the expected-saving cut all see the mixed probabilities.

Reuse and bounds (typing must stay fast while 200 KB of chunks come with every request):
- text is split into blocks: each `input_extra` chunk is one block; the prompt is cut into blocks before
  content-chosen newlines (a line whose crc32 is 0 mod 8 ends a block of >= 1 KB; 4 KB at most), so an
  edit far above changes one block and typing at the end only grows the last one. Each block is tokenised
  once and kept in an LRU keyed by blake2b(text), bounded in bytes.
- a memory is three segments: the `input_extra` chunks (rebuilt only when the chunks change), the prompt's
  blocks but the last (rebuilt when a block of the file completes: every 1-4 KB typed, ~20K tokens at most),
  and `recent`, the prompt's last block (re-indexed when the text before the cursor line changes, i.e. once
  per line typed). Segments are kept in an LRU keyed by their block keys, bounded in bytes, and so are the
  copy model's lookups (per set of segments). Typing inside a line reuses all of them. `recent` segments
  have their own LRU, bounded in count (`recent_segments`): one is dead once its line is done, and in the
  byte-bounded LRU thousands of them (~11 KB each for a 20-line prompt) filled the bound after a 30-minute
  16-client soak (50 MB of the server's 483 MiB), evicting the chunk and file segments that are reused.
- blocks are cut before a newline, so each block's tokens equal the whole text's tokens (byte-level BPE
  splits whitespace runs from what follows them) except at most the first token of a block.
"""
from __future__ import annotations

import hashlib
import math
import zlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from dataset.tokenizer import Tokenizer

_IDENT = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") | frozenset(range(128, 256))
ORDERS = (2, 4, 8, 16)  # k-gram indexes per segment (and 1); a hit at k is extended up to the next order
_LEVELS = (1,) + ORDERS
_P = 0x9E3779B97F4A7C15  # odd 64-bit multiplier of the polynomial k-gram hash
_MASK = (1 << 64) - 1
_POWERS = [pow(_P, j, 1 << 64) for j in range(ORDERS[-1])]  # P^j mod 2^64
_MIX = 0xD6E8FEB86659FD93  # odd: Segment keys' multiplier (see Segment)


@dataclass
class ContextConfig:
    # Longest match looked for, in tokens.
    max_order: int = 32
    # Shortest match used, in tokens (1: a lone token, e.g. the start of a name defined elsewhere).
    min_order: int = 1
    # Mixing weight lam = max_weight * (1 - exp(-matched bytes / scale_bytes)).
    max_weight: float = 0.6
    scale_bytes: float = 12.0
    # A match ending in an identifier of at least ident_bytes matched characters (a project name the model
    # cannot know: `normalise_invoice_`) mixes with at least ident_weight.
    ident_weight: float = 0.9
    ident_bytes: int = 12
    # ... only where the copy model's most likely next token goes on with the name (identifier bytes only):
    # once the name is complete (`BadArgumentUsage` + ` as`), what follows is no project name the model
    # cannot know, and a single occurrence in memory must not decide it with 0.9.
    ident_next_only: bool = True
    # Weight of an occurrence by where it is: the input_extra chunks, the file, the file's last block.
    segment_weights: tuple = (1.0, 1.0, 1.0)
    # Occurrences counted per lookup (the most recent ones in memory order).
    max_candidates: int = 256
    # Bytes of cached token ids (blocks) and of built segment indexes; least recently used go first.
    max_block_bytes: int = 32 * 1024 * 1024
    max_segment_bytes: int = 96 * 1024 * 1024
    # Segments of a prompt's last block ("recent") kept, a count: each serves the one line being typed
    # (the next line makes a new one), so only the current lines of the clients sharing the store matter.
    recent_segments: int = 16
    # Prompt blocks: cut before a newline once this long if the line's crc32 % 8 == 0, always at the max.
    block_min_chars: int = 1024
    block_max_chars: int = 4096
    # Lookups remembered per memory, across requests (beams re-ask the same histories on every keystroke
    # of a line, and the memory stays the same while typing inside it), for the last `memos` memories.
    memo_size: int = 2048
    memos: int = 4


def text_key(text: str) -> bytes:
    """The cache key of a text: its blake2b digest (16 bytes)."""
    return hashlib.blake2b(text.encode("utf-8", errors="surrogatepass"), digest_size=16).digest()


def prompt_blocks(text: str, min_chars: int, max_chars: int) -> list[str]:
    """`text` cut into blocks before content-chosen newlines (see the module docstring); "".join gives
    `text` back. The same lines give the same cuts wherever they are, so an edit moves one block only."""
    blocks, start, n = [], 0, len(text)
    pos = text.find("\n", 0)
    while pos >= 0:
        nxt = text.find("\n", pos + 1)
        line_end = nxt if nxt >= 0 else n
        length = pos - start
        if length >= max_chars or (length >= min_chars and zlib.crc32(text[pos:line_end].encode(
                "utf-8", errors="surrogatepass")) % 8 == 0):
            blocks.append(text[start:pos])
            start = pos
        pos = nxt
    blocks.append(text[start:])
    return [b for b in blocks if b]


def _kgram_hashes(t: np.ndarray, k: int, h1: np.ndarray, cache: dict) -> np.ndarray:
    """H_k[i] = sum_{j<k} (t[i-j] + 1) * P^j mod 2^64 for i >= k-1 (by doubling: H_2k = H_k + P^k H_k[-k])."""
    if k in cache:
        return cache[k]
    if k == 1:
        return h1
    half = _kgram_hashes(t, k // 2, h1, cache)
    out = np.zeros_like(h1)
    out[k - 1:] = half[k - 1:] + np.uint64(pow(_P, k // 2, 1 << 64)) * half[k // 2 - 1:len(t) - k // 2]
    cache[k] = out
    return out


def _mix(h: np.ndarray) -> np.ndarray:
    """h * an odd 64-bit constant mod 2^64 (a bijection: no two hashes become one), for uint64 arrays."""
    return h * np.uint64(_MIX)  # numpy arrays wrap around silently


def _query_hashes(hist: tuple[int, ...]) -> dict[int, np.uint64]:
    """mix(H_k) at the end of `hist` for every indexed k it is long enough for, H_k = sum_{j<k} (t[-1-j] + 1)
    * P^j: one running sum (each H_k extends the one before), mixed as the Segment keys are (Python ints:
    no numpy scalar per lookup)."""
    hashes, h = {}, 0
    for j in range(min(len(hist), _LEVELS[-1])):
        h = (h + (hist[-1 - j] + 1) * _POWERS[j]) & _MASK
        if j + 1 in _LEVELS:
            hashes[j + 1] = np.uint64(h * _MIX & _MASK)
    return hashes


class Segment:
    """Token ids of some blocks (separated by eot) and, per order k, the k-gram hashes of every position
    followed by a real token, sorted (keys) with their end positions (pos).

    The sort must keep equal hashes in memory order (the last occurrences are the latest), and numpy's stable
    sort of 64-bit keys is a merge sort, ~5x its quicksort (3.8 against 0.7 ms for 60K keys; 10 of them for
    200 KB of chunks and the file were 16 of a first request's 73 ms). So one plain sort runs over
    `mix(hash)` with its low `pos_bits` bits replaced by the position: the keys are unique, and their order
    is the stable order of the mixed hash's high bits. `mix` (a multiply by an odd constant, a bijection)
    spreads the order-1 hashes (token id + 1, small numbers) into the high bits. Lookups compare the same
    high bits; two k-grams whose mixed hashes share them (about n² / 2^(64 - pos_bits) pairs in all: 1e-4 for
    60K tokens) only add candidates, and `match_lengths` measures every candidate against the real tokens."""

    def __init__(self, blocks: list[np.ndarray], eot_id: int, token_len: np.ndarray,
                 starts: list[bool] | None = None):
        """blocks: token ids of consecutive pieces of texts; starts[i]: block i begins a new text (an eot
        separates texts; the blocks of one text join without one, so matches run across their cuts)."""
        parts = []
        for i, b in enumerate(blocks):
            if i and (starts is None or starts[i]):
                parts.append(np.array([eot_id], dtype=np.int32))
            parts.append(b)
        if parts:
            parts.append(np.array([eot_id], dtype=np.int32))
        t = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
        self.tokens = t  # [N] int32
        self.byte_len = token_len[t].astype(np.int32) if len(t) else np.zeros(0, dtype=np.int32)  # [N]
        n = len(t)
        # End positions i with a next token that is text (not eot, not past the end).
        follows = np.zeros(n, dtype=bool)
        if n > 1:
            follows[:-1] = t[1:] != eot_id
        h1 = t.astype(np.uint64) + np.uint64(1)
        cache: dict = {}
        self.keys: dict[int, np.ndarray] = {}
        self.pos: dict[int, np.ndarray] = {}
        followed = np.nonzero(follows)[0].astype(np.int32)
        pos_bits = max(int(n).bit_length(), 1)  # every position fits
        low = np.uint64((1 << pos_bits) - 1)
        self.high = ~low  # the bits of a mixed hash kept in a key
        for k in _LEVELS:
            ends = followed[followed >= k - 1]
            keys = (_mix(_kgram_hashes(t, k, h1, cache)[ends]) & self.high) | ends.astype(np.uint64)
            keys.sort()  # unique keys: the plain sort is the stable one (above)
            self.keys[k], self.pos[k] = keys & self.high, (keys & low).astype(np.int32)
        self.nbytes = t.nbytes + self.byte_len.nbytes + sum(a.nbytes for a in self.keys.values()) \
            + sum(a.nbytes for a in self.pos.values())

    def candidates(self, hashes: dict[int, np.uint64], max_candidates: int) -> tuple[int, np.ndarray]:
        """(k, end positions) for the largest indexed k whose hash of the history's last k tokens
        (`hashes`, mixed, from `_query_hashes`) occurs here."""
        for k in reversed(_LEVELS):
            if k not in hashes:
                continue
            keys, h = self.keys[k], hashes[k] & self.high
            lo = int(np.searchsorted(keys, h, side="left"))
            hi = int(np.searchsorted(keys, h, side="right"))
            if hi > lo:
                return k, self.pos[k][max(lo, hi - max_candidates):hi]
        return 0, np.zeros(0, dtype=np.int32)

    def match_lengths(self, ends: np.ndarray, hist_rev: np.ndarray, upto: int) -> tuple[np.ndarray, np.ndarray]:
        """(tokens, bytes) matched backwards from each end position against hist_rev ([L], the history's
        last tokens, newest first), at most `upto` tokens: int arrays [C]."""
        L = min(upto, len(hist_rev))
        offsets = np.arange(L, dtype=np.int64)
        idx = ends[:, None].astype(np.int64) - offsets[None, :]  # [C, L]
        valid = idx >= 0
        same = valid & (self.tokens[np.maximum(idx, 0)] == hist_rev[None, :L])
        run = np.cumprod(same, axis=1)  # 1 while every token so far matched
        n_tok = run.sum(axis=1)
        n_bytes = (run * self.byte_len[np.maximum(idx, 0)]).sum(axis=1)
        return n_tok, n_bytes


class Memory:
    """The segments of one request's context; `predict(history)` is the copy model."""

    def __init__(self, segments: list[Segment], config: ContextConfig,
                 ident_tokens: np.ndarray | None = None, token_len: np.ndarray | None = None,
                 memo: OrderedDict | None = None, weights: list[float] | None = None):
        weights = weights or [1.0] * len(segments)
        self.weights = [w for s, w in zip(segments, weights) if len(s.tokens)]
        self.segments = [s for s in segments if len(s.tokens)]
        self.config = config
        self.ident_tokens = ident_tokens  # [V] bool: the token is all identifier bytes
        self.token_len = token_len  # [V] bytes per token
        self.memo: OrderedDict = OrderedDict() if memo is None else memo  # history -> (prediction,)

    def predict(self, history: tuple[int, ...]) -> tuple[float, np.ndarray, np.ndarray] | None:
        """(lam, token ids [K], probabilities [K]) of the copy model after `history`, or None when no
        suffix of it (min_order tokens at least) occurs in memory followed by a token."""
        cfg = self.config
        hist = tuple(history[-cfg.max_order:])
        hit = self.memo.get(hist)
        if hit is not None:
            self.memo.move_to_end(hist)
            return hit[0]
        result = self._predict(hist)
        self.memo[hist] = (result,)
        if len(self.memo) > cfg.memo_size:
            self.memo.popitem(last=False)
        return result

    def _predict(self, hist: tuple[int, ...]):
        cfg = self.config
        if not hist:
            return None
        hist_rev = np.array(hist[::-1], dtype=np.int32)
        hashes = _query_hashes(hist)  # once for every segment
        found = []  # (segment, ends, tokens matched, bytes matched, weight)
        for seg, weight in zip(self.segments, self.weights):
            k, ends = seg.candidates(hashes, cfg.max_candidates)
            if k == 0:
                continue
            # no hit at the next indexed order: the match is shorter than it (the last: up to max_order)
            level = _LEVELS.index(k)
            upto = _LEVELS[level + 1] - 1 if level + 1 < len(_LEVELS) else cfg.max_order
            n_tok, n_bytes = seg.match_lengths(ends, hist_rev, max(upto, k))
            found.append((seg, ends, n_tok, n_bytes, weight))
        if not found:
            return None
        best = max(int(n.max()) for _, _, n, _, _ in found)
        if best < cfg.min_order:
            return None
        nexts, weights, matched_bytes = [], [], 0
        for seg, ends, n_tok, n_bytes, weight in found:
            sel = n_tok == best
            if sel.any():
                nexts.append(seg.tokens[ends[sel] + 1])
                weights.append(np.full(int(sel.sum()), weight, dtype=np.float64))
                matched_bytes = max(matched_bytes, int(n_bytes[sel].max()))
        ids, inverse = np.unique(np.concatenate(nexts), return_inverse=True)
        counts = np.bincount(inverse, weights=np.concatenate(weights))
        lam = cfg.max_weight * (1 - math.exp(-matched_bytes / cfg.scale_bytes))
        if cfg.ident_weight > lam and self.ident_tokens is not None:
            ident = 0  # identifier bytes at the end of the matched history
            for tok in hist[::-1][:best]:
                if not self.ident_tokens[tok]:
                    break
                ident += self.token_len[tok]
            if ident >= cfg.ident_bytes and (not cfg.ident_next_only or self.ident_tokens[ids[counts.argmax()]]):
                lam = cfg.ident_weight
        return lam, ids.astype(np.int64), (counts / counts.sum()).astype(np.float32)


@dataclass
class CutText:
    """One request's texts in blocks, each as (text_key(block), block): the prompt's and the chunks'."""
    prompt: list[tuple[bytes, str]]
    chunks: list[tuple[bytes, str]]
    chunk_starts: list[bool]  # [len(chunks)]: the block starts a chunk


class ContextStore:
    """Builds `Memory`s for requests, reusing tokenised blocks and built segments across requests (both
    LRUs bounded in bytes). Not thread-safe: the predictor calls it under its lock."""

    def __init__(self, tokenizer: Tokenizer, config: ContextConfig | None = None):
        self.tokenizer = tokenizer
        self.config = config or ContextConfig()
        self.token_len = np.array([len(b) for b in tokenizer.token_bytes], dtype=np.int32)
        self.ident_tokens = np.array([bool(b) and all(c in _IDENT for c in b) for b in tokenizer.token_bytes])
        self.blocks: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self.block_bytes = 0
        self.segments: OrderedDict[tuple, Segment] = OrderedDict()  # input_extra and file segments
        self.segment_bytes = 0
        self.recent: OrderedDict[tuple, Segment] = OrderedDict()  # the prompts' last blocks
        self.memos: OrderedDict[tuple, OrderedDict] = OrderedDict()
        self._last_cut: tuple | None = None  # (prompt_text, extra, CutText) of the last request
        self._last: tuple | None = None  # (CutText, Memory) of the last request
        self.stats = {"blocks_tokenised": 0, "chars_tokenised": 0, "segments_built": 0, "block_evictions": 0,
                      "segment_evictions": 0}

    # ---------------------------------------------------------------- requests
    def cut(self, prompt_text: str, extra: list[str]) -> CutText:
        """The blocks of `prompt_text` and of the extra chunks with their keys (names.py reads them too).
        Typing inside a line sends the same text before it and the same chunks: the same cut (string equality
        is a memcmp, ~20 us for 200 KB, against ~1 ms to cut and hash the blocks again)."""
        last = self._last_cut
        if last is not None and last[0] == prompt_text and last[1] == extra:
            return last[2]
        cfg = self.config
        prompt_parts = prompt_blocks(prompt_text, cfg.block_min_chars, cfg.block_max_chars)
        # Chunks are cut into blocks too: an edited file re-tokenises one block, and a batch of similar
        # sizes spreads evenly over the cores (200 KB in 8 files: 241 ms as files, 132 ms as 167 blocks).
        chunk_blocks, chunk_starts = [], []
        for text in extra:
            parts = prompt_blocks(text, cfg.block_min_chars, cfg.block_max_chars)
            chunk_blocks += parts
            chunk_starts += [True] + [False] * (len(parts) - 1)
        cut = CutText(list(zip(map(text_key, prompt_parts), prompt_parts)),
                      list(zip(map(text_key, chunk_blocks), chunk_blocks)), chunk_starts)
        self._last_cut = (prompt_text, list(extra), cut)
        return cut

    def memory(self, prompt_text: str, extra: list[str]) -> Memory:
        """The memory of one request: `prompt_text` (what precedes the cursor line) and the extra chunks."""
        cut = self.cut(prompt_text, extra)
        if self._last is not None and self._last[0] is cut:  # the same texts as the last request
            return self._last[1]
        memory = self._build_memory(cut)
        self._last = (cut, memory)
        return memory

    def _build_memory(self, cut: CutText) -> Memory:
        cfg = self.config
        prompt_parts = cut.prompt
        groups = [(cut.chunks, cut.chunk_starts),  # input_extra
                  (prompt_parts[:-1], [True] + [False] * (len(prompt_parts) - 2)),  # the file
                  (prompt_parts[-1:], [True])]  # its last block
        keys = self._ensure_blocks([block for g, _ in groups for block in g])
        group_keys, start = [], 0
        for g, starts in groups:
            # a block's key and whether it starts a text: the same blocks joined differently differ
            group_keys.append(tuple(zip(keys[start:start + len(g)], starts)))
            start += len(g)
        segments = [self._segment(k, recent=i == 2) for i, k in enumerate(group_keys) if k]
        weights = [w for k, w in zip(group_keys, cfg.segment_weights) if k]
        memo_key = tuple(group_keys)  # the same segments predict the same: share the lookups
        memo = self.memos.get(memo_key)
        if memo is None:
            memo = self.memos[memo_key] = OrderedDict()
            while len(self.memos) > cfg.memos:
                self.memos.popitem(last=False)
        self.memos.move_to_end(memo_key)
        return Memory(segments, cfg, self.ident_tokens, self.token_len, memo, weights)

    def usage(self) -> dict:
        return {"context_blocks": len(self.blocks), "context_block_bytes": self.block_bytes,
                "context_segments": len(self.segments) + len(self.recent),
                "context_segment_bytes": self.segment_bytes + sum(s.nbytes for s in self.recent.values()),
                **{f"context_{k}": v for k, v in self.stats.items()}}

    def clear(self) -> None:
        self.blocks.clear()
        self.segments.clear()
        self.recent.clear()
        self.memos.clear()
        self._last_cut = self._last = None
        self.block_bytes = self.segment_bytes = 0

    # ---------------------------------------------------------------- caches
    def _ensure_blocks(self, blocks: list[tuple[bytes, str]]) -> list[bytes]:
        """Keys of the (key, text) blocks, tokenising (in one parallel batch) the ones not cached."""
        keys = [key for key, _ in blocks]
        missing = {}
        for key, text in blocks:
            if key in self.blocks:
                self.blocks.move_to_end(key)
            else:
                missing[key] = text
        if missing:
            encoded = self.tokenizer.encode_batch(list(missing.values()))
            for key, ids in zip(missing, encoded):
                arr = np.asarray(ids, dtype=np.int32)
                self.blocks[key] = arr
                self.block_bytes += arr.nbytes
                self.stats["blocks_tokenised"] += 1
                self.stats["chars_tokenised"] += len(missing[key])
        self._evict(self.blocks, "block_bytes", self.config.max_block_bytes, keep=set(keys),
                    size=lambda a: a.nbytes, stat="block_evictions")
        return keys

    def _segment(self, keys: tuple[bytes, ...], recent: bool = False) -> Segment:
        lru = self.recent if recent else self.segments
        seg = lru.get(keys)
        if seg is not None:
            lru.move_to_end(keys)
            return seg
        seg = Segment([self.blocks[k] for k, _ in keys], self.tokenizer.eot_id, self.token_len,
                      [start for _, start in keys])
        lru[keys] = seg
        self.stats["segments_built"] += 1
        if recent:
            while len(lru) > max(1, self.config.recent_segments):
                lru.popitem(last=False)
                self.stats["segment_evictions"] += 1
            return seg
        self.segment_bytes += seg.nbytes
        self._evict(self.segments, "segment_bytes", self.config.max_segment_bytes, keep={keys},
                    size=lambda s: s.nbytes, stat="segment_evictions")
        return seg

    def _evict(self, lru: OrderedDict, total_attr: str, limit: int, keep: set, size, stat: str) -> None:
        """Drop least recently used entries until within `limit` (never the ones this request uses)."""
        total = getattr(self, total_attr)
        for key in list(lru):
            if total <= limit:
                break
            if key in keep:
                continue
            total -= size(lru.pop(key))
            self.stats[stat] += 1
        setattr(self, total_attr, total)
