"""Copy-aware training (dataset/copy_targets.py): the targets a corpus gets from the engine's copy model, the
mixture loss, and `train.py --copy-aware` on the fine-tuning fixture project with the tiny real checkpoint."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import train
from dataset.copy_targets import build_copy_targets, copy_targets_path, documents, mixture_loss
from dataset.corpus import load_split
from dataset.personal import build_personal_corpus
from models.checkpoint import load_checkpoint
from tests.test_finetune import PROJECT, cfg, tiny_ckpt  # noqa: F401  (the fixture)


def test_mixture_loss_is_cross_entropy_without_a_match_and_scales_the_gradient_with_one():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 11, requires_grad=True)
    y = torch.tensor([[1, 2, -1], [4, 5, 6]])
    plain = torch.nn.functional.cross_entropy(logits.reshape(-1, 11), y.reshape(-1), ignore_index=-1)
    assert mixture_loss(logits, y, torch.zeros(2, 3, 2)).item() == pytest.approx(plain.item(), rel=1e-6)

    # one target the copy model predicts: loss -log((1-lam) p + c), gradient w * (softmax - onehot)
    lam, c = 0.6, 0.45
    copy = torch.zeros(2, 3, 2)
    copy[1, 0] = torch.tensor([lam, c])
    loss = mixture_loss(logits, y, copy)
    loss.backward()
    p = torch.softmax(logits.detach()[1, 0], -1)
    mixed = (1 - lam) * p[4] + c
    w = (1 - lam) * p[4] / mixed
    n = 5  # targets that count (one is -1)
    onehot = torch.nn.functional.one_hot(torch.tensor(4), 11).float()
    torch.testing.assert_close(logits.grad[1, 0], w * (p - onehot) / n, rtol=1e-4, atol=1e-6)
    others = [-np.log(torch.softmax(logits.detach()[i, j], -1)[y[i, j]].item())
              for i, j in [(0, 0), (0, 1), (1, 1), (1, 2)]]
    assert loss.item() == pytest.approx((sum(others) - np.log(mixed.item())) / n, rel=1e-5)


def test_copy_targets_see_the_other_files_and_never_the_rest_of_their_own(tiny_ckpt, tmp_path):
    tok = load_checkpoint(tiny_ckpt).tokenizer
    project = tmp_path / "proj"
    project.mkdir()
    # a name the project defines in one file and uses in another, and one that only appears later in its file
    (project / "a.py").write_text("def normalise_invoice_total(rows):\n    return sum(rows)\n")
    (project / "b.py").write_text("import a\n\n\ntotal = a.normalise_invoice_total([1, 2])\n"
                                  "zebra_quokka_count = 3\nprint(zebra_quokka_count)\n")
    build_personal_corpus([project], tmp_path / "data", tok, valid_fraction=0.0)
    tokens = np.asarray(load_split(tmp_path / "data", "train"))
    targets = build_copy_targets(tmp_path / "data")
    assert targets.shape == (len(tokens), 2) and targets.dtype == np.float32
    assert (targets[:, 1] <= targets[:, 0] + 1e-6).all() and (targets[:, 0] < 1).all()
    assert (targets[tokens == tok.eot_id] == 0).all()
    docs = documents(tokens, tok.eot_id)
    texts = [tok.decode(tokens[s:e].tolist()) for s, e in docs]
    b = next(i for i, t in enumerate(texts) if t.startswith("import a"))
    s, e = docs[b]
    assert (targets[s] == 0).all()  # a document's first token has no history

    def span(text: str, nth: int) -> range:
        """Token indexes (in the split) of the nth occurrence of `text` in document b."""
        at = -1
        for _ in range(nth + 1):
            at = texts[b].index(text, at + 1)
        lengths = np.cumsum([len(tok.decode([int(i)]).encode()) for i in tokens[s:e]])
        first = int(np.searchsorted(lengths, len(texts[b][:at].encode()), side="right"))
        last = int(np.searchsorted(lengths, len(texts[b][:at + len(text)].encode()), side="left"))
        return range(s + first, s + last + 1)

    # the name from a.py: its later tokens are predicted by the copy model (the other file is memory)
    assert targets[list(span("normalise_invoice_total", 0))[1:], 1].max() > 0.3
    # the first use of a name defined nowhere before is not: its own later use may not leak back
    first_use = list(span("zebra_quokka_count", 0))[1:]
    assert targets[first_use, 1].max() == 0
    # its second use, on a later line, is (the file's text before the line is memory)
    assert targets[list(span("zebra_quokka_count", 1))[1:], 1].max() > 0.3


def test_copy_aware_fine_tuning_runs_and_refuses_missing_targets(tiny_ckpt, tmp_path):
    tok = load_checkpoint(tiny_ckpt).tokenizer
    data = tmp_path / "data"
    build_personal_corpus([PROJECT], data, tok, valid_fraction=0.2)
    with pytest.raises(ValueError, match="copy_targets"):
        train.train(cfg(data, tmp_path / "none", tiny_ckpt, copy_aware=True))
    np.save(copy_targets_path(data), build_copy_targets(data))
    c = cfg(data, tmp_path / "run", tiny_ckpt, copy_aware=True, steps=3, lr=1e-3, fim_rate=0.5)
    train.train(c)
    assert (tmp_path / "run" / "last.pt").is_file()
    np.save(copy_targets_path(data), np.zeros((5, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="rebuild"):
        train.train(cfg(data, tmp_path / "stale", tiny_ckpt, copy_aware=True))
