"""The container image: builds it (scripts/image.sh, which makes the Debian 13 base with debootstrap
when it cannot be pulled), then

- runs the sandbox attacks of tests/attacks.py and the network ones (tests/network_clients.py)
  against the service in a container started with the README's options, asserting that the
  sandbox is bubblewrap and the workers' network isolated (no fallback);
- starts two containers on one shared volume, puts deploy/haproxy/haproxy.cfg in front, and
  checks the README's curl examples, save/run/delete, concurrent saves through both replicas,
  the drain on SIGTERM, and a replica killed under load.

Runs with podman, or with docker where podman is missing or ENGINE=docker; skipped only where
neither is installed."""
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import threading
import time

import pytest
import requests

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tests"))
import attacks  # noqa: E402 - tests/attacks.py
from haproxy_proxy import Proxy, free_port  # noqa: E402 - tests/haproxy_proxy.py
import network_clients  # noqa: E402 - tests/network_clients.py
from network_clients import CLIENTS, blocked, call  # noqa: E402

IMAGE = os.environ.get("CUSTOMCODE_TEST_IMAGE", "localhost/customcode:e2e")
# ENGINE=podman|docker picks the engine, as for scripts/image.sh; podman by default.
ENGINE = shutil.which(os.environ.get("ENGINE") or "podman") or shutil.which("docker")
UNIQUE = f"customcode-container-e2e-{os.getpid()}"
# What the sandbox and the workers' network need in a container, and nothing more (README,
# "Deploy"): bubblewrap mounts a fresh /proc, which a masked one forbids; pasta needs the tun device.
# Docker's default seccomp profile also refuses the namespace calls without CAP_SYS_ADMIN, and its
# AppArmor profile (where AppArmor is on) the mounts.
if ENGINE and os.path.basename(ENGINE) == "docker":
    SANDBOX_OPTIONS = ["--security-opt", "systempaths=unconfined", "--security-opt", "seccomp=unconfined",
                       "--security-opt", "apparmor=unconfined", "--device", "/dev/net/tun"]
else:
    SANDBOX_OPTIONS = ["--security-opt", "unmask=/proc/*", "--device", "/dev/net/tun"]
# The capabilities a root service needs (README): the sandboxed container runs with these only.
# One --cap-add each: docker refuses a comma-separated list.
CAPABILITIES = ["--cap-drop", "ALL"] + [a for cap in ("SETUID", "SETGID", "SETFCAP", "KILL", "NET_BIND_SERVICE")
                                        for a in ("--cap-add", cap)]
