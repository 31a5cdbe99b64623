"""Safe extraction: malicious and corrupt archives never write outside the target folder."""
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from dataset.extract import ArchiveError, extract_archive, safe_member_path, single_top_folder

CAP = 10_000


def make_zip(path: Path, entries) -> Path:
    """entries: (name, data) or (ZipInfo, data)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return path


def all_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def extract(archive, target, **kw):
    return extract_archive(archive, target, kw.pop("max_file_bytes", CAP), kw.pop("max_total_bytes", 10 * CAP), **kw)


def test_safe_member_path():
    assert safe_member_path("repo-HEAD/pkg/a.py").as_posix() == "repo-HEAD/pkg/a.py"
    assert safe_member_path("./a/./b.py").as_posix() == "a/b.py"
    for bad in ["../evil.py", "a/../../evil.py", "/etc/evil.py", "C:/evil.py", "a\\..\\..\\evil.py", ""]:
        assert safe_member_path(bad) is None, bad


def test_good_zip_only_python_written(tmp_path):
    archive = make_zip(tmp_path / "good.zip", [("repo-HEAD/pkg/__init__.py", "x = 1\n"),
                                              ("repo-HEAD/pkg/mod.py", "def f():\n    return 2\n"),
                                              ("repo-HEAD/README.md", "# hi\n")])
    target = tmp_path / "data" / "good"
    result = extract(archive, target)
    assert result.files == 2 and result.skipped["not_python"] == 1
    assert all_files(target) == {"repo-HEAD/pkg/__init__.py", "repo-HEAD/pkg/mod.py"}
    assert single_top_folder(target) == target / "repo-HEAD"
    assert (target / "repo-HEAD/pkg/mod.py").read_text() == "def f():\n    return 2\n"


def test_zip_slip_and_absolute_paths_rejected(tmp_path):
    outside_abs = tmp_path / "abs_evil.py"
    archive = make_zip(tmp_path / "evil.zip", [("../evil.py", "bad = 1\n"),
                                              ("ok/../../../evil2.py", "bad = 2\n"),
                                              (zipfile.ZipInfo(str(outside_abs)), "bad = 3\n"),
                                              ("fine.py", "good = 1\n")])
    target = tmp_path / "data" / "raw" / "evil"
    result = extract(archive, target)
    assert result.skipped["unsafe_path"] == 3
    assert any("escapes the folder" in m and "../evil.py" in m for m in result.messages)
    assert all_files(target) == {"fine.py"}
    # Nothing anywhere outside the target folder.
    assert not outside_abs.exists()
    assert all_files(tmp_path) == {"evil.zip", "data/raw/evil/fine.py"}


def test_symlink_entries_skipped(tmp_path):
    link = zipfile.ZipInfo("link.py")
    link.external_attr = 0o120777 << 16  # S_IFLNK: the data is the link target
    archive = make_zip(tmp_path / "links.zip", [(link, "/etc/passwd"), ("real.py", "x = 1\n")])
    target = tmp_path / "out"
    result = extract(archive, target)
    assert result.skipped["link"] == 1 and any("link" in m for m in result.messages)
    assert all_files(target) == {"real.py"}
    assert not (target / "link.py").is_symlink()


def test_tar_links_and_traversal_skipped(tmp_path):
    path = tmp_path / "pkg-1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        def add(name, data=b"", **kw):
            info = tarfile.TarInfo(name)
            for k, v in kw.items():
                setattr(info, k, v)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        add("pkg-1.0/good.py", b"y = 2\n")
        add("pkg-1.0/sym.py", type=tarfile.SYMTYPE, linkname="/etc/passwd")
        add("pkg-1.0/hard.py", type=tarfile.LNKTYPE, linkname="pkg-1.0/good.py")
        add("../escape.py", b"bad = 1\n")
        add(str(tmp_path / "abs.py"), b"bad = 2\n")
    target = tmp_path / "data" / "src"
    result = extract(path, target)
    assert result.files == 1
    assert result.skipped["link"] == 2 and result.skipped["unsafe_path"] == 2
    assert all_files(target) == {"pkg-1.0/good.py"}
    assert not (tmp_path / "escape.py").exists() and not (tmp_path / "abs.py").exists()


def test_entry_over_size_cap_skipped(tmp_path):
    big = "x = 1\n" * (CAP // 6 + 100)  # over the per-file cap, compresses to almost nothing
    archive = make_zip(tmp_path / "big.zip", [("big.py", big), ("small.py", "y = 2\n")])
    result = extract(archive, tmp_path / "out")
    assert result.skipped["entry_too_large"] == 1
    assert any("big.py" in m and "cap" in m for m in result.messages)
    assert all_files(tmp_path / "out") == {"small.py"}


def test_entry_lying_about_its_size_is_stopped(tmp_path):
    # A header declaring 6 bytes for a 60 kB entry: the cap counts inflated bytes, not the header.
    archive = make_zip(tmp_path / "liar.zip", [("liar.py", "x = 1\n" * 10_000)])
    data = bytearray(archive.read_bytes())
    size = (60_000).to_bytes(4, "little")
    for at in [i for i in range(len(data) - 4) if data[i:i + 4] == size]:
        data[at:at + 4] = (6).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    with pytest.raises(ArchiveError) as e:  # zipfile reads the declared 6 bytes; the CRC fails
        extract(archive, tmp_path / "out")
    assert e.value.reason == "corrupt_archive" and "CRC" in str(e.value)
    assert not (tmp_path / "out").exists()


def test_zip_bomb_total_cap_rejects_archive(tmp_path):
    entries = [(f"f{i}.py", "x = 1\n" * (CAP // 6 - 10)) for i in range(20)]  # each under, all over
    archive = make_zip(tmp_path / "bomb.zip", entries)
    target = tmp_path / "out"
    with pytest.raises(ArchiveError) as e:
        extract(archive, target, max_total_bytes=5 * CAP)
    assert e.value.reason == "archive_too_large" and "cap" in str(e.value)
    assert not target.exists() and not (tmp_path / "out.partial").exists()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip"])
def test_corrupt_archive_reported(tmp_path, damage):
    archive = make_zip(tmp_path / "c.zip", [("a.py", "print('hello world')\n" * 200)])
    data = bytearray(archive.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "garbage":
        data = bytearray(b"this is not an archive at all" * 10)
    else:  # corrupt the compressed bytes of the member: CRC or inflate error
        for i in range(40, 60):
            data[i] ^= 0xFF
    archive.write_bytes(bytes(data))
    target = tmp_path / "out"
    with pytest.raises(ArchiveError) as e:
        extract(archive, target)
    assert e.value.reason == "corrupt_archive"
    assert "corrupt" in str(e.value) or "not a valid" in str(e.value)
    assert not target.exists()
