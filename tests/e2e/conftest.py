"""End-to-end fixtures: start the real customcode binary on a free port with a temporary data
directory, and talk to it over HTTP only."""
import http.client
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse

import pytest
import requests
import requests.adapters

from openapi_check import check_response

# Ports of the services the tests started: every response from one of them is checked against the
# OpenAPI document (docs/openapi.json), whichever helper or plain `requests` call received it.
_SERVICE_PORTS = set()
_real_send = requests.adapters.HTTPAdapter.send


def _checked_send(self, request, **kwargs):
    response = _real_send(self, request, **kwargs)
    parsed = urllib.parse.urlsplit(request.url)
    if parsed.hostname == "127.0.0.1" and parsed.port in _SERVICE_PORTS and not kwargs.get("stream"):
        check_response(request.method, request.path_url, response.status_code, response.headers, response.content)
    return response


requests.adapters.HTTPAdapter.send = _checked_send

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
                    _SERVICE_PORTS.add(self.port)
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(self.startup_timeout) or self.port is None:
            self.stop()
            raise RuntimeError("customcode did not start:\n" + self.log())
        return self

    def stop(self, sig=signal.SIGTERM, timeout=15):
        _SERVICE_PORTS.discard(self.port)
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

    def node_worker_pids(self, workspace=None):
        """Pids of the live workers that run a workspace's module (not the syntax checkers),
        optionally only those of `workspace`, from their command lines."""
        out = []
        for pid in self.worker_pids():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    args = f.read().decode(errors="replace").split("\0")
            except OSError:
                continue
            if "--spare" in args:
                # A spare worker that took a workspace over: the service log says which.
                owner = self._spare_owners().get(pid)
                if owner is not None and (workspace is None or owner == workspace):
                    out.append(pid)
                continue
            if "--module" not in args:
                continue
            module = args[args.index("--module") + 1] if args.index("--module") + 1 < len(args) else ""
            if workspace is None or os.path.basename(os.path.dirname(module)) == workspace:
                out.append(pid)
        return out

    SPARE_RE = re.compile(r"\[ws:(.*)\]\[pid (\d+)\] spare worker took over")

    def _spare_owners(self):
        owners = {}
        with self._lock:
            lines = list(self.lines)
        for line in lines:
            m = self.SPARE_RE.search(line)
            if m:
                owners[int(m.group(2))] = m.group(1)
        return owners

    def metric(self, name):
        """The value of one sample of /metrics, e.g. metric('customcode_runs_total{outcome="ok"}')."""
        for line in self.get("/metrics").text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return None

    def raw(self, method, path, body=None, headers=None, timeout=30):
        """A request whose target is sent byte for byte (requests normalises paths such as %2e%2e).
        Returns (status, headers, parsed JSON body or text)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            raw = response.read()
            check_response(method, path, response.status, dict(response.getheaders()), raw)
            data = raw.decode(errors="replace")
            try:
                parsed = json.loads(data)
            except ValueError:
                parsed = data
            return response.status, dict(response.getheaders()), parsed
        finally:
            conn.close()

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


# What the service itself keeps in its data root, whatever the requests: the staged bootstrap
# scripts and the npm cache.
SERVICE_ENTRIES = {".runtime", ".npm-cache", ".network"}


def stored_entries(path):
    """The entries of a data root, less the service's own."""
    return sorted(e for e in os.listdir(path) if e not in SERVICE_ENTRIES)


def wait_for(predicate, timeout=10.0, interval=0.02):
    """Polls `predicate` until it returns a truthy value or `timeout` passes; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


@pytest.fixture(scope="session")
def data_base():
    """Where services keep their data. Not under pytest's tmp_path: that lives in a 0700
    directory, and the sandboxed workers (uid 65534 when the tests run as root) must be able to
    reach their workspace directory, which is bound into their sandbox by path."""
    base = tempfile.mkdtemp(prefix="customcode-e2e-")
    os.chmod(base, 0o711)
    yield pathlib.Path(base)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def make_service(binary, tmp_path, data_base):
    """Factory: make_service(env={...}, data_dir=None) starts a service; all are stopped at the end."""
    started = []

    def factory(env=None, data_dir=None, start=True):
        service = Service(binary, data_dir or (data_base / f"{tmp_path.name}-data{len(started)}"), env)
        started.append(service)
        return service.start() if start else service

    yield factory
    for service in started:
        service.stop(signal.SIGKILL if service.proc and service.proc.poll() is None else signal.SIGTERM)


@pytest.fixture(scope="module")
def shared_service(binary, tmp_path_factory):
    """One default service for a whole test module, for tests that only save and run workspaces
    of their own (each test uses its own workspace names)."""
    service = Service(binary, tmp_path_factory.mktemp("shared"))
    service.start()
    yield service
    service.stop()


@pytest.fixture
def service(make_service):
    """A service with the default configuration and short timeouts where tests need them."""
    return make_service()


HELLO = {"hello": {"code": 'return "Hello " + name;', "parameters": {"name": {"type": "string"}}}}
