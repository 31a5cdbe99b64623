"""Remote sources: GitHub archives over HTTP(S) and source distributions from the package index.

`download_file` is careful because networks are not: a timeout on every request, retries with
exponential backoff (1 s, 2 s, 4 s, ...) on connection errors, timeouts and 5xx/429 answers, a size
cap, and resume: bytes already received stay in `<file>.part` and the next attempt (or the next build)
asks only for the rest with an HTTP Range request; a server that ignores Range sends it all again.
A finished archive that is valid is never fetched again. Permanent failures (404, size cap) are not
retried. Failures are reported and counted; the build goes on with the other sources.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import requests
import urllib3
from tqdm import tqdm

from dataset.extract import ArchiveError, extract_archive, single_top_folder
from dataset.sources import Project, folder_project

_OWNER_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar")


class DownloadError(Exception):
    def __init__(self, message: str, reason: str = "download_failed"):
        super().__init__(message)
        self.reason = reason  # a key of dataset.clean.SKIP_REASONS


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def slug(text: str) -> str:
    """A safe file name for any string (never '..', never a path separator)."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "x"
    return s[:120]


def github_source(spec: str, base_url: str) -> tuple[str, str]:
    """(project name, archive URL) for an `owner/repo` line or an archive URL."""
    spec = spec.strip()
    if spec.startswith(("http://", "https://")):
        parsed = urlparse(spec)
        parts = [p for p in parsed.path.split("/") if p]
        if len(parts) >= 3 and parts[2] == "archive":  # .../owner/repo/archive/REF.zip
            return f"github/{parts[0]}/{parts[1]}", spec
        name = parts[-1] if parts else parsed.netloc
        for suffix in _ARCHIVE_SUFFIXES:
            name = name.removesuffix(suffix)
        return f"url/{slug(parsed.hostname or 'host')}/{slug(name)}", spec
    if _OWNER_REPO.match(spec) and ".." not in spec:
        owner, repo = spec.split("/")
        return f"github/{owner}/{repo}", f"{base_url.rstrip('/')}/{owner}/{repo}/archive/HEAD.zip"
    raise DownloadError(f"not 'owner/repo' or an http(s) URL: {spec!r}")


def zip_is_valid(path: Path) -> bool:
    """A complete zip whose every member passes its CRC check."""
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.testzip() is None
    except Exception:  # BadZipFile, OSError, EOFError, zlib.error on corrupt deflate data, ...
        return False


def archive_is_valid(path: Path) -> bool:
    """A zip that passes its CRC checks, or a tar (optionally compressed) that reads to the end."""
    if zipfile.is_zipfile(path):
        return zip_is_valid(path)
    try:
        with tarfile.open(path, "r:*") as tf:
            for _ in tf:  # reading every header decompresses the whole stream
                pass
        return True
    except Exception:  # TarError, EOFError, zlib/lzma errors on a truncated or corrupt stream
        return False


def archive_suffix(url: str) -> str:
    path = urlparse(url).path.lower()
    return next((s for s in _ARCHIVE_SUFFIXES if path.endswith(s)), ".zip")


def _chunks(response: requests.Response):
    """The body as it arrives. `read1` hands over whatever bytes came before a dropped connection
    (iter_content's fixed-size reads would lose up to a chunk), so a resume starts exactly there."""
    while True:
        chunk = response.raw.read1(1 << 16, decode_content=True)
        if not chunk:
            return
        yield chunk


