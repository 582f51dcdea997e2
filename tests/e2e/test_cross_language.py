"""JavaScript and Python functions of one workspace call each other through the service: both
directions, defaults, JSON round trips, one log, one deadline, errors, cycles, the depth limit,
and what happens when the worker on either side of a call dies."""
import concurrent.futures
import os
import signal
import time

import pytest

from conftest import one_worker, wait_for


def js(code, parameters=None):
    return {"code": code, "parameters": parameters or {}}


def py(code, parameters=None):
    return {"code": code, "language": "python", "parameters": parameters or {}}


def assert_isolated(service):
    health = service.get("/sys/healthcheck").json()
    assert health.get("isolation") == "bwrap", (health, service.log())


def ok(r):
    assert r.status_code == 200, r.text
    return r.json()["result"]


NUMBER = {"type": "number"}


def test_javascript_calls_python_and_python_calls_javascript_with_defaults(shared_service):
    service = shared_service
    functions = {
        "pyAdd": py("return a + b", {"a": NUMBER, "b": {"type": "number", "default": 10}}),
        "jsMul": js("return a * b;", {"a": NUMBER, "b": {"type": "number", "default": 3}}),
        "jsCallsPy": js("return [await pyAdd({a: x}), await pyAdd({a: x, b: 1})];", {"x": NUMBER}),
        "py_calls_js": py("return [await jsMul(a=x), await jsMul(x, 5), await jsMul(b=2, a=x)]", {"x": NUMBER}),
        "py_bad_call": py("try:\n    await jsMul(1, 2, 3)\nexcept TypeError as e:\n    return str(e)"),
    }
    assert service.save("xl-both", functions).status_code == 200

    assert ok(service.run("xl-both", "jsCallsPy", {"x": 4})) == [14, 5]
    assert ok(service.run("xl-both", "py_calls_js", {"x": 4})) == [12, 20, 8]
    assert ok(service.run("xl-both", "py_bad_call")) == "jsMul() takes 2 positional arguments but 3 were given"
    # Each side ran on the workspace's worker of its language.
    one_worker(service, "xl-both", "worker.js")
    one_worker(service, "xl-both", "worker.py")
    assert service.metric("customcode_nested_calls_total") >= 5


VALUE = {"s": "h\u00e9llo \"q\" \\ \n\t \u2028 \u2603 \U0001F600 </script>", "n": [1, 2.5, -3e-7, None, True, False],
         "o": {"deep": {"deeper": [[], {}, [[1]]]}, "k\"ey": "v"}, "none": None, "empty": "", "big": 12345678901234}


def test_parameters_and_results_cross_as_json(shared_service):
    service = shared_service
    functions = {
        "pyEcho": py("return value", {"value": {"type": "object"}}),
        "jsEcho": js("return value;", {"value": {"type": "object"}}),
        "jsRound": js("return [await pyEcho({value}), await pyEcho({value: null}), await pyEcho({})];",
                      {"value": {"type": "object"}}),
        "py_round": py("return [await jsEcho(value=value), await jsEcho(value=None), await jsEcho()]",
                       {"value": {"type": "object"}}),
        "jsUndefined": js("return undefined;"),
        "py_gets_null": py("v = await jsUndefined()\nreturn v is None"),
        "py_nan": py("return await jsEcho(value=[float('nan'), float('inf')])"),
    }
    assert service.save("xl-json", functions).status_code == 200

    assert ok(service.run("xl-json", "jsRound", {"value": VALUE})) == [VALUE, None, None]
    assert ok(service.run("xl-json", "py_round", {"value": VALUE})) == [VALUE, None, None]
    assert ok(service.run("xl-json", "jsRound", {"value": [VALUE, [VALUE]]}))[0] == [VALUE, [VALUE]]
    assert ok(service.run("xl-json", "py_gets_null")) is True
    assert ok(service.run("xl-json", "py_nan")) == [None, None]  # JSON has no NaN: null, as JavaScript does


def test_the_logs_of_nested_calls_are_in_the_outer_run_in_order(shared_service):
    service = shared_service
    functions = {
        "outer": js("console.log('js before'); const r = await middle({}); console.warn('js after', r); return r;"),
        "middle": py("print('py 1')\nr = await inner(x=2)\nprint('py 2')\nreturn r + 1"),
        "inner": js("console.info('js inner'); return x * 10;", {"x": NUMBER}),
    }
    assert service.save("xl-logs", functions).status_code == 200

    body = service.run("xl-logs", "outer").json()

    assert body["result"] == 21, body
    assert [(e["level"], e["message"]) for e in body["logs"]] == [
        ("log", "js before"), ("log", "py 1"), ("info", "js inner"), ("log", "py 2"), ("warn", "js after 21")]
    assert all(e["timestamp"].endswith("Z") for e in body["logs"])


