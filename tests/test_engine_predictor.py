"""The Predictor on a tiny real checkpoint: healing, prefix cache, suffix, kinds, time budget, window."""
from __future__ import annotations

import threading
import time

import pytest
import torch
from torch import nn

from evaluate.metrics import line_starts_of, prompt_at
from evaluate.predictor import Completion, Predictor, PredictorConfig
from tests.tiny_model import TINY_TEXT, make_tiny_checkpoint


@pytest.fixture(scope="module")
def ckpt():
    torch.set_num_threads(1)
    return make_tiny_checkpoint()


@pytest.fixture()
def predictor(ckpt):
    return Predictor.from_checkpoint(ckpt)


def before(marker: str, occurrence: int = 1) -> str:
    """TINY_TEXT up to the end of the n-th occurrence of `marker`."""
    pos = -1
    for _ in range(occurrence):
        pos = TINY_TEXT.index(marker, pos + 1)
    return TINY_TEXT[:pos + len(marker)]


def test_from_checkpoint_and_result_type(predictor):
    out = predictor.complete(before("def ad"), max_suggestions=2)
    assert 1 <= len(out) <= 2
    assert all(isinstance(c, Completion) and isinstance(c.text, str) and 0 < c.prob <= 1 for c in out)
    assert out[0].text.startswith("d(a, b)")


def test_token_healing_completes_a_partly_typed_identifier(predictor):
    prompt = before("self.assertEq")
    tok = predictor.tokenizer
    last = tok.token_bytes[tok.encode(prompt)[-1]]
    assert last != b"assertEqual" and b"Equal" not in last  # the prompt ends inside a token
    assert predictor.complete(prompt, kind="word")[0].text == "ual"
    assert predictor.complete(prompt, kind="line")[0].text.startswith("ual(")
    assert predictor.complete(prompt)[0].text.startswith("ual(")
    # never repeats what was typed
    assert all(not c.text.startswith("Eq") for c in predictor.complete(prompt, max_suggestions=5))


def test_suffix_of_closing_brackets_is_not_duplicated(predictor):
    prompt = before("    print(add")
    free = predictor.complete(prompt, kind="line")[0].text
    assert free.endswith("))")  # without a suffix the line closes print( itself: the test can fail
    for kind in ("line", None, "block"):
        text = predictor.complete(prompt, suffix=")", kind=kind)[0].text
        line = prompt.rsplit("\n", 1)[-1] + text + ")"
        assert line.count("(") == line.count(")"), (kind, text)
    quoted = predictor.complete(before('if __name__ == "__ma'), suffix='"', kind="line")[0].text
    assert quoted == "in__"


def test_a_line_edited_inside_keeps_its_rest_once(predictor):
    # `print(add|) + 1`: the rest closes print( and is more than closers; no suggestion may close it (one cut
    # inside its own brackets may leave them open: the user types on)
    prompt = before("    print(add")
    for kind in ("line", None):
        for c in predictor.complete(prompt, suffix=") + 1\n", kind=kind, max_suggestions=3):
            depth = 0
            for ch in c.text:
                depth += {"(": 1, ")": -1}.get(ch, 0)
                assert depth >= 0, (kind, c.text)
    # `assertEqual(add(1, 2)|, 3)`: the model's own continuation is the rest itself
    prompt = before("        self.assertEqual(add(1, 2)")
    assert predictor.complete(prompt, kind="line")[0].text.startswith(", 3)")  # the test can fail
    for c in predictor.complete(prompt, suffix=", 3)\n        self.assertEqual(add(2, 2), 4)\n", max_suggestions=3):
        assert not c.text.endswith(", 3") and ", 3)" not in c.text, c.text


def test_kinds_stop_where_they_should(ckpt):
    # The stop rules on the model's own memorised text, without the project context's copy model (which
    # remembers this prompt too and, on a 2-layer toy, shifts which alternative comes first).
    predictor = Predictor.from_checkpoint(ckpt, config=PredictorConfig(context=None))
    prompt = before("    def test_add(self):\n")
    word = predictor.complete(prompt, kind="word")[0].text
    line = predictor.complete(prompt, kind="line")[0].text
    block = predictor.complete(prompt, kind="block")[0].text
    assert word == "        self"
    assert line == "        self.assertEqual(add(1, 2), 3)"
    assert block == "        self.assertEqual(add(1, 2), 3)\n        self.assertEqual(add(2, 2), 4)"
    # a block opened by the cursor line stops when the code returns to its level (here: a blank line)
    opener = predictor.complete(before("    def pop(self):"), kind="block")[0].text
    assert opener == "\n        return self.items.pop()"


