"""Cross-request batching: forward calls that wait at the same time run as one batched forward.

Design. A worker process runs several engine *slots* (one `Predictor` each, with its own caches, on its
own thread) over one shared model wrapped in `BatchingModel`. The engine calls `model(tokens, state)` as
usual (prompt feed, then one call per search step); the wrapper parks each call and runs all parked
calls together as soon as no slot of this process is still running Python that could add one (every
busy slot is waiting in a forward), or after `max_wait_ms`. Whoever finds the batch complete computes it
in its own thread and hands every caller its rows, so one slot costs nothing extra and no thread is added.

What is batched, and how (the transformer only; other architectures run call by call):
- Calls are grouped by their number of new tokens T ("equal-length grouping"): search steps (T = 1) of
  different requests go together. Their caches have different lengths and positions, so the position-wise
  parts (embedding, LayerNorms, the q/k/v, output and MLP projections, the vocabulary head: nearly all the
  work and all the per-op Python overhead) run once on the stacked rows, and attention runs per call on
  that call's own cache (no padding, no mask, the exact same attention as the model's own forward; each
  call's new state is a fresh tensor, never a view into the batch, so a cached state does not pin it).
  A call alone is the model's own forward (`last_only`), which keeps a beam search's shared context
  shared (models/transformer.py); states of batched calls are flattened first.
- Only the last position's logits are computed ([B, 1, V]); the engine reads only `out[:, -1]`. For a
  200-token prompt the vocabulary head is a quarter of the work.
Measured on this 2-core CPU (torch 1 thread, default model, the CPU shared with a training job, so the
ratios matter more than the values): a 1-token forward over a 200-token cache costs 3.4 ms for 1 row,
5.4 ms for 2 and 6.7 ms for 8 (search steps are overhead-bound, so stacking them is nearly free), while a
200-token prompt feed is compute-bound (27 ms for 1 row, 51 ms for 2, 216 ms for 8: batching feeds buys
nothing, so feeds of different lengths are never padded together). End-to-end effect: docs/server.md.

Device. The model and its states live on `device`; the logits come back to the CPU (the engine's search
runs on CPU tensors), so the engine itself needs no change for `--device cuda`.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import torch
import torch.nn.functional as F


def is_batchable_transformer(model) -> bool:
    """The repository's TransformerModel (rotary, KV cache states); other models run call by call."""
    return type(model).__name__ == "TransformerModel" and all(
        hasattr(model, a) for a in ("embed", "blocks", "rotary", "norm", "head", "_mask"))


@torch.inference_mode()
def transformer_forward(model, calls: list[tuple[torch.Tensor, object]]) -> list[tuple[torch.Tensor, object]]:
    """Run calls [(tokens [b_i, T], state_i or None)], all with the same T, as one forward of the stacked
    rows; returns [(logits [b_i, 1, V] of the last position, new state_i)] as the model's forward would."""
    from models.transformer import TransformerState, apply_rotary

    if len(calls) == 1:
        return [model(calls[0][0], calls[0][1], last_only=True)]
    calls = [(t, model.flatten_state(s) if s is not None else None) for t, s in calls]
    T = calls[0][0].shape[1]
    tokens = calls[0][0] if len(calls) == 1 else torch.cat([t for t, _ in calls])
    spans, r = [], 0
    for t, _ in calls:
        spans.append((r, r + t.shape[0]))
        r += t.shape[0]
    B = r
    keep = model.config.max_len - 1
    per_call = []  # (cos, sin, mask, is_causal, start) per call
    for t, state in calls:
        start = state.position if state is not None else 0
        cached = state.keys[0].shape[2] if state is not None else 0
        cos, sin = model.rotary(start, T)
        mask, causal = model._mask(cached, T, t.device)
        per_call.append((cos, sin, mask, causal, start))
    x = model.embed(tokens)  # [B, T, d]
    new_keys = [[] for _ in calls]
    new_values = [[] for _ in calls]
    for li, block in enumerate(model.blocks):
        attn = block.attn
        H, Dh = attn.n_heads, attn.d_head
        d = H * Dh
        qkv = attn.qkv(block.norm_attn(x)).view(B, T, 3, H, Dh).permute(2, 0, 3, 1, 4)  # [3, B, H, T, Dh]
        ys = []
        for c, ((r0, r1), (_, state)) in enumerate(zip(spans, calls)):
            cos, sin, mask, causal, _ = per_call[c]
            q = apply_rotary(qkv[0, r0:r1], cos, sin)
            k = apply_rotary(qkv[1, r0:r1], cos, sin)
            v = qkv[2, r0:r1]
            if state is not None:
                k = torch.cat((state.keys[li].to(k.dtype), k), dim=2)
                v = torch.cat((state.values[li].to(v.dtype), v), dim=2)
            else:
                v = v.contiguous()  # its own storage, not the whole batch's qkv buffer
            ys.append(F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal))
            if k.shape[2] > keep:
                k, v = k[:, :, k.shape[2] - keep:], v[:, :, v.shape[2] - keep:]
            new_keys[c].append(k)
            new_values[c].append(v)
        y = ys[0] if len(ys) == 1 else torch.cat(ys)
        x = x + attn.proj(y.transpose(1, 2).reshape(B, T, d))
        x = x + block.mlp(block.norm_mlp(x))
    logits = model.head(model.norm(x[:, -1:]))  # [B, 1, V]: the engine reads only the last position
    out = []
    for c, ((r0, r1), (_, state)) in enumerate(zip(spans, calls)):
        lg = logits if len(calls) == 1 else logits[r0:r1].clone()  # not a view pinning the batch
        out.append((lg, TransformerState(tuple(new_keys[c]), tuple(new_values[c]), per_call[c][4] + T)))
    return out


