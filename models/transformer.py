"""Causal transformer with rotary position embeddings (RoPE) and a sliding KV cache.

Pre-norm blocks (GPT-2 / nanoGPT):

    x <- x + Attention(LayerNorm(x))
    x <- x + MLP(LayerNorm(x))

**Rotary embeddings.** Query and key vectors of a head are rotated by an angle proportional to their
absolute position p: each pair of features (x_k, x_{k + d/2}) is rotated by p * theta_k with
theta_k = base^(-2k/d). Because rotations compose, the score

    <R(p) q, R(p') k> = <q, R(p' - p) k>

depends only on the distance p' - p. So keys can be rotated once when they are computed, stored in the
cache, and stay valid however far the window slides: dropping the oldest keys changes no other score.

**Sliding window.** A token at position p attends to positions (p - max_len, p]: itself and the
`max_len - 1` tokens before it. The cache keeps the last `max_len - 1` keys and values per layer, all that a
future token can see. With this rule one pass over a text and any split of it into chunks (each fed with
the previous state) compute exactly the same thing, even for texts longer than `max_len`.

State (`TransformerState`): per layer a key and a value tensor of shape [B, heads, C, d_head] (C cached
positions, already rotated) and `position`, the absolute position of the next token (the same for every
row of the batch: rows of one state always have the same length).

**Shared context in beam search.** Beams branch from one context and differ only in the few tokens they
generated. Copying the context's keys per beam (`select_state`) and again to append one token (`torch.cat`)
was most of a search step's time (measured: 55 % of a [4, 1] step over 249 cached positions). So
`select_state` on a one-row state keeps that row as `shared_keys`/`shared_values` ([1, heads, P, d_head],
the positions before every row's own `keys`), and the rows' own caches start empty. A one-token step then
attends over both parts without materialising the shared part B times (`shared_prefix_attention`): only
the rows' own few positions are copied per step. A state with a shared part that gets more than one new
token, or whose own part would fill the window, is first flattened back (one copy, as before).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .base import LanguageModel, index_rows
from .config import ModelConfig


class TransformerState(NamedTuple):
    keys: tuple[torch.Tensor, ...]  # per layer [B, heads, C, d_head], rotated
    values: tuple[torch.Tensor, ...]  # per layer [B, heads, C, d_head]
    position: int  # absolute position of the next token
    # Positions before `keys` common to every row, per layer [1, heads, P, d_head] (None: no shared part).
    shared_keys: tuple[torch.Tensor, ...] | None = None
    shared_values: tuple[torch.Tensor, ...] | None = None


class RotaryEmbedding(nn.Module):
    """cos/sin tables for positions; positions past the precomputed table are computed on the fly."""

    def __init__(self, d_head: int, base: float, table_len: int):
        super().__init__()
        # theta_k = base^(-2k/d_head), k = 0 .. d_head/2 - 1: [d_head / 2]
        inv_freq = 1.0 / (base ** (torch.arange(0, d_head, 2, dtype=torch.float64) / d_head))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        cos, sin = self._compute(0, table_len)
        self.register_buffer("cos_table", cos, persistent=False)  # [table_len, d_head]
        self.register_buffer("sin_table", sin, persistent=False)

    def _compute(self, start: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        # Angles in float64: p * theta stays exact enough for positions in the millions.
        pos = torch.arange(start, start + length, dtype=torch.float64, device=self.inv_freq.device)
        angles = torch.outer(pos, self.inv_freq)  # [length, d_head / 2]
        angles = torch.cat((angles, angles), dim=-1)  # [length, d_head]: feature k and k + d/2 share theta_k
        return angles.cos().float(), angles.sin().float()

    def forward(self, start: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        if start + length <= self.cos_table.shape[0]:
            return self.cos_table[start:start + length], self.sin_table[start:start + length]
        return self._compute(start, length)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate feature pairs (x_k, x_{k+d/2}) of `x` [B, heads, T, d_head] by the angles in cos/sin [T, d_head]:
    (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin)."""
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat((-x2, x1), dim=-1)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


