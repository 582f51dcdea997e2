"""Supervision of workers: timeouts, crashes, memory, LRU and idle retirement, processes, shutdown."""
import os
import signal
import subprocess
import threading
import time

import pytest
import requests

from conftest import HELLO, wait_for, worker_cpu_lowered

def fast_service(make_service, **env):
    return make_service(env={"FUNCTIONS_RUN_TIMEOUT": "1000", "WORKER_PING_TIMEOUT": "200", **env})


def the_worker(service, workspace):
    """The one live worker process of `workspace`."""
    pids = wait_for(lambda: service.node_worker_pids(workspace), timeout=10)
    assert len(pids) == 1, pids
    return pids[0]


def pid_gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


SPIN = {"spin": {"code": "console.log('spinning now');\nwhile (true) {}"},
        "hang": {"code": "console.log('hanging now');\nawait new Promise(() => {});"},
        "remember": {"code": "cache.kept = value; return process.pid;", "parameters": {"value": {"type": "string"}}},
        "recall": {"code": "return cache.kept === undefined ? null : cache.kept;"},
        "ok": {"code": "return 'fine';"}}


def thread_nices(root):
    """The nice value of every thread of `root` and of its descendants, from /proc."""
    nices = {}
    for pid in process_tree(root):
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    nices[int(tid)] = int(f.read().rsplit(")", 1)[1].split()[16])
            except (OSError, ValueError, IndexError):
                continue
    return nices


# ---- timeouts ----

def test_infinite_loop_times_out_with_its_logs_while_other_workspaces_stay_fast(make_service):
    service = fast_service(make_service)
    assert service.save("spinner", SPIN).status_code == 200
    assert service.save("other", HELLO).status_code == 200
    assert service.run("other", "hello", {"name": "warm"}).status_code == 200
    stuck = the_worker(service, "spinner")

    statuses = []
    stop = threading.Event()

    def probe():
        session = requests.Session()
        while not stop.is_set():
            r = session.post(f"{service.url}/v2/functions/other/run/hello", json={"parameters": {"name": "p"}}, timeout=10)
            statuses.append(r.status_code)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    r = service.run("spinner", "spin")
    stop.set()
    prober.join(10)

    assert r.status_code == 504
    body = r.json()
    assert body["error"] == "TimeoutError"
    assert "1000" in body["message"]
    assert [log["message"] for log in body["logs"]] == ["spinning now"]
    assert isinstance(body["duration"], int) and body["duration"] >= 1000
    # Other workspaces are served meanwhile (how fast: test_latency.py).
    assert statuses and all(status == 200 for status in statuses), statuses

    # The stuck worker is killed and reaped; the next run gets a fresh one.
    assert wait_for(lambda: stuck not in service.worker_pids(), timeout=5)
    assert service.run("spinner", "ok").json()["result"] == "fine"
    assert the_worker(service, "spinner") != stuck
    assert wait_for(lambda: not service.zombies(), timeout=5)
    assert service.metric("customcode_worker_kills_total") == 1
    assert service.metric('customcode_runs_total{outcome="timeout"}') == 1


def test_a_worker_spinning_after_its_timeout_is_killed_without_waiting_for_the_ping(make_service):
    # The ping timeout is 30 s: the worker is known to be stuck from what its processes do
    # (still running a few milliseconds after the timeout), not from the ping running out.
    service = make_service(env={"FUNCTIONS_RUN_TIMEOUT": "1000", "WORKER_PING_TIMEOUT": "30000"})
    assert service.save("spinner", SPIN).status_code == 200
    stuck = the_worker(service, "spinner")
    assert service.run("spinner", "spin").status_code == 504
    r = service.run("spinner", "ok", timeout=10)  # far below the 30 s ping timeout
    assert r.status_code == 200 and r.json()["result"] == "fine"
    assert wait_for(lambda: stuck not in service.worker_pids(), timeout=5)  # killed, and reaped soon after
    assert service.metric("customcode_worker_kills_total") == 1
    assert "kept running (stuck in a loop?)" in service.log()


