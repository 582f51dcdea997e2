#!/usr/bin/env python3
"""Several replicas behind HAProxy (deploy/haproxy/haproxy.cfg): round-robin against
workspace-affine routing, then one replica killed under load.

Starts N customcode processes on one shared data directory and HAProxy in front, saves W hello
workspaces, restarts the replicas (no warm worker anywhere), then runs wrk over the proxy with
every request going to a random workspace. Reports, per routing: cold starts (the replicas'
customcode_cold_starts_total), total worker memory (PSS of every process below the replicas, after
the load) and throughput. Then, with affine routing, kills one replica with SIGKILL in the middle
of a wrk run and counts the failed requests, and checks that every workspace answers through the
proxy right after.

Run by hand: /usr/bin/python3 bench/replicas.py --binary build-release/customcode
Nothing here is asserted: it measures.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.request

from bench import HELLO_JS, Service, descendants, pss_kb

HERE = os.path.dirname(os.path.abspath(__file__))
LUA = os.path.join(HERE, "workspaces.lua")
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
from haproxy_proxy import Proxy  # noqa: E402 - tests/haproxy_proxy.py


def metric(service, name):
    with urllib.request.urlopen(f"{service.url}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
    return 0.0


def wrk(url, workspaces, connections, duration):
    env = dict(os.environ, BENCH_WORKSPACES=str(workspaces))
    # A 30 s timeout: wrk's default (2 s) counts slow answers on a loaded machine as errors.
    out = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{duration}s", "--timeout", "30s",
                          "-s", LUA, url],
                         env=env, capture_output=True, text=True, timeout=duration + 60).stdout
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "non2xx": int(re.search(r"non2xx (\d+)", out).group(1)),
            "socket_errors": int(re.search(r"socket_errors (\d+)", out).group(1))}


def worker_memory_mb(replicas):
    return sum(pss_kb(p) for r in replicas for w in r.worker_pids() for p in descendants(w)) / 1024


def measure(binary, data_dir, count, workspaces, balance, connections, duration, env):
    replicas = [Service(binary, data_dir, env).start() for _ in range(count)]
    try:
        for r in replicas:  # a fresh start: no warm worker for any workspace anywhere
            r.stop()
            r.start()
        proxy = Proxy([r.port for r in replicas], None if balance == "affine" else balance)
        try:
            load = wrk(proxy.url, workspaces, connections, duration)
            return {"balance": balance,
                    "cold_starts": sum(metric(r, "customcode_cold_starts_total") for r in replicas),
                    "workers": sum(len(r.worker_pids()) for r in replicas),
                    "worker_memory_mb": round(worker_memory_mb(replicas), 1),
                    **load}
        finally:
            proxy.stop()
    finally:
        for r in replicas:
            r.stop()


def kill_one(binary, data_dir, count, workspaces, connections, duration, env):
    replicas = [Service(binary, data_dir, env).start() for _ in range(count)]
    proxy = Proxy([r.port for r in replicas])
    try:
        wrk(proxy.url, workspaces, connections, 3)  # warm every workspace on its replica
        victim = replicas[0]
        timer = threading.Timer(duration / 2, lambda: victim.proc.send_signal(signal.SIGKILL))
        timer.start()
        load = wrk(proxy.url, workspaces, connections, duration)
        timer.join()
        failed_after = []
        for i in range(workspaces):
            req = urllib.request.Request(f"{proxy.url}/v2/functions/ws{i}/run/hello", method="POST",
                                         data=b'{"parameters":{"name":"x"}}',
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    if r.status != 200:
                        failed_after.append(i)
            except OSError:
                failed_after.append(i)
        return {**load, "connections": connections, "failed_after_kill": len(failed_after)}
    finally:
        proxy.stop()
        for r in replicas:
            r.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--workspaces", type=int, default=200)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the replicas")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "replicas.json"))
    args = parser.parse_args()
    env = dict(e.split("=", 1) for e in args.env)

    data = tempfile.mkdtemp(prefix="customcode-replicas-")
    os.chmod(data, 0o711)
    writer = Service(args.binary, data, env).start()
    for i in range(args.workspaces):
        writer.save(f"ws{i}", HELLO_JS)
    writer.stop()

    results = [measure(args.binary, data, args.replicas, args.workspaces, balance, args.connections,
                       args.duration, env) for balance in ("roundrobin", "affine")]
    killed = kill_one(args.binary, data, args.replicas, args.workspaces, args.connections, args.duration, env)

    print(f"{args.replicas} replicas, {args.workspaces} workspaces, wrk -c{args.connections} {args.duration} s")
    print("| Routing | Cold starts | Workers | Worker memory (PSS) | Throughput | Errors |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['balance']} | {r['cold_starts']:.0f} | {r['workers']} | {r['worker_memory_mb']:.0f} MB "
              f"| {r['rps']:,.0f} req/s | {r['non2xx'] + r['socket_errors']} |")
    print(f"kill -9 of one replica under load (affine): {killed['non2xx']} error answers and "
          f"{killed['socket_errors']} socket errors out of {killed['requests']} requests "
          f"({killed['connections']} connections); {killed['failed_after_kill']} of {args.workspaces} "
          f"workspaces failed right after")
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump({"routing": results, "kill": killed}, f, indent=2)
    subprocess.run(["rm", "-rf", data])


if __name__ == "__main__":
    sys.exit(main())
