"""The project-aware evaluation protocol: what an editor would send besides the file being typed.

Today's protocol sends the last 20 lines before the cursor. The project-aware one sends what the
extension sends: the whole text before the cursor as `prompt` and, as `input_extra`, other files of the
same project, as if they were open in other tabs:

    neighbours(target, others, budget)
        1. files the target imports (`import pkg.mod`, `from .mod import x`, `from pkg import mod`:
           a dotted name whose last parts match the file's module path), in the order of the imports
        2. files in the target's folder
        3. the rest of the project, by path
        each whole while it fits in `budget` characters; the first that does not fit is cut to what is left.

Imports come first because they are what a developer has open next to a file (and they sit at the top
of the file, typed before the code that uses them). Only files of the target's own project are ever
sent: the held-out test projects stay unseen by training, and each file's project is its split's.
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

# Characters of other files sent with each request: `python -m evaluate --extra-chars`'s default and
# evaluate/gain.py's.
EXTRA_CHARS = 200_000

_IMPORT = re.compile(r"^\s*(?:from\s+(\.*[\w.]*)\s+import\s+([\w., ()]+)|import\s+([\w., ]+))", re.M)


def imported_modules(text: str) -> list[str]:
    """Dotted module names the text imports, in order ('.mod' relative names keep their dots stripped;
    `from pkg import a, b` yields pkg, pkg.a, pkg.b since a and b may be modules)."""
    out: list[str] = []
    for m in _IMPORT.finditer(text):
        if m.group(1) is not None:
            base = m.group(1).lstrip(".")
            out.append(base)
            for name in re.split(r"[,\s()]+", m.group(2)):
                if name and name != "as" and name.isidentifier():
                    out.append(f"{base}.{name}" if base else name)
        else:
            for part in m.group(3).split(","):
                name = part.strip().split(" ")[0]
                if name:
                    out.append(name)
    return [o for o in out if o]


def module_parts(path: str) -> tuple[str, ...]:
    """A file's module path: `src/pkg/mod.py` -> ("src", "pkg", "mod"), `src/pkg/__init__.py` -> ("src", "pkg")
    (Windows separators read as `/`)."""
    parts = PurePosixPath(path.replace("\\", "/")).with_suffix("").parts
    return parts[:-1] if parts and parts[-1] == "__init__" else parts


def neighbours(target: str, others: dict[str, str], budget: int) -> list[tuple[str, str]]:
    """(path, text) of `others` (relative path -> text, the target excluded) to send with `target`'s requests."""
    if budget <= 0 or not others:
        return []
    target_text = others.get(target, "")
    paths = sorted(p for p in others if p != target)
    rank: dict[str, tuple] = {}
    for i, module in enumerate(imported_modules(target_text)):
        wanted = tuple(module.split("."))
        for p in paths:
            parts = module_parts(p)
            # the import's dotted name ends with the file's module path, or the file's path ends with it
            n = min(len(parts), len(wanted))
            if n and (parts[-n:] == wanted[-n:]) and p not in rank:
                rank[p] = (0, i)
    folder = PurePosixPath(target).parent
    for p in paths:
        if p not in rank:
            rank[p] = (1, 0) if PurePosixPath(p).parent == folder else (2, 0)
    chosen, left = [], budget
    for p in sorted(paths, key=lambda p: (rank[p], p)):
        text = others[p]
        if not text.strip():
            continue
        chosen.append((p, text[:left]))
        left -= len(chosen[-1][1])
        if left <= 0:
            break
    return chosen


def split_projects(data_dir: str | Path, split: str) -> dict[str, dict[str, Path]]:
    """project -> {path relative to the project's folder: cleaned file} for a corpus split."""
    from dataset.corpus import split_files
    members: dict[str, dict[str, Path]] = {}
    for project, path in sorted(split_files(data_dir, split), key=lambda pf: str(pf[1])):
        root = Path(data_dir) / "corpus" / "files" / split / project
        members.setdefault(project, {})[path.relative_to(root).as_posix()] = path
    return members
