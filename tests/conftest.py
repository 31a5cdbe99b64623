"""Fixtures shared by the test modules."""
from __future__ import annotations

import pytest

from tests.tiny_model import make_tiny_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny real checkpoint file (tests/tiny_model.py), one copy per test module."""
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    make_tiny_checkpoint(path)
    return path
