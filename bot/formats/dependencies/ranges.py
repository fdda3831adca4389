"""The lowest version a range admits: what a constraint's "version" is when compared."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from bot.formats.dependencies.model import Ecosystem, release_of

_OPERATOR = re.compile(r"(===|==|~=|~>|>=|<=|!=|\^|~|>|<|=)?\s*(.*)")
_PARTIAL = re.compile(r"[vV]?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(.*)")
_WILDCARDS = {"", "*", "x", "X", "latest"}


def lowest_admitted(spec: str, *, npm: bool = False) -> str | None:
    """The lowest version a range admits, or None when it has no lower bound.

    Understands npm/semver ranges (`^1.2.3`, `~1.2`, `1.x`, `>=2 <3`, `1.2 - 2.0`,
    `a || b`) and Poetry constraints (the same plus `,` and PEP 440 `~=`/`==`).
    `npm=True` reads `>1` as npm and Cargo do (`>=2.0.0`).
    """
    lows = []
    for alternative in re.split(r"\s*\|\|?\s*", spec.strip()):
        low = _lowest_of_set(alternative, npm=npm)
        if low is None:
            return None
        lows.append(low)
    if not lows:
        return None
    return min(lows, key=lambda v: release_of(v, Ecosystem.JAVASCRIPT) or (0, ()))


def _lowest_of_set(comparators: str, *, npm: bool) -> str | None:
    hyphen = re.fullmatch(r"\s*(\S+)\s+-\s+(\S+)\s*", comparators)
    if hyphen:
        comparators = ">=" + hyphen.group(1)
    comparators = re.sub(r"(===|==|~=|~>|>=|<=|!=|\^|~|>|<|=)\s+", r"\1", comparators)
    floors: list[tuple[tuple[int, ...], str]] = []
    for comparator in re.split(r"[\s,]+", comparators.strip()):
        if comparator in _WILDCARDS:
            continue
        op_match = _OPERATOR.fullmatch(comparator)
        assert op_match is not None  # the pattern matches any string
        op, version = op_match.group(1) or "", op_match.group(2)
        if op in ("<", "<=", "!="):
            continue
        partial = _PARTIAL.fullmatch(version)
        if partial is None:
            return None  # not a range: a tag name, URL or path
        given = [int(p) for p in _given_parts(partial.groups()[:3])]
        if not given:
            continue  # `*`, `x.x`: no floor from this comparator
        suffix = partial.group(4) if len(given) == 3 else ""
        if op == ">" and npm:
            given[-1] += 1
            suffix = ""
        padded = given + [0] * (3 - len(given))
        floors.append((tuple(padded), ".".join(map(str, padded)) + suffix))
    if not floors:
        return None
    return max(floors, key=lambda f: f[0])[1]


def _given_parts(parts: Iterable[str | None]) -> Iterator[str]:
    for part in parts:
        if part is None or part in ("x", "X", "*"):
            return
        yield part
