"""Checkpoints: one file with everything needed to serve (model config + weights + tokenizer) or to resume
training (optimizer state, step, RNG states, data position, training config).

The file is a `torch.save`d dict of plain values and tensors, so `torch.load(weights_only=True)` reads it
(no pickled code runs when a server opens a checkpoint). It is written atomically: to a temporary file in
the same directory, flushed and fsynced, then `os.replace`d over the target, so a reader (or a crash)
never sees half a file.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dataset.atomic import write_atomic
from dataset.tokenizer import Tokenizer

from . import build_model
from .base import LanguageModel
from .config import ModelConfig

FORMAT = "python-autocomplete-checkpoint/1"


class CheckpointError(Exception):
    """A checkpoint file is missing, unreadable, or not one of ours."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot load checkpoint {self.path}: {reason}")


@dataclass
class Checkpoint:
    model: LanguageModel  # in eval mode, float32
    tokenizer: Tokenizer
    config: ModelConfig
    step: int = 0
    meta: dict = field(default_factory=dict)  # training time, valid bits/char, ...
    optimizer_state: dict | None = None
    train_config: dict | None = None
    resume: dict | None = None  # RNG states, data position: what `train.py --resume` needs


def save_checkpoint(path, model: LanguageModel, config: ModelConfig, tokenizer: Tokenizer,
                    optimizer: torch.optim.Optimizer | None = None, step: int = 0,
                    train_config: dict | None = None, meta: dict | None = None,
                    resume: dict | None = None, half: bool = False) -> Path:
    """Write a checkpoint atomically to `path`; `half=True` stores fp16 weights (for shipping)."""
    path = Path(path)
    weights, converted = {}, {}
    for name, tensor in model.state_dict().items():
        # Tied weights (embedding = output projection) are one tensor under two names: convert it once,
        # so torch.save stores one shared storage, not two copies.
        key = (tensor.data_ptr(), tuple(tensor.shape), tensor.dtype)
        if key not in converted:
            t = tensor.detach().cpu()
            converted[key] = (t.half() if half and t.is_floating_point() else t).clone()
        weights[name] = converted[key]
    payload = {
        "format": FORMAT,
        "model_config": config.to_dict(),
        "model_state": weights,
        "tokenizer_json": tokenizer.to_json(),
        "step": int(step),
        "meta": dict(meta or {}),
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "train_config": dict(train_config) if train_config is not None else None,
        "resume": resume,
    }
    buffer = io.BytesIO()  # dataset/atomic.py: bytes in memory, one plain write, a clear error on a full disk
    torch.save(payload, buffer)
    write_atomic(path, buffer.getbuffer(), fsync=True)
    return path


def read_checkpoint_dict(path) -> dict:
    """The raw checkpoint dict, validated; raises CheckpointError with the path and the reason."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(path, "file does not exist")
    if not path.is_file():
        raise CheckpointError(path, "not a regular file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, wrong format, not a torch file at all...
        first_line = (str(e).strip().splitlines() or [""])[0]
        raise CheckpointError(path, f"not a readable torch checkpoint ({type(e).__name__}: {first_line})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(path, f"not a {FORMAT} file")
    for key in ("model_config", "model_state", "tokenizer_json"):
        if key not in data:
            raise CheckpointError(path, f"missing {key!r}")
    return data


def load_checkpoint(path, device: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint: the model (float32, eval mode, on `device`), its tokenizer and metadata."""
    data = read_checkpoint_dict(path)
    try:
        config = ModelConfig.from_dict(data["model_config"])
        model = build_model(config)
        # load_state_dict copies into the float32 parameters (copy_ converts float16 / bfloat16): no float32
        # copy of the whole state is made on the way, which a serving worker would keep as heap slack.
        model.load_state_dict(data["model_state"])
        tokenizer = Tokenizer.from_json(data["tokenizer_json"])
    except Exception as e:
        raise CheckpointError(path, f"invalid contents ({type(e).__name__}: {e})") from None
    if tokenizer.vocab_size > config.vocab_size:
        raise CheckpointError(path, f"tokenizer vocabulary {tokenizer.vocab_size} > model vocabulary "
                                    f"{config.vocab_size}")
    model.to(device).eval()
    return Checkpoint(model=model, tokenizer=tokenizer, config=config, step=int(data.get("step", 0)),
                      meta=dict(data.get("meta") or {}), optimizer_state=data.get("optimizer_state"),
                      train_config=data.get("train_config"), resume=data.get("resume"))
