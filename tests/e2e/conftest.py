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
# scripts, the npm cache, the workers' network rules and the workspace lock files.
SERVICE_ENTRIES = {".runtime", ".npm-cache", ".network", ".locks"}


def stored_entries(path):
    """The entries of a data root, less the service's own."""
    return sorted(e for e in os.listdir(path) if e not in SERVICE_ENTRIES)


def process_children():
    """Each pid's children, read from /proc once: {ppid: [pid, ...]}."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return children


def descendants(*roots):
    """Every process below `roots` (not the roots themselves)."""
    children = process_children()
    out, pending = [], list(roots)
    while pending:
        for child in children.get(pending.pop(), []):
            out.append(child)
            pending.append(child)
    return out


def start_session_leaders(service):
    """Saves workspace "ws" with a JavaScript and a Python function that each start a `sleep` in a
    session of its own (out of the worker's process group), runs both, and returns the two pids.
    The service must allow child_process and subprocess."""
    node = ("const {spawn} = require('child_process');"
            "const p = spawn('/bin/sleep', ['300'], {detached: true, stdio: 'ignore'}); p.unref(); return p.pid;")
    python = ("import subprocess\n"
              "return subprocess.Popen(['/bin/sleep', '301'], start_new_session=True).pid")
    assert service.save("ws", {"node": {"code": node}, "py": {"code": python, "language": "python"}}).status_code == 200
    pids = []
    for fn in ("node", "py"):
        r = service.run("ws", fn)
        assert r.status_code == 200, r.text
        pids.append(r.json()["result"])
    return pids


def wait_for(predicate, timeout=10.0, interval=0.02):
    """Polls `predicate` until it returns a truthy value or `timeout` passes; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)



def one_worker(service, workspace, script):
    """The pid of the one live worker of `workspace` whose command line names `script`
    ("worker.js" or "worker.py"), spares that took the workspace over included."""
    def find():
        pids = []
        for pid in service.node_worker_pids(workspace):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if script.encode() in f.read():
                        pids.append(pid)
            except OSError:
                continue
        return pids
    pids = wait_for(find, timeout=10)
    assert len(pids) == 1, pids
    return pids[0]

# ---- cgroups ----

def own_cgroups(pid="self"):
    """{controller: directory} of the cgroups `pid` is in (v1 hierarchies by controller, "unified"
    for v2), from its mountinfo and /proc/PID/cgroup."""
    mounts = {}
    with open(f"/proc/{pid}/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            if not tail:
                continue
            if tail[0] == "cgroup":
                for option in tail[2].split(","):
                    mounts[option] = (fields[3], fields[4])
            elif tail[0] == "cgroup2":
                mounts.setdefault("unified", (fields[3], fields[4]))
    places = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in (controllers.split(",") if controllers else ["unified"]):
                if controller in mounts:
                    root, point = mounts[controller]
                    relative = path[len(root):] if root != "/" and path.startswith(root) else path
                    places[controller] = os.path.join(point, relative.lstrip("/"))
    return places


def v1_worker_hierarchies():
    """The v1 hierarchies the service makes its workers' cgroups in (memory, cpu, pids), when it
    uses v1 here: root, and no v2 hierarchy with the memory and cpu controllers. {} otherwise."""
    if os.geteuid() != 0:
        return {}
    places = own_cgroups()
    try:
        with open(os.path.join(places["unified"], "cgroup.controllers")) as f:
            if {"memory", "cpu"} <= set(f.read().split()):
                return {}
    except (KeyError, OSError):
        pass
    return {c: places[c] for c in ("memory", "cpu", "pids") if c in places}


def worker_cpu_lowered(pid):
    """Whether the worker `pid` runs lowered for a long call: its cgroup at the lowest weight with
    cgroups (this function answers False without them: see thread_nices)."""
    with open(f"/proc/{pid}/cgroup") as f:
        lines = f.read().splitlines()
    for line in lines:
        _, controllers, path = line.split(":", 2)
        hierarchy = "cpu" if "cpu" in controllers.split(",") else "unified" if controllers == "" else None
        if hierarchy and re.search(r"/customcode-\d+-w\d+$", path):
            directory = own_cgroups(pid)[hierarchy]
            with open(os.path.join(directory, "cpu.shares" if hierarchy == "cpu" else "cpu.weight")) as f:
                return f.read().strip() in ("1", "2")
    return False


@pytest.fixture(scope="session", autouse=True)
def session_cgroups():
    """On a cgroup v1 host, as root, the test session runs in cgroups of its own, named
    customcode-<CUSTOMCODE_TEST_TAG or e2e>-<pid>, so that the services it starts make their
    workers' cgroups (and clean up what a SIGKILLed one left) there and nowhere else. Removed
    at the end with whatever the services killed with SIGKILL left in them."""
    hierarchies = v1_worker_hierarchies()
    name = f"customcode-{os.environ.get('CUSTOMCODE_TEST_TAG', 'e2e')}-{os.getpid()}"
    made = {}
    for controller, parent in hierarchies.items():
        directory = os.path.join(parent, name)
        try:
            os.mkdir(directory)
            if controller == "cpu":  # as many busy tasks as CPUs, as the session's processes were
                with open(os.path.join(directory, "cpu.shares"), "w") as f:
                    f.write(str(1024 * os.cpu_count()))
            with open(os.path.join(directory, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
            made[controller] = (parent, directory)
        except OSError:
            continue
    yield made
    for controller, (parent, directory) in made.items():
        try:
            with open(os.path.join(parent, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        except OSError:
            pass
    time.sleep(0.5)  # workers of services killed with SIGKILL die with them (parent-death signal)
    for controller, (parent, directory) in made.items():
        for below, dirs, _ in os.walk(directory, topdown=False):
            for d in dirs:
                try:
                    os.rmdir(os.path.join(below, d))
                except OSError:
                    pass
        try:
            os.rmdir(directory)
        except OSError:
            pass


@pytest.fixture(scope="session")
def data_base():
    """Where services keep their data: a 0700 directory (what mktemp -d makes), as a user's would
    be. Workers reach their own workspace whatever the modes of its parents."""
    base = tempfile.mkdtemp(prefix="customcode-e2e-")
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
    of their own (each test uses its own workspace names). Its data directory is under pytest's
    0700 tmp_path_factory, untouched, and it must run with bubblewrap there."""
    service = Service(binary, tmp_path_factory.mktemp("shared"))
    service.start()
    health = service.get("/sys/healthcheck").json()
    assert health.get("isolation") == "bwrap", (health, service.log())
    yield service
    service.stop()


@pytest.fixture
def service(make_service):
    """A service with the default configuration and short timeouts where tests need them."""
    return make_service()


HELLO = {"hello": {"code": 'return "Hello " + name;', "parameters": {"name": {"type": "string"}}}}