def test_a_worker_blocked_but_idle_after_its_timeout_waits_for_the_ping_and_keeps_its_cache(make_service):
    # A synchronous wait blocks the event loop without using the CPU: the worker is not killed on
    # sight; it answers the ping once the wait ends (within WORKER_PING_TIMEOUT) and keeps its cache.
    functions = {**SPIN, "block": {"code": "Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500);\n"
                                            "return 'woke';"}}
    service = make_service(env={"FUNCTIONS_RUN_TIMEOUT": "500", "WORKER_PING_TIMEOUT": "5000"})
    assert service.save("blocked", functions).status_code == 200
    pid_seen = service.run("blocked", "remember", {"value": "precious"}).json()["result"]
    assert service.run("blocked", "block").status_code == 504
    r = service.run("blocked", "recall")
    assert r.status_code == 200 and r.json()["result"] == "precious"
    assert service.run("blocked", "remember", {"value": "again"}).json()["result"] == pid_seen
    assert service.metric("customcode_worker_kills_total") == 0


def test_hung_await_times_out_but_the_worker_and_its_cache_survive(make_service):
    service = fast_service(make_service)
    assert service.save("hung", SPIN).status_code == 200
    pid_seen = service.run("hung", "remember", {"value": "precious"}).json()["result"]
    worker = the_worker(service, "hung")
    t0 = time.monotonic()
    r = service.run("hung", "hang")
    assert r.status_code == 504
    assert time.monotonic() - t0 < 3.0
    assert r.json()["error"] == "TimeoutError"
    assert [log["message"] for log in r.json()["logs"]] == ["hanging now"]
    # A run on a worker whose liveness ping is out waits for the verdict: once it is answered by
    # the same worker, the ping has come back and nothing was killed.
    assert service.run("hung", "recall").json()["result"] == "precious"
    assert service.metric("customcode_worker_kills_total") == 0
    assert service.node_worker_pids("hung") == [worker]
    assert service.run("hung", "remember", {"value": "again"}).json()["result"] == pid_seen


# ---- crashes ----

def test_memory_bomb_is_500_out_of_memory_and_the_next_run_works(make_service):
    service = make_service(env={"NODE_WORKER_MAX_OLD_GENERATION_SIZE_MB": "64", "FUNCTIONS_RUN_TIMEOUT": "20000"})
    bomb = "console.log('allocating');\nconst keep = [];\nwhile (true) keep.push(new Array(100000).fill(0).map(Math.random));"
    assert service.save("mem", {"bomb": {"code": bomb}, "ok": {"code": "return 'alive';"}}).status_code == 200
    old = the_worker(service, "mem")
    t0 = time.monotonic()
    r = service.run("mem", "bomb")
    assert r.status_code == 500, r.text
    body = r.json()
    assert body["error"] == "OutOfMemory"
    assert [log["message"] for log in body["logs"]] == ["allocating"]
    assert time.monotonic() - t0 < 15
    assert service.run("mem", "ok").json()["result"] == "alive"
    assert the_worker(service, "mem") != old
    assert wait_for(lambda: not service.zombies(), timeout=5)


@pytest.mark.parametrize("code", ["process.exit(3);", "process.exit(0);", "process.kill(process.pid, 'SIGKILL');",
                                  "process.abort();"])
def test_worker_exit_is_500_worker_crashed_and_the_next_run_works(make_service, code):
    service = fast_service(make_service, FUNCTIONS_RUN_TIMEOUT="5000")
    assert service.save("exit", {"die": {"code": "console.log('about to go');\n" + code},
                                 "ok": {"code": "return 'back';"}}).status_code == 200
    old = the_worker(service, "exit")
    r = service.run("exit", "die")
    assert r.status_code == 500, r.text
    body = r.json()
    assert body["error"] == "WorkerCrashed"
    assert body["message"]
    assert [log["message"] for log in body["logs"]] == ["about to go"]
    assert service.run("exit", "ok").json()["result"] == "back"
    assert the_worker(service, "exit") != old
    assert wait_for(lambda: not service.zombies(), timeout=5)


