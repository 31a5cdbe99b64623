"""llama.cpp's `POST /infill` on this server's engine: editors' plugins written for llama.cpp work unchanged.

llama.vim (Vim and Neovim) and llama.vscode send their fill-in-the-middle requests to llama-server's
`/infill`. Its request names the same three things as ours, cut differently:

    llama.cpp /infill                               POST /autocomplete (server.py)
    input_prefix  the lines above the cursor line   prompt = input_prefix + prompt
    prompt        the cursor line up to the cursor
    input_suffix  the rest of the file's window     suffix = input_suffix
    input_extra   [{"filename", "text"}, ...]       input_extra (the same convention: ours came from it)
    model         a model's name                    model
    n_cmpl (n)    how many completions              max_suggestions
    t_max_predict_ms  time for the generation       time_budget_ms (when > 0)

and a few settings that act on the completion's text, applied here after the engine answers, as llama.cpp
applies them while it generates:

- `n_predict`: 0 asks for no completion (llama.vim and llama.vscode send such requests to have the server
  read new `input_extra` chunks ahead of time). It is answered at once with empty `content` and nothing
  reaches a worker: the engine builds its project context from the chunks when a completion needs them, and
  caches it by content (the first completion with new chunks pays ~1 ms per chunk). Any other value leaves the
  length to the completion kind (the default kind: the rest of the line, cut where it saves the most).
- `stop`: the completion ends before the first of these strings (which is not included; `stop_type` "word",
  `stopping_word` says which).
- `n_indent`: the completion ends before a new line indented less than this many whitespace characters
  (the cursor line's block is over there).

Two shapes of the plugins' requests would leave them nothing to show, and are completed here:

- A blank cursor line is sent without its blanks (`prompt` ""; llama.vscode gives their number as `n_indent`,
  llama.vim gives 0). At a line start the model's likeliest completion is the indentation itself. The line's
  indentation goes into the prompt (`n_indent` blanks, else the editor's guess, serving/indent.py) and in
  front of the answer.
- A best completion of blanks and line breaks only (`"\\n        "` after `for x in xs:`) is not shown by llama.vim
  and dropped by llama.vscode, where llama.cpp's model would have gone on to the code. The engine is asked
  once more, after it, and the answer is both (`blanks_only`).

Sampling settings (`temperature`, `top_k`, `top_p`, `samplers`, ...) and cache controls (`cache_prompt`,
`id_slot`, `t_max_prompt_ms`) are ignored: the engine's beam search and caches are its own.

The answer has llama.cpp's shape: `content` (the best completion), `index`, `stop` (true), `stop_type`
("eos", or "word" where a stop string cut it), `stopping_word`, `model` (the name of the model that answered),
`truncated` (the prompt was longer than the server keeps), `timings` (this server's: `queue_ms`, `engine_ms`,
`compute_ms`, as /autocomplete's Server-Timing header splits them) and `tokens_cached` 0. With `n_cmpl` > 1
it is a list of such objects, one per distinct completion, best first (llama.cpp answers a list there too).
`response_fields` keeps only the fields it names, a `parent/child` path moved to the top as the key
`"parent/child"` (llama.vim reads `timings/...` that way); a field that does not exist is left out.
`"stream": true` gets the same objects as server-sent events (`data: {...}`), the completion whole in one
event with `stop` true, since the engine answers in one piece. Errors have llama.cpp's shape too:
`{"error": {"code", "message", "type"}}`.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from .indent import blank_line_indent

# What llama-server calls its error types, by status (its `error_type`); clients show the message.
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
               405: "invalid_request_error", 413: "invalid_request_error", 415: "invalid_request_error",
               501: "not_supported_error", 502: "unavailable_error", 503: "unavailable_error"}
MAX_STOP_STRINGS = 64  # llama.cpp has no limit; a client sends a handful
MAX_STOP_CHARS = 1000


class BadInfill(ValueError):
    """A field of the request that llama.cpp would refuse too: the server answers 400 with this message."""


@dataclass
class InfillOptions:
    """What /infill adds to a completion request: settings that act on the answer's text and shape."""
    n_predict: int = -1                                   # 0: no completion; else the kind's own length
    stop: list[str] = field(default_factory=list)         # cut before the first of these
    n_indent: int = 0                                     # cut before a new line indented less than this
    n_cmpl: int = 1                                       # > 1: a list of answers
    response_fields: list[str] | None = None              # keep only these ("a/b" moves a.b to the top)
    stream: bool = False                                  # answer as server-sent events
    lead: str = ""                                        # a blank line's indentation, put in the prompt for the
                                                          # client (blank_line_indent): its answers start with it


def _integer(body: dict, name: str, default: int, low: int, high: int | None = None) -> int:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a JavaScript client's 2.0 is 2
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f"in {low}..{high}" if high is not None else f">= {low}"
        raise BadInfill(f'"{name}" must be an integer {bound}')
    return value


def _string(body: dict, name: str) -> str:
    value = body.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadInfill(f'"{name}" must be a string')
    return value


def _strings(body: dict, name: str, limit: int, max_chars: int) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, str) and name == "stop":
        value = [value]  # OpenAI's form: one stop string
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadInfill(f'"{name}" must be a list of strings')
    if len(value) > limit or any(len(v) > max_chars for v in value):
        raise BadInfill(f'"{name}" may hold at most {limit} strings of at most {max_chars} characters')
    return value


