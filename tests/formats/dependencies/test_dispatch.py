"""Which files are read, what a reader raises, what every reader shares."""

from __future__ import annotations

import pytest

from bot.formats.dependencies import (
    Dep,
    DependencyFileError,
    Ecosystem,
    is_manifest,
    read_dependencies,
)

from .reading import deps_of


def test_ecosystems_and_written_ranges() -> None:
    deps = read_dependencies("package.json", '{"dependencies": {"next": "^13.5.6"}}')
    assert deps == [Dep("next", "13.5.6", 1, Ecosystem.JAVASCRIPT, "^13.5.6")]
    assert deps[0].shown == "^13.5.6"
    (pinned,) = read_dependencies("requirements.txt", "Django==4.2.7\n")
    assert (pinned.ecosystem, pinned.shown) == (Ecosystem.PYTHON, "4.2.7")
    (cargo,) = read_dependencies(
        "Cargo.lock", '[[package]]\nname = "serde"\nversion = "1.0.0"\nsource = "registry+x"\n'
    )
    assert (cargo.ecosystem, cargo.shown) == (Ecosystem.RUST, "1.0.0")


@pytest.mark.parametrize(
    ("path", "text", "line"),
    [
        ("package.json", '{"dependencies": {"a": "1.0.0",}}', 1),
        ("package-lock.json", '{\n  "packages": {\n    "node_modules/a": {\n', 4),
        ("package.json", "[1, 2]", 1),
        ("poetry.lock", '[[package]]\nname = "a"\nversion = 1.0.0\n', 3),
        ("Cargo.lock", "package = 3\n", None),
        ("pyproject.toml", '[project\nname = "x"\n', 1),
        ("yarn.lock", 'react@^17.0.2:\n  version "17.0.2"\n<<<<<<< HEAD\n', 3),
        ("yarn.lock", '"react@^17.0.2:\n  version "17.0.2"\n', 1),
        ("yarn.lock", '__metadata:\n  version: 8\n\n"react@npm:^18.2.0":\n  version: [18\n', 6),
        ("pnpm-lock.yaml", "lockfileVersion: '9.0'\npackages:\n  a@1.0.0: {resolution: x\n", 4),
        ("pnpm-lock.yaml", "lockfileVersion: '9.0'\n\npackages:\n  - react@18.2.0\n", 4),
        ("pnpm-lock.yaml", "- lockfileVersion\n", 1),
        ("Pipfile.lock", '{\n  "default": {\n    "django": {"version": "==4.2.7"\n  }\n}\n', 6),
        (
            "Cargo.toml",
            '[dependencies]\nserde = { version = "1.0",\n  features = ["derive"] }\n',
            2,
        ),
        # a dotted key of 400 KB keeps tomllib busy for ~100 s: refused before parsing
        ("Cargo.toml", "[dependencies]\n" + "a." * 200_000 + 'b = "1"\n', 2),
    ],
)
def test_unparseable_files_raise_with_line(path: str, text: str, line: int | None) -> None:
    with pytest.raises(DependencyFileError) as caught:
        read_dependencies(path, text)
    assert caught.value.line == line


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("requirements.txt", True),
        ("requirements-dev.txt", True),
        ("dev-requirements.txt", True),
        ("services/api/requirements.in", True),
        ("requirements/base.txt", True),
        ("constraints.txt", True),
        ("requirements.lock", True),
        ("MANIFEST.in", False),
        ("Makefile.in", False),
        ("docs/notes.txt", False),
        ("pyproject.toml", True),
        ("poetry.lock", True),
        ("uv.lock", True),
        ("apps/web/package.json", True),
        ("package-lock.json", True),
        ("npm-shrinkwrap.json", True),
        ("Gemfile.lock", True),
        ("Gemfile", False),
        ("go.mod", True),
        ("go.sum", False),
        ("Cargo.lock", True),
        ("crates/api/Cargo.toml", True),
        ("yarn.lock", True),
        ("pnpm-lock.yaml", True),
        ("pnpm-workspace.yaml", False),
        ("Pipfile.lock", True),
        ("Pipfile", False),
        ("README.md", False),
    ],
)
def test_is_manifest(path: str, expected: bool) -> None:
    assert is_manifest(path) is expected


def test_crlf_line_endings() -> None:
    text = "# lock\r\nflask==3.0.0 \\\r\n    --hash=sha256:abc\r\nattrs==23.1.0\r\n"
    assert deps_of("requirements.txt", text) == [("flask", "3.0.0", 2), ("attrs", "23.1.0", 4)]
    lock = '{\r\n  "packages": {\r\n    "node_modules/a": {"version": "1.0.0"}\r\n  }\r\n}\r\n'
    assert deps_of("package-lock.json", lock) == [("a", "1.0.0", 3)]
