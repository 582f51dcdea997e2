"""Throughput of a 10 MB download from an "outside" server, by a function, in each WORKER_NETWORK
mode (docs/security.md, "Network"). Needs root: it makes the same outside namespace as
tests/e2e/test_network.py.

    /usr/bin/python3 bench/network_download.py --binary build/customcode [--repeats 5]
"""
import argparse
import os
import pathlib
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from test_network import Outside, network_service  # noqa: E402

SIZE = 10 * 1024 * 1024
DOWNLOAD = """
const http = require('http');
return await new Promise((resolve) => {
  const started = process.hrtime.bigint();
  http.get(url, (res) => { let n = 0; res.on('data', (d) => n += d.length);
    res.on('end', () => resolve({bytes: n, ms: Number(process.hrtime.bigint() - started) / 1e6})); })
    .on('error', (e) => resolve({error: e.code}));
});
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="build/customcode")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--modes", default="isolated,host")
    args = ap.parse_args()
    base = pathlib.Path(tempfile.mkdtemp(prefix="cc-netbench-"))
    os.chmod(base, 0o711)
    outside = Outside(base)
    try:
        # Every mode's service up first, then the downloads interleaved (one per mode in turn), so
        # that load from elsewhere on the machine falls on all modes alike.
        modes = args.modes.split(",")
        services = {}
        try:
            for mode in modes:
                services[mode] = network_service(os.path.abspath(args.binary), outside, base, mode, WORKER_NETWORK=mode)
                services[mode].save("download", {"get": {"code": DOWNLOAD, "parameters": {"url": {"type": "string"}}}})
            rates = {mode: [] for mode in modes}
            for round_ in range(args.repeats + 1):
                for mode in modes:
                    r = services[mode].run("download", "get", {"url": outside.url(f"/bytes/{SIZE}")}).json()["result"]
                    assert r.get("bytes") == SIZE, r
                    if round_ > 0:  # the first run also starts the worker
                        rates[mode].append(SIZE / 1e6 / (r["ms"] / 1000))
            for mode in modes:
                print(f"{mode}: 10 MB download, MB/s median {statistics.median(rates[mode]):.0f} "
                      f"(min {min(rates[mode]):.0f}, max {max(rates[mode]):.0f}, {args.repeats} runs, "
                      f"interleaved with {', '.join(m for m in modes if m != mode)})")
        finally:
            for service in services.values():
                service.stop()
    finally:
        outside.close()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
