"""Int8 weights for CPU inference (models/quantize.py): what is replaced, what is kept, how close it stays."""
import pytest
import torch
from torch import nn

import server

from evaluate.metrics import token_stats
from evaluate.predictor import Predictor
from models.checkpoint import load_checkpoint
from models.quantize import is_quantized, quantize_model, resolve_quantize
from tests.tiny_model import TINY_TEXT, make_tiny_checkpoint


@pytest.fixture(scope="module")
def ckpt():
    return load_checkpoint(make_tiny_checkpoint())


def test_every_linear_is_replaced_and_the_float_model_is_kept(ckpt):
    model = ckpt.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    q = quantize_model(model, "int8")
    assert is_quantized(q) and not is_quantized(model)
    assert not any(type(m) is nn.Linear for m in q.modules())  # the tied head included
    assert type(q.embed) is nn.Embedding  # the lookup table stays float
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert quantize_model(model, "none") is model


def test_in_place_quantization_keeps_no_float_copy():
    """What a serving worker loads (server.load_for_inference): the checkpoint's own model quantized, equal to
    the copying quantization's answers, and no float nn.Linear left behind."""
    path = make_tiny_checkpoint()
    copied = quantize_model(load_checkpoint(path).model, "int8")
    ckpt, model, info = server.load_for_inference(str(path), "cpu", "int8")
    assert model is ckpt.model and is_quantized(model) and info["quantize"] == "int8"
    assert not any(type(m) is nn.Linear for m in model.modules())
    ids = torch.tensor([list(range(1, 40))])
    with torch.inference_mode():
        assert torch.equal(model(ids)[0], copied(ids)[0])


def test_int8_stays_close_to_the_float_model(ckpt):
    """On the text the tiny model learned: bits/char within 5 % and the same arg-max next token almost
    everywhere (a wrong scale or a broken head would change both by far more)."""
    q = quantize_model(ckpt.model, "int8")
    fp = token_stats(ckpt.model, ckpt.tokenizer, TINY_TEXT)
    i8 = token_stats(q, ckpt.tokenizer, TINY_TEXT)
    assert i8.tokens == fp.tokens
    assert abs(i8.bits_per_char - fp.bits_per_char) <= 0.05 * fp.bits_per_char
    ids = torch.tensor([fp.ids[:200]])
    with torch.inference_mode():
        a, _ = ckpt.model(ids)
        b, _ = q(ids)
    agree = (a.argmax(-1) == b.argmax(-1)).float().mean().item()
    assert agree >= 0.95, agree


def test_a_quantized_predictor_completes_and_the_cache_still_serves_typing(tmp_path):
    path = make_tiny_checkpoint()
    p = Predictor.from_checkpoint(path, quantize="int8")
    assert is_quantized(p.model)
    prompt = "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n        self."
    first = p.complete(prompt, kind="line")
    assert first and first[0].text
    again = p.complete(prompt, kind="line")  # from the prefix cache: the same answer
    assert [c.text for c in again] == [c.text for c in first]
    assert p.counters["requests"] == 2


def test_resolve_quantize():
    assert resolve_quantize("auto", "cpu") == "int8"
    assert resolve_quantize("auto", "cuda") == "none" and resolve_quantize("auto", "cuda:1") == "none"
    assert resolve_quantize("none", "cpu") == "none"
    with pytest.raises(ValueError, match="CPU only"):
        resolve_quantize("int8", "cuda")
    with pytest.raises(ValueError, match="one of"):
        resolve_quantize("int4", "cpu")
