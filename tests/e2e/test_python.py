"""Python functions: same semantics as JavaScript, run by supervised Python workers."""
import concurrent.futures
import glob
import os
import time

import pytest

from conftest import HELLO, one_worker, wait_for


def py(code, parameters=None, **extra):
    return {"code": code, "language": "python", "parameters": parameters or {}, **extra}


def assert_function_error(r, name):
    assert r.status_code == 500, r.text
    body = r.json()
    assert body["error"] == "FunctionError", body
    assert body["details"]["name"] == name, body
    return body


def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().decode(errors="replace").split("\0")


def test_a_new_python_workspace_is_taken_over_by_a_spare_worker(make_service):
    service = make_service()
    functions = {"greet": py("return await helper(name=name)", {"name": {"type": "string", "default": "you"}}),
                 "helper": py("return 'hi ' + name", {"name": {"type": "string"}}),
                 "calls": py("return await helper(name='inner')")}
    assert service.save("pyspare", functions).status_code == 200
    r = service.run("pyspare", "greet")
    assert r.status_code == 200 and r.json()["result"] == "hi you", r.text
    assert service.run("pyspare", "calls").json()["result"] == "hi inner"
    worker = one_worker(service, "pyspare", "worker.py")
    assert "--spare" in cmdline(worker)  # a spare, not a fresh worker of the workspace's module
    assert "--module" not in cmdline(worker)
    # Another spare replaces it.
    assert wait_for(lambda: sum("--spare" in cmdline(pid) and "worker.py" in " ".join(cmdline(pid))
                                for pid in service.worker_pids() if pid != worker) >= 1, timeout=10)


def test_a_python_spare_runs_errors_and_syntax_problems_like_a_fresh_worker(make_service):
    service = make_service()
    functions = {"boom": py("raise ValueError('bad ' + str(x))", {"x": {"type": "number", "default": 1}}),
                 "data": py("import json\nreturn json.loads(text)", {"text": {"type": "string"}})}
    assert service.save("pyspare2", functions).status_code == 200
    r = service.run("pyspare2", "boom")
    assert_function_error(r, "ValueError")
    assert "bad 1" in r.json()["message"]
    assert service.run("pyspare2", "data", {"text": "[1, 2]"}).json()["result"] == [1, 2]
    assert "--spare" in cmdline(one_worker(service, "pyspare2", "worker.py"))


def test_without_python_spares_a_workspace_starts_a_worker_of_its_own(make_service):
    service = make_service(env={"PYTHON_FUNCTIONS_SPARE_WORKERS": "0"})
    assert service.save("nospare", {"hello": py("return 'hi'")}).status_code == 200
    assert service.run("nospare", "hello").json()["result"] == "hi"
    args = cmdline(one_worker(service, "nospare", "worker.py"))
    assert "--module" in args and "--spare" not in args
    assert not any("--spare" in cmdline(pid) and "worker.py" in " ".join(cmdline(pid))
                   for pid in service.worker_pids())


