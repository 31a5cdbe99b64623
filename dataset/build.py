"""The corpus build: sources -> clean -> de-duplicate -> split -> tokenizer -> encoded ids.

`build_corpus(BuildConfig(...))` is the Python API; `python -m dataset build` is its command line.
Every stage is cached, so a second build on the same inputs only re-reads and hashes the sources:
- cleaned files are rewritten only when their content or split changed;
- the tokenizer is retrained only when the train files (their hashes), vocab size or params changed;
- a split is re-encoded only when the tokenizer or its files changed.
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dataset.atomic import write_atomic
from dataset.clean import CleanConfig, clean_source, sha256_text
from dataset.encode import (TOKENIZER_PARAMS, cache_key, encode_documents, file_sha256, save_array,
                            token_dtype, train_tokenizer)
from dataset.folder_lock import folder_lock
from dataset.notebooks import clean_notebook, is_notebook
from dataset.sources import Project, folder_project, stdlib_dir, stdlib_projects
from dataset.split import SPLITS, assign_splits
from dataset.tokenizer import Tokenizer

# Chosen by measurement (docs/dataset.md): 4096 gives ~3.5 chars/token on held-out stdlib files;
# 16384 gains ~14 % more characters per token but quadruples the embedding and softmax cost on a CPU.
DEFAULT_VOCAB_SIZE = 4096


@dataclass
class DownloadConfig:
    github_base_url: str = "https://github.com"  # owner/repo -> {base}/owner/repo/archive/HEAD.zip
    timeout_s: float = 30.0  # connect and read timeout of one request
    retries: int = 4  # attempts after the first one
    backoff_s: float = 1.0  # wait backoff_s * 2**attempt between attempts
    max_archive_bytes: int = 200 * 2 ** 20  # a bigger download is abandoned
    pip_timeout_s: float = 600.0
    pip_index_url: str | None = None  # pip's default index unless set


@dataclass
class ExtractConfig:
    max_file_bytes: int = 5 * 2 ** 20  # one uncompressed entry; .py files over 1 MB are skipped anyway
    max_total_bytes: int = 1024 * 2 ** 20  # all of an archive, uncompressed (zip bombs)


@dataclass
class BuildConfig:
    out: Path = Path("data")
    stdlib: bool = False  # with no source at all, the standard library is used
    stdlib_root: Path | None = None  # default: this interpreter's (sysconfig "stdlib")
    local: list[Path] = field(default_factory=list)
    pypi: list[str] = field(default_factory=list)
    github: list[str] = field(default_factory=list)  # owner/repo or archive URLs
    vocab_size: int = DEFAULT_VOCAB_SIZE
    min_frequency: int = 2
    valid_fraction: float = 0.05
    test_fraction: float = 0.05
    pinned: dict[str, str] = field(default_factory=dict)  # project -> split, chosen by the user
    workers: int = 2
    progress: bool = True
    clean: CleanConfig = field(default_factory=CleanConfig)
    download: DownloadConfig = field(default_factory=DownloadConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)

    def has_sources(self) -> bool:
        return bool(self.stdlib or self.local or self.pypi or self.github)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, text.encode("utf-8"))


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def gather_projects(config: BuildConfig, skipped: Counter, problems: list[dict]) -> tuple[list[Project], list[dict]]:
    """Every project of every source, downloading and extracting what is remote into out/raw."""
    projects: list[Project] = []
    sources: list[dict] = []
    raw = Path(config.out) / "raw"
    if config.stdlib or not config.has_sources():
        root = Path(config.stdlib_root) if config.stdlib_root else stdlib_dir()
        found = stdlib_projects(root)
        projects += found
        sources.append({"kind": "stdlib", "path": str(root), "projects": len(found)})
    for folder in config.local:
        folder = Path(folder).resolve()
        if not folder.is_dir():
            log(f"error: local source {folder} is not a folder; skipped")
            problems.append({"source": str(folder), "reason": "not a folder"})
            sources.append({"kind": "local", "path": str(folder), "projects": 0, "error": "not a folder"})
            continue
        projects.append(folder_project(f"local/{folder.name}", folder))
        sources.append({"kind": "local", "path": str(folder), "projects": 1})
    if config.github:
        from dataset.download import fetch_github
        found, described = fetch_github(config.github, raw / "github", config.download, config.extract,
                                         skipped, problems, progress=config.progress)
        projects += found
        sources += described
    if config.pypi:
        from dataset.download import fetch_pypi
        found, described = fetch_pypi(config.pypi, raw / "pypi", config.download, config.extract,
                                      skipped, problems, progress=config.progress)
        projects += found
        sources += described
    # Two sources naming the same project (e.g. one repo listed twice) would be read twice.
    unique: dict[str, Project] = {}
    for project in projects:
        unique.setdefault(project.name, project)
    return sorted(unique.values(), key=lambda p: p.name), sources


def scan(projects: list[Project], config: BuildConfig, skipped: Counter,
         skipped_files: list[dict]) -> list[dict]:
    """Read, clean and de-duplicate every candidate file; returns kept records with their text."""
    kept: list[dict] = []
    seen: dict[str, str] = {}  # sha256 -> "project/path" of the kept copy
    total = sum(len(p.files) for p in projects)
    with tqdm(total=total, desc="cleaning", unit="file", disable=not config.progress, leave=False) as bar:
        for project in projects:
            skipped.update(project.skipped)
            for rel in project.files:
                bar.update(1)
                path = project.root / rel
                try:
                    if is_notebook(rel):  # its code cells as a module (dataset/notebooks.py)
                        text, reason = clean_notebook(path, config.clean)
                    elif path.stat().st_size > config.clean.max_bytes:  # don't even read it
                        text, reason = None, "too_large"
                    else:
                        text, reason = clean_source(path.read_bytes(), config.clean)
                except OSError:
                    text, reason = None, "unreadable"
                sha = None
                if text is not None:
                    sha = sha256_text(text)
                    if sha in seen:
                        text, reason = None, "duplicate"
                if text is None:
                    skipped[reason] += 1
                    skipped_files.append({"project": project.name, "path": rel, "reason": reason})
                    continue
                seen[sha] = f"{project.name}/{rel}"
                kept.append({"project": project.name, "path": rel, "sha256": sha, "chars": len(text),
                             "text": text})
    return kept


def _write_files(corpus: Path, records: list[dict], old_manifest: dict) -> int:
    """Write cleaned files to corpus/files/<split>/<project>/<path>; unchanged ones are left alone."""
    files_dir = corpus / "files"
    old = {(f["project"], f["path"], f["split"]): f["sha256"] for f in old_manifest.get("files", [])}
    wanted = set()
    written = 0
    for r in records:
        target = files_dir / r["split"] / r["project"] / r["path"]
        wanted.add(target)
        if old.get((r["project"], r["path"], r["split"])) == r["sha256"] and target.is_file() \
                and target.stat().st_size == len(r["text"].encode("utf-8")):
            continue
        _write_text_atomic(target, r["text"])
        written += 1
    # Remove what an earlier build wrote and this one no longer keeps (a moved or dropped file).
    if files_dir.is_dir():
        for dirpath, dirnames, filenames in os.walk(files_dir, topdown=False):
            for name in filenames:
                path = Path(dirpath) / name
                if path not in wanted:
                    path.unlink()
            if dirpath != str(files_dir) and not os.listdir(dirpath):
                os.rmdir(dirpath)
    return written


def build_corpus(config: BuildConfig) -> dict:
    """Build (or bring up to date) `config.out/corpus`; returns the meta dict also saved as meta.json."""
    if config.vocab_size < 257 + 1:
        raise ValueError("vocab size must be at least 258 (256 bytes, the eot token and one merge)")
    start = time.perf_counter()
    out = Path(config.out)
    os.environ.setdefault("RAYON_NUM_THREADS", str(max(1, config.workers)))  # tokenizers' thread pool
    with folder_lock(out, "build"):
        corpus = out / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        skipped: Counter = Counter()
        skipped_files: list[dict] = []
        problems: list[dict] = []
        projects, sources = gather_projects(config, skipped, problems)
        records = scan(projects, config, skipped, skipped_files)
        if not records:
            raise RuntimeError("no Python files left after cleaning; nothing to build "
                               f"(skipped: {dict(skipped) or 'none'})")

        project_chars = Counter()
        for r in records:
            project_chars[r["project"]] += r["chars"]
        split_of = assign_splits(dict(project_chars), config.valid_fraction, config.test_fraction,
                                 config.pinned)
        for r in records:
            r["split"] = split_of[r["project"]]
        records.sort(key=lambda r: (SPLITS.index(r["split"]), r["project"], r["path"]))
        if len(project_chars) < 3:
            log(f"warning: only {len(project_chars)} project(s); valid/test cannot all be non-empty "
                "(splits are by project)")

        manifest_path = corpus / "manifest.json"
        old_manifest = _read_json(manifest_path)
        written = _write_files(corpus, records, old_manifest)
        manifest = {"files": [{k: r[k] for k in ("project", "path", "split", "sha256", "chars")}
                              for r in records],
                    "skipped": dict(sorted(skipped.items())),
                    "skipped_files": skipped_files,
                    "problems": problems}
        manifest_text = json.dumps(manifest, indent=1)
        if manifest_path.is_file() and manifest_path.read_text(encoding="utf-8") == manifest_text:
            pass
        else:
            _write_text_atomic(manifest_path, manifest_text)

        # Tokenizer: trained on the train split only, reused when its inputs are unchanged.
        old_meta = _read_json(corpus / "meta.json")
        by_split = {s: [r for r in records if r["split"] == s] for s in SPLITS}
        train_hashes = sorted(r["sha256"] for r in by_split["train"])
        if not train_hashes:
            raise RuntimeError("the train split is empty")
        tok_key = cache_key(train_hashes, config.vocab_size, config.min_frequency, TOKENIZER_PARAMS)
        tok_path = corpus / "tokenizer.json"
        old_cache = old_meta.get("cache", {})
        trained = False
        if old_cache.get("tokenizer_key") == tok_key and tok_path.is_file() \
                and file_sha256(tok_path) == old_cache.get("tokenizer_file_sha256"):
            tokenizer = Tokenizer.from_file(tok_path)
        else:
            log(f"training tokenizer: byte-level BPE, vocab {config.vocab_size}, "
                f"{len(train_hashes)} train files")
            t0 = time.perf_counter()
            tokenizer = train_tokenizer([r["text"] for r in by_split["train"]], config.vocab_size,
                                        config.min_frequency)
            _write_text_atomic(tok_path, tokenizer.to_json())
            trained = True
            log(f"tokenizer trained in {time.perf_counter() - t0:.1f} s "
                f"(vocab {tokenizer.vocab_size}, eot id {tokenizer.eot_id})")

        # Encoded splits: re-encoded only when the tokenizer or the split's files changed.
        dtype = np.dtype(token_dtype(tokenizer.vocab_size))
        splits_meta = {}
        encoded = []
        for s in SPLITS:
            docs = by_split[s]
            key = cache_key(tokenizer.sha256, [r["sha256"] for r in docs], dtype.name)
            path = corpus / f"{s}.npy"
            old = old_meta.get("splits", {}).get(s, {})
            if old.get("key") == key and path.is_file() and old.get("file_bytes") == path.stat().st_size:
                tokens = old["tokens"]
            else:
                ids = encode_documents(tokenizer, [r["text"] for r in docs], desc=f"encoding {s}",
                                       progress=config.progress)
                save_array(path, ids)
                tokens = int(ids.size)
                encoded.append(s)
            chars = sum(r["chars"] for r in docs)
            splits_meta[s] = {"file": path.name, "key": key, "file_bytes": path.stat().st_size,
                              "projects": len({r["project"] for r in docs}), "files": len(docs),
                              "chars": chars, "bytes": sum(len(r["text"].encode("utf-8")) for r in docs),
                              "tokens": tokens,
                              # eot tokens (one per document plus the leading one) carry no characters
                              "chars_per_token": round(chars / max(1, tokens - len(docs) - 1), 4)}

        meta = {"vocab_size": tokenizer.vocab_size, "eot_id": tokenizer.eot_id, "dtype": dtype.name,
                "tokenizer_sha256": tokenizer.sha256, "splits": splits_meta, "sources": sources,
                "tokenizer_params": {**TOKENIZER_PARAMS, "vocab_size": config.vocab_size,
                                     "min_frequency": config.min_frequency},
                "skipped": dict(sorted(skipped.items())),
                "layout": "each document is preceded and followed by eot: eot d1 eot d2 eot ... dn eot",
                "cache": {"tokenizer_key": tok_key, "tokenizer_file_sha256": file_sha256(tok_path)}}
        meta_path = corpus / "meta.json"
        meta_text = json.dumps(meta, indent=1)
        if not (meta_path.is_file() and meta_path.read_text(encoding="utf-8") == meta_text):
            _write_text_atomic(meta_path, meta_text)
        # Not saved (it would change every run): what this run did, for the summary and tests.
        meta["run"] = {"seconds": round(time.perf_counter() - start, 2), "files_written": written,
                       "tokenizer_trained": trained, "splits_encoded": encoded,
                       "problems": problems}
        return meta
