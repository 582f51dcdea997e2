"""Running functions: calls between functions, cache, results, errors, logs, require, caps."""
import concurrent.futures
import datetime

import pytest
import requests

from conftest import HELLO


@pytest.fixture
def service(shared_service):
    """Every test here uses workspaces of its own, so one service serves the whole module."""
    return shared_service


def run_ok(service, workspace, function, parameters=None):
    r = service.run(workspace, function, parameters)
    assert r.status_code == 200, r.text
    return r.json()


def test_functions_call_each_other_with_await(service):
    functions = {
        "double": {"code": "return 2 * x;", "parameters": {"x": {"type": "number"}}},
        "square": {"code": "return x * x;", "parameters": {"x": {"type": "number"}}},
        "combine": {"code": "const d = await double({x}); const s = await square({x: d});\n"
                            "return {d, s, h: await hello({name: 'nested'})};",
                    "parameters": {"x": {"type": "number", "default": 3}}},
        **HELLO}
    assert service.save("calls", functions).status_code == 200
    assert run_ok(service, "calls", "combine")["result"] == {"d": 6, "s": 36, "h": "Hello nested"}
    assert run_ok(service, "calls", "combine", {"x": 5})["result"] == {"d": 10, "s": 100, "h": "Hello nested"}


def test_cache_is_shared_by_runs_and_functions_of_a_workspace(service):
    functions = {
        "incr": {"code": "cache.n = (cache.n || 0) + 1; return cache.n;"},
        "peek": {"code": "return cache.n === undefined ? null : cache.n;"},
    }
    assert service.save("c1", functions).status_code == 200
    assert service.save("c2", functions).status_code == 200
    assert [run_ok(service, "c1", "incr")["result"] for _ in range(3)] == [1, 2, 3]
    assert run_ok(service, "c1", "peek")["result"] == 3
    # Another workspace has its own cache.
    assert run_ok(service, "c2", "peek")["result"] is None
    assert run_ok(service, "c2", "incr")["result"] == 1


@pytest.mark.parametrize("code", ["return;", "return undefined;", "const a = 1;", "", "return () => 1;"])
def test_undefined_results_are_null(service, code):
    assert service.save("u", {"f": {"code": code}}).status_code == 200
    body = run_ok(service, "u", "f")
    assert body["result"] is None
    assert body["logs"] == []


@pytest.mark.parametrize("value", [0, False, "", [], {}, "text", 1.25, [1, {"a": None}]])
def test_falsy_and_structured_results_come_back_as_they_are(service, value):
    import json
    assert service.save("r", {"f": {"code": f"return {json.dumps(value)};"}}).status_code == 200
    assert run_ok(service, "r", "f")["result"] == value


def test_thrown_error_is_500_with_name_message_stack_and_logs(service):
    code = ("console.log('before the throw');\n"
            "await new Promise((r) => setTimeout(r, 5));\n"
            "console.warn('still before');\n"
            "throw new TypeError('bad thing happened');")
    assert service.save("t", {"boom": {"code": code}}).status_code == 200
    r = service.run("t", "boom")
    assert r.status_code == 500
    body = r.json()
    assert body["error"] == "FunctionError"
    assert "bad thing happened" in body["message"]
    assert body["details"]["name"] == "TypeError"
    assert body["details"]["message"] == "bad thing happened"
    assert "bad thing happened" in body["details"]["stack"] and "boom" in body["details"]["stack"]
    assert [(log["level"], log["message"]) for log in body["logs"]] == [("log", "before the throw"),
                                                                       ("warn", "still before")]
    assert isinstance(body["duration"], int)


@pytest.mark.parametrize("code,message", [("throw 'a plain string';", "a plain string"),
                                          ("throw {message: 'an object'};", "an object"),
                                          ("await Promise.reject(new RangeError('rejected'));", "rejected"),
                                          ("return await other();", "from other")])
def test_other_kinds_of_throw_are_500_function_errors(service, code, message):
    functions = {"f": {"code": code}, "other": {"code": "throw new Error('from other');"}}
    assert service.save("t2", functions).status_code == 200
    r = service.run("t2", "f")
    assert r.status_code == 500
    assert r.json()["error"] == "FunctionError"
    assert message in r.json()["message"]


