"""Policy regexes and globs run in linear time (RE2), never on backtracking `re`.

A repository's `.changegate.yml` is written by whoever can push to its default branch.
`(x+x+)+y` against 40 characters holds Python's `re` (and with it the GIL) for hours,
freezing every thread of the process, webhook answers included; the glob
`*a*a*a*a*a*a*b` does the same to a path through pathspec's default backend. RE2 matches
in time linear in the text. What RE2 cannot compile (backreferences, lookaround) is
refused when the policy is loaded, with the pattern shown as written.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import pathspec
import re2

#: How much of a description is searched for a pattern: GitHub caps a pull request's
#: body at 65,536 characters; beyond that nothing is found, and findings say so.
MAX_SEARCHED = 65_536

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # the error is raised (and shown to the user), not logged by RE2


@lru_cache(maxsize=512)
def compile_regex(pattern: str) -> Any:
    """The RE2 program for `pattern`; ValueError naming it as written if RE2 refuses it."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(
            f"bad regex /{pattern}/: {reason} (policy regexes run on RE2, in linear time: "
            "no backreferences or lookaround)"
        ) from None


def find_all(pattern: str, text: str) -> list[str]:
    """Every match of `pattern` in the first MAX_SEARCHED characters of `text`."""
    return [m.group(0) for m in compile_regex(pattern).finditer(text[:MAX_SEARCHED])]


def compile_globs(patterns: Iterable[str]) -> pathspec.PathSpec:
    """gitignore-style globs, the one way paths are matched everywhere, matched by RE2."""
    return pathspec.PathSpec.from_lines("gitignore", list(patterns), backend="re2")


def unclosed_bracket(glob: str) -> int | None:
    """The index of a `[` that no `]` closes (a typo: `deploy/[prod/**`), else None."""
    i = 0
    while i < len(glob):
        char = glob[i]
        if char == "\\":
            i += 2
            continue
        if char == "[":
            j = i + 1
            if j < len(glob) and glob[j] in "!^":
                j += 1
            if j < len(glob) and glob[j] == "]":  # `[]a]`: the first `]` is a member
                j += 1
            close = glob.find("]", j)
            if close < 0:
                return i
            i = close + 1
            continue
        i += 1
    return None
