"""The worker sandbox under attack (docs/security.md). The attacks themselves are in
tests/attacks.py (the container test runs them too); each saves hostile code in an "attacker"
workspace and checks that it reaches nothing outside its own workspace, and that the service and
a "victim" workspace still answer afterwards.

The JavaScript attacks run twice, with Node's permission model (the default) and without it, so
that the OS boundary alone is shown to hold.

Every attack runs in each mode a host can give: bubblewrap (with the data directory under a 0700
directory) and the restricted mode without namespaces (SANDBOX_TEST_NO_NAMESPACES makes the
bubblewrap probe fail, so SANDBOX=auto falls back to it on purpose). Each test asserts the mode it
runs in; where the modes block an attack by different means, the test checks the mode's own claim
(docs/security.md, "Modes x attacks")."""
import os
import re
import shutil
import sys
import tempfile
import time

import pytest

from conftest import descendants, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import attacks  # noqa: E402 - tests/attacks.py
from attacks import LOGS_MAX, MEMORY_MAX_MB, RESULT_MAX, SECRET, TMP_MAX, result  # noqa: E402


class Target(attacks.Target):
    """The service of conftest.py, on this host."""

    def __init__(self, service, mode="bwrap"):
        self.service = service
        self.data_dir = service.data_dir
        self.service_pid = service.proc.pid
        super().__init__(mode)

    def get(self, path):
        return self.service.get(path)

    def save(self, workspace, functions):
        return self.service.save(workspace, functions)

    def run(self, workspace, function, parameters=None, timeout=60):
        return self.service.run(workspace, function, parameters, timeout=timeout)

    def delete(self, workspace):
        return self.service.delete(f"/v2/functions/{workspace}")

    def alive(self):
        return self.service.proc.poll() is None

    def log(self):
        return self.service.log()

    def host_path(self, path):
        return path

    def sandbox_processes(self, workspace):
        return sandbox_processes(self.service, workspace)


MODES = ["bwrap", "restricted"]


@pytest.fixture(scope="module")
def searchable_base():
    """The restricted mode has no mount namespace to bind directories through: its workers reach
    their workspace by path, so every parent of the data directory must be searchable by them."""
    base = tempfile.mkdtemp(prefix="customcode-e2e-restricted-")
    os.chmod(base, 0o711)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def start(make_service, mode="bwrap", data_dir=None, **env):
    env = {"SECRET_TOKEN": SECRET, "SANDBOX": "bwrap", "WORKER_TMP_MAX_SIZE": str(TMP_MAX),
           "WORKER_MEMORY_MAX_SIZE": f"{MEMORY_MAX_MB}mb", "FUNCTIONS_LOGS_MAX_SIZE": str(LOGS_MAX),
           "FUNCTIONS_RESULT_MAX_SIZE": str(RESULT_MAX), **env}
    if mode == "restricted":
        env.update(SANDBOX="auto", SANDBOX_TEST_NO_NAMESPACES="yes")
    return make_service(env=env, data_dir=data_dir)


def data_dir_for(mode, request):
    if mode != "restricted":
        return None  # the default: under a 0700 directory
    base = request.getfixturevalue("searchable_base")
    return os.path.join(base, re.sub(r"\W", "_", request.node.name))


@pytest.fixture(params=[(m, p) for m in MODES for p in ("os-only", "with-node-permissions")],
                ids=lambda v: f"{v[0]}-{v[1]}")
def target(request, make_service):
    mode, permission = request.param
    permissions = "yes" if permission == "with-node-permissions" else "no"
    t = Target(start(make_service, mode, data_dir_for(mode, request), NODE_PERMISSION_MODEL=permissions), mode)
    yield t
    t.assert_still_serving()


@pytest.fixture(params=MODES)
def py_target(request, make_service):
    t = Target(start(make_service, request.param, data_dir_for(request.param, request)), request.param)
    if not t.python:
        pytest.skip("Python functions are not available in this build (501)")
    yield t
    t.assert_still_serving()


def sandbox_processes(service, workspace):
    """The processes in the sandboxes of `workspace`'s workers, counted from the host."""
    roots = list(service.node_worker_pids(workspace)) + python_worker_pids(service, workspace)
    return set(roots) | set(descendants(*roots))


