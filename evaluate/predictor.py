"""The completion engine: prompt (+ suffix) -> ranked completions, reusing model state.

    predictor = Predictor.from_checkpoint("checkpoints/default.pt")
    predictor.complete("    self.assertEq", suffix="", kind=None)  # [Completion("ual(", 0.61), ...]

One request:
1. window   keep the prompt to `max_prompt_tokens` (and max_context - room for generation), cut at a line
            start: the smallest line start that fits, so the window start moves only when it must and
            consecutive keystrokes share the same context prefix (and the cached state).
2. healing  back off the tokens of the trailing identifier fragment (at least the last token); they are
            re-typed under constraint during the search (healing.py).
3. context  the remaining token ids; the prefix cache gives the state after their longest cached prefix
            and only the rest is fed (cache.py). Typing inside a word changes only backed-off tokens,
            so the context is fully cached and the request costs only the search.
   fim      with a FIM-trained model and a suffix reaching past the cursor line, the context starts with
            [PRE SUF suffix MID] and the window gets the rest of the budget (fim.py).
4. search   batched beam search with the kind's stop rule (search.py, kinds.py).
5. rank     word/line/block: by probability (paths giving the same text are summed). Default kind (None):
            the rest of the line, each candidate cut where (chars - 1) * P(prefix) ** saving_power is
            largest, ranked by that value (saving_power 3: the myopic expected saving, power 1, over-values
            long unlikely cuts; see PredictorConfig.saving_power).
"""
from __future__ import annotations

import bisect
import contextlib
import hashlib
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Sequence

import torch

from dataset.clean import normalise_newlines
from dataset.tokenizer import Tokenizer

from .cache import CacheEntry, PrefixCache
from .context import ContextConfig, ContextStore
from .imports import ImportsConfig, ProjectImports, import_site, module_site
from .names import NamesConfig, ProjectNames, typed_prefix
from .encoder import LineMemoEncoder
from .fim import FimConfig, fim_head, has_following_lines, trim_to_suffix
from .healing import TokenIndex, back_off, token_offsets
from .kinds import StopRule, check_kind, rest_of_line
from .repeats import line_above, repeats_line_above
from .search import Hypothesis, beam_search, char_cuts, cut_value


@dataclass
class Completion:
    text: str  # what to insert at the cursor (never what was already typed)
    prob: float  # P(text | prompt) (default kind: P(the completion starts with text))


@contextlib.contextmanager
def flush_subnormals():
    """Subnormal floats count as zero on the CPU while the engine computes (this thread's FTZ/DAZ flags), and
    the thread's previous mode comes back after. A confident model's softmaxes underflow into subnormals,
    which x86 computes far slower: the GPU-trained default took 27.5-31.0 ms per typed-through keystroke
    without this and 21.3 ms with it (the previous default: 21.8-23.7 vs 20.9). Values below 1.2e-38 change
    no completion. Scoped, not process-wide: other code in the process (hypothesis, numpy users) must still
    see IEEE-754 subnormals. torch has no getter, so the mode is read by computing one."""
    was_on = (torch.tensor([1e-20]) * torch.tensor([1e-20])).item() == 0.0
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(was_on)