def test_a_throw_does_not_hurt_the_next_runs(service):
    assert service.save("t3", {"bad": {"code": "throw new Error('x');"}, "good": {"code": "return 'ok';"}}).status_code == 200
    for _ in range(3):
        assert service.run("t3", "bad").status_code == 500
        assert run_ok(service, "t3", "good")["result"] == "ok"


def test_console_levels_are_captured_with_level_message_and_timestamp(service):
    code = ("console.log('a', 1, {k: 'v'});\nconsole.info('b');\nconsole.warn('c');\n"
            "console.error(new Error('d').message);\nconsole.debug('e %d', 5);\nreturn 'done';")
    assert service.save("logs", {"f": {"code": code}}).status_code == 200
    before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=5)
    body = run_ok(service, "logs", "f")
    after = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=5)
    assert body["result"] == "done"
    assert [(log["level"], log["message"]) for log in body["logs"]] == [
        ("log", "a 1 { k: 'v' }"), ("info", "b"), ("warn", "c"), ("error", "d"), ("debug", "e 5")]
    for log in body["logs"]:
        assert set(log) == {"level", "message", "timestamp"}
        stamp = datetime.datetime.fromisoformat(log["timestamp"].replace("Z", "+00:00"))
        assert before <= stamp <= after
    stamps = [log["timestamp"] for log in body["logs"]]
    assert stamps == sorted(stamps)


def test_concurrent_runs_of_one_workspace_keep_their_own_logs(service):
    code = ("console.log(`start ${id}`);\n"
            "await new Promise((r) => setTimeout(r, 10 + (id * 37) % 60));\n"
            "console.info(`middle ${id}`);\n"
            "await new Promise((r) => setTimeout(r, 10 + (id * 53) % 40));\n"
            "const inner = await helper({id});\n"
            "console.warn(`end ${id}`);\n"
            "return id;")
    functions = {"f": {"code": code, "parameters": {"id": {"type": "integer"}}},
                 "helper": {"code": "await new Promise((r) => setImmediate(r)); console.debug(`helper ${id}`); return id;",
                            "parameters": {"id": {"type": "integer"}}}}
    assert service.save("conc", functions).status_code == 200
    assert run_ok(service, "conc", "f", {"id": -1})["result"] == -1  # warm

    def one(i):
        r = requests.post(f"{service.url}/v2/functions/conc/run/f", json={"parameters": {"id": i}}, timeout=30)
        return i, r

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(one, range(20)))
    for i, r in results:
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["result"] == i
        assert [(log["level"], log["message"]) for log in body["logs"]] == [
            ("log", f"start {i}"), ("info", f"middle {i}"), ("debug", f"helper {i}"), ("warn", f"end {i}")]


@pytest.mark.parametrize("module", ["fs", "child_process", "node:fs", "fs/promises", "net", "worker_threads",
                                    "./functions.js", "/etc/passwd"])
def test_require_outside_the_allowlist_is_a_clear_error(service, module):
    assert service.save("req", {"f": {"code": f"require({module!r}); return 'loaded';"}}).status_code == 200
    r = service.run("req", "f")
    assert r.status_code == 500
    body = r.json()
    assert body["error"] == "FunctionError"
    assert "NODE_BUILTIN_MODULES" in body["message"]
    assert module in body["message"]


def test_allowed_builtins_can_be_required(service):
    code = ("const crypto = require('crypto');\nconst url = require('node:url');\n"
            "return [crypto.createHash('sha256').update('abc').digest('hex'), new url.URL('http://x/y?z=1').pathname];")
    assert service.save("req", {"f": {"code": code}}).status_code == 200
    assert run_ok(service, "req", "f")["result"] == [
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "/y"]


def test_node_builtin_modules_env_changes_the_allowlist(make_service):
    service = make_service(env={"NODE_BUILTIN_MODULES": "path, os"})
    functions = {"p": {"code": "return require('path').join('a', 'b');"},
                 "c": {"code": "return typeof require('crypto').createHash;"}}
    assert service.save("req", functions).status_code == 200
    assert run_ok(service, "req", "p")["result"] == "a/b"
    r = service.run("req", "c")
    assert r.status_code == 500
    assert "NODE_BUILTIN_MODULES" in r.json()["message"] and "crypto" in r.json()["message"]


