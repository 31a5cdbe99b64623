"""The LanguageModel contract (docs/DESIGN.md) for every architecture, on tiny real models."""
from __future__ import annotations

import pytest
import torch

from models import ARCHS, ModelConfig, build_model

torch.set_num_threads(1)

VOCAB = 97
MAX_LEN = 16  # transformer attention window
MEM_LEN = 24  # Transformer-XL memory


def tiny(arch: str, max_len: int = MAX_LEN) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = ModelConfig(arch=arch, vocab_size=VOCAB, d_model=32, n_layers=2, n_heads=4, dropout=0.0,
                      max_len=max_len, mem_len=MEM_LEN, rhn_depth=2)
    return build_model(cfg).eval()


def tokens(b: int, t: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (b, t), generator=torch.Generator().manual_seed(seed))


def state_tensors(state):
    out = []
    for x in state:
        if isinstance(x, torch.Tensor):
            out.append(x)
        elif isinstance(x, (tuple, list)):
            out += state_tensors(x)
    return out


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_backward(arch):
    model = tiny(arch).train()
    x = tokens(3, 12)
    logits, state = model(x)
    assert logits.shape == (3, 12, VOCAB)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), x.roll(-1, 1).reshape(-1))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.embed.weight.grad.abs().sum() > 0
    assert model.head.weight is model.embed.weight  # tied
    assert model.state_length(None) == 0


@pytest.mark.parametrize("arch", ["lstm", "highway", "transformer"])
@pytest.mark.parametrize("split", [1, 7, 15, 16, 30])
def test_continuation_equals_whole(arch, split):
    # 40 tokens: longer than the transformer's window (16), so the sliding KV cache is exercised too.
    model = tiny(arch)
    x = tokens(2, 40)
    with torch.no_grad():
        whole, _ = model(x)
        first, state = model(x[:, :split])
        second, _ = model(x[:, split:], state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_token_by_token_equals_whole(arch):
    # Incremental decoding, one token at a time with the state: what the completion engine does.
    model = tiny(arch)
    n = 20 if arch == "transformer_xl" else 40  # XL: within its memory (see below)
    x = tokens(2, n, seed=3)
    with torch.no_grad():
        whole, _ = model(x)
        state, steps = None, []
        for t in range(n):
            logits, state = model(x[:, t:t + 1], state)
            steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, 1), whole, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("split", [1, 10, 24])
def test_transformer_xl_continuation_within_memory(split):
    # XL semantics: A then B with the memory equals A + B in one pass while the memory still holds all
    # of A (len(A) <= mem_len) and the one pass is one segment (len(A + B) <= max_len, the segment length).
    model = tiny("transformer_xl", max_len=48)
    x = tokens(2, split + 16)
    with torch.no_grad():
        whole, _ = model(x)
        first, state = model(x[:, :split])
        assert model.state_length(state) == split
        second, state = model(x[:, split:], state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole, atol=1e-5, rtol=1e-5)
    assert model.state_length(state) == min(split + 16, MEM_LEN)


def test_transformer_xl_memory_is_truncated_beyond_mem_len():
    # Past mem_len tokens the memory forgets: the chunked result differs from the whole (and must).
    model = tiny("transformer_xl")
    x = tokens(1, MEM_LEN + 10 + MAX_LEN)
    with torch.no_grad():
        whole, _ = model(x)
        _, state = model(x[:, :MEM_LEN + 10])
        second, _ = model(x[:, MEM_LEN + 10:], state)
    assert model.state_length(state) == MEM_LEN
    assert not torch.allclose(second, whole[:, MEM_LEN + 10:], atol=1e-4)


def test_transformer_kv_cache_slides():
    model = tiny("transformer")
    assert model.max_context == MAX_LEN
    with torch.no_grad():
        _, state = model(tokens(1, 10))
        assert model.state_length(state) == 10
        _, state = model(tokens(1, 50), state)
    assert model.state_length(state) == MAX_LEN - 1
    assert state.position == 60
    assert state.keys[0].shape == (1, 4, MAX_LEN - 1, 8)


@pytest.mark.parametrize("arch", ARCHS)
def test_select_state_picks_rows_and_does_not_mutate(arch):
    model = tiny(arch)
    x = tokens(3, 10)
    nxt = tokens(3, 4, seed=7)
    with torch.no_grad():
        _, state = model(x)
        before = [t.clone() for t in state_tensors(state)]
        index = torch.tensor([2, 0, 0, 1])
        picked = model.select_state(state, index)
        got, _ = model(nxt[index], picked)
        # Reference: run each picked row on its own, from scratch.
        for row, src in enumerate(index.tolist()):
            ref, _ = model(torch.cat([x[src:src + 1], nxt[src:src + 1]], 1))
            torch.testing.assert_close(got[row], ref[0, 10:], atol=1e-5, rtol=1e-5)
        # Neither select_state nor forward touched the original state.
        _, _ = model(nxt, state)
        for a, b in zip(state_tensors(state), before):
            assert torch.equal(a, b)
    assert model.state_length(picked) == model.state_length(state)