def translate_request(body: dict, max_suggestions: int) -> tuple[dict, InfillOptions]:
    """An /infill body -> (the /autocomplete body that asks the engine the same, the /infill options).
    Raises BadInfill for a field of the wrong type; the /autocomplete body's own checks (sizes, `model`,
    `input_extra`'s shape) are server.completion_args's."""
    prefix, middle, suffix = _string(body, "input_prefix"), _string(body, "prompt"), _string(body, "input_suffix")
    cmpl_field = "n_cmpl" if body.get("n_cmpl") is not None else "n"
    options = InfillOptions(
        n_predict=_integer(body, "n_predict", -1, -1),
        stop=[s for s in _strings(body, "stop", MAX_STOP_STRINGS, MAX_STOP_CHARS) or [] if s],
        n_indent=_integer(body, "n_indent", 0, 0),
        n_cmpl=_integer(body, cmpl_field, 1, 1, max_suggestions),
        response_fields=_strings(body, "response_fields", 256, 256),
        stream=body.get("stream") is True)
    if middle == "" and (prefix == "" or prefix.endswith("\n")):
        options.lead = blank_line_indent(prefix, options.n_indent)
    request = {"prompt": prefix + middle + options.lead, "suffix": suffix, "input_extra": body.get("input_extra"),
               "model": body.get("model"), "kind": body.get("kind"), "max_suggestions": max(options.n_cmpl, 1)}
    # llama.cpp: t_max_predict_ms <= 0 means no limit; here that leaves the server's own budget.
    budget = body.get("t_max_predict_ms")
    if budget is not None:
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not math.isfinite(budget):
            raise BadInfill('"t_max_predict_ms" must be a number')
        if budget > 0:
            request["time_budget_ms"] = budget
    return request, options


def blanks_only(completions: list) -> bool:
    """Is the best of these [(text, p)] completions blanks and line breaks only (`"\\n    "` at the end of a line
    that opens a block)? llama.vim does not offer such a completion and llama.vscode drops it, where llama.cpp's
    model would have gone on to the code: the server asks the engine once more, after it."""
    return bool(completions) and completions[0][0] != "" and not completions[0][0].strip()


def cut(content: str, options: InfillOptions) -> tuple[str, str, str]:
    """`content` as llama.cpp would have stopped it: (text, stop_type, stopping_word)."""
    stop_type, stopping_word = "eos", ""
    if options.n_indent > 0:
        # llama.cpp checks each new line once it has begun: fewer leading blanks than n_indent ends it.
        start = 0
        while (newline := content.find("\n", start)) >= 0:
            line = content[newline + 1:].split("\n", 1)[0]
            indent = len(line) - len(line.lstrip(" \t"))
            if line.strip() and indent < options.n_indent:
                content = content[:newline]
                break
            start = newline + 1
    if options.stop:
        found = [(content.find(s), s) for s in options.stop if s in content]
        if found:
            at, word = min(found)
            content, stop_type, stopping_word = content[:at], "word", word
    return content, stop_type, stopping_word


def result(index: int, content: str, stop_type: str, stopping_word: str, model: str, truncated: bool,
           timings: dict[str, float]) -> dict:
    """One completion in llama.cpp's answer shape."""
    return {"index": index, "content": content, "stop": True, "stop_type": stop_type,
            "stopping_word": stopping_word, "model": model, "truncated": truncated, "tokens_cached": 0,
            "timings": timings}


def select_fields(answer: dict, fields: list[str] | None) -> dict:
    """llama.cpp's `response_fields`: only the named fields; "a/b" is answer["a"]["b"] under the key "a/b"."""
    if fields is None:
        return answer
    selected = {}
    for name in fields:
        value, found = answer, True
        for part in name.split("/"):
            if isinstance(value, dict) and part in value:
                value = value[part]
            else:
                found = False
                break
        if found and name:
            selected[name] = value
    return selected


def answers(completions: list[str], options: InfillOptions, model: str, truncated: bool,
            timings: dict[str, float]) -> list[dict]:
    """The engine's completions (best first) as llama.cpp's answers: each cut by `stop` / `n_indent`, the
    repeats that cutting makes dropped, at most `n_cmpl`; at least one (empty `content`: nothing to offer)."""
    out, seen = [], set()
    for text in completions:
        content, stop_type, stopping_word = cut(text, options)
        content = options.lead + content
        if content in seen:
            continue
        seen.add(content)
        out.append(result(len(out), content, stop_type, stopping_word, model, truncated, timings))
        if len(out) == options.n_cmpl:
            break
    if not out:
        out.append(result(0, options.lead, "eos", "", model, truncated, timings))
    return [select_fields(a, options.response_fields) for a in out]


def body(results: list[dict], options: InfillOptions) -> tuple[str, str]:
    """(text, mimetype) of the answer: one object, a list for n_cmpl > 1, or server-sent events."""
    if options.stream:
        return "".join(f"data: {json.dumps(r, separators=(',', ':'))}\n\n" for r in results), "text/event-stream"
    payload = results if options.n_cmpl > 1 else results[0]
    # Compact separators, as llama-server writes them: llama.vim checks for `"content":"` before decoding.
    return json.dumps(payload, separators=(",", ":")), "application/json"


def error_body(status: int, message: str) -> dict:
    """llama.cpp's error shape."""
    return {"error": {"code": status, "message": message, "type": ERROR_TYPES.get(status, "server_error")}}
