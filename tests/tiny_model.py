"""Tiny real models for tests (shared by the engine, server and end-to-end tests).

    from tests.tiny_model import make_tiny_checkpoint
    path = make_tiny_checkpoint(tmp_path / "tiny.pt")   # a real checkpoint, built once per test session

`make_tiny_checkpoint` trains a byte-level BPE tokenizer on `TINY_TEXT` (a small Python file) and a
2-layer transformer that over-fits it in a few seconds, and saves them with
`models.checkpoint.save_checkpoint`. The model knows the text by heart, so it completes `self.assertEq`
with `ual(`.

`BigramModel` is a fixed table language model (logits depend on the last token only) that implements the
LanguageModel interface exactly; the exhaustive-search tests use it.
"""
from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

import torch
from torch import nn

TINY_TEXT = '''import unittest


def add(a, b):
    return a + b


def mul(a, b):
    return a * b


class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)

    def pop(self):
        return self.items.pop()

    def __len__(self):
        return len(self.items)


class TestMath(unittest.TestCase):
    def test_add(self):
        self.assertEqual(add(1, 2), 3)
        self.assertEqual(add(2, 2), 4)

    def test_mul(self):
        self.assertEqual(mul(2, 3), 6)
        self.assertTrue(mul(1, 1) == 1)

    def test_stack(self):
        stack = Stack()
        stack.push(1)
        self.assertEqual(len(stack), 1)
        self.assertEqual(stack.pop(), 1)


def main():
    print(add(1, 2))
    print(mul(3, 4))
    unittest.main()


if __name__ == "__main__":
    main()
'''

_lock = threading.Lock()
_built: dict[str, Path] = {}
_dir = None


def tiny_tokenizer(vocab_size: int = 320):
    """A real byte-level BPE tokenizer (the dataset's trainer) fitted on TINY_TEXT."""
    from dataset.encode import train_tokenizer
    return train_tokenizer([TINY_TEXT] * 4, vocab_size=vocab_size, min_frequency=2)


def train_tiny_model(tokenizer, steps: int = 400, seed: int = 0):
    """A 2-layer transformer over-fitted on TINY_TEXT (eot + text, repeated) in a few seconds."""
    from models import ModelConfig, build_model
    torch.manual_seed(seed)
    config = ModelConfig(arch="transformer", vocab_size=tokenizer.vocab_size, d_model=64, n_layers=2,
                         n_heads=4, max_len=128, dropout=0.0)
    model = build_model(config)
    ids = torch.tensor(([tokenizer.eot_id] + tokenizer.encode(TINY_TEXT)) * 4, dtype=torch.long)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    seq, batch = 96, 16
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model.train()
        for step in range(steps):
            starts = torch.randint(0, len(ids) - seq - 1, (batch,))
            x = torch.stack([ids[s:s + seq] for s in starts])
            y = torch.stack([ids[s + 1:s + seq + 1] for s in starts])
            logits, _ = model(x)
            loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            for g in opt.param_groups:  # linear decay: ends sharp on the memorised text
                g["lr"] = 3e-3 * (1 - step / steps)
    finally:
        torch.set_num_threads(threads)
    model.eval()
    return model, config, loss.item()


def make_tiny_checkpoint(path=None) -> Path:
    """A tiny real checkpoint at `path` (or in a session temp folder when None). Trained once per
    process; later calls copy the file."""
    global _dir
    with _lock:
        if "tiny" not in _built:
            from models.checkpoint import save_checkpoint
            tokenizer = tiny_tokenizer()
            model, config, loss = train_tiny_model(tokenizer)
            _dir = tempfile.mkdtemp(prefix="tiny-model-")
            _built["tiny"] = save_checkpoint(Path(_dir) / "tiny.pt", model, config, tokenizer, step=400,
                                             meta={"train_loss": loss, "text": "tests/tiny_model.TINY_TEXT"})
        src = _built["tiny"]
    if path is None:
        return src
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, path)
    return path


class BigramModel(nn.Module):
    """logits[t] = table[token[t]]: a fixed table language model with the LanguageModel interface.
    The state is the last token fed, LongTensor[B] (None at the start of the text)."""

    max_context = None

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.register_buffer("table", table.float())  # [V, V]: row = previous token, column = next
        self.forward_calls = 0

    def forward(self, tokens: torch.Tensor, state=None, last_only: bool = False):
        self.forward_calls += 1
        return self.table[tokens[:, -1:] if last_only else tokens], tokens[:, -1].clone()

    def select_state(self, state, index):
        return None if state is None else state.index_select(0, index)

    def state_length(self, state):
        return 0 if state is None else 1