def python_worker_pids(service, workspace):
    out = []
    for pid in service.worker_pids():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                text = f.read().decode(errors="replace")
        except OSError:
            continue
        if "worker.py" in text and f"/{workspace}/" in text:
            out.append(pid)
    return out


# ---- the attacks (tests/attacks.py) ----

def test_js_cannot_read_other_workspaces_the_data_root_or_the_host(target):
    attacks.js_cannot_read_other_workspaces_the_data_root_or_the_host(target)


def test_js_sees_no_secret_in_its_environment_or_any_process(target):
    attacks.js_sees_no_secret_in_its_environment_or_any_process(target)


def test_js_child_processes_are_inside_the_sandbox(target):
    attacks.js_child_processes_are_inside_the_sandbox(target)


def test_js_cannot_kill_or_signal_the_service(target):
    attacks.js_cannot_kill_or_signal_the_service(target)


def test_js_worker_threads_stay_inside_the_sandbox(target):
    attacks.js_worker_threads_stay_inside_the_sandbox(target)


def test_js_cannot_fill_the_disk(target):
    attacks.js_cannot_fill_the_disk(target)


def test_js_fork_bomb_hits_the_process_limit(target):
    attacks.js_fork_bomb_hits_the_process_limit(target)


def test_js_unbounded_allocation_hits_the_memory_limit(target):
    attacks.js_unbounded_allocation_hits_the_memory_limit(target)


def test_js_gigabytes_of_logs_are_truncated(target):
    attacks.js_gigabytes_of_logs_are_truncated(target)


def test_js_gigabyte_result_is_refused(target):
    attacks.js_gigabyte_result_is_refused(target)


def test_py_cannot_read_other_workspaces_the_data_root_or_the_host(py_target):
    attacks.py_cannot_read_other_workspaces_the_data_root_or_the_host(py_target)


def test_py_sees_no_secret_in_its_environment_or_any_process(py_target):
    attacks.py_sees_no_secret_in_its_environment_or_any_process(py_target)


def test_py_child_processes_are_inside_the_sandbox(py_target):
    attacks.py_child_processes_are_inside_the_sandbox(py_target)


def test_py_cannot_kill_or_signal_the_service(py_target):
    attacks.py_cannot_kill_or_signal_the_service(py_target)


def test_py_threads_stay_inside_the_sandbox(py_target):
    attacks.py_threads_stay_inside_the_sandbox(py_target)


def test_py_cannot_fill_the_disk(py_target):
    attacks.py_cannot_fill_the_disk(py_target)


def test_py_fork_bomb_hits_the_process_limit(py_target):
    attacks.py_fork_bomb_hits_the_process_limit(py_target)


def test_py_unbounded_allocation_hits_the_memory_limit(py_target):
    attacks.py_unbounded_allocation_hits_the_memory_limit(py_target)


def test_py_gigabytes_of_logs_are_truncated(py_target):
    attacks.py_gigabytes_of_logs_are_truncated(py_target)


def test_py_gigabyte_result_is_refused(py_target):
    attacks.py_gigabyte_result_is_refused(py_target)


# ---- the sandbox itself ----

def test_bwrap_binds_a_workspace_whose_parents_only_root_can_search(make_service, tmp_path):
    # The data root itself a 0700 directory, under pytest's 0700 directories, as `mktemp -d` makes.
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    assert os.stat(tmp_path).st_mode & 0o777 == 0o700 and os.stat(data).st_mode & 0o777 == 0o700
    service = start(make_service, data_dir=data)
    assert service.get("/sys/healthcheck").json()["isolation"] == "bwrap"
    assert service.metric('customcode_isolation_level{level="bwrap"}') == 1
    functions = {"f": {"code": "return 1;"}, "p": {"code": "return 2", "language": "python"}}
    assert service.save("ws", functions).status_code == 200
    assert result(service.run("ws", "f")) == 1
    assert result(service.run("ws", "p")) == 2


