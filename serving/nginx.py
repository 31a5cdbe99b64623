"""Scale out: N `server.py` replicas behind nginx (Debian's package, open-source nginx 1.22).

    python -m serving.nginx --listen 127.0.0.1:5000 127.0.0.1:5001 127.0.0.1:5002 > autocomplete.conf

prints the configuration (an `http {}` block's contents: put it in /etc/nginx/conf.d/); `Nginx` runs
nginx in the foreground with a private prefix (tests, benchmarks/replicas.py).

What the configuration does, and why:
- Affinity: `hash $client_key consistent` over the replicas, where `$client_key` is the request's
  `X-Client-Id` (else the client address), passed on as `X-Client-Id` so the replica's own worker choice
  (serving/pool.py) uses the same key: a client's keystrokes reach the same replica, worker and slot,
  where its prefix state is cached. Consistent hashing moves only the dead replica's clients elsewhere.
- Dead replicas: open-source nginx has no active health checks (`health_check` is nginx Plus), so this is
  passive: `max_fails=1 fail_timeout=5s` takes a replica out for 5 s after one failed attempt, and
  `proxy_next_upstream error timeout http_502 non_idempotent` retries that request once on the next
  replica (`proxy_next_upstream_tries 2`; `non_idempotent` because completions are POSTs that change
  nothing). A failure is a refused or reset connection (the replica is down), a timeout, or a 502: a
  replica whose engine workers are all gone (its `/health` is 503) answers `/autocomplete` with 502
  `no_worker` (and a request whose worker died under it with 502 `worker_lost`), so it is taken out the
  same way. 503 (overload: queue full or waited too long) is deliberately not a failure: with it, one
  burst marked both replicas down in a trial and nginx answered 502 to everyone for 5 s; it goes to the
  client with its Retry-After instead. A probe such as `curl -f http://replica/health` from a cron job or
  systemd timer is what to add for active checks; the passive ones are what the recipe test and
  benchmark use.
- Keep-alive to the replicas (`keepalive 32`, HTTP/1.1, empty Connection header): no TCP handshake per
  keystroke. `client_max_body_size 4m` matches the server's own cap (4 MiB, JSON 413 beyond).
- `X-Upstream` in every answer says which replica served it (affinity checks, debugging).
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

SITE = """\
map $http_x_client_id $client_key {{
    ""      $remote_addr;
    default $http_x_client_id;
}}

upstream autocomplete {{
    hash $client_key consistent;
{servers}
    keepalive 32;
}}

server {{
    listen {listen};
    client_max_body_size 4m;
    location / {{
        proxy_pass http://autocomplete;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_set_header X-Client-Id $client_key;
        proxy_next_upstream error timeout http_502 non_idempotent;
        proxy_next_upstream_tries 2;
        proxy_connect_timeout 2s;
        proxy_read_timeout 60s;
        add_header X-Upstream $upstream_addr always;
    }}
}}
"""


def site_config(listen: str, replicas: list[str], fail_timeout_s: int = 5) -> str:
    servers = "\n".join(f"    server {r} max_fails=1 fail_timeout={fail_timeout_s}s;" for r in replicas)
    return SITE.format(listen=listen, servers=servers)


def standalone_config(prefix: Path, listen: str, replicas: list[str]) -> str:
    """A whole nginx.conf for a private prefix (no root paths, foreground, logs under prefix)."""
    user = "user root;\n" if os.geteuid() == 0 else ""  # as root, workers would drop to nobody
    site = "\n".join("    " + line if line else "" for line in site_config(listen, replicas).splitlines())
    return (f"{user}worker_processes 1;\ndaemon off;\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log warn;\n"
            f"events {{ worker_connections 1024; }}\n"
            f"http {{\n    access_log off;\n    client_body_temp_path {prefix}/body;\n"
            f"    proxy_temp_path {prefix}/proxy;\n    fastcgi_temp_path {prefix}/fastcgi;\n"
            f"    uwsgi_temp_path {prefix}/uwsgi;\n    scgi_temp_path {prefix}/scgi;\n{site}\n}}\n")


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


class Nginx:
    """nginx in the foreground for `replicas`, listening on 127.0.0.1:`port`, as a context manager."""

    def __init__(self, prefix: Path, port: int, replicas: list[str]):
        self.prefix, self.port, self.replicas = Path(prefix), port, replicas
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        binary = nginx_binary()
        if binary is None:
            raise FileNotFoundError("nginx is not installed (apt-get install -y nginx)")
        self.prefix.mkdir(parents=True, exist_ok=True)
        conf = self.prefix / "nginx.conf"
        conf.write_text(standalone_config(self.prefix, f"127.0.0.1:{self.port}", self.replicas))
        check = subprocess.run([binary, "-t", "-p", str(self.prefix), "-c", str(conf)], capture_output=True,
                               text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t failed: {check.stderr}")
        self.proc = subprocess.Popen([binary, "-p", str(self.prefix), "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(self.url + "/nginx-probe", timeout=2)
                return self
            except requests.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start: {self.proc.stderr.read() if self.proc.stderr else ''}")
                time.sleep(0.05)

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text() if path.exists() else ""

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful stop
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Print the nginx configuration for server.py replicas.")
    p.add_argument("--listen", default="127.0.0.1:5000", help="where nginx listens")
    p.add_argument("--fail-timeout", type=int, default=5, help="seconds a failed replica stays out")
    p.add_argument("replicas", nargs="+", help="HOST:PORT of each server.py")
    args = p.parse_args(argv)
    sys.stdout.write(site_config(args.listen, args.replicas, args.fail_timeout))
    return 0


if __name__ == "__main__":
    sys.exit(main())
