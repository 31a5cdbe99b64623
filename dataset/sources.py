"""Sources: which folders hold which projects, and which files in them are candidates.

A `Project` is the unit of splitting (no project is in two splits): a standard-library top-level
module or package (`stdlib/json`), a GitHub repository (`github/owner/repo`), a package from the index
(`pypi/name`) or a local folder (`local/name`). Downloads and extraction live in `download.py` and
`extract.py`; by the time a project gets here it is a folder on disk.
"""
from __future__ import annotations

import os
import sysconfig
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

# Folders never worth reading: caches, VCS data, virtual environments, installed third-party code.
SKIP_DIRS = {"__pycache__", "node_modules", "site-packages", "dist-packages", "venv", ".venv"}
# The standard library's own tests (and build leftovers) are not the code users write.
STDLIB_SKIP_DIRS = SKIP_DIRS | {"test", "tests", "idle_test", "lib-dynload"}


@dataclass
class Project:
    name: str  # "stdlib/json", "github/psf/requests", ...
    root: Path  # paths of its files are relative to this folder
    files: list[str] = field(default_factory=list)  # candidate .py files, relative POSIX paths, sorted
    skipped: Counter = field(default_factory=Counter)  # reason -> count, for files never read


def _walk(top: Path, root: Path, skip_dirs: set[str], project: Project) -> None:
    """Add every .py file under `top` (paths relative to `root`) to `project`, counting the rest."""
    for dirpath, dirnames, filenames in os.walk(top):
        # Prune in place so os.walk does not descend; sorted for a deterministic order.
        dirnames[:] = sorted(d for d in dirnames if d not in skip_dirs and not d.startswith(".")
                             and not d.startswith("config-") and not os.path.islink(os.path.join(dirpath, d)))
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                project.skipped["link"] += 1
            elif not name.endswith(".py"):
                project.skipped["not_python"] += 1
            else:
                project.files.append(Path(path).relative_to(root).as_posix())


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_projects(root: Path | None = None) -> list[Project]:
    """One project per top-level module or package of the standard library, without its tests."""
    root = Path(root) if root else stdlib_dir()
    projects = []
    for entry in sorted(root.iterdir()):
        name = entry.name
        if entry.is_symlink() or name.startswith(".") or name in STDLIB_SKIP_DIRS or name.startswith("config-"):
            continue
        if entry.is_dir():
            project = Project(f"stdlib/{name}", root)
            _walk(entry, root, STDLIB_SKIP_DIRS, project)
        elif name.endswith(".py"):
            project = Project(f"stdlib/{name[:-3]}", root, [name])
        else:
            continue
        if project.files:
            projects.append(project)
    return projects


def folder_project(name: str, root: Path, skip_dirs: set[str] = SKIP_DIRS) -> Project:
    """All .py files under one folder as one project."""
    project = Project(name, Path(root))
    _walk(Path(root), Path(root), skip_dirs, project)
    return project
