"""Names of the project: complete the identifier being typed with one the user's code already uses.

The copy model (context.py) predicts from the tokens before the cursor: `self._` + `d` finds the memory's
`self._default_encoding` only where the same tokens come before it. A name typed in a new place (a function
of another file used for the first time here, a variable that only the code below the cursor uses) has no
such match, and the 4M-parameter model guesses a name it knows (`_debug`) or one of the project's names that
merely shares the tokens before it. Editors answer from the identifiers of the project; so does this module,
after the search:

    prefix   the identifier characters just before the cursor, at least `min_prefix` of them, and the cursor
             not inside an identifier (the suffix does not go on with identifier characters)
    names    the identifiers of the request's memory (the texts the copy model remembers: the prompt's lines,
             the cursor line before the prefix, the input_extra chunks, the suffix's following lines) that
             extend the prefix, each with its number of occurrences
    rule     the search's top suggestion stays if the engine is confident of it (`keep_above`), or if it
             completes the prefix into one of those names (the model and the copy model agree with the code)
             or into one of Python's (keywords, builtins); otherwise the most frequent extending name, if it
             holds at least `min_share` of their occurrences, is put first: the rest of the name, with that
             share as its probability

Chosen by measurement on the validation files (docs/evaluation.md, "Names of the project"), where it adds
0.3-1.2 points of keystrokes saved on every protocol. Only the default kind uses it (the one measured).

Cost: each block of text, as the context store cuts and keys it (`ContextStore.cut`, reused while typing on
a line; a new line changes only the prompt's last block), is scanned once and kept, by its key, as a sorted
list of its names and their counts (an LRU bounded in bytes); a request binary-searches the prefix in each.
"""
from __future__ import annotations

import bisect
import builtins
import keyword
import re
from collections import Counter, OrderedDict
from dataclasses import dataclass

from .context import CutText

# Python identifiers: a letter or underscore, then letters, digits, underscores, in any script (`größe`).
_NAME = re.compile(r"[^\W\d]\w*")
_PREFIX = re.compile(r"[^\W\d]\w*\Z")
# The same found faster: runs of ASCII identifier characters and any non-ASCII ones (Unicode classes cost 1.8x:
# 4.1 against 2.3 ms per 200 KB), the few runs with non-ASCII characters then split by _NAME (`a×b`, `—`).
_NAME_RUN = re.compile(r"[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*")
# Names every Python file may use without defining them: the search completing one of these is kept too.
PYTHON_NAMES = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins))
NAME_BYTES = 90  # bytes of a name in a table besides its characters: str object, list slots, count


def find_names(text: str) -> list[str]:
    """The identifiers in `text`, in order (what _NAME.findall gives)."""
    runs = _NAME_RUN.findall(text)
    if text.isascii():
        return runs
    return [name for run in runs for name in ((run,) if run.isascii() else _NAME.findall(run))]


def inside_name(suffix: str) -> bool:
    """The cursor is inside a name: the text after it goes on with one (inserting a name would split it)."""
    return suffix[:1].isidentifier() or suffix[:1].isdigit()


@dataclass
class NamesConfig:
    # Identifier characters typed before a name is offered (1 character is too ambiguous to pay).
    min_prefix: int = 2
    # Share of the extending names' occurrences the most frequent one needs (0.3 / 0.5 / 0.8 measured).
    min_share: float = 0.3
    # The search's top suggestion stays when the engine gives it at least this probability: a model fine-tuned
    # on the project knows its names, and overriding its confident choice with the memory's most frequent name
    # cost it 0.5-0.8 points on the held-out files of three projects (docs/training.md "Names and a fine-tuned
    # model"); the shipped model gains 0.1-0.5 (docs/evaluation.md). > 1: the rule never defers.
    keep_above: float = 0.5
    # Bytes of name tables kept (one per block of text, ~90 bytes a name in Python objects; 200 KB of chunks
    # make ~1 MB of tables); least recently used go first.
    max_bytes: int = 16 * 1024 * 1024


def typed_prefix(prompt: str, suffix: str, min_prefix: int) -> str | None:
    """The identifier being typed at the end of `prompt`, or None (too short, or the cursor is inside a
    name: the suffix goes on with identifier characters, so inserting the rest of a name would split it)."""
    tail = prompt[-256:]
    m = _PREFIX.search(tail)
    if m is None or len(m.group()) < min_prefix or inside_name(suffix):
        return None
    if m.start() > 0 and tail[m.start() - 1].isdigit():
        return None  # the end of a number (`0x1f`, `12ab`), not a name
    return m.group()


class ProjectNames:
    def __init__(self, config: NamesConfig | None = None):
        self.config = config or NamesConfig()
        self.tables: OrderedDict[bytes, tuple[list[str], list[int], int]] = OrderedDict()  # key -> names, counts, bytes
        self.bytes = 0
        self.stats = Counter()  # tables_built, names_offered

    def _table(self, key: bytes | None, text: str) -> tuple[list[str], list[int]]:
        """(sorted names, their counts) of one block of text, from the LRU by its key when seen before
        (key None: not kept)."""
        if key is not None and key in self.tables:
            self.tables.move_to_end(key)
            return self.tables[key][:2]
        counts = Counter(find_names(text))
        names = sorted(counts)
        table = (names, [counts[n] for n in names])
        if key is not None:
            self.stats["tables_built"] += 1
            size = sum(len(n) + NAME_BYTES for n in names)
            self.tables[key] = (*table, size)
            self.bytes += size
            while self.bytes > self.config.max_bytes and len(self.tables) > 1:
                self.bytes -= self.tables.popitem(last=False)[1][2]
        return table

    def extending(self, prefix: str, cut: CutText, cursor_line: str) -> dict[str, int]:
        """Names longer than `prefix` that start with it -> occurrences, over the prompt's blocks and the
        chunks' (as the context store cut and keyed them: ContextStore.cut) and the cursor line before the
        prefix (not kept: it changes with every keystroke); in order of first appearance (ties go to the
        earliest): the prompt, the cursor line, the chunks."""
        tables = [self._table(key, text) for key, text in cut.prompt]
        tables.append(self._table(None, cursor_line))
        tables += [self._table(key, text) for key, text in cut.chunks]
        found: dict[str, int] = {}
        for names, counts in tables:
            i = bisect.bisect_right(names, prefix)  # names > prefix: the longer ones that start with it first
            while i < len(names) and names[i].startswith(prefix):
                found[names[i]] = found.get(names[i], 0) + counts[i]
                i += 1
        return found

    def complete(self, prefix: str, top: str | None, found: dict[str, int],
                 top_prob: float = 0.0) -> tuple[str, float] | None:
        """(rest of the name, its share) to offer first instead of the search's `top` suggestion (of probability
        `top_prob`), or None."""
        if not found or (top and top_prob >= self.config.keep_above):
            return None
        head = re.match(r"\w*", top or "").group()
        if head and (prefix + head in found or prefix + head in PYTHON_NAMES):
            return None  # the search completes the prefix into one of the project's names, or Python's: keep it
        name, count = max(found.items(), key=lambda kv: kv[1])  # the first of equals
        share = count / sum(found.values())
        if share < self.config.min_share:
            return None
        self.stats["names_offered"] += 1
        return name[len(prefix):], share

    def usage(self) -> dict:
        return {"names_tables": len(self.tables), "names_table_bytes": self.bytes,
                "names_tables_built": self.stats["tables_built"],
                "names_offered": self.stats["names_offered"]}

    def clear(self) -> None:
        self.tables.clear()
        self.bytes = 0
