"""What fine-tuning gained on your own code, in keystrokes: `scripts/finetune.py` ends with it.

    gain = typing_gain("checkpoints/default.pt", "checkpoints/personal.pt", "runs/personal/data")
    print(gain.summary())  # typing 4 of your held-out files (4,000 characters) with the project as context: ...

Bits per character say the fine-tuned model predicts your held-out files better; they do not say whether the
editor will save you keystrokes, and on a project whose other files the editor already sends as context the two
part ways (python-dateutil: held-out loss 1.007 -> 0.918 bits/char (-9 %), +0.4 points of keystrokes with the
project as context; docs/training.md "With the whole project as context"). So the run types some of the files it
held out:

    files    the held-out tenth of your files (dataset/personal.py): never trained on (they chose the best step,
             so the figure leans a little their way), in an order fixed by a hash of their paths (not by folder
             or size) until `max_chars` characters are typed, a file's first `chars_per_file` characters (cut at
             a line end) each
    typing   `python -m evaluate`'s project protocol (evaluate/metrics.py `simulate_typing`): one request per
             keystroke with the whole text before the cursor and the project's other files as `input_extra`
             (train and held-out files alike, chosen by `project.neighbours` as the editor's workspace context
             chooses them), the top suggestion accepted when it matches, one keystroke either way
    models   the starting checkpoint and the fine-tuned one, the same engine (int8 on the CPU), one after the other

The figure is keystrokes saved, 1 - keystrokes / characters, pooled over the files typed, with the paired 95 %
interval over those files (evaluate/confidence.py): a handful of files, so the user is told when the gain cannot
be told apart from none.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from dataset.corpus import corpus_dir

from .confidence import paired_difference
from .metrics import clip_text, simulate_typing
from .predictor import Predictor, PredictorConfig
from .project import EXTRA_CHARS, neighbours, split_projects


MIN_FILES_FOR_INTERVAL = 3  # two files resample into three multisets: their spread, not an interval


@dataclass
class TypingGain:
    # per file typed, the same files: (characters, keystrokes); pooled below, paired in the interval
    start_counts: dict[str, tuple[int, int]]
    tuned_counts: dict[str, tuple[int, int]]

    @property
    def files(self) -> int:
        return len(self.start_counts)

    @property
    def chars(self) -> int:
        return sum(c for c, _ in self.start_counts.values())

    @property
    def start_keystrokes(self) -> int:
        return sum(k for _, k in self.start_counts.values())

    @property
    def tuned_keystrokes(self) -> int:
        return sum(k for _, k in self.tuned_counts.values())

    @property
    def start_saved(self) -> float:
        return 1 - self.start_keystrokes / self.chars

    @property
    def tuned_saved(self) -> float:
        return 1 - self.tuned_keystrokes / self.chars

    def summary(self) -> str:
        return (f"typing {self.files} of your held-out files ({self.chars:,} characters) with the project as context: "
                f"the starting model saves {self.start_saved:.1%} of keystrokes, yours {self.tuned_saved:.1%} "
                f"({(self.tuned_saved - self.start_saved) * 100:+.1f} points{self.sureness()})")

    def sureness(self) -> str:
        """How far a few files can be trusted: the paired bootstrap interval over the files typed."""
        if len(self.start_counts) < MIN_FILES_FOR_INTERVAL:
            return ""
        d = paired_difference(self.start_counts, self.tuned_counts)
        verdict = "" if d.excludes_zero() else f"; on {d.files} files not told apart from no gain"
        return f", 95 % interval {100 * d.low:+.1f} … {100 * d.high:+.1f}{verdict}"


def held_out_requests(data_dir: str | Path, max_chars: int = 4000, chars_per_file: int = 1000,
                      extra_chars: int = EXTRA_CHARS) -> list[tuple[str, list[tuple[str, str]]]]:
    """(text to type, its input_extra) for the held-out files of a personal corpus (dataset/personal.py), in the
    order of a hash of their paths until `max_chars` characters; [] when it holds none out."""
    corpus_dir(data_dir)  # FileNotFoundError with the corpus's expected place
    held = split_projects(data_dir, "valid")
    trained = split_projects(data_dir, "train")
    candidates = []
    project_texts: dict[str, dict[str, str]] = {}  # each project's files (train and held-out) read once
    for project, files in held.items():
        texts = project_texts[project] = {rel: path.read_text(encoding="utf-8")
                                          for rel, path in {**trained.get(project, {}), **files}.items()}
        for rel in files:
            typed = clip_text(texts[rel], chars_per_file)
            if typed.strip():
                key = hashlib.blake2b(f"{project}/{rel}".encode(), digest_size=8).digest()
                candidates.append((key, project, rel, typed))
    requests, total = [], 0
    for _, project, rel, typed in sorted(candidates):
        if total >= max_chars:
            break
        requests.append((typed, neighbours(rel, project_texts[project], extra_chars)))  # only for the files typed
        total += len(typed)
    return requests


def type_all(predictor: Predictor, requests: list[tuple[str, list[tuple[str, str]]]]) -> list[tuple[int, int]]:
    """(characters, keystrokes) of each text typed from its top, the whole text before the cursor in each request."""
    counts = []
    for text, extra in requests:
        predictor.clear_cache()
        r = simulate_typing(predictor, text, None, 0, extra=extra)
        counts.append((r.chars, r.keystrokes))
    return counts


def typing_gain(start: str | Path, tuned: str | Path, data_dir: str | Path, max_chars: int = 4000,
                chars_per_file: int = 1000) -> TypingGain | None:
    """Keystrokes saved on the held-out files by the `start` and `tuned` checkpoints; None when none is held out."""
    requests = held_out_requests(data_dir, max_chars, chars_per_file)
    if not requests:
        return None
    by_model = []
    for path in (start, tuned):
        predictor = Predictor.from_checkpoint(str(path), config=PredictorConfig(), quantize="auto")
        by_model.append({str(i): c for i, c in enumerate(type_all(predictor, requests))})
    start_counts, tuned_counts = by_model
    return TypingGain(start_counts=start_counts, tuned_counts=tuned_counts)
