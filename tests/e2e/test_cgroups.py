"""Resource isolation with cgroups (docs/security.md, "Resources"): each worker's whole process
tree in a cgroup of its own, with a memory ceiling (heap, buffers, tmpfs), a process limit and a
CPU class (spares and long calls idle); removed after the worker, and after a service killed with
SIGKILL. Each test asserts the mode it runs in; the fallback (rlimits only) is tested on purpose
with WORKER_CGROUPS=off and WORKER_CGROUPS_TEST_UNAVAILABLE."""
import os
import signal
import threading
import time

import pytest

from conftest import HELLO, descendants, own_cgroups, start_session_leaders, wait_for

MiB = 1024 * 1024
PY_HELLO = {"hello": {"language": "python", "code": 'return "Hello " + name',
                      "parameters": {"name": {"type": "string"}}}}


def places(version):
    """Where a service makes its workers' cgroups: beside itself, in its own cgroups, which are
    the test's (its child). v1: memory, cpu, pids."""
    own = own_cgroups()
    if version == "cgroup-v1":
        return [own[c] for c in ("memory", "cpu", "pids") if c in own]
    return [own["unified"]]


def all_worker_cgroups(service_pid, version):
    """Every worker cgroup directory of a service, in every hierarchy."""
    prefix = f"customcode-{service_pid}-w"
    return [os.path.join(p, e) for p in places(version) for e in os.listdir(p) if e.startswith(prefix)]


def expected_mode():
    """What WORKER_CGROUPS=auto must find on this machine: v2 where its memory and cpu controllers
    reach our cgroup, else v1 where those hierarchies are mounted; the tests run as root."""
    places = own_cgroups()
    if "unified" in places:
        try:
            with open(os.path.join(places["unified"], "cgroup.controllers")) as f:
                if {"memory", "cpu"} <= set(f.read().split()):
                    return "cgroup-v2"
        except OSError:
            pass
    if "memory" in places and "cpu" in places:
        return "cgroup-v1"
    pytest.fail(f"no cgroup hierarchy with the memory and cpu controllers here: {places}")


def read(path):
    with open(path) as f:
        return f.read().strip()


def worker_cgroups(service, version):
    """{name: directory} of the workers' cgroups of a running service (memory hierarchy on v1)."""
    place, prefix = places(version)[0], f"customcode-{service.proc.pid}-w"
    return {e: os.path.join(place, e) for e in os.listdir(place) if e.startswith(prefix)}


def cgroup_of(service, pid, version):
    """The directory (memory hierarchy on v1) of the worker cgroup holding `pid`, or None."""
    for directory in worker_cgroups(service, version).values():
        try:
            if str(pid) in read(os.path.join(directory, "cgroup.procs")).split():
                return directory
        except OSError:
            continue
    return None


def cpu_dir(service, directory, version):
    """The directory of a worker cgroup in the cpu hierarchy."""
    if version == "cgroup-v1":
        return os.path.join(places(version)[1], os.path.basename(directory))
    return directory


def cpu_class(service, directory, version):
    """"low" (the lowest weight, not the idle policy) or "normal" (the default weight)."""
    d = cpu_dir(service, directory, version)
    weight, lowest, normal = ("cpu.shares", "2", "1024") if version == "cgroup-v1" else ("cpu.weight", "1", "100")
    idle = read(os.path.join(d, "cpu.idle")) if os.path.exists(os.path.join(d, "cpu.idle")) else None
    value = read(os.path.join(d, weight))
    if idle not in (None, "0"):
        return f"{weight}={value} cpu.idle={idle}"
    return {lowest: "low", normal: "normal"}.get(value, f"{weight}={value}")


@pytest.fixture(scope="module")
def mode():
    if os.geteuid() != 0:
        pytest.fail("these tests need root: the service makes cgroups under its own")
    return expected_mode()


def assert_mode(service, mode):
    health = service.get("/sys/healthcheck").json()
    assert health["resources"] == mode, (health, service.log())
    assert f'customcode_resource_isolation{{mode="{mode}"}} 1' in service.get("/metrics").text


def assert_neighbours_fine(service):
    assert service.get("/sys/healthcheck").status_code == 200
    for workspace in ("victim", "pyvictim"):
        r = service.run(workspace, "hello", {"name": "you"})
        assert r.status_code == 200, (r.text, service.log())
        assert r.json()["result"] == "Hello you"


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# ---- one cgroup per worker, for its life ----