@dataclass
class PredictorConfig:
    # Cached model states after prompts (LRU). 0 disables the prefix cache (and the step cache).
    cache_size: int = 32
    # Cached states along single-beam search paths (LRU): typing through a suggestion reuses them
    step_cache_size: int = 32
    # Beams advanced together per step for the word/line/block kinds (at least max_suggestions)
    beam_width: int = 4
    # Beams for the default kind. Measured (docs/evaluation.md): 3 save 0.7-1.2 points more than 2 on three
    # validation sets (project-aware) for +2 ms typed-through p50 through the server (10.9 -> 12.9 ms with
    # 200 KB of input_extra, within the 15 ms target); 1 (greedy) saves 5 points less.
    auto_beam_width: int = 3
    # Most tokens generated per kind ("auto": the default kind, the rest of the line). Default kind 16, not
    # 24: on the validation files the same keystrokes saved (65.7 vs 65.8 %) for a shorter search tail
    # (p50/p99 -13 %/-11 %; the copy model's long continuations had made searches run to the cap).
    max_tokens: dict = field(default_factory=lambda: {"auto": 16, "word": 8, "line": 24, "block": 96})
    # Longest prompt fed to the model, in tokens (also bounded by max_context - generation room)
    max_prompt_tokens: int = 1024
    # Tokens kept free for generation inside a transformer's max_context
    generation_room: int = 64
    # Most trailing tokens backed off and re-typed by token healing
    max_backoff_tokens: int = 3
    # Most suggestions a request may ask for
    max_suggestions_limit: int = 10
    # Suggestions less likely than this are not offered (less noise for the reader). Off by default: on
    # held-out files 0.02 cost 0.9 and 0.05 cost 1.2 points of keystrokes saved (a wrong suggestion costs
    # the typist nothing, so even unlikely ones pay on average).
    min_probability: float = 0.0
    # Project context (context.py): an n-gram copy model over the text before the window and the
    # `extra` chunks, mixed into the search. None disables it.
    context: ContextConfig | None = field(default_factory=ContextConfig)
    # What of the prompt is in that memory besides `extra`: "all" its lines before the cursor line (the
    # window too: the small model often fails to copy even what it sees), "before_window" only the text
    # the model cannot see, "none".
    context_prompt: str = "all"
    # Window starts only at anchor lines (1 in M by content) when > 1 (see `window`). 4: the same keystrokes
    # saved on the validation files (65.7 %), tokens re-fed per keystroke 5.5 -> 3.9, p99 -15 % (docs).
    window_anchor_every: int = 4
    # Longest prompt kept, in characters (its end; the window is cut from it, the rest is memory).
    max_prompt_chars: int = 64 * 1024
    # Longest suffix kept, in characters (its start): its first `fim.max_suffix_tokens` tokens go to a FIM
    # model's input, all of it into the copy model's memory (names used below the cursor). The editor sends
    # the rest of the file up to this (docs/evaluation.md: on validation, retyping regions with 20 / 64 /
    # 200 lines / the whole rest of the file / its first 16K characters as the suffix saved 57.6 / 59.6 / 60.5 /
    # 60.8 / 60.5 %, none 54.3 %).
    max_suffix_chars: int = 16 * 1024
    # Fill in the middle (fim.py): used when the model has FIM tokens and the suffix has following lines.
    fim: FimConfig = field(default_factory=FimConfig)
    # The suffix's following lines also go into the copy model's memory (names used below the cursor).
    context_suffix: bool = True
    # Names of the project (names.py): the default kind's top suggestion completes the identifier being
    # typed with the memory's most frequent name that extends it, where the search offers none of them.
    # None disables it; so does context=None (no project context at all).
    names: NamesConfig | None = field(default_factory=NamesConfig)
    # Imports from the project (imports.py): in a `from MODULE import` list, the names MODULE's file (an
    # `extra` chunk with a filename) defines. None disables it; so does context=None.
    imports: ImportsConfig | None = field(default_factory=ImportsConfig)
    # Default kind: each candidate is cut, and candidates are ranked, by (chars - 1) * P(prefix) ** this
    # (search.py, best_cut). 3 ranks as (chars - 1) ** (1/3) * P: a right suggestion of c characters does not
    # save c - 1 keystrokes over what follows without it (one typed character, then the next request's
    # suggestion often brings the same text), so long unlikely cuts were over-valued. Measured on validation
    # (docs/evaluation.md "The cut weighs P more"), power 1 / 2 / 3 / 4: project-aware (D) 59.9 / 64.1 / 63.7 /
    # 63.5 %, (A) 63.1 / 66.4 / 66.8 / 66.6 %, (E) 52.3 / 56.5 / 57.0 / 57.0 %, 20 lines 53.7 / 59.6 / 60.0 / – %,
    # middle with / without the suffix 62.0 / 55.7, 66.0 / 61.1, 66.4 / 62.4, 65.9 / 62.4 %; p50 -30 %.
    saving_power: float = 3.0


