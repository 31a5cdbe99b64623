"""Fit the copy model's mixing weight (evaluate/context.py) by likelihood on the VALIDATION split.

The copy model predicts p_cache after the longest match of the history in the user's code, and the engine
mixes p = (1 - lam) p_model + lam p_cache. lam should be the chance that the copy is right where the model
is not, and that depends on more than the match's length: how many occurrences agree, whether the match
ends inside a project identifier, how sure the model already is. This script collects, for every token of
the validation projects' files (typed top to bottom: the memory is the file before the token's line + the
project's other files, as the project-aware protocol sends them), the match's features, p_model(y) from the
model's window and p_cache(y), and fits

    lam = sigmoid(w . features)      maximising  sum log((1 - lam) p_model(y) + lam p_cache(y))

then prints the log-loss (bits per token over the matched tokens) of no mixing, of the shipped formula and of
the fit, and the weights to put in `ContextConfig.gate`.

    .venv/bin/python scripts/fit_context_gate.py [--model checkpoints/default.pt] [--data data/default-model]
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@torch.inference_mode()
def model_probs(model, ids: list[int], eot: int, window: int) -> np.ndarray:
    """[N, 2]: p_model(ids[i]) and max_t p_model(t) after a window of at most `window` tokens (overlapping
    windows with stride window/2, each token scored in the second half of one, as the engine's window)."""
    inputs = [eot] + ids[:-1]
    out = np.zeros((len(ids), 2), dtype=np.float64)
    half = window // 2
    starts = list(range(0, max(1, len(ids) - half), half))
    for s in starts:
        x = torch.tensor([inputs[s:s + window]])
        logits, _ = model(x, None)
        p = torch.softmax(logits[0].float(), dim=-1)  # [T, V]
        lo = 0 if s == 0 else half
        y = torch.tensor(ids[s + lo:s + x.shape[1]])
        out[s + lo:s + x.shape[1], 0] = p[lo:lo + len(y)].gather(1, y[:, None])[:, 0].numpy()
        out[s + lo:s + x.shape[1], 1] = p[lo:lo + len(y)].max(-1).values.numpy()
    return out


def collect(model, tokenizer, files, config, window: int):
    """Per matched token: (features [F], p_model(y), p_cache(y)) of every file, memory as when typing."""
    from evaluate.context import ContextStore, gate_features
    rows = []
    for name, text, extra in files:
        store = ContextStore(tokenizer, config)
        ids = tokenizer.encode(text)
        pm = model_probs(model, ids, tokenizer.eot_id, window)
        ends = np.cumsum([len(tokenizer.token_bytes[t]) for t in ids])  # byte offset after each token
        data = text.encode("utf-8")
        line_start = 0
        memory = store.memory("", extra)
        for i, tok in enumerate(ids):
            start = ends[i] - len(tokenizer.token_bytes[tok])
            nl = data.rfind(b"\n", 0, start) + 1
            if nl != line_start:  # a new line: the memory is the text before it
                line_start = nl
                memory = store.memory(data[:nl].decode("utf-8", "replace"), extra)
            match = memory.match(tuple(ids[max(0, i - config.max_order):i]))
            if match is None:
                continue
            where = np.nonzero(match.ids == tok)[0]
            pc = float(match.probs[where[0]]) if len(where) else 0.0
            rows.append((gate_features(match, pm[i, 1]), pm[i, 0], pc, memory.gate(match)))
    feats = np.array([r[0] for r in rows])
    return feats, np.array([r[1] for r in rows]), np.array([r[2] for r in rows]), np.array([r[3] for r in rows])


def bits(lam, pm, pc):
    return float(-np.log2((1 - lam) * pm + lam * pc + 1e-12).mean())


def fit(feats, pm, pc, steps: int = 300):
    x = torch.tensor(feats, dtype=torch.float64)
    pm_t, pc_t = torch.tensor(pm), torch.tensor(pc)
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        lam = torch.sigmoid(x @ w)
        loss = -torch.log((1 - lam) * pm_t + lam * pc_t + 1e-12).mean()
        loss.backward()
        return loss
    opt.step(closure)
    return w.detach().numpy()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="checkpoints/default.pt")
    p.add_argument("--data", default="data/default-model")
    p.add_argument("--split", default="valid")
    p.add_argument("--max-chars", type=int, default=8000, help="of each file (its start)")
    p.add_argument("--extra-chars", type=int, default=200_000)
    p.add_argument("--drop", nargs="*", default=[], help="features left out (GATE_FEATURES names)")
    p.add_argument("--holdout", type=float, default=0.3, help="share of files (every k-th) scored, not fitted")
    args = p.parse_args()
    torch.set_num_threads(1)
    from evaluate.context import GATE_FEATURES, ContextConfig
    from evaluate.project import neighbours, split_projects
    from serving.loading import load_for_inference
    ckpt, model, _ = load_for_inference(args.model, device="cpu")
    tokenizer = ckpt.tokenizer
    window = ckpt.config.max_len
    files = []
    for project, members in sorted(split_projects(args.data, args.split).items()):
        texts = {rel: path.read_text(encoding="utf-8") for rel, path in members.items()}
        if len(texts) < 3:  # a project context to use
            continue
        for rel, text in sorted(texts.items()):
            if len(text) > 500:
                files.append((f"{project}/{rel}", text[:args.max_chars], neighbours(rel, texts, args.extra_chars)))
    every = max(2, round(1 / args.holdout)) if args.holdout > 0 else 0
    held = [f for i, f in enumerate(files) if every and i % every == 0]
    fitted = [f for i, f in enumerate(files) if not (every and i % every == 0)]
    t0 = time.time()
    config = replace(ContextConfig(), gate=None)  # memory.gate(): the formula, for comparison
    train = collect(model, tokenizer, fitted, config, window)
    test = collect(model, tokenizer, held, config, window) if held else train
    print(f"{len(fitted)} files fitted ({len(train[0])} matched tokens), {len(held)} held out "
          f"({len(test[0])}), {time.time() - t0:.0f} s")
    keep = np.array([f not in args.drop for f in GATE_FEATURES], dtype=np.float64)
    train, test = (train[0] * keep, *train[1:]), (test[0] * keep, *test[1:])
    w = fit(*train[:3])
    print("\n| lam | bits/token, fitted files | bits/token, held-out files |\n|---|---:|---:|")
    for name, lam_of in (("0 (no copy model)", lambda d: np.zeros(len(d[1]))),
                         ("shipped formula", lambda d: d[3]),
                         ("fitted gate", lambda d: 1 / (1 + np.exp(-(d[0] @ w))))):
        print(f"| {name} | {bits(lam_of(train), *train[1:3]):.4f} | {bits(lam_of(test), *test[1:3]):.4f} |")
    print("\ngate = (" + ", ".join(f"{x:.4f}" for x in w) + ")  # " + ", ".join(GATE_FEATURES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
