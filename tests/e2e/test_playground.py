"""The playground's static route (/playground) and the API's refusal of cross-site requests."""
import os
import re

import pytest

from conftest import HELLO


def built_playground(binary):
    return os.path.join(os.path.dirname(binary), "playground")


@pytest.fixture
def playground_service(make_service, binary):
    index = os.path.join(built_playground(binary), "index.html")
    assert os.path.exists(index), f"the playground bundle is not built ({index}): build it with scripts/build.sh"
    service = make_service()
    assert "playground at /playground/" in service.log()
    return service


# ---- static files ----

def test_page_redirects_to_the_trailing_slash_and_is_revalidated(playground_service):
    service = playground_service
    r = service.get("/playground", allow_redirects=False)
    assert r.status_code == 301 and r.headers["Location"] == "playground/"

    r = service.get("/playground/")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-cache"
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "connect-src 'self'" in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "Access-Control-Allow-Origin" not in r.headers

    again = service.get("/playground/", headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""

    head = service.request("HEAD", "/playground/")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == r.headers["Content-Length"]


def test_assets_have_hashed_names_and_are_cached_for_a_year(playground_service):
    service = playground_service
    html = service.get("/playground/").text
    assets = re.findall(r'(?:src|href)="(?:\./)?(assets/[^"]+)"', html)
    assert {os.path.splitext(a)[1] for a in assets} == {".js", ".css"}, html
    for asset in assets:
        assert re.fullmatch(r"assets/[a-z]+-[A-Z0-9]{8}\.(js|css)", asset), asset
        r = service.get("/playground/" + asset)
        assert r.status_code == 200, asset
        assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        expected = "text/javascript" if asset.endswith(".js") else "text/css"
        assert r.headers["Content-Type"].startswith(expected)
        # requests asks for gzip and decodes it; the gzipped copy is smaller than the file.
        assert r.headers["Content-Encoding"] == "gzip" and r.headers["Vary"] == "Accept-Encoding"
        plain = service.get("/playground/" + asset, headers={"Accept-Encoding": "identity"})
        assert "Content-Encoding" not in plain.headers
        assert plain.content == r.content and len(plain.content) > 1000
        assert int(r.headers["Content-Length"]) < len(plain.content) / 2


def test_the_page_source_never_writes_markup():
    # Logs and results are user data: the page shows them through textContent and form values.
    source_dir = os.path.join(os.path.dirname(__file__), "..", "..", "web", "playground", "src")
    for name in os.listdir(source_dir):
        if name.endswith(".js"):
            with open(os.path.join(source_dir, name)) as f:
                text = f.read()
            for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
                assert sink not in text, f"{name} uses {sink}"


def test_unknown_files_and_other_methods_are_refused(playground_service):
    service = playground_service
    assert service.get("/playground/assets/nope.js").status_code == 404
    status, _, body = service.raw("GET", "/playground/%2e%2e/%2e%2e/etc/passwd")
    assert status == 404
    r = service.post("/playground/", json={})
    assert r.status_code == 405 and r.headers["Allow"] == "GET"


def test_playground_off_removes_the_route(make_service):
    service = make_service(env={"PLAYGROUND": "off"})
    r = service.get("/playground/")
    assert r.status_code == 404
    assert r.json() == service.get("/no-such-route").json()
    assert "playground at" not in service.log() and "not built" not in service.log()


def test_a_playground_that_was_not_built_says_so(make_service, tmp_path):
    empty = tmp_path / "no-bundle"
    empty.mkdir()
    service = make_service(env={"PLAYGROUND_DIR": str(empty)})
    r = service.get("/playground/")
    assert r.status_code == 404
    assert r.json()["error"] == "ObjectNotFoundError"
    assert "not built" in r.json()["message"]
    assert "the playground is on but not built" in service.log()
    # The API is unaffected.
    assert service.save("ws", HELLO).status_code == 200


def test_a_bad_playground_setting_stops_start_up(make_service):
    service = make_service(env={"PLAYGROUND": "sometimes"}, start=False)
    with pytest.raises(RuntimeError) as failed:
        service.start()
    assert "PLAYGROUND: must be on or off" in str(failed.value)


# ---- cross-site requests ----

def test_a_body_that_is_not_declared_json_is_refused_with_415(shared_service):
    service = shared_service
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=b"):
        status, headers, body = service.raw("POST", "/v2/functions/csrf415", body='{"functions": {}}',
                                            headers={"Content-Type": content_type})
        assert status == 415, content_type
        assert body["error"] == "UnsupportedMediaTypeError"
        assert content_type in body["message"]
    status, _, body = service.raw("POST", "/v2/functions/csrf415", body='{"functions": {}}')
    assert status == 415 and "no Content-Type" in body["message"]
    assert service.get("/v2/functions/csrf415").status_code == 404


def test_requests_a_browser_marks_cross_site_are_refused_with_403(shared_service):
    service = shared_service
    assert service.save("csrf403", HELLO).status_code == 200
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                    {"Origin": "https://evil.example"}, {"Origin": "null"}):
        r = service.post("/v2/functions/csrf403/run/hello", json={"parameters": {"name": "x"}}, headers=headers)
        assert r.status_code == 403, headers
        assert r.json()["error"] == "ForbiddenError"
        assert "Access-Control-Allow-Origin" not in r.headers
        assert service.delete("/v2/functions/csrf403", headers=headers).status_code == 403
    assert service.get("/v2/functions/csrf403").status_code == 200


def test_the_playground_origin_and_plain_clients_keep_working(shared_service):
    service = shared_service
    same_origin = {"Origin": service.url, "Sec-Fetch-Site": "same-origin"}
    r = service.post("/v2/functions/csrfok", json={"functions": HELLO}, headers=same_origin)
    assert r.status_code == 200
    r = service.post("/v2/functions/csrfok/run/hello", json={"parameters": {"name": "a"}}, headers={"Origin": service.url})
    assert r.status_code == 200 and r.json()["result"] == "Hello a"
    # The README's curl: a JSON body with its Content-Type.
    status, _, body = service.raw("POST", "/v2/functions/csrfok/run/hello", body='{"parameters": {"name": "b"}}',
                                  headers={"Content-Type": "application/json"})
    assert status == 200 and body["result"] == "Hello b"
    # A run with neither body nor Content-Type (curl -X POST) is still a run without parameters.
    status, _, body = service.raw("POST", "/v2/functions/csrfok/run/hello")
    assert status == 200 and body["result"] == "Hello undefined"
    # Reads are not affected, and no CORS header is ever granted.
    r = service.get("/v2/functions/csrfok", headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers
    status, headers, _ = service.raw("OPTIONS", "/v2/functions/csrfok",
                                     headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "DELETE"})
    assert status == 405 and "Access-Control-Allow-Origin" not in headers
