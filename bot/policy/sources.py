"""Where a policy comes from when nobody names one."""

from __future__ import annotations

from pathlib import Path

import bot

REPOSITORY_POLICY = ".changegate.yml"


def bundled_policy_path() -> Path:
    """`policies/default.yml`: next to the package in a source tree, inside it in a wheel."""
    package = Path(bot.__file__).resolve().parent
    for candidate in (
        package.parent / "policies" / "default.yml",
        package / "bundled_policies" / "default.yml",
    ):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("the bundled policies/default.yml is missing from this install")


def resolve_policy_setting(value: str) -> Path:
    """The CHANGEGATE_POLICY setting: a path; the default falls back to the bundled file."""
    path = Path(value)
    if path.is_file() or value != "policies/default.yml":
        return path
    return bundled_policy_path()