def test_the_logs_of_concurrent_runs_stay_apart(shared_service):
    service = shared_service
    functions = {
        "outer": js("console.log('outer', tag); return await talk({tag});", {"tag": {"type": "string"}}),
        "talk": py("import asyncio\nfor i in range(3):\n    print('talk', tag, i)\n    await asyncio.sleep(0.01)\n"
                   "return tag", {"tag": {"type": "string"}}),
    }
    assert service.save("xl-logs2", functions).status_code == 200
    tags = [f"t{i}" for i in range(6)]
    with concurrent.futures.ThreadPoolExecutor(len(tags)) as pool:
        responses = list(pool.map(lambda tag: service.run("xl-logs2", "outer", {"tag": tag}), tags))
    for tag, r in zip(tags, responses):
        assert ok(r) == tag
        assert [e["message"] for e in r.json()["logs"]] == [f"outer {tag}"] + [f"talk {tag} {i}" for i in range(3)]


def test_the_log_cap_is_on_the_whole_outer_run(make_service):
    service = make_service(env={"FUNCTIONS_LOGS_MAX_SIZE": "1kb"})
    assert_isolated(service)
    # Each side stays under the cap on its own (no marker from either worker); together they pass it.
    functions = {
        "outer": js("for (let i = 0; i < 12; i++) console.log('j'.repeat(50));\n"
                    "await talk({}); console.log('after'); return 'done';"),
        "talk": py("for i in range(12):\n    print('p' * 50)"),
    }
    assert service.save("xl-logcap", functions).status_code == 200

    body = service.run("xl-logcap", "outer").json()

    assert body["result"] == "done", body
    logs = body["logs"]
    assert sum(len(e["message"]) for e in logs[:-1]) <= 1024
    assert logs[-1]["level"] == "warn" and "truncated" in logs[-1]["message"], logs[-1]
    assert [e["message"][0] for e in logs[:-1]] == ["j"] * 12 + ["p"] * 8  # in order, up to the cap
    assert not any(e["message"] == "after" for e in logs)


@pytest.fixture
def short_timeouts(make_service):
    service = make_service(env={"FUNCTIONS_RUN_TIMEOUT": "1500", "PYTHON_FUNCTIONS_RUN_TIMEOUT": "1500"})
    assert_isolated(service)
    return service


def timed(service, workspace, function, parameters=None):
    started = time.monotonic()
    r = service.run(workspace, function, parameters)
    return r, time.monotonic() - started


def test_a_nested_call_gets_what_is_left_of_the_outer_deadline(short_timeouts):
    service = short_timeouts
    functions = {
        "jsOuter": js("console.log('outer'); return await pySleep({});"),
        "pySleep": py("import asyncio\nprint('nested started')\nawait asyncio.sleep(6)\nreturn 'late'"),
        "py_outer": py("return await jsSleep()"),
        "jsSleep": js("await new Promise((r) => setTimeout(r, 6000)); return 'late';"),
        # 1 s spent before the call: the nested call has 0.5 s left, not a fresh 1.5 s.
        "jsLater": js("await new Promise((r) => setTimeout(r, 1000)); return await pyShort({});"),
        "pyShort": py("import asyncio\nawait asyncio.sleep(0.9)\nreturn 'in time?'"),
    }
    assert service.save("xl-deadline", functions).status_code == 200
    assert ok(service.run("xl-deadline", "pyShort")) == "in time?"  # alone, it fits its own timeout

    for outer in ("jsOuter", "py_outer", "jsLater"):
        r, elapsed = timed(service, "xl-deadline", outer)
        assert r.status_code == 504, (outer, r.text)
        assert r.json()["error"] == "TimeoutError", r.text
        # The outer run's 1.5 s, not the nested call's 6 s (with room for a loaded machine).
        assert 1.4 <= elapsed < 4.0, (outer, elapsed, r.headers.get("Server-Timing"))
        if outer == "jsOuter":
            # The logs so far, the nested call's included.
            assert [e["message"] for e in r.json()["logs"]] == ["outer", "nested started"], r.text
    # Both workers were only awaiting: they keep serving.
    assert ok(service.run("xl-deadline", "pyShort")) == "in time?"


