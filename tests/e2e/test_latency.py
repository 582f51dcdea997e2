"""Latency bounds, kept apart from the functional tests: a worker stuck in a busy loop must not slow
the runs of other workspaces down. The bounds are generous (a loaded 2-core machine); they catch a
service that serialises runs behind a stuck worker, not a regression of a few milliseconds (the
benchmark, bench/run.sh, measures those)."""
import concurrent.futures
import time

from conftest import HELLO

SPIN = {"spin": {"code": "while (true) {}"}}


def latencies_while(service, workspace, function, probe_workspace, probe_function, parameters=None):
    """Runs `function` of `workspace` (which times out) and, meanwhile, the probe function again and
    again; returns (the time the spinning run took, the probe latencies)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        begun = time.monotonic()
        spinning = pool.submit(service.run, workspace, function)
        latencies = []
        while not spinning.done():
            started = time.monotonic()
            r = service.run(probe_workspace, probe_function, parameters)
            latencies.append(time.monotonic() - started)
            assert r.status_code == 200, r.text
        assert spinning.result().status_code == 504
        return time.monotonic() - begun, latencies


def test_node_runs_stay_fast_beside_a_busy_loop(make_service):
    service = make_service(env={"FUNCTIONS_RUN_TIMEOUT": "1000", "WORKER_PING_TIMEOUT": "200"})
    assert service.save("spinner", SPIN).status_code == 200
    assert service.save("other", HELLO).status_code == 200
    assert service.run("other", "hello", {"name": "warm"}).status_code == 200

    elapsed, latencies = latencies_while(service, "spinner", "spin", "other", "hello", {"name": "p"})

    assert 0.9 <= elapsed < 3.0  # the timeout, not the worker's pace
    assert len(latencies) >= 5, latencies
    assert max(latencies) < 0.5, latencies


def test_python_runs_stay_fast_beside_a_busy_loop(make_service):
    service = make_service(env={"PYTHON_FUNCTIONS_RUN_TIMEOUT": "1000", "WORKER_PING_TIMEOUT": "200"})
    python = {"language": "python"}
    assert service.save("stuck", {"spin": {"code": "while True:\n    pass", **python}}).status_code == 200
    assert service.save("fast", {"hello": {"code": "return 'hi'", **python}}).status_code == 200
    assert service.run("fast", "hello").status_code == 200  # warm

    elapsed, latencies = latencies_while(service, "stuck", "spin", "fast", "hello")

    assert elapsed < 5
    assert len(latencies) >= 2, latencies
    assert max(latencies) < 0.9, latencies