def test_other_runs_in_flight_on_a_crashing_worker_fail_clearly(make_service):
    service = fast_service(make_service, FUNCTIONS_RUN_TIMEOUT="5000")
    functions = {"slow": {"code": "console.log('waiting');\nawait new Promise((r) => setTimeout(r, 3000)); return 'late';"},
                 "die": {"code": "await new Promise((r) => setTimeout(r, 300)); process.exit(1);"},
                 "ok": {"code": "return 'ok';"}}
    assert service.save("multi", functions).status_code == 200
    the_worker(service, "multi")
    results = {}

    def run(name):
        results[name] = requests.post(f"{service.url}/v2/functions/multi/run/{name}", json={}, timeout=30)

    threads = [threading.Thread(target=run, args=(name,)) for name in ("slow", "slow", "die")]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert time.monotonic() - t0 < 2.5  # the slow runs did not wait for their 3 s
    slow = results["slow"]
    assert slow.status_code == 500
    assert slow.json()["error"] == "WorkerCrashed"
    assert slow.json()["logs"] == [] or [log["message"] for log in slow.json()["logs"]] == ["waiting"]
    assert results["die"].status_code == 500
    assert service.run("multi", "ok").json()["result"] == "ok"


def test_runs_in_flight_on_a_stuck_worker_fail_when_it_is_killed(make_service):
    # A call running for over FUNCTIONS_LONG_RUN_AFTER lowers its worker: the sign, seen from
    # outside, that the spin has been under way for 800 ms.
    service = make_service(env={"FUNCTIONS_RUN_TIMEOUT": "2000", "WORKER_PING_TIMEOUT": "200",
                                "FUNCTIONS_LONG_RUN_AFTER": "800"})
    functions = {"spin": {"code": "while (true) {}"},
                 "wait": {"code": "await new Promise((r) => setTimeout(r, 100)); return 'never';"},
                 "ok": {"code": "return 'ok';"}}
    assert service.save("stuck", functions).status_code == 200
    worker = the_worker(service, "stuck")
    results = {}

    def run(name):
        t0 = time.monotonic()
        results[name] = (requests.post(f"{service.url}/v2/functions/stuck/run/{name}", json={}, timeout=30),
                         time.monotonic() - t0)

    spin = threading.Thread(target=run, args=("spin",))
    spin.start()
    # The spin is under way (its worker lowered: its cgroup, or nice 19 without cgroups): this run
    # queues behind it, with its own 2 s deadline, which falls after the stuck worker is killed
    # (2 s + the 200 ms ping).
    assert wait_for(lambda: worker_cpu_lowered(worker) or set(thread_nices(worker).values()) == {19}, timeout=5)
    run("wait")
    spin.join(10)
    assert results["spin"][0].status_code == 504
    waited, elapsed = results["wait"]
    # The worker is killed ~2.2 s after the spin started, before this run's own deadline (2.8 s).
    assert waited.status_code == 500, waited.text
    assert waited.json()["error"] == "WorkerCrashed"
    assert "stopped responding" in waited.json()["message"]
    assert service.run("stuck", "ok").json()["result"] == "ok"


# ---- the pool ----

def test_lru_bounds_live_workers_and_every_run_succeeds(make_service):
    service = make_service(env={"FUNCTIONS_WORKERS_MAX_LRU": "3"})
    names = [f"lru{i}" for i in range(8)]
    peak = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak.append(len(service.node_worker_pids()))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        for i, name in enumerate(names):
            assert service.save(name, {"who": {"code": f"return {i};"}}).status_code == 200
        for _round in range(2):
            for i, name in enumerate(names):
                r = service.run(name, "who")
                assert r.status_code == 200, r.text
                assert r.json()["result"] == i
                assert len(service.node_worker_pids()) <= 3
    finally:
        stop.set()
        sampler.join(5)
    assert max(peak) <= 3, max(peak)
    assert service.metric("customcode_workers_alive") <= 3
    assert service.metric('customcode_worker_evictions_total{reason="lru"}') >= 8


def test_lru_retires_the_least_recently_used_first(make_service):
    service = make_service(env={"FUNCTIONS_WORKERS_MAX_LRU": "3"})
    for name in ("a", "b", "c"):
        assert service.save(name, HELLO).status_code == 200
        assert service.run(name, "hello", {"name": name}).status_code == 200
    wait_for(lambda: len(service.node_worker_pids()) == 3)
    pid_a = the_worker(service, "a")
    assert service.run("a", "hello", {"name": "a"}).status_code == 200  # a is now the most recent
    assert service.save("d", HELLO).status_code == 200
    assert service.run("d", "hello", {"name": "d"}).status_code == 200
    assert wait_for(lambda: service.node_worker_pids("b") == [], timeout=5)  # b was the least recent
    assert service.node_worker_pids("a") == [pid_a]
    assert service.node_worker_pids("c") and service.node_worker_pids("d")


