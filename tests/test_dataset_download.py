"""Downloads against a real HTTP server on 127.0.0.1 serving real zip archives built here."""
import io
import json
import sys
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dataset.build import BuildConfig, DownloadConfig, build_corpus
from dataset.download import DownloadError, download_file, github_source, zip_is_valid


def zip_bytes(files: dict[str, str], top: str = "repo-HEAD") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:  # stored: a big, resumable body
        for name, text in files.items():
            zf.writestr(f"{top}/{name}", text)
    return buffer.getvalue()


class ArchiveServer:
    """Serves `routes` (path -> bytes) with Range support; misbehaves on request:
    drop_after[path] = n: the first response sends only n bytes, then closes the connection;
    slow[path] = seconds: waits that long before answering."""

    def __init__(self):
        self.routes: dict[str, bytes] = {}
        self.drop_after: dict[str, int] = {}
        self.slow: dict[str, float] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                try:
                    self.answer()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test): nothing to report

            def answer(self):
                server.requests.append((self.path, self.headers.get("Range")))
                if self.path in server.slow:
                    time.sleep(server.slow[self.path])
                body = server.routes.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                range_header = self.headers.get("Range")
                if range_header and range_header.startswith("bytes=") and range_header.endswith("-"):
                    start = int(range_header[6:-1])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                drop = server.drop_after.pop(self.path, None)
                if drop is not None:  # promise the whole body, send part of it, hang up
                    self.wfile.write(body[start:start + drop])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                if not isinstance(sys.exc_info()[1], ConnectionError):  # clients that hung up: fine
                    super().handle_error(request, client_address)

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    with ArchiveServer() as s:
        yield s


def module(i: int) -> str:
    return f'"""Module {i}."""\n\n\ndef function_{i}(value):\n    return value * {i} + len(str(value))\n' * 30


def test_github_source_names():
    assert github_source("psf/requests", "https://github.com") == \
        ("github/psf/requests", "https://github.com/psf/requests/archive/HEAD.zip")
    assert github_source("http://127.0.0.1:1/a/b/archive/v1.zip", "x")[0] == "github/a/b"
    with pytest.raises(DownloadError, match="owner/repo"):
        github_source("../../etc", "https://github.com")


def test_download_works_and_is_not_repeated(server, tmp_path):
    body = zip_bytes({"a.py": module(1)})
    server.routes["/o/r/archive/HEAD.zip"] = body
    dest = download_file(server.url + "/o/r/archive/HEAD.zip", tmp_path / "r.zip", progress=False)
    assert dest.read_bytes() == body and zip_is_valid(dest)
    download_file(server.url + "/o/r/archive/HEAD.zip", tmp_path / "r.zip", progress=False)
    assert len(server.requests) == 1  # already downloaded and valid: not fetched again


def test_resume_after_connection_dropped(server, tmp_path):
    body = zip_bytes({f"m{i}.py": module(i) for i in range(20)})
    assert len(body) > 50_000
    server.routes["/big.zip"] = body
    server.drop_after["/big.zip"] = 20_000
    dest = download_file(server.url + "/big.zip", tmp_path / "big.zip", backoff_s=0.01, progress=False)
    assert dest.read_bytes() == body
    assert server.requests == [("/big.zip", None), ("/big.zip", "bytes=20000-")]
    assert not (tmp_path / "big.zip.part").exists()


def test_partial_file_from_earlier_run_is_resumed(server, tmp_path):
    body = zip_bytes({f"m{i}.py": module(i) for i in range(5)})
    server.routes["/x.zip"] = body
    (tmp_path / "x.zip.part").write_bytes(body[:1000])  # an earlier build was interrupted
    download_file(server.url + "/x.zip", tmp_path / "x.zip", progress=False)
    assert (tmp_path / "x.zip").read_bytes() == body
    assert server.requests == [("/x.zip", "bytes=1000-")]


def test_404_is_not_retried(server, tmp_path):
    with pytest.raises(DownloadError, match="404"):
        download_file(server.url + "/missing.zip", tmp_path / "m.zip", backoff_s=0.01, progress=False)
    assert len(server.requests) == 1 and not (tmp_path / "m.zip").exists()


