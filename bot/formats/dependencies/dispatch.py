"""Which reader a file goes to, by its name."""

from __future__ import annotations

import posixpath
from collections.abc import Callable

from bot.formats.dependencies.go import read_go_mod
from bot.formats.dependencies.javascript import (
    read_package_json,
    read_package_lock,
    read_pnpm_lock,
    read_yarn_lock,
)
from bot.formats.dependencies.model import Dep
from bot.formats.dependencies.python import (
    read_pipfile_lock,
    read_poetry_lock,
    read_pyproject,
    read_requirements_txt,
    read_uv_lock,
)
from bot.formats.dependencies.ruby import read_gemfile_lock
from bot.formats.dependencies.rust import read_cargo_lock, read_cargo_toml

Reader = Callable[[str], list[Dep]]


def _reader_for(path: str) -> Reader | None:
    name = posixpath.basename(path)
    exact = _READERS.get(name)
    if exact is not None:
        return exact
    lower = name.lower()
    stem, dot, ext = lower.rpartition(".")
    parent = posixpath.basename(posixpath.dirname(path)).lower()
    if dot and ext in ("txt", "in", "lock"):
        if "requirements" in stem or stem.startswith("constraints"):
            return read_requirements_txt
        if parent in ("requirements", "requirements.d") and ext != "lock":
            return read_requirements_txt
    return None


def is_manifest(path: str) -> bool:
    """Whether the file name is one `read_dependencies` reads.

    Python requirements are `*requirements*.txt|.in|.lock` (pip, pip-tools, rye),
    `constraints*.txt|.in`, or any `.txt|.in` under a `requirements/` directory; other
    `.in` files (MANIFEST.in, Makefile.in) are not requirements.
    """
    return _reader_for(path) is not None


def read_dependencies(path: str, text: str) -> list[Dep]:
    """The dependencies `text` declares, in file order; [] for a file that is no manifest.

    Raises DependencyFileError when the file cannot be parsed at all.
    """
    reader = _reader_for(path)
    return [] if reader is None else reader(text)


_READERS: dict[str, Reader] = {
    "pyproject.toml": read_pyproject,
    "poetry.lock": read_poetry_lock,
    "uv.lock": read_uv_lock,
    "package.json": read_package_json,
    "package-lock.json": read_package_lock,
    "npm-shrinkwrap.json": read_package_lock,
    "Gemfile.lock": read_gemfile_lock,
    "gems.locked": read_gemfile_lock,
    "go.mod": read_go_mod,
    "Cargo.lock": read_cargo_lock,
    "Cargo.toml": read_cargo_toml,
    "yarn.lock": read_yarn_lock,
    "pnpm-lock.yaml": read_pnpm_lock,
    "Pipfile.lock": read_pipfile_lock,
}
