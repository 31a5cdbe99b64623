"""A tiny encoded corpus in the layout of docs/DESIGN.md, for the model and training tests.

`make_tiny_corpus(dir)` trains a 320-token byte-level BPE on a few standard-library modules and writes
corpus/{tokenizer.json, train.npy, valid.npy, meta.json}: real text, real tokenizer, seconds to build.
"""
from __future__ import annotations

import json
import sysconfig
from pathlib import Path

import numpy as np

from dataset.tokenizer import EOT, Tokenizer

STDLIB = Path(sysconfig.get_paths()["stdlib"])
TRAIN_FILES = ["json/decoder.py", "json/encoder.py", "json/scanner.py", "textwrap.py", "shlex.py"]
VALID_FILES = ["json/__init__.py"]


def make_tiny_corpus(root: Path, vocab_size: int = 320) -> Path:
    from tokenizers import ByteLevelBPETokenizer
    corpus = Path(root) / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer(add_prefix_space=False, trim_offsets=False)
    bpe.train([str(STDLIB / f) for f in TRAIN_FILES], vocab_size=vocab_size, min_frequency=2,
              special_tokens=[EOT], show_progress=False)
    bpe.save(str(corpus / "tokenizer.json"))
    tok = Tokenizer.from_file(corpus / "tokenizer.json")
    splits = {}
    for split, names in (("train", TRAIN_FILES), ("valid", VALID_FILES)):
        ids = [tok.eot_id]
        for name in names:
            ids += tok.encode((STDLIB / name).read_text(encoding="utf-8")) + [tok.eot_id]
        np.save(corpus / f"{split}.npy", np.array(ids, dtype=np.uint16))
        splits[split] = {"tokens": len(ids), "files": len(names)}
    meta = {"vocab_size": tok.vocab_size, "eot_id": tok.eot_id, "dtype": "uint16",
            "tokenizer_sha256": tok.sha256, "splits": splits, "sources": ["stdlib (tiny test corpus)"]}
    (corpus / "meta.json").write_text(json.dumps(meta))
    return Path(root)


def test_tiny_corpus_reads_back_with_dataset_readers(tmp_path):
    from dataset.corpus import load_split, load_tokenizer
    make_tiny_corpus(tmp_path)
    tok = load_tokenizer(tmp_path)
    train = load_split(tmp_path, "train")
    assert train.dtype == np.uint16 and len(train) > 10_000
    assert int(train[0]) == tok.eot_id
    text = tok.decode(load_split(tmp_path, "valid")[1:-1])
    assert text == (STDLIB / VALID_FILES[0]).read_text(encoding="utf-8")
