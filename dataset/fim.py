"""Fill-in-the-middle training data (Bavarian et al. 2022, "Efficient Training of Language Models to Fill
in the Middle").

A left-to-right model reads a file as prefix, middle, suffix in that order, so it never conditions on the
code after the cursor. FIM moves the middle to the end: a text is cut at two uniformly random *character*
positions into (prefix, middle, suffix) and rearranged

    SPM:  <PRE> <SUF> suffix <MID> prefix middle <EOT>        (suffix first; the paper's SPM variant)
    PSM:  <PRE> prefix <SUF> suffix <MID> middle <EOT>

and the ordinary next-token loss then teaches the model to write the middle knowing both sides, and to
end it with eot where it meets the suffix. The paper: a 50 % FIM rate costs no left-to-right quality.

SPM is the order the engine uses (evaluate/fim.py): while typing, the suffix is fixed and the prefix grows,
so the token sequences of consecutive keystrokes, [PRE SUF suffix MID prefix...], share a growing prefix
(the prefix cache keeps working), and prefix + middle is one text encoded in one piece, so token healing
at the cursor works exactly as left to right. PSM is available (`spm_fraction` < 1) for comparison.

**Context-level FIM.** The transform applies to each sampled training window (seq_len + 1 tokens, about
860 characters), not to whole files: the window is short, so a file-level split would rarely put a
middle and its suffix into the same window. A window is split at eot into its documents (or pieces of
them) and each piece is transformed with probability `rate`. Because the split is at characters, the
three parts are re-encoded and the row changes length; it is brought back to seq_len + 1 tokens by
trimming the *end of the suffix* (the part farthest from the middle; at inference the suffix is also cut
to its first lines) or, when shorter, padded with eot whose targets are masked out of the loss.
"""
from __future__ import annotations

import numpy as np

from dataset.tokenizer import Tokenizer


def split_text(text: str, rng: np.random.Generator) -> tuple[str, str, str]:
    """(prefix, middle, suffix) of `text`, cut at two uniform random character positions."""
    a, b = sorted(int(x) for x in rng.integers(0, len(text) + 1, size=2))
    return text[:a], text[a:b], text[b:]


def fim_parts(tokenizer: Tokenizer, prefix: str, middle: str, suffix: str,
              spm: bool = True) -> tuple[list[int], list[int], list[int]]:
    """The FIM token sequence as (head, suffix ids, tail): head + suffix ids + tail is the whole
    sequence, without the final eot. Returned in parts so a caller can trim the suffix."""
    texts = _texts_to_encode(prefix, middle, suffix, spm)
    return _assemble(tokenizer, spm, [tokenizer.encode(t) for t in texts])


def _texts_to_encode(prefix: str, middle: str, suffix: str, spm: bool) -> tuple[str, ...]:
    # SPM: <PRE> <SUF> suffix <MID> prefix+middle (one text: encoded as left to right); PSM: <PRE> prefix
    # <SUF> suffix <MID> middle
    return (suffix, prefix + middle) if spm else (prefix, suffix, middle)


def _assemble(tokenizer: Tokenizer, spm: bool, encoded: list[list[int]]) -> tuple[list[int], list[int], list[int]]:
    """(head, suffix ids, tail) from the encodings of `_texts_to_encode`'s texts, in that order."""
    pre, suf, mid = _fim_ids(tokenizer)
    if spm:
        suffix_ids, body = encoded
        return [pre, suf], suffix_ids, [mid] + body
    prefix_ids, suffix_ids, middle_ids = encoded
    return [pre] + prefix_ids + [suf], suffix_ids, [mid] + middle_ids


def fim_encode(tokenizer: Tokenizer, text: str, rng: np.random.Generator, spm: bool = True) -> list[int]:
    """One text as a FIM sequence ending with eot (random split)."""
    head, suffix_ids, tail = fim_parts(tokenizer, *split_text(text, rng), spm=spm)
    return head + suffix_ids + tail + [tokenizer.eot_id]