def typed_through(text: str, start: int, end: int):
    starts = line_starts_of(text)
    for i in range(start, end):
        yield prompt_at(text, starts, i, 20)


@pytest.mark.parametrize("kind", [None, "line", "word"])
def test_prefix_cache_gives_identical_results(ckpt, kind):
    cached = Predictor.from_checkpoint(ckpt, cache_size=32)
    uncached = Predictor.from_checkpoint(ckpt, cache_size=0)
    start = TINY_TEXT.index("    def test_stack")
    for prompt in typed_through(TINY_TEXT, start, start + 160):
        a = cached.complete(prompt, kind=kind)
        b = uncached.complete(prompt, kind=kind)
        assert [c.text for c in a] == [c.text for c in b], prompt[-30:]
        assert [c.prob for c in a] == pytest.approx([c.prob for c in b], rel=1e-3, abs=1e-6)
    s_cached, s_uncached = cached.stats(), uncached.stats()
    assert s_cached["cache_hits"] > 100
    assert s_cached["tokens_fed"] * 5 < s_uncached["tokens_fed"]


@pytest.mark.parametrize("kind", [None, "line"])
def test_a_repeated_request_reuses_every_search_step(ckpt, kind):
    """Steps of several beams are cached by their trail (search.py): the same request again runs no
    forward at all and answers exactly the same."""
    p = Predictor.from_checkpoint(ckpt)
    prompt = before("    def test_stack(self):\n") + "        s"
    first = p.complete(prompt, kind=kind)
    forwards = p.counters["forward_calls"]
    assert forwards > 1 and p.counters["search_steps"] > 1
    again = p.complete(prompt, kind=kind)
    assert p.counters["forward_calls"] == forwards
    assert [(c.text, c.prob) for c in again] == [(c.text, c.prob) for c in first]


def test_cache_reuses_state_across_retokenisation(ckpt):
    p = Predictor.from_checkpoint(ckpt, cache_size=8)
    base = before("        stack.push(1)\n")
    p.complete(base + "        self.assertEqual(len")
    fed = p.stats()["tokens_fed"]
    # "(" can merge with the next character; the context is re-fed from the longest common token prefix
    p.complete(base + "        self.assertEqual(len(")
    p.complete(base + "        self.assertEqual(len(s")
    assert p.stats()["tokens_fed"] - fed <= 6
    assert p.stats()["cache_hits"] >= 2


class SlowModel(nn.Module):
    """The tiny model, `delay` seconds slower per forward (a model too slow for the budget)."""

    def __init__(self, model, delay: float):
        super().__init__()
        self.model, self.delay, self.calls = model, delay, 0
        self.max_context = model.max_context

    def forward(self, tokens, state=None, last_only=False):
        self.calls += 1
        time.sleep(self.delay)
        return self.model(tokens, state, last_only=last_only)

    def select_state(self, state, index):
        return self.model.select_state(state, index)

    def state_length(self, state):
        return self.model.state_length(state)


def test_time_budget_is_respected(predictor):
    prompt = before("class Stack:\n")
    slow = SlowModel(predictor.model, delay=0.03)
    # (no copy model: it remembers this prompt and can reorder the beams between the deadline and the end)
    p = Predictor(slow, predictor.tokenizer, cache_size=0, config=PredictorConfig(context=None))
    unbounded = p.complete(prompt, kind="block")
    unbounded_calls = slow.calls
    assert unbounded_calls > 12
    slow.calls = 0
    t0 = time.perf_counter()
    out = p.complete(prompt, kind="block", time_budget_ms=100)
    elapsed = time.perf_counter() - t0
    assert slow.calls <= 100 / 30 + 2  # the context forward and the steps that fit, one more at most
    assert elapsed < 0.1 + 2 * 0.03 + 0.25
    assert out and unbounded[0].text.startswith(out[0].text)  # the best so far: a prefix of the full block
    assert p.stats()["timeouts"] == 1