def test_the_callee_languages_own_timeout_does_not_apply_to_a_nested_call(make_service):
    service = make_service(env={"FUNCTIONS_RUN_TIMEOUT": "4000", "PYTHON_FUNCTIONS_RUN_TIMEOUT": "500"})
    assert_isolated(service)
    functions = {
        "jsOuter": js("return await pySleep({});"),
        "pySleep": py("import asyncio\nawait asyncio.sleep(1)\nreturn 'done'"),
    }
    assert service.save("xl-deadline3", functions).status_code == 200
    # Run on its own, the Python function has its own 0.5 s.
    r = service.run("xl-deadline3", "pySleep")
    assert r.status_code == 504 and r.json()["error"] == "TimeoutError", r.text
    # Called from JavaScript, it has what is left of the outer run's 4 s.
    assert ok(service.run("xl-deadline3", "jsOuter")) == "done"


def test_a_timeout_caught_by_the_caller_still_fails_the_outer_run(short_timeouts):
    service = short_timeouts
    functions = {
        "jsCatches": js("try { await pySleep({}); } catch (e) { return 'caught ' + e.name; }"),
        "pySleep": py("import asyncio\nawait asyncio.sleep(6)"),
    }
    assert service.save("xl-deadline2", functions).status_code == 200
    r, elapsed = timed(service, "xl-deadline2", "jsCatches")
    assert r.status_code == 504 and r.json()["error"] == "TimeoutError", r.text
    assert elapsed < 4.0


def test_errors_cross_as_exceptions_with_name_message_and_stack(shared_service):
    service = shared_service
    functions = {
        "pyFail": py("x = 1\nraise ValueError('bad ' + str(x))"),
        "jsFail": js("throw new TypeError('nope');"),
        "jsCatches": js("try { await pyFail({}); } catch (e) {\n"
                        "  return {name: e.name, message: e.message, stack: e.stack, isError: e instanceof Error};\n}"),
        "py_catches": py("try:\n    await jsFail()\nexcept TypeError as e:\n"
                         "    return {'name': type(e).__name__, 'message': str(e), 'stack': e.stack}"),
    }
    assert service.save("xl-errors", functions).status_code == 200

    caught = ok(service.run("xl-errors", "jsCatches"))
    assert caught["name"] == "ValueError" and caught["message"] == "bad 1" and caught["isError"], caught
    assert 'File "pyFail", line 2, in pyFail' in caught["stack"], caught["stack"]
    assert "called from JavaScript" in caught["stack"] and "jsCatches" in caught["stack"], caught["stack"]

    caught = ok(service.run("xl-errors", "py_catches"))
    assert caught["name"] == "TypeError" and caught["message"] == "nope", caught
    assert "TypeError: nope" in caught["stack"] and "jsFail" in caught["stack"], caught["stack"]


def test_an_uncaught_error_fails_the_outer_run_naming_the_function_where_it_started(shared_service):
    service = shared_service
    functions = {
        "outer": js("console.log('outer'); return await middle();"),
        "middle": py("print('middle')\nreturn await inner(n=1)"),
        "inner": js("throw new RangeError('too deep: ' + n);", {"n": NUMBER}),
        "py_outer": py("return await jsThrows()"),
        "jsThrows": js("throw new Error('from js');"),
    }
    assert service.save("xl-uncaught", functions).status_code == 200

    r = service.run("xl-uncaught", "outer")
    assert r.status_code == 500, r.text
    body = r.json()
    assert body["error"] == "FunctionError", body
    assert body["details"]["name"] == "RangeError" and body["details"]["message"] == "too deep: 1", body
    assert body["details"]["function"] == "inner", body
    assert body["message"] == 'RangeError: too deep: 1 (in function "inner")', body
    assert "inner" in body["details"]["stack"] and "middle" in body["details"]["stack"], body
    assert [e["message"] for e in body["logs"]] == ["outer", "middle"], body

    r = service.run("xl-uncaught", "py_outer")
    assert r.status_code == 500 and r.json()["error"] == "FunctionError", r.text
    assert r.json()["details"]["name"] == "Error" and r.json()["details"]["function"] == "jsThrows", r.text

    # An error that did not cross keeps the envelope it always had.
    r = service.run("xl-uncaught", "inner", {"n": 2})
    assert r.json()["message"] == "RangeError: too deep: 2" and "function" not in r.json()["details"], r.text


