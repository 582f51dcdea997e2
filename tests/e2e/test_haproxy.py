"""deploy/haproxy/haproxy.cfg in front of three replicas on one shared data directory: runs of a
workspace go to one replica (consistent hashing on the workspace path segment), a dead replica
leaves the ring and its workspaces are served by the others at once, and a run in flight on a
replica that dies is not repeated elsewhere."""
import pathlib
import signal
import sys
import threading

import pytest
import requests

from conftest import HELLO, wait_for

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import haproxy_proxy  # noqa: E402 - tests/haproxy_proxy.py


class Proxy(haproxy_proxy.Proxy):
    def __init__(self, replicas, balance=None):
        super().__init__([r.port for r in replicas], balance)

    def save(self, workspace, functions):
        return requests.post(f"{self.url}/v2/functions/{workspace}", json={"functions": functions}, timeout=60)

    def run(self, workspace, function="hello", timeout=30):
        return requests.post(f"{self.url}/v2/functions/{workspace}/run/{function}",
                             json={"parameters": {"name": "x"}}, timeout=timeout)


@pytest.fixture
def replicas(make_service, data_base, tmp_path):
    shared = data_base / f"{tmp_path.name}-shared"
    # debug: a worker logs when a call has run for FUNCTIONS_LONG_RUN_AFTER (a run in flight).
    return [make_service(data_dir=shared, env={"LOG_LEVEL": "debug"}) for _ in range(3)]


@pytest.fixture
def proxy(replicas):
    p = Proxy(replicas)
    yield p
    p.stop()


def test_runs_of_a_workspace_all_go_to_one_replica(replicas, proxy):
    names = [f"aff{i}" for i in range(12)]
    for name in names:
        assert proxy.save(name, HELLO).status_code == 200
    for _ in range(3):
        for name in names:
            assert proxy.run(name).status_code == 200

    for name in names:
        holders = [r for r in replicas if r.node_worker_pids(name)]
        assert len(holders) == 1, f"{name} has workers on {len(holders)} replicas"
    # The hash spreads the workspaces: no replica is left without any.
    assert all(any(r.node_worker_pids(n) for n in names) for r in replicas)


def test_round_robin_spreads_one_workspace_over_every_replica(replicas):
    proxy = Proxy(replicas, balance="roundrobin")
    try:
        assert proxy.save("spread", HELLO).status_code == 200
        runs = "customcode_run_duration_seconds_count"
        before = [r.metric(runs) or 0 for r in replicas]
        for _ in range(6):
            assert proxy.run("spread").status_code == 200
        assert all((r.metric(runs) or 0) > b for r, b in zip(replicas, before))
    finally:
        proxy.stop()


def test_the_workspaces_of_a_dead_replica_are_served_by_the_others_at_once(replicas, proxy):
    names = [f"dead{i}" for i in range(12)]
    for name in names:
        assert proxy.save(name, HELLO).status_code == 200
        assert proxy.run(name).status_code == 200
    victim = next(r for r in replicas if any(r.node_worker_pids(n) for n in names))

    victim.stop(signal.SIGKILL)

    # Before the health check has noticed: refused connections are retried on another replica.
    for name in names:
        r = proxy.run(name)
        assert r.status_code == 200 and r.json()["result"] == "Hello x", r.text


def test_a_run_in_flight_on_a_replica_that_dies_fails_and_is_not_repeated_elsewhere(replicas, proxy):
    slow = {"slow": {"code": "await new Promise(r => setTimeout(r, 3000)); return 'done';"}}
    assert proxy.save("inflight", slow).status_code == 200
    holders = wait_for(lambda: [r for r in replicas if r.node_worker_pids("inflight")], 10)  # warmed at save
    assert len(holders) == 1
    holder = holders[0]
    runs = "customcode_run_duration_seconds_count"
    others_before = {r.port: r.metric(runs) for r in replicas if r is not holder}
    result = {}

    def run():
        result["response"] = proxy.run("inflight", "slow")

    runner = threading.Thread(target=run)
    runner.start()
    assert wait_for(lambda: "[ws:inflight]" in holder.log() and "a call runs for over" in holder.log(), 10)
    holder.stop(signal.SIGKILL)
    runner.join(30)

    assert result["response"].status_code in (502, 503), result["response"].text
    for r in replicas:  # no other replica ran it
        if r is not holder:
            assert r.metric(runs) == others_before[r.port]
