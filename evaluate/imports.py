"""Imports from the project: complete `from .module import Na` with the names that module defines.

A file's first lines import from its siblings: `from ._exceptions import (ConnectError, ...)`. The names
come from another file, so the copy model (context.py) finds them only where an identical import list was
typed elsewhere, and names.py ranks every name of the memory with that prefix by how often it occurs
(`Re` + `quest`, the project's most frequent, where `from ._exceptions import Re` wants `ReadTimeout`). An
editor knows better: the module is one of the `input_extra` files, and only what it defines can follow.

    site     the cursor is in the name list of a `from MODULE import` statement (one line, a backslash
             continuation, or a parenthesised list over lines), typing a name (`prefix`, possibly empty,
             after `import `, `, ` or `(`); the names already in the list (`listed`)
    module   the `input_extra` chunks whose filename is MODULE's file: the dotted path's parts as the end of
             the path, `a/b.py` or `a/b/__init__.py` (a relative import's dots are dropped: the request does
             not say where the typed file is)
    names    what such a file defines at its top level, in order: `def`, `class`, assignments, and for a
             package's `__init__.py` what it imports (its re-exports) and `__all__`'s strings
    offer    the defined names that extend the prefix and are not listed yet; where the listed names are in
             sorted order (isort's and most people's), those after the last listed; the first of them in that
             order. The search's suggestion stays when it completes the prefix into one of the candidates or
             into a name the module defines deeper (inside `try` or `if`), or when it is punctuation after
             nothing typed or after a complete name (`(` after `import`, the line's end).
    modules  the line before that, `from .` + a module's name being typed (1+ characters): a relative import
             names one of the project's modules, the chunks' filenames (`src/pkg/_config.py` -> `_config`;
             under the typed parent for `from ._transports.ba`), not imported by a `from .X import` line above,
             in sorted order, those after the module of the line above first (import blocks are sorted).

Chosen by measurement on the validation files (docs/evaluation.md, "Imports from the project").
Cost: a regular expression over the last 2K characters of the prompt per request; each chunk's names are
read once and kept by the chunk's content key (an LRU bounded in bytes: ImportsConfig.max_bytes).
"""
from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass

from .context import text_key
from .names import NAME_BYTES, inside_name
from .project import module_parts

# `from MODULE import` at a line start (MODULE: dots and/or a dotted name)
_FROM = re.compile(r"^[ \t]*from[ \t]+(\.*(?:[^\W\d]\w*(?:\.[^\W\d]\w*)*)?)[ \t]+import\b", re.M)
_ITEM = re.compile(r"^\s*([^\W\d]\w*)(?:\s+as\s+[^\W\d]\w*)?\s*$")
_LAST = re.compile(r"^\s*([^\W\d]\w*)?$")
# top-level definitions of a module
_DEF = re.compile(r"^(?:async[ \t]+)?def[ \t]+([^\W\d]\w*)|^class[ \t]+([^\W\d]\w*)"
                  r"|^([^\W\d]\w*)[ \t]*(?::[^=\n]*)?=(?!=)", re.M)
_REEXPORT = re.compile(r"^from[ \t]+[.\w]+[ \t]+import[ \t]+(\([^)]*\)|[^\n]*)|^import[ \t]+([^\n]*)", re.M)
_ALL = re.compile(r"^__all__\s*(?::[^=\n]*)?\+?=\s*[\[(]([^\])]*)[\])]", re.M)
_STRING_NAME = re.compile(r"""["']([^\W\d]\w*)["']""")


@dataclass
class ImportsConfig:
    # Identifier characters typed before a module's name is offered (0: right after `import ` or `, `).
    min_prefix: int = 0
    # `from .` + the module's name being typed (1+ characters): the project's modules, from the chunks' filenames.
    modules: bool = True
    # Bytes of the chunks' name lists kept (by content key; ~90 bytes a name in Python objects, as names.py
    # counts them); least recently used go first. A count bound would not do: one module can define 50K names.
    max_bytes: int = 8 * 1024 * 1024


@dataclass(frozen=True)
class ImportSite:
    module: str  # as written: `._exceptions`, `httpx._models`, `..`
    listed: tuple[str, ...]  # names already in the statement's list
    prefix: str  # the name being typed (may be empty)


