"""What the dependency tests share: read a dedented manifest; awkward strings for keys."""

from __future__ import annotations

import textwrap

from hypothesis import strategies as st

from bot.formats.dependencies import read_dependencies

#: Values that look like JSON syntax, for the tests of where a key's line is.
tricky = st.sampled_from(["https://r.example/a-1.0.0.tgz", 'a"b": {', "\\", "c:", "{}"])


def deps_of(path: str, text: str) -> list[tuple[str, str, int | None]]:
    return [(d.name, d.version, d.line) for d in read_dependencies(path, textwrap.dedent(text))]
