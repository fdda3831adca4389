"""Terraform: `image = "..."` attributes, ECS `jsonencode`/heredoc JSON, variable defaults.

python-hcl2 gives a lark parse tree; the helpers here read strings back as written
(interpolations kept as `${...}`), so a reference is shown the way the file spells it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from hcl2.api import parses_to_tree
from lark import Token, Tree
from lark.exceptions import LarkError, UnexpectedInput

from bot.formats.images.records import Extraction, ImageRef
from bot.formats.images.reference import has_template

_TF_IMAGE_ATTRS = {"image", "image_uri", "container_image"}
_TF_NAME_IS_IMAGE = {"docker_image", "docker_registry_image"}
_JSON_IMAGE_RE = re.compile(r'"[Ii]mage"\s*:\s*"((?:[^"\\]|\\.)*)"')
_VAR_REF_RE = re.compile(r"\$\{\s*var\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}")


def terraform_images(path: str, text: str, out: Extraction) -> None:
    """`image = "..."` in any block (containers, docker, ECS `jsonencode`/heredoc JSON)."""
    tree = _parse(text, out)
    if tree is None:
        return
    reader = _Reader(path, _variable_defaults(tree), out)
    for block in tree.find_data("block"):
        block_type = _token_text(block.children[0])
        labels = _labels(block)
        for attr in _attributes(block):
            name = _token_text(attr.children[0])
            if name in _TF_IMAGE_ATTRS or (
                name == "name"
                and block_type in ("resource", "data")
                and labels
                and labels[0] in _TF_NAME_IS_IMAGE
            ):
                reader.expression(attr.children[-1], _first_line(attr))
    for elem in tree.find_data("object_elem"):
        if _key_name(elem) in _TF_IMAGE_ATTRS:
            reader.expression(elem.children[-1], _first_line(elem))
    for tok in tree.scan_values(lambda v: isinstance(v, Token) and v.type.startswith("HEREDOC")):
        reader.heredoc(tok)


def _parse(text: str, out: Extraction) -> Any:
    """The parse tree, or None with `out.problem` saying why there is none."""
    try:
        return parses_to_tree(text)
    except UnexpectedInput as exc:
        out.problem = "HCL syntax error: unexpected input"
        if isinstance(getattr(exc, "column", None), int) and exc.column > 0:
            out.problem += f" at column {exc.column}"
        line = getattr(exc, "line", None)
        out.problem_line = line if isinstance(line, int) and line > 0 else None
    except (LarkError, RecursionError, ValueError) as exc:
        out.problem = f"HCL error: {exc}"
    return None


class _Reader:
    """Records the references of one file, `${var.x}` resolved from variable defaults."""

    def __init__(self, path: str, variables: dict[str, str], out: Extraction) -> None:
        self.path = path
        self.variables = variables
        self.out = out

    def resolve(self, text: str) -> str:
        return _VAR_REF_RE.sub(lambda m: self.variables.get(m.group(1), m.group(0)), text)

    def add(self, written: str, value: str, line: int | None) -> None:
        self.out.images.append(
            ImageRef(self.path, line, written, "terraform", has_template(value), value)
        )

    def expression(self, expr: Any, line: int | None) -> None:
        expr = _expr_of(expr)
        written = _string_value(expr)
        if written is None:
            if not isinstance(expr, Tree) or expr.data in ("object", "tuple", "function_call"):
                return  # walked for nested `image` keys by the caller
            written = _token_text(expr)
            value = self.resolve("${" + written + "}")
        else:
            value = self.resolve(written)
        if written.strip():
            self.add(written, value, line)

    def heredoc(self, tok: Token) -> None:
        """JSON in a heredoc (ECS container definitions): every `"image": "..."`."""
        body = str(tok)
        for match in _JSON_IMAGE_RE.finditer(body):
            try:
                written = json.loads(f'"{match.group(1)}"')
            except ValueError:
                continue
            line = (tok.line or 1) + body.count("\n", 0, match.start())
            self.add(written, self.resolve(written), line)


def _variable_defaults(tree: Any) -> dict[str, str]:
    """`variable "x" { default = "..." }` defaults that are plain strings."""
    variables: dict[str, str] = {}
    for block in tree.find_data("block"):
        labels = _labels(block)
        if _token_text(block.children[0]) == "variable" and labels and labels[0]:
            for attr in _attributes(block):
                if _token_text(attr.children[0]) == "default":
                    default = _string_value(_expr_of(attr.children[-1]))
                    if default is not None and "${" not in default:
                        variables[labels[0]] = default
    return variables


def _labels(block: Any) -> list[str | None]:
    return [_string_value(c) for c in block.children[1:] if isinstance(c, Tree)]


def _token_text(node: Any) -> str:
    if isinstance(node, Token):
        return str(node)
    return "".join(_token_text(c) for c in node.children)


def _string_value(node: Any) -> str | None:
    """The text of a `string` node as written (interpolations kept as `${...}`)."""
    if not isinstance(node, Tree) or node.data != "string":
        return None
    parts: list[str] = []
    for child in node.children:
        if isinstance(child, Token):
            continue  # the quotes
        for piece in child.children:
            parts.append(str(piece) if isinstance(piece, Token) else _token_text(piece))
    return "".join(parts)


def _first_line(node: Any) -> int | None:
    tokens = node.scan_values(lambda v: isinstance(v, Token)) if isinstance(node, Tree) else [node]
    for tok in tokens:
        return getattr(tok, "line", None)
    return None


def _expr_of(node: Any) -> Any:
    while isinstance(node, Tree) and node.data == "expr_term" and len(node.children) == 1:
        node = node.children[0]
    return node


def _key_name(node: Any) -> str:
    if node.data == "attribute":
        return _token_text(node.children[0])
    key = _expr_of(node.children[0].children[0]) if node.children else None
    if isinstance(key, Tree) and key.data == "string":
        return _string_value(key) or ""
    return _token_text(key) if key is not None else ""


def _attributes(block: Any) -> Iterator[Any]:
    """The attributes directly in a block's body (not those of nested blocks)."""
    for child in block.children:
        if isinstance(child, Tree) and child.data == "body":
            for item in child.children:
                if isinstance(item, Tree) and item.data == "attribute":
                    yield item
