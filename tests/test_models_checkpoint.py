"""Checkpoints: atomic save, exact load, fp16 export, clear errors on missing or corrupt files."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dataset.tokenizer import Tokenizer
from models import ModelConfig, build_model
from models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from test_train_tiny_corpus import make_tiny_corpus

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> Tokenizer:
    root = make_tiny_corpus(tmp_path_factory.mktemp("corpus"))
    return Tokenizer.from_file(root / "corpus" / "tokenizer.json")


@pytest.mark.parametrize("arch", ["transformer", "lstm", "transformer_xl", "highway"])
def test_round_trip_is_exact(tmp_path, tokenizer, arch):
    torch.manual_seed(0)
    cfg = ModelConfig(arch=arch, vocab_size=tokenizer.vocab_size, d_model=32, n_layers=2, n_heads=4,
                      max_len=32, mem_len=32)
    model = build_model(cfg)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.zeros(1, 4, dtype=torch.long))[0].sum().backward()
    opt.step()
    path = save_checkpoint(tmp_path / "run" / "last.pt", model, cfg, tokenizer, optimizer=opt, step=7,
                           train_config={"lr": 1e-3}, meta={"valid_bpc": 1.5})
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temp file left behind
    ckpt = load_checkpoint(path)
    assert ckpt.step == 7 and ckpt.meta == {"valid_bpc": 1.5} and ckpt.train_config == {"lr": 1e-3}
    assert ckpt.config == cfg and not ckpt.model.training
    assert ckpt.tokenizer.sha256 == tokenizer.sha256
    assert ckpt.optimizer_state["state"]  # Adam moments survived
    x = torch.tensor([tokenizer.encode("def f(x):\n    return x")])
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(ckpt.model(x)[0], model(x)[0], atol=0, rtol=0)
    assert ckpt.model.head.weight is ckpt.model.embed.weight  # tying survives loading


def test_export_is_half_precision_and_loads_as_float32(tmp_path, tokenizer):
    torch.manual_seed(0)
    cfg = ModelConfig(arch="transformer", vocab_size=tokenizer.vocab_size, d_model=64, n_layers=2, n_heads=4)
    model = build_model(cfg).eval()
    src = save_checkpoint(tmp_path / "best.pt", model, cfg, tokenizer,
                          optimizer=torch.optim.AdamW(model.parameters()), step=3, meta={"valid_bpc": 2.0})
    out = subprocess.run([sys.executable, "-m", "models.export", str(src), str(tmp_path / "default.pt")],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    raw = torch.load(tmp_path / "default.pt", weights_only=True)
    assert raw["optimizer_state"] is None and raw["resume"] is None
    assert all(t.dtype == torch.float16 for t in raw["model_state"].values() if t.is_floating_point())
    # fp16 weights, stored once although embed and head share them: about half of the fp32 file.
    assert (tmp_path / "default.pt").stat().st_size < 0.6 * src.stat().st_size
    ckpt = load_checkpoint(tmp_path / "default.pt")
    assert all(p.dtype == torch.float32 for p in ckpt.model.parameters())
    assert ckpt.step == 3 and ckpt.meta["valid_bpc"] == 2.0
    x = torch.tensor([tokenizer.encode("import os\n")])
    with torch.no_grad():
        torch.testing.assert_close(ckpt.model(x)[0], model(x)[0], atol=2e-2, rtol=0)


def test_missing_and_corrupt_files_raise_checkpoint_error(tmp_path, tokenizer):
    with pytest.raises(CheckpointError, match="does not exist") as e:
        load_checkpoint(tmp_path / "nope.pt")
    assert str(tmp_path / "nope.pt") in str(e.value)
    (tmp_path / "garbage.pt").write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pt"):
        load_checkpoint(tmp_path / "garbage.pt")
    # A truncated real checkpoint (what a crash during a non-atomic write would leave).
    cfg = ModelConfig(arch="lstm", vocab_size=tokenizer.vocab_size, d_model=32, n_layers=1)
    good = save_checkpoint(tmp_path / "good.pt", build_model(cfg), cfg, tokenizer)
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.pt"):
        load_checkpoint(tmp_path / "cut.pt")
    # A torch file that is not ours.
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a python-autocomplete"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a regular file"):
        load_checkpoint(tmp_path)
    out = subprocess.run([sys.executable, "-m", "models.export", str(tmp_path / "cut.pt"), str(tmp_path / "x.pt")],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "cut.pt" in out.stderr and "Traceback" not in out.stderr
