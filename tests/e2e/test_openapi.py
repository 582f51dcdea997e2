"""The OpenAPI document (docs/openapi.json, served at GET /openapi.json), the checker every e2e
response goes through, and PUT /sys/logging."""
import json
import re

import pytest
import requests

from conftest import HELLO, wait_for
from openapi_check import METHODS, OpenApi, ResponseMismatch, load_document


@pytest.fixture(scope="module")
def document():
    return load_document()


# ---- the document ----

def test_the_served_document_is_the_one_in_the_repository(shared_service, document):
    r = shared_service.get("/openapi.json")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == document
    assert document["openapi"].startswith("3.1.")


def test_every_documented_operation_answers_as_documented(make_service, document):
    # Each listed path and method once, with a body where one is needed; the checker in conftest
    # validates every answer, so an operation the service lacks or answers otherwise fails here.
    service = make_service()
    assert service.save("ws", HELLO).status_code == 200
    page = service.get("/playground/")
    assert page.status_code == 200, "the playground bundle is not built"
    asset = re.search(r'assets/([^"?#]+)', page.text).group(1)
    filled = {"{workspace}": "ws", "{function}": "hello", "{file}": "index.html", "{asset}": asset}
    bodies = {("post", "/v2/functions/{workspace}"): {"functions": HELLO},
              ("post", "/v2/functions/{workspace}/run/{function}"): {"parameters": {"name": "doc"}},
              ("put", "/sys/logging"): {"level": "info"}}
    operations = [(method, template) for template, item in document["paths"].items() for method in METHODS
                  if method in item]
    operations.sort(key=lambda op: op[0] == "delete")  # the workspace goes last
    for method, template in operations:
        path = template
        for name, value in filled.items():
            path = path.replace(name, value)
        r = service.request(method.upper(), path, json=bodies.get((method, template)))
        assert r.status_code < 300, (method, path, r.text)
    assert ("delete", "/v2/functions/{workspace}") in operations and len(operations) >= 11


def test_unlisted_paths_and_methods_answer_as_the_document_says(untouched_service):
    for method, path, status in [("GET", "/nope", 404), ("PATCH", "/v2/functions/x", 405),
                                 ("DELETE", "/sys/logging", 405), ("POST", "/openapi.json", 405)]:
        r = untouched_service.request(method, path)
        assert r.status_code == status, (method, path, r.text)


@pytest.fixture
def untouched_service(shared_service):
    return shared_service


# ---- the checker ----

@pytest.fixture(scope="module")
def checker(document):
    return OpenApi(document)


def body(value):
    return json.dumps(value).encode()


JSON = {"Content-Type": "application/json"}


def test_the_checker_accepts_documented_responses(checker):
    checker.check("POST", "/v2/functions/ws/run/f", 200, JSON,
                  body({"result": [1], "logs": [{"level": "log", "message": "m", "timestamp": "2026-01-01T00:00:00.000Z"}],
                        "duration": 3}))
    checker.check("POST", "/v2/functions/ws/run/f", 504, JSON,
                  body({"error": "TimeoutError", "message": "late", "logs": [], "duration": 20}))
    checker.check("GET", "/nowhere", 404, JSON, body({"error": "ObjectNotFoundError", "message": "Route not found"}))
    checker.check("GET", "/metrics", 200, {"Content-Type": "text/plain; version=0.0.4"}, b"# HELP x\n")
    checker.check("HEAD", "/sys/healthcheck", 200, JSON, b"")


@pytest.mark.parametrize("method,path,status,headers,payload,why", [
    ("POST", "/v2/functions/ws/run/f", 200, JSON, {"result": 1, "logs": []}, "duration"),           # missing key
    ("POST", "/v2/functions/ws/run/f", 200, JSON, {"result": 1, "logs": [], "duration": 1, "x": 1}, "x"),
    ("POST", "/v2/functions/ws/run/f", 500, JSON, {"error": "FunctionError", "message": "m"}, "not valid under any"),
    ("POST", "/v2/functions/ws/run/f", 418, JSON, {}, "not documented"),
    ("GET", "/v2/functions", 200, JSON, {"workspaces": [1]}, "workspaces"),
    ("GET", "/v2/functions", 200, {"Content-Type": "text/html"}, {"workspaces": []}, "Content-Type"),
    ("GET", "/nowhere", 200, JSON, {}, "not documented"),
    ("PATCH", "/v2/functions/ws", 405, JSON, {"error": "MethodNotAllowedError", "message": "m"}, "Allow"),
    ("PUT", "/sys/logging", 400, JSON, {"error": "ObjectNotFoundError", "message": "m"}, "error"),
    ("DELETE", "/v2/functions/ws", 200, JSON, {"workspace": "ws", "deleted": False}, "deleted"),
])
def test_the_checker_refuses_what_the_document_does_not_describe(checker, method, path, status, headers, payload,
                                                                  why):
    with pytest.raises(ResponseMismatch, match=why):
        checker.check(method, path, status, headers, body(payload))


# ---- PUT /sys/logging ----

LOWERED = "a call runs for over"  # lowered: its cgroup to the lowest weight, or to nice 19
SLOW = {"slow": {"code": "const end = Date.now() + 300; while (Date.now() < end) {} return 1;"}}


def test_the_log_level_changes_at_run_time(make_service):
    service = make_service(env={"LOG_LEVEL": "info", "FUNCTIONS_LONG_RUN_AFTER": "50"})
    assert service.get("/sys/logging").json() == {"level": "info"}
    assert service.save("a", SLOW).status_code == 200
    assert service.save("b", SLOW).status_code == 200

    r = service.request("PUT", "/sys/logging", json={"level": "debug"})
    assert r.status_code == 200, r.text
    assert r.json() == {"level": "debug"}
    assert service.get("/sys/logging").json() == {"level": "debug"}
    assert service.run("a", "slow").status_code == 200
    # A per-call debug line of the pool, which the default level hides.
    assert wait_for(lambda: LOWERED in service.log(), timeout=10), service.log()

    assert service.request("PUT", "/sys/logging", json={"level": "info"}).json() == {"level": "info"}
    assert service.run("b", "slow").status_code == 200
    # The log is one ordered stream: once a later info line is in, a debug line of run b would be too.
    assert service.request("PUT", "/sys/logging", json={"level": "info"}).status_code == 200
    assert wait_for(lambda: service.log().count("log level info -> info") == 1, timeout=10), service.log()
    assert service.log().count(LOWERED) == 1, service.log()


@pytest.mark.parametrize("payload", ['{"level": "verbose"}', '{"level": "DEBUG"}', '{"level": 10}', '{}',
                                     '{"level": "debug", "extra": 1}', '["debug"]', '{"level":', ''])
def test_a_bad_log_level_is_400_and_changes_nothing(shared_service, payload):
    r = shared_service.request("PUT", "/sys/logging", data=payload, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "RequestValidationError"
    assert r.json()["message"]
    assert shared_service.get("/sys/logging").json() == {"level": "info"}