def download_file(url: str, dest: Path, timeout_s: float = 30.0, retries: int = 4, backoff_s: float = 1.0,
                  max_bytes: int = 200 * 2 ** 20, valid=archive_is_valid, progress: bool = True,
                  session: requests.Session | None = None) -> Path:
    """Download `url` to `dest` (resuming `dest.part`); returns dest or raises DownloadError."""
    dest = Path(dest)
    if dest.is_file() and (valid is None or valid(dest)):
        return dest  # already downloaded and valid
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    session = session or requests.Session()
    last_error = "no attempt made"
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff_s * 2 ** (attempt - 1))
        have = part.stat().st_size if part.is_file() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with session.get(url, stream=True, timeout=(timeout_s, timeout_s), headers=headers) as r:
                if r.status_code == 416:  # our range starts at or past the end: start over
                    part.unlink(missing_ok=True)
                    last_error = "HTTP 416 (range not satisfiable)"
                    continue
                if r.status_code == 429 or r.status_code >= 500:
                    last_error = f"HTTP {r.status_code}"
                    continue
                if r.status_code not in (200, 206):
                    raise DownloadError(f"HTTP {r.status_code} {r.reason or ''}".strip())
                resumed = r.status_code == 206 and have and \
                    r.headers.get("Content-Range", "").startswith(f"bytes {have}-")
                if not resumed:
                    have = 0  # the server sent the whole file
                length = r.headers.get("Content-Length")
                expected = have + int(length) if length and length.isdigit() else None
                if expected is not None and expected > max_bytes:
                    raise DownloadError(f"{expected:,} bytes, over the {max_bytes:,}-byte size cap")
                with open(part, "ab" if resumed else "wb") as out, \
                        tqdm(total=expected, initial=have, desc=f"downloading {dest.name}", unit="B",
                             unit_scale=True, disable=not progress, leave=False) as bar:
                    for chunk in _chunks(r):
                        have += len(chunk)
                        if have > max_bytes:
                            raise DownloadError(f"over the {max_bytes:,}-byte size cap")
                        out.write(chunk)
                        bar.update(len(chunk))
                if expected is not None and have != expected:
                    last_error = f"connection closed after {have:,} of {expected:,} bytes"
                    continue
        except DownloadError:
            part.unlink(missing_ok=True)
            raise
        except (requests.Timeout, urllib3.exceptions.ReadTimeoutError):
            last_error = f"timed out after {timeout_s:g} s"
            continue
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
            # refused, reset, dropped mid-body, ...
            last_error = f"{type(e).__name__}: {e}"
            continue
        if valid is not None and not valid(part):
            # Complete (the length matched, the stream ended cleanly) yet corrupt: the server's copy
            # is bad, downloading it again would not help.
            part.unlink(missing_ok=True)
            raise DownloadError("downloaded file is not a valid archive (corrupt)", "corrupt_archive")
        os.replace(part, dest)
        return dest
    raise DownloadError(f"gave up after {retries + 1} attempts: {last_error}")


def _marker_ok(marker: Path, archive: Path, folder: Path) -> dict | None:
    """The saved extraction record, if the archive and folder it describes are still there."""
    try:
        record = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    if folder.is_dir() and archive.is_file() and record.get("archive_bytes") == archive.stat().st_size:
        return record
    return None


def _extract_cached(archive: Path, folder: Path, extract_config, skipped: Counter, progress: bool) -> Path:
    """Extract once; later builds reuse the folder (the marker records what was skipped)."""
    marker = folder.with_name(folder.name + ".extracted.json")
    record = _marker_ok(marker, archive, folder)
    if record is None:
        result = extract_archive(archive, folder, extract_config.max_file_bytes,
                                 extract_config.max_total_bytes, progress=progress)
        for message in result.messages:
            log(f"warning: {message}")
        record = {"archive_bytes": archive.stat().st_size, "files": result.files,
                  "skipped": dict(result.skipped)}
        marker.write_text(json.dumps(record))
    skipped.update(record["skipped"])
    return single_top_folder(folder)


