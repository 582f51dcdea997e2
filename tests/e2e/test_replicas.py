"""Several replicas on one shared data directory, as on Kubernetes with a ReadWriteMany volume:
two service processes on one directory, each correct whatever the routing. The npm test reaches
the real npm registry (or NPM_CONFIG_REGISTRY when the environment sets it)."""
import os
import re
import threading

import pytest

SAVE_TIMEOUT = 180


def version(tag):
    """A workspace whose two functions both answer `tag`: a mix of two saves shows at once."""
    return {"first": {"code": f"return {tag!r};"}, "second": {"code": f"return {tag!r};"}}


def tag_of(body):
    """The tag of a stored body (GET), checking that both functions carry the same one."""
    tags = {re.search(r"return '([^']*)'", f["code"]).group(1) for f in body["functions"].values()}
    assert len(tags) == 1, f"a mix of two versions: {body}"
    return tags.pop()


def at_once(*calls):
    """Runs the calls in threads released together; returns their results in order."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)
    errors = []

    def run(i, call):
        try:
            barrier.wait(10)
            results[i] = call()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(SAVE_TIMEOUT + 30)
    assert not errors, errors
    return results


@pytest.fixture
def replicas(make_service, data_base, tmp_path):
    shared = data_base / f"{tmp_path.name}-shared"
    a = make_service(data_dir=shared)
    b = make_service(data_dir=shared)
    return a, b


def test_a_save_through_one_replica_is_what_the_next_run_on_the_other_runs(replicas):
    a, b = replicas
    assert a.save("shared", version("v1")).status_code == 200
    assert b.run("shared", "first").json()["result"] == "v1"

    assert a.save("shared", version("v2")).status_code == 200
    assert b.run("shared", "first").json()["result"] == "v2"
    assert tag_of(b.get("/v2/functions/shared").json()) == "v2"
    assert "shared" in b.get("/v2/functions").json()["workspaces"]


def test_a_delete_through_one_replica_is_seen_by_the_other(replicas):
    a, b = replicas
    assert a.save("gone", version("v1")).status_code == 200
    assert b.run("gone", "first").status_code == 200  # b has a warm worker for it

    assert b.delete("/v2/functions/gone").status_code == 200

    assert a.run("gone", "first").status_code == 404
    assert a.get("/v2/functions/gone").status_code == 404
    assert "gone" not in a.get("/v2/functions").json()["workspaces"]
    assert b.run("gone", "first").status_code == 404


def test_concurrent_saves_through_two_replicas_leave_one_whole_version_every_route_agrees_on(replicas):
    a, b = replicas
    for round_ in range(12):
        ra, rb = at_once(lambda: a.save("race", version(f"a{round_}")),
                         lambda: b.save("race", version(f"b{round_}")))
        assert ra.status_code == 200 and rb.status_code == 200, (ra.text, rb.text)

        stored = {tag_of(s.get("/v2/functions/race").json()) for s in (a, b)}
        assert len(stored) == 1, f"round {round_}: the replicas disagree on the stored version: {stored}"
        winner = stored.pop()
        assert winner in (f"a{round_}", f"b{round_}")
        for s in (a, b):
            for fn in ("first", "second"):
                run = s.run("race", fn)
                assert run.status_code == 200, run.text
                assert run.json()["result"] == winner, f"round {round_}: {fn} on port {s.port}"


def test_concurrent_npm_installs_of_one_workspace_through_two_replicas_leave_working_packages(
        make_service, data_base, tmp_path):
    registry = os.environ.get("NPM_CONFIG_REGISTRY")
    env = {"NPM_CONFIG_REGISTRY": registry} if registry else {}
    shared = data_base / f"{tmp_path.name}-npm"
    a = make_service(env=env, data_dir=shared)
    b = make_service(env=env, data_dir=shared)
    with_number = {"check": {"code": "return ['is-number', require('is-number')(5)];"}}
    with_odd = {"check": {"code": "return ['is-odd', require('is-odd')(3)];"}}

    for round_ in range(2):
        first, second = (with_number, with_odd) if round_ == 0 else (with_odd, with_number)
        ra, rb = at_once(
            lambda: a.post("/v2/functions/deps", json={"functions": first}, timeout=SAVE_TIMEOUT),
            lambda: b.post("/v2/functions/deps", json={"functions": second}, timeout=SAVE_TIMEOUT))
        assert ra.status_code == 200 and rb.status_code == 200, (ra.text, rb.text)

        stored = {s.get("/v2/functions/deps").text for s in (a, b)}
        assert len(stored) == 1
        package = "is-number" if "is-number" in stored.pop() else "is-odd"
        for s in (a, b):
            run = s.run("deps", "check")
            assert run.status_code == 200, run.text
            assert run.json()["result"] == [package, True]
        with open(shared / "deps" / "package.json") as f:
            assert package in f.read()
        leftovers = [e for e in os.listdir(shared) if e.startswith(".staging-")]
        assert leftovers == []


def test_update_scripts_on_startup_is_safe_when_replicas_start_together_while_another_saves(
        make_service, data_base, tmp_path):
    shared = data_base / f"{tmp_path.name}-startup"
    names = [f"ws{i}" for i in range(30)]
    writer = make_service(data_dir=shared)
    for name in names:
        assert writer.save(name, version(f"{name}-old")).status_code == 200
    for name in names:  # damaged scripts: every starting replica rewrites them
        for script in (shared / name).glob("functions-*.js"):
            script.write_text("// damaged\n")

    starting = [make_service(data_dir=shared, env={"UPDATE_SCRIPTS_ON_STARTUP": "yes"}, start=False)
                for _ in range(2)]

    def save_all():
        for name in names:
            assert writer.save(name, version(f"{name}-new")).status_code == 200

    at_once(starting[0].start, starting[1].start, save_all)

    for name in names:
        with open(shared / name / "workspace.yaml") as f:
            yaml_tags = set(re.findall(r"return '([^']*)'", f.read()))
        scripts = [s.read_text() for s in (shared / name).glob("functions-*.js")]
        current = [text for text in scripts if f"{name}-new" in text]
        assert len(current) == 1, name  # the current version's script, whole
        assert set(re.findall(r"return '([^']*)'", current[0])) == yaml_tags == {f"{name}-new"}, name
        assert not [e for e in os.listdir(shared / name) if ".tmp-" in e]
        for s in starting:
            assert s.run(name, "second").json()["result"] == f"{name}-new"