def test_auto_falls_back_to_the_restricted_mode_without_namespaces(make_service, request):
    service = start(make_service, "restricted", data_dir_for("restricted", request))
    health = service.get("/sys/healthcheck").json()
    assert health["isolation"] == "restricted"
    assert any("restricted mode" in w for w in health["details"]["warnings"]), health
    assert "SANDBOX_TEST_NO_NAMESPACES" in service.log()  # why bubblewrap was passed over
    assert service.metric('customcode_isolation_level{level="restricted"}') == 1
    assert service.metric('customcode_isolation_level{level="bwrap"}') == 0
    assert service.save("ws", {"f": {"code": "return 1;"}}).status_code == 200
    assert result(service.run("ws", "f")) == 1


def test_auto_falls_back_loudly_to_none_when_no_mode_works(make_service, tmp_path):
    # Without namespaces, a root service's workers (uids of their own) cannot reach a data root
    # under pytest's 0700 tmp_path: the restricted mode refuses it too.
    if os.geteuid() != 0:
        pytest.skip("only root's workers switch to another uid")
    service = make_service(env={"SANDBOX": "auto", "SANDBOX_TEST_NO_NAMESPACES": "yes"}, data_dir=tmp_path / "data")
    health = service.get("/sys/healthcheck").json()
    assert health["isolation"] == "none"
    assert any("WITHOUT OS isolation" in w for w in health["details"]["warnings"]), health
    assert service.metric('customcode_isolation_level{level="none"}') == 1
    assert service.save("ws", {"f": {"code": "return 1;"}}).status_code == 200
    assert result(service.run("ws", "f")) == 1


def test_forced_bwrap_refuses_to_start_when_it_cannot_run(make_service):
    service = make_service(env={"SANDBOX": "bwrap", "SANDBOX_TEST_NO_NAMESPACES": "yes"}, start=False)
    with pytest.raises(RuntimeError):
        service.start()
    assert "SANDBOX=bwrap" in service.log()