class Predictor:
    def __init__(self, model, tokenizer: Tokenizer, cache_size: int | None = None,
                 config: PredictorConfig | None = None):
        self.config = config or PredictorConfig()
        if cache_size is not None:
            self.config.cache_size = cache_size
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.index = TokenIndex(tokenizer)
        self.encoder = LineMemoEncoder(tokenizer)  # the window's lines above the cursor line, remembered
        self.cache = PrefixCache(self.config.cache_size)
        self.step_cache = PrefixCache(self.config.step_cache_size if self.config.cache_size else 0)
        if self.config.context_prompt not in ("all", "before_window", "none"):
            raise ValueError(f"context_prompt must be all, before_window or none, got {self.config.context_prompt!r}")
        self.context = ContextStore(tokenizer, self.config.context) if self.config.context else None
        self.names = ProjectNames(self.config.names) if self.config.names and self.context else None
        self.imports = ProjectImports(self.config.imports) if self.config.imports and self.context else None
        self.lock = threading.Lock()
        max_context = getattr(model, "max_context", None)
        budget = self.config.max_prompt_tokens
        if max_context:
            budget = min(budget, max_context - min(self.config.generation_room, max_context // 4))
        self.prompt_budget = max(budget, 1)
        self.counters = {"requests": 0, "tokens_fed": 0, "forward_calls": 0, "search_steps": 0, "step_cache_hits": 0,
                         "timeouts": 0, "total_ms": 0.0}

    @classmethod
    def from_checkpoint(cls, path, cache_size: int | None = None, config: PredictorConfig | None = None,
                        device: str = "cpu", quantize: str = "none") -> "Predictor":
        """`quantize`: "none", "int8" or "auto" (int8 on the CPU), models/quantize.py."""
        from models.checkpoint import load_checkpoint  # models/ is only needed for checkpoints
        from models.quantize import quantize_model, resolve_quantize
        ckpt = load_checkpoint(path, device=device)
        model = quantize_model(ckpt.model, resolve_quantize(quantize, device))
        predictor = cls(model, ckpt.tokenizer, cache_size=cache_size, config=config)
        predictor.checkpoint_meta = ckpt.meta
        return predictor

    # ------------------------------------------------------------------ public API
    def complete(self, prompt: str, suffix: str = "", kind: str | None = None, max_suggestions: int = 3,
                 time_budget_ms: float | None = None, extra: Sequence[str | tuple[str, str]] = ()) -> list[Completion]:
        """Ranked completions (best first) to insert at the cursor between `prompt` and `suffix`.
        `prompt` may be the whole text before the cursor (its last `max_prompt_chars` are used), `suffix` the
        whole text after it (its first `max_suffix_chars`); `extra`: other files / regions of the project
        (the server's `input_extra`) for the context store, each a text or a (filename, text) pair."""
        if not isinstance(prompt, str) or not isinstance(suffix, str):
            raise TypeError("prompt and suffix must be strings")
        extra = extra_chunks(extra)
        check_kind(kind)
        if isinstance(max_suggestions, bool) or not isinstance(max_suggestions, int) or max_suggestions < 1:
            raise ValueError(f"max_suggestions must be a positive integer, got {max_suggestions!r}")
        max_suggestions = min(max_suggestions, self.config.max_suggestions_limit)
        if time_budget_ms is not None and not (isinstance(time_budget_ms, (int, float))
                                               and math.isfinite(time_budget_ms) and time_budget_ms > 0):
            raise ValueError(f"time_budget_ms must be a positive number or None, got {time_budget_ms!r}")
        prompt = _as_trained(prompt[-self.config.max_prompt_chars:])
        suffix = _as_trained(suffix[:self.config.max_suffix_chars])
        extra = [(filename, _as_trained(t)) for filename, t in extra]
        with self.lock:
            t0 = time.perf_counter()
            deadline = None if time_budget_ms is None else t0 + time_budget_ms / 1000
            with flush_subnormals():
                result = self._complete(prompt, suffix, kind, max_suggestions, deadline, extra)
            self.counters["requests"] += 1
            self.counters["total_ms"] += (time.perf_counter() - t0) * 1000
            return result

    def stats(self) -> dict:
        """Counters for the server's /metrics."""
        with self.lock:
            c = dict(self.counters)
            c.update(cache_hits=self.cache.hits, cache_misses=self.cache.misses,
                     tokens_reused=self.cache.tokens_reused, cache_entries=len(self.cache),
                     cache_size=self.cache.capacity)
            c["mean_ms"] = c["total_ms"] / c["requests"] if c["requests"] else 0.0
            if self.context is not None:
                c.update(self.context.usage())
            if self.names is not None:
                c.update(self.names.usage())
            if self.imports is not None:
                c.update(self.imports.usage())
            return c

    def clear_cache(self) -> None:
        with self.lock:
            self.cache.clear()
            self.step_cache.clear()
            self.encoder.memo.clear()
            if self.context is not None:
                self.context.clear()
            if self.names is not None:
                self.names.clear()
            if self.imports is not None:
                self.imports.clear()

    # ------------------------------------------------------------------ one request
    def _complete(self, prompt, suffix, kind, max_suggestions, deadline, chunks) -> list[Completion]:
        extra = [t for _, t in chunks]
        head = fim_head(self.tokenizer, suffix, self.config.fim)
        below = has_following_lines(suffix)  # code after the cursor line (a 16K-character suffix: scan it once)
        rest = rest_of_line(suffix)  # after the cursor on its line (bounded: the suffix may be 16K characters)
        cursor_line = prompt.rsplit("\n", 1)[-1]
        kept, ids = self.window(prompt, max(self.prompt_budget - len(head), 16))
        memory, remembered = None, ""
        if self.context is not None:
            mode = self.config.context_prompt
            if mode == "all":
                remembered = prompt[:prompt.rfind("\n") + 1]  # up to the cursor line
            elif mode == "before_window":
                remembered = prompt[:len(prompt) - len(kept)]
            if self.config.context_suffix and below:
                extra = [*extra, suffix]
            if remembered.strip() or any(t.strip() for t in extra):
                memory = self.context.memory(remembered, extra)
        n_back = back_off(self.tokenizer, kept, ids, self.config.max_backoff_tokens)
        context, typed = ids[:len(ids) - n_back], self.tokenizer.decode_bytes(ids[len(ids) - n_back:])
        if not context and not head:  # nothing before the typed fragment: start from end-of-text, as documents do
            context = [self.tokenizer.eot_id]
        context = head + tuple(context)
        state, logits = self.feed(context)
        rule = StopRule(kind, cursor_line=cursor_line, suffix=suffix)
        limits = self.config.max_tokens
        max_steps = (limits[kind] if kind else limits.get("auto", limits["line"])) + n_back
        width = self.config.auto_beam_width if kind is None else max(self.config.beam_width, max_suggestions)
        result = beam_search(self.model, state, logits, self.index, typed, rule, self.tokenizer.eot_id,
                             beam_width=width, n_best=max_suggestions, max_steps=max_steps, deadline=deadline,
                             prefix_probs=kind is None, step_cache=self.step_cache if self.step_cache.capacity else None,
                             context_key=context, memory=memory, saving_power=self.config.saving_power)
        self.counters["search_steps"] += result.steps
        self.counters["step_cache_hits"] += result.steps - result.forwards
        self.counters["forward_calls"] += result.forwards
        self.counters["timeouts"] += int(result.timed_out)
        # Rank a few more: a candidate that makes the cursor line a copy of the line above (repeats.py), repeats the
        # next line or is only the rest of the line (trim_to_suffix) is dropped, and the next one takes its place.
        wanted = max_suggestions + width
        ranked = expected_saving_ranking(result.hypotheses, wanted, self.config.saving_power) if kind is None \
            else probability_ranking(result.hypotheses, wanted)
        if below or rest.strip():
            trimmed: dict[str, Completion] = {}
            for c in ranked:
                if (t := trim_to_suffix(c.text, cursor_line, suffix)) and t not in trimmed:
                    trimmed[t] = Completion(t, c.prob)
            ranked = list(trimmed.values())
        offer = self._offer_import(prompt, suffix, chunks, ranked) if kind is None and self.imports else None
        if offer is not None:
            ranked = offer
        elif kind is None and self.names is not None:
            ranked = self._offer_name(prompt, suffix, cursor_line, remembered, extra, ranked)
        above = line_above(prompt)  # after the offers: a project name can complete a copy too
        ranked = [c for c in ranked if not repeats_line_above(c.text, cursor_line, above, rest)]
        return [c for c in ranked if c.prob >= self.config.min_probability][:max_suggestions]

    def _offer_name(self, prompt, suffix, cursor_line, remembered, extra, ranked) -> list[Completion]:
        """`ranked` with the project's name for the identifier being typed first, where names.py offers one."""
        prefix = typed_prefix(prompt, suffix, self.names.config.min_prefix)
        if prefix is None:
            return ranked
        before = cursor_line[:len(cursor_line) - len(prefix)] if self.config.context_prompt != "none" else ""
        found = self.names.extending(prefix, self.context.cut(remembered, extra), before)
        top = ranked[0] if ranked else None
        offer = self.names.complete(prefix, top.text if top else None, found, top.prob if top else 0.0)
        if offer is None:
            return ranked
        rest, share = offer
        return [Completion(rest, share)] + [c for c in ranked if c.text != rest]

    def _offer_import(self, prompt, suffix, chunks, ranked) -> list[Completion] | None:
        """`ranked` with the next name of a `from MODULE import` list first, where imports.py knows MODULE's
        names (its file is a chunk); None where it does not apply (names.py's rule then)."""
        site = import_site(prompt, suffix, self.imports.config.min_prefix)
        module = self.imports.module_chunks(site, chunks) if site is not None else []
        if module:
            names = self.imports.candidates(site, module, chunks)
        elif self.imports.config.modules and (site := module_site(prompt, suffix)) is not None:
            names = self.imports.module_candidates(site, chunks)  # `from ._co`: the project's modules
            if not names:
                return None
        else:
            return None
        offer = self.imports.complete(site, ranked[0].text if ranked else None, names, module)
        if offer is None:
            return ranked  # the search completes the prefix into one of the module's names: keep it
        rest, prob = offer
        return [Completion(rest, prob)] + [c for c in ranked if c.text != rest]

    def window(self, prompt: str, budget: int | None = None) -> tuple[str, list[int]]:
        """(kept text, its token ids): the end of the prompt, cut at a line start to fit `prompt_budget`.

        The start is chosen from the complete lines only, with room reserved for the cursor line rounded
        up to 16 tokens: typing changes only the cursor line (whose token count can also shrink when BPE
        merges), so the start stays put while typing on a line, and consecutive requests share a prefix.
        With `window_anchor_every` M > 1 the start is also only an anchor line (a hash of its text % M == 0,
        chosen by content, so every request agrees without state): when the window must move it jumps to
        the next anchor, ~M lines on, and the state after it serves the next ~M lines too, instead of
        re-feeding the whole window (~170 tokens, 20-40 ms) at every new line.
        Only the end of a long prompt is encoded: the last lines of at least 8 characters per token of
        budget (more when they are not enough), not the whole 64K characters."""
        budget = budget or self.prompt_budget
        span = 8 * budget
        while True:
            cut = 0 if span >= len(prompt) else prompt.find("\n", len(prompt) - span) + 1
            if cut == 0 and span < len(prompt):  # one very long last line: its last characters
                cut = len(prompt) - span
            tail = prompt[cut:] if cut > 0 else prompt
            ids = self.encoder.encode(tail)
            if cut == 0 or len(ids) > budget:
                break
            span *= 2  # not enough tokens in that tail: take more lines
        prompt = tail
        if len(ids) <= budget:
            return prompt, ids
        data = prompt.encode("utf-8")
        starts = token_offsets(self.tokenizer, ids)[:-1].tolist()
        cursor_line = data.rfind(b"\n") + 1
        cursor_tok = bisect.bisect_left(starts, cursor_line)
        reserve = 16 * ((len(ids) - cursor_tok) // 16 + 1)
        every = self.config.window_anchor_every
        for anchors_only in ([True, False] if every > 1 else [False]):
            pos = data.find(b"\n")
            while pos >= 0:
                line_start = pos + 1
                nxt = data.find(b"\n", line_start)
                if anchors_only:
                    if line_start == cursor_line:
                        break  # no anchor fits: any line start will do (the pass below)
                    line = data[line_start:nxt if nxt >= 0 else len(data)]
                    if int.from_bytes(hashlib.blake2b(line, digest_size=4).digest(), "little") % every:
                        pos = nxt
                        continue  # not an anchor line
                # Estimate from the full encoding, then check by encoding the kept text itself.
                if cursor_tok - bisect.bisect_left(starts, line_start) + reserve <= budget or line_start == cursor_line:
                    text = data[line_start:].decode("utf-8")
                    kept = self.encoder.encode(text)
                    if len(kept) <= budget:
                        return text, kept
                    if line_start == cursor_line:
                        break
                pos = nxt
        # The cursor line alone is too long: keep its last tokens (whole characters only).
        kept = ids[-budget:]
        while kept and self.tokenizer.token_bytes[kept[0]][:1] and self.tokenizer.token_bytes[kept[0]][0] & 0xC0 == 0x80:
            kept = kept[1:]  # a token starting inside a multi-byte character
        return self.tokenizer.decode(kept), kept

    def feed(self, context: tuple[int, ...]):
        """(state, logits [V]) after `context`, from the longest cached prefix."""
        n, entry = 0, None
        if self.cache.capacity:  # the longest prefix among prompts and search paths
            n, entry = self.cache.longest_prefix(context, count=False)
            n2, entry2 = self.step_cache.longest_prefix(context, count=False)
            if n2 > n:
                n, entry = n2, entry2
            self.cache.record(n)
        if entry is not None and n == len(context):
            return entry.state, entry.logits
        rest = torch.tensor([context[n:]], dtype=torch.long)
        with torch.inference_mode():
            out, state = self.model(rest, entry.state if entry is not None else None, last_only=True)
        logits = out[0, -1]
        self.counters["tokens_fed"] += rest.shape[1]
        self.counters["forward_calls"] += 1
        self.cache.put(context, CacheEntry(state, logits))
        return state, logits


def extra_chunks(extra: Sequence[str | tuple[str, str]]) -> list[tuple[str, str]]:
    """`extra` (texts, or (filename, text) pairs) as (filename, text) pairs, a text alone with filename "";
    anything else: TypeError."""
    if isinstance(extra, str) or not all(
            isinstance(c, str) or (isinstance(c, tuple) and len(c) == 2 and all(isinstance(x, str) for x in c))
            for c in extra):
        raise TypeError("extra must be a list of strings or (filename, text) pairs")
    return [("", c) if isinstance(c, str) else c for c in extra]


def _as_trained(text: str) -> str:
    """`text` as the training corpus has it (dataset/clean.py): LF line ends, so that a Windows (CRLF) file's text
    looks like the model's and the memory's (a CRLF chunk's lines never matched the prompt's), and encodable
    as UTF-8. The completions are LF text; editors insert them with the document's own line ends."""
    return _encodable(normalise_newlines(text))


def _encodable(text: str) -> str:
    """`text` unchanged, or with what UTF-8 cannot encode (lone surrogates from JSON) as '?'."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="replace").decode("utf-8")


def _text(gen: bytes) -> str:
    return gen.decode("utf-8", errors="ignore")  # drops a character cut in the middle


def probability_ranking(hypotheses: list[Hypothesis], n: int) -> list[Completion]:
    """Texts by probability; different token paths giving the same text add up. Finished hypotheses rank
    before ones cut short by the step limit or deadline."""
    merged: dict[str, list] = {}
    for h in hypotheses:
        text = _text(h.gen)
        if not text:
            continue
        if text not in merged:
            merged[text] = [h.finished, 0.0]
        merged[text][0] |= h.finished
        merged[text][1] += math.exp(h.logp)
    ranked = sorted(merged.items(), key=lambda kv: (not kv[1][0], -kv[1][1]))
    return [Completion(text, prob) for text, (_, prob) in ranked[:n]]


def expected_saving_ranking(hypotheses: list[Hypothesis], n: int, power: float = 1.0) -> list[Completion]:
    """Every cut of every hypothesis, by its value (chars - 1) * P(prefix) ** power (search.cut_value; power 1:
    the expected saving); the first is `best_cut` of the best hypothesis."""
    merged: dict[str, tuple[float, float]] = {}
    for h in hypotheses:
        for o, chars in char_cuts(h.gen):
            value, text = cut_value(chars, h.prefix_logp[o - 1], power), _text(h.gen[:o])
            if text and (text not in merged or value > merged[text][0]):
                merged[text] = (value, math.exp(h.prefix_logp[o - 1]))
    ranked = sorted(merged.items(), key=lambda kv: (-kv[1][0], -kv[1][1]))
    # Cuts of one path are prefixes of each other ("th", "th,", "th, "): a suggestion list of them says
    # the same thing three times. Keep only the best cut of each path, so alternatives really differ.
    chosen: list[Completion] = []
    for text, (_, prob) in ranked:
        if not any(c.text.startswith(text) or text.startswith(c.text) for c in chosen):
            chosen.append(Completion(text, prob))
            if len(chosen) == n:
                break
    return chosen