CYCLE = {
    "ping": js("if (n <= 0) return ['js'];\nreturn ['js', ...(await pong({n: n - 1}))];", {"n": NUMBER}),
    "pong": py("if n <= 0:\n    return ['py']\nreturn ['py'] + await ping(n=n - 1)", {"n": NUMBER}),
}


def test_a_cycle_javascript_python_javascript_works_also_concurrently(shared_service):
    service = shared_service
    assert service.save("xl-cycle", CYCLE).status_code == 200

    assert ok(service.run("xl-cycle", "ping", {"n": 4})) == ["js", "py", "js", "py", "js"]
    assert ok(service.run("xl-cycle", "pong", {"n": 2})) == ["py", "js", "py"]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: service.run("xl-cycle", "ping", {"n": n}), range(8)))
    for n, r in enumerate(results):
        assert len(ok(r)) == n + 1
    # One worker of each language served every level (calls land on the worker that awaits).
    one_worker(service, "xl-cycle", "worker.js")
    one_worker(service, "xl-cycle", "worker.py")


def test_nesting_deeper_than_16_fails_with_a_clear_error(shared_service):
    service = shared_service
    assert service.save("xl-depth", CYCLE).status_code == 200

    assert len(ok(service.run("xl-depth", "ping", {"n": 16}))) == 17  # 16 nested calls

    r = service.run("xl-depth", "ping", {"n": 17})
    assert r.status_code == 500, r.text
    body = r.json()
    assert body["error"] == "FunctionError" and body["details"]["name"] == "CallDepthError", body
    assert "deeper than 16" in body["details"]["message"], body
    # Both workers are fine afterwards.
    assert ok(service.run("xl-depth", "ping", {"n": 1})) == ["js", "py"]


def test_a_callee_worker_that_dies_fails_the_call_not_the_service(make_service):
    service = make_service(env={"PYTHON_BUILTIN_MODULES": "os,asyncio"})
    assert_isolated(service)
    functions = {
        "pyDies": py("import os\nos._exit(3)"),
        "pyOk": py("return 'py alive'"),
        "jsCatches": js("try { await pyDies({}); } catch (e) { return {name: e.name, message: e.message}; }"),
        "jsUncaught": js("return await pyDies({});"),
        "jsDies": js("process.exit(4);"),
        "py_catches": py("try:\n    await jsDies()\nexcept Exception as e:\n    return [type(e).__name__, str(e)]"),
        "jsOk": js("return 'js alive';"),
    }
    assert service.save("xl-dies", functions).status_code == 200

    caught = ok(service.run("xl-dies", "jsCatches"))
    assert caught["name"] == "WorkerCrashed" and "pyDies" in caught["message"], caught
    r = service.run("xl-dies", "jsUncaught")
    assert r.status_code == 500 and r.json()["error"] == "FunctionError", r.text
    assert r.json()["details"]["name"] == "WorkerCrashed" and r.json()["details"]["function"] == "pyDies", r.text
    name, message = ok(service.run("xl-dies", "py_catches"))
    assert name == "WorkerCrashed" and "jsDies" in message, message
    # The service lives, and each language gets a fresh worker.
    assert service.proc.poll() is None
    assert ok(service.run("xl-dies", "pyOk")) == "py alive"
    assert ok(service.run("xl-dies", "jsOk")) == "js alive"


def test_a_caller_killed_mid_call_cancels_its_nested_call(shared_service):
    service = shared_service
    functions = {
        "jsCaller": js("return await pySlow({});"),
        "pySlow": py("import asyncio\ncache['started'] = True\nawait asyncio.sleep(1.5)\ncache['finished'] = True"),
        "pyState": py("return sorted(cache)"),
    }
    assert service.save("xl-cancel", functions).status_code == 200
    assert ok(service.run("xl-cancel", "pyState")) == []
    python_pid = one_worker(service, "xl-cancel", "worker.py")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        outer = pool.submit(service.run, "xl-cancel", "jsCaller")
        assert wait_for(lambda: ok(service.run("xl-cancel", "pyState")) == ["started"], timeout=10)
        os.kill(one_worker(service, "xl-cancel", "worker.js"), signal.SIGKILL)
        r = outer.result()
    assert r.status_code == 500 and r.json()["error"] == "WorkerCrashed", r.text

    time.sleep(2.0)  # past the moment the nested function would have finished
    assert ok(service.run("xl-cancel", "pyState")) == ["started"]  # cancelled where it awaited
    assert one_worker(service, "xl-cancel", "worker.py") == python_pid  # that worker keeps serving


