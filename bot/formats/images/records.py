"""What reading a file for images yields, and the `Emitter` every format reader fills it with."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from bot.formats.images.reference import Reference, has_template, parse_reference, substitute
from bot.formats.yamldoc import Node, ScalarNode, is_null, line_of


class FileKind(enum.StrEnum):
    YAML = "yaml"
    JSON = "json"
    DOCKERFILE = "dockerfile"
    TERRAFORM = "terraform"


@dataclass(frozen=True)
class ImageRef:
    """One image reference written in a file.

    `text` is what the file says (for split Helm / kustomize fields, the pieces joined);
    `value` is `text` with the values the file defines substituted. `template` is True when
    `value` still holds a placeholder; `note` says why a reference is not fully known.
    """

    path: str
    line: int | None
    text: str
    source: str
    template: bool = False
    value: str = ""
    note: str | None = None

    def __post_init__(self) -> None:
        if not self.value:
            object.__setattr__(self, "value", self.text)

    @cached_property
    def reference(self) -> Reference | None:
        return None if self.template else parse_reference(self.value)


@dataclass(frozen=True)
class ActionRef:
    """A GitHub Actions `uses: owner/repo[/path]@ref` (a step action or a reusable workflow)."""

    path: str
    line: int | None
    text: str
    name: str  # owner/repo[/path]
    ref: str | None  # what follows `@`; None when missing
    template: bool = False


@dataclass
class Extraction:
    """What one file holds, or why it could not be read (the rest of the change still is)."""

    images: list[ImageRef] = field(default_factory=list)
    actions: list[ActionRef] = field(default_factory=list)
    kind: FileKind | None = None
    problem: str | None = None
    problem_line: int | None = None


class Emitter:
    """Builds records for one file; substitutes what the file defines."""

    def __init__(self, path: str, out: Extraction) -> None:
        self.path = path
        self.out = out

    def image(
        self,
        text: str,
        line: int | None,
        source: str,
        *,
        values: Mapping[str, str] | None = None,
        template: bool | None = None,
        note: str | None = None,
    ) -> None:
        """`text` as written, with the `$X` / `${X:-default}` the file defines in `values`."""
        written = text.strip()
        value = substitute(written, values or {}) if "$" in written else written
        self._add(written, value, line, source, template=template, note=note)

    def resolved_image(self, text: str, value: str, line: int | None, source: str) -> None:
        """A reference whose value the reader resolved itself (CloudFormation intrinsics)."""
        self._add(text.strip(), value, line, source)

    def _add(
        self,
        written: str,
        value: str,
        line: int | None,
        source: str,
        *,
        template: bool | None = None,
        note: str | None = None,
    ) -> None:
        if not written:
            return
        is_template = has_template(value) if template is None else template
        self.out.images.append(ImageRef(self.path, line, written, source, is_template, value, note))

    def image_node(
        self, node: Node | None, source: str, values: Mapping[str, str] | None = None
    ) -> None:
        """A scalar `image:` value; anything else (a mapping, a list, null) is no reference."""
        if isinstance(node, ScalarNode) and not is_null(node):
            self.image(str(node.value), line_of(node), source, values=values)

    def action(self, text: str, line: int | None) -> None:
        text = text.strip()
        if not text or text.startswith(("./", "../", "/")):
            return  # local actions live in the same commit
        if text.startswith("docker://"):
            self.image(text[len("docker://") :], line, "github-actions")
            return
        name, at, ref = text.partition("@")
        self.out.actions.append(
            ActionRef(self.path, line, text, name, ref if at else None, has_template(text))
        )
