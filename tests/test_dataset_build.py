"""End-to-end corpus builds: the standard library (the default), local folders and a package index."""
import functools
import http.server
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from dataset.build import BuildConfig, DownloadConfig, build_corpus
from dataset.corpus import load_manifest, load_meta, load_split, load_tokenizer, split_files
from dataset.sources import stdlib_projects
from dataset.split import SPLITS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def stdlib_corpus(tmp_path_factory):
    """The default build (standard library, vocab 4096): ~15 s, shared by the tests below."""
    out = tmp_path_factory.mktemp("stdlib") / "data"
    meta = build_corpus(BuildConfig(out=out, progress=False))
    return out, meta


def test_stdlib_projects_without_tests():
    projects = stdlib_projects()
    names = {p.name for p in projects}
    assert {"stdlib/json", "stdlib/asyncio", "stdlib/os", "stdlib/collections"} <= names
    assert not names & {"stdlib/test", "stdlib/site-packages", "stdlib/__pycache__"}
    paths = [f for p in projects for f in p.files]
    assert len(paths) > 600
    assert not [f for f in paths if set(f.split("/")) & {"test", "tests", "idle_test", "site-packages"}]
    # One top-level module or package per project; a package's files all belong to it.
    assert all(f.split("/")[0].removesuffix(".py") == p.name.split("/")[1] for p in projects for f in p.files)


