"""Saving: compile checks, persistence across restarts, regeneration of scripts, crash safety."""
import glob
import os
import random
import signal
import threading
import time

import pytest
import requests

from conftest import HELLO


def script_path(service, workspace):
    """The workspace's newest generated script (they are content-addressed: functions-<hash>.js)."""
    scripts = glob.glob(os.path.join(service.data_dir, workspace, "functions-*.js"))
    assert scripts, os.listdir(os.path.join(service.data_dir, workspace))
    return max(scripts, key=os.path.getmtime)


# ---- compile checks at save time ----

def test_syntax_error_names_function_line_and_column_and_keeps_the_old_version(service):
    assert service.save("ws", HELLO).status_code == 200
    broken = {"hello": {"code": 'return "v2";'}, "other": {"code": "const a = 1;\nreturn (;"}}
    r = service.save("ws", broken)
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == "RequestValidationError"
    assert "other" in body["message"] and "line 2" in body["message"] and "column 9" in body["message"]
    [detail] = body["details"]
    assert detail["function"] == "other"
    assert detail["path"] == "functions.other.code"
    assert (detail["line"], detail["column"]) == (2, 9)
    assert "SyntaxError" in detail["message"]
    # Nothing was replaced: the previous version keeps serving.
    assert service.get("/v2/functions/ws").json() == {"functions": HELLO}
    assert service.run("ws", "hello", {"name": "still"}).json()["result"] == "Hello still"


def test_every_broken_function_is_reported(service):
    r = service.save("ws", {"a": {"code": "return 1"}, "b": {"code": "return {"}, "c": {"code": "let let = 1;"}})
    assert r.status_code == 400
    assert {d["function"] for d in r.json()["details"]} == {"b", "c"}
    assert service.get("/v2/functions/ws").status_code == 404


def test_syntax_error_on_first_save_stores_nothing(service):
    r = service.save("fresh", {"f": {"code": "return )"}})
    assert r.status_code == 400
    assert service.get("/v2/functions/fresh").status_code == 404
    assert not os.path.exists(os.path.join(service.data_dir, "fresh", "workspace.yaml"))


@pytest.mark.parametrize("code", [
    "}, function(){",
    "return 1;\n}, function(){",
    "return 1;\n}\nasync function evil() {\nreturn 2;",
    "return 1;\n}});\n(function(){ ",
    "return 1; }\nmodule.exports = 0;\nfunction x() {",
    "return 1; /*",
    "return `",
])
def test_code_escaping_the_function_wrapper_is_rejected(service, code):
    assert service.save("ws", HELLO).status_code == 200
    r = service.save("ws", {"hello": {"code": code}})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "RequestValidationError"
    assert r.json()["details"][0]["function"] == "hello"
    assert service.run("ws", "hello", {"name": "safe"}).json()["result"] == "Hello safe"


def test_code_that_only_looks_odd_is_accepted(service):
    functions = {"f": {"code": "// a comment at the end"},
                 "g": {"code": "const s = '}, function(){'; /* } */ return s;"},
                 "h": {"code": "return `${'}'}`;"}}
    assert service.save("ws", functions).status_code == 200
    assert service.run("ws", "f").json()["result"] is None
    assert service.run("ws", "g").json()["result"] == "}, function(){"
    assert service.run("ws", "h").json()["result"] == "}"


# ---- persistence ----

def test_restart_keeps_every_workspace(make_service):
    service = make_service()
    body = {"functions": {**HELLO, "add": {"code": "return a + b;", "parameters": {
        "a": {"type": "integer", "default": 1}, "b": {"type": "integer", "default": 2}}}}}
    assert service.post("/v2/functions/kept", json=body).status_code == 200
    assert service.save("other", {"f": {"code": "return 'other';"}}).status_code == 200
    assert service.stop() == 0
    service.start()
    assert service.get("/v2/functions").json() == {"workspaces": ["kept", "other"]}
    assert service.get("/v2/functions/kept").json() == body
    assert service.run("kept", "hello", {"name": "again"}).json()["result"] == "Hello again"
    assert service.run("kept", "add", {"b": 5}).json()["result"] == 6
    assert service.run("other", "f").json()["result"] == "other"


TAMPERED = 'module.exports = function () { return { hello: async () => "tampered" }; };\n'