def test_timeout_retried_then_reported(server, tmp_path):
    server.routes["/slow.zip"] = zip_bytes({"a.py": module(1)})
    server.slow["/slow.zip"] = 1.0
    start = time.perf_counter()
    with pytest.raises(DownloadError, match="timed out"):
        download_file(server.url + "/slow.zip", tmp_path / "s.zip", timeout_s=0.2, retries=1,
                      backoff_s=0.01, progress=False)
    assert len(server.requests) == 2  # first try and one retry
    assert time.perf_counter() - start < 5


def test_size_cap(server, tmp_path):
    server.routes["/huge.zip"] = zip_bytes({f"m{i}.py": module(i) for i in range(20)})
    with pytest.raises(DownloadError, match="size cap"):
        download_file(server.url + "/huge.zip", tmp_path / "h.zip", max_bytes=10_000, progress=False)
    assert not (tmp_path / "h.zip").exists() and not (tmp_path / "h.zip.part").exists()


def test_build_goes_on_when_sources_fail(server, tmp_path):
    """Good repos are built; a 404, a timeout and a corrupt archive are reported, not fatal."""
    for i, name in enumerate(["alpha", "beta", "gamma", "delta"]):
        server.routes[f"/team/{name}/archive/HEAD.zip"] = zip_bytes(
            {f"{name}/__init__.py": module(i), f"{name}/core.py": module(i + 10) + f"NAME = {name!r}\n"})
    server.routes["/team/slow/archive/HEAD.zip"] = zip_bytes({"s.py": module(99)})
    server.slow["/team/slow/archive/HEAD.zip"] = 1.0
    good = zip_bytes({"c.py": module(42) * 5})
    server.routes["/team/corrupt/archive/HEAD.zip"] = good[:200] + bytes(b ^ 0xFF for b in good[200:400]) + good[400:]
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w:gz") as tf:
        data = module(7).encode()
        info = tarfile.TarInfo("pkg-1.0/pkg/mod.py")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    server.routes["/dl/pkg-1.0.tar.gz"] = tar.getvalue()
    listing = ["team/alpha", "team/beta", "team/gamma", "team/delta", "team/missing", "team/slow",
               "team/corrupt", server.url + "/dl/pkg-1.0.tar.gz"]
    out = tmp_path / "data"
    config = BuildConfig(out=out, github=listing, vocab_size=300, progress=False,
                         download=DownloadConfig(github_base_url=server.url, timeout_s=0.3, retries=1,
                                                 backoff_s=0.01))
    meta = build_corpus(config)
    problems = {p["source"].split("/team/")[1].split("/")[0]: p["reason"] for p in meta["run"]["problems"]}
    assert set(problems) == {"missing", "slow", "corrupt"}
    assert "404" in problems["missing"] and "timed out" in problems["slow"]
    assert "corrupt" in problems["corrupt"]
    assert meta["skipped"]["download_failed"] == 2 and meta["skipped"]["corrupt_archive"] == 1
    projects = {f["project"] for f in json.loads((out / "corpus/manifest.json").read_text())["files"]}
    assert projects == {f"github/team/{n}" for n in ["alpha", "beta", "gamma", "delta"]} | {"url/127.0.0.1/pkg-1.0"}
    # Paths are inside the repository (the archive's top folder repo-HEAD/ is stepped into).
    assert len(list((out / "corpus/files").rglob("core.py"))) == 4
    assert all("repo-HEAD" not in str(p) for p in (out / "corpus/files").rglob("*.py"))
    # Everything the build wrote is under the data folder.
    assert {p.name for p in tmp_path.iterdir()} == {"data"}

    # Second build: archives are neither downloaded nor extracted again; failed ones are retried.
    seen = len(server.requests)
    meta2 = build_corpus(config)
    again = [path for path, _ in server.requests[seen:]]
    assert all(p.split("/")[2] in ("missing", "slow", "corrupt") for p in again), again
    assert meta2["run"]["files_written"] == 0 and not meta2["run"]["splits_encoded"]
