"""What the image tests share: read one in-memory file and list what was found."""

from __future__ import annotations

import textwrap

from bot.formats.images import ImageRef, extract
from bot.views.memory import MemoryView

SHA = "sha256:" + "0123456789abcdef" * 4


def read_images(path: str, content: str) -> list[tuple[int | None, str, bool]]:
    found = extract(MemoryView({path: textwrap.dedent(content)}), path)
    assert found.problem is None, found.problem
    return sorted((r.line, r.text, r.template) for r in found.images)


def read_refs(path: str, content: str) -> list[ImageRef]:
    found = extract(MemoryView({path: textwrap.dedent(content)}), path)
    assert found.problem is None, found.problem
    return sorted(found.images, key=lambda r: (r.line or 0, r.text))


def read_values(path: str, text: str) -> list[tuple[int | None, str]]:
    return [(i.line, i.value) for i in extract(MemoryView({path: text}), path).images]