def import_site(prompt: str, suffix: str = "", min_prefix: int = 0) -> ImportSite | None:
    """Where the end of `prompt` is inside a `from MODULE import ...` list, typing a name of at least
    `min_prefix` characters (and the cursor not inside a name: `suffix` does not go on with one); else None."""
    if inside_name(suffix):
        return None
    tail = prompt[-2048:]
    last = None
    for last in _FROM.finditer(tail):
        pass
    if last is None:
        return None
    rest = tail[last.end():]
    stripped = rest.lstrip(" \t")
    if stripped.startswith("("):
        names = stripped[1:]
        if ")" in names:
            return None
        names = re.sub(r"#[^\n]*", "", names)
    else:
        names = rest.replace("\\\n", " ")
        if "\n" in names or "#" in names or "(" in names:
            return None
        if rest and not rest[0].isspace():
            return None  # `importx`
    items = names.split(",")
    m = _LAST.match(items[-1])
    if m is None:
        return None  # after `as`, or a space after the name: not typing a module's name
    listed = []
    for item in items[:-1]:
        n = _ITEM.match(item)
        if n is None:
            return None
        listed.append(n.group(1))
    prefix = m.group(1) or ""
    return ImportSite(last.group(1), tuple(listed), prefix) if len(prefix) >= min_prefix else None


@dataclass(frozen=True)
class ModuleSite:
    parent: tuple[str, ...]  # the dotted path typed before the name: `from ._transports.ba` -> ("_transports",)
    prefix: str  # the module's name being typed
    previous: str | None  # the module (at the same level) of the nearest `from .X import` line above
    imported: frozenset  # the modules (at the same level) `from .X import` lines above already import


_FROM_RELATIVE = re.compile(r"^[ \t]*from[ \t]+\.+((?:[^\W\d]\w*\.)*)([^\W\d]\w*)?\Z", re.M)
_RELATIVE_ABOVE = re.compile(r"^[ \t]*from[ \t]+\.+([^\W\d][\w.]*)[ \t]+import\b", re.M)


def module_site(prompt: str, suffix: str = "", min_prefix: int = 1) -> ModuleSite | None:
    """Where the cursor line is `from .` + a module's name being typed (a relative import: the module is
    one of the project's), of at least `min_prefix` characters; else None."""
    if inside_name(suffix):
        return None
    start = prompt.rfind("\n") + 1
    m = _FROM_RELATIVE.match(prompt, start)
    if m is None or len(m.group(2) or "") < min_prefix:
        return None
    parent = tuple(m.group(1).split(".")[:-1])
    above = [tuple(a.group(1).split(".")) for a in _RELATIVE_ABOVE.finditer(prompt[max(0, start - 2048):start])]
    level = [a[len(parent)] for a in above if len(a) > len(parent) and a[:len(parent)] == parent]
    return ModuleSite(parent, m.group(2) or "", level[-1] if level else None, frozenset(level))


def module_names(text: str, package: bool) -> list[str]:
    """Top-level names `text` (a module's source) defines, in order of first definition; a package's
    `__init__.py` (`package`) also what it imports and its `__all__`."""
    out: dict[str, None] = {}
    for m in _DEF.finditer(text):
        out.setdefault(m.group(1) or m.group(2) or m.group(3), None)
    if package:
        for m in _REEXPORT.finditer(text):
            for item in re.sub(r"[()\\]", " ", m.group(1) or m.group(2)).split(","):
                words = item.split()
                if words:
                    name = words[-1] if len(words) == 3 and words[1] == "as" else words[0].split(".")[0]
                    if name.isidentifier():
                        out.setdefault(name, None)
        for m in _ALL.finditer(text):
            for s in _STRING_NAME.findall(m.group(1)):
                out.setdefault(s, None)
    out.pop("__all__", None)
    return list(out)


def _module_path(filename: str) -> tuple[str, ...]:
    """The module path of a chunk's `.py` file (project.module_parts); another file's: ()."""
    return module_parts(filename) if filename.endswith(".py") else ()


def _dotted(module: str) -> tuple[str, ...]:
    """`..a.b` -> ("a", "b"): a relative import's dots dropped (where the typed file is is unknown)."""
    stripped = module.lstrip(".")
    return tuple(stripped.split(".")) if stripped else ()


def _is_init(filename: str) -> bool:
    return filename.replace("\\", "/").rsplit("/", 1)[-1] == "__init__.py"