def test_each_worker_runs_in_a_cgroup_of_its_own_that_goes_with_it(make_service, mode):
    service = make_service(env={"WORKER_MEMORY_MAX_SIZE": "300mb"})
    assert_mode(service, mode)
    assert service.save("cg-one", HELLO).status_code == 200
    assert service.run("cg-one", "hello", {"name": "x"}).status_code == 200

    [pid] = wait_for(lambda: service.node_worker_pids("cg-one"))
    directory = cgroup_of(service, pid, mode)
    assert directory, (pid, service.log())
    # The whole tree: the sandbox's processes and the interpreter.
    members = read(os.path.join(directory, "cgroup.procs")).split()
    assert len(members) >= 2 and str(pid) in members, members
    limit_file = "memory.limit_in_bytes" if mode == "cgroup-v1" else "memory.max"
    assert int(read(os.path.join(directory, limit_file))) == 300 * MiB
    if mode == "cgroup-v1":
        for hierarchy in places(mode)[1:]:
            assert str(pid) in read(os.path.join(hierarchy, os.path.basename(directory), "cgroup.procs")).split()

    assert service.delete("/v2/functions/cg-one").status_code == 200

    assert wait_for(lambda: not service.node_worker_pids("cg-one"), timeout=5)
    for hierarchy in places(mode):
        assert wait_for(lambda: not os.path.exists(os.path.join(hierarchy, os.path.basename(directory))),
                        timeout=5), service.log()


def test_a_killed_stuck_worker_takes_its_cgroup_with_it(make_service, mode):
    service = make_service(env={"FUNCTIONS_RUN_TIMEOUT": "500"})
    assert_mode(service, mode)
    assert service.save("cg-spin", {"spin": {"code": "while (true) {}"}, **HELLO}).status_code == 200
    assert service.run("cg-spin", "hello", {"name": "x"}).status_code == 200
    [pid] = service.node_worker_pids("cg-spin")
    directory = cgroup_of(service, pid, mode)

    assert service.run("cg-spin", "spin").status_code == 504

    assert wait_for(lambda: not os.path.exists(directory), timeout=5), service.log()
    assert service.run("cg-spin", "hello", {"name": "y"}).json()["result"] == "Hello y"


# ---- memory ceiling ----

def test_filling_tmp_beyond_the_ceiling_is_out_of_memory(make_service, mode):
    # The tmpfs may grow past the ceiling, and Python's address-space limit does not count it:
    # only the cgroup stops it.
    service = make_service(env={"WORKER_MEMORY_MAX_SIZE": "160mb", "WORKER_TMP_MAX_SIZE": "1gb",
                                "PYTHON_FUNCTIONS_RUN_TIMEOUT": "30000"})
    assert_mode(service, mode)
    assert service.save("victim", HELLO).status_code == 200
    assert service.save("pyvictim", PY_HELLO).status_code == 200
    fill = ("chunk = b'x' * (8 * 1024 * 1024)\n"
            "for i in range(64):\n"
            "    with open(f'/tmp/fill{i}', 'wb') as f:\n"
            "        f.write(chunk)\n"
            "return 'wrote 512 MiB'")
    assert service.save("filler", {"fill": {"language": "python", "code": fill}}).status_code == 200

    r = service.run("filler", "fill")

    assert r.status_code == 500, (r.text, service.log())
    assert r.json()["error"] == "OutOfMemory"
    assert "memory ceiling of 160 MiB" in r.json()["message"]
    assert_neighbours_fine(service)
    assert service.run("filler", "fill").json()["error"] == "OutOfMemory"  # a fresh worker, the same ceiling
    assert 'customcode_runs_total{outcome="out_of_memory"} 2' in service.get("/metrics").text


def test_buffers_of_a_process_tree_beyond_the_ceiling_are_out_of_memory(make_service, mode):
    # Each child stays under its own per-process limit (RLIMIT_DATA 256 MiB); together they pass
    # the worker's ceiling. The kernel kills one child; the service learns it from the cgroup's
    # OOM event, kills the whole worker, and the run fails at once, not at the end of its wait.
    service = make_service(env={"WORKER_MEMORY_MAX_SIZE": "256mb", "NODE_PERMISSION_MODEL": "no",
                                "NODE_BUILTIN_MODULES": "child_process,buffer", "FUNCTIONS_RUN_TIMEOUT": "30000"})
    assert_mode(service, mode)
    assert service.save("victim", HELLO).status_code == 200
    assert service.save("pyvictim", PY_HELLO).status_code == 200
    code = """
const cp = require('child_process');
for (let i = 0; i < 4; i++)
  cp.spawn(process.execPath, ['-e', 'const b = Buffer.alloc(100 * 1024 * 1024, 1); setInterval(() => b[0]++, 1000)'],
           {stdio: 'ignore'});
await new Promise(r => setTimeout(r, 20000));
return 'survived';
"""
    assert service.save("buffers", {"grow": {"code": code}}, disableNpmRegistry=True).status_code == 200

    started = time.monotonic()
    r = service.run("buffers", "grow")

    assert r.status_code == 500, (r.text, service.log())
    assert r.json()["error"] == "OutOfMemory"
    assert "memory ceiling of 256 MiB" in r.json()["message"]
    assert time.monotonic() - started < 15  # killed at the ceiling, not at the end of the wait
    assert_neighbours_fine(service)
    # Nothing of the tree is left: the children went with the worker.
    assert wait_for(lambda: not service.node_worker_pids("buffers"), timeout=5)
    assert wait_for(lambda: not any("Buffer.alloc" in cmdline(p) for p in descendants(service.proc.pid)), timeout=5)


