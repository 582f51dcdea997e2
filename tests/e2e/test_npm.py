"""npm packages per workspace, installed at save time and never on the run path (docs/npm.md).
These tests reach the real npm registry (or NPM_CONFIG_REGISTRY when the environment sets it)."""
import os
import time
import uuid

import pytest

from conftest import wait_for

INSTALLS = "customcode_npm_installs_total"
SAVE_TIMEOUT = 180  # a first install from the registry; it usually takes a few seconds

IS_NUMBER = {"check": {"code": "const isNumber = require('is-number');\nreturn [isNumber(5), isNumber('x')];"}}


def registry_env():
    registry = os.environ.get("NPM_CONFIG_REGISTRY")
    return {"NPM_CONFIG_REGISTRY": registry} if registry else {}


@pytest.fixture
def npm_service(make_service):
    return make_service(env=registry_env())


def save(service, workspace, functions, **extra):
    body = {"functions": functions, **extra}
    return service.post(f"/v2/functions/{workspace}", json=body, timeout=SAVE_TIMEOUT)


def test_a_required_package_is_installed_at_save_and_the_run_does_not_install(npm_service):
    r = save(npm_service, "numbers", IS_NUMBER)
    assert r.status_code == 200, r.text
    assert npm_service.metric(INSTALLS) == 1

    run = npm_service.run("numbers", "check")

    assert run.status_code == 200, run.text
    assert run.json()["result"] == [True, False]
    assert npm_service.metric(INSTALLS) == 1  # the run installed nothing


def test_saving_the_same_packages_again_does_not_run_npm(npm_service):
    assert save(npm_service, "again", IS_NUMBER).status_code == 200
    assert npm_service.metric(INSTALLS) == 1
    changed_code = {"check": {"code": "const isNumber = require(\"is-number\");\nreturn isNumber('12');"}}

    r = save(npm_service, "again", changed_code)

    assert r.status_code == 200, r.text
    assert npm_service.metric(INSTALLS) == 1
    assert "npm packages unchanged (is-number): npm not run" in npm_service.log()
    assert npm_service.run("again", "check").json()["result"] is True


def test_a_scoped_package_is_installed_at_the_pinned_version(npm_service):
    functions = {"check": {"code": "const is = require('@sindresorhus/is');\n"
                                   "return [is.number(1), is.string(1), require('@sindresorhus/is/package.json').version];"}}

    r = save(npm_service, "scoped", functions, dependencies={"@sindresorhus/is": "~4.6.0"})

    assert r.status_code == 200, r.text
    result = npm_service.run("scoped", "check").json()["result"]
    assert result[:2] == [True, False]
    assert result[2].startswith("4.6.")


def test_a_dynamic_import_is_found_and_installed(npm_service):
    functions = {"check": {"code": "const { default: isNumber } = await import('is-number');\nreturn isNumber(3);"}}

    assert save(npm_service, "imports", functions).status_code == 200

    assert npm_service.run("imports", "check").json()["result"] is True


def test_an_unknown_package_fails_the_save_and_keeps_the_previous_version(npm_service):
    assert save(npm_service, "keep", IS_NUMBER).status_code == 200
    missing = f"customcode-missing-{uuid.uuid4().hex[:12]}"
    broken = {"check": {"code": f"return require('{missing}');"}}

    r = save(npm_service, "keep", broken)

    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"] == "RequestValidationError"
    assert missing in body["message"]
    assert "404" in body["message"]  # quoted from npm
    assert npm_service.get("/v2/functions/keep").json()["functions"] == IS_NUMBER
    assert npm_service.run("keep", "check").json()["result"] == [True, False]


def test_an_invalid_package_name_is_refused_before_npm(npm_service):
    r = save(npm_service, "badname", {"check": {"code": "return require('x; rm -rf /');"}})

    assert r.status_code == 400
    assert "functions.check.code" in r.json()["message"]
    assert npm_service.metric(INSTALLS) == 0


def test_a_git_range_in_dependencies_is_refused(npm_service):
    r = save(npm_service, "gitrange", IS_NUMBER, dependencies={"is-number": "git+https://example.test/x.git"})

    assert r.status_code == 400
    assert "dependencies.is-number" in r.json()["message"]
    assert npm_service.metric(INSTALLS) == 0


def test_disable_npm_registry_installs_nothing_and_the_require_fails_clearly(npm_service):
    r = save(npm_service, "offline", IS_NUMBER, disableNpmRegistry=True)

    assert r.status_code == 200, r.text
    assert npm_service.metric(INSTALLS) == 0
    run = npm_service.run("offline", "check")
    assert run.status_code == 500
    message = run.json()["message"]
    assert 'package "is-number" is not installed' in message
    assert "disableNpmRegistry" in message


def test_disable_npm_registry_removes_the_packages_installed_before(npm_service):
    assert save(npm_service, "turnoff", IS_NUMBER).status_code == 200
    assert npm_service.run("turnoff", "check").status_code == 200

    assert save(npm_service, "turnoff", IS_NUMBER, disableNpmRegistry=True).status_code == 200

    run = npm_service.run("turnoff", "check")
    assert run.status_code == 500
    assert "is not installed" in run.json()["message"]


def test_one_workspace_cannot_load_the_packages_of_another(npm_service):
    assert save(npm_service, "owner", IS_NUMBER).status_code == 200
    # Computed names are not installed at save time, so only another workspace could provide them.
    other = {
        "computed": {"code": "const name = ['is', 'number'].join('-');\nreturn require(name)(1);"},
        "relative": {"code": "return require('../owner/node_modules/is-number')(1);"},
    }
    assert save(npm_service, "other", other).status_code == 200

    computed = npm_service.run("other", "computed")
    relative = npm_service.run("other", "relative")

    assert computed.status_code == 500
    assert 'package "is-number" is not installed' in computed.json()["message"]
    assert relative.status_code == 500
    assert "Cannot require" in relative.json()["message"]
    assert npm_service.run("owner", "check").json()["result"] == [True, False]


def test_an_unreachable_registry_fails_the_save_within_the_install_timeout(make_service):
    service = make_service(env={"NPM_CONFIG_REGISTRY": "http://127.0.0.1:9/", "NPM_INSTALL_TIMEOUT": "3000"})

    started = time.monotonic()
    r = save(service, "unreachable", IS_NUMBER)
    elapsed = time.monotonic() - started

    assert r.status_code == 502, r.text
    assert r.json()["error"] == "PackageInstallError"
    assert "is-number" in r.json()["message"]
    assert elapsed < 30
    assert service.get("/v2/functions/unreachable").status_code == 404
    # npm was killed and reaped: only the checker remains a child of the service.
    assert wait_for(lambda: not service.zombies(), timeout=5)