def test_forced_restricted_refuses_to_start_when_it_cannot_run(make_service, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only root's workers switch to another uid")
    service = make_service(env={"SANDBOX": "restricted"}, data_dir=tmp_path / "data", start=False)
    with pytest.raises(RuntimeError):
        service.start()
    assert "SANDBOX=restricted" in service.log()


@pytest.mark.parametrize("mode", MODES)
def test_workers_run_unprivileged_with_no_capabilities(make_service, request, mode):
    service = start(make_service, mode, data_dir_for(mode, request))
    body = "return require('fs') && null;"
    assert service.save("probe", {"f": {"code": body}}).status_code == 200
    service.run("probe", "f")
    workers = wait_for(lambda: service.node_worker_pids("probe"))
    # With bubblewrap the service's child is bwrap; the interpreter runs inside its sandbox.
    inner = [p for p in sandbox_processes(service, "probe") if p not in workers] if mode == "bwrap" else workers
    assert inner
    for pid in inner:
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
        uid = int(status["Uid"].split()[0])
        assert uid != 0 or os.geteuid() != 0, status["Uid"]
        assert int(status["CapEff"].strip(), 16) == 0
        assert status["NoNewPrivs"].strip() == "1"
        with open(f"/proc/{pid}/environ", "rb") as f:
            assert SECRET.encode() not in f.read()
        if mode == "restricted":
            assert status["Seccomp"].strip() == "2"  # a filter
            if os.geteuid() == 0:
                assert uid >= 1_900_000_000, status["Uid"]  # a uid of its own


def test_each_restricted_worker_gets_a_uid_of_its_own(make_service, request):
    if os.geteuid() != 0:
        pytest.skip("only a root service can give workers uids of their own")
    service = start(make_service, "restricted", data_dir_for("restricted", request), FUNCTIONS_SPARE_WORKERS="0")
    uids = set()
    for ws in ("a", "b"):
        assert service.save(ws, {"f": {"code": "return 1;"}}).status_code == 200
        assert result(service.run(ws, "f")) == 1
        pid = wait_for(lambda: service.node_worker_pids(ws))[0]
        with open(f"/proc/{pid}/status") as f:
            uids.add(next(line.split()[1] for line in f if line.startswith("Uid:")))
    assert len(uids) == 2, uids


def test_js_cannot_use_namespaces_mounts_ptrace_or_keyrings(target):
    attacks.js_cannot_use_namespaces_mounts_ptrace_or_keyrings(target)


def test_sandbox_none_is_reported_in_the_healthcheck(make_service):
    service = make_service(env={"SANDBOX": "none"})
    health = service.get("/sys/healthcheck").json()
    assert health["isolation"] == "none"
    assert any("SANDBOX=none" in w for w in health["details"]["warnings"]), health
    assert service.metric('customcode_isolation_level{level="none"}') == 1


def node_reporting(version):
    """A Node.js that reports `version` to --version and is the real one otherwise, in a directory
    the sandbox user can reach."""
    import shutil
    import tempfile
    prefix = tempfile.mkdtemp(prefix="customcode-e2e-node-", dir="/tmp")
    os.makedirs(os.path.join(prefix, "bin"))
    for directory in (prefix, os.path.join(prefix, "bin")):
        os.chmod(directory, 0o755)
    path = os.path.join(prefix, "bin", "node")
    real = shutil.which("node") or "/usr/bin/node"
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\nif [ "$1" = "--version" ]; then echo {version}; exit 0; fi\nexec {real} "$@"\n')
    os.chmod(path, 0o755)
    return path


def worker_arguments(service, workspace):
    pids = wait_for(lambda: service.node_worker_pids(workspace), timeout=10)
    with open(f"/proc/{pids[0]}/cmdline", "rb") as f:
        return f.read().decode().split("\0")


def test_a_node_without_a_permission_model_runs_without_it_and_says_so(make_service):
    service = make_service(env={"NODE_PATH_BINARY": node_reporting("v18.19.0"), "FUNCTIONS_SPARE_WORKERS": "0"})
    health = service.get("/sys/healthcheck").json()
    assert any("NODE_PERMISSION_MODEL" in w and "v18.19.0" in w for w in health["details"]["warnings"]), health
    assert service.save("ws", {"f": {"code": "return 1;"}}).status_code == 200
    assert result(service.run("ws", "f")) == 1
    args = worker_arguments(service, "ws")
    assert not any("permission" in a for a in args), args


def test_node_20_gets_the_experimental_permission_flag(make_service):
    service = make_service(env={"FUNCTIONS_SPARE_WORKERS": "0"})
    assert service.save("ws", {"f": {"code": "return 1;"}}).status_code == 200
    assert result(service.run("ws", "f")) == 1
    args = worker_arguments(service, "ws")
    if "Node.js v20." in service.log():
        assert "--experimental-permission" in args, args
    else:
        assert "--permission" in args or "--experimental-permission" in args, args


# ---- no sandbox outlives the service ----

def processes_mentioning(text):
    """Pids of the live processes whose command line contains `text` (a data directory)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if text.encode() in f.read():
                        out.append(int(entry))
            except OSError:
                continue
    return out


@pytest.mark.parametrize("mode", MODES)
def test_no_worker_process_outlives_a_killed_service(make_service, request, mode):
    import threading
    service = start(make_service, mode, data_dir_for(mode, request), FUNCTIONS_SPARE_WORKERS="4")
    functions = {"f": {"code": "return 1;"}, "p": {"code": "return 2", "language": "python"}}
    for ws in ("a", "b"):
        assert service.save(ws, functions).status_code == 200
        assert result(service.run(ws, "f")) == 1
        assert result(service.run(ws, "p")) == 2
    assert processes_mentioning(service.data_dir)
    # Saves warm new workers at once, and a run takes a spare, which starts a new one: some
    # sandboxes are still being set up when the service is killed.
    import requests
    fired = []

    def fire(ws):
        try:
            requests.post(f"{service.url}/v2/functions/{ws}", json={"functions": functions}, timeout=5)
            requests.post(f"{service.url}/v2/functions/{ws}/run/f", json={}, timeout=5)
        except requests.RequestException:
            pass
        fired.append(ws)

    threads = [threading.Thread(target=fire, args=(f"c{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    wait_for(lambda: len(fired) >= 1 or service.metric("customcode_worker_spawns_total") >= 8, timeout=5)
    service.proc.kill()
    service.proc.wait()
    for t in threads:
        t.join()
    time.sleep(3)  # the promise under test: nothing left 3 s after the kill
    left = processes_mentioning(service.data_dir)
    assert not left, [open(f"/proc/{p}/cmdline", "rb").read()[:200] for p in left if os.path.exists(f"/proc/{p}")]