def test_stdlib_corpus_layout(stdlib_corpus):
    out, meta = stdlib_corpus
    corpus = out / "corpus"
    assert meta == {**load_meta(out), "run": meta["run"]}
    assert meta["dtype"] == "uint16" and meta["vocab_size"] == 4096
    manifest = load_manifest(out)
    files = manifest["files"]
    assert len(files) > 500 and manifest["skipped"]["not_python"] > 0
    # Each project lives in exactly one split, and all three splits have projects.
    split_of = {}
    for f in files:
        assert split_of.setdefault(f["project"], f["split"]) == f["split"], f
    assert set(split_of.values()) == set(SPLITS)
    # Every kept file is on disk, cleaned, with the manifest's hash.
    import hashlib
    for f in files:
        data = (corpus / "files" / f["split"] / f["project"] / f["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f["sha256"] and b"\r" not in data
    assert len({f["sha256"] for f in files}) == len(files)  # no exact duplicates
    tokenizer = load_tokenizer(out)
    assert tokenizer.sha256 == meta["tokenizer_sha256"]
    for split in SPLITS:
        ids = load_split(out, split)
        assert ids.dtype == np.uint16 and ids.size == meta["splits"][split]["tokens"]
        n_files = meta["splits"][split]["files"]
        assert int((ids == tokenizer.eot_id).sum()) == n_files + 1 and ids[0] == ids[-1] == tokenizer.eot_id
        listed = split_files(out, split)
        assert len(listed) == n_files and all(path.is_file() for _, path in listed)
    # The held-out split decodes back to exactly its files, in manifest order.
    valid = load_split(out, "valid")
    eots = np.flatnonzero(valid == tokenizer.eot_id)
    texts = [tokenizer.decode(valid[a + 1:b]) for a, b in zip(eots[:-1], eots[1:])]
    assert texts == [path.read_text(encoding="utf-8") for _, path in split_files(out, "valid")]


def test_tokenizer_round_trip_on_every_stdlib_file(stdlib_corpus):
    out, _ = stdlib_corpus
    tokenizer = load_tokenizer(out)
    texts = []
    for project in stdlib_projects():  # all candidates, including the ones cleaning skipped
        for rel in project.files:
            try:
                texts.append((project.root / rel).read_bytes().decode("utf-8"))  # raw, \r kept
            except UnicodeDecodeError:
                pass
    assert len(texts) > 700
    for text, ids in zip(texts, tokenizer.encode_batch(texts)):
        assert tokenizer.decode(ids) == text


def test_second_build_does_no_work(stdlib_corpus):
    out, _ = stdlib_corpus
    corpus = out / "corpus"
    stamps = {p.name: p.stat().st_mtime_ns for p in corpus.iterdir() if p.is_file()}
    meta = build_corpus(BuildConfig(out=out, progress=False))
    assert meta["run"]["files_written"] == 0 and not meta["run"]["tokenizer_trained"]
    assert meta["run"]["splits_encoded"] == []
    assert {p.name: p.stat().st_mtime_ns for p in corpus.iterdir() if p.is_file()} == stamps
    # The command line says so too (and prints the summary table on stdout).
    done = subprocess.run([sys.executable, "-m", "dataset", "build", "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "up to date, nothing to do" in done.stdout and "| train |" in done.stdout


def write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def code(name: str, n: int = 20) -> str:
    return "".join(f"def {name}_{i}(x):\n    return x + {i}\n\n\n" for i in range(n))


def make_projects(root: Path) -> list[Path]:
    folders = []
    for i in range(6):
        folder = root / f"proj{i}"
        write(folder / "pkg" / "main.py", code(f"main{i}"))
        write(folder / "pkg" / "util.py", code(f"util{i}"))
        write(folder / "README.md", "# docs\n")
        folders.append(folder)
    write(folders[0] / "windows.py", "x = 1\r\ny = 2\r\n" + code("win"))
    write(folders[0] / "latin1.py", "nom = 'café'\n".encode("latin-1"))
    write(folders[1] / "huge.py", "x = 1\n" * 200_000)
    write(folders[1] / "min.py", "x = [" + "1, " * 600 + "]\n")
    write(folders[2] / "pb2.py", "# Generated by the protocol buffer compiler.  DO NOT EDIT!\n" + code("pb"))
    write(folders[3] / "copy.py", code("main0"))  # same bytes as proj0/pkg/main.py
    write(folders[4] / "node_modules" / "x.py", code("nm"))  # never read
    return folders


def test_local_folders_cleaning_and_splits(tmp_path):
    folders = make_projects(tmp_path / "src")
    out = tmp_path / "data"
    meta = build_corpus(BuildConfig(out=out, local=folders, vocab_size=300, progress=False))
    manifest = load_manifest(out)
    skipped = manifest["skipped"]
    assert skipped == {"not_python": 6, "not_utf8": 1, "too_large": 1, "minified": 1, "generated": 1,
                       "duplicate": 1}
    reasons = {(f["project"], f["path"]): f["reason"] for f in manifest["skipped_files"]}
    assert reasons[("local/proj0", "latin1.py")] == "not_utf8"
    assert reasons[("local/proj1", "huge.py")] == "too_large"
    assert reasons[("local/proj1", "min.py")] == "minified"
    assert reasons[("local/proj3", "copy.py")] == "duplicate"
    kept = {(f["project"], f["path"]): f for f in manifest["files"]}
    assert len(kept) == 6 * 2 + 1
    windows = kept[("local/proj0", "windows.py")]
    text = (out / "corpus/files" / windows["split"] / "local/proj0/windows.py").read_text()
    assert text.startswith("x = 1\ny = 2\n") and "\r" not in text
    # Six projects: every split non-empty, no project in two splits.
    by_project = {}
    for f in manifest["files"]:
        by_project.setdefault(f["project"], set()).add(f["split"])
    assert all(len(s) == 1 for s in by_project.values())
    assert {s for v in by_project.values() for s in v} == set(SPLITS)
    assert all(meta["splits"][s]["files"] > 0 for s in SPLITS)


def test_changed_input_is_rebuilt(tmp_path):
    folders = make_projects(tmp_path / "src")
    out = tmp_path / "data"
    config = BuildConfig(out=out, local=folders, vocab_size=300, progress=False)
    first = build_corpus(config)
    assert first["run"]["tokenizer_trained"] and first["run"]["splits_encoded"] == list(SPLITS)
    split_of = {f["project"]: f["split"] for f in load_manifest(out)["files"]}
    train_project = next(p for p, s in split_of.items() if s == "train")
    test_project = next(p for p, s in split_of.items() if s == "test")
    # Same length edit (a project's size decides which one fills an empty split, so keep sizes).
    edited = tmp_path / "src" / test_project.split("/")[1] / "pkg" / "main.py"
    edited.write_text(edited.read_text().replace("x + 1\n", "x - 1\n"))
    second = build_corpus(config)
    assert second["run"]["splits_encoded"] == ["test"] and not second["run"]["tokenizer_trained"]
    assert second["run"]["files_written"] == 1
    (tmp_path / "src" / train_project.split("/")[1] / "pkg" / "util.py").unlink()
    third = build_corpus(config)
    assert third["run"]["tokenizer_trained"] and third["run"]["splits_encoded"] == list(SPLITS)
    assert not list((out / "corpus/files").rglob(f"{train_project.split('/')[1]}/pkg/util.py"))
    fourth = build_corpus(BuildConfig(out=out, local=folders, vocab_size=320, progress=False))
    assert fourth["run"]["tokenizer_trained"] and fourth["run"]["splits_encoded"] == list(SPLITS)
    assert fourth["tokenizer_sha256"] != third["tokenizer_sha256"]


def test_bad_sources_give_clear_errors(tmp_path):
    out = tmp_path / "data"
    done = subprocess.run([sys.executable, "-m", "dataset", "build", "--out", str(out), "--no-progress",
                           "--local", str(tmp_path / "nope")], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert done.returncode == 1
    assert "is not a folder" in done.stderr and "no Python files" in done.stderr
    assert "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "dataset", "build", "--out", str(out),
                           "--github-list", str(tmp_path / "missing.txt")], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 2 and "cannot read --github-list" in done.stderr


def test_pypi_source_from_a_local_index(tmp_path, monkeypatch):
    """`pip download --no-binary :all:` against a real (local) package index serving a real sdist."""
    pytest.importorskip("setuptools")
    # Offline: build the sdist's metadata with this venv's setuptools instead of fetching one.
    monkeypatch.setenv("PIP_NO_BUILD_ISOLATION", "0")
    index = tmp_path / "index"
    src = tmp_path / "src" / "tinypkg-1.0"
    write(src / "setup.py", 'from setuptools import setup\nsetup(name="tinypkg", version="1.0", packages=["tinypkg"])\n')
    write(src / "PKG-INFO", "Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n")
    write(src / "tinypkg" / "__init__.py", code("tiny"))
    (index / "tinypkg").mkdir(parents=True)
    with tarfile.open(index / "tinypkg" / "tinypkg-1.0.tar.gz", "w:gz") as tf:
        tf.add(src, arcname="tinypkg-1.0")
    (index / "tinypkg" / "index.html").write_text('<a href="tinypkg-1.0.tar.gz">tinypkg-1.0.tar.gz</a>\n')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(index))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        folders = make_projects(tmp_path / "local")[:3]
        out = tmp_path / "data"
        meta = build_corpus(BuildConfig(
            out=out, local=folders, pypi=["tinypkg", "no-such-package-here"], vocab_size=300, progress=False,
            download=DownloadConfig(pip_index_url=f"http://127.0.0.1:{httpd.server_address[1]}/",
                                    timeout_s=5)))
    finally:
        httpd.shutdown()
        httpd.server_close()
    files = load_manifest(out)["files"]
    assert ("pypi/tinypkg", "tinypkg/__init__.py") in {(f["project"], f["path"]) for f in files}
    assert meta["skipped"]["download_failed"] == 1
    assert [p["source"] for p in meta["run"]["problems"]] == ["pypi:no-such-package-here"]
    assert {p.name for p in tmp_path.iterdir()} == {"index", "src", "local", "data"}