class ProjectImports:
    def __init__(self, config: ImportsConfig | None = None):
        self.config = config or ImportsConfig()
        # (content key + package flag) -> (names, their bytes)
        self.modules: OrderedDict[bytes, tuple[list[str], int]] = OrderedDict()
        self.bytes = 0

    def _names(self, text: str, package: bool) -> list[str]:
        key = text_key(text) + bytes([package])
        if key in self.modules:
            self.modules.move_to_end(key)
            return self.modules[key][0]
        names = module_names(text, package)
        size = NAME_BYTES * len(names) + sum(map(len, names))
        self.modules[key] = (names, size)
        self.bytes += size
        while self.bytes > self.config.max_bytes and len(self.modules) > 1:  # the one just read stays
            self.bytes -= self.modules.popitem(last=False)[1][1]
        return names

    def usage(self) -> dict:
        return {"imports_modules": len(self.modules), "imports_module_bytes": self.bytes}

    def module_chunks(self, site: ImportSite, chunks: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The chunks that are the site's module's file (`a/b.py` or `a/b/__init__.py` for `.a.b`)."""
        package = _dotted(site.module)
        if not package:
            return []  # `from . import x`: the request does not say which package the typed file is in
        return [(f, t) for f, t in chunks if f and _module_path(f)[-len(package):] == package]

    def candidates(self, site: ImportSite, module: list[tuple[str, str]], chunks: list[tuple[str, str]]) -> list[str]:
        """The names the module (its `module_chunks`) defines, and for a package its submodules among the
        chunks' filenames, that may come next (see the module docstring), best first."""
        defined: dict[str, None] = {}
        package = _dotted(site.module)
        for filename, text in module:
            is_init = _is_init(filename)
            defined.update(dict.fromkeys(self._names(text, is_init)))
            if is_init:
                for other, _ in chunks:  # `from pkg import submodule`
                    parts = _module_path(other)
                    if len(parts) > len(package) and parts[-len(package) - 1:-1] == package:
                        defined.setdefault(parts[-1], None)
        listed = set(site.listed)
        names = [n for n in defined if n.startswith(site.prefix) and n not in listed]
        if site.listed and list(site.listed) == sorted(site.listed, key=_sort_key):
            return _after_first(names, site.listed[-1])
        return names

    @staticmethod
    def module_candidates(site: ModuleSite, chunks: list[tuple[str, str]]) -> list[str]:
        """The project's modules (the chunks' filenames) the site may name, best first: those under its
        parent path that extend the prefix and are not imported above, sorted; those after the module of the
        import line above first (import blocks are sorted)."""
        found = set()
        for filename, _ in chunks:
            parts = _module_path(filename)
            if len(parts) > len(site.parent) and parts[len(parts) - len(site.parent) - 1:-1] == site.parent:
                found.add(parts[-1])
        names = sorted((n for n in found if n.startswith(site.prefix) and n not in site.imported), key=_sort_key)
        return _after_first(names, site.previous) if site.previous is not None else names

    @staticmethod
    def complete(site: ImportSite | ModuleSite, top: str | None, names: list[str],
                 module: list[tuple[str, str]] = ()) -> tuple[str, float] | None:
        """(rest of the first candidate, 1 / candidates) to offer instead of the search's `top` suggestion,
        or None where `top` stays: it completes the prefix into one of `names` or into a name the module
        defines where the candidates do not look (inside an `if` or `try`), or it is punctuation (`(` after
        `import`, `,` or the line's end) after nothing typed or after a complete name."""
        head = re.match(r"\w*", top or "").group()
        if head:
            name = site.prefix + head
            if name in names or any(_defines(text, name) for _, text in module):
                return None
        elif top and (not site.prefix or site.prefix in names):
            return None
        offered = [n for n in names if n != site.prefix]
        if not offered:
            return None
        return offered[0][len(site.prefix):], 1.0 / len(offered)

    def clear(self) -> None:
        self.modules.clear()
        self.bytes = 0


def _defines(text: str, name: str) -> bool:
    """Whether `text` defines `name` at any depth (def, class, an assignment)."""
    n = re.escape(name)
    return re.search(rf"^[ \t]*(?:(?:async[ \t]+)?def|class)[ \t]+{n}\b|^[ \t]*{n}[ \t]*(?::[^=\n]*)?=(?!=)",
                     text, re.M) is not None


def _after_first(names: list[str], last: str) -> list[str]:
    """`names` with those after `last` in sorted order first, sorted (a sorted list goes on after its last
    entry), then the others in their order."""
    after = sorted((n for n in names if _sort_key(n) > _sort_key(last)), key=_sort_key)
    first = set(after)
    return after + [n for n in names if n not in first]


def _sort_key(name: str) -> str:
    return name.lower()
