"""Reading a built corpus (what training and evaluation call).

    ids = load_split("data", "train")          # np.ndarray of token ids (uint16), memory-mapped
    tokenizer = load_tokenizer("data")           # dataset.tokenizer.Tokenizer
    for project, path in split_files("data", "test"): ...   # held-out cleaned files
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dataset.split import SPLITS
from dataset.tokenizer import Tokenizer


def corpus_dir(data_dir: str | Path) -> Path:
    """`data_dir` may be the data folder (holding corpus/) or the corpus folder itself."""
    data_dir = Path(data_dir)
    corpus = data_dir / "corpus" if (data_dir / "corpus").is_dir() else data_dir
    if not (corpus / "meta.json").is_file():
        raise FileNotFoundError(f"no corpus in {data_dir} (missing corpus/meta.json): run "
                                f"`python -m dataset build --out {data_dir}` (or `make data`)")
    return corpus


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")


def load_meta(data_dir: str | Path) -> dict:
    return json.loads((corpus_dir(data_dir) / "meta.json").read_text(encoding="utf-8"))


def load_split(data_dir: str | Path, split: str, mmap: bool = True) -> np.ndarray:
    """Flat token ids of one split: eot doc_1 eot doc_2 eot ... doc_n eot."""
    _check_split(split)
    return np.load(corpus_dir(data_dir) / f"{split}.npy", mmap_mode="r" if mmap else None)


def load_tokenizer(data_dir: str | Path) -> Tokenizer:
    return Tokenizer.from_file(corpus_dir(data_dir) / "tokenizer.json")


def load_manifest(data_dir: str | Path) -> dict:
    return json.loads((corpus_dir(data_dir) / "manifest.json").read_text(encoding="utf-8"))


def split_files(data_dir: str | Path, split: str) -> list[tuple[str, Path]]:
    """(project, path of the cleaned file) for every file of a split, in a stable order."""
    _check_split(split)
    corpus = corpus_dir(data_dir)
    return [(f["project"], corpus / "files" / split / f["project"] / f["path"])
            for f in load_manifest(data_dir)["files"] if f["split"] == split]
