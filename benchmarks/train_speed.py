"""Training speed of each architecture on this machine: tokens/second for full training steps
(forward, cross-entropy, backward, clip, AdamW), fp32 and bf16 autocast, at stated sizes.

    python -m benchmarks --only train_speed            # or: python -m benchmarks.train_speed
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from models import ModelConfig, build_model

# (label, ModelConfig overrides): the sizes docs/training.md discusses.
SIZES = [
    ("lstm 2x512", dict(arch="lstm", d_model=512, n_layers=2)),
    ("highway 2x256 depth 3", dict(arch="highway", d_model=256, n_layers=2, rhn_depth=3)),
    ("transformer 4x256", dict(arch="transformer", d_model=256, n_layers=4, n_heads=8)),
    # the fine-tune's setting (scripts/finetune.py): no dropout on the attention weights, so the fused kernel runs
    ("transformer 4x256, attention dropout 0", dict(arch="transformer", d_model=256, n_layers=4, n_heads=8,
                                                    attn_dropout=0.0)),
    ("transformer 6x256", dict(arch="transformer", d_model=256, n_layers=6, n_heads=8)),
    ("transformer 4x384", dict(arch="transformer", d_model=384, n_layers=4, n_heads=6)),
    ("transformer_xl 4x256 mem 256", dict(arch="transformer_xl", d_model=256, n_layers=4, n_heads=8, mem_len=256)),
]


def add_arguments(parser: argparse.ArgumentParser):
    g = parser.add_argument_group("train_speed")
    g.add_argument("--train-steps", type=int, default=3, help="timed steps per model (after 1 warm-up)")
    g.add_argument("--train-batch", type=int, default=8)
    g.add_argument("--train-seq", type=int, default=256)
    g.add_argument("--train-threads", type=int, default=0, help="0: torch's default")


def vocab_size(data: str) -> int:
    meta = Path(data) / "corpus" / "meta.json"
    return json.loads(meta.read_text())["vocab_size"] if meta.exists() else 4096


def tokens_per_second(cfg: ModelConfig, batch: int, seq: int, steps: int, bf16: bool) -> float:
    return steps * batch * seq / sum(step_seconds(cfg, batch, seq, steps, bf16))


def step_seconds(cfg: ModelConfig, batch: int, seq: int, steps: int, bf16: bool, warmup: int = 1) -> list[float]:
    """Seconds of each of `steps` full training steps, after `warmup` untimed ones (allocators, kernels)."""
    torch.manual_seed(0)
    model = build_model(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randint(0, cfg.vocab_size, (batch, seq + 1))
    state = None
    seconds = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits, state = model(x[:, :-1], state if cfg.arch == "transformer_xl" else None)
            loss = F.cross_entropy(logits.float().reshape(-1, cfg.vocab_size), x[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= warmup:
            seconds.append(time.perf_counter() - t0)
    return seconds


def run(args) -> str:
    if getattr(args, "train_threads", 0):
        torch.set_num_threads(args.train_threads)
    vocab = vocab_size(getattr(args, "data", "data"))
    batch, seq, steps = args.train_batch, args.train_seq, args.train_steps
    rows = ["| model | params | tokens/s fp32 | tokens/s bf16 | threads |", "|---|---|---|---|---|"]
    for label, overrides in SIZES:
        cfg = ModelConfig(vocab_size=vocab, max_len=seq, dropout=0.1, **overrides)
        params = build_model(cfg).num_params()
        fp32 = tokens_per_second(cfg, batch, seq, steps, bf16=False)
        bf16 = tokens_per_second(cfg, batch, seq, steps, bf16=True)
        rows.append(f"| {label} | {params / 1e6:.1f}M | {fp32:,.0f} | {bf16:,.0f} | {torch.get_num_threads()} |")
    # train.py --precision auto takes bf16 only where oneDNN runs it on this CPU: say which this CPU is
    from train import cpu_has_native_bf16
    native = "yes: auto trains transformers in bf16" if cpu_has_native_bf16() else "no: auto trains in fp32"
    return (f"vocab {vocab}, batch {batch} x seq {seq}, {steps} timed steps each; "
            f"oneDNN bf16 on this CPU (AVX-512 or better): {native}\n\n" + "\n".join(rows))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", default="data")
    add_arguments(p)
    print(run(p.parse_args()))
