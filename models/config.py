"""Model hyper-parameters: one explicit dataclass shared by every architecture.

A checkpoint stores `ModelConfig.to_dict()`; `ModelConfig.from_dict` rebuilds it (unknown keys are an error,
missing keys take the defaults, so older checkpoints keep loading when a field is added).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

ARCHS = ("lstm", "highway", "transformer", "transformer_xl")


@dataclass
class ModelConfig:
    # Which model: lstm | highway | transformer | transformer_xl
    arch: str = "transformer"
    # Tokenizer vocabulary size (`Tokenizer.vocab_size`)
    vocab_size: int = 4096
    # Width of the embeddings and of every hidden state
    d_model: int = 256
    # Stacked layers (LSTM / RHN layers, transformer blocks)
    n_layers: int = 4
    # Attention heads (transformers only); `d_model` must be divisible by it
    n_heads: int = 8
    # Hidden width of the feed-forward block; 0 means 4 * d_model
    d_ff: int = 0
    # Dropout probability (embeddings, residual branches, attention)
    dropout: float = 0.1
    # Dropout of the attention weights alone; < 0: the same as `dropout`. On a CPU, 0 lets the fused attention
    # kernel run: a fine-tuning step of the 4x256 model took 0.87 -> 0.63 s (docs/training.md)
    attn_dropout: float = -1.0
    # Transformer: the attention window. A token sees itself and the `max_len - 1` tokens before it;
    # the KV cache keeps at most `max_len - 1` positions and slides beyond that.
    max_len: int = 512
    # Transformer-XL: how many past hidden states per layer the memory keeps
    mem_len: int = 256
    # Recurrent highway network: micro-steps (depth D) per token
    rhn_depth: int = 3
    # Rotary position embedding base (theta)
    rope_base: float = 10000.0
    # Share the input embedding with the output projection
    tie_weights: bool = True

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ValueError(f"unknown arch {self.arch!r}; expected one of {', '.join(ARCHS)}")
        if self.d_ff == 0:
            self.d_ff = 4 * self.d_model
        for name in ("vocab_size", "d_model", "n_layers", "n_heads", "d_ff", "max_len", "mem_len", "rhn_depth"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"ModelConfig.{name} must be positive, got {getattr(self, name)}")
        if self.arch in ("transformer", "transformer_xl") and self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.arch == "transformer" and (self.d_model // self.n_heads) % 2:
            raise ValueError("rotary embeddings need an even head size (d_model / n_heads)")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.attn_dropout < 1.0:
            raise ValueError(f"attn_dropout must be below 1 (< 0: the same as dropout), got {self.attn_dropout}")

    @property
    def attention_dropout(self) -> float:
        """The dropout probability of the attention weights."""
        return self.dropout if self.attn_dropout < 0 else self.attn_dropout

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown ModelConfig keys: {sorted(unknown)}")
        return cls(**d)
