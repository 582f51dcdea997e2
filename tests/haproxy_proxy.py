"""deploy/haproxy/haproxy.cfg run in front of replicas on this machine, for the tests and the
benchmark (tests/e2e/test_haproxy.py, tests/deploy/test_container.py, bench/replicas.py)."""
import os
import pathlib
import shutil
import socket
import subprocess
import time
import urllib.request

CONFIG = pathlib.Path(__file__).resolve().parents[1] / "deploy" / "haproxy" / "haproxy.cfg"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proxy:
    """haproxy -f haproxy.cfg on a free loopback port, in front of `ports` (replicas on
    127.0.0.1); balance="roundrobin" for the comparison mode."""

    def __init__(self, ports, balance=None, startup_timeout=20):
        assert shutil.which("haproxy"), "haproxy is missing: scripts/setup.sh installs it"
        self.port = free_port()
        env = dict(os.environ, CUSTOMCODE_PROXY_BIND=f"127.0.0.1:{self.port}")
        env.pop("CUSTOMCODE_BALANCE", None)
        if balance:
            env["CUSTOMCODE_BALANCE"] = balance
        for i, port in enumerate(ports, 1):
            env[f"CUSTOMCODE_REPLICA{i}"] = f"127.0.0.1:{port}"
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", str(CONFIG)], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + startup_timeout
        while not self.answers():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("haproxy did not start")
            time.sleep(0.05)

    def answers(self):
        try:
            with urllib.request.urlopen(self.url + "/sys/healthcheck", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
