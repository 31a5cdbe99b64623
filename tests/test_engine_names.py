"""Names of the project (evaluate/names.py): the identifier being typed completed with a name the user's code
uses, where the search offers none of them."""
from __future__ import annotations

import pytest
import torch

from evaluate.context import ContextStore
from evaluate.names import NamesConfig, ProjectNames, find_names, typed_prefix
from evaluate.predictor import Predictor, PredictorConfig
from tests.tiny_model import make_tiny_checkpoint

WIDGETS = "def build():\n    return zqxv_widget_factory(1) + zqxv_widget_factory(2)\n"


@pytest.fixture(scope="module")
def ckpt():
    torch.set_num_threads(1)
    return make_tiny_checkpoint()


@pytest.fixture(scope="module")
def store(ckpt):
    """Cuts and keys the texts into blocks, as for a request (ContextStore.cut)."""
    from models.checkpoint import load_checkpoint
    return ContextStore(load_checkpoint(ckpt).tokenizer)


def test_the_typed_prefix_is_the_identifier_before_the_cursor_outside_names_and_numbers():
    assert typed_prefix("x = normalise_inv", "", 2) == "normalise_inv"
    assert typed_prefix("x = normalise_inv", ")\n    return x", 2) == "normalise_inv"
    assert typed_prefix("x = n", "", 2) is None  # shorter than min_prefix
    assert typed_prefix("x = normalise_inv", "oice_total\n", 2) is None  # inside a name: would split it
    assert typed_prefix("x = 0x1f", "", 2) is None  # the end of a number
    assert typed_prefix("x = (", "", 2) is None


def test_names_in_any_script_are_names():
    """Python 3 identifiers may hold any letters: `größe_berechnen` is one name, offered like any other."""
    assert typed_prefix("x = größe_be", "", 2) == "größe_be"
    assert typed_prefix("x = größe_be", "rechnen(a)", 2) is None  # inside the name
    assert typed_prefix("x = größe", "ü", 2) is None
    assert typed_prefix("x = a×b", "", 2) is None  # `×` is no letter: `b` alone is too short
    text = "größe = maß_1 * 2\nx = a×b — _ü1 + 3x\nfür_alle = größe_berechnen(größe)\n"
    assert find_names(text) == ["größe", "maß_1", "x", "a", "b", "_ü1", "x", "für_alle", "größe_berechnen", "größe"]
    assert find_names("plain = ascii_only(3x)") == ["plain", "ascii_only", "x"]


def test_extending_names_are_counted_over_blocks_chunks_and_the_cursor_line(store):
    names = ProjectNames()
    found = names.extending("par", store.cut("parse_date(x)\nparse_date(y)\nparser = 1\n",
                                             ["def parse_time(s):\n    return par\n", "partial = 2\n"]),
                            "z = parse_time(")
    # `par` itself is no completion; the rest in order of first appearance
    assert found == {"parse_date": 2, "parser": 1, "parse_time": 2, "partial": 1}
    found = names.extending("grö", store.cut("größe = 1\n", ["def größe_berechnen(x):\n    return x\n"]), "y = ")
    assert found == {"größe": 1, "größe_berechnen": 1}
    assert names.complete("grö", "ß(", found) == ("ße", 0.5)  # the search's `größ(` is no name of the project


def test_the_search_keeps_its_suggestion_when_it_completes_a_known_name():
    names = ProjectNames(NamesConfig(min_share=0.3))
    found = {"parse_date": 3, "parser": 1}
    assert names.complete("par", "ser = 1", found) is None  # `parser` is one of the project's names
    assert names.complete("par", "tial(", found) == ("se_date", 0.75)  # `partial` is not: the top name instead
    assert names.complete("par", None, found) == ("se_date", 0.75)  # no suggestion at all
    assert names.complete("par", "tial(", {"parse_date": 1, "parser": 1, "parsed": 1, "parses": 1}) is None
    assert names.complete("par", "tial(", {}) is None
    # Python's own names need no definition in the project: `print(`, `return x` stay
    assert names.complete("pr", "int(x)", {"process": 3}) is None
    assert names.complete("re", "turn x", {"result": 2}) is None
    assert names.complete("pr", "ocessor", {"process": 3}) == ("ocess", 1.0)


