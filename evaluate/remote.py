"""A predictor that asks a running completion server, so `python -m evaluate --server URL` measures what
a client gets: the same typing simulation, through HTTP, with the server's own caches and queue.

Only `{"prompt": ...}` is sent for the default kind (what the reference's extension sends); `kind`,
`max_suggestions` and `input_extra` (the project-aware protocol's other files) are added only when asked for,
and `model` (one of a `--models-dir` server's models, serving/models.py) when one is named.
"""
from __future__ import annotations

from typing import Sequence

import requests

from .predictor import Completion, extra_chunks


class RemotePredictor:
    def __init__(self, url: str, token: str | None = None, timeout_s: float = 30.0, model: str | None = None):
        self.url = url.rstrip("/") + "/autocomplete"
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
        r = self.session.post(self.url, json=body, timeout=self.timeout_s)
        if r.status_code != 200:
            raise RuntimeError(f"server answered {r.status_code}: {r.text[:200]}")
        answer = r.json()
        return [Completion(t, p) for t, p in zip(answer["prediction"], answer["probs"])]

    def clear_cache(self) -> None:
        """The server's caches are its own: a real client cannot clear them either."""

    def stats(self) -> dict:
        return {"server": self.url}
