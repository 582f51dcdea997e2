"""The reference README's two curl examples, answered exactly as documented."""
from conftest import HELLO


def test_save_echoes_the_body_exactly(service):
    body = ('{\n    "functions": {\n        "hello": {\n            "code": "return \\"Hello \\" + name;",\n'
            '            "parameters": {\n                "name": {\n                    "type": "string"\n'
            '                }\n            }\n        }\n    }\n}')
    r = service.post("/v2/functions/test", data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200
    assert r.text == body


def test_run_returns_hello_world_with_empty_logs_and_integer_duration(service):
    assert service.save("test", HELLO).status_code == 200
    r = service.run("test", "hello", {"name": "world"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"result", "logs", "duration"}
    assert body["result"] == "Hello world"
    assert body["logs"] == []
    assert isinstance(body["duration"], int) and body["duration"] >= 0


def test_healthcheck(service):
    r = service.get("/sys/healthcheck")
    assert r.status_code == 200
    assert r.json()["healthy"] is True
