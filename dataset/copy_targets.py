"""Copy-aware training targets: what the engine's copy model will already predict at each token.

The engine serves the model mixed with a copy model over the user's project (evaluate/context.py):

    p(t) = (1 - lam) * p_model(t) + lam * p_cache(t)

A model fine-tuned on a project with the plain next-token loss spends its updates on the project's names
and repeated lines, which the copy model supplies anyway when the other files come as `input_extra`. The
loss of the mixture itself trains the model for what it will be used in (Zhong et al. 2022, "Training
Language Models with Memory Augmentation", train with the memory instead of adding it after):

    loss = -log((1 - lam) p_model(y) + c),      c = lam * p_cache(y)  (the copy model's mass on the truth)

Its gradient is the plain one scaled by w = (1 - lam) p_model(y) / ((1 - lam) p_model(y) + c): 1 where the
copy model has no match or predicts something else (the model must be right there), near 0 where the copy
model is already right. Two numbers per token carry it, (lam, c), computed here once per corpus with the
engine's own ContextStore and the memory a request would have while typing that token: the other files of
the split (as `input_extra`) and the file's text before the token's line (the prompt before the cursor line).
The history matched is the file's last `max_order` tokens before the token, as the search's beams are.

    python -m dataset.copy_targets runs/personal/data        # writes corpus/train.copy.npy: [N, 2] float32
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from dataset.corpus import corpus_dir, load_split, load_tokenizer
from evaluate.context import ContextConfig, ContextStore


def copy_targets_path(data_dir: str | Path, split: str = "train") -> Path:
    return corpus_dir(data_dir) / f"{split}.copy.npy"


def documents(tokens: np.ndarray, eot_id: int) -> list[tuple[int, int]]:
    """(start, end) of each document of a split laid out as eot d1 eot d2 ... dn eot."""
    cuts = np.flatnonzero(tokens == eot_id).tolist()
    bounds = zip([-1] + cuts, cuts + [len(tokens)])
    return [(a + 1, b) for a, b in bounds if b > a + 1]


def build_copy_targets(data_dir: str | Path, split: str = "train", config: ContextConfig | None = None,
                       max_extra_chars: int = 256 * 1024, progress: bool = False) -> np.ndarray:
    """[N, 2] float32 aligned with the split's tokens: (lam, c) for the token at each index (0, 0 where the
    copy model has no match, at eot and at each document's first token).

    `max_extra_chars`: the other documents given as chunks, nearest in corpus order first, as much as a
    request carries (the server accepts 256 KB of `input_extra`)."""
    tokenizer = load_tokenizer(data_dir)
    tokens = np.asarray(load_split(data_dir, split, mmap=False)).astype(np.int64)
    config = config or ContextConfig()
    store = ContextStore(tokenizer, config)
    docs = documents(tokens, tokenizer.eot_id)
    texts = [tokenizer.decode(tokens[s:e].tolist()) for s, e in docs]
    out = np.zeros((len(tokens), 2), dtype=np.float32)
    token_len = store.token_len
    t0 = time.monotonic()
    for j, (s, e) in enumerate(docs):
        # The other documents by distance from this one in corpus order (files of one folder sit together).
        order = sorted((i for i in range(len(docs)) if i != j), key=lambda i: abs(i - j))
        extra, size = [], 0
        for i in order:
            if size + len(texts[i]) > max_extra_chars:
                continue
            extra.append(texts[i])
            size += len(texts[i])
        ids = tokens[s:e]
        data = texts[j].encode("utf-8", errors="surrogatepass")
        starts = np.concatenate([[0], np.cumsum(token_len[ids])[:-1]])  # byte offset of each token
        line_start, memory = -1, None
        for t in range(1, len(ids)):
            # The line the token starts on; the memory is the text before it (what the request sends).
            ls = data.rfind(b"\n", 0, int(starts[t])) + 1
            if ls != line_start or memory is None:
                line_start = ls
                memory = store.memory(data[:ls].decode("utf-8", errors="replace"), extra)
            pred = memory.predict(tuple(ids[max(0, t - config.max_order):t].tolist()))
            if pred is None:
                continue
            lam, cand, probs = pred
            hit = probs[cand == ids[t]]
            out[s + t] = (lam, lam * float(hit.sum()) if len(hit) else 0.0)
        if progress:
            print(f"copy targets: document {j + 1}/{len(docs)}, {e - s:,} tokens, "
                  f"{time.monotonic() - t0:.0f} s", flush=True)
    return out


def mixture_loss(logits: torch.Tensor, targets: torch.Tensor, copy: torch.Tensor | None) -> torch.Tensor:
    """Mean over targets != -1 of -log((1 - lam) p_model(y) + c).

    logits [B, T, V], targets [B, T] (-1: no loss), copy [B, T, 2] (lam, c) or None (plain cross-entropy;
    lam = c = 0 is plain cross-entropy too)."""
    flat = logits.float().reshape(-1, logits.shape[-1])
    y = targets.reshape(-1)
    if copy is None:
        return torch.nn.functional.cross_entropy(flat, y, ignore_index=-1)
    keep = y != -1
    logp = torch.log_softmax(flat, dim=-1).gather(1, y.clamp(min=0)[:, None]).squeeze(1)  # [B*T]
    lam, c = copy.reshape(-1, 2).unbind(-1)
    mixed = torch.logaddexp(torch.log1p(-lam) + logp, torch.log(c))  # log(0) = -inf: plain log p where c = 0
    return -(mixed * keep).sum() / keep.sum().clamp(min=1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", help="a data folder holding corpus/")
    p.add_argument("--split", default="train")
    args = p.parse_args(argv)
    t0 = time.monotonic()
    out = build_copy_targets(args.data, args.split, progress=True)
    path = copy_targets_path(args.data, args.split)
    np.save(path, out)
    matched = out[:, 0] > 0
    print(f"wrote {path}: {len(out):,} tokens, {matched.mean():.1%} with a match, mean lam {out[matched, 0].mean():.3f}, "
          f"mass on the truth {out[:, 1].sum() / max(out[:, 0].sum(), 1e-9):.1%} of lam, {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
