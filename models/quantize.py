"""Int8 weights for CPU inference: dynamic quantization of every `nn.Linear` of a loaded model.

Why. Typing asks for one- or two-row forwards (a search step of 1-2 beams, one new token each), and
for those the default model (4.2M parameters, 17 MB of fp32 weights) is bound by reading its weights,
not by arithmetic: on this 2-core VM a [2, 1] forward over a 200-token cache took 3.6 ms, and its matrix
products ran at ~2 GFLOP/s (208 us for a 2 x 256 x 768 product that takes 46 us when its weights stay in
the core's cache). Int8 weights are a quarter of the bytes: the same forward takes 1.65 ms (bf16 weights:
3.0 ms). Typing three held-out files in process, request p50 22.0 -> 12.7 ms, p90 45 -> 25 ms.

How. `torch.ao.quantization.quantize_dynamic` with per-channel weight scales (int8, one scale per output
row; per-tensor scales cost twice the bits/char); activations are quantized on the fly per call (one
scale per input tensor) and the products run in fbgemm's int8 kernels. Only at load time, in memory: the
checkpoint on disk stays a float model (training, GPUs and other tools read it as before).

Costs (measured, docs/server.md): bits/char on 25 held-out files 1.0040 -> 1.0048, next-token accuracy
53.9 -> 53.7 %. The rows of one forward share an activation scale, so a row's logits depend very slightly
on the other rows of its batch (the other beam, batched requests) and on how a prompt is cut into feeds:
the engine's exactness guarantees (cache on = cache off, batched = sequential) are exact for float models
and hold within quantization noise for int8. On CUDA nothing is quantized (fbgemm is a CPU library, and
a GPU is not bound by these bytes in the same way).
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

QUANTIZE_CHOICES = ("auto", "none", "int8")


def resolve_quantize(mode: str, device: str) -> str:
    """`auto`: int8 on the CPU, none elsewhere. `int8` on a non-CPU device is refused (no kernels)."""
    if mode not in QUANTIZE_CHOICES:
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZE_CHOICES)}, not {mode!r}")
    on_cpu = str(device).split(":")[0] == "cpu"
    if mode == "auto":
        return "int8" if on_cpu and int8_supported() else "none"
    if mode == "int8" and not on_cpu:
        raise ValueError(f"--quantize int8 runs on the CPU only (device {device})")
    return mode


def int8_supported() -> bool:
    return "fbgemm" in torch.backends.quantized.supported_engines or \
        "x86" in torch.backends.quantized.supported_engines


def quantize_model(model: nn.Module, mode: str, inplace: bool = False) -> nn.Module:
    """The model for inference under `mode` ("none" or "int8", see resolve_quantize): int8 replaces every
    nn.Linear by a dynamically quantized one: in a new module tree (`model` itself is left as it was), or
    with `inplace` in `model` itself, so that no float32 copy stays in memory (a serving process: ~43 MiB
    less per worker, docs/server.md)."""
    if mode == "none":
        return model
    if mode != "int8":
        raise ValueError(f"unknown quantize mode {mode!r}")
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    with warnings.catch_warnings():  # torch.ao's notice that eager quantization moves to torchao
        warnings.simplefilter("ignore")
        return quantize_dynamic(model.eval(), {nn.Linear: per_channel_dynamic_qconfig}, inplace=inplace)


def is_quantized(model: nn.Module) -> bool:
    return any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in model.modules())
