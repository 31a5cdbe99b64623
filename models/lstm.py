"""Multi-layer LSTM language model (torch.nn.LSTM: fused and fast on CPU).

Each layer l keeps a hidden state h and a cell c (both [B, d]):

    i, f, g, o = sigmoid/tanh(W x_t + U h_{t-1} + b)     (input, forget, candidate, output)
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

State (`LstmState`): h and c of every layer, each [layers, B, d], and the number of tokens fed so far (the
memory is unbounded but fading, so `state_length` reports the total fed).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .base import LanguageModel, index_rows
from .config import ModelConfig


class LstmState(NamedTuple):
    h: torch.Tensor  # [layers, B, d]
    c: torch.Tensor  # [layers, B, d]
    n_tokens: int


class LstmModel(LanguageModel):
    max_context = None

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(config.d_model, config.d_model, config.n_layers, batch_first=True,
                            dropout=config.dropout if config.n_layers > 1 else 0.0)
        self.head = self._output_head(config, bias=True)
        self._init_weights(config.n_layers)  # embeddings/head; nn.LSTM keeps its uniform init
        self._init_recurrent_embedding()
        # Forget-gate bias 1 (gate order i, f, g, o): remember by default early in training.
        with torch.no_grad():
            d = config.d_model
            for name, p in self.lstm.named_parameters():
                if name.startswith("bias_ih"):
                    p[d:2 * d].fill_(1.0)

    def forward(self, tokens: torch.Tensor, state: LstmState | None = None, last_only: bool = False):
        """tokens: [B, T] -> logits [B, T, V] ([B, 1, V] with `last_only`), new LstmState."""
        x = self.dropout(self.embed(tokens))  # [B, T, d]
        hc = None if state is None else (state.h.to(x.dtype), state.c.to(x.dtype))
        out, (h, c) = self.lstm(x, hc)  # out: [B, T, d]; h, c: [layers, B, d] (new tensors)
        logits = self.head(self.dropout(out[:, -1:] if last_only else out))
        n = 0 if state is None else state.n_tokens
        return logits, LstmState(h, c, n + tokens.shape[1])

    def select_state(self, state: LstmState, index: torch.Tensor) -> LstmState:
        return LstmState(index_rows(state.h, index, 1), index_rows(state.c, index, 1), state.n_tokens)

    def state_length(self, state: LstmState | None) -> int:
        return 0 if state is None else state.n_tokens