def test_logs_over_the_cap_are_truncated_and_marked(make_service):
    service = make_service(env={"FUNCTIONS_LOGS_MAX_SIZE": "1kb"})
    code = "for (let i = 0; i < 100; i++) console.log(`${i} ` + 'x'.repeat(100));\nreturn 'finished';"
    assert service.save("cap", {"f": {"code": code}, "small": {"code": "console.log('short'); return 1;"}}).status_code == 200
    body = run_ok(service, "cap", "f")
    assert body["result"] == "finished"
    logs = body["logs"]
    assert 5 <= len(logs) <= 12
    assert logs[0]["message"].startswith("0 ")
    assert "truncated" in logs[-1]["message"]
    assert sum(len(log["message"]) for log in logs[:-1]) <= 1024
    # The cap is per run.
    assert run_ok(service, "cap", "small")["logs"][0]["message"] == "short"


def test_result_over_the_cap_is_a_clear_error(make_service):
    service = make_service(env={"FUNCTIONS_RESULT_MAX_SIZE": "1kb"})
    functions = {"big": {"code": "console.log('made it'); return 'x'.repeat(5000);"},
                 "fits": {"code": "return 'y'.repeat(500);"}}
    assert service.save("rcap", functions).status_code == 200
    r = service.run("rcap", "big")
    assert r.status_code == 500
    body = r.json()
    assert body["error"] == "ResultTooLarge"
    assert "FUNCTIONS_RESULT_MAX_SIZE" in body["message"]
    assert body["logs"][0]["message"] == "made it"
    assert run_ok(service, "rcap", "fits")["result"] == "y" * 500


@pytest.mark.parametrize("code", ["return 10n;", "return {a: 1n};", "const a = {}; a.self = a; return a;"])
def test_non_serialisable_results_are_a_clear_error(service, code):
    assert service.save("ns", {"f": {"code": code}}).status_code == 200
    r = service.run("ns", "f")
    assert r.status_code == 500
    body = r.json()
    assert body["error"] in ("FunctionError", "ResultNotSerializable")
    assert "JSON" in body["message"] and "serialis" in body["message"]
    # The worker keeps serving.
    assert service.save("ns", {"f": {"code": "return 1;"}}).status_code == 200
    assert run_ok(service, "ns", "f")["result"] == 1


def test_duration_is_the_run_time_in_integer_milliseconds(service):
    assert service.save("d", {"slow": {"code": "await new Promise((r) => setTimeout(r, 200)); return 1;"}}).status_code == 200
    body = run_ok(service, "d", "slow")
    assert isinstance(body["duration"], int)
    assert 180 <= body["duration"] < 5000


@pytest.mark.parametrize("language", ["javascript", "python"])
def test_deeply_nested_results_come_back_whole(service, language):
    code = ("let o = 'core'; for (let i = 0; i < depth; i++) o = { next: [o] }; return o;" if language == "javascript"
            else "o = 'core'\nfor _ in range(depth):\n    o = {'next': [o]}\nreturn o")
    assert service.save("deep", {"nest": {"code": code, "language": language,
                                          "parameters": {"depth": {"type": "number"}}}}).status_code == 200
    r = service.run("deep", "nest", {"depth": 400})
    assert r.status_code == 200, r.text
    value, depth = r.json()["result"], 0  # 800 levels: each step is an object and an array
    while isinstance(value, dict):
        value, depth = value["next"][0], depth + 1
    assert (value, depth) == ("core", 400)


def test_results_with_logs_keep_both(service):
    code = "console.log('one'); console.warn('two'); return { ok: [1, 2.5, null, 'x'] };"
    assert service.save("logged", {"f": {"code": code}}).status_code == 200
    body = service.run("logged", "f").json()
    assert body["result"] == {"ok": [1, 2.5, None, "x"]}
    assert [(log["level"], log["message"]) for log in body["logs"]] == [("log", "one"), ("warn", "two")]
    assert isinstance(body["duration"], int)
