"""Which source files under a folder are the user's project: what git would commit, less what never is.

    listing = project_source_files(Path("~/code/proj").expanduser(), count_ignored=True)
    listing.files     # ["notes/fit.ipynb", "pkg/__init__.py", "pkg/mod.py", ...]: sorted, relative, `/`-separated
    listing.by        # "git" or "walk"
    listing.ignored   # source files git's ignore rules left out

Source files are `.py` files and Jupyter notebooks (`.ipynb`; dataset/notebooks.py reads their code cells).

A project folder holds more Python than its code: data the project downloads (this repository's own `data/`
holds 7,205 .py files of the default corpus, `runs/` 3,388 more, against its 118 tracked ones), build output,
generated modules, vendored copies, scratch. Training on them (`make train SOURCES=`) spends the budget on
someone else's code and holds out the wrong files; sending them as context (`python -m evaluate
--project-root`, the editor's workspace context) crowds out the project's own. The project says what is
not its code in its ignore files, so:

1. In a git work tree, with git on PATH: `git ls-files --cached --others --exclude-standard`, the files
   tracked and those untracked that no ignore rule (every `.gitignore`, `.git/info/exclude`,
   `core.excludesFile`) excludes: what `git add -A` would commit. git applies its own rules, not a copy of
   them.
2. Otherwise (no git, not a repository, or git lists no source file in a folder that has some: a folder the
   repository ignores, named on purpose): every source file under the folder, hidden folders left out, but
   git's listing again in each repository found inside (a folder of several projects, `~/code`).

`make train` trains on the notebooks (since 2026-12-07), and the project context sends them (since 2026-12-07
too: the editor's workspace context reads a notebook nobody opened as `make train` does; typing in hvplot's
documentation notebooks, the project's other notebooks beside its package as context saved +4.9 points of
keystrokes over the package alone, and on its `.py` files +0.0, docs/evaluation.md "Notebooks as context").

Either way, files in NOT_PROJECT_DIRS (environments, caches, build output: committed or not, they are not
the project) and symbolic links are left out. The extension lists a workspace with the same folders left out
(vscode-extension/src/workspaceContext.ts) and lists a folder on disk the same way (vscode-extension/src/gitFiles.ts
`projectSourceFiles`: the same `git ls-files`, the same walk), so training, evaluation and the editor agree on what
the project is.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from dataset.notebooks import NOTEBOOK_SUFFIX

# Folders whose source files are not the user's project (dependencies, environments, build output, caches): the
# extension's list too (vscode-extension/src/workspaceContext.ts NOT_PROJECT_DIRS; tests check they agree).
NOT_PROJECT_DIRS = frozenset({"node_modules", ".git", ".hg", ".venv", "venv", ".tox", ".nox", "site-packages",
                              "__pycache__", "build", "dist", ".mypy_cache", ".pytest_cache",
                              # Jupyter's autosaved copies of the folder's notebooks: a held-out notebook's copy
                              # must not be trained on, nor sent as context beside the notebook itself
                              ".ipynb_checkpoints"})

GIT_TIMEOUT_S = 60  # a listing of a large repository takes well under a second; a hung git must not hang us


@dataclass
class Listing:
    files: list[str]  # relative POSIX paths of the project's source files, sorted
    by: str  # "git" (its ignore rules applied) or "walk" (every source file, but git's in repositories inside)
    ignored: int = 0  # source files git's ignore rules left out (counted when asked: `count_ignored`)
    warnings: list[str] = field(default_factory=list)  # repositories git refused to list (walked instead)


SOURCE_SUFFIXES = (".py", NOTEBOOK_SUFFIX)  # notebooks hold code too (dataset/notebooks.py)


def _git_source_files(root: Path, *options: str, warnings: list[str] | None = None) -> list[str] | None:
    """`git ls-files` of the source files under root (paths relative to it), or None without git or
    a repository.
    A repository git refuses to read adds a line to `warnings`: its files are then walked, ignored ones too."""
    try:
        run = subprocess.run(["git", "-C", str(root), "ls-files", "-z", *options, "--",
                              *(f"*{suffix}" for suffix in SOURCE_SUFFIXES)],
                             capture_output=True, timeout=GIT_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if run.returncode != 0:  # "not a git repository", a broken one, a too-old git
        error = run.stderr.decode("utf-8", "replace")
        if warnings is not None and "dubious ownership" in error:
            # git (>= 2.35.2) will not read a repository another user owns (a checkout made by root or in a
            # container): silently walked, its data and build output would be taken as the project.
            warnings.append(f"git refuses to read the repository {root}: it belongs to another user (git's "
                            f"\"dubious ownership\"); every source file under it is taken, its .gitignore not "
                            f"applied. `git config --global --add safe.directory {root}` lets git read it")
        return None
    return [p for p in run.stdout.decode("utf-8", "surrogateescape").split("\0") if p]


def _is_project_file(root: Path, rel: str) -> bool:
    parts = rel.split("/")
    path = root / rel
    return (not any(part in NOT_PROJECT_DIRS for part in parts[:-1]) and not path.is_symlink()
            and path.is_file())  # tracked but deleted in the work tree: not there to read


def _walk(root: Path, listing: Listing, count_ignored: bool) -> None:
    """Every source file under root into `listing`, except where a folder is a repository of its
    own: there git's."""
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel_dir = here.relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else f"{rel_dir}/"
        if here != root and os.path.exists(os.path.join(dirpath, ".git")):
            listed = _git_source_files(here, "--cached", "--others", "--exclude-standard", warnings=listing.warnings)
            if listed:  # a repository inside the folder (~/code holding several): its own rules
                listing.files += [prefix + rel for rel in listed]
                listing.ignored += _ignored_count(here) if count_ignored else 0
                dirnames[:] = []
                continue
        dirnames[:] = [d for d in dirnames if d not in NOT_PROJECT_DIRS and not d.startswith(".")
                       and not os.path.islink(os.path.join(dirpath, d))]
        listing.files += [prefix + name for name in filenames if name.endswith(SOURCE_SUFFIXES)]


def _ignored_count(root: Path) -> int:
    # git walks the ignored folders for this (0.16 s for this checkout's 18,147 ignored files): asked for only when
    # someone reads the count
    return len(_git_source_files(root, "--others", "--ignored", "--exclude-standard") or [])


def project_source_files(root: Path, count_ignored: bool = False) -> Listing:
    """The project's source files (`.py` files and notebooks) under the folder `root` (see the module docstring);
    `count_ignored`: fill `Listing.ignored`."""
    root = Path(root)
    warnings: list[str] = []
    listed = _git_source_files(root, "--cached", "--others", "--exclude-standard", warnings=warnings)
    if listed:
        listing = Listing(listed, "git", _ignored_count(root) if count_ignored else 0)
    else:
        listing = Listing([], "walk", warnings=warnings)
        _walk(root, listing, count_ignored)
    listing.files = sorted({rel for rel in listing.files if _is_project_file(root, rel)})
    return listing
