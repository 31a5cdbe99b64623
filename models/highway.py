"""Recurrent highway network (Zilly et al. 2017, https://arxiv.org/abs/1607.03474).

An RHN layer applies D highway micro-steps per token to its state s ([B, d]). With the coupled carry gate
c = 1 - g (as in labml_nn.recurrent_highway_networks):

    micro-step 0:       [h; g] = W_x x_t + R_0 s_{t-1} + b_0
    micro-step d > 0:   [h; g] = R_d s^{d-1} + b_d
                        s^d = tanh(h) * sigmoid(g) + s^{d-1} * (1 - sigmoid(g))

and s_t = s^{D-1}. Layers stack: the states of layer l are the inputs of layer l + 1.

We write the cell here rather than use `labml_nn.recurrent_highway_networks.RHN` because that one
computes the input projection inside the time loop (one small matmul per token, per layer) and cannot
resume from a given state (it assigns into the tuple `torch.unbind` returns). Here the input projection
W_x x is one matmul over the whole sequence, and the time loop only does the recurrent part.

State (`HighwayState`): s of every layer, [layers, B, d], and the number of tokens fed so far.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .base import LanguageModel, index_rows
from .config import ModelConfig


class HighwayState(NamedTuple):
    s: torch.Tensor  # [layers, B, d]
    n_tokens: int


class RHNLayer(nn.Module):
    def __init__(self, d_model: int, depth: int):
        super().__init__()
        self.d = d_model
        # W_x: input -> [h; g] at micro-step 0, applied to all time steps at once
        self.input_lin = nn.Linear(d_model, 2 * d_model, bias=False)
        # R_d: state -> [h; g] for each micro-step
        self.hidden_lin = nn.ModuleList([nn.Linear(d_model, 2 * d_model) for _ in range(depth)])

    def reset_gate_bias(self, value: float):
        # A negative transform-gate bias makes every micro-step mostly carry at the start of training,
        # which lets gradients flow through deep time/depth (the paper's initialisation).
        with torch.no_grad():
            for lin in self.hidden_lin:
                lin.bias[self.d:].fill_(value)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """x: [B, T, d] inputs, s: [B, d] state before the first token -> states of every step [B, T, d]."""
        x_proj = self.input_lin(x)  # [B, T, 2d]
        outputs = []
        for t in range(x.shape[1]):
            for depth, lin in enumerate(self.hidden_lin):
                hg = lin(s) + x_proj[:, t] if depth == 0 else lin(s)  # [B, 2d]
                h, g = hg.chunk(2, dim=-1)
                g = torch.sigmoid(g)
                s = torch.tanh(h) * g + s * (1 - g)  # coupled carry gate c = 1 - g
            outputs.append(s)
        return torch.stack(outputs, dim=1)


class HighwayModel(LanguageModel):
    max_context = None

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList([RHNLayer(config.d_model, config.rhn_depth) for _ in range(config.n_layers)])
        self.head = self._output_head(config, bias=True)
        self._init_weights(config.n_layers)
        self._init_recurrent_embedding()
        for layer in self.layers:
            layer.reset_gate_bias(-2.0)

    def forward(self, tokens: torch.Tensor, state: HighwayState | None = None, last_only: bool = False):
        """tokens: [B, T] -> logits [B, T, V] ([B, 1, V] with `last_only`), new HighwayState."""
        B, T = tokens.shape
        x = self.dropout(self.embed(tokens))  # [B, T, d]
        new_s = []
        for i, layer in enumerate(self.layers):
            s0 = x.new_zeros(B, self.config.d_model) if state is None else state.s[i].to(x.dtype)
            x = layer(x, s0)  # [B, T, d]
            new_s.append(x[:, -1])
            x = self.dropout(x) if i < len(self.layers) - 1 else x
        logits = self.head(self.dropout(x[:, -1:] if last_only else x))
        n = 0 if state is None else state.n_tokens
        return logits, HighwayState(torch.stack(new_s), n + T)

    def select_state(self, state: HighwayState, index: torch.Tensor) -> HighwayState:
        return HighwayState(index_rows(state.s, index, 1), state.n_tokens)

    def state_length(self, state: HighwayState | None) -> int:
        return 0 if state is None else state.n_tokens
