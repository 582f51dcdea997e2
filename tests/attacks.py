"""The attacks on the worker sandbox (docs/security.md, "Modes x attacks"), shared by the e2e
suite on the host (tests/e2e/test_sandbox.py, every mode a host can give) and the container test
(tests/deploy/test_container.py, bubblewrap in a podman container). Each attack saves hostile code
in an "attacker" workspace and checks that it reaches nothing outside its own workspace, and that
the service and a "victim" workspace still answer afterwards.

The JavaScript attacks use the bypasses of the in-process allowlist on purpose
(module.constructor._load, process.mainModule.require, process.binding): only the OS boundary
may stop them. Where the modes block an attack by different means, the attack checks the mode's
own claim."""
import json
import os
import re
import time
import uuid

SECRET = "secret-" + uuid.uuid4().hex
MARKER = "victim-marker-" + uuid.uuid4().hex
TMP_MAX = 4 * 1024 * 1024
MEMORY_MAX_MB = 384
LOGS_MAX = 64 * 1024
RESULT_MAX = 1024 * 1024
MAX_PROCESSES = 64  # sandbox::Sandbox::kMaxProcesses

VICTIM = {
    "secret": {"code": f'return "{MARKER}";'},
    "pysecret": {"code": f'return "{MARKER}"', "language": "python"},
}

# Loads any builtin module past the allowlist, and records each attempt's outcome.
JS_PRELUDE = """
const load = (name) => { try { return module.constructor._load(name); } catch (e) { return process.mainModule.require(name); } };
const attempt = (f) => {
  try { const v = f(); return { ok: true, value: v === undefined ? null : String(v).slice(0, 4000) }; }
  catch (e) { return { ok: false, error: String((e && (e.code || e.message)) || e).slice(0, 300) }; }
};
"""

# The Python equivalents: os without import (the subclasses trick), and __import__.
PY_PRELUDE = """
def attempt(f):
    try:
        v = f()
        return {"ok": True, "value": None if v is None else str(v)[:4000]}
    except BaseException as e:
        return {"ok": False, "error": (type(e).__name__ + ": " + str(e))[:300]}
def find_os():
    for c in ().__class__.__base__.__subclasses__():
        if c.__name__ == "_wrap_close":
            return c.__init__.__globals__
    raise RuntimeError("no _wrap_close")
g = find_os()
def imp(name):
    try:
        return __import__(name)
    except BaseException:
        return g["sys"].modules.get(name) or g["sys"].__dict__["modules"][name]
def read(path):
    fd = g["open"](path, g["O_RDONLY"])
    try:
        return g["read"](fd, 1 << 20).decode(errors="replace")
    finally:
        g["close"](fd)
"""


def js(body, parameters=None):
    return {"code": JS_PRELUDE + body, "parameters": {p: {"type": t} for p, t in (parameters or {}).items()}}


def py(body, parameters=None):
    code = PY_PRELUDE + body
    return {"code": code, "language": "python",
            "parameters": {p: {"type": t} for p, t in (parameters or {}).items()}}