def test_idle_workers_are_retired(make_service):
    service = make_service(env={"INACTIVE_NODE_WORKER_DELETION_TIMEOUT": "1"})
    assert service.save("idle", HELLO).status_code == 200
    assert service.run("idle", "hello", {"name": "x"}).status_code == 200
    pid = the_worker(service, "idle")
    assert wait_for(lambda: pid not in service.worker_pids(), timeout=5)
    assert service.metric('customcode_worker_evictions_total{reason="idle"}') >= 1
    assert service.metric("customcode_workers_alive") == 0
    assert service.run("idle", "hello", {"name": "y"}).json()["result"] == "Hello y"
    assert wait_for(lambda: not service.zombies(), timeout=5)


def test_a_busy_worker_is_not_retired_as_idle(make_service):
    service = make_service(env={"INACTIVE_NODE_WORKER_DELETION_TIMEOUT": "1", "FUNCTIONS_RUN_TIMEOUT": "5000"})
    code = "await new Promise((r) => setTimeout(r, 2000)); return 'done';"
    assert service.save("busy", {"f": {"code": code}}).status_code == 200
    r = service.run("busy", "f")
    assert r.status_code == 200, r.text
    assert r.json()["result"] == "done"


def test_saving_a_workspace_makes_the_next_run_see_the_new_code(service):
    assert service.save("ver", {"v": {"code": "return 1;"}}).status_code == 200
    assert service.run("ver", "v").json()["result"] == 1
    old = the_worker(service, "ver")
    for version in range(2, 6):
        assert service.save("ver", {"v": {"code": f"return {version};"}}).status_code == 200
        assert service.run("ver", "v").json()["result"] == version
    assert wait_for(lambda: old not in service.worker_pids(), timeout=5)
    assert wait_for(lambda: len(service.node_worker_pids("ver")) == 1, timeout=5)
    assert wait_for(lambda: not service.zombies(), timeout=5)


def test_a_run_in_flight_during_a_save_finishes_on_the_old_code(service):
    assert service.save("swap", {"v": {"code": "await new Promise((r) => setTimeout(r, 800)); return 'old';"},
                                 "ready": {"code": "return true;"}}).status_code == 200
    assert service.run("swap", "ready").json()["result"] is True  # the worker is up: the next run starts at once
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("r", requests.post(f"{service.url}/v2/functions/swap/run/v", json={}, timeout=30)))
    t.start()
    assert wait_for(lambda: service.metric("customcode_runs_in_flight") == 1)
    assert service.save("swap", {"v": {"code": "return 'new';"}}).status_code == 200
    assert service.run("swap", "v").json()["result"] == "new"
    t.join(10)
    assert result["r"].status_code == 200 and result["r"].json()["result"] == "old"


# ---- processes ----

def test_no_zombies_after_kills_crashes_and_retirements(make_service):
    service = fast_service(make_service, FUNCTIONS_WORKERS_MAX_LRU="2")
    functions = {**SPIN, "die": {"code": "process.exit(1);"}}
    for name in ("z1", "z2", "z3"):
        assert service.save(name, functions).status_code == 200
    assert service.run("z1", "spin").status_code == 504
    assert service.run("z2", "die").status_code == 500
    assert service.run("z3", "ok").status_code == 200
    assert service.run("z1", "ok").status_code == 200
    assert service.delete("/v2/functions/z2").status_code == 200
    assert wait_for(lambda: not service.zombies(), timeout=5), service.zombies()
    assert len(service.node_worker_pids()) <= 2


def fd_targets(pid):
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
    return out


