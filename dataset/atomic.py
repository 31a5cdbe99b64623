"""Atomic file writes that say why they failed: corpus arrays and texts, checkpoints.

Each file is written to a temporary file beside it and renamed over it, so a reader (a training run, a server
watching its model file) never sees half a file, and a failed write leaves the file before it as it was.

The bytes are made in memory first and written with one plain write. numpy's and torch's own writers turn a
full disk into "138491 requested and 49088 written" or "RuntimeError: [enforce fail at inline_container.cc]
unexpected pos"; a plain write raises OSError(ENOSPC), which is raised again naming the file, its size and the
space left on its disk (`make train` on a full disk: `error: [Errno 28] could not write runs/personal/run/
best.pt (16.2 MB): No space left on device; 2.0 MB free there; ...`). The price is one copy of the file in
memory while it is written (a checkpoint of the shipped model with its optimizer: 16 MB).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def write_atomic(path: str | Path, data: bytes | memoryview, fsync: bool = False) -> Path:
    """Write `data` to `path` atomically (mode 0644, the folder created); `fsync`: on disk before the rename
    (checkpoints: a crash must not leave an empty file under the name). Raises OSError naming the file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; these are ordinary readable files
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):
            free = shutil.disk_usage(path.parent).free
            raise OSError(e.errno, f"could not write {path} ({len(data) / 2**20:.1f} MB): {e.strerror or e}; "
                                   f"{free / 2**20:.1f} MB free there; the file before it is untouched") from e
        raise
    return path
