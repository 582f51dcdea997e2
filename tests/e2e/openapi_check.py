"""Checks responses of the service against its OpenAPI document (docs/openapi.json), with the JSON
Schema validator of Debian's python3-jsonschema. conftest.py runs every response the tests receive
from a service through check_response, so the document cannot drift from the service."""
import json
import os
import re
import urllib.parse
import warnings

import jsonschema

DOCUMENT_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "openapi.json")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class ResponseMismatch(AssertionError):
    """A response the OpenAPI document does not describe."""


def load_document(path=DOCUMENT_PATH):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class OpenApi:
    def __init__(self, document):
        self.document = document
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # RefResolver: the API of Debian 12's 4.10
            self._resolver = jsonschema.RefResolver.from_schema(document)
        self._templates = []
        for template, item in document["paths"].items():
            pattern = "^" + "/".join(
                "[^/]+" if re.fullmatch(r"\{[^}]+\}", segment) else re.escape(segment)
                for segment in template.split("/")) + "$"
            self._templates.append((re.compile(pattern), template, item))

    def resolve(self, node):
        while isinstance(node, dict) and "$ref" in node:
            _, node = self._resolver.resolve(node["$ref"])
        return node

    def path_item(self, path):
        """The path item a request path falls under, as the router matches it: query cut, one
        trailing slash tolerated, segments matched before percent-decoding."""
        path = path.split("?", 1)[0].split("#", 1)[0]
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        for pattern, template, item in self._templates:
            if pattern.match(path):
                return template, item
        return None, None

    def expected_responses(self, method, path):
        """(where, {status: response object}) for a request."""
        components = self.document["components"]["responses"]
        template, item = self.path_item(path)
        anywhere = {"413": components["PayloadTooLarge"]}
        if item is None:
            # Not a route: a 404, or a 400 for a malformed escape (see info.description).
            return f"unlisted path {path}", {"404": components["NotFound"], "400": components["ValidationError"],
                                              **anywhere}
        operation = item.get(method.lower())
        if operation is None and method.upper() == "HEAD":
            operation = item.get("get")
        if operation is None:
            return f"{method} {template} (not listed)", {"405": components["MethodNotAllowed"], **anywhere}
        return f"{method} {template}", {**anywhere, **operation["responses"]}

    def check(self, method, path, status, headers, body):
        """Raises ResponseMismatch unless the document describes this response. `body` is bytes;
        `headers` a case-insensitive mapping or a dict."""
        where, responses = self.expected_responses(method, path)
        response = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default")
        if response is None:
            raise ResponseMismatch(f"{where}: status {status} is not documented (documented: "
                                   f"{', '.join(sorted(responses))}); body: {body[:300]!r}")
        response = self.resolve(response)
        lower = {k.lower(): v for k, v in headers.items()}
        for name, header in (response.get("headers") or {}).items():
            header = self.resolve(header)
            if header.get("required") and name.lower() not in lower:
                raise ResponseMismatch(f"{where}: status {status} lacks the required header {name}")
        content = response.get("content")
        if not content:
            if body:
                raise ResponseMismatch(f"{where}: status {status} documents no body, got {body[:300]!r}")
            return
        if method.upper() == "HEAD":
            return
        media_type = lower.get("content-type", "").split(";", 1)[0].strip()
        if media_type not in content:
            raise ResponseMismatch(f"{where}: status {status} has Content-Type {media_type!r}, documented: "
                                   f"{', '.join(content)}")
        schema = content[media_type].get("schema")
        if schema is None:
            return
        if media_type == "application/json":
            try:
                value = json.loads(body)
            except ValueError as err:
                raise ResponseMismatch(f"{where}: status {status} body is not JSON ({err}): {body[:300]!r}")
        else:
            value = body.decode("utf-8", "replace")
        validator = jsonschema.Draft202012Validator(schema, resolver=self._resolver,
                                                    format_checker=jsonschema.FormatChecker())
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        if errors:
            problems = "; ".join(f"at /{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errors[:5])
            raise ResponseMismatch(f"{where}: status {status} body does not match the document: {problems}")


_OPENAPI = None


def openapi():
    global _OPENAPI
    if _OPENAPI is None:
        _OPENAPI = OpenApi(load_document())
    return _OPENAPI


def check_response(method, url_or_path, status, headers, body):
    path = urllib.parse.urlsplit(url_or_path).path if "://" in url_or_path else url_or_path
    openapi().check(method, path, status, headers, body or b"")
