"""dataset/prefetch.py: batches made ahead come in order with their generator state; errors reach the caller."""
from __future__ import annotations

import threading

import pytest

from dataset.prefetch import Prefetcher


def counter(fail_at: int | None = None):
    n = {"made": 0}

    def make():
        if n["made"] == fail_at:
            raise ValueError(f"broken batch {fail_at}")
        n["made"] += 1
        return f"batch {n['made']}", {"made": n["made"]}
    return make, n


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_batches_come_in_order_with_the_state_after_the_last_one_taken(depth):
    make, n = counter()
    batches = Prefetcher(make, {"made": 0}, depth)
    assert batches.state == {"made": 0}  # nothing taken yet: a checkpoint now resumes from the start
    try:
        for i in range(1, 6):
            assert batches.next() == f"batch {i}"
            assert batches.state == {"made": i}  # not the state of batches made ahead
        assert n["made"] <= 5 + depth + 1  # made ahead at most `depth` (+ one waiting to be queued)
    finally:
        batches.close()


def test_an_error_making_a_batch_is_raised_by_next_and_close_ends_the_thread():
    make, _ = counter(fail_at=2)
    batches = Prefetcher(make, None, 2)
    assert batches.next() == "batch 1" and batches.next() == "batch 2"
    with pytest.raises(ValueError, match="broken batch 2"):
        batches.next()
    batches.close()
    assert not any(t.name == "batch-prefetch" and t.is_alive() for t in threading.enumerate())
    endless = Prefetcher(counter()[0], None, 2)  # a full queue: close still ends the thread
    endless.close()
    assert not endless._thread.is_alive()


def test_the_batches_benchmark_times_both_loops_on_a_real_corpus(tmp_path):
    import argparse

    from benchmarks import batches
    from test_train_tiny_corpus import make_tiny_corpus
    args = argparse.Namespace(data=str(make_tiny_corpus(tmp_path / "data")), batch_rows=4, batch_seq=32,
                              batch_steps=3, batch_step_ms=[5.0])
    table = batches.run(args)
    row = next(line for line in table.splitlines() if line.startswith("| 5 ms |"))
    inline, ahead = (float(x) for x in row.strip("|").split("|")[1:])
    assert inline >= 5.0 and ahead >= 5.0  # every step waited its stand-in GPU time