def test_hello(service):
    assert service.save("ws", {"hello": py('return "Hello " + name', {"name": {"type": "string"}})}).status_code == 200
    r = service.run("ws", "hello", {"name": "world"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["result"] == "Hello world"
    assert body["logs"] == []
    assert isinstance(body["duration"], int)


def test_functions_call_each_other_with_await(service):
    functions = {
        "double": py("return x * 2", {"x": {"type": "number"}}),
        "quad": py("half = await double(x=x)\nreturn await double(half)", {"x": {"type": "number"}}),
    }
    assert service.save("ws", functions).status_code == 200
    r = service.run("ws", "quad", {"x": 5})
    assert r.status_code == 200, r.text
    assert r.json()["result"] == 20


def test_cache_is_shared_by_functions_and_runs(service):
    functions = {
        "count": py("cache['n'] = cache.get('n', 0) + 1\nreturn cache['n']"),
        "peek": py("return cache.get('n')"),
    }
    assert service.save("ws", functions).status_code == 200
    assert [service.run("ws", "count").json()["result"] for _ in range(3)] == [1, 2, 3]
    assert service.run("ws", "peek").json()["result"] == 3


def test_print_and_logging_are_captured_per_run_when_runs_interleave(service):
    code = ("import asyncio\nimport logging\n"
            "for i in range(5):\n"
            "    print('run', tag, i)\n"
            "    await asyncio.sleep(0.02)\n"
            "logging.warning('done %s', tag)\n"
            "return tag")
    assert service.save("ws", {"talk": py(code, {"tag": {"type": "string"}})}).status_code == 200
    tags = [f"t{i}" for i in range(8)]
    with concurrent.futures.ThreadPoolExecutor(len(tags)) as pool:
        responses = list(pool.map(lambda tag: service.run("ws", "talk", {"tag": tag}), tags))
    for tag, r in zip(tags, responses):
        assert r.status_code == 200, r.text
        logs = r.json()["logs"]
        assert [entry["message"] for entry in logs] == [f"run {tag} {i}" for i in range(5)] + [f"done {tag}"]
        assert [entry["level"] for entry in logs] == ["log"] * 5 + ["warn"]
        assert all(entry["timestamp"].endswith("Z") for entry in logs)


def test_one_print_is_one_log_entry(service):
    assert service.save("ws", {"p": py("print('a', 1, {'k': None})\nprint('two\\nlines')\nreturn None")}).status_code == 200
    body = service.run("ws", "p").json()
    assert [entry["message"] for entry in body["logs"]] == ["a 1 {'k': None}", "two\nlines"]
    assert body["result"] is None


def test_numpy_and_pandas_are_usable(service):
    code = ("import numpy as np\nimport pandas as pd\n"
            "frame = pd.DataFrame({'a': [1, 2, 3], 'b': [4.0, 5.0, 6.0]})\n"
            "return {'sum': int(np.arange(5).sum()), 'mean': float(frame['b'].mean()),\n"
            "        'rows': frame.to_dict(orient='records'), 'array': np.arange(3)}")
    assert service.save("ws", {"calc": py(code)}).status_code == 200
    r = service.run("ws", "calc")
    assert r.status_code == 200, r.text
    assert r.json()["result"] == {"sum": 10, "mean": 5.0, "array": [0, 1, 2],
                                  "rows": [{"a": 1, "b": 4.0}, {"a": 2, "b": 5.0}, {"a": 3, "b": 6.0}]}


@pytest.mark.parametrize("statement,module", [("import os", "os"), ("import subprocess", "subprocess"),
                                              ("from socket import socket", "socket"),
                                              ("import os.path", "os.path")])
def test_forbidden_imports_fail_with_an_import_error_naming_the_variable(service, statement, module):
    assert service.save("ws", {"f": py(f"{statement}\nreturn 1")}).status_code == 200
    body = assert_function_error(service.run("ws", "f"), "ImportError")
    assert f'"{module}"' in body["message"]
    assert "PYTHON_BUILTIN_MODULES" in body["message"]


def test_allowed_builtin_modules_import(service):
    code = "import json, re, math\nfrom collections import Counter\nreturn [json.dumps([1]), math.floor(2.5), Counter('aab')['a']]"
    assert service.save("ws", {"f": py(code)}).status_code == 200
    r = service.run("ws", "f")
    assert r.status_code == 200, r.text
    assert r.json()["result"] == ["[1]", 2, 2]


def test_an_import_allowed_by_configuration_works(make_service):
    service = make_service(env={"PYTHON_BUILTIN_MODULES": "json,os"})
    assert service.save("ws", {"f": py("import os\nreturn os.sep")}).status_code == 200
    r = service.run("ws", "f")
    assert r.status_code == 200, r.text
    assert r.json()["result"] == "/"


def test_an_exception_reports_type_message_traceback_and_logs(service):
    code = "print('before')\nx = 1\nraise ValueError('bad value ' + str(x))"
    assert service.save("ws", {"boom": py(code)}).status_code == 200
    body = assert_function_error(service.run("ws", "boom"), "ValueError")
    assert body["details"]["message"] == "bad value 1"
    assert "ValueError: bad value 1" in body["message"]
    stack = body["details"]["stack"]
    assert 'File "boom", line 3, in boom' in stack
    assert "raise ValueError('bad value ' + str(x))" in stack
    assert "worker.py" not in stack
    assert [entry["message"] for entry in body["logs"]] == ["before"]
    assert isinstance(body["duration"], int)


def test_an_exception_in_a_called_function_shows_both_frames(service):
    functions = {"inner": py("return 1 / 0"), "outer": py("return await inner()")}
    assert service.save("ws", functions).status_code == 200
    stack = assert_function_error(service.run("ws", "outer"), "ZeroDivisionError")["details"]["stack"]
    assert 'File "outer", line 1, in outer' in stack
    assert 'File "inner", line 1, in inner' in stack


def test_a_busy_loop_times_out_while_other_workspaces_stay_fast(make_service):
    service = make_service(env={"PYTHON_FUNCTIONS_RUN_TIMEOUT": "1000", "WORKER_PING_TIMEOUT": "200"})
    assert service.save("stuck", {"spin": py("while True:\n    pass"), "ok": py("return 'alive'")}).status_code == 200
    assert service.save("fast", {"hello": py("return 'hi'")}).status_code == 200
    assert service.run("fast", "hello").status_code == 200  # warm
    stuck = one_worker(service, "stuck", "worker.py")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        spinning = pool.submit(service.run, "stuck", "spin")
        served = 0
        while not spinning.done():
            r = service.run("fast", "hello")
            assert r.status_code == 200 and r.json()["result"] == "hi"
            served += 1
        timed_out = spinning.result()
    assert served >= 1  # served while the other worker spins (how fast: test_latency.py)
    assert timed_out.status_code == 504, timed_out.text
    assert timed_out.json()["error"] == "TimeoutError"
    # The stuck worker is killed and the next run gets a fresh one.
    assert wait_for(lambda: stuck not in service.worker_pids(), timeout=5)
    r = service.run("stuck", "ok")
    assert r.status_code == 200, r.text
    assert r.json()["result"] == "alive"
    assert one_worker(service, "stuck", "worker.py") != stuck


def test_a_python_worker_spinning_after_its_timeout_is_killed_without_waiting_for_the_ping(make_service):
    service = make_service(env={"PYTHON_FUNCTIONS_RUN_TIMEOUT": "1000", "WORKER_PING_TIMEOUT": "30000"})
    assert service.save("stuck", {"spin": py("while True:\n    pass"), "ok": py("return 'alive'")}).status_code == 200
    stuck = one_worker(service, "stuck", "worker.py")
    assert service.run("stuck", "spin").status_code == 504
    r = service.run("stuck", "ok", timeout=10)  # far below the 30 s ping timeout
    assert r.status_code == 200 and r.json()["result"] == "alive"
    assert wait_for(lambda: stuck not in service.worker_pids(), timeout=5)  # killed, and reaped soon after
    assert "kept running (stuck in a loop?)" in service.log()


def test_a_hung_await_times_out_and_the_worker_keeps_serving(make_service):
    service = make_service(env={"PYTHON_FUNCTIONS_RUN_TIMEOUT": "1000", "WORKER_PING_TIMEOUT": "200"})
    functions = {
        "hang": py("import asyncio\ncache['x'] = 'kept'\nawait asyncio.Event().wait()"),
        "read": py("return cache.get('x')"),
    }
    assert service.save("ws", functions).status_code == 200
    worker = one_worker(service, "ws", "worker.py")
    r = service.run("ws", "hang")
    assert r.status_code == 504, r.text
    assert r.json()["error"] == "TimeoutError"
    assert service.run("ws", "read").json()["result"] == "kept"
    assert one_worker(service, "ws", "worker.py") == worker


def test_a_syntax_error_at_save_is_a_400_and_keeps_the_old_version(service):
    good = {"f": py("return 'v1'")}
    assert service.save("ws", good).status_code == 200
    bad = {"f": py("x = 1\nif x > 0\n    return 2")}
    r = service.save("ws", bad)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"] == "RequestValidationError"
    detail = next(d for d in body["details"] if d.get("function") == "f")
    assert (detail["line"], detail["column"]) == (2, 9)
    assert "SyntaxError" in detail["message"]
    assert "functions.f.code" == detail["path"]
    assert service.get("/v2/functions/ws").json()["functions"] == good
    assert service.run("ws", "f").json()["result"] == "v1"


def test_code_is_kept_exactly_including_multiline_strings(service):
    code = 'text = """first\n    indented\n\tTabbed"""\nreturn text'
    assert service.save("ws", {"f": py(code)}).status_code == 200
    assert service.run("ws", "f").json()["result"] == "first\n    indented\n\tTabbed"


def test_code_indented_as_a_whole_is_accepted(service):
    code = "    x = 2\n    s = '''a\n  b'''\n    return [x, s]"
    assert service.save("ws", {"f": py(code)}).status_code == 200
    assert service.run("ws", "f").json()["result"] == [2, "a\n  b"]


def test_a_mixed_language_workspace_runs_both(service):
    functions = {**HELLO, "pyhello": py('return "Hello from " + name', {"name": {"type": "string"}})}
    assert service.save("mixed", functions).status_code == 200
    r = service.run("mixed", "hello", {"name": "js"})
    assert r.status_code == 200, r.text
    assert r.json()["result"] == "Hello js"
    assert service.run("mixed", "pyhello", {"name": "python"}).json()["result"] == "Hello from python"
    assert glob.glob(os.path.join(service.data_dir, "mixed", "functions-*.py"))


def test_defaults_are_applied_and_missing_parameters_are_none(service):
    parameters = {
        "name": {"type": "string", "default": "world"},
        "n": {"type": "integer", "default": 2},
        "flag": {"type": "boolean", "default": True},
        "items": {"type": "array", "default": [1]},
        "other": {"type": "string"},
    }
    code = "items.append(n)\nreturn [name, n, flag, items, other]"
    assert service.save("ws", {"f": py(code, parameters)}).status_code == 200
    assert service.run("ws", "f").json()["result"] == ["world", 2, True, [1, 2], None]
    # A mutable default is a fresh copy on every call.
    assert service.run("ws", "f", {"n": 3}).json()["result"] == ["world", 3, True, [1, 3], None]
    assert service.run("ws", "f", {"name": "x", "other": "o"}).json()["result"] == ["x", 2, True, [1, 2], "o"]


def test_undeclared_run_parameters_are_ignored(service):
    assert service.save("ws", {"f": py("return a", {"a": {"type": "number"}})}).status_code == 200
    r = service.run("ws", "f", {"a": 1, "unknown": 2})
    assert r.status_code == 200, r.text
    assert r.json()["result"] == 1


def test_a_result_that_is_not_json_is_an_error_naming_the_type(service):
    assert service.save("ws", {"f": py("return {1, 2}")}).status_code == 200
    body = assert_function_error(service.run("ws", "f"), "TypeError")
    assert "set" in body["details"]["message"]


def test_logs_over_the_cap_are_truncated_with_a_marker(make_service):
    service = make_service(env={"FUNCTIONS_LOGS_MAX_SIZE": "1kb"})
    assert service.save("ws", {"f": py("for i in range(1000):\n    print('x' * 50)\nreturn 'done'")}).status_code == 200
    r = service.run("ws", "f")
    assert r.status_code == 200, r.text
    logs = r.json()["logs"]
    assert r.json()["result"] == "done"
    assert sum(len(entry["message"]) for entry in logs[:-1]) <= 1024
    assert "truncated" in logs[-1]["message"] and logs[-1]["level"] == "warn"


def test_a_result_over_the_cap_is_result_too_large(make_service):
    service = make_service(env={"FUNCTIONS_RESULT_MAX_SIZE": "1kb"})
    assert service.save("ws", {"f": py("return 'x' * 5000")}).status_code == 200
    r = service.run("ws", "f")
    assert r.status_code == 500, r.text
    assert r.json()["error"] == "ResultTooLarge"


def test_python_functions_run_without_the_service_environment(make_service):
    service = make_service(env={"SECRET_TOKEN": "s3cr3t", "PYTHON_BUILTIN_MODULES": "os"})
    assert service.save("ws", {"f": py("import os\nreturn os.environ.get('SECRET_TOKEN')")}).status_code == 200
    assert service.run("ws", "f").json()["result"] is None


# ---- the result convention ----

def test_a_body_that_binds_result_without_returning_gives_result(service):
    # A published example's shape: a helper, then `result = ...` and no return.
    code = ("import statistics\n"
            "def analyze_data(values):\n"
            "    return {'mean': statistics.mean(values), 'max': max(values)}\n"
            "result = analyze_data(data)")
    assert service.save("ws", {"analyze": py(code, {"data": {"type": "array"}})}).status_code == 200
    r = service.run("ws", "analyze", {"data": [1, 2, 6]})
    assert r.status_code == 200, r.text
    assert r.json()["result"] == {"mean": 3, "max": 6}


@pytest.mark.parametrize("code,flag,expected", [
    ("result = 1\nreturn 2", True, 2),                       # a return with a value wins
    ("result = 1\nif flag:\n    return\nresult = 3", True, 1),  # a bare return gives result too
    ("result = 1\nif flag:\n    return\nresult = 3", False, 3),
    ("if flag:\n    result = 'set'", False, None),           # never bound: None
    ("if flag:\n    result = 'set'", True, "set"),
    ("x = [result for result in range(3)]", True, None),     # a comprehension's variable is not it
    ("def inner():\n    result = 5\n    return result\ninner()", True, None),
])
def test_the_result_convention_applies_only_without_a_returned_value(service, code, flag, expected):
    assert service.save("ws", {"f": py(code, {"flag": {"type": "boolean"}})}).status_code == 200
    r = service.run("ws", "f", {"flag": flag})
    assert r.status_code == 200, r.text
    assert r.json()["result"] == expected


def test_an_error_after_binding_result_keeps_its_line(service):
    assert service.save("ws", {"f": py("result = 1\nraise ValueError('late')")}).status_code == 200
    body = assert_function_error(service.run("ws", "f"), "ValueError")
    assert 'File "f", line 2' in body["details"]["stack"]