def shared_prefix_attention(q, k, v, shared_k, shared_v) -> torch.Tensor:
    """Attention of one new position per row over the positions shared by all rows and the row's own.

    q: [B, heads, 1, d_head]; k, v: the rows' own [B, heads, C, d_head]; shared_k, shared_v:
    [1, heads, P, d_head] (earlier positions). softmax over the P + C scores of each row, computed without
    expanding the shared part to B rows: the B queries of a head form one [B, P] product with it.
    Returns [B, heads, 1, d_head]."""
    P = shared_k.shape[2]
    q_rows = q.transpose(0, 2)  # [1, heads, B, d_head]: the rows as queries of one sequence
    scores_shared = (q_rows @ shared_k.transpose(-1, -2)).transpose(0, 2)  # [B, heads, 1, P]
    scores_own = q @ k.transpose(-1, -2)  # [B, heads, 1, C]
    w = (torch.cat((scores_shared, scores_own), dim=-1) * q.shape[-1] ** -0.5).softmax(dim=-1)
    y_shared = (w[..., :P].transpose(0, 2) @ shared_v).transpose(0, 2)  # [B, heads, 1, d_head]
    return y_shared + w[..., P:] @ v


class CausalSelfAttention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.n_heads = config.n_heads
        self.d_head = config.d_model // config.n_heads
        self.dropout = config.attention_dropout
        # One matmul for queries, keys and values: [B, T, d] -> [B, T, 3d]
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=False)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=False)
        self.proj.residual_out = True
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x, cos, sin, past_k, past_v, mask, is_causal, shared_k=None, shared_v=None):
        """x: [B, T, d]; past_k/past_v: [B, heads, C, d_head] or None; mask: bool [T, C + T] or None;
        shared_k/shared_v: [1, heads, P, d_head] before the past (T = 1 only) or None.
        Returns the output [B, T, d] and the keys/values of cache + new tokens [B, heads, C + T, d_head]."""
        B, T, d = x.shape
        # [B, T, 3, heads, d_head] -> [3, B, heads, T, d_head]
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)
        q = apply_rotary(q, cos, sin)
        k = apply_rotary(k, cos, sin)
        if past_k is not None:
            # New tensors: the cached ones are never written to.
            k = torch.cat((past_k.to(k.dtype), k), dim=2)
            v = torch.cat((past_v.to(v.dtype), v), dim=2)
        if shared_k is not None:
            y = shared_prefix_attention(q, k, v, shared_k.to(q.dtype), shared_v.to(v.dtype))
        else:
            # softmax(q k^T / sqrt(d_head) + mask) v, fused (flash attention on CPU when is_causal, no mask)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal,
                                               dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, T, d)  # [B, heads, T, d_head] -> [B, T, d]
        return self.resid_dropout(self.proj(y)), k, v