# ---- processes ----

def test_the_process_limit_holds_without_a_sandbox(make_service, mode):
    # SANDBOX=none has no RLIMIT_NPROC (it would count the service's uid): the cgroup's pids.max
    # (128 for a worker's tree) is what stops a thread or fork bomb there. A large address-space
    # limit, so that it is not the thread stacks and malloc arenas that stop it first.
    service = make_service(env={"SANDBOX": "none", "PYTHON_BUILTIN_MODULES": "threading,time",
                                "WORKER_MEMORY_MAX_SIZE": "16gb"})
    assert_mode(service, mode)
    code = ("import threading\n"
            "stop = threading.Event()\n"
            "count = 0\n"
            "try:\n"
            "    for _ in range(1000):\n"
            "        threading.Thread(target=stop.wait, daemon=True).start()\n"
            "        count += 1\n"
            "except RuntimeError:\n"
            "    pass\n"
            "stop.set()\n"
            "return count")
    assert service.save("threads", {"spawn": {"language": "python", "code": code}}).status_code == 200

    r = service.run("threads", "spawn")

    assert r.status_code == 200, (r.text, service.log())
    assert 64 <= r.json()["result"] < 128, r.json()
    assert service.get("/sys/healthcheck").status_code == 200


def test_processes_a_function_starts_die_with_its_worker_in_its_cgroup(make_service, mode):
    service = make_service(env={"SANDBOX": "none", "NODE_PERMISSION_MODEL": "no",
                                "NODE_BUILTIN_MODULES": "child_process",
                                "PYTHON_BUILTIN_MODULES": "subprocess"})
    assert_mode(service, mode)
    pids = start_session_leaders(service)
    for pid in pids:
        assert alive(pid) and os.getsid(pid) == pid  # out of the worker's process group and session

    # A new version retires the workers: their cgroups take what they started along.
    assert service.save("ws", {"node": {"code": "return 1;"}}).status_code == 200

    assert wait_for(lambda: not any(alive(p) for p in pids), timeout=10), [p for p in pids if alive(p)]
    assert service.get("/sys/healthcheck").status_code == 200


# ---- CPU classes ----

def test_a_long_call_gives_its_cgroup_the_lowest_weight_until_it_ends(make_service, mode):
    service = make_service(env={"FUNCTIONS_LONG_RUN_AFTER": "50"})
    assert_mode(service, mode)
    spin = "const end = Date.now() + 1500; while (Date.now() < end) {} return 'done';"
    assert service.save("spinner", {"spin": {"code": spin}, **HELLO}).status_code == 200
    assert service.run("spinner", "hello", {"name": "x"}).status_code == 200
    [pid] = service.node_worker_pids("spinner")
    directory = cgroup_of(service, pid, mode)
    assert cpu_class(service, directory, mode) == "normal"

    result = {}
    runner = threading.Thread(target=lambda: result.update(r=service.run("spinner", "spin")))
    runner.start()
    lowered = wait_for(lambda: cpu_class(service, directory, mode) == "low", timeout=1.4)
    runner.join()

    assert lowered, service.log()
    assert result["r"].status_code == 200
    assert wait_for(lambda: cpu_class(service, directory, mode) == "normal", timeout=2)


def test_short_calls_never_lower_their_cgroup(make_service, mode):
    service = make_service(env={"FUNCTIONS_LONG_RUN_AFTER": "50"})
    assert_mode(service, mode)
    busy = "const end = Date.now() + ms; while (Date.now() < end) {} return 'done';"
    assert service.save("shorts", {"busy": {"code": busy, "parameters": {"ms": {"type": "number"}}}}).status_code == 200
    assert service.run("shorts", "busy", {"ms": 1}).status_code == 200
    [pid] = service.node_worker_pids("shorts")
    directory = cgroup_of(service, pid, mode)

    for _ in range(50):
        assert service.run("shorts", "busy", {"ms": 5}).status_code == 200
        assert cpu_class(service, directory, mode) == "normal"


