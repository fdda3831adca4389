"""Go: go.mod."""

from __future__ import annotations

import pytest

from .reading import deps_of


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        pytest.param(
            "go.mod",
            """\
            module github.com/acme/api

            go 1.21

            require (
            \tgithub.com/go-chi/chi/v5 v5.0.10
            \tgithub.com/jackc/pgx/v5 v5.5.0
            \tgolang.org/x/sync v0.5.0 // indirect
            \tgopkg.in/yaml.v3 v3.0.1
            \tgithub.com/docker/docker v24.0.7+incompatible
            )

            require github.com/stretchr/testify v1.8.4

            replace github.com/jackc/pgx/v5 => ../pgx
            """,
            [
                ("github.com/go-chi/chi", "v5.0.10", 6),
                ("github.com/jackc/pgx", "v5.5.0", 7),
                ("golang.org/x/sync", "v0.5.0", 8),
                ("gopkg.in/yaml", "v3.0.1", 9),
                ("github.com/docker/docker", "v24.0.7+incompatible", 10),
                ("github.com/stretchr/testify", "v1.8.4", 13),
            ],
            id="go.mod",
        ),
    ],
)
def test_reads_go_formats(path: str, text: str, expected: list[tuple[str, str, int]]) -> None:
    assert deps_of(path, text) == expected
