"""Tokenizer training and corpus encoding, both cached by a key of what they depend on.

The tokenizer is a byte-level BPE (`tokenizers.ByteLevelBPETokenizer`): every byte is a base symbol,
so any text encodes and decodes back exactly. It is trained on the train split only, so valid/test
figures (chars/token, bits/char) are honest.
"""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import tokenizers
from tokenizers import ByteLevelBPETokenizer
from tqdm import tqdm

from dataset.atomic import write_atomic
from dataset.tokenizer import EOT, Tokenizer

# Everything that changes the learned vocabulary; part of the tokenizer cache key.
TOKENIZER_PARAMS = {"model": "ByteLevelBPE", "add_prefix_space": False, "trim_offsets": False,
                    "special_tokens": [EOT], "tokenizers_version": tokenizers.__version__}


def cache_key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def train_tokenizer(texts: list[str], vocab_size: int, min_frequency: int = 2) -> Tokenizer:
    bpe = ByteLevelBPETokenizer(add_prefix_space=False, trim_offsets=False)
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=min_frequency,
                            special_tokens=[EOT], show_progress=False)
    return Tokenizer.from_json(bpe.to_str())


def token_dtype(vocab_size: int):
    return np.uint16 if vocab_size <= 2 ** 16 else np.uint32


def encode_documents(tokenizer: Tokenizer, texts: list[str], desc: str = "encoding",
                     progress: bool = True, chunk_chars: int = 500_000) -> np.ndarray:
    """Encode documents into one flat array: eot doc_1 eot doc_2 eot ... doc_n eot.

    Every document is preceded by eot (the model's "start of a file") and followed by one.
    `encode_batch` runs in parallel on all cores (Rust threads; RAYON_NUM_THREADS limits them).
    The round trip `decode(encode(text)) == text` is checked for every document.
    """
    eot = tokenizer.eot_id
    ids: list[int] = [eot]
    with tqdm(total=sum(len(t) for t in texts), desc=desc, unit="char", unit_scale=True,
              disable=not progress, leave=False) as bar:
        start = 0
        while start < len(texts):
            # A batch of about chunk_chars characters: big enough to keep both cores busy.
            end, size = start, 0
            while end < len(texts) and (size < chunk_chars or end == start):
                size += len(texts[end])
                end += 1
            for text, doc in zip(texts[start:end], tokenizer.encode_batch(texts[start:end])):
                if tokenizer.decode_bytes(doc) != text.encode("utf-8"):
                    raise RuntimeError("tokenizer round trip failed: decode(encode(text)) != text")
                ids.extend(doc)
                ids.append(eot)
            bar.update(size)
            start = end
    return np.array(ids, dtype=token_dtype(tokenizer.vocab_size))


def save_array(path: Path, array: np.ndarray) -> None:
    """Write atomically: readers (a training run) never see half a file (dataset/atomic.py)."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    write_atomic(path, buffer.getbuffer())


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
