"""Retrieval into the window: the lines of the user's code most like the lines above the cursor, put in
front of the model's window.

The copy model (context.py) copies what repeats token for token; it cannot help where the project's code
is only *similar*: a call written like its siblings in another file, a test shaped like the test above the
window. Copilot's neighbouring tabs do this with the model: snippets of other files chosen by the Jaccard
similarity of their identifiers with the lines before the cursor, placed in the prompt.

    query      the identifiers (3+ characters) of the last `query_lines` complete lines before the cursor
    candidates windows of `snippet_lines` lines, every `stride` lines, of the text the model cannot see (the
               file above the window and the input_extra chunks), each with its identifier set
    score      Jaccard |Q & C| / |Q | C|; the best candidate above `min_score` is the snippet
    prompt     snippet + "\\n" + window, the window's budget reduced by the snippet's tokens

Candidate sets are built once per text (an LRU keyed by its hash); a query is answered once per line.
"""
from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")


@dataclass
class RetrievalConfig:
    query_lines: int = 6
    snippet_lines: int = 6
    stride: int = 3
    min_score: float = 0.2
    max_tokens: int = 48  # of the snippet (cut at a line end)
    max_texts: int = 64  # candidate sets kept (LRU)


class Retriever:
    def __init__(self, config: RetrievalConfig | None = None):
        self.config = config or RetrievalConfig()
        self.texts: OrderedDict[bytes, list[tuple[frozenset, str]]] = OrderedDict()
        self._last: tuple | None = None

    def _candidates(self, text: str) -> list[tuple[frozenset, str]]:
        key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        hit = self.texts.get(key)
        if hit is not None:
            self.texts.move_to_end(key)
            return hit
        cfg = self.config
        lines = text.split("\n")
        out = []
        for i in range(0, max(1, len(lines) - cfg.snippet_lines + 1), cfg.stride):
            chunk = "\n".join(lines[i:i + cfg.snippet_lines])
            idents = frozenset(_IDENT.findall(chunk))
            if idents:
                out.append((idents, chunk))
        self.texts[key] = out
        while len(self.texts) > cfg.max_texts:
            self.texts.popitem(last=False)
        return out

    def snippet(self, before_window: str, window: str, extra: list[str]) -> str:
        """The most similar lines to the window's last complete lines, or "" when none is similar enough."""
        cfg = self.config
        lines = window[:window.rfind("\n") + 1].split("\n")[:-1][-cfg.query_lines:]
        query = frozenset(_IDENT.findall("\n".join(lines)))
        key = (query, len(before_window), tuple(len(t) for t in extra))
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        best, best_score = "", cfg.min_score
        if query:
            for text in ([before_window] if before_window.strip() else []) + list(extra):
                for idents, chunk in self._candidates(text):
                    inter = len(query & idents)
                    if inter:
                        score = inter / len(query | idents)
                        if score > best_score:
                            best, best_score = chunk, score
        self._last = (key, best)
        return best