def test_window_is_cut_at_line_starts_and_stable_while_typing(ckpt):
    p = Predictor.from_checkpoint(ckpt, config=PredictorConfig(max_prompt_tokens=60))
    tok = p.tokenizer
    start = TINY_TEXT.index("    def test_mul")
    previous_start, moves = 0, 0
    for i in range(start, start + 80):
        prompt = TINY_TEXT[:i]
        kept, ids = p.window(prompt)
        assert tok.decode(ids) == kept
        assert len(ids) <= 60 and prompt.endswith(kept)
        cut = len(prompt) - len(kept)
        assert cut == 0 or prompt[cut - 1] == "\n"  # starts at a line start
        assert cut >= previous_start  # only moves forward...
        line_before = prompt.rfind("\n", 0, max(cut - 1, 0)) + 1
        assert len(tok.encode(prompt[line_before:])) > 60 - 32  # ...and not much more than it must
        moves += cut != previous_start
        previous_start = cut
    assert moves <= 5  # about once per new line


def test_line_memo_encoder_equals_encoding_the_whole_text(ckpt):
    """evaluate/encoder.py: the lines above the cursor line are encoded once and remembered; every prefix
    of a text with odd whitespace (trailing spaces, blank lines, tabs, CRLF, form feed, no-break space,
    non-ASCII) encodes exactly as the tokenizer encodes it whole."""
    from evaluate.encoder import LineMemoEncoder
    tok = Predictor.from_checkpoint(ckpt).tokenizer
    encoder = LineMemoEncoder(tok)
    assert encoder.splits
    odd = ("def f(x):  \n\n\t  return x  \r\n    y = 'é ü'\x0c\n  \xa0z = 1\n\n\n"
           "class Über:\n    pass\n \n\tif x:\n\t\tx = [1,\n 2]\n")
    text = TINY_TEXT[:1500] + odd + TINY_TEXT[1500:2500]
    for i in range(len(text) + 1):
        assert encoder.encode(text[:i]) == tok.encode(text[:i]), repr(text[max(0, i - 30):i])
    assert encoder.hits > len(text) // 2  # while typing on a line the head comes from the memo
    assert len(encoder.memo) <= encoder.size


def test_anchored_window_moves_less_and_still_fits(ckpt):
    """window_anchor_every=4: starts only at anchor lines (by content), so typing line after line moves the
    window (and re-feeds it) less often than at every line; it still fits and starts at a line start."""
    code = "".join(f"    v{i} = {i}\n" for i in range(1, 300))  # short lines: ~15 in the window
    moves = {}
    for every in (1, 4):
        p = Predictor.from_checkpoint(ckpt, config=PredictorConfig(max_prompt_tokens=90, window_anchor_every=every))
        previous, moves[every] = None, 0
        for end in range(code.index("v40 ="), len(code), 5):
            prompt = code[:end]
            kept, ids = p.window(prompt)
            assert len(ids) <= 90 and prompt.endswith(kept) and p.tokenizer.decode(ids) == kept
            cut = len(prompt) - len(kept)
            assert cut == 0 or prompt[cut - 1] == "\n"
            moves[every] += previous is not None and cut != previous
            previous = cut
    assert moves[4] < moves[1] / 2

def test_concurrent_requests_are_serialised_and_correct(predictor):
    prompts = [before("self.assertEq"), before("def mu"), before("    print(add"), before("stack.pu")]
    expected = [[c.text for c in predictor.complete(p)] for p in prompts]
    results, errors = {}, []

    def worker(k):
        try:
            for _ in range(3):
                for j, p in enumerate(prompts):
                    results[(k, j)] = [c.text for c in predictor.complete(p)]
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for (k, j), texts in results.items():
        assert texts == expected[j]
    assert predictor.stats()["requests"] == len(prompts) * 13


@pytest.mark.parametrize("kwargs, error", [
    ({"kind": "sentence"}, ValueError),
    ({"max_suggestions": 0}, ValueError),
    ({"max_suggestions": "3"}, ValueError),
    ({"time_budget_ms": -5}, ValueError),
    ({"time_budget_ms": float("nan")}, ValueError),
    ({"suffix": None}, TypeError),
])
def test_bad_arguments_raise_clear_errors(predictor, kwargs, error):
    with pytest.raises(error):
        predictor.complete("x = ", **kwargs)
    with pytest.raises(TypeError):
        predictor.complete(None)


@pytest.mark.parametrize("prompt", ["", "\n", "é", "x" * 3000, "😀😀", "\t\t", "def f(:\n\x00", "x = '\ud800"])
def test_odd_prompts_do_not_crash(predictor, prompt):
    out = predictor.complete(prompt, suffix="]", max_suggestions=3)
    assert all(isinstance(c.text, str) and c.text for c in out)
    for kind in ("word", "line", "block"):
        predictor.complete(prompt, kind=kind)


