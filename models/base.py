"""The interface every language model implements (see docs/DESIGN.md, "Models").

    logits, state = model(tokens, state)      # tokens: LongTensor[B, T]; logits: [B, T, V]
    logits, state = model(tokens, state, last_only=True)   # logits [B, 1, V]: an engine feeding a
                                              # context reads only the last position (the head is skipped
                                              # for the others: a quarter of a 250-token prefill)

Feeding a text in pieces, each time with the state the previous call returned, gives the same logits as
feeding it at once. States are values: `forward` and `select_state` build new tensors and never write into
the ones they are given, so a completion engine can cache a state and branch from it many times.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .config import ModelConfig


class LanguageModel(nn.Module):
    config: ModelConfig
    # The longest context the model can use; None for recurrent models (unbounded, fading memory).
    max_context: int | None = None

    def forward(self, tokens: torch.Tensor, state: Any = None, last_only: bool = False) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError

    def select_state(self, state: Any, index: torch.Tensor) -> Any:
        """Rows `index` (LongTensor[B']) of a batch of states: pick, reorder or repeat (beam search)."""
        raise NotImplementedError

    def state_length(self, state: Any) -> int:
        """How many consumed tokens still influence the state (0 for `None`)."""
        raise NotImplementedError

    def num_params(self) -> int:
        # Tied weights are one Parameter object, so `parameters()` counts them once.
        return sum(p.numel() for p in self.parameters())

    def _output_head(self, config, bias: bool) -> nn.Linear:
        """The projection from d_model to vocabulary logits; with `tie_weights` it shares the embedding
        matrix E (`self.embed`, created first): logits = h E^T (+ b)."""
        head = nn.Linear(config.d_model, config.vocab_size, bias=bias)
        if config.tie_weights:
            head.weight = self.embed.weight
        return head

    def _init_recurrent_embedding(self):
        """For tanh-bounded recurrent states: with tied weights the logits are h . E with |h| <= 1, so
        embeddings of N(0, 0.02) would keep every logit near 0 and learning slow. N(0, 0.25) gives logits
        of usable scale."""
        nn.init.normal_(self.embed.weight, mean=0.0, std=0.25)

    def _init_weights(self, n_residual_layers: int):
        """GPT-2 style initialisation: N(0, 0.02) for linear layers and embeddings, zero biases, and the
        projections that write into the residual stream (marked `residual_out`) scaled down by
        1/sqrt(2 * layers) so the variance of the residual stream does not grow with depth."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                std = 0.02 / (2 * n_residual_layers) ** 0.5 if getattr(module, "residual_out", False) else 0.02
                nn.init.normal_(module.weight, mean=0.0, std=std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)


def index_rows(x: torch.Tensor | None, index: torch.Tensor, dim: int) -> torch.Tensor | None:
    """`x` with its batch dimension `dim` indexed by `index`; a new tensor (never a view into `x`)."""
    if x is None:
        return None
    return x.index_select(dim, index.to(x.device))


def map_state(fn, state):
    """Apply `fn` to every tensor of a state (NamedTuples, tuples and lists of tensors, ints kept):
    e.g. `map_state(torch.Tensor.detach, state)` to carry a state across training steps."""
    if state is None or isinstance(state, (int, float)):
        return state
    if isinstance(state, torch.Tensor):
        return fn(state)
    if isinstance(state, tuple) and hasattr(state, "_fields"):  # NamedTuple
        return type(state)(*(map_state(fn, x) for x in state))
    if isinstance(state, (tuple, list)):
        return type(state)(map_state(fn, x) for x in state)
    raise TypeError(f"unsupported state element {type(state).__name__}")