def test_update_scripts_on_startup_regenerates_a_tampered_script(make_service):
    service = make_service()
    assert service.save("ws", HELLO).status_code == 200
    service.stop()
    path = script_path(service, "ws")
    original = open(path).read()
    # Keep the fingerprint header, so that only a forced regeneration notices.
    header = original.splitlines(keepends=True)[0]
    with open(path, "w") as f:
        f.write(header + TAMPERED)
    service.restart(UPDATE_SCRIPTS_ON_STARTUP="yes")
    assert open(path).read() == original  # before any run: done at start-up
    assert service.run("ws", "hello", {"name": "x"}).json()["result"] == "Hello x"


def test_update_scripts_on_startup_regenerates_a_deleted_script(make_service):
    service = make_service()
    assert service.save("ws", HELLO).status_code == 200
    service.stop()
    path = script_path(service, "ws")
    original = open(path).read()
    os.remove(path)
    service.restart(UPDATE_SCRIPTS_ON_STARTUP="true")
    assert open(path).read() == original
    assert service.run("ws", "hello", {"name": "y"}).json()["result"] == "Hello y"


def test_a_stale_script_is_regenerated_before_a_run(make_service):
    service = make_service()
    assert service.save("ws", {"f": {"code": "return 'v1';"}}).status_code == 200
    path = script_path(service, "ws")
    v1 = open(path).read()
    assert service.save("ws", {"f": {"code": "return 'v2';"}}).status_code == 200
    path = script_path(service, "ws")
    service.stop()
    with open(path, "w") as f:
        f.write(v1)  # the current version's file holding the previous version's text (damage)
    service.start()
    assert service.run("ws", "f").json()["result"] == "v2"
    assert "'v2'" in open(path).read()


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated"])
def test_a_corrupted_script_is_regenerated_before_a_run(make_service, damage):
    service = make_service()
    assert service.save("ws", HELLO).status_code == 200
    service.stop()
    path = script_path(service, "ws")
    original = open(path).read()
    with open(path, "w") as f:
        if damage == "garbage":
            f.write("\x00\x01 this is not javascript {{{")
        elif damage == "truncated":
            f.write(original[: len(original) // 2])
    service.start()
    r = service.run("ws", "hello", {"name": "z"})
    assert r.status_code == 200, r.text
    assert r.json()["result"] == "Hello z"
    assert open(path).read() == original


# ---- crash safety ----

def version_body(k):
    # Every version differs in size and shape, and is big enough for a write to take a while.
    functions = {"f": {"code": f"// {'v' * (20000 + 3000 * k)}\nreturn {k};"}}
    for extra in range(k % 3):
        functions[f"g{extra}"] = {"code": f"return {extra};"}
    return functions


def test_sigkill_during_a_storm_of_saves_leaves_every_workspace_loadable(make_service, tmp_path):
    names = [f"ws{i}" for i in range(4)]
    data_dir = tmp_path / "storm"
    service = make_service(data_dir=data_dir)
    for name in names:
        assert service.save(name, version_body(0)).status_code == 200
    rng = random.Random(2)
    for _round in range(5):
        stop = threading.Event()

        def storm(name, seed):
            k = seed
            session = requests.Session()
            while not stop.is_set():
                k += 1
                try:
                    session.post(f"{service.url}/v2/functions/{name}", json={"functions": version_body(k % 6)},
                                 timeout=5)
                except Exception:  # noqa: BLE001 - the service is killed under us
                    return

        threads = [threading.Thread(target=storm, args=(name, i), daemon=True) for i, name in enumerate(names)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.15, 0.5))  # let saves pile up: the point is to kill in the middle of one
        service.proc.send_signal(signal.SIGKILL)
        service.proc.wait()
        stop.set()
        for t in threads:
            t.join(10)

        service.session.close()
        service.start()
        assert service.get("/v2/functions").json()["workspaces"] == names
        for name in names:
            r = service.get(f"/v2/functions/{name}")
            assert r.status_code == 200, r.text
            functions = r.json()["functions"]
            k = int(functions["f"]["code"].rsplit("return ", 1)[1].rstrip(";"))
            assert functions == version_body(k)
            run = service.run(name, "f")
            assert run.status_code == 200, run.text
            assert run.json()["result"] == k