def test_default_kind_alternatives_are_not_cuts_of_one_another(ckpt):
    """The default kind ranks every cut of every beam; the list keeps one cut per path, so no suggestion
    is a prefix of another (a list of "th", "th,", "th, " would say the same thing three times)."""
    wide = Predictor.from_checkpoint(ckpt, config=PredictorConfig(auto_beam_width=4))
    prompts = [TINY_TEXT[:cut] for cut in range(40, len(TINY_TEXT), 37)]
    multi = 0
    for prompt in prompts:
        texts = [c.text for c in wide.complete(prompt, max_suggestions=3)]
        multi += len(texts) > 1
        for i, a in enumerate(texts):
            assert not any(b.startswith(a) or a.startswith(b) for b in texts[i + 1:]), (prompt[-30:], texts)
    assert multi > 0  # alternatives exist at all


def test_a_suggestion_that_repeats_the_next_line_gives_way_to_the_next_one(ckpt):
    """A candidate that would make the cursor line equal the line below is dropped (evaluate/fim.py
    trim_to_suffix); the request still gets the suggestions it asked for, from the candidates after it.
    (Cuts valued by the plain expected saving, power 1, so the tiny model's first choice is the whole line.)"""
    predictor = Predictor.from_checkpoint(ckpt, config=PredictorConfig(saving_power=1.0))
    prompt = before("    def test_add(self):\n        self.assertEqual(")
    following = "        self.assertEqual(add(1, 2), 3)"
    cursor_line = prompt.rsplit("\n", 1)[-1]
    assert predictor.complete(prompt)[0].text == "add(1, 2), 3)"  # the model's first choice: the line below
    for n in (1, 3):
        got = predictor.complete(prompt, suffix="\n" + following + "\n    def test_mul(self):\n", max_suggestions=n)
        assert len(got) == n, got
        assert all((cursor_line + c.text).strip() != following.strip() for c in got), got
        assert len({c.text for c in got}) == n


def test_min_probability_drops_unlikely_suggestions(ckpt):
    prompt = TINY_TEXT[:120]
    every = Predictor.from_checkpoint(ckpt).complete(prompt, kind="word", max_suggestions=5)
    assert len(every) >= 2
    cut = (every[0].prob + every[-1].prob) / 2
    strict = Predictor.from_checkpoint(ckpt, config=PredictorConfig(min_probability=cut))
    kept = strict.complete(prompt, kind="word", max_suggestions=5)
    assert kept == [c for c in every if c.prob >= cut] and 0 < len(kept) < len(every)


def test_engine_flushes_subnormals_while_it_computes_and_only_then(ckpt):
    """A confident model's softmaxes underflow into subnormal floats, which the CPU computes far slower
    (measured: +30 % latency per keystroke): inside the engine's forwards they are zeros; outside, the
    process keeps IEEE-754 subnormals (other code, e.g. hypothesis, depends on them)."""
    predictor = Predictor.from_checkpoint(ckpt)
    tiny = lambda: (torch.tensor([1e-20]) * torch.tensor([1e-20])).item()  # noqa: E731
    assert tiny() > 0
    seen = []
    hook = predictor.model.register_forward_hook(lambda *_: seen.append(tiny()))
    try:
        predictor.complete(before("def ad"))
        t = threading.Thread(target=predictor.complete, args=(before("def ad"),))  # another engine thread
        t.start()
        t.join()
    finally:
        hook.remove()
    assert seen and all(v == 0.0 for v in seen)
    assert tiny() > 0, "the flag leaked out of the engine"


def test_no_suggestion_makes_the_cursor_line_a_copy_of_the_line_above(predictor):
    # `return self.items.p` after `def pop(self):`: the line kind completes `op()`
    prompt = before("    def pop(self):\n        return self.items.p")
    assert predictor.complete(prompt, kind="line")[0].text == "op()"  # the test can fail
    # the same line typed right below `return self.items.pop()`: completing it would copy that line
    copied = before("    def pop(self):\n        return self.items.pop()\n") + "        return self.items.p"
    for kind in (None, "line"):
        got = [c.text for c in predictor.complete(copied, kind=kind, max_suggestions=3)]
        assert got and all(("        return self.items.p" + t).split("\n")[0] != "        return self.items.pop()"
                           for t in got), (kind, got)
