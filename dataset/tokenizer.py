"""The one tokenizer wrapper: byte-level BPE from `tokenizers`, with exact round trip.

Byte-level BPE maps every byte to a printable unicode character (GPT-2's table) before merging, so any
text encodes and `decode(encode(text)) == text` exactly. `token_bytes[i]` gives the raw bytes of id `i`:
the completion engine needs them to match typed text against tokens (token healing).

Fill-in-the-middle (dataset/fim.py): `with_fim_tokens()` adds three special tokens after the learned
vocabulary (ids V, V+1, V+2). The BPE model itself (vocabulary and merges, what `sha256` hashes) is unchanged,
so a corpus encoded with the plain tokenizer is valid for the FIM one and a checkpoint trained without them
can be continued with them (train.py grows its embedding by three rows).
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from tokenizers import Tokenizer as HFTokenizer

EOT = "<|endoftext|>"
FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE = "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"
FIM_TOKENS = (FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE)


@lru_cache(maxsize=1)
def _unicode_to_byte() -> dict[str, int]:
    # GPT-2's bytes_to_unicode table, inverted: printable bytes map to themselves, the rest to 256+n.
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, chars)}


class Tokenizer:
    def __init__(self, hf: HFTokenizer):
        self.hf = hf
        # Text is always text: "<|endoftext|>" typed in a file encodes as its characters, never as the
        # control token (a prompt cannot inject eot or FIM markers; the round trip stays exact).
        hf.encode_special_tokens = True
        self.vocab_size: int = hf.get_vocab_size()
        eot = hf.token_to_id(EOT)
        if eot is None:
            raise ValueError(f"tokenizer has no {EOT} token")
        self.eot_id: int = eot
        special = {i for i, t in hf.get_added_tokens_decoder().items() if t.special}
        fim = [hf.token_to_id(t) for t in FIM_TOKENS]
        # (prefix, suffix, middle) ids when the tokenizer has the FIM tokens, else None
        self.fim_ids: tuple[int, int, int] | None = tuple(fim) if None not in fim else None
        table = _unicode_to_byte()
        self.token_bytes: list[bytes] = []
        for i in range(self.vocab_size):
            piece = hf.id_to_token(i)
            if piece is None or i == eot or i in special or any(ch not in table for ch in piece):
                self.token_bytes.append(b"")  # special tokens produce no text
            else:
                self.token_bytes.append(bytes(table[ch] for ch in piece))

    @classmethod
    def from_file(cls, path: str | Path) -> "Tokenizer":
        return cls(HFTokenizer.from_file(str(path)))

    @classmethod
    def from_json(cls, text: str) -> "Tokenizer":
        return cls(HFTokenizer.from_str(text))

    def with_fim_tokens(self) -> "Tokenizer":
        """This tokenizer plus the three FIM special tokens (itself when it has them already)."""
        if self.fim_ids is not None:
            return self
        hf = HFTokenizer.from_str(self.to_json())
        hf.add_special_tokens(list(FIM_TOKENS))
        return Tokenizer(hf)

    def to_json(self) -> str:
        return self.hf.to_str()

    @property
    def sha256(self) -> str:
        # Hash of the vocabulary and merges, independent of JSON key order.
        canonical = json.dumps(json.loads(self.to_json())["model"], sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def encode(self, text: str) -> list[int]:
        return self.hf.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.hf.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids) -> str:
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def decode_bytes(self, ids) -> bytes:
        tb = self.token_bytes
        return b"".join(tb[int(i)] for i in ids)
