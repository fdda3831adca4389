"""What the real APIs accept, checked on every request a stand-in receives.

The GitHub stand-in checks each request against GitHub's published OpenAPI description
(npm `@octokit/openapi`): the route exists and the JSON body validates (required fields, enums,
`maxItems` such as 50 annotations). The Slack stand-in checks each Web API call against
Slack's published description (`specs/slack_web_openapi_v2.json` here): the method exists
and its required arguments are present.

A stand-in answers a request that breaks the contract the way the real API would (422 /
`invalid_arguments`) and records it in `VIOLATIONS`; `tests/conftest.py` fails the test
during which one was recorded, so a request the real API would refuse fails the test that
sent it even when the code under test shrugs the error off."""

from __future__ import annotations

import contextlib
import functools
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema.exceptions import ValidationError
from npm_packages import unpacked
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

OPENAPI_PACKAGE, OPENAPI_VERSION = "@octokit/openapi", "23.0.2"
GITHUB_DESCRIPTION = "generated/api.github.com.json"
SLACK_DESCRIPTION = Path(__file__).parent / "specs" / "slack_web_openapi_v2.json"
_GITHUB_URI = "urn:github-openapi"

#: paths a stand-in serves that are not REST API routes: github.com's OAuth web flow, its
#: new-app form (the App manifest flow) and the favicon a browser asks any site for
GITHUB_NON_API = re.compile(
    r"/login/oauth/.*|(/organizations/[^/]+)?/settings/apps/new|/favicon\.ico"
)

NO_SUCH_ROUTE = "no such route in GitHub's REST API"

VIOLATIONS: list[str] = []
_violations_lock = threading.Lock()


def record(violation: str) -> None:
    with _violations_lock:
        VIOLATIONS.append(violation)


@contextlib.contextmanager
def refusals() -> Iterator[list[str]]:
    """For a test that breaks the contract on purpose: the violations recorded inside the
    block, taken out of `VIOLATIONS` so the test is not failed for them."""
    taken: list[str] = []
    with _violations_lock:
        before = len(VIOLATIONS)
    try:
        yield taken
    finally:
        with _violations_lock:
            taken.extend(VIOLATIONS[before:])
            del VIOLATIONS[before:]


@dataclass(frozen=True)
class _Operation:
    template: str
    method: str
    pointer: str  # JSON pointer of the operation inside the description
    spec: dict[str, Any]


class GitHubContract:
    """GitHub's REST API as its OpenAPI description states it."""

    def __init__(self, description: dict[str, Any]) -> None:
        self.description = description
        self.registry: Registry = Registry().with_resource(
            _GITHUB_URI, Resource.from_contents(description, default_specification=DRAFT4)
        )
        self._exact: list[tuple[re.Pattern[str], _Operation]] = []
        self._loose: list[tuple[re.Pattern[str], _Operation]] = []
        for template, item in description["paths"].items():
            for method, operation in item.items():
                if method not in ("get", "post", "put", "patch", "delete"):
                    continue
                pointer = "/paths/" + _escape(template) + "/" + method
                op = _Operation(template, method.upper(), pointer, operation)
                self._exact.append((_template_regex(template, slashy=False), op))
                if _SLASHY.search(template):
                    self._loose.append((_template_regex(template, slashy=True), op))

    def problems(self, method: str, path: str, body: bytes) -> list[str]:
        """What GitHub would refuse in this request (empty if nothing)."""
        if GITHUB_NON_API.fullmatch(path):
            return []
        operation = self._operation(method, path)
        if operation is None:
            return [f"{method} {path}: {NO_SUCH_ROUTE}"]
        where = f"{method} {operation.template}"
        return [f"{where}: {p}" for p in self._body_problems(operation, body)]

    def _operation(self, method: str, path: str) -> _Operation | None:
        for table in (self._exact, self._loose):
            for regex, operation in table:
                if operation.method == method and regex.fullmatch(path):
                    return operation
        return None

    def _body_problems(self, operation: _Operation, body: bytes) -> list[str]:
        request_body = operation.spec.get("requestBody")
        if not request_body or "application/json" not in request_body.get("content", {}):
            return []
        if not body.strip():
            return ["a JSON body is required"] if request_body.get("required") else []
        try:
            payload = json.loads(body)
        except ValueError:
            return ["the body is not JSON"]
        pointer = operation.pointer + "/requestBody/content/application~1json/schema"
        error = self._first_error({"$ref": f"{_GITHUB_URI}#{pointer}"}, payload)
        return [f"body: {error}"] if error else []

    def _first_error(self, schema: dict[str, Any], instance: Any) -> str | None:
        validator = OAS30Validator(schema, registry=self.registry)
        try:
            validator.validate(instance)
        except ValidationError as exc:
            location = "/".join(str(p) for p in exc.absolute_path) or "(root)"
            return f"{location}: breaks {exc.validator}={str(exc.validator_value)[:200]}"
        return None


class SlackContract:
    """Slack's Web API methods and their required arguments, as its description states."""

    def __init__(self, description: dict[str, Any]) -> None:
        self.required: dict[str, set[str]] = {}
        for template, item in description["paths"].items():
            for operation in item.values():
                self.required[template.lstrip("/")] = {
                    p["name"]
                    for p in operation.get("parameters", [])
                    if p.get("required") and p["name"] != "token"
                }

    def problems(self, method: str, arguments: dict[str, Any]) -> list[str]:
        if method not in self.required:
            return [f"{method}: no such method in Slack's Web API"]
        missing = sorted(
            name for name in self.required[method] if arguments.get(name) in (None, "")
        )
        return [f"{method}: missing required argument {name!r}" for name in missing]


@functools.cache
def github() -> GitHubContract:
    package = unpacked(OPENAPI_PACKAGE, OPENAPI_VERSION, members=(GITHUB_DESCRIPTION,))
    return GitHubContract(json.loads((package / GITHUB_DESCRIPTION).read_text()))


@functools.cache
def slack() -> SlackContract:
    return SlackContract(json.loads(SLACK_DESCRIPTION.read_text()))


def _escape(template: str) -> str:
    return template.replace("~", "~0").replace("/", "~1")


#: parameters whose values hold slashes (contents/a/b.yaml, git/ref/heads/main, main...x/y)
_SLASHY = re.compile(r"\{(path|ref|branch|basehead)\}")


def _template_regex(template: str, *, slashy: bool) -> re.Pattern[str]:
    """`template` as a regex; with `slashy`, the parameters in `_SLASHY` may span segments."""

    def parameter(match: re.Match[str]) -> str:
        name = match.group(0)[2:-2]
        return ".+" if slashy and name in ("path", "ref", "branch", "basehead") else "[^/]+"

    return re.compile(re.sub(r"\\\{[^}]+\\\}", parameter, re.escape(template)))