class Target:
    """A sandboxed service with a victim workspace, and what the attacks aim at. A subclass says
    how to reach the service and where its things are, then calls Target.__init__:
      data_dir     the data root as the service, and so a function, names it
      service_pid  the service's pid as a function would name it
      get(path), save(ws, functions), run(ws, fn, parameters, timeout), delete(ws)
      alive()      whether the service process still runs
      log()        the service's log
      host_path(p) where the test itself reads a path under data_dir
      sandbox_processes(ws)  the pids in the sandboxes of ws's workers
    """

    def __init__(self, mode):
        self.mode = mode
        health = self.get("/sys/healthcheck").json()
        assert health["isolation"] == mode, (health, self.log())
        assert self.save("victim", VICTIM).status_code == 200
        r = self.run("victim", "secret")
        assert r.status_code == 200 and r.json()["result"] == MARKER, r.text
        self.python = self.run("victim", "pysecret").status_code != 501
        self.victim_dir = os.path.join(self.data_dir, "victim")
        self.victim_files = sorted(os.path.join(self.victim_dir, f) for f in os.listdir(self.host_path(self.victim_dir)))

    def attack(self, functions, name, parameters=None, timeout=120):
        assert self.save("attacker", functions).status_code == 200
        r = self.run("attacker", name, parameters or {}, timeout=timeout)
        self.assert_nothing_leaked(r.text)
        return r

    def assert_nothing_leaked(self, text):
        assert SECRET not in text
        assert MARKER not in text

    def assert_still_serving(self):
        assert self.alive(), "the service died:\n" + self.log()
        assert self.get("/sys/healthcheck").status_code == 200
        r = self.run("victim", "secret")
        assert r.status_code == 200 and r.json()["result"] == MARKER, r.text
        if self.python:
            r = self.run("victim", "pysecret")
            assert r.status_code == 200 and r.json()["result"] == MARKER, r.text
        assert sorted(os.listdir(self.host_path(self.victim_dir))) == [os.path.basename(f) for f in self.victim_files]


