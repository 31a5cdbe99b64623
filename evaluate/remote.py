"""A predictor that asks a running completion server, so `python -m evaluate --server URL` measures what
a client gets: the same typing simulation, through HTTP, with the server's own caches and queue.

Only `{"prompt": ...}` is sent for the default kind (what the reference's extension sends); `kind`,
`max_suggestions` and `input_extra` (the project-aware protocol's other files) are added only when asked for,
and `model` (one of a `--models-dir` server's models, serving/models.py) when one is named.

`InfillPredictor` (`--server-api infill`) asks the server's llama.cpp-compatible `/infill` (serving/infill.py)
what llama.vim asks it: the request llama.vim builds at the cursor, its answer read the way llama.vim shows it.
`TabbyPredictor` (`--server-api tabby`) asks the server's Tabby-compatible `/v1/completions` (serving/tabby.py)
what Tabby's agent asks it.
"""
from __future__ import annotations

from typing import Sequence

import requests

from .predictor import Completion, extra_chunks


class RemotePredictor:
    PATH = "/autocomplete"  # the server's route this client's requests go to

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 30.0, model: str | None = None):
        self.url = url.rstrip("/") + self.PATH
        self.model = model
        self.session = requests.Session()  # keep-alive, like an editor's client
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout_s = timeout_s

    def complete(self, prompt: str, suffix: str = "", kind: str | None = None, max_suggestions: int = 1,
                 time_budget_ms: float | None = None, extra: Sequence[str | tuple[str, str]] = ()) -> list[Completion]:
        body = {"prompt": prompt}
        if self.model:
            body["model"] = self.model
        if extra:  # llama.cpp's /infill convention
            body["input_extra"] = [{"filename": f, "text": t} for f, t in extra_chunks(extra)]
        if suffix:
            body["suffix"] = suffix
        if kind is not None:
            body["kind"] = kind
        if max_suggestions != 1:
            body["max_suggestions"] = max_suggestions
        answer = self.post(body)
        return [Completion(t, p) for t, p in zip(answer["prediction"], answer["probs"])]

    def post(self, body: dict) -> dict:
        """The server's answer to `body` at `self.url`; RuntimeError on any status but 200."""
        r = self.session.post(self.url, json=body, timeout=self.timeout_s)
        if r.status_code != 200:
            raise RuntimeError(f"server answered {r.status_code}: {r.text[:200]}")
        return r.json()

    def clear_cache(self) -> None:
        """The server's caches are its own: a real client cannot clear them either."""

    def stats(self) -> dict:
        return {"server": self.url}


class InfillPredictor(RemotePredictor):
    """The server as llama.vim (ggml-org/llama.vim, read at a1c8e6e) uses it through `/infill`. Its request:
    `input_prefix` the `prefix_lines` lines above the cursor line (each ended by a newline), `prompt` the cursor
    line up to the cursor, `input_suffix` the rest of that line, a newline, the `suffix_lines` lines below it and
    a newline; on a cursor line of blanks only, the line is left out of both (`prompt` and the rest of the line
    are "") and `n_indent` is 0, else it is the line's indentation. Its reading of the answer: on such a blank
    line the answer's leading blanks, as many as the line holds, are the line's own and are not inserted; an
    answer of blanks only is not offered."""

    PATH = "/infill"

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 30.0, model: str | None = None,
                 prefix_lines: int = 256, suffix_lines: int = 64):
        super().__init__(url, token, timeout_s, model)
        self.prefix_lines, self.suffix_lines = prefix_lines, suffix_lines

    def request(self, prompt: str, suffix: str = "", extra: Sequence[str | tuple[str, str]] = ()) -> dict:
        above, _, line = prompt.rpartition("\n")
        lines_above = above.split("\n")[-self.prefix_lines:] if "\n" in prompt else []
        rest, _, below = suffix.partition("\n")
        below = below[:-1] if below.endswith("\n") else below  # an editor's last line has no line of its own after it
        lines_below = below.split("\n")[:self.suffix_lines] if below else []
        blank = not line.strip()
        body = {"input_prefix": "\n".join(lines_above) + "\n",
                "prompt": "" if blank else line,
                "input_suffix": ("" if blank else rest) + "\n" + "\n".join(lines_below) + "\n",
                "input_extra": [{"filename": f, "text": t} for f, t in extra_chunks(extra)],
                "n_predict": 128, "n_indent": 0 if blank else len(line) - len(line.lstrip(" \t")),
                "stream": False, "samplers": ["top_k", "top_p", "infill"], "t_max_predict_ms": 250}
        if self.model:
            body["model"] = self.model
        return body

    def complete(self, prompt: str, suffix: str = "", kind: str | None = None, max_suggestions: int = 1,
                 time_budget_ms: float | None = None, extra: Sequence[str | tuple[str, str]] = ()) -> list[Completion]:
        content = self.post(self.request(prompt, suffix, extra))["content"]
        line = prompt.rpartition("\n")[2]
        if not line.strip():  # the blanks the line already holds are not inserted again
            lead = min(len(content) - len(content.lstrip(" \t")), len(line))
            content = content[lead:]
        return [Completion(content, 1.0)] if content.strip() else []  # blanks only: llama.vim offers nothing


class TabbyPredictor(RemotePredictor):
    """The server as Tabby's agent (npm tabby-agent 1.5.0, its createSegments) uses it through `/v1/completions`:
    `prefix` the last `prefix_lines` lines before the cursor (the cursor line's start among them), `suffix` the
    first `suffix_lines` from it (the cursor line's rest among them); the project's other files go in
    `relevant_snippets_from_changed_files` (the agent's VS Code and IntelliJ clients send snippets of recently
    edited files and declarations there; its language server sends none). The first choice is what the agent
    shows (scripts/tabby_agent_check.py compares the two)."""

    PATH = "/v1/completions"

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 30.0, model: str | None = None,
                 prefix_lines: int = 20, suffix_lines: int = 20):
        super().__init__(url, token, timeout_s, model)
        self.prefix_lines, self.suffix_lines = prefix_lines, suffix_lines

    def request(self, prompt: str, suffix: str = "", extra: Sequence[str | tuple[str, str]] = ()) -> dict:
        segments = {"prefix": "".join(prompt.splitlines(keepends=True)[-self.prefix_lines:]),
                    "suffix": "".join(suffix.splitlines(keepends=True)[:self.suffix_lines])}
        if extra:
            segments["relevant_snippets_from_changed_files"] = [
                {"filepath": f, "body": t, "score": 1.0} for f, t in extra_chunks(extra)]
        return {"language": "python", "segments": segments}

    def complete(self, prompt: str, suffix: str = "", kind: str | None = None, max_suggestions: int = 1,
                 time_budget_ms: float | None = None, extra: Sequence[str | tuple[str, str]] = ()) -> list[Completion]:
        choices = self.post(self.request(prompt, suffix, extra))["choices"]
        return [Completion(c["text"], 1.0) for c in choices[:max_suggestions]]
