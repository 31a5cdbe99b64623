"""Export a training checkpoint for shipping: fp16 weights, no optimizer state, no resume data.

    python -m models.export runs/default/best.pt checkpoints/default.pt

`load_checkpoint` turns the fp16 weights back into float32 for CPU inference.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def export(src, dst) -> Path:
    ckpt = load_checkpoint(src)
    meta = dict(ckpt.meta)
    meta["exported_from"] = str(src)
    meta["params"] = ckpt.model.num_params()
    return save_checkpoint(dst, ckpt.model, ckpt.config, ckpt.tokenizer, step=ckpt.step,
                           train_config=ckpt.train_config, meta=meta, half=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.export", description=__doc__.splitlines()[0])
    p.add_argument("src", help="training checkpoint (RUN/best.pt or RUN/last.pt)")
    p.add_argument("dst", help="output file, e.g. checkpoints/default.pt")
    args = p.parse_args(argv)
    try:
        out = export(args.src, args.dst)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
