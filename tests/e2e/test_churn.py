"""Churn: saves and runs of 20 workspaces in both languages from several clients at once, for at
least a minute (CHURN_SECONDS). Every response must be a success or the function's own error,
each run must see one whole version (one no older than the last save answered before it
started), and the service's memory must stay flat after the warm-up."""
import os
import random
import threading
import time

import requests

WORKSPACES = [f"churn{i:02d}" for i in range(20)]
CLIENTS = 8
SAVE_SHARE = 0.15
MIN_SAVES = 200
MIN_RUNS = 1000


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def version_body(version):
    """Version `version` of a workspace: a JS and a Python function that say which version they
    are (JS asks Python's twin nothing: the languages run in separate workers), and one that
    fails on purpose."""
    return {"functions": {
        "js": {"code": f"return {{v: {version}, lang: 'js', x}};", "parameters": {"x": {"type": "number"}}},
        "py": {"code": f"return {{'v': {version}, 'lang': 'py', 'x': x}}", "language": "python",
               "parameters": {"x": {"type": "number"}}},
        "fails": {"code": f"throw new Error('expected failure of version {version}');"},
    }}


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.latencies = []
        self.requests = 0
        self.saves = 0
        self.expected_errors = 0
        self.failures = []

    def add(self, latency, failure=None, expected_error=False, save=False):
        with self.lock:
            self.requests += 1
            self.saves += save
            self.expected_errors += expected_error
            if failure:
                self.failures.append(failure)
            else:
                self.latencies.append(latency)


def test_an_hour_of_users_in_a_minute_saves_and_runs_never_fail(make_service):
    seconds = float(os.environ.get("CHURN_SECONDS", "60"))
    assert seconds >= 60 or "CHURN_SECONDS" in os.environ
    service = make_service(env={"SANDBOX": "bwrap"})  # the mode users get: refuses to start without it
    assert "sandbox: bubblewrap" in service.log()
    pid = service.proc.pid
    base = service.url

    committed = {ws: 0 for ws in WORKSPACES}  # highest version whose save was answered
    sent = {ws: 0 for ws in WORKSPACES}       # highest version whose save was sent
    save_locks = {ws: threading.Lock() for ws in WORKSPACES}
    state_lock = threading.Lock()
    for ws in WORKSPACES:
        r = requests.post(f"{base}/v2/functions/{ws}", json=version_body(1), timeout=60)
        assert r.status_code == 200, r.text
        committed[ws] = sent[ws] = 1

    tally = Tally()
    stop = threading.Event()

    def save(session, ws):
        with save_locks[ws]:  # one writer per workspace, so versions only grow
            with state_lock:
                version = sent[ws] + 1
                sent[ws] = version
            started = time.monotonic()
            try:
                r = session.post(f"{base}/v2/functions/{ws}", json=version_body(version), timeout=60)
            except requests.RequestException as e:
                tally.add(0, failure=f"save {ws} v{version}: {e!r}", save=True)
                return
            latency = time.monotonic() - started
            if r.status_code != 200:
                tally.add(latency, failure=f"save {ws} v{version}: {r.status_code} {r.text[:300]}", save=True)
                return
            with state_lock:
                committed[ws] = max(committed[ws], version)
            tally.add(latency, save=True)

    def run(session, ws, fn):
        with state_lock:
            oldest = committed[ws]
        x = random.randint(0, 10**6)
        started = time.monotonic()
        try:
            r = session.post(f"{base}/v2/functions/{ws}/run/{fn}", json={"parameters": {"x": x}}, timeout=60)
        except requests.RequestException as e:
            tally.add(0, failure=f"run {ws}/{fn}: {e!r}")
            return
        latency = time.monotonic() - started
        with state_lock:
            newest = sent[ws]
        body = r.json() if r.headers.get("Content-Type", "").startswith("application/json") else {}
        if fn == "fails":
            ok = (r.status_code == 500 and body.get("error") == "FunctionError"
                  and "expected failure of version" in body.get("message", ""))
            tally.add(latency, expected_error=ok, failure=None if ok else f"run {ws}/fails: {r.status_code} {r.text[:300]}")
            return
        if r.status_code != 200:
            tally.add(latency, failure=f"run {ws}/{fn}: {r.status_code} {r.text[:300]}")
            return
        result = body.get("result") or {}
        v = result.get("v")
        whole = result.get("lang") == fn and result.get("x") == x and isinstance(v, int) and oldest <= v <= newest
        tally.add(latency, failure=None if whole else f"run {ws}/{fn}: version {v} outside [{oldest}, {newest}]: {result}")

    def client(seed):
        rng = random.Random(seed)
        session = requests.Session()
        while not stop.is_set():
            ws = rng.choice(WORKSPACES)
            roll = rng.random()
            if roll < SAVE_SHARE:
                save(session, ws)
            else:
                run(session, ws, rng.choices(["js", "py", "fails"], weights=[10, 10, 1])[0])

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    begin = time.monotonic()
    for t in threads:
        t.start()
    # Memory: after a warm-up of a quarter of the run, then at the end of the load.
    time.sleep(seconds / 4)
    rss_warm = rss_kb(pid)
    rss_max = rss_warm
    # At least `seconds`, and enough saves and runs to mean something on a slow machine too.
    enough = lambda: tally.saves >= MIN_SAVES and tally.requests - tally.saves >= MIN_RUNS
    while time.monotonic() - begin < seconds or (not enough() and time.monotonic() - begin < 5 * seconds):
        time.sleep(1)
        rss_max = max(rss_max, rss_kb(pid))
    rss_end = rss_kb(pid)
    stop.set()
    for t in threads:
        t.join(120)
    elapsed = time.monotonic() - begin

    latencies = sorted(tally.latencies)
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    print(f"churn: {elapsed:.0f} s, {tally.requests} requests ({tally.saves} saves, {tally.expected_errors} "
          f"expected FunctionErrors), {len(tally.failures)} failures, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
          f"{tally.requests / elapsed:.0f} req/s; service RSS {rss_warm / 1024:.1f} MB after warm-up, "
          f"{rss_end / 1024:.1f} MB at the end (max {rss_max / 1024:.1f} MB)")
    assert not tally.failures, f"{len(tally.failures)} failures, first ones:\n" + "\n".join(tally.failures[:20])
    assert enough(), (tally.requests, tally.saves)
    assert rss_end - rss_warm < 4 * 1024, (rss_warm, rss_end)
    assert "keeps changing" not in service.log()
