"""Engine caches bounded in bytes, not only entries.

The engine's prefix cache and step cache are LRUs of 32 entries each, and an entry is a model state: for
the default model (4 layers, 255 cached positions, d 256, fp32) 2 MB of keys and values, so one
`Predictor` may hold ~130 MB of states, and a worker with several engine slots several times that. Here
every slot's two caches get a byte budget (`BytePrefixCache`: the LRU is evicted until the tensor
storages it holds fit, each counted once) and the project-context store its block/segment budgets, all
carved out of one per-worker figure (`--cache-mb`, worker.py), so the total is bounded whatever the
number of slots.
"""
from __future__ import annotations

from evaluate.cache import CacheEntry, PrefixCache


def storages(obj, found: dict[int, int] | None = None) -> dict[int, int]:
    """{storage address: bytes} of the tensor storages reachable from `obj` (tuples, lists, NamedTuples,
    CacheEntry); a view stands for its whole storage: that is what it keeps alive."""
    import torch
    found = {} if found is None else found
    if isinstance(obj, torch.Tensor):
        storage = obj.untyped_storage()
        found[storage.data_ptr()] = storage.nbytes()
    elif isinstance(obj, CacheEntry):
        storages(obj.state, found)
        storages(obj.logits, found)
    elif isinstance(obj, (tuple, list)):
        for x in obj:
            storages(x, found)
    return found


def tensor_bytes(obj) -> int:
    """Bytes of the tensor storages reachable from `obj`, each storage counted once."""
    return sum(storages(obj).values())


class BytePrefixCache(PrefixCache):
    """`PrefixCache` bounded by entries and by the bytes of the tensor storages its entries hold.

    A storage held by several entries is counted once: the states of a beam search's steps all share the
    context's keys (models/transformer.py, "Shared context"), so each one adds only its own few positions.
    """

    def __init__(self, capacity: int, max_bytes: int):
        super().__init__(capacity)
        self.max_bytes = max_bytes
        self.nbytes = 0
        self._storages: dict[tuple[int, ...], dict[int, int]] = {}  # entry -> its storages
        self._refs: dict[int, int] = {}  # storage -> entries holding it

    def put(self, ids, entry) -> None:
        if self.capacity == 0 or not ids:
            return
        held = storages(entry)
        if sum(held.values()) > self.max_bytes:
            return  # would evict everything and still not fit
        if ids in self.entries:
            self._release(ids)
        self.entries[ids] = entry
        self.entries.move_to_end(ids)
        self._storages[ids] = held
        for ptr, size in held.items():
            self._refs[ptr] = self._refs.get(ptr, 0) + 1
            if self._refs[ptr] == 1:
                self.nbytes += size
        while len(self.entries) > self.capacity or self.nbytes > self.max_bytes:
            old, _ = self.entries.popitem(last=False)
            self._release(old)

    def _release(self, ids) -> None:
        for ptr, size in self._storages.pop(ids, {}).items():
            self._refs[ptr] -= 1
            if self._refs[ptr] == 0:
                del self._refs[ptr]
                self.nbytes -= size

    def clear(self) -> None:
        super().clear()
        self._storages.clear()
        self._refs.clear()
        self.nbytes = 0


def bound_predictor(predictor, cache_bytes: int) -> None:
    """Give `predictor`'s prefix and step caches a byte budget: 3/8 prompts, 5/8 search steps. A prompt state
    serves every keystroke of a line, so a few per client suffice; typing through a suggestion reuses the
    states of the search steps that produced it, which takes ~16 of them (one typist on held-out files,
    in process: step-cache hits 77 / 199 / 547 / 848 / 848 with 2 / 4 / 8 / 16 / 32 entries of ~1.5 MB,
    forward calls 4,194 → 3,358). With 1/4 for steps (4 MB, 2 states) a worker's typist got 195 step hits
    where the unbounded engine got 1,002, and each keystroke cost ~3 ms more. Since beams share their
    context's keys (models/transformer.py), a step state adds only its own few positions to the budget, so
    the step cache is now bounded by its entries rather than its bytes."""
    prompt_bytes, step_bytes = cache_bytes * 3 // 8, cache_bytes * 5 // 8
    old, old_steps = predictor.cache, predictor.step_cache
    predictor.cache = BytePrefixCache(old.capacity, prompt_bytes)
    predictor.step_cache = BytePrefixCache(old_steps.capacity, step_bytes)


def cache_usage(predictor) -> dict[str, int]:
    out = {}
    for name in ("cache", "step_cache"):
        c = getattr(predictor, name, None)
        if isinstance(c, BytePrefixCache):
            out[f"{name}_bytes"] = c.nbytes
            out[f"{name}_max_bytes"] = c.max_bytes
    return out