def test_a_nested_javascript_call_stuck_in_a_loop_is_killed_when_its_caller_dies(shared_service):
    service = shared_service
    functions = {
        "py_caller": py("return await jsSpin()"),
        "jsSpin": js("cache.spinning = true; while (true) {}"),
        "jsOk": js("return 'js alive';"),
        "pyOk": py("return 'py alive'"),
    }
    assert service.save("xl-cancel2", functions).status_code == 200
    assert ok(service.run("xl-cancel2", "jsOk")) == "js alive"
    js_pid = one_worker(service, "xl-cancel2", "worker.js")
    python_pid = one_worker(service, "xl-cancel2", "worker.py")
    calls_before = service.metric("customcode_nested_calls_total")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        outer = pool.submit(service.run, "xl-cancel2", "py_caller")
        # The service took the call (its run frame goes to the warm worker at once).
        assert wait_for(lambda: service.metric("customcode_nested_calls_total") > calls_before, timeout=10)
        time.sleep(0.3)
        os.kill(python_pid, signal.SIGKILL)
        r = outer.result()
    assert r.status_code == 500 and r.json()["error"] == "WorkerCrashed", r.text
    # The call was cancelled; its worker did not answer the ping while it spun, so it was killed,
    # and the next run of the workspace is served at once.
    assert wait_for(lambda: js_pid not in service.worker_pids(), timeout=5)
    assert ok(service.run("xl-cancel2", "jsOk")) == "js alive"
    assert ok(service.run("xl-cancel2", "pyOk")) == "py alive"


def test_a_nested_call_runs_the_version_of_the_outer_run(shared_service):
    service = shared_service
    v1 = {
        "jsOuter": js("await new Promise((r) => setTimeout(r, 800)); return await pyVersion({});"),
        "pyVersion": py("return 'v1'"),
    }
    assert service.save("xl-version", v1).status_code == 200
    assert ok(service.run("xl-version", "pyVersion")) == "v1"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        outer = pool.submit(service.run, "xl-version", "jsOuter")
        time.sleep(0.3)
        assert service.save("xl-version", {**v1, "pyVersion": py("return 'v2'")}).status_code == 200
        assert ok(outer.result()) == "v1"
    assert ok(service.run("xl-version", "pyVersion")) == "v2"
    assert ok(service.run("xl-version", "jsOuter")) == "v2"


def test_unknown_names_and_names_the_other_language_cannot_hold_stay_as_before(shared_service):
    service = shared_service
    functions = {
        "jsUnknown": js("return await nope({});"),
        "py_unknown": py("return await nope()"),
        # A Python function named like a Node.js global does not hide the global.
        "fetch": py("return 'python fetch'"),
        "jsFetch": js("return typeof fetch === 'function' && fetch === globalThis.fetch;"),
        # A JavaScript function named like a Python builtin does not hide the builtin.
        "len": js("return 'javascript len';"),
        "py_len": py("return len([1, 2, 3])"),
        "$dollar": js("return 1;"),
        "py_dollar": py("return 'ok'"),
    }
    assert service.save("xl-names", functions).status_code == 200

    r = service.run("xl-names", "jsUnknown")
    assert r.status_code == 500 and r.json()["details"]["name"] == "ReferenceError", r.text
    r = service.run("xl-names", "py_unknown")
    assert r.status_code == 500 and r.json()["details"]["name"] == "NameError", r.text
    assert ok(service.run("xl-names", "jsFetch")) is True
    assert ok(service.run("xl-names", "py_len")) == 3
    assert ok(service.run("xl-names", "py_dollar")) == "ok"  # no stub for a name Python cannot hold
    # Only the function's own language runs it over HTTP, as before.
    assert ok(service.run("xl-names", "fetch")) == "python fetch"
    assert ok(service.run("xl-names", "len")) == "javascript len"


def test_one_name_is_one_function_whatever_its_language(shared_service):
    service = shared_service
    # Functions are the members of one JSON object: a name given twice is one function, the last
    # one (as JSON.parse and json.loads read it), never one per language.
    body = ('{"functions": {"same": {"code": "return 1;"}, '
            '"same": {"code": "return 2", "language": "python"}}}')
    r = service.post("/v2/functions/xl-clash", data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    stored = service.get("/v2/functions/xl-clash").json()
    assert stored["functions"] == {"same": {"code": "return 2", "language": "python"}}, stored
    assert ok(service.run("xl-clash", "same")) == 2
