"""Safe extraction of zip and tar archives (downloaded repositories and source distributions).

Archives from the internet are untrusted. Only `.py` members are written, and only when:
- their path stays inside the target folder (no '..' component, no absolute path or drive letter:
  "zip slip"), checked on the name and again on the resolved output path;
- they are regular files (symlinks, hardlinks, devices are skipped: a link could point anywhere);
- they are under the per-file size cap, counted on the bytes actually inflated (the size a zip
  header declares can lie), and the archive stays under the total cap (zip bombs).
A corrupt archive is reported and skipped; a half-extracted folder is removed.
Nothing is ever written outside `target`: files go to a temporary sibling folder, renamed at the end.
"""
from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tqdm import tqdm


class ArchiveError(Exception):
    """The whole archive is rejected (corrupt, unknown format, over the total size cap)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason  # a key of dataset.clean.SKIP_REASONS


@dataclass
class ExtractResult:
    files: int = 0  # .py files written
    skipped: Counter = field(default_factory=Counter)  # reason -> count
    messages: list[str] = field(default_factory=list)  # one line per rejected entry


def safe_member_path(name: str) -> PurePosixPath | None:
    """The relative path a member may be written to, or None when it would escape the folder."""
    name = name.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):  # absolute, or C:... on Windows
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        return None
    return PurePosixPath(*parts)


def _copy_capped(source, dest: Path, cap: int, budget: int) -> int:
    """Copy a member stream to dest, stopping at `cap` bytes or the remaining total `budget`."""
    written = 0
    with open(dest, "wb") as out:
        while True:
            chunk = source.read(1 << 16)
            if not chunk:
                return written
            written += len(chunk)
            if written > cap:
                raise _EntryTooLarge()
            if written > budget:
                raise ArchiveError("archive_too_large", "total uncompressed size over the cap")
            out.write(chunk)


class _EntryTooLarge(Exception):
    pass


def _members(archive: Path):
    """(name, kind, declared size, opener) for each member; kind in file|dir|link|other."""
    if zipfile.is_zipfile(archive):
        zf = zipfile.ZipFile(archive)
        for info in zf.infolist():
            # Unix file type bits, when the zip was made on unix (0 otherwise: a plain file).
            file_type = stat.S_IFMT(info.external_attr >> 16)
            if info.is_dir():
                kind = "dir"
            elif file_type == stat.S_IFLNK:
                kind = "link"
            elif file_type and file_type != stat.S_IFREG:
                kind = "other"
            else:
                kind = "file"
            yield info.filename, kind, info.file_size, (lambda info=info: zf.open(info))
        zf.close()
        return
    try:
        tf = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise ArchiveError("corrupt_archive", f"not a valid zip or tar archive ({e})") from None
    with tf:
        for info in tf:
            kind = "file" if info.isreg() else "dir" if info.isdir() \
                else "link" if (info.issym() or info.islnk()) else "other"
            yield info.name, kind, info.size, (lambda info=info: tf.extractfile(info))


def extract_archive(archive: Path, target: Path, max_file_bytes: int, max_total_bytes: int,
                    keep=lambda path: path.suffix == ".py", progress: bool = False) -> ExtractResult:
    """Extract the members `keep` accepts from a zip or tar archive into `target` (replaced)."""
    archive, target = Path(archive), Path(target)
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    root = tmp.resolve()
    result = ExtractResult()
    total = 0
    try:
        with tqdm(desc=f"extracting {archive.name}", unit="entry", disable=not progress, leave=False) as bar:
            for name, kind, size, opener in _members(archive):
                bar.update(1)
                if kind == "dir":
                    continue
                rel = safe_member_path(name)
                if rel is None:
                    result.skipped["unsafe_path"] += 1
                    result.messages.append(f"{archive.name}: rejected entry {name!r}: path escapes the folder")
                    continue
                if kind in ("link", "other"):
                    result.skipped["link" if kind == "link" else "not_python"] += 1
                    result.messages.append(f"{archive.name}: skipped {kind} entry {name!r}")
                    continue
                if not keep(rel):
                    result.skipped["not_python"] += 1
                    continue
                if size > max_file_bytes:
                    result.skipped["entry_too_large"] += 1
                    result.messages.append(f"{archive.name}: skipped entry {name!r}: {size:,} bytes "
                                           f"uncompressed, over the {max_file_bytes:,}-byte cap")
                    continue
                dest = tmp / rel
                # Defence in depth: the resolved path must still be inside the folder.
                if not dest.parent.resolve().is_relative_to(root) and dest.parent.resolve() != root:
                    result.skipped["unsafe_path"] += 1
                    result.messages.append(f"{archive.name}: rejected entry {name!r}: path escapes the folder")
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                if dest.is_symlink() or dest.is_dir():
                    result.skipped["unsafe_path"] += 1
                    continue
                source = opener()
                try:
                    total += _copy_capped(source, dest, max_file_bytes, max_total_bytes - total)
                except _EntryTooLarge:
                    dest.unlink()
                    result.skipped["entry_too_large"] += 1
                    result.messages.append(f"{archive.name}: skipped entry {name!r}: inflates past "
                                           f"the {max_file_bytes:,}-byte cap")
                    continue
                finally:
                    source.close()
                result.files += 1
    except ArchiveError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, OSError, EOFError, ValueError,
            NotImplementedError) as e:
        # zlib.error is a subclass of none of these, handled below
        shutil.rmtree(tmp, ignore_errors=True)
        raise ArchiveError("corrupt_archive", f"corrupt archive ({type(e).__name__}: {e})") from None
    except Exception as e:
        import zlib
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, zlib.error):
            raise ArchiveError("corrupt_archive", f"corrupt archive (zlib: {e})") from None
        raise
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return result


def single_top_folder(folder: Path) -> Path:
    """GitHub and sdist archives wrap everything in one folder (repo-HEAD/, pkg-1.0/): step into it."""
    entries = [e for e in Path(folder).iterdir()]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return Path(folder)
