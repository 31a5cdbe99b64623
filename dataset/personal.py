"""A corpus of the user's own folders, encoded with an existing tokenizer (the shipped model's): no new BPE.

    meta = build_personal_corpus(["~/code/proj"], "runs/personal/data", tokenizer, valid_fraction=0.1)

A folder's files are what `dataset/workspace.py` says is its project: in a git repository, what git would
commit (its ignore rules leave out data, build output, generated code); elsewhere every .py file.
Same layout as `python -m dataset build` (corpus/{train,valid,test}.npy, tokenizer.json, meta.json,
manifest.json, files/), so `train.py --data` reads it. Files go through the same cleaning as the default
corpus (too large, generated, minified, not UTF-8, duplicates are dropped). Splits are by file, not by
project: a held-out slice of the user's files (chosen by a hash of the path, so stable when files are
added) is the validation split that decides early stopping. `SourceError` says what is wrong with the
input (missing folder, no .py file, nothing left after cleaning) before anything is written.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np

from dataset.build import BuildConfig, _write_text_atomic, scan
from dataset.clean import SKIP_REASONS, CleanConfig
from dataset.encode import encode_documents, save_array, token_dtype
from dataset.notebooks import is_notebook
from dataset.sources import Project
from dataset.tokenizer import Tokenizer
from dataset.workspace import project_source_files


class SourceError(ValueError):
    """The folders given as sources cannot make a corpus (the message says why)."""


def _hash(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big")


def source_path(src: str | Path) -> Path:
    """A source folder as given (`~` expanded), before it is checked and resolved: how `gather` and the
    fine-tune's resume check read SOURCES alike."""
    return Path(os.path.expanduser(str(src)))


def gather(sources: list[str | Path], clean: CleanConfig | None = None, progress: bool = False,
           described: list[dict] | None = None) -> list[dict]:
    """Cleaned, de-duplicated files of the source folders; raises SourceError when there are none.

    A folder's files are its project's (`dataset/workspace.py`: in a git repository, what git would commit).
    `described`, when given, gets one entry per folder: its path, how it was listed and what git left out."""
    if not sources:
        raise SourceError("no source folder given (SOURCES=\"DIR [DIR ...]\")")
    projects, names = [], Counter()
    for src in sources:
        folder = source_path(src)
        if not folder.exists():
            raise SourceError(f"source folder {src} does not exist")
        if not folder.is_dir():
            raise SourceError(f"source {src} is not a folder")
        folder = folder.resolve()
        names[folder.name] += 1
        name = folder.name if names[folder.name] == 1 else f"{folder.name}-{names[folder.name]}"
        listing = project_source_files(folder, count_ignored=described is not None)
        if not listing.files:
            raise SourceError(f"source folder {src} has no .py files or Jupyter notebooks")
        projects.append(Project(f"local/{name}", folder, listing.files))
        if described is not None:
            described.append({"kind": "local", "path": str(folder), "listed_by": listing.by,
                              "py_files": sum(not is_notebook(f) for f in listing.files),
                              "notebooks": sum(is_notebook(f) for f in listing.files),
                              "files_ignored": listing.ignored,
                              "warnings": listing.warnings})
    skipped: Counter = Counter()
    skipped_files: list[dict] = []
    config = BuildConfig(progress=progress, clean=clean or CleanConfig())
    records = scan(projects, config, skipped, skipped_files)
    if not records:
        reasons = ", ".join(f"{n} {SKIP_REASONS.get(r, r)}" for r, n in sorted(skipped.items()) if r != "not_python")
        raise SourceError(f"no usable .py file or notebook in {' '.join(map(str, sources))}: every file was skipped "
                          f"({reasons or 'none readable'})")
    for r in records:
        r["split"] = "train"
    return records


def code_digest(records: list[dict]) -> str:
    """One sha256 for the code `gather` returned: over each file's project folder name, path and cleaned
    text's sha256, sorted. Equal digests: the same files with the same text (`finetune.py --if-changed`)."""
    h = hashlib.sha256()
    for project, path, sha in sorted((r["project"], r["path"], r["sha256"]) for r in records):
        h.update(f"{project}\0{path}\0{sha}\n".encode("utf-8"))
    return h.hexdigest()


