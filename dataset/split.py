"""Split by project: every file of a project lands in the same split, chosen by a hash of its name.

Hashing the name (not a random draw) makes the split stable: adding a project never moves another one.
With few projects the fractions alone can leave valid or test empty, so when there are at least three
projects an empty split takes the smallest project (fewest characters, then name) from the split with
the most projects. With one or two projects the largest trains and the other validates.
"""
from __future__ import annotations

import hashlib

SPLITS = ("train", "valid", "test")


def project_unit(name: str) -> float:
    """A stable number in [0, 1) for a project name."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big") / 2 ** 64


def assign_splits(project_chars: dict[str, int], valid_fraction: float = 0.05,
                  test_fraction: float = 0.05, pinned: dict[str, str] | None = None) -> dict[str, str]:
    """Map each project name to "train", "valid" or "test".

    `pinned` maps project names to a split chosen by the user (e.g. real-world projects kept entirely
    out of training as the test split); the others are split by hash as usual.
    """
    if not (0 <= valid_fraction and 0 <= test_fraction and valid_fraction + test_fraction < 1):
        raise ValueError("valid and test fractions must be >= 0 and add up to less than 1")
    pinned = dict(pinned or {})
    unknown = sorted(p for p in pinned if p not in project_chars)
    if unknown:
        raise ValueError(f"pinned projects not in the corpus: {', '.join(unknown)} "
                         f"(known names look like {', '.join(sorted(project_chars)[:3])})")
    if any(s not in SPLITS for s in pinned.values()):
        raise ValueError(f"a pinned split must be one of {SPLITS}")
    if pinned:
        free = {p: c for p, c in project_chars.items() if p not in pinned}
        split = assign_splits(free, valid_fraction, test_fraction) if free else {}
        return {**split, **pinned}
    if len(project_chars) < 3:
        # Too few to split three ways: the largest trains, a second one (if any) validates.
        ranked = sorted(project_chars, key=lambda p: (-project_chars[p], p))
        return {p: "train" if i == 0 else "valid" for i, p in enumerate(ranked)}
    split = {}
    for name in sorted(project_chars):
        u = project_unit(name)
        split[name] = "valid" if u < valid_fraction else "test" if u < valid_fraction + test_fraction \
            else "train"
    if "train" not in split.values():
        split[max(split, key=lambda p: (project_chars[p], p))] = "train"
    for target, fraction in (("valid", valid_fraction), ("test", test_fraction)):
        if fraction == 0 or any(s == target for s in split.values()):
            continue
        members = {s: [p for p in split if split[p] == s] for s in SPLITS}
        donor = max(SPLITS, key=lambda s: (len(members[s]), s == "train"))
        smallest = min(members[donor], key=lambda p: (project_chars[p], p))
        split[smallest] = target
    return split