# Explicit limits, within this process's own (podman's default open-file limit can exceed them).
NOFILE = min(16384, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
NPROC = min(8192, resource.getrlimit(resource.RLIMIT_NPROC)[1])
HELLO = {"hello": {"code": 'return "Hello " + name;', "parameters": {"name": {"type": "string"}}}}

pytestmark = pytest.mark.skipif(ENGINE is None, reason="neither podman nor docker is installed: "
                                                       "the container test needs one of them")


def engine(*args, check=True, timeout=120):
    command = [ENGINE]
    if os.path.basename(ENGINE) == "podman" and shutil.which("runc"):
        command += ["--runtime", "runc"]
    out = subprocess.run(command + list(args), capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(command + list(args))}: {out.stderr}")
    return out


def remove(*names):
    """Removes containers at once, then checks that they are all gone."""
    for name in names:
        if os.path.basename(ENGINE) == "podman":
            engine("rm", "-f", "-t", "0", name, check=False)  # without -t, podman waits the stop timeout
        else:
            engine("rm", "-f", "-v", name, check=False)
    left = [n for n in names if engine("container", "inspect", n, check=False).returncode == 0]
    assert not left, f"containers still there: {left}"


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def answers(url):
    try:
        return requests.get(url + "/sys/healthcheck", timeout=2).status_code == 200
    except requests.RequestException:
        return False


class Replica:
    def __init__(self, name, volume):
        self.name, self.volume, self.port = name, volume, free_port()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def run(self):
        # Limits are explicit: the engine's defaults differ between machines.
        engine("run", "-d", "--name", self.name, *SANDBOX_OPTIONS,
               "--ulimit", f"nofile={NOFILE}:{NOFILE}", "--ulimit", f"nproc={NPROC}:{NPROC}",
               # debug: a worker logs when a call has run for FUNCTIONS_LONG_RUN_AFTER (in flight).
               "-e", "LOG_LEVEL=debug",
               "-p", f"127.0.0.1:{self.port}:80", "-v", f"{self.volume}:/data", IMAGE)
        self.wait_ready()

    def wait_ready(self):
        wait_for(lambda: answers(self.url), 60, f"{self.name} to answer:\n{self.logs()}")

    def logs(self):
        out = engine("logs", self.name, check=False)
        return out.stdout + out.stderr


@pytest.fixture(scope="module")
def image():
    assert shutil.which("haproxy"), "haproxy is missing: scripts/setup.sh installs it"
    started = time.monotonic()
    out = subprocess.run([str(ROOT / "scripts" / "image.sh")], env=dict(os.environ, IMAGE=IMAGE),
                         capture_output=True, text=True, timeout=3600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    print(f"image built in {time.monotonic() - started:.0f} s: {out.stdout.strip().splitlines()[-1]}")
    return IMAGE


@pytest.fixture(scope="module")
def cluster(image):
    volume = f"{UNIQUE}-functions"
    engine("volume", "create", volume)
    replicas = [Replica(f"{UNIQUE}-{n}", volume) for n in ("a", "b")]
    proxy = None
    try:
        for r in replicas:
            r.run()
        proxy = Proxy([r.port for r in replicas])
        yield replicas, proxy
    finally:
        if proxy:
            proxy.stop()
        try:
            remove(*[r.name for r in replicas])
        finally:
            engine("volume", "rm", "-f", volume)


# ---- the sandbox and the workers' network in a container ----

def host_children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def namespace_pid(host_pid):
    """The pid of a host process in the innermost pid namespace it belongs to (the container's)."""
    with open(f"/proc/{host_pid}/status") as f:
        return int(next(line for line in f if line.startswith("NSpid:")).split()[-1])


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


class SandboxedContainer(attacks.Target):
    """The service in a container started with the README's options and the attacks' limits; its
    /data is a directory of this host, so the test can look at what a function left there."""

    def __init__(self, name, data):
        self.name, self.data = name, data
        self.port = free_port()
        env = {"SECRET_TOKEN": attacks.SECRET, "WORKER_TMP_MAX_SIZE": str(attacks.TMP_MAX),
               "WORKER_MEMORY_MAX_SIZE": f"{attacks.MEMORY_MAX_MB}mb",
               "FUNCTIONS_LOGS_MAX_SIZE": str(attacks.LOGS_MAX), "FUNCTIONS_RESULT_MAX_SIZE": str(attacks.RESULT_MAX),
               "NODE_BUILTIN_MODULES": network_clients.NODE_BUILTIN_MODULES,
               "PYTHON_BUILTIN_MODULES": network_clients.PYTHON_BUILTIN_MODULES}
        engine("run", "-d", "--name", name, *SANDBOX_OPTIONS, *CAPABILITIES,
               "--ulimit", f"nofile={NOFILE}:{NOFILE}", "--ulimit", f"nproc={NPROC}:{NPROC}",
               *[a for k, v in env.items() for a in ("-e", f"{k}={v}")],
               "-p", f"127.0.0.1:{self.port}:80", "-v", f"{data}:/data", IMAGE)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_for(lambda: answers(self.url), 60, f"{name} to answer:\n{self.log()}")
        init = int(engine("inspect", "--format", "{{.State.Pid}}", name).stdout.strip())
        services = [p for p in host_children(init) if "/opt/customcode/customcode" in cmdline(p)]
        assert len(services) == 1, (init, [cmdline(p) for p in host_children(init)])
        self.host_pid = services[0]
        self.service_pid = namespace_pid(self.host_pid)
        self.data_dir = "/data/functions"
        super().__init__("bwrap")

    def get(self, path):
        return requests.get(self.url + path, timeout=30)

    def save(self, workspace, functions):
        return requests.post(f"{self.url}/v2/functions/{workspace}", json={"functions": functions}, timeout=120)

    def run(self, workspace, function, parameters=None, timeout=60):
        return requests.post(f"{self.url}/v2/functions/{workspace}/run/{function}",
                             json={"parameters": parameters or {}}, timeout=timeout)

    def delete(self, workspace):
        return requests.delete(f"{self.url}/v2/functions/{workspace}", timeout=60)

    def alive(self):
        return os.path.exists(f"/proc/{self.host_pid}") and "/opt/customcode/customcode" in cmdline(self.host_pid)

    def log(self):
        out = engine("logs", self.name, check=False)
        return out.stdout + out.stderr

    def host_path(self, path):
        assert path.startswith("/data/"), path
        return os.path.join(self.data, path[len("/data/"):])

    SPARE_RE = re.compile(r"\[ws:(.*)\]\[pid (\d+)\] spare worker took over")

    def sandbox_processes(self, workspace):
        """The processes under the service's workers of `workspace`: those whose command line
        names the workspace's directory, and the spares that took it over (the log says which)."""
        spares = {int(pid) for ws, pid in self.SPARE_RE.findall(self.log()) if ws == workspace}
        todo = [p for p in host_children(self.host_pid)
                if f"/data/functions/{workspace}/" in cmdline(p) or namespace_pid_or_none(p) in spares]
        seen = set()
        while todo:
            pid = todo.pop()
            if pid not in seen:
                seen.add(pid)
                todo.extend(host_children(pid))
        return seen


def namespace_pid_or_none(pid):
    try:
        return namespace_pid(pid)
    except (OSError, StopIteration):
        return None


@pytest.fixture(scope="module")
def sandboxed(image, tmp_path_factory):
    data = tmp_path_factory.mktemp("container-data")
    (data / "functions").mkdir()
    for d in (data, data / "functions"):
        os.chmod(d, 0o755)  # as the image's /data: workers bind their workspace by path
    name = f"{UNIQUE}-sandbox"
    try:
        target = SandboxedContainer(name, data)
        assert_sandboxed(target.url, target.log())
        yield target
    finally:
        remove(name)
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.parametrize("attack", attacks.JS_ATTACKS + attacks.PY_ATTACKS, ids=lambda a: a.__name__)
def test_the_sandbox_attacks_fail_in_the_container(sandboxed, attack):
    assert sandboxed.mode == "bwrap"
    if attack in attacks.PY_ATTACKS and not sandboxed.python:
        pytest.fail("Python functions are not available in the image")
    attack(sandboxed)
    sandboxed.assert_still_serving()


def container_addresses(name):
    """The container's own addresses (its interfaces but loopback), read inside it."""
    out = engine("exec", name, "python3", "-c",
                 "import socket, json; print(json.dumps(sorted({a[4][0] for a in socket.getaddrinfo("
                 "socket.gethostname(), None) if not a[4][0].startswith(('127.', '::1'))})))").stdout
    return json.loads(out)


@pytest.fixture
def gateway_server(sandboxed):
    """An HTTP server of this host on the container network's gateway address: another host, as
    the container's workers see it (their egress works)."""
    import http.server
    gateway = engine("inspect", "--format", "{{.NetworkSettings.Gateway}}", sandboxed.name).stdout.strip()
    assert gateway, "the container has no gateway address"

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            body = b"gateway"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = http.server.ThreadingHTTPServer((gateway, 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://{gateway}:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_functions_in_the_container_reach_other_hosts_but_not_the_service(sandboxed, gateway_server, client):
    victim = {"secret": {"code": 'return "victim-code-unchanged";'}}
    assert sandboxed.save("netvictim", victim).status_code == 200
    assert sandboxed.save("probe", CLIENTS).status_code == 200
    assert call(sandboxed, client, url=gateway_server) == {"status": 200, "body": "gateway"}
    replacement = json.dumps({"functions": {"secret": {"code": 'return "replaced";'}}})
    for host in ["127.0.0.1", "localhost", "[::1]"] + [f"[{a}]" if ":" in a else a
                                                        for a in container_addresses(sandboxed.name)]:
        base = f"http://{host}:80/v2/functions/netvictim"
        got = call(sandboxed, client, url=base)
        assert blocked(got), (host, got)
        got = call(sandboxed, client, url=base, method="POST", body=replacement)
        assert blocked(got), (host, got)
    r = sandboxed.run("netvictim", "secret")
    assert r.status_code == 200 and r.json()["result"] == "victim-code-unchanged", r.text


def test_the_playground_is_in_the_image(sandboxed):
    page = sandboxed.get("/playground/")
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"], page.text[:300]
    assets = re.findall(r'(?:src|href)="(?:\./)?(assets/[^"]+)"', page.text)
    assert {os.path.splitext(a)[1] for a in assets} == {".js", ".css"}, page.text[:500]
    for asset in assets:
        assert sandboxed.get("/playground/" + asset).status_code == 200, asset


def assert_sandboxed(url, logs):
    """The sandbox is bubblewrap and the workers' network isolated: no fallback, no other warning
    than the cgroups'. The container's cgroup file system is read-only (podman's default), so
    workers have rlimits, not cgroups, and the health check says so."""
    health = requests.get(url + "/sys/healthcheck", timeout=5).json()
    assert health["healthy"] is True
    assert health["isolation"] == "bwrap", (health, logs)
    assert health["resources"] == "rlimits", (health, logs)
    warnings = health.get("details", {}).get("warnings", [])
    assert all(w.startswith("resources: workers run without cgroups") for w in warnings), (health, logs)
    metrics = requests.get(url + "/metrics", timeout=5).text
    assert re.search(r'^customcode_worker_network\{mode="isolated"\} 1$', metrics, re.M), (metrics, logs)
    assert "sandbox: bubblewrap" in logs and "worker network: isolated" in logs, logs


def test_each_replica_runs_its_workers_in_the_bubblewrap_sandbox(cluster):
    replicas, proxy = cluster
    for r in replicas:
        assert_sandboxed(r.url, r.logs())


def readme_curl_examples():
    """The two curl commands of the README's quick start, and what the README says they answer."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(curl .*?)```", text, re.S).group(1)
    commands = re.findall(r"(curl .*?)\n# -> (.*?)\n", block, re.S)
    assert len(commands) == 2, block
    return commands


def test_the_readme_curl_examples_pass_through_the_proxy(cluster):
    _, proxy = cluster
    (save, save_answer), (run, run_answer) = readme_curl_examples()
    assert "http://localhost:4000" in save and "http://localhost:4000" in run

    saved = subprocess.run(["bash", "-c", save.replace("http://localhost:4000", proxy.url) + " --silent"],
                           capture_output=True, text=True, timeout=60)
    ran = subprocess.run(["bash", "-c", run.replace("http://localhost:4000", proxy.url) + " --silent"],
                         capture_output=True, text=True, timeout=60)

    body = re.search(r"--data '(.*)'", save, re.S).group(1)
    assert save_answer == "the same body"
    assert json.loads(saved.stdout) == json.loads(body)
    expected = json.loads(run_answer)
    answer = json.loads(ran.stdout)
    assert answer["result"] == expected["result"] and answer["logs"] == expected["logs"]
    assert isinstance(answer["duration"], int) and answer["duration"] >= 0


def test_save_run_and_delete_through_the_proxy_are_seen_by_both_replicas(cluster):
    replicas, proxy = cluster
    assert requests.post(f"{proxy.url}/v2/functions/c-crud", json={"functions": HELLO}, timeout=60).status_code == 200
    for r in replicas:
        run = requests.post(f"{r.url}/v2/functions/c-crud/run/hello", json={"parameters": {"name": "x"}}, timeout=60)
        assert run.json()["result"] == "Hello x"

    assert requests.delete(f"{proxy.url}/v2/functions/c-crud", timeout=60).status_code == 200

    for r in replicas:
        assert requests.get(f"{r.url}/v2/functions/c-crud", timeout=10).status_code == 404
        assert requests.post(f"{r.url}/v2/functions/c-crud/run/hello", json={}, timeout=10).status_code == 404


def test_concurrent_saves_through_both_replicas_leave_one_version_both_agree_on(cluster):
    replicas, _ = cluster
    for round_ in range(5):
        barrier = threading.Barrier(2)
        statuses = []

        def save(replica, tag):
            functions = {"first": {"code": f"return '{tag}';"}, "second": {"code": f"return '{tag}';"}}
            barrier.wait(10)
            statuses.append(requests.post(f"{replica.url}/v2/functions/c-race", json={"functions": functions},
                                          timeout=60).status_code)

        threads = [threading.Thread(target=save, args=(r, f"{r.name[-1]}{round_}")) for r in replicas]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        assert statuses == [200, 200]
        stored = {requests.get(f"{r.url}/v2/functions/c-race", timeout=10).text for r in replicas}
        assert len(stored) == 1
        winner = re.findall(r"return '([^']*)'", stored.pop())
        assert len(set(winner)) == 1
        for r in replicas:
            for fn in ("first", "second"):
                run = requests.post(f"{r.url}/v2/functions/c-race/run/{fn}", json={}, timeout=60)
                assert run.json()["result"] == winner[0]


def test_sigterm_drains_and_the_container_exits_zero(cluster):
    replicas, proxy = cluster
    victim = replicas[1]
    slow = {"slow": {"code": "await new Promise(r => setTimeout(r, 3000)); return 'done';"}}
    assert requests.post(f"{victim.url}/v2/functions/c-drain", json={"functions": slow}, timeout=60).status_code == 200
    result = {}

    def run():
        result["run"] = requests.post(f"{victim.url}/v2/functions/c-drain/run/slow", json={}, timeout=60)

    runner = threading.Thread(target=run)
    runner.start()
    wait_for(lambda: "[ws:c-drain]" in victim.logs() and "a call runs for over" in victim.logs(), 20,
             "the run to be in flight")
    engine("stop", "-t", "30", victim.name, timeout=60)
    runner.join(60)

    assert result["run"].status_code == 200 and result["run"].json()["result"] == "done"
    state = engine("inspect", "--format", "{{.State.ExitCode}}", victim.name).stdout.strip()
    assert state == "0", victim.logs()
    engine("start", victim.name)
    victim.wait_ready()


def test_a_replica_killed_under_load_fails_only_its_in_flight_runs(cluster):
    replicas, proxy = cluster
    names = [f"c-load{i}" for i in range(40)]
    for name in names:
        assert requests.post(f"{proxy.url}/v2/functions/{name}", json={"functions": HELLO}, timeout=60).status_code == 200
    victim = replicas[0]
    stop = threading.Event()
    counts = {"ok": 0, "failed": 0}
    lock = threading.Lock()
    connections = 8

    def load(offset):
        session = requests.Session()
        i = offset
        while not stop.is_set():
            name = names[i % len(names)]
            i += connections
            try:
                r = session.post(f"{proxy.url}/v2/functions/{name}/run/hello", json={"parameters": {"name": "x"}},
                                 timeout=30)
                ok = r.status_code == 200
            except requests.RequestException:
                ok = False
                session = requests.Session()
            with lock:
                counts["ok" if ok else "failed"] += 1

    threads = [threading.Thread(target=load, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    wait_for(lambda: counts["ok"] > 200, 60, "load to get going")
    engine("kill", "-s", "KILL", victim.name)
    before = dict(counts)
    wait_for(lambda: counts["ok"] > before["ok"] + 400, 60, "load to go on after the kill")
    stop.set()
    for t in threads:
        t.join(60)

    # Only the requests in flight on the killed replica may fail: at most one per connection.
    assert counts["failed"] <= connections, counts
    for name in names:  # every workspace, the victim's too, is served by the other replica
        r = requests.post(f"{proxy.url}/v2/functions/{name}/run/hello", json={"parameters": {"name": "y"}}, timeout=30)
        assert r.status_code == 200 and r.json()["result"] == "Hello y"
    engine("start", victim.name)
    victim.wait_ready()