class MLP(nn.Module):
    """Position-wise feed-forward: Linear(d, d_ff) -> GELU -> Linear(d_ff, d)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.fc = nn.Linear(config.d_model, config.d_ff)
        self.proj = nn.Linear(config.d_ff, config.d_model)
        self.proj.residual_out = True
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.norm_attn = nn.LayerNorm(config.d_model)
        self.attn = CausalSelfAttention(config)
        self.norm_mlp = nn.LayerNorm(config.d_model)
        self.mlp = MLP(config)

    def forward(self, x, cos, sin, past_k, past_v, mask, is_causal, shared_k=None, shared_v=None):
        a, k, v = self.attn(self.norm_attn(x), cos, sin, past_k, past_v, mask, is_causal, shared_k, shared_v)
        x = x + a
        x = x + self.mlp(self.norm_mlp(x))
        return x, k, v


class TransformerModel(LanguageModel):
    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.max_len < 2:
            raise ValueError("transformer max_len must be at least 2")
        self.config = config
        self.max_context = config.max_len
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.n_layers)])
        self.norm = nn.LayerNorm(config.d_model)
        self.head = self._output_head(config, bias=False)  # logits = h E^T
        self.rotary = RotaryEmbedding(config.d_model // config.n_heads, config.rope_base,
                                      table_len=max(4096, 4 * config.max_len))
        self._init_weights(config.n_layers)

    def _mask(self, cached: int, new: int, device) -> tuple[torch.Tensor | None, bool]:
        """Attention mask for `new` queries over `cached + new` keys: query i (key index cached + i) sees
        key j iff cached + i - max_len < j <= cached + i. Returns (bool mask [new, cached + new] or None,
        is_causal) and avoids building a mask in the two hot cases (training and one-token decoding)."""
        window = self.config.max_len
        if cached == 0 and new <= window:
            return None, new > 1  # plain causal mask, SDPA's fast path
        if new == 1 and cached < window:
            return None, False  # one query sees the whole cache
        q = torch.arange(cached, cached + new, device=device)[:, None]
        k = torch.arange(cached + new, device=device)[None, :]
        return (k <= q) & (k > q - window), False

    def forward(self, tokens: torch.Tensor, state: TransformerState | None = None, last_only: bool = False):
        """tokens: LongTensor[B, T] -> logits [B, T, V] ([B, 1, V] with `last_only`), new TransformerState."""
        B, T = tokens.shape
        keep = self.config.max_len - 1  # positions a future token can still see
        shared_k = shared_v = None
        if state is not None and state.shared_keys is not None:
            if T > 1 or state.keys[0].shape[2] + T > keep:
                state = self.flatten_state(state)
            else:  # slide: the oldest shared positions leave the window first
                # The new token sees max_len = keep + 1 positions (itself included); the state keeps `keep`.
                seen = state.shared_keys[0].shape[2] + state.keys[0].shape[2]
                drop = max(0, seen - keep)
                shared_k = tuple(s[:, :, drop:] for s in state.shared_keys)
                shared_v = tuple(s[:, :, drop:] for s in state.shared_values)
        start = state.position if state is not None else 0
        cached = state.keys[0].shape[2] if state is not None else 0
        cos, sin = self.rotary(start, T)  # [T, d_head]
        mask, is_causal = self._mask(cached, T, tokens.device)

        x = self.dropout(self.embed(tokens))  # [B, T, d]
        keys, values = [], []
        for i, block in enumerate(self.blocks):
            past_k = state.keys[i] if state is not None else None
            past_v = state.values[i] if state is not None else None
            x, k, v = block(x, cos, sin, past_k, past_v, mask, is_causal,
                            shared_k[i] if shared_k else None, shared_v[i] if shared_v else None)
            if k.shape[2] > keep:  # slide: drop the oldest positions
                k, v = k[:, :, k.shape[2] - keep:], v[:, :, v.shape[2] - keep:]
            keys.append(k)
            values.append(v)
        if last_only:
            x = x[:, -1:]
        logits = self.head(self.norm(x))  # [B, T, V]
        if shared_k is not None and shared_k[0].shape[2] + keys[0].shape[2] > keep:
            shared_k = tuple(s[:, :, 1:] for s in shared_k)  # one more left with the new token
            shared_v = tuple(s[:, :, 1:] for s in shared_v)
        return logits, TransformerState(tuple(keys), tuple(values), start + T, shared_k, shared_v)

    def select_state(self, state: TransformerState, index: torch.Tensor) -> TransformerState:
        if state.shared_keys is None and state.keys[0].shape[0] == 1:
            # Beams branching from one context share its keys; their own caches start empty.
            return TransformerState(tuple(index_rows(k[:, :, :0], index, 0) for k in state.keys),
                                    tuple(index_rows(v[:, :, :0], index, 0) for v in state.values),
                                    state.position, state.keys, state.values)
        return TransformerState(tuple(index_rows(k, index, 0) for k in state.keys),
                                tuple(index_rows(v, index, 0) for v in state.values), state.position,
                                state.shared_keys, state.shared_values)

    def flatten_state(self, state: TransformerState) -> TransformerState:
        """The same state with its shared part copied into every row: [B, heads, P + C, d_head] per layer."""
        if state.shared_keys is None:
            return state
        B = state.keys[0].shape[0]

        def join(shared, own):
            return torch.cat((shared.to(own.dtype).expand(B, -1, -1, -1), own), dim=2)
        return TransformerState(tuple(join(s, k) for s, k in zip(state.shared_keys, state.keys)),
                                tuple(join(s, v) for s, v in zip(state.shared_values, state.values)),
                                state.position)

    def state_length(self, state: TransformerState | None) -> int:
        if state is None:
            return 0
        shared = state.shared_keys[0].shape[2] if state.shared_keys is not None else 0
        return shared + state.keys[0].shape[2]