def process_tree(pid):
    """`pid` and all its descendants (a worker may run under a sandbox launcher)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    children.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def test_workers_inherit_no_descriptor_of_the_service(make_service):
    service = make_service()
    for name in ("fd1", "fd2"):
        assert service.save(name, HELLO).status_code == 200
        assert service.run(name, "hello", {"name": name}).status_code == 200
    # Keep a client connection open too, so that the service holds a connected socket.
    keep = requests.Session()
    assert keep.get(f"{service.url}/sys/healthcheck").status_code == 200
    service_fds = fd_targets(service.proc.pid)
    shared = {t for t in service_fds.values() if t.startswith(("socket:", "pipe:"))}  # unique inode numbers
    workers = service.node_worker_pids()
    assert len(workers) == 2
    for worker in workers:
        tree = process_tree(worker)
        runtimes = [p for p in tree if "node" in os.path.basename(os.readlink(f"/proc/{p}/exe"))]
        assert len(runtimes) == 1, tree
        fds = fd_targets(runtimes[0])
        assert {0, 1, 2, 3, 4} <= set(fds), fds
        assert fds[0] == "/dev/null"
        assert fds[1] == fds[2]
        own = {fds[1], fds[3], fds[4]}
        assert own <= shared  # its own output, request and frame pipes
        # Any other descriptor, in the runtime or a launcher above it, is their own (epoll,
        # eventfd, signalfd, private pipes): never a socket or pipe of the service, nor a file of
        # the data directory.
        for pid in tree:
            for fd, target in fd_targets(pid).items():
                assert target in own or target not in shared, (pid, fd, target)
                assert not target.startswith(service.data_dir), (pid, fd, target)
        assert not any(t.startswith("socket:") for t in fds.values()), fds


def test_worker_stderr_reaches_the_service_log_with_workspace_and_pid(service):
    code = "process.stderr.write('marker-on-stderr\\n'); process.stdout.write('marker-on-stdout\\n'); return 1;"
    assert service.save("noisy", {"f": {"code": code}}).status_code == 200
    r = service.run("noisy", "f")
    assert r.status_code == 200
    assert r.json()["logs"] == []
    pid = the_worker(service, "noisy")
    for marker in ("marker-on-stderr", "marker-on-stdout"):
        line = wait_for(lambda: next((l for l in service.log().splitlines() if marker in l), None), timeout=5)
        assert line, service.log()
        assert "noisy" in line and str(pid) in line, line


# ---- shutdown and configuration ----

def test_sigterm_finishes_the_run_in_flight_exits_0_and_stops_workers(make_service):
    service = make_service(env={"FUNCTIONS_RUN_TIMEOUT": "10000"})
    assert service.save("graceful", {"slow": {"code": "await new Promise((r) => setTimeout(r, 1000)); return 'finished';"}}).status_code == 200
    assert service.save("other", HELLO).status_code == 200
    assert service.run("other", "hello", {"name": "x"}).status_code == 200
    workers = wait_for(lambda: len(service.node_worker_pids()) == 2 and service.worker_pids())
    assert workers
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("r", requests.post(
        f"{service.url}/v2/functions/graceful/run/slow", json={}, timeout=30)))
    t.start()
    assert wait_for(lambda: service.metric("customcode_runs_in_flight") == 1)
    service.proc.send_signal(signal.SIGTERM)
    t.join(15)
    assert result["r"].status_code == 200
    assert result["r"].json()["result"] == "finished"
    assert service.proc.wait(10) == 0
    assert all(pid_gone(pid) for pid in workers), [p for p in workers if not pid_gone(p)]


def test_sigterm_waits_at_most_shutdown_timeout_for_a_run_in_flight(make_service):
    service = make_service(env={"FUNCTIONS_RUN_TIMEOUT": "30000", "SHUTDOWN_TIMEOUT": "500"})
    assert service.save("longrun", {"slow": {"code": "await new Promise((r) => setTimeout(r, 20000)); return 1;"}}).status_code == 200
    t = threading.Thread(target=lambda: requests.post(f"{service.url}/v2/functions/longrun/run/slow", json={}, timeout=30),
                         daemon=True)
    t.start()
    assert wait_for(lambda: service.metric("customcode_runs_in_flight") == 1)
    service.proc.send_signal(signal.SIGTERM)
    # The run would take 20 s; the drain gives up after 0.5 s and the workers are stopped.
    assert service.proc.wait(10) == 0
    assert "1 request(s) still in flight after the shutdown timeout" in service.log()


def test_sigterm_stops_accepting_new_connections(make_service):
    service = make_service()
    port = service.port
    assert service.proc.send_signal(signal.SIGTERM) is None
    assert service.proc.wait(10) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/sys/healthcheck", timeout=2)


@pytest.mark.parametrize("name,value", [("FUNCTIONS_RUN_TIMEOUT", "abc"), ("FUNCTIONS_RUN_TIMEOUT", "-5"),
                                        ("PORT", "99999"), ("PORT", "http"), ("REQUEST_MAX_SIZE", "lots"),
                                        ("FUNCTIONS_WORKERS_MAX_LRU", "0"), ("UPDATE_SCRIPTS_ON_STARTUP", "maybe"),
                                        ("INACTIVE_NODE_WORKER_DELETION_TIMEOUT", "soon"),
                                        ("NODE_WORKER_MAX_OLD_GENERATION_SIZE_MB", "big"),
                                        ("FUNCTIONS_LOGS_MAX_SIZE", "-1kb"), ("FUNCTIONS_LONG_RUN_NICE", "25"),
                                        ("FUNCTIONS_LONG_RUN_AFTER", "soon")])
def test_bad_configuration_stops_start_up_naming_the_variable(binary, tmp_path, name, value):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORT": "0", "HOST": "127.0.0.1",
           "FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH": str(tmp_path / "data"), name: value}
    proc = subprocess.run([binary], env=env, capture_output=True, text=True, timeout=15)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert name in output, output
    assert "listening" not in output


def test_every_bad_value_is_reported_at_once(binary, tmp_path):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORT": "99999", "FUNCTIONS_RUN_TIMEOUT": "abc",
           "REQUEST_MAX_SIZE": "lots", "FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH": str(tmp_path / "data")}
    proc = subprocess.run([binary], env=env, capture_output=True, text=True, timeout=15)
    assert proc.returncode != 0
    for name in ("PORT", "FUNCTIONS_RUN_TIMEOUT", "REQUEST_MAX_SIZE"):
        assert name in proc.stderr + proc.stdout


# ---- priority of long calls ----

BUSY = {"busy": {"code": "const end = Date.now() + ms; while (Date.now() < end) {} return 'done';",
                 "parameters": {"ms": {"type": "number"}}},
        "ok": {"code": "return 'fine';"}}


# Without cgroups, by nice values (WORKER_CGROUPS=off). With cgroups, by the cgroup's CPU class:
# tests/e2e/test_cgroups.py.
def test_a_long_call_runs_at_low_priority_and_its_worker_comes_back_after(make_service):
    service = make_service(env={"FUNCTIONS_LONG_RUN_AFTER": "50", "WORKER_CGROUPS": "off"})
    assert service.get("/sys/healthcheck").json()["resources"] == "rlimits"
    assert service.save("busy", BUSY).status_code == 200
    assert service.run("busy", "ok").status_code == 200
    worker = the_worker(service, "busy")
    before = thread_nices(worker)
    assert len(before) >= 3 and set(before.values()) == {0}, before  # bwrap, its init, node and its threads

    result = {}
    runner = threading.Thread(target=lambda: result.update(r=service.run("busy", "busy", {"ms": 1500})))
    runner.start()
    lowered = wait_for(lambda: set(thread_nices(worker).values()) == {19}, timeout=1.2)
    assert lowered, thread_nices(worker)
    # Meanwhile a short call of another workspace is served as usual.
    assert service.save("other", HELLO).status_code == 200
    assert service.run("other", "hello", {"name": "x"}).json()["result"] == "Hello x"
    runner.join(10)
    assert result["r"].status_code == 200 and result["r"].json()["result"] == "done"
    if os.geteuid() == 0:
        assert wait_for(lambda: set(thread_nices(worker).values()) == {0}, timeout=2), thread_nices(worker)
    assert service.run("busy", "ok").json()["result"] == "fine"


def test_short_calls_never_lower_their_worker(make_service):
    service = make_service(env={"FUNCTIONS_LONG_RUN_AFTER": "50", "WORKER_CGROUPS": "off"})
    assert service.get("/sys/healthcheck").json()["resources"] == "rlimits"
    assert service.save("busy", BUSY).status_code == 200
    assert service.run("busy", "ok").status_code == 200
    worker = the_worker(service, "busy")
    for _ in range(50):
        assert service.run("busy", "busy", {"ms": 5}).status_code == 200
    assert set(thread_nices(worker).values()) == {0}
