"""Exhaustion: descriptor limits, the connection cap, idle and header timeouts, and processes
left behind by functions. Each test starts its own service; limits are set with prlimit(1)."""
import http.client
import json
import os
import re
import signal
import socket
import stat
import time

import pytest

from conftest import HELLO, start_session_leaders, wait_for


def limited_binary(tmp_path, binary, soft, hard):
    """A wrapper that starts `binary` with RLIMIT_NOFILE soft:hard (prlimit execs it: same pid)."""
    wrapper = tmp_path / f"customcode-nofile-{soft}-{hard}"
    wrapper.write_text(f"#!/bin/sh\nexec /usr/bin/prlimit --nofile={soft}:{hard} -- {binary} \"$@\"\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(wrapper)


def limited_service(make_service, binary, tmp_path, soft, hard, env=None):
    """A service in the bubblewrap sandbox (asserted) started with RLIMIT_NOFILE soft:hard."""
    service = make_service(start=False, env={"SANDBOX": "bwrap", **(env or {})})
    service.binary = limited_binary(tmp_path, binary, soft, hard)
    service.start()
    assert "sandbox: bubblewrap" in service.log()
    return service


def nofile_limits(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no Max open files line")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_connections(port, count):
    """`count` connected sockets that send nothing."""
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        socks.append(s)
    return socks


def closed_by_server(sock, timeout):
    """Whether the server closes `sock` (EOF or reset) within `timeout` seconds."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


class KeepAlive:
    """One HTTP/1.1 keep-alive connection opened before the service is flooded."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def request(self, method, path, body=None):
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self.conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = self.conn.getresponse()
        data = response.read().decode()
        assert response.getheader("Connection", "").lower() != "close", (response.status, data)
        return response.status, data

    def run(self, workspace, function, parameters=None):
        status, data = self.request("POST", f"/v2/functions/{workspace}/run/{function}", {"parameters": parameters or {}})
        return status, json.loads(data)

    def metric(self, name):
        status, text = self.request("GET", "/metrics")
        assert status == 200
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return None

    def close(self):
        self.conn.close()


def log_lines(service):
    return service.log().count("\n") + 1


# ---- descriptor limits ----

def test_soft_limit_is_raised_to_the_hard_one_and_idle_connections_past_it_do_not_hurt(make_service, binary, tmp_path):
    service = limited_service(make_service, binary, tmp_path, 256, 4096)
    assert nofile_limits(service.proc.pid) == (4096, 4096)
    assert "descriptor limit raised from 256 to 4096" in service.log()
    assert "at most 2048 HTTP connections" in service.log()
    assert service.save("ws", HELLO).status_code == 200
    lines_before = log_lines(service)

    socks = idle_connections(service.port, 400)  # more than the soft limit the service got
    try:
        wait_for(lambda: service.metric("customcode_http_connections_open") >= 400, timeout=20)
        assert service.metric("customcode_http_connections_open") >= 400
        for i in range(20):
            r = service.run("ws", "hello", {"name": str(i)})
            assert r.status_code == 200, r.text
            assert r.json()["result"] == f"Hello {i}"
        assert service.save("ws2", HELLO).status_code == 200
        assert service.run("ws2", "hello", {"name": "new"}).json()["result"] == "Hello new"
        assert service.metric('customcode_http_connections_refused_total{reason="descriptors"}') == 0
        assert service.metric('customcode_http_connections_refused_total{reason="limit"}') == 0
    finally:
        for s in socks:
            s.close()
    # A save, a worker start and its retirement log a few lines; 400 connections log none.
    assert log_lines(service) - lines_before < 40, service.log()


def test_connections_past_the_cap_are_closed_and_existing_ones_keep_working(make_service, binary, tmp_path):
    service = limited_service(make_service, binary, tmp_path, 256, 256)
    assert nofile_limits(service.proc.pid) == (256, 256)
    assert "descriptor limit: 256" in service.log()
    assert "at most 128 HTTP connections" in service.log()  # the default: half the limit
    assert service.save("ws", HELLO).status_code == 200
    existing = KeepAlive(service.port)
    assert existing.run("ws", "hello", {"name": "before"})[0] == 200
    before = existing.metric("customcode_http_connections_open")  # `existing` and the test's own session
    lines_before = log_lines(service)

    socks = idle_connections(service.port, 300)
    try:
        # The ones beyond the cap are closed as soon as they are accepted.
        refused = lambda: existing.metric('customcode_http_connections_refused_total{reason="limit"}')
        assert wait_for(lambda: refused() >= 300 - (128 - before), timeout=20), refused()
        assert refused() == 300 - (128 - before)
        assert existing.metric("customcode_http_connections_open") == 128
        assert closed_by_server(socks[-1], 5)
        assert not closed_by_server(socks[0], 0.2)
        assert existing.metric('customcode_http_connections_refused_total{reason="descriptors"}') == 0
        status, body = existing.run("ws", "hello", {"name": "during"})
        assert status == 200 and body["result"] == "Hello during"
        # A new connection is closed unserved.
        with pytest.raises((ConnectionError, http.client.RemoteDisconnected, OSError)):
            conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=5)
            conn.request("GET", "/sys/healthcheck")
            conn.getresponse().read()
    finally:
        for s in socks:
            s.close()
    # They go: new connections are served again.
    assert wait_for(lambda: existing.metric("customcode_http_connections_open") <= before, timeout=10)
    fresh = KeepAlive(service.port)
    status, body = fresh.run("ws", "hello", {"name": "after"})
    assert status == 200 and body["result"] == "Hello after"
    fresh.close()
    existing.close()
    assert log_lines(service) - lines_before < 30, service.log()


def test_running_out_of_descriptors_backs_off_without_spinning_and_recovers(make_service, binary, tmp_path):
    # No cap below the limit, no spare workers: accept() and worker starts hit EMFILE themselves.
    service = limited_service(make_service, binary, tmp_path, 256, 256,
                              env={"HTTP_MAX_CONNECTIONS": "100000", "FUNCTIONS_SPARE_WORKERS": "0"})
    pid = service.proc.pid
    assert nofile_limits(pid) == (256, 256)
    assert service.save("ws", HELLO).status_code == 200
    assert service.save("py", {"hello": {**HELLO["hello"], "language": "python",
                                         "code": 'return "Hello " + name'}}).status_code == 200
    existing = KeepAlive(service.port)
    assert existing.run("ws", "hello", {"name": "before"})[0] == 200
    assert existing.run("py", "hello", {"name": "before"})[0] == 200
    # The Python worker goes: its next run must start a new one, which needs pipes.
    [python_pid] = service.node_worker_pids("py")  # the workers of workspace "py" (not the syntax checkers)
    os.kill(python_pid, signal.SIGKILL)
    assert wait_for(lambda: existing.metric("customcode_workers_alive") == 1, timeout=10)
    before = existing.metric("customcode_http_connections_open")
    lines_before = log_lines(service)

    socks = []
    try:
        # Connect until the service has no descriptor left and accept() fails.
        for _ in range(400):
            socks.append(socket.create_connection(("127.0.0.1", service.port), timeout=5))
        assert wait_for(lambda: existing.metric('customcode_http_connections_refused_total{reason="descriptors"}') > 0,
                        timeout=10)
        assert open_fds(pid) >= 250
        # No spin: the accept loop waits between attempts.
        cpu_before = cpu_seconds(pid)
        time.sleep(2)
        assert cpu_seconds(pid) - cpu_before < 0.5
        # Open connections are served; a run that needs a new worker fails clearly.
        status, body = existing.run("ws", "hello", {"name": "during"})
        assert status == 200 and body["result"] == "Hello during", body
        status, body = existing.run("py", "hello", {"name": "during"})
        assert status == 500, body
        assert body["error"] == "WorkerStartError", body
        assert "Too many open files" in body["message"], body
    finally:
        for s in socks:
            s.close()
    # Recovery: new connections are served, and the worker starts this time.
    assert wait_for(lambda: existing.metric("customcode_http_connections_open") <= before, timeout=20)
    fresh = KeepAlive(service.port)
    status, body = fresh.run("py", "hello", {"name": "after"})
    assert status == 200 and body["result"] == "Hello after", body
    fresh.close()
    existing.close()
    log = service.log().splitlines()[lines_before:]
    assert len(log) < 60, "\n".join(log)
    assert sum("accept failed" in line for line in log) <= 12, "\n".join(log)


# ---- timeouts ----

def test_an_idle_connection_is_closed_after_http_idle_timeout(make_service):
    service = make_service(env={"HTTP_IDLE_TIMEOUT": "500"})
    start = time.monotonic()
    [fresh] = idle_connections(service.port, 1)
    assert closed_by_server(fresh, 10)
    assert time.monotonic() - start >= 0.45
    # After a request, the keep-alive wait is bounded the same way.
    conn = socket.create_connection(("127.0.0.1", service.port), timeout=10)
    conn.sendall(b"GET /sys/healthcheck HTTP/1.1\r\nHost: x\r\n\r\n")
    assert conn.recv(4096).startswith(b"HTTP/1.1 200")
    answered = time.monotonic()
    assert closed_by_server(conn, 10)
    assert time.monotonic() - answered >= 0.45


def test_a_trickled_request_head_is_cut_at_http_header_timeout(make_service):
    service = make_service(env={"HTTP_HEADER_TIMEOUT": "1000", "HTTP_IDLE_TIMEOUT": "60000"})
    conn = socket.create_connection(("127.0.0.1", service.port), timeout=10)
    start = time.monotonic()
    conn.sendall(b"GET /sys/healthcheck HTTP/1.1\r\n")
    cut = None
    # One byte every 100 ms would take 20 s to finish the head.
    for byte in b"X-Slow: " + b"a" * 190:
        try:
            conn.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            cut = time.monotonic() - start
            break
        if closed_by_server(conn, 0.1):
            cut = time.monotonic() - start
            break
    assert cut is not None, "the trickle was never cut"
    assert 0.9 <= cut < 5, cut
    # A head that arrives in pieces within the timeout is served.
    conn = socket.create_connection(("127.0.0.1", service.port), timeout=10)
    for piece in (b"GET /sys/healthcheck HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
        conn.sendall(piece)
        time.sleep(0.1)
    assert conn.recv(4096).startswith(b"HTTP/1.1 200")


# ---- processes left behind ----

def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


# Without cgroups (WORKER_CGROUPS=off): the subreaper adopts them and kills them at exit. With
# cgroups they die with their worker: tests/e2e/test_cgroups.py.
def test_processes_a_function_starts_do_not_outlive_the_service_without_a_sandbox(make_service):
    service = make_service(env={"SANDBOX": "none", "NODE_PERMISSION_MODEL": "no",
                                "NODE_BUILTIN_MODULES": "child_process",
                                "PYTHON_BUILTIN_MODULES": "subprocess", "WORKER_CGROUPS": "off"})
    health = service.get("/sys/healthcheck").json()
    assert health["resources"] == "rlimits", health
    assert any("SANDBOX=none" in w for w in health["details"]["warnings"]), health
    pids = start_session_leaders(service)
    for pid in pids:
        assert alive(pid)
        # In a session of its own: the worker's process group does not take it along.
        assert os.getsid(pid) == pid
    # A new version retires the workers; what they started is now the service's (a subreaper).
    assert service.save("ws", {"node": {"code": "return 1;"}}).status_code == 200
    assert wait_for(lambda: all(alive(p) and int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1])
                                == service.proc.pid for p in pids), timeout=10)
    assert service.stop() == 0
    assert not any(alive(pid) for pid in pids), [p for p in pids if alive(p)]
    assert re.search(r"killed \d+ process\(es\) left behind by workers", service.log())
