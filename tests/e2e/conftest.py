"""End-to-end fixtures: start the real customcode binary on a free port with a temporary data
directory, and talk to it over HTTP only."""
import os
import re
import signal
import subprocess
import threading
import time

import pytest
import requests

DEFAULT_BINARY = os.path.join(os.path.dirname(__file__), "..", "..", "build", "customcode")


def pytest_addoption(parser):
    parser.addoption("--binary", default=os.environ.get("CUSTOMCODE_BINARY", DEFAULT_BINARY),
                     help="path to the customcode binary")


@pytest.fixture(scope="session")
def binary(request):
    path = os.path.abspath(request.config.getoption("--binary"))
    assert os.access(path, os.X_OK), f"customcode binary not found at {path}: build it first"
    return path


class Service:
    """One running customcode process."""

    LISTEN_RE = re.compile(r"listening on [^ ]+:(\d+)")

    def __init__(self, binary, data_dir, env=None, startup_timeout=15):
        self.binary = binary
        self.data_dir = str(data_dir)
        self.extra_env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.proc = None
        self.port = None
        self.lines = []
        self._lock = threading.Lock()
        self.session = requests.Session()

    # ---- lifecycle ----

    def start(self):
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PORT": "0",
            "HOST": "127.0.0.1",
            "FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH": self.data_dir,
            "LOG_LEVEL": "info",
        }
        env.update(self.extra_env)
        self.lines = []
        self.port = None
        self.proc = subprocess.Popen([self.binary], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        ready = threading.Event()

        def pump():
            for line in self.proc.stdout:
                with self._lock:
                    self.lines.append(line.rstrip("\n"))
                m = self.LISTEN_RE.search(line)
                if m and self.port is None:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(self.startup_timeout) or self.port is None:
            self.stop()
            raise RuntimeError("customcode did not start:\n" + self.log())
        return self

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def restart(self, **env):
        self.stop()
        self.extra_env.update(env)
        self.session = requests.Session()
        return self.start()

    def log(self):
        with self._lock:
            return "\n".join(self.lines)

    # ---- HTTP ----

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def request(self, method, path, timeout=30, **kwargs):
        return self.session.request(method, self.url + path, timeout=timeout, **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)

    def save(self, workspace, functions, **extra):
        body = {"functions": functions, **extra}
        return self.post(f"/v2/functions/{workspace}", json=body)

    def run(self, workspace, function, parameters=None, timeout=60, **kwargs):
        body = {} if parameters is None else {"parameters": parameters}
        return self.post(f"/v2/functions/{workspace}/run/{function}", json=body, timeout=timeout, **kwargs)

    def worker_pids(self):
        """Pids of the live worker processes (children of the service), from /proc."""
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.proc.pid and fields[0] != "Z":
                    pids.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
        return pids

    def zombies(self):
        out = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.proc.pid and fields[0] == "Z":
                    out.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
        return out


def wait_for(predicate, timeout=10.0, interval=0.02):
    """Polls `predicate` until it returns a truthy value or `timeout` passes; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


@pytest.fixture
def make_service(binary, tmp_path):
    """Factory: make_service(env={...}, data_dir=None) starts a service; all are stopped at the end."""
    started = []

    def factory(env=None, data_dir=None, start=True):
        service = Service(binary, data_dir or (tmp_path / f"data{len(started)}"), env)
        started.append(service)
        return service.start() if start else service

    yield factory
    for service in started:
        service.stop(signal.SIGKILL if service.proc and service.proc.poll() is None else signal.SIGTERM)


@pytest.fixture
def service(make_service):
    """A service with the default configuration and short timeouts where tests need them."""
    return make_service()


HELLO = {"hello": {"code": 'return "Hello " + name;', "parameters": {"name": {"type": "string"}}}}