def fim_decode(tokenizer: Tokenizer, ids) -> str:
    """The original text of one FIM sequence (SPM or PSM, with or without the final eot): its inverse."""
    pre, suf, mid = _fim_ids(tokenizer)
    ids = [int(i) for i in ids]
    if ids and ids[-1] == tokenizer.eot_id:
        ids = ids[:-1]
    if ids[:2] == [pre, suf]:  # SPM
        m = ids.index(mid)
        return tokenizer.decode(ids[m + 1:]) + tokenizer.decode(ids[2:m])
    s, m = ids.index(suf), ids.index(mid)  # PSM
    return tokenizer.decode(ids[1:s]) + tokenizer.decode(ids[m + 1:]) + tokenizer.decode(ids[s + 1:m])


def fim_rows(batch: np.ndarray, tokenizer: Tokenizer, rng: np.random.Generator, rate: float,
             spm_fraction: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Context-level FIM on a batch of training windows.

    batch: [B, L] token ids (L = seq_len + 1). Returns (rows [B, L], target_mask [B, L - 1] bool):
    every row keeps its length; target_mask is False for the padding targets (ignored in the loss).

    Two passes: first every row's pieces and random splits are drawn (the rng in row order, so the rows
    do not depend on how they are encoded), then all the texts are encoded in one `encode_batch` (Rust
    threads on every core, the GIL released: on a GPU machine this runs beside the training step), then each
    row is assembled and trimmed. The same rows as one piece at a time, which took 22.9 ms per 128-row batch
    on this 2-core VM against 17.4 ms now (`python -m benchmarks.batches`; more cores, more gain)."""
    eot = tokenizer.eot_id
    B, L = batch.shape
    plans = []  # per row: per piece (ids) or (spm, index of its first text in `texts`, last piece?)
    texts: list[str] = []
    for r in range(B):
        row = batch[r].tolist()  # Python ints: decode looks each one up
        cuts = np.flatnonzero(batch[r] == eot).tolist()
        # Pieces between eots; each eot stays where it was (a document boundary).
        pieces = [row[a:b] for a, b in zip([0] + [c + 1 for c in cuts], cuts + [L])]
        plan = []
        for i, piece in enumerate(pieces):
            if len(piece) >= 2 and rng.random() < rate:
                text = tokenizer.decode(piece)  # a piece cut inside a character gets U+FFFD there
                spm = bool(rng.random() < spm_fraction)
                plan.append((spm, len(texts), i == len(pieces) - 1))
                texts.extend(_texts_to_encode(*split_text(text, rng), spm))
            else:
                plan.append(piece)
        plans.append(plan)
    encoded = tokenizer.encode_batch(texts) if texts else []
    rows = np.empty_like(batch)
    mask = np.ones((B, L - 1), dtype=bool)
    for r, plan in enumerate(plans):
        out: list[list[list[int]]] = []  # per piece: [head, suffix ids, tail] or [ids]
        for item in plan:
            if isinstance(item, tuple):
                spm, at, last = item
                head, suffix_ids, tail = _assemble(tokenizer, spm, encoded[at:at + (2 if spm else 3)])
                # The middle ends with eot: the separator that follows, or one added at the row's end.
                out.append([head, suffix_ids, tail + ([eot] if last else [])])
            else:
                out.append([item])
        excess = sum(len(p) for parts in out for p in parts) + len(out) - 1 - L
        for parts in reversed(out):  # trim the ends of suffixes, last piece first
            if excess <= 0:
                break
            if len(parts) == 3:
                cut = min(excess, len(parts[1]))
                parts[1] = parts[1][:len(parts[1]) - cut]
                excess -= cut
        flat: list[int] = []
        for i, parts in enumerate(out):
            if i:
                flat.append(eot)
            for p in parts:
                flat.extend(p)
        flat = flat[:L]
        if len(flat) < L:  # shorter after re-encoding: pad, and mask the padding's targets
            mask[r, len(flat) - 1:] = False
            flat += [eot] * (L - len(flat))
        rows[r] = flat
    return rows, mask


def _fim_ids(tokenizer: Tokenizer) -> tuple[int, int, int]:
    if tokenizer.fim_ids is None:
        raise ValueError("the tokenizer has no FIM tokens (Tokenizer.with_fim_tokens adds them)")
    return tokenizer.fim_ids
