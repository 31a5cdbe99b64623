"""The scale-out recipe for real: two `server.py` replicas behind nginx (serving/nginx.py's configuration)
on 127.0.0.1. A client id always reaches the same replica; when one replica is killed mid-run, every
request still succeeds (clients retry once) and the survivor takes its clients. Skipped when nginx is not
installed (CI installs it: .ci/run)."""
import os
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

from benchmarks.server_load import ServerProcess
from serving.nginx import Nginx, nginx_binary, site_config

pytestmark = pytest.mark.skipif(nginx_binary() is None,
                                reason="nginx is not installed (apt-get install -y nginx; .ci/run does)")
ARGS = ("--torch-threads", "1", "--workers", "1", "--slots", "2")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(session, url, client, prompt="def add(a, b):\n    return a"):
    return session.post(url + "/autocomplete", json={"prompt": prompt}, headers={"X-Client-Id": client},
                        timeout=30)


def test_config_is_valid_nginx(tmp_path):
    conf = tmp_path / "nginx.conf"
    site = site_config("127.0.0.1:5000", ["127.0.0.1:5001", "127.0.0.1:5002"])
    conf.write_text(f"pid {tmp_path}/pid;\nerror_log {tmp_path}/err.log;\nevents {{}}\nhttp {{\n{site}\n}}\n")
    r = subprocess.run([nginx_binary(), "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "hash $client_key consistent" in site and "max_fails=1" in site and "non_idempotent" in site


def test_affinity_and_a_killed_replica_costs_no_request(checkpoint, tmp_path):
    with ServerProcess(checkpoint, *ARGS) as a, ServerProcess(checkpoint, *ARGS) as b, \
            Nginx(tmp_path / "nginx", free_port(), [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"]) as lb:
        # Affinity: each client id always lands on one replica; 16 ids use both.
        homes = {}
        with requests.Session() as s:
            for rnd in range(3):
                for c in range(16):
                    r = post(s, lb.url, f"client-{c}")
                    assert r.status_code == 200, r.text
                    homes.setdefault(c, set()).add(r.headers["X-Upstream"])
        assert all(len(h) == 1 for h in homes.values()), homes
        assert len(set().union(*homes.values())) == 2

        # 16 clients type; one replica is killed mid-run; clients retry a failed request once.
        victim = a
        victim_addr = f"127.0.0.1:{victim.port}"
        failures, served, retried, stop = [], [], [], threading.Event()

        def client(c):
            with requests.Session() as s:
                while not stop.is_set():
                    for attempt in (1, 2):
                        try:
                            r = post(s, lb.url, f"client-{c}")
                            if r.status_code == 200:
                                served.append(r.headers["X-Upstream"])
                                break
                            outcome = r.status_code
                        except requests.RequestException as e:
                            outcome = repr(e)
                        if attempt == 1:
                            retried.append(outcome)
                        else:
                            failures.append(outcome)

        threads = [threading.Thread(target=client, args=(c,)) for c in range(16)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        os.kill(victim.proc.pid, signal.SIGKILL)  # the whole replica: HTTP process (its workers follow)
        time.sleep(3.0)
        stop.set()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads)
        assert failures == [], (failures, lb.error_log()[-2000:])
        before = served.index(victim_addr) if victim_addr in served else None
        assert before is not None  # the victim served before it died ...
        survivor = f"127.0.0.1:{b.port}"
        assert served[-50:] == [survivor] * 50  # ... and afterwards the survivor serves everyone
        # its former clients now reach the survivor
        with requests.Session() as s:
            for c in range(16):
                r = post(s, lb.url, f"client-{c}")
                assert r.status_code == 200 and r.headers["X-Upstream"].endswith(str(b.port))