def test_the_worker_after_a_stuck_one_stays_low_until_a_run_answers_quickly(make_service, mode):
    # The long-call threshold out of the way: the only reason for the lowest weight here is the kill.
    service = make_service(env={"FUNCTIONS_RUN_TIMEOUT": "1000", "FUNCTIONS_LONG_RUN_AFTER": "5000"})
    assert_mode(service, mode)
    wait = "await new Promise((r) => setTimeout(r, 600)); return 'waited';"
    assert service.save("relapse", {"spin": {"code": "while (true) {}"}, "wait": {"code": wait}}).status_code == 200
    assert service.save("steady", {"wait": {"code": wait}}).status_code == 200

    def class_while_waiting(workspace, before):
        result = {}
        runner = threading.Thread(target=lambda: result.update(r=service.run(workspace, "wait")))
        runner.start()
        pids = wait_for(lambda: [p for p in service.node_worker_pids(workspace) if p not in before], timeout=5)
        seen = cpu_class(service, cgroup_of(service, pids[0], mode), mode) if pids else None
        runner.join()
        assert result["r"].json()["result"] == "waited", result["r"].text
        return seen, pids[0]

    # A workspace that never got stuck: its worker serves in the normal class.
    assert class_while_waiting("steady", [])[0] == "normal"
    assert service.run("relapse", "wait").status_code == 200
    [stuck] = service.node_worker_pids("relapse")
    assert service.run("relapse", "spin").status_code == 504
    assert wait_for(lambda: stuck not in service.node_worker_pids("relapse"), timeout=5)

    seen, replacement = class_while_waiting("relapse", [stuck])

    assert seen == "low", service.log()
    # Its run answered within FUNCTIONS_LONG_RUN_AFTER: back to the normal class.
    assert wait_for(lambda: cpu_class(service, cgroup_of(service, replacement, mode), mode) == "normal", timeout=2)


# ---- clean-up and modes ----

def test_a_service_killed_with_sigkill_leaves_no_cgroup_behind(make_service, mode):
    first = make_service()
    assert_mode(first, mode)
    assert first.save("cg-kill", HELLO).status_code == 200
    assert first.run("cg-kill", "hello", {"name": "x"}).status_code == 200
    left = all_worker_cgroups(first.proc.pid, mode)
    assert left and all(os.path.isdir(d) for d in left)

    first.stop(signal.SIGKILL)
    # Its workers die with it (parent-death signal); their cgroups stay until the next start.
    second = make_service(data_dir=first.data_dir)

    assert_mode(second, mode)
    assert not any(os.path.exists(d) for d in left), (left, second.log())
    assert "of an instance no longer running" in second.log()
    assert second.run("cg-kill", "hello", {"name": "y"}).json()["result"] == "Hello y"


def test_without_cgroups_the_service_says_so_and_keeps_the_rlimits(make_service, mode):
    service = make_service(env={"WORKER_CGROUPS_TEST_UNAVAILABLE": "yes"})

    assert_mode(service, "rlimits")
    health = service.get("/sys/healthcheck").json()
    assert any("without cgroups" in w and "WORKER_CGROUPS_TEST_UNAVAILABLE" in w for w in health["details"]["warnings"])
    assert "without cgroups" in service.log()
    assert service.save("plain", HELLO).status_code == 200
    assert service.run("plain", "hello", {"name": "x"}).json()["result"] == "Hello x"
    assert not all_worker_cgroups(service.proc.pid, mode)


def test_worker_cgroups_off_runs_with_rlimits_and_nice_values(make_service, mode):
    service = make_service(env={"WORKER_CGROUPS": "off"})
    assert_mode(service, "rlimits")
    spin = "const end = Date.now() + 1500; while (Date.now() < end) {} return 'done';"
    assert service.save("nicer", {"spin": {"code": spin}, **HELLO}).status_code == 200
    assert service.run("nicer", "hello", {"name": "x"}).status_code == 200
    [pid] = service.node_worker_pids("nicer")

    runner = threading.Thread(target=lambda: service.run("nicer", "spin"))
    runner.start()
    lowered = wait_for(lambda: os.getpriority(os.PRIO_PROCESS, pid) == 19, timeout=1.4)
    runner.join()

    assert lowered
    assert not all_worker_cgroups(service.proc.pid, mode)


def test_cgroups_required_but_unavailable_stop_start_up(make_service):
    service = make_service(env={"WORKER_CGROUPS": "on", "WORKER_CGROUPS_TEST_UNAVAILABLE": "yes"}, start=False)
    with pytest.raises(RuntimeError):
        service.start()
    assert "WORKER_CGROUPS=on: cannot make the workers' cgroups" in service.log()


def test_a_bad_worker_cgroups_value_stops_start_up(make_service):
    service = make_service(env={"WORKER_CGROUPS": "maybe"}, start=False)
    with pytest.raises(RuntimeError):
        service.start()
    assert "WORKER_CGROUPS" in service.log() and "must be auto, on or off" in service.log()
