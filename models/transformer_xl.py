"""Transformer-XL (Dai et al. 2019, https://arxiv.org/abs/1901.02860) built from labml-nn's modules:
`labml_nn.transformers.xl.TransformerXL` / `TransformerXLLayer` (pre-norm blocks),
`RelativeMultiHeadAttention` and `labml_nn.transformers.feed_forward.FeedForward`.

**Relative attention.** The score of query i for key j is

    A_ij = q_i^T k_j + q_i^T R_{i-j} + v^T k_j + S_{i-j}

with learned relative embeddings R, S and a learned global bias v: no absolute positions anywhere, so the
same weights apply wherever a segment starts.

**Segment memory.** Each layer l keeps `mem_len` past inputs of that layer, m_l [M, B, d]. A segment of T
new tokens attends (causally) to [m_l ; x_l], keys and values of length M + T. After the segment the memory
becomes the last `mem_len` rows of [m_l ; x_l]. labml-nn detaches the memory, so no gradient flows into
past segments (the paper's truncated back-propagation through segments).

**What "continuation equals the whole" means here.** In one pass over A + B every token of B sees all of A.
Fed as A then B with the returned memory, a token of B sees only the memory: the last `mem_len` inputs of A.
So the two agree exactly while the memory still holds everything fed before, i.e. while
`state_length(state)` equals the number of tokens fed (len(A) <= mem_len); beyond that the chunked model
sees a window of `mem_len` past tokens plus the current segment, which is XL's intended approximation.

labml-nn works in [seq, batch, ...] layout; we convert at the boundary of `forward`. Its relative
position table has 2P rows (P = 4096 in labml-nn, 8192 * d parameters per layer); we size it to
P = mem_len + max_len, and feed inputs longer than `max_len` in segments of `max_len`, so that M + T <= P.

State (`XLState`): a tuple of per-layer memories [M, B, d] (M <= mem_len, shared across rows).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from labml_nn.transformers.feed_forward import FeedForward
from labml_nn.transformers.xl import RelativeMultiHeadAttention, TransformerXL, TransformerXLLayer

from .base import LanguageModel, index_rows
from .config import ModelConfig


class XLState(NamedTuple):
    mems: tuple[torch.Tensor, ...]  # per layer [M, B, d], M <= mem_len


class TransformerXLModel(LanguageModel):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.max_context = config.mem_len + config.max_len
        d = config.d_model
        self.embed = nn.Embedding(config.vocab_size, d)
        self.dropout = nn.Dropout(config.dropout)
        attn = RelativeMultiHeadAttention(config.n_heads, d, config.attention_dropout)
        # Shrink the relative position tables to the distances that can occur: keys <= mem_len + max_len.
        attn.P = config.mem_len + config.max_len
        attn.key_pos_embeddings = nn.Parameter(torch.zeros(2 * attn.P, config.n_heads, attn.d_k))
        attn.key_pos_bias = nn.Parameter(torch.zeros(2 * attn.P, config.n_heads))
        layer = TransformerXLLayer(d_model=d, self_attn=attn,
                                   feed_forward=FeedForward(d, config.d_ff, config.dropout, activation=nn.GELU()),
                                   dropout_prob=config.dropout)
        self.transformer = TransformerXL(layer, config.n_layers)  # clones `layer` n_layers times
        self.head = self._output_head(config, bias=False)
        for block in self.transformer.layers:
            block.self_attn.output.residual_out = True
            block.feed_forward.layer2.residual_out = True
        self._init_weights(config.n_layers)

    def _segment(self, x: torch.Tensor, mems: list[torch.Tensor]):
        """x: [T, B, d] one segment; mems: per layer [M, B, d] (or empty) -> h [T, B, d], new memories."""
        T = x.shape[0]
        M = mems[0].shape[0] if mems else 0
        # mask[i, j, 0]: query i (at key index M + i) sees key j iff j <= M + i. [T, M + T, 1]
        q = torch.arange(M, M + T, device=x.device)[:, None]
        k = torch.arange(M + T, device=x.device)[None, :]
        mask = (k <= q)[:, :, None]
        h, layer_inputs = self.transformer(x, mems, mask)  # layer_inputs: per layer [T, B, d], detached
        new_mems = []
        for i, inp in enumerate(layer_inputs):
            m = torch.cat((mems[i].to(inp.dtype), inp), dim=0) if mems else inp
            new_mems.append(m[max(0, m.shape[0] - self.config.mem_len):])
        return h, new_mems

    def forward(self, tokens: torch.Tensor, state: XLState | None = None, last_only: bool = False):
        """tokens: [B, T] -> logits [B, T, V] ([B, 1, V] with `last_only`), new XLState."""
        x = self.dropout(self.embed(tokens)).transpose(0, 1)  # [T, B, d]
        mems = list(state.mems) if state is not None else []
        outputs = []
        for start in range(0, x.shape[0], self.config.max_len):
            h, mems = self._segment(x[start:start + self.config.max_len], mems)
            outputs.append(h)
        h = torch.cat(outputs, dim=0).transpose(0, 1)  # [B, T, d] (TransformerXL applies the final norm)
        return self.head(self.dropout(h[:, -1:] if last_only else h)), XLState(tuple(mems))

    def select_state(self, state: XLState, index: torch.Tensor) -> XLState:
        return XLState(tuple(index_rows(m, index, 1) for m in state.mems))

    def state_length(self, state: XLState | None) -> int:
        return 0 if state is None or not state.mems else state.mems[0].shape[0]
