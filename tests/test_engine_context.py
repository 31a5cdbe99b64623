"""The project context (evaluate/context.py): blocks, the copy model's counts, memory bounds, reuse, and
completions of names the tiny model can only know from the context."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluate.context import ContextConfig, ContextStore, prompt_blocks
from evaluate.predictor import Predictor, PredictorConfig
from tests.tiny_model import TINY_TEXT, make_tiny_checkpoint

BILLING = "def normalise_invoice_total(invoice, currency):\n    return round(invoice.amount, 2)\n"


@pytest.fixture(scope="module")
def ckpt():
    torch.set_num_threads(1)
    return make_tiny_checkpoint()


# The tiny model is over-fitted (p ~ 1 on its memorised text, and confidently wrong off it), far more
# sure of itself than a real model: these tests mix the copy model in with a strong weight so that they test
# the mechanism (what is remembered, matched and reused), not the weight measured on real code.
STRONG = ContextConfig(max_weight=0.99, scale_bytes=4)


@pytest.fixture()
def predictor(ckpt):
    return Predictor.from_checkpoint(ckpt, config=PredictorConfig(context=STRONG))


def texts(completions):
    return [c.text for c in completions]


def test_prompt_blocks_join_back_and_an_edit_moves_few_blocks():
    text = TINY_TEXT * 12
    blocks = prompt_blocks(text, 256, 1024)
    assert "".join(blocks) == text
    assert len(blocks) > 5 and all(len(b) <= 1024 + 200 for b in blocks)
    assert all(b.startswith("\n") for b in blocks[1:])  # cut before newlines: tokens stay as in the whole text
    middle = len(text) // 2
    edited = text[:middle] + "    x = 1\n" + text[middle:]
    changed = set(prompt_blocks(edited, 256, 1024)) - set(blocks)
    assert 1 <= len(changed) <= 2  # content-chosen cuts: the blocks away from the edit are the same


def test_copy_model_counts_the_longest_match(ckpt):
    from models.checkpoint import load_checkpoint
    tok = load_checkpoint(ckpt).tokenizer
    store = ContextStore(tok, ContextConfig())
    memory = store.memory("", ["\nalpha = beta(1)\nalpha = beta(2)\nalpha = gamma\n"])
    history = tuple(tok.encode("x\nalpha = beta("))
    lam, ids, probs = memory.predict(history)
    got = {tok.decode([i]): float(p) for i, p in zip(ids, probs)}
    assert got == {"1": 0.5, "2": 0.5}  # both occurrences of "alpha = beta(" and nothing else
    assert 0 < lam <= ContextConfig().max_weight
    lam_short, ids_short, probs_short = memory.predict(tuple(tok.encode("x\nalpha =")))
    assert lam_short < lam  # a shorter match is weaker evidence
    got = {int(i): round(float(p), 4) for i, p in zip(ids_short, probs_short)}
    beta, gamma = tok.encode(" beta")[0], tok.encode(" gamma")[0]  # the tiny tokenizer splits them
    assert beta != gamma and got == {beta: 0.6667, gamma: 0.3333}
    assert memory.predict(tuple(tok.encode("zzzz qqqq"))) is None  # text that never occurs
    # Nothing after the last token of the memory: no prediction from the end itself
    assert ContextStore(tok).memory("", ["only_once"]).predict(tuple(tok.encode("only_once"))) is None


def test_the_identifier_weight_applies_while_the_name_goes_on(ckpt):
    """After 12+ matched identifier bytes the copy model weighs ident_weight (0.9) while its next token
    continues the name (`normalise_invoice_` + `total`); once the name is complete (`normalise_invoice_total`
    + `(`), what follows gets the weight of its matched bytes only (ident_next_only)."""
    from models.checkpoint import load_checkpoint
    tok = load_checkpoint(ckpt).tokenizer
    cfg = ContextConfig()
    memory = ContextStore(tok, cfg).memory("", [BILLING])
    inside = memory.predict(tuple(tok.encode("x = normalise_invoice_")))
    after = memory.predict(tuple(tok.encode("x = normalise_invoice_total")))
    assert inside[0] == cfg.ident_weight
    assert tok.decode([int(after[1][after[2].argmax()])]) == "("
    assert 0.4 < after[0] <= cfg.max_weight < cfg.ident_weight  # 0.6 (1 - exp(-24 / 12)): " normalise_invoice_total"
    old = ContextStore(tok, ContextConfig(ident_next_only=False)).memory("", [BILLING])
    assert old.predict(tuple(tok.encode("x = normalise_invoice_total")))[0] == cfg.ident_weight


def test_a_name_defined_only_in_extra_is_completed(predictor):
    prompt = "def main():\n    total = normalise_inv"
    without = texts(predictor.complete(prompt, max_suggestions=3))
    assert not any(t.startswith("oice") for t in without)  # the tiny model cannot know the name
    with_extra = predictor.complete(prompt, extra=[BILLING])
    assert with_extra[0].text.startswith("oice_total")


def test_a_name_defined_200_lines_above_is_completed(predictor):
    filler = "".join(f"    value_{i} = {i}\n" for i in range(200))
    prompt = BILLING + "\n\ndef main():\n" + filler + "    total = normalise_inv"
    assert predictor.window(prompt)[0].count("\n") < 60  # the definition is far outside the model's window
    assert predictor.complete(prompt)[0].text.startswith("oice_total")
    blind = Predictor(predictor.model, predictor.tokenizer, config=PredictorConfig(context=None))
    assert predictor.complete(prompt, extra=[BILLING])[0].text.startswith("oice_total")
    assert not any(t.startswith("oice") for t in texts(blind.complete(prompt, max_suggestions=3)))


def test_a_name_defined_200_lines_below_in_the_suffix_is_completed_within_its_bound(predictor):
    """The editor sends the rest of the file as the suffix: a name used only far below the cursor is in the
    copy model's memory. The engine keeps the suffix's first `max_suffix_chars` characters, so the same name
    past that bound is not."""
    filler = "".join(f"    value_{i} = {i}\n" for i in range(200))
    prompt = "def main():\n    total = normalise_inv"
    below = "\n" + filler + "\n\n" + BILLING
    assert len(below) < predictor.config.max_suffix_chars
    assert predictor.complete(prompt, suffix=below)[0].text.startswith("oice_total")
    assert not any(t.startswith("oice") for t in texts(predictor.complete(prompt, max_suggestions=3)))
    far = "\n" + filler * (predictor.config.max_suffix_chars // len(filler) + 1) + "\n\n" + BILLING
    assert not any(t.startswith("oice") for t in texts(predictor.complete(prompt, suffix=far, max_suggestions=3)))
    cut = far[:predictor.config.max_suffix_chars]
    assert texts(predictor.complete(prompt, suffix=far, max_suggestions=3)) == \
        texts(predictor.complete(prompt, suffix=cut, max_suggestions=3))


def test_windows_line_ends_are_read_as_the_model_was_trained(predictor):
    """A project in CRLF (an editor's getText, files read from disk) is the same code: its chunks, prompt and
    suffix give the completions their LF text gives, and a name after a CRLF line is still found in them."""
    billing = "import math\n\n" + BILLING + "\n\ndef pay(invoice):\n    return normalise_invoice_total(invoice, 'EUR')\n"
    prompt = "def main(invoice):\n    x = 1\n    total = normalise_inv"
    suffix = "\n    return total\n"
    crlf = [t.replace("\n", "\r\n") for t in (billing, prompt, suffix)]

    def answer(p, s, extra):
        return [(c.text, round(c.prob, 6)) for c in predictor.complete(p, suffix=s, extra=extra, max_suggestions=3)]

    lf = answer(prompt, suffix, [billing])
    assert lf[0][0].startswith("oice_total")
    assert answer(crlf[1], crlf[2], [crlf[0]]) == lf
    assert answer(prompt, suffix, [crlf[0]]) == lf  # the editor's CRLF chunk beside an LF prompt
    assert all("\r" not in text for text, _ in lf)


@pytest.mark.parametrize("kind", [None, "word", "line", "block"])
def test_no_extra_context_gives_the_same_completions_as_before(ckpt, kind):
    """With nothing to remember the context store changes nothing: no input_extra (or empty chunks) and no
    line before the cursor line; and context_prompt="none" keeps any prompt without input_extra exactly as
    the engine without a context store answered it (by default the prompt's lines are remembered too:
    measured +4.8 points of keystrokes saved with today's 20-line prompts, docs/evaluation.md)."""
    before = Predictor.from_checkpoint(ckpt, config=PredictorConfig(context=None))
    with_store = Predictor.from_checkpoint(ckpt, config=PredictorConfig(context=STRONG))
    prompt_off = Predictor.from_checkpoint(ckpt, config=PredictorConfig(context=STRONG, context_prompt="none"))

    def answer(p, prompt, **kw):
        return [(c.text, round(c.prob, 6)) for c in p.complete(prompt, kind=kind, **kw)]

    for prompt in ["self.assertEq", "def ad", "    return a", "stack.pu"]:
        expected = answer(before, prompt)
        for extra in ([], [""], ["   \n"]):
            assert answer(with_store, prompt, extra=extra) == expected, (prompt, extra)
    for prompt in ["import unittest\n\n\nclass Test", TINY_TEXT[:TINY_TEXT.index("def mul") + 6]]:
        assert answer(prompt_off, prompt) == answer(before, prompt)


def test_chunks_are_tokenised_once_and_reused(predictor):
    extra = [BILLING, TINY_TEXT]
    predictor.complete("total = normalise_inv", extra=extra)
    stats = predictor.stats()
    for prompt in ["total = normalise_invo", "total = normalise_invoi", "total = normalise_invoic"]:
        predictor.complete(prompt, extra=extra)
    again = predictor.stats()
    assert again["context_blocks_tokenised"] == stats["context_blocks_tokenised"]
    assert again["context_segments_built"] == stats["context_segments_built"]


def test_typing_at_the_end_of_a_long_file_rebuilds_only_the_recent_segment(predictor):
    text = TINY_TEXT * 30  # ~45 KB: many prompt blocks
    extra = [BILLING]
    predictor.complete(text, extra=extra)
    base = predictor.stats()
    text += "x = normalise_invoice_total(1, 2)\n"
    predictor.complete(text + "y = norm", extra=extra)
    after = predictor.stats()
    # the new line changed the prompt's last block only: one block tokenised, at most the recent segment
    # (and the stable one if a block boundary was crossed) rebuilt, never everything
    assert after["context_blocks_tokenised"] - base["context_blocks_tokenised"] <= 2
    assert after["context_chars_tokenised"] - base["context_chars_tokenised"] < 2 * ContextConfig().block_max_chars


def test_the_store_stays_within_its_byte_bounds_under_many_distinct_chunks(ckpt):
    from models.checkpoint import load_checkpoint
    tok = load_checkpoint(ckpt).tokenizer
    block_limit, segment_limit = 200_000, 1_000_000
    store = ContextStore(tok, ContextConfig(max_block_bytes=block_limit, max_segment_bytes=segment_limit))
    rng = np.random.default_rng(0)
    for request in range(60):
        chunks = [f"def f_{request}_{j}_{rng.integers(1 << 30)}(x):\n    return x * {j}\n" * 40 for j in range(4)]
        memory = store.memory("def main():\n", chunks)
        # Evicted down to the bound, except what this request itself uses.
        this_request_blocks = 4 * sum(len(tok.encode(c)) for c in chunks + ["def main():\n"])
        assert store.block_bytes <= block_limit + this_request_blocks
        assert store.segment_bytes <= segment_limit + sum(s.nbytes for s in memory.segments)
        assert store.block_bytes == sum(a.nbytes for a in store.blocks.values())  # the accounting is exact
        assert store.segment_bytes == sum(s.nbytes for s in store.segments.values())
    assert store.stats["block_evictions"] > 0 and store.stats["segment_evictions"] > 0
    assert store.block_bytes <= block_limit + this_request_blocks


def test_typing_many_lines_keeps_few_recent_segments_and_the_chunk_segment(ckpt):
    """Each typed line makes a new segment of the prompt's last block, dead once the line is done: they
    are kept by count, and never push the reused chunk segment out of the byte-bounded LRU."""
    from models.checkpoint import load_checkpoint
    tok = load_checkpoint(ckpt).tokenizer
    chunk = [BILLING * 20]
    probe = ContextStore(tok, ContextConfig())
    probe.memory("", chunk)
    chunk_bytes = probe.segment_bytes
    config = ContextConfig(max_segment_bytes=chunk_bytes + 4096, recent_segments=4)
    store = ContextStore(tok, config)
    lines = ""
    for i in range(15):  # < 1 KB: the whole prompt is its last block
        lines += f"value_{i} = normalise_invoice_total(invoice_{i}, 'EUR')\n"
        store.memory(lines, chunk)
    assert len(store.recent) == 4
    assert len(store.segments) == 1 and store.segment_bytes == chunk_bytes  # built once, never evicted
    assert store.stats["segments_built"] == 1 + 15
    assert store.usage()["context_segments"] == 5
    assert store.usage()["context_segment_bytes"] == chunk_bytes + sum(s.nbytes for s in store.recent.values())


def test_bad_extra_is_a_type_error(predictor):
    with pytest.raises(TypeError):
        predictor.complete("x = 1", extra="not a list")
    with pytest.raises(TypeError):
        predictor.complete("x = 1", extra=[b"bytes"])
    with pytest.raises(TypeError):
        predictor.complete("x = 1", extra=[None])


def test_matches_run_across_block_cuts_of_one_text(ckpt):
    """A long chunk is tokenised in blocks; its blocks join without a separator, so a history that spans a
    cut still matches its whole length (an eot there would cut the match to the tokens after the cut)."""
    from models.checkpoint import load_checkpoint
    tok = load_checkpoint(ckpt).tokenizer
    config = ContextConfig(block_min_chars=64, block_max_chars=128)
    text = "".join(f"    name_{i} = compute_{i * 7}(arg_{i})\n" for i in range(60))
    blocks = prompt_blocks(text, 64, 128)
    assert len(blocks) > 5
    cut = len(blocks[0]) + len(blocks[1])  # where the third block starts (a newline)
    history = tuple(tok.encode("x = 0" + text[cut - 30:cut + 12]))
    memory = ContextStore(tok, config).memory("", [text])
    lam, ids, probs = memory.predict(history)
    assert len(ids) == 1 and probs[0] == 1.0
    assert text[cut + 12:].startswith(tok.decode([int(ids[0])]))  # the true continuation
    # and its weight is that of the long match (~42 bytes), not of the 12 bytes after the cut
    assert lam >= config.max_weight * (1 - np.exp(-30 / config.scale_bytes))


def test_segment_lookups_find_every_occurrence_latest_last():
    """Segment's one-sort index (keys unique by position) returns, for a history's longest indexed k-gram,
    the end positions of all its occurrences followed by text, in memory order, the latest `max_candidates`."""
    from evaluate.context import _LEVELS, Segment, _query_hashes
    eot = 0
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 4, size=3000).astype(np.int32)  # 3 symbols: every k-gram recurs, up to k ~ 8
    seg = Segment([tokens], eot, np.ones(8, dtype=np.int64))
    n = len(tokens)
    for end in rng.integers(20, n - 1, size=40).tolist():
        hist = tuple(tokens[:end + 1].tolist())
        k, ends = seg.candidates(_query_hashes(hist), max_candidates=10_000)
        # the reference: the largest indexed k whose last k tokens occur ending anywhere but the segment's end
        want_k = max(k_ for k_ in _LEVELS if k_ <= len(hist) and any(
            tuple(tokens[i - k_ + 1:i + 1].tolist()) == hist[-k_:] for i in range(k_ - 1, n - 1)))
        want = [i for i in range(want_k - 1, n - 1) if tuple(tokens[i - want_k + 1:i + 1].tolist()) == hist[-want_k:]]
        assert k == want_k and ends.tolist() == want
        assert seg.candidates(_query_hashes(hist), max_candidates=3)[1].tolist() == want[-3:]
    # a history ending in a token the segment never holds finds nothing
    assert seg.candidates(_query_hashes((3, 7)), 5)[0] == 0
