"""Loading a checkpoint for inference: what the in-process engine and every engine worker run.

Its own module, not server.py's: an engine worker imports this (torch, the model, the engine), not Flask,
Werkzeug, Jinja and prometheus_client, which only the HTTP process uses (a loaded worker's memory hardly
moves: 139-140 MiB PSS either way, but it no longer carries a web framework it never calls).
"""
from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath, PureWindowsPath


def load_for_inference(path: str, device: str = "auto", quantize: str = "auto"):
    """(checkpoint, its model ready for inference, model info for /health): the device resolved (auto: cuda
    when there is one), the weights quantized as `quantize` asks (models/quantize.py: auto = int8 on the CPU).
    The in-process engine and every engine worker load through here. The weights are quantized in place:
    `checkpoint.model` is the returned model, no float32 copy is kept."""
    from models.checkpoint import load_checkpoint
    from models.quantize import quantize_model, resolve_quantize
    from serving.worker import resolve_device

    device = resolve_device(device)
    quantize = resolve_quantize(quantize, device)
    ckpt = load_checkpoint(path, device=device)
    info = model_info(path, ckpt)
    info.update(device=device, quantize=quantize)
    return ckpt, quantize_model(ckpt.model, quantize, inplace=True), info


def load_model(path: str, device: str = "cpu", quantize: str = "none"):
    """Load a checkpoint into a Predictor in this process; returns (predictor, model info for /health)."""
    from evaluate.predictor import Predictor

    ckpt, model, info = load_for_inference(path, device, quantize)
    device = info["device"]
    if device != "cpu":  # the engine builds its inputs on the CPU: the wrapper moves them
        from serving.batching import BatchingModel
        model = BatchingModel(model, device=device, batching=False)
    return Predictor(model, ckpt.tokenizer), info


def model_info(path: str, ckpt) -> dict:
    """What /health shows about the loaded checkpoint."""
    import torch
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    config = ckpt.config
    info = {"name": Path(path).stem, "file": Path(path).name, "sha256": digest[:16],
            "arch": getattr(config, "arch", None), "step": getattr(ckpt, "step", None),
            "params": sum(p.numel() for p in ckpt.model.parameters()),
            "vocab_size": getattr(config, "vocab_size", None), "torch": str(torch.__version__),
            "meta": shown_meta(getattr(ckpt, "meta", None) or {})}
    return info


def shown_meta(meta: dict) -> dict:
    """The checkpoint meta /health shows: its scalars, and its lists of strings (a fine-tuned model's sources,
    which the extension names in its status bar tooltip), absolute paths as their last part (`shown_text`)."""
    out = {}
    for k, v in meta.items():
        if isinstance(v, (str, int, float, bool)) or v is None:
            out[str(k)] = shown_text(plain(v)) if isinstance(v, str) else plain(v)
        elif isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
            out[str(k)] = [shown_text(str(x)) for x in v]
    return out


def shown_text(text: str) -> str:
    """An absolute path as its last part (`/home/ann/code/billing` -> `billing`), any other text as it is.
    Why: on a team server everyone holding the token reads /health, and a fine-tuned model's meta keeps the
    folders it was trained on as `finetune.py` resolved them, which tell where its owner keeps which code."""
    if text.startswith(("/", "~")) or PureWindowsPath(text).drive:
        return PurePosixPath(text.replace("\\", "/")).name or text
    return text


def plain(v):
    """str/int/float/bool/None as the builtin type (not numpy's or torch's subclasses): what a worker sends
    is unpickled in the HTTP process, which must not import torch or numpy to read it."""
    for t in (bool, int, float, str):
        if isinstance(v, t):
            return t(v)
    return v