def wait_for(predicate, timeout=10.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def result(r):
    assert r.status_code == 200, r.text
    return r.json()["result"]


def sensitive_paths(t):
    return {
        "relative": ["../victim/workspace.yaml", "../victim", "../../" + os.path.basename(t.data_dir) + "/victim/workspace.yaml"],
        "absolute": t.victim_files + [t.victim_dir],
        "system": ["/etc/shadow", "/etc/passwd", "/root", "/proc/1/environ", "/proc/self/environ",
                   f"/proc/{t.service_pid}/environ", f"/proc/{t.service_pid}/cmdline", f"/proc/{t.service_pid}/root/etc/shadow"],
    }


def assert_blocked_reads(t, outcomes):
    paths = sensitive_paths(t)
    for path in paths["relative"] + paths["absolute"] + ["/etc/shadow", "/root", f"/proc/{t.service_pid}/root/etc/shadow"]:
        assert not outcomes[path]["ok"], (path, outcomes[path])


# ---- the JavaScript attacks ----

def js_cannot_read_other_workspaces_the_data_root_or_the_host(target):
    paths = sum(sensitive_paths(target).values(), [])
    body = """
const fs = load('fs');
const out = {};
for (const p of paths) out[p] = attempt(() => fs.statSync(p).isDirectory() ? fs.readdirSync(p).join(',') : fs.readFileSync(p, 'utf8'));
out.dataRoot = attempt(() => fs.readdirSync(dataRoot).join(','));
out.root = attempt(() => fs.readdirSync('/').join(','));
out.raw = attempt(() => { const b = process.binding('fs'); return b.readFileUtf8 ? b.readFileUtf8(paths[0], 0) : 'no readFileUtf8'; });
return out;
"""
    r = target.attack({"steal": js(body, {"paths": "array", "dataRoot": "string"})}, "steal",
                      {"paths": paths, "dataRoot": target.data_dir})
    out = result(r)
    assert_blocked_reads(target, out)
    if out["dataRoot"]["ok"]:
        assert "victim" not in out["dataRoot"]["value"].split(",")
    if out["root"]["ok"]:
        assert not {"root", "home", "var", "srv", "opt"} & set(out["root"]["value"].split(","))


def js_sees_no_secret_in_its_environment_or_any_process(target):
    body = """
const fs = load('fs');
const out = { env: process.env, environs: {} };
for (const pid of attempt(() => fs.readdirSync('/proc').join(',')).value?.split(',') || []) {
  if (/^\\d+$/.test(pid)) out.environs[pid] = attempt(() => fs.readFileSync(`/proc/${pid}/environ`, 'utf8'));
}
return out;
"""
    out = result(target.attack({"env": js(body)}, "env"))
    assert "SECRET_TOKEN" not in out["env"]
    assert set(out["env"]) <= {"PATH", "LANG", "HOME", "PWD", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"}


def js_child_processes_are_inside_the_sandbox(target):
    script = ("id; cat /etc/shadow; cat ../victim/workspace.yaml; cat " + " ".join(target.victim_files) +
              f"; ls /proc | grep -c '^[0-9]'; cat /proc/{target.service_pid}/environ; env; echo END")
    body = """
const cp = load('child_process');
const out = {};
out.execSync = attempt(() => cp.execSync(script, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
out.spawnSync = attempt(() => {
  const r = process.binding('spawn_sync').spawn({ file: '/bin/sh', args: ['sh', '-c', script], envPairs: [],
    stdio: [{ type: 'ignore' }, { type: 'pipe', readable: true, writable: true }, { type: 'pipe', readable: true, writable: true }] });
  return r.output ? String(r.output[1]) : JSON.stringify(r);
});
return out;
"""
    out = result(target.attack({"spawn": js(body, {"script": "string"})}, "spawn", {"script": script}))
    for outcome in out.values():
        if outcome["ok"] and "END" in (outcome["value"] or ""):
            text = outcome["value"]
            assert not re.search(r"uid=0\b", text)
            assert "root:" not in text
            processes = int(re.search(r"^(\d+)$", text, re.M).group(1))
            if target.mode == "bwrap":  # a pid namespace; the restricted mode sees the host's processes
                assert processes < 10, text


def js_cannot_kill_or_signal_the_service(target):
    body = """
const out = { ppid: process.ppid, pid: process.pid };
for (const [name, pid] of [['parent', process.ppid], ['service', servicePid], ['serviceGroup', -servicePid], ['init', 1]])
  for (const signal of ['SIGTERM', 'SIGKILL'])
    out[name + signal] = attempt(() => process.kill(pid, signal));
return out;
"""
    r = target.attack({"kill": js(body, {"servicePid": "integer"})}, "kill", {"servicePid": target.service_pid})
    assert target.alive()
    if r.status_code == 200:
        out = r.json()["result"]
        assert not out["serviceSIGKILL"]["ok"] and not out["serviceGroupSIGKILL"]["ok"], out
    # kill(-1) signals everything the worker may signal: only its own sandbox.
    body = "process.kill(-1, 'SIGKILL'); return 'survived';"
    target.attack({"killall": js(body)}, "killall")
    assert target.alive()


def js_worker_threads_stay_inside_the_sandbox(target):
    body = """
const { Worker } = load('worker_threads');
const source = `
  const { parentPort } = require('worker_threads');
  const fs = require('fs');
  const out = {};
  for (const p of ${JSON.stringify(paths)}) { try { out[p] = fs.readFileSync(p, 'utf8'); } catch (e) { out[p] = 'denied ' + e.code; } }
  try { out.spawn = require('child_process').execSync('cat /etc/shadow', { encoding: 'utf8' }); } catch (e) { out.spawn = 'denied ' + (e.code || e.status); }
  out.env = JSON.stringify(process.env);
  parentPort.postMessage(out);`;
let w;
try { w = new Worker(source, { eval: true }); } catch (e) { return { started: false, error: String(e.code || e.message) }; }
return await new Promise((resolve) => {
  w.on('message', (m) => resolve({ started: true, message: m }));
  w.on('error', (e) => resolve({ started: false, error: String(e.code || e.message) }));
});
"""
    paths = target.victim_files + ["/etc/shadow", "../victim/workspace.yaml"]
    out = result(target.attack({"thread": js(body, {"paths": "array"})}, "thread", {"paths": paths}))
    if out["started"]:
        for p in paths:
            assert out["message"][p].startswith("denied"), (p, out)
        assert out["message"]["spawn"].startswith("denied") or "root:" not in out["message"]["spawn"]


FILL_JS = """
const fs = load('fs');
const chunk = Buffer.alloc(1 << 20, 120);
const fill = (path, megabytes) => {
  let written = 0;
  try {
    const fd = fs.openSync(path, 'w');
    try { for (let i = 0; i < megabytes; i++) written += fs.writeSync(fd, chunk); }
    finally { fs.closeSync(fd); }
    return { written, error: null };
  } catch (e) { return { written, error: String(e.code || e.message) }; }
};
const out = {};
for (const p of paths) out[p] = fill(p, p.startsWith('/tmp/fill') ? 1024 : 4);
return out;
"""


def writable_paths(t):
    return ["/tmp/fill1", "/tmp/fill2", "fill", "/fill", "/dev/shm/fill", "/dev/fill", "/usr/fill",
            os.path.join(t.data_dir, "fill"), os.path.join(t.data_dir, "attacker", "fill"),
            os.path.join(t.victim_dir, "fill")]


def assert_disk_contained(t, out):
    if t.mode == "restricted":
        # No private /tmp without a mount namespace: Landlock refuses every write.
        for p, o in out.items():
            assert o["written"] == 0 and o["error"], (p, o)
        for d in (t.data_dir, os.path.join(t.data_dir, "attacker"), t.victim_dir):
            assert "fill" not in os.listdir(t.host_path(d))
        return
    tmp = [out[p] for p in out if p.startswith("/tmp/fill")]
    assert sum(o["written"] for o in tmp) <= TMP_MAX, out
    for o in tmp:
        assert o["error"] in ("ENOSPC", "EFBIG", "ERR_ACCESS_DENIED") or "No space" in o["error"] or "too large" in o["error"], out
    for p, o in out.items():
        if not p.startswith("/tmp/fill"):
            assert o["written"] == 0 and o["error"], (p, o)
    for d in (t.data_dir, os.path.join(t.data_dir, "attacker"), t.victim_dir):
        assert "fill" not in os.listdir(t.host_path(d))


def js_cannot_fill_the_disk(target):
    r = target.attack({"fill": js(FILL_JS, {"paths": "array"})}, "fill", {"paths": writable_paths(target)})
    assert_disk_contained(target, result(r))


def assert_fork_bomb_contained(t, spawned):
    assert spawned < MAX_PROCESSES
    peak = 0
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        peak = max(peak, len(t.sandbox_processes("attacker")))
        time.sleep(0.05)
    # The sandbox's processes and threads together stay under the limit; bwrap's two processes and
    # the interpreter's threads are among them.
    assert peak <= MAX_PROCESSES + 4, peak
    t.assert_still_serving()
    assert t.delete("attacker").status_code == 200
    assert wait_for(lambda: not t.sandbox_processes("attacker"), timeout=10)


def js_fork_bomb_hits_the_process_limit(target):
    body = """
const cp = load('child_process');
let spawned = 0;
const errors = {};
for (let i = 0; i < 300; i++) {
  try {
    const c = cp.spawn('/bin/sleep', ['30'], { stdio: 'ignore' });
    c.on('error', (e) => { errors[e.code] = (errors[e.code] || 0) + 1; });
    if (c.pid) spawned++;
  } catch (e) { errors[e.code || e.message] = (errors[e.code || e.message] || 0) + 1; }
}
await new Promise((resolve) => setTimeout(resolve, 200));
return { spawned, errors };
"""
    out = result(target.attack({"bomb": js(body)}, "bomb"))
    assert_fork_bomb_contained(target, out["spawned"])


def js_unbounded_allocation_hits_the_memory_limit(target):
    body = """
const kept = [];
try { for (let i = 0; i < 256; i++) kept.push(Buffer.alloc(32 << 20, 1)); }
catch (e) { return { megabytes: kept.length * 32, error: e.message }; }
return { megabytes: kept.length * 32 };
"""
    r = target.attack({"buffers": js(body)}, "buffers")
    if r.status_code == 200:
        assert r.json()["result"]["megabytes"] <= MEMORY_MAX_MB, r.text
    heap = "const a = []; for (;;) a.push(new Array(100000).fill(1.5));"
    r = target.attack({"heap": js(heap)}, "heap")
    assert r.status_code != 200
    target.assert_still_serving()
    assert target.save("attacker", {"ok": {"code": "return 1;"}}).status_code == 200
    assert result(target.run("attacker", "ok")) == 1


def js_gigabytes_of_logs_are_truncated(target):
    body = """
const line = 'x'.repeat(1 << 16);
for (let i = 0; i < 16384; i++) console.log(line);
return 'done';
"""
    r = target.attack({"logs": js(body)}, "logs")
    logs = r.json()["logs"]
    assert sum(len(e["message"]) for e in logs) <= LOGS_MAX + 1024
    assert "truncated" in logs[-1]["message"]
    # Past the console: straight to stdout/stderr (the service log, rate-limited) and to the frame
    # pipe (a frame over the limit kills the worker).
    body = """
const fs = load('fs');
const chunk = 'y'.repeat(1 << 20);
for (let i = 0; i < 256; i++) { fs.writeSync(1, chunk); fs.writeSync(2, chunk + '\\n'); }
for (let i = 0; i < 64; i++) fs.writeSync(4, chunk);
return 'done';
"""
    r = target.attack({"raw": js(body)}, "raw")
    assert r.status_code != 200 or r.json()["result"] == "done"
    assert len(r.content) < 64 * 1024


def js_gigabyte_result_is_refused(target):
    body = "return 'x'.repeat(size);"
    for size in (512 * 1024 * 1024, 64 * 1024 * 1024):
        r = target.attack({"big": js(body, {"size": "integer"})}, "big", {"size": size})
        assert r.status_code != 200
        assert len(r.content) < 64 * 1024
    forged = """
const fs = load('fs');
fs.writeSync(4, '{"type":"result","id":1,"ok":true,"result":"');
const chunk = 'z'.repeat(1 << 20);
for (let i = 0; i < 1024; i++) fs.writeSync(4, chunk);
return 'unreachable';
"""
    r = target.attack({"forged": js(forged)}, "forged")
    assert r.status_code != 200
    assert len(r.content) < 64 * 1024


# ---- the Python attacks ----

def py_cannot_read_other_workspaces_the_data_root_or_the_host(py_target):
    body = """
out = {}
for p in paths:
    out[p] = attempt(lambda: ",".join(g["listdir"](p)) if g["path"].isdir(p) else read(p))
out["dataRoot"] = attempt(lambda: ",".join(g["listdir"](dataRoot)))
out["builtin_open"] = attempt(lambda: open(paths[0]).read())
out["io_open"] = attempt(lambda: imp("io").open(paths[0]).read())
return out
"""
    paths = sum(sensitive_paths(py_target).values(), [])
    out = result(py_target.attack({"steal": py(body, {"paths": "array", "dataRoot": "string"})}, "steal",
                                  {"paths": paths, "dataRoot": py_target.data_dir}))
    assert_blocked_reads(py_target, out)
    if out["dataRoot"]["ok"]:
        assert "victim" not in out["dataRoot"]["value"].split(",")


def py_sees_no_secret_in_its_environment_or_any_process(py_target):
    body = """
out = {"env": dict(g["environ"]), "environs": {}}
for pid in g["listdir"]("/proc"):
    if pid.isdigit():
        out["environs"][pid] = attempt(lambda: read("/proc/" + pid + "/environ"))
return out
"""
    out = result(py_target.attack({"env": py(body)}, "env"))
    assert "SECRET_TOKEN" not in out["env"]


def py_child_processes_are_inside_the_sandbox(py_target):
    script = ("id; cat /etc/shadow; cat ../victim/workspace.yaml; cat " + " ".join(py_target.victim_files) +
              f"; ls /proc | grep -c '^[0-9]'; cat /proc/{py_target.service_pid}/environ; env; echo END")
    body = """
out = {}
def popen():
    p = g["popen"](script)
    return p.read()
out["popen"] = attempt(popen)
out["subprocess"] = attempt(lambda: imp("subprocess").run(["/bin/sh", "-c", script], capture_output=True, text=True).stdout)
return out
"""
    out = result(py_target.attack({"spawn": py(body, {"script": "string"})}, "spawn", {"script": script}))
    for outcome in out.values():
        if outcome["ok"] and "END" in (outcome["value"] or ""):
            text = outcome["value"]
            assert not re.search(r"uid=0\b", text)
            assert "root:" not in text
            if py_target.mode == "bwrap":
                assert int(re.search(r"^(\d+)$", text, re.M).group(1)) < 10, text


def py_cannot_kill_or_signal_the_service(py_target):
    body = """
out = {"ppid": g["getppid"]()}
for name, pid in (("parent", g["getppid"]()), ("service", servicePid), ("serviceGroup", -servicePid), ("init", 1)):
    for sig in (15, 9):
        out[name + str(sig)] = attempt(lambda: g["kill"](pid, sig))
return out
"""
    r = py_target.attack({"kill": py(body, {"servicePid": "integer"})}, "kill", {"servicePid": py_target.service_pid})
    assert py_target.alive()
    if r.status_code == 200:
        out = r.json()["result"]
        assert not out["service9"]["ok"] and not out["serviceGroup9"]["ok"], out
    py_target.attack({"killall": py('g["kill"](-1, 9)\nreturn "survived"')}, "killall")
    assert py_target.alive()


def py_threads_stay_inside_the_sandbox(py_target):
    body = """
box = {}
def work():
    box["read"] = attempt(lambda: read(paths[0]))
t = imp("threading").Thread(target=work)
t.start()
t.join()
return box
"""
    out = result(py_target.attack({"thread": py(body, {"paths": "array"})}, "thread",
                                  {"paths": py_target.victim_files}))
    assert not out.get("read", {"ok": False})["ok"]


def py_cannot_fill_the_disk(py_target):
    body = """
chunk = b"x" * (1 << 20)
def fill(path, megabytes):
    written = 0
    try:
        fd = g["open"](path, g["O_WRONLY"] | g["O_CREAT"] | g["O_TRUNC"], 0o644)
    except OSError as e:
        return {"written": 0, "error": e.__class__.__name__ + " " + (g["strerror"](e.errno) if e.errno else str(e))}
    try:
        for _ in range(megabytes):
            written += g["write"](fd, chunk)
        return {"written": written, "error": None}
    except OSError as e:
        return {"written": written, "error": "ENOSPC" if e.errno == 28 else "EFBIG" if e.errno == 27 else str(e)}
    finally:
        g["close"](fd)
return {p: fill(p, 1024 if p.startswith("/tmp/fill") else 4) for p in paths}
"""
    r = py_target.attack({"fill": py(body, {"paths": "array"})}, "fill", {"paths": writable_paths(py_target)})
    assert_disk_contained(py_target, result(r))


def py_fork_bomb_hits_the_process_limit(py_target):
    body = """
forked = 0
error = None
for _ in range(300):
    try:
        pid = g["fork"]()
    except OSError as e:
        error = str(e)
        break
    if pid == 0:
        try:
            g["execv"]("/bin/sleep", ["sleep", "30"])
        finally:
            g["_exit"](0)
    forked += 1
return {"forked": forked, "error": error}
"""
    out = result(py_target.attack({"bomb": py(body)}, "bomb"))
    assert out["error"], out
    assert_fork_bomb_contained(py_target, out["forked"])


def py_unbounded_allocation_hits_the_memory_limit(py_target):
    body = """
kept = []
try:
    for _ in range(256):
        kept.append(bytearray(32 << 20))
except MemoryError:
    return {"megabytes": len(kept) * 32, "error": "MemoryError"}
return {"megabytes": len(kept) * 32}
"""
    r = py_target.attack({"alloc": py(body)}, "alloc")
    if r.status_code == 200:
        assert r.json()["result"]["megabytes"] <= MEMORY_MAX_MB, r.text


def py_gigabytes_of_logs_are_truncated(py_target):
    body = """
line = "x" * (1 << 16)
for _ in range(16384):
    print(line)
return "done"
"""
    r = py_target.attack({"logs": py(body)}, "logs")
    logs = r.json()["logs"]
    assert sum(len(e["message"]) for e in logs) <= LOGS_MAX + 1024
    assert "truncated" in logs[-1]["message"]
    body = """
chunk = b"y" * (1 << 20)
for _ in range(256):
    g["write"](1, chunk)
for _ in range(64):
    g["write"](4, chunk)
return "done"
"""
    r = py_target.attack({"raw": py(body)}, "raw")
    assert len(r.content) < 64 * 1024


def py_gigabyte_result_is_refused(py_target):
    r = py_target.attack({"big": py('return "x" * size', {"size": "integer"})}, "big", {"size": 64 * 1024 * 1024})
    assert r.status_code != 200
    assert len(r.content) < 64 * 1024


SYSCALLS_PY = r"""
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
out = {}
def call(name, fn, *args):
    ctypes.set_errno(0)
    r = fn(*args)
    out[name] = 0 if r >= 0 else ctypes.get_errno()
call("unshare_user", libc.unshare, 0x10000000)
call("unshare_mount", libc.unshare, 0x00020000)
call("mount", libc.mount, b"none", b"/tmp", b"tmpfs", 0, None)
call("ptrace", libc.ptrace, 0, 0, 0, 0)  # PTRACE_TRACEME: harmless where allowed
call("keyctl", libc.syscall, 250, 0, -3, 0)
call("bpf", libc.syscall, 321, 0, 0, 0)
print("RESULT" + json.dumps(out))
"""


def js_cannot_use_namespaces_mounts_ptrace_or_keyrings(target):
    body = """
const cp = load('child_process');
return attempt(() => cp.execFileSync('/usr/bin/python3', ['-c', script], { encoding: 'utf8' }));
"""
    out = result(target.attack({"sys": js(body, {"script": "string"})}, "sys", {"script": SYSCALLS_PY}))
    if not out["ok"]:
        assert target.log()  # Node's permission model refused the child process
        return
    calls = json.loads(out["value"].split("RESULT", 1)[1])
    for name in ("unshare_user", "unshare_mount", "mount"):
        assert calls[name] != 0, calls
    if target.mode == "restricted":  # the seccomp filter
        for name in ("ptrace", "keyctl", "bpf"):
            assert calls[name] != 0, calls


# Every attack, for a test that runs them all against one target.
JS_ATTACKS = [
    js_cannot_read_other_workspaces_the_data_root_or_the_host,
    js_sees_no_secret_in_its_environment_or_any_process,
    js_child_processes_are_inside_the_sandbox,
    js_cannot_kill_or_signal_the_service,
    js_worker_threads_stay_inside_the_sandbox,
    js_cannot_fill_the_disk,
    js_fork_bomb_hits_the_process_limit,
    js_unbounded_allocation_hits_the_memory_limit,
    js_gigabytes_of_logs_are_truncated,
    js_gigabyte_result_is_refused,
    js_cannot_use_namespaces_mounts_ptrace_or_keyrings,
]
PY_ATTACKS = [
    py_cannot_read_other_workspaces_the_data_root_or_the_host,
    py_sees_no_secret_in_its_environment_or_any_process,
    py_child_processes_are_inside_the_sandbox,
    py_cannot_kill_or_signal_the_service,
    py_threads_stay_inside_the_sandbox,
    py_cannot_fill_the_disk,
    py_fork_bomb_hits_the_process_limit,
    py_unbounded_allocation_hits_the_memory_limit,
    py_gigabytes_of_logs_are_truncated,
    py_gigabyte_result_is_refused,
]