def test_a_confident_suggestion_stays_over_the_memorys_name():
    # A model fine-tuned on the project knows names the memory does not rank first: its confident choice stays.
    names = ProjectNames(NamesConfig(min_share=0.3, keep_above=0.5))
    found = {"parse_date": 3, "parser": 1}
    assert names.complete("par", "tial(", found, top_prob=0.6) is None
    assert names.complete("par", "tial(", found, top_prob=0.4) == ("se_date", 0.75)
    assert names.complete("par", None, found, top_prob=0.9) == ("se_date", 0.75)  # nothing to keep
    never = ProjectNames(NamesConfig(min_share=0.3, keep_above=1.1))
    assert never.complete("par", "tial(", found, top_prob=1.0) == ("se_date", 0.75)


def test_name_tables_are_built_once_per_block_and_stay_within_their_bound(store):
    names = ProjectNames(NamesConfig(max_bytes=2000))
    chunk = "alpha_one = 1\nalpha_two = 2\n"
    for typed in ("al", "alp", "alph"):
        names.extending(typed, store.cut("", [chunk]), "x = " + typed)
    assert names.usage()["names_tables_built"] == 1  # the chunk, once; the cursor line is not kept
    for i in range(1000):
        names.extending("al", store.cut("", [f"alpha_{i} = {i}\n"]), "")
    usage = names.usage()
    assert usage["names_tables_built"] == 1001 and 0 < usage["names_table_bytes"] <= 2000
    assert usage["names_tables"] == usage["names_table_bytes"] // (len("alpha_100") + 90)  # one name each
    assert names.extending("alpha_99", store.cut("", ["alpha_999 = 1\n"]), "") == {"alpha_999": 1}  # the latest stay


def test_a_name_used_only_below_the_cursor_is_offered(ckpt):
    """The copy model finds `zqxv_widget_factory` only after the tokens that precede it in the memory; typed
    in a new place, the project's names offer it."""
    prompt = "def main():\n    items = [zq"
    suffix = "\n    return items\n\n\n" + WIDGETS
    on = Predictor.from_checkpoint(ckpt, config=PredictorConfig())
    off = Predictor.from_checkpoint(ckpt, config=PredictorConfig(names=None))
    assert not off.complete(prompt, suffix=suffix)[0].text.startswith("xv_widget_factory")
    got = on.complete(prompt, suffix=suffix, max_suggestions=3)
    assert got[0].text == "xv_widget_factory" and got[0].prob == 1.0
    assert [c.text for c in got[1:]] == [c.text for c in off.complete(prompt, suffix=suffix, max_suggestions=3)
                                         if c.text != "xv_widget_factory"][:2]
    # from input_extra the same
    assert on.complete(prompt, extra=[WIDGETS])[0].text == "xv_widget_factory"
    assert on.stats()["names_offered"] == 2
    # ... unless the engine is as sure of its own suggestion as keep_above asks
    top = off.complete(prompt, suffix=suffix)[0]
    sure = Predictor.from_checkpoint(ckpt, config=PredictorConfig(names=NamesConfig(keep_above=top.prob)))
    assert sure.complete(prompt, suffix=suffix)[0].text == top.text
    unsure = Predictor.from_checkpoint(ckpt, config=PredictorConfig(names=NamesConfig(keep_above=top.prob + 1e-6)))
    assert unsure.complete(prompt, suffix=suffix)[0].text == "xv_widget_factory"


@pytest.mark.parametrize("kind", ["word", "line", "block"])
def test_other_kinds_and_a_cursor_inside_a_name_are_left_to_the_search(ckpt, kind):
    on = Predictor.from_checkpoint(ckpt, config=PredictorConfig())
    off = Predictor.from_checkpoint(ckpt, config=PredictorConfig(names=None))
    prompt = "def main():\n    items = [zq"
    assert [c.text for c in on.complete(prompt, kind=kind, extra=[WIDGETS])] == \
        [c.text for c in off.complete(prompt, kind=kind, extra=[WIDGETS])]
    inside = "xv_thing]\n"
    assert [c.text for c in on.complete(prompt, suffix=inside, extra=[WIDGETS])] == \
        [c.text for c in off.complete(prompt, suffix=inside, extra=[WIDGETS])]


def test_no_context_store_means_no_names(ckpt):
    blind = Predictor.from_checkpoint(ckpt, config=PredictorConfig(context=None))
    assert blind.names is None
    assert not blind.complete("def main():\n    items = [zq", extra=[WIDGETS])[0].text.startswith("xv_widget")