@pytest.mark.parametrize("arch", ARCHS)
def test_config_errors_are_clear(arch):
    with pytest.raises(ValueError, match="divisible"):
        ModelConfig(arch="transformer", d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="unknown arch"):
        ModelConfig(arch="gpt9")
    cfg = ModelConfig(arch=arch, vocab_size=VOCAB, d_model=32, n_heads=4)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown ModelConfig keys"):
        ModelConfig.from_dict({**cfg.to_dict(), "bogus": 1})


@pytest.mark.parametrize("arch", ["transformer", "transformer_xl"])
def test_attention_dropout_is_its_own_setting(arch):
    # Only the attention weights are dropped (dropout 0 elsewhere): train-mode forwards differ with
    # attn_dropout 0.5, agree with 0; left at -1 it follows dropout (older checkpoints have no such key).
    def two_forwards(**dropouts):
        torch.manual_seed(0)
        cfg = ModelConfig(arch=arch, vocab_size=VOCAB, d_model=32, n_layers=2, n_heads=4, max_len=MAX_LEN,
                          mem_len=MEM_LEN, **dropouts)
        model, x = build_model(cfg).train(), tokens(2, 12)
        return model(x)[0], model(x)[0]

    a, b = two_forwards(dropout=0.0, attn_dropout=0.5)
    assert not torch.allclose(a, b)
    a, b = two_forwards(dropout=0.0, attn_dropout=0.0)
    assert torch.equal(a, b)
    assert ModelConfig(dropout=0.2).attention_dropout == 0.2
    assert ModelConfig(dropout=0.2, attn_dropout=0.0).attention_dropout == 0.0
    legacy = {k: v for k, v in ModelConfig().to_dict().items() if k != "attn_dropout"}
    assert ModelConfig.from_dict({**legacy, "dropout": 0.3}).attention_dropout == 0.3
    with pytest.raises(ValueError, match="attn_dropout"):
        ModelConfig(attn_dropout=1.0)


# A tiny model memorises a short real text: cross-entropy below 0.5 nats/token within 150 full-batch
# Adam steps (a random model starts at ln(97) ~ 4.6). Checks that the maths learns, for every model.
@pytest.mark.parametrize("arch", ARCHS)
def test_tiny_model_overfits_a_small_text(arch):
    text = ("def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n\n"
            "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n")
    ids = torch.tensor([[min(ord(c), VOCAB - 1) for c in text]])
    torch.manual_seed(0)
    cfg = ModelConfig(arch=arch, vocab_size=VOCAB, d_model=64, n_layers=2, n_heads=4, dropout=0.0,
                      max_len=ids.shape[1], mem_len=ids.shape[1], rhn_depth=2)
    model = build_model(cfg).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2 if arch in ("lstm", "highway") else 3e-3)
    x, y = ids[:, :-1], ids[:, 1:]
    for _ in range(150):
        logits, _ = model(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    assert loss.item() < 0.5, f"{arch} did not memorise the text: loss {loss.item():.3f}"


@pytest.mark.parametrize("arch", ARCHS)
def test_last_only_gives_the_last_position(arch):
    model = tiny(arch)
    x = tokens(2, 12)
    with torch.no_grad():
        whole, state = model(x)
        last, state_last = model(x, last_only=True)
    assert last.shape == (2, 1, VOCAB)
    torch.testing.assert_close(last[:, 0], whole[:, -1], atol=1e-5, rtol=1e-5)
    for a, b in zip(state_tensors(state), state_tensors(state_last)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("context", [5, 12, 40])
def test_transformer_beams_share_their_context(context):
    # Beam search: rows branch from a one-row state, step one token at a time and get reordered. The
    # context's keys stay shared (not copied per row) and every row's logits equal feeding that row's
    # whole text from scratch, past the sliding window (16) too.
    model = tiny("transformer")
    x = tokens(1, context)
    rows = [x[0].tolist()] * 3
    with torch.no_grad():
        _, state = model(x)
        state = model.select_state(state, torch.tensor([0, 0, 0]))
        assert state.shared_keys is not None and state.keys[0].shape[2] == 0
        for step in range(20):
            if step % 4 == 3:  # survivors reordered, one beam duplicated
                order = [2, 0, 0]
                state = model.select_state(state, torch.tensor(order))
                rows = [rows[i] for i in order]
            nxt = tokens(3, 1, seed=100 + step)
            logits, state = model(nxt, state)
            rows = [r + [t] for r, t in zip(rows, nxt[:, 0].tolist())]
            for r, row in enumerate(rows):
                ref, _ = model(torch.tensor([row]))
                torch.testing.assert_close(logits[r, -1], ref[0, -1], atol=1e-5, rtol=1e-5)
            assert model.state_length(state) == min(len(rows[0]), MAX_LEN - 1)
        # More than one new token continues from the flattened state, as the model's own would.
        more = tokens(3, 3, seed=999)
        got, _ = model(more, state)
        for r, row in enumerate(rows):
            ref, _ = model(torch.tensor([row + more[r].tolist()]))
            torch.testing.assert_close(got[r], ref[0, -3:], atol=1e-5, rtol=1e-5)
