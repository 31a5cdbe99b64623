"""dataset/workspace.py: a project's .py files are what git would commit, less environments and build output."""
import os
import shutil
import subprocess

import pytest

from dataset.personal import build_personal_corpus, gather
from dataset.encode import train_tokenizer
from dataset.workspace import project_source_files

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


@pytest.fixture(autouse=True)
def plain_git(monkeypatch):
    """No user or system git configuration (a global excludesFile would change what is ignored)."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def write(root, rel, text="x = 1\n"):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def git(root, *args):
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def make_repo(root):
    """A repository as projects are: tracked code, new untracked code, and Python it ignores or never owns."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q")
    write(root, ".gitignore", "/data/\n*_pb2.py\n")
    write(root, "pkg/sub/.gitignore", "scratch.py\n")
    for rel in ("pkg/__init__.py", "pkg/core.py", "pkg/sub/util.py", "pkg/gone.py", "venv/lib/vendored.py",
                ".github/release.py"):
        write(root, rel)
    git(root, "add", "-A")
    (root / "pkg/gone.py").unlink()  # tracked, deleted in the work tree
    write(root, "pkg/new.py")  # untracked, not ignored: what `git add -A` would commit
    write(root, "pkg/api_pb2.py")  # generated, ignored by pattern
    write(root, "pkg/sub/scratch.py")  # ignored by the nested .gitignore
    for i in range(3):
        write(root, f"data/corpus/mod{i}.py")  # downloaded data, ignored folder
    write(root, "notes.txt")
    os.symlink(root / "pkg/core.py", root / "pkg/alias.py")


def test_a_repository_lists_what_git_would_commit(tmp_path):
    make_repo(tmp_path)
    listing = project_source_files(tmp_path, count_ignored=True)
    assert listing.by == "git"
    assert listing.files == [".github/release.py", "pkg/__init__.py", "pkg/core.py", "pkg/new.py",
                             "pkg/sub/util.py"]
    assert listing.ignored == 5  # api_pb2, scratch, data/corpus/mod0-2
    assert project_source_files(tmp_path).ignored == 0  # not counted unless asked (git walks the ignored folders)


def test_a_subfolder_of_a_repository_keeps_its_rules(tmp_path):
    make_repo(tmp_path)
    listing = project_source_files(tmp_path / "pkg")
    assert (listing.by, listing.files) == ("git", ["__init__.py", "core.py", "new.py", "sub/util.py"])


def test_a_folder_the_repository_ignores_is_read_when_named(tmp_path):
    make_repo(tmp_path)
    listing = project_source_files(tmp_path / "data")
    assert (listing.by, listing.files) == ("walk", ["corpus/mod0.py", "corpus/mod1.py", "corpus/mod2.py"])


def test_outside_a_repository_every_py_file_but_environments_hidden_folders_and_links(tmp_path):
    for rel in ("app.py", "lib/b.py", "build/lib/app.py", ".venv/x.py", ".cache/y.py", "node_modules/z.py"):
        write(tmp_path, rel)
    os.symlink(tmp_path / "lib", tmp_path / "lib2")
    os.symlink(tmp_path / "app.py", tmp_path / "app2.py")
    listing = project_source_files(tmp_path)
    assert (listing.by, listing.files, listing.ignored) == ("walk", ["app.py", "lib/b.py"], 0)


def test_a_folder_of_repositories_applies_each_ones_rules(tmp_path):
    make_repo(tmp_path / "one")
    write(tmp_path, "two/main.py")
    write(tmp_path, "two/out/gen.py")
    write(tmp_path, "two/.gitignore", "out/\n")
    git(tmp_path / "two", "init", "-q")
    write(tmp_path, "loose.py")
    listing = project_source_files(tmp_path, count_ignored=True)
    assert listing.by == "walk"
    assert listing.files == ["loose.py", "one/.github/release.py", "one/pkg/__init__.py", "one/pkg/core.py",
                             "one/pkg/new.py", "one/pkg/sub/util.py", "two/main.py"]
    assert listing.ignored == 6


def test_without_git_on_the_path_the_folder_is_walked(tmp_path, monkeypatch):
    make_repo(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    listing = project_source_files(tmp_path)
    assert listing.by == "walk"
    assert "data/corpus/mod0.py" in listing.files and "pkg/api_pb2.py" in listing.files
    assert ".github/release.py" not in listing.files and "venv/lib/vendored.py" not in listing.files


def test_the_personal_corpus_trains_on_the_repositorys_own_files(tmp_path):
    repo = tmp_path / "repo"
    make_repo(repo)
    for rel in ("pkg/core.py", "pkg/new.py", "pkg/sub/util.py", "pkg/__init__.py", ".github/release.py"):
        write(repo, rel, f"def f_{rel.replace('/', '_').replace('.', '_')}(a, b):\n    return a + b\n")
    for rel in ("pkg/api_pb2.py", "data/corpus/mod0.py"):
        write(repo, rel, f"def generated_{rel.replace('/', '_').replace('.', '_')}():\n    return 2\n")
    # notebooks too, by the same rules: an untracked one is the project's, one in an ignored folder is not
    cell = '{"cells": [{"cell_type": "code", "source": ["def g(a):\\n", "    return a\\n"]}]}'
    write(repo, "notebooks/explore.ipynb", cell)
    write(repo, "data/corpus/downloaded.ipynb", cell)
    assert sorted(r["path"] for r in gather([repo])) == [".github/release.py", "notebooks/explore.ipynb",
                                                         "pkg/__init__.py", "pkg/core.py", "pkg/new.py",
                                                         "pkg/sub/util.py"]
    tok = train_tokenizer(["def f(a, b):\n    return a + b\n"] * 4, vocab_size=300)
    meta = build_personal_corpus([repo], tmp_path / "out", tok)
    assert meta["sources"] == [{"kind": "local", "path": str(repo.resolve()), "listed_by": "git", "py_files": 5,
                                "notebooks": 1, "files_ignored": 6, "warnings": []}]
    written = sorted(p.name for p in (tmp_path / "out" / "corpus" / "files").rglob("*.py"))
    assert "api_pb2.py" not in written and "mod0.py" not in written and len(written) == 5


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to give the repository away")
def test_a_repository_git_refuses_to_read_is_walked_and_said_so(tmp_path):
    """A checkout another user owns: git (>= 2.35.2) refuses it ("dubious ownership"). The files are walked,
    ignored ones too, and the listing says why, with git's fix."""
    repo = tmp_path / "repo"
    make_repo(repo)
    for path in [repo, *repo.rglob("*")]:
        os.lchown(path, 65534, 65534)
    listing = project_source_files(repo)
    assert listing.by == "walk" and "data/corpus/mod0.py" in listing.files
    assert len(listing.warnings) == 1
    assert "dubious ownership" in listing.warnings[0] and f"safe.directory {repo}" in listing.warnings[0]
    described = []
    gather([repo], described=described)
    assert described[0]["warnings"] == listing.warnings
    assert project_source_files(tmp_path).warnings == listing.warnings  # a repository found inside a folder too