# The most characters held out (~32K tokens). Early stopping validates the whole held-out split every 25 steps: a
# tenth of a large code base (7,554 files, 39.4M tokens) held out 3.9M tokens, whose every validation took 4.8
# minutes on one core (the 540-step budget: ~1.8 hours of them). At 200K characters (celery: 66K tokens) the
# validations still took 38 % of a run on a 2-core AVX2 CPU (12.6 s every 25 steps of 0.82 s), minutes the
# budget could give to steps; 32K tokens still tell the best step (docs/training.md "Faster steps").
MAX_VALID_CHARS = 100_000


def split_records(records: list[dict], valid_fraction: float, max_valid_chars: int = MAX_VALID_CHARS) -> None:
    """Mark about `valid_fraction` of the files (by characters, chosen by path hash), at most about
    `max_valid_chars` characters of them, as 'valid', in place.

    At least one file is held out when there are two or more; a single file is cut at a line boundary
    (its last `valid_fraction` becomes a separate 'valid' record)."""
    if valid_fraction <= 0:
        return
    if len(records) == 1:
        r = records[0]
        lines = r["text"].splitlines(keepends=True)
        cut = max(1, int(len(lines) * (1 - valid_fraction)))
        if cut >= len(lines):
            raise SourceError("only one short file: nothing left to hold out for validation")
        head, tail = "".join(lines[:cut]), "".join(lines[cut:])
        records[:] = [{**r, "text": head, "chars": len(head)},
                      {**r, "path": r["path"].removesuffix(".py") + ".tail.py", "text": tail, "chars": len(tail),
                       "split": "valid"}]  # the manifest names the file as written, so split_files finds it
        return
    order = sorted(records, key=lambda r: _hash(f"{r['project']}/{r['path']}"))
    target = min(valid_fraction * sum(r["chars"] for r in records), max_valid_chars)
    held = 0
    for r in order[:len(records) - 1]:  # never hold out every file
        if held >= target and held > 0:
            break
        r["split"] = "valid"
        held += r["chars"]


def build_personal_corpus(sources: list[str | Path], out: str | Path, tokenizer: Tokenizer,
                          valid_fraction: float = 0.1, clean: CleanConfig | None = None,
                          progress: bool = False, exclude: set[str] | None = None,
                          gathered: tuple[list[dict], list[dict]] | None = None) -> dict:
    """Write out/corpus from the source folders with `tokenizer`; returns meta (also in meta.json).

    `exclude`: relative paths ("pkg/mod.py") to leave out entirely (benchmarks hold files out this way).
    `gathered`: (records, described) of an earlier `gather(sources, clean, described=...)` call, so that a
    caller that checks the input before clearing its work folder does not read and clean every file twice."""
    if gathered is None:
        described: list[dict] = []
        records = gather(sources, clean, progress, described)
    else:
        records, described = [dict(r) for r in gathered[0]], gathered[1]
    if exclude:
        records = [r for r in records if r["path"] not in exclude]
        if not records:
            raise SourceError("every file was excluded")
    digest = code_digest(records)  # before split_records renames a single file's tail
    split_records(records, valid_fraction)
    corpus = Path(out) / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    dtype = np.dtype(token_dtype(tokenizer.vocab_size))
    splits = {}
    for s in ("train", "valid", "test"):
        docs = [r for r in records if r["split"] == s]
        ids = encode_documents(tokenizer, [r["text"] for r in docs], desc=f"encoding {s}", progress=progress) \
            if docs else np.array([tokenizer.eot_id], dtype=dtype)
        save_array(corpus / f"{s}.npy", ids.astype(dtype))
        splits[s] = {"file": f"{s}.npy", "files": len(docs), "chars": sum(r["chars"] for r in docs),
                     "tokens": int(ids.size)}
    files = corpus / "files"
    for r in records:
        _write_text_atomic(files / r["split"] / r["project"] / r["path"], r["text"])
    _write_text_atomic(corpus / "tokenizer.json", tokenizer.to_json())
    manifest = {"files": [{k: r[k] for k in ("project", "path", "split", "sha256", "chars")} for r in records]}
    _write_text_atomic(corpus / "manifest.json", json.dumps(manifest, indent=1))
    meta = {"vocab_size": tokenizer.vocab_size, "eot_id": tokenizer.eot_id, "dtype": dtype.name,
            "tokenizer_sha256": tokenizer.sha256, "splits": splits,
            "sources": described,
            "layout": "each document is preceded and followed by eot: eot d1 eot d2 eot ... dn eot",
            "personal": {"valid_fraction": valid_fraction, "code_sha256": digest}}
    _write_text_atomic(corpus / "meta.json", json.dumps(meta, indent=1))
    return meta
