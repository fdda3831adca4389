"""docker-compose files, both layouts."""

from __future__ import annotations

import pytest

from .reading import read_refs, read_values

COMPOSE = """\
services:
  web:
    build: .
    image: acme/web
  db:
    image: postgres:16.2
  cache:
    image: redis
  proxy:
    image: "traefik:${TRAEFIK_VERSION:-v3.0}"
  worker:
    image: ${WORKER_IMAGE}
"""


def test_compose_services() -> None:
    refs = read_refs("docker-compose.yml", COMPOSE)
    assert [(r.line, r.text, r.value, r.template) for r in refs] == [
        (6, "postgres:16.2", "postgres:16.2", False),
        (8, "redis", "redis", False),
        (10, "traefik:${TRAEFIK_VERSION:-v3.0}", "traefik:v3.0", False),
        (12, "${WORKER_IMAGE}", "${WORKER_IMAGE}", True),
    ]


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        ("docker-compose.yml", "version: '2'\nweb:\n  image: nginx:1.25\n", [(3, "nginx:1.25")]),
        (
            "compose.yaml",
            "web:\n  build: .\n  image: mine\ncache:\n  image: redis\n",
            [(5, "redis")],
        ),
        ("deploy/stack.yml", "a:\n  image: x:1\nb:\n  image: y\n", [(2, "x:1"), (4, "y")]),
        # not every top-level entry is a service, and the name does not say compose
        ("config/app.yml", "a:\n  image: x:1\nlogging:\n  level: info\n", []),
    ],
)
def test_compose_version_1_layout(path: str, text: str, expected: list[tuple[int, str]]) -> None:
    assert read_values(path, text) == expected