class _Call:
    __slots__ = ("tokens", "state", "result", "error", "done")

    def __init__(self, tokens, state):
        self.tokens, self.state = tokens, state
        self.result = self.error = None
        self.done = False


class BatchingModel:
    """A LanguageModel stand-in shared by the slots of one worker (see the module docstring).

    Slots bracket each request with `with model.request():`; a forward call outside any request (or with
    one slot) runs at once. `batched_calls`/`batches` count what was merged, for /metrics.
    """

    def __init__(self, model, device: str | torch.device = "cpu", max_wait_ms: float = 2.0,
                 batching: bool = True):
        self.model = model
        self.device = torch.device(device)
        self.max_context = getattr(model, "max_context", None)
        self.max_wait = max_wait_ms / 1000
        self.fast = is_batchable_transformer(model)  # own forward: last-position logits only
        self.batching = batching and self.fast
        self._cv = threading.Condition()
        self._pending: list[_Call] = []
        self._running = 0  # slots inside a request and not parked in a forward (may still add a call)
        self.batches = 0
        self.batched_calls = 0
        self.rows = 0

    # -- the parts of the LanguageModel interface the engine uses
    def eval(self):
        return self

    def select_state(self, state, index):
        return self.model.select_state(state, index.to(self.device))

    def state_length(self, state) -> int:
        return self.model.state_length(state)

    @contextmanager
    def request(self):
        with self._cv:
            self._running += 1
        try:
            yield
        finally:
            with self._cv:
                self._running -= 1
                self._cv.notify_all()  # one fewer who could still add a call: the batch may be complete

    def __call__(self, tokens: torch.Tensor, state=None, last_only: bool = True):
        """`last_only` is accepted for the interface: this stand-in always returns the last position's."""
        tokens = tokens.to(self.device)
        if not self.batching:
            if self.fast:
                (logits, state), = transformer_forward(self.model, [(tokens, state)])
            else:
                with torch.inference_mode():
                    logits, state = self.model(tokens, state, last_only=True)
            return self._host(logits), state
        call = _Call(tokens, state)
        with self._cv:
            self._pending.append(call)
            self._running -= 1
            self._cv.notify_all()
            deadline = time.perf_counter() + self.max_wait
            batch = None
            while not call.done:
                now = time.perf_counter()
                if call in self._pending and (self._running <= 0 or now >= deadline):
                    batch, self._pending = self._pending, []
                    break
                self._cv.wait(max(deadline - now, 0.0005) if self._running > 0 else None)
        try:
            if batch is not None:
                self._run(batch)
        finally:
            with self._cv:
                self._running += 1
        if call.error is not None:
            raise call.error
        return call.result

    def _host(self, logits):
        return logits if logits.device.type == "cpu" else logits.float().cpu()

    def _run(self, batch: list[_Call]) -> None:
        """Compute `batch` (grouped by T) and wake every caller in it."""
        groups: dict[int, list[_Call]] = {}
        for c in batch:
            groups.setdefault(c.tokens.shape[1], []).append(c)
        for calls in groups.values():
            try:
                results = transformer_forward(self.model, [(c.tokens, c.state) for c in calls])
                for c, (logits, state) in zip(calls, results):
                    c.result = (self._host(logits), state)
            except BaseException as e:  # noqa: BLE001 - every caller gets the failure, none hangs
                for c in calls:
                    c.error = e
        with self._cv:
            self.batches += len(groups)
            self.batched_calls += len(batch)
            self.rows += sum(c.tokens.shape[0] for c in batch)
            for c in batch:
                c.done = True
            self._cv.notify_all()