def fetch_github(specs: list[str], raw: Path, download_config, extract_config, skipped: Counter,
                 problems: list[dict], progress: bool = True) -> tuple[list[Project], list[dict]]:
    projects, sources = [], []
    raw.mkdir(parents=True, exist_ok=True)
    for spec in tqdm(specs, desc="repositories", unit="repo", disable=not progress or len(specs) < 2):
        try:
            name, url = github_source(spec, download_config.github_base_url)
        except DownloadError as e:
            log(f"error: --github {spec!r}: {e}; skipped")
            problems.append({"source": spec, "reason": str(e)})
            sources.append({"kind": "github", "spec": spec, "error": str(e)})
            continue
        base = slug(name.split("/", 1)[1].replace("/", "__"))
        archive, folder = raw / f"{base}{archive_suffix(url)}", raw / base
        try:
            if _marker_ok(folder.with_name(folder.name + ".extracted.json"), archive, folder) is None:
                download_file(url, archive, download_config.timeout_s, download_config.retries,
                              download_config.backoff_s, download_config.max_archive_bytes,
                              progress=progress)
            root = _extract_cached(archive, folder, extract_config, skipped, progress)
        except DownloadError as e:
            log(f"error: download of {url} failed: {e}; skipped, the build goes on")
            skipped[e.reason] += 1
            problems.append({"source": url, "reason": f"download failed: {e}"})
            sources.append({"kind": "github", "spec": spec, "url": url, "error": str(e)})
            continue
        except ArchiveError as e:
            log(f"error: {archive.name} from {url}: {e}; skipped")
            skipped[e.reason] += 1
            problems.append({"source": url, "reason": str(e)})
            sources.append({"kind": "github", "spec": spec, "url": url, "error": str(e)})
            archive.unlink(missing_ok=True)  # fetch it again next time
            continue
        projects.append(folder_project(name, root))
        sources.append({"kind": "github", "spec": spec, "url": url, "project": name})
    return projects, sources


def _pip_download(spec: str, dest: Path, tmp: Path, download_config) -> Path:
    """`pip download --no-deps --no-binary :all: SPEC -d dest`; returns the sdist it fetched."""
    existing = sorted(p for p in dest.glob("*") if p.name.endswith(_ARCHIVE_SUFFIXES)) if dest.is_dir() else []
    if existing:
        return existing[0]
    dest.mkdir(parents=True, exist_ok=True)
    tmp.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--no-cache-dir", "--disable-pip-version-check", "--no-input", "-q",
               "--timeout", str(int(download_config.timeout_s)), "-d", str(dest), spec]
    if download_config.pip_index_url:
        command[4:4] = ["--index-url", download_config.pip_index_url]
    # pip's temporary build folders go inside the data folder too.
    env = {**os.environ, "TMPDIR": str(tmp.resolve()), "PIP_NO_INPUT": "1"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env,
                              timeout=download_config.pip_timeout_s)
    except subprocess.TimeoutExpired:
        raise DownloadError(f"pip download timed out after {download_config.pip_timeout_s:g} s") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    found = sorted(p for p in dest.glob("*") if p.name.endswith(_ARCHIVE_SUFFIXES))
    if done.returncode != 0 or not found:
        lines = [l for l in (done.stderr or done.stdout).strip().splitlines() if l.strip()]
        raise DownloadError(lines[-1].strip() if lines else f"pip exited with {done.returncode}")
    return found[0]


def fetch_pypi(specs: list[str], raw: Path, download_config, extract_config, skipped: Counter,
               problems: list[dict], progress: bool = True) -> tuple[list[Project], list[dict]]:
    projects, sources = [], []
    for spec in tqdm(specs, desc="packages", unit="pkg", disable=not progress or len(specs) < 2):
        package = re.split(r"[<>=!~;\[ ]", spec.strip(), maxsplit=1)[0]
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", package or ""):
            log(f"error: --pypi {spec!r} is not a package name; skipped")
            problems.append({"source": spec, "reason": "not a package name"})
            continue
        name = f"pypi/{re.sub(r'[-_.]+', '-', package).lower()}"
        base = raw / slug(spec.strip())
        try:
            archive = _pip_download(spec.strip(), base / "download", raw / "tmp", download_config)
            root = _extract_cached(archive, base / "src", extract_config, skipped, progress)
        except DownloadError as e:
            log(f"error: pip download {spec}: {e}; skipped, the build goes on")
            skipped[e.reason] += 1
            problems.append({"source": f"pypi:{spec}", "reason": f"download failed: {e}"})
            sources.append({"kind": "pypi", "spec": spec, "error": str(e)})
            continue
        except ArchiveError as e:
            log(f"error: {spec}: {e}; skipped")
            skipped[e.reason] += 1
            problems.append({"source": f"pypi:{spec}", "reason": str(e)})
            sources.append({"kind": "pypi", "spec": spec, "error": str(e)})
            continue
        projects.append(folder_project(name, root))
        sources.append({"kind": "pypi", "spec": spec, "archive": archive.name, "project": name})
    return projects, sources
