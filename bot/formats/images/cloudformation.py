"""CloudFormation templates: image properties of container resources, intrinsics resolved
from parameter defaults (`!Ref`, `!Sub`, `!Join`)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from bot.formats.images.records import Emitter
from bot.formats.yamldoc import (
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
    is_null,
    line_of,
    mapping_of,
    sequence,
    text_of,
)

_CFN_IMAGE_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "AWS::ECS::TaskDefinition": (("ContainerDefinitions", "*", "Image"),),
    "AWS::Batch::JobDefinition": (("ContainerProperties", "Image"),),
    "AWS::Lambda::Function": (("Code", "ImageUri"),),
    "AWS::Serverless::Function": (("ImageUri",),),
    "AWS::AppRunner::Service": (("SourceConfiguration", "ImageRepository", "ImageIdentifier"),),
}


def is_template(keys: dict[str, Node]) -> bool:
    """A CloudFormation (or SAM) template: a `Resources:` mapping at the top."""
    return isinstance(keys.get("Resources"), MappingNode)


def read_template(keys: dict[str, Node], emit: Emitter) -> None:
    """The image properties of the resource types that run containers."""
    params: dict[str, str] = {}
    for name, param in mapping_of(keys.get("Parameters")).items():
        default = text_of(mapping_of(param).get("Default"))
        if default is not None:
            params[name] = default
    for _name, resource in mapping_of(keys.get("Resources")).items():
        fields = mapping_of(resource)
        paths = _CFN_IMAGE_PATHS.get(text_of(fields.get("Type")) or "")
        if not paths:
            continue
        for path in paths:
            for node in _follow(fields.get("Properties"), path):
                _cfn_image(node, params, emit)


def _follow(node: Node | None, path: tuple[str, ...]) -> Iterator[Node]:
    if not path:
        if node is not None:
            yield node
        return
    head, rest = path[0], path[1:]
    if head == "*":
        for item in sequence(node):
            yield from _follow(item, rest)
    else:
        yield from _follow(mapping_of(node).get(head), rest)


def _cfn_image(node: Node, params: dict[str, str], emit: Emitter) -> None:
    written, value = _cfn_value(node, params)
    if written is None:
        return
    emit.resolved_image(written, value, line_of(node), "cloudformation")


def _cfn_value(node: Node, params: dict[str, str]) -> tuple[str | None, str]:
    """(as written, resolved) for an intrinsic-bearing value; unresolved parts as `${X}`."""
    tag = node.tag or ""
    fn, arg = tag.lstrip("!"), node
    if isinstance(node, MappingNode) and len(node.value) == 1:
        only_key = text_of(node.value[0][0]) or ""
        if only_key == "Ref" or only_key.startswith("Fn::"):
            fn, arg = only_key.removeprefix("Fn::"), node.value[0][1]
    if isinstance(node, ScalarNode) and not tag.startswith("!"):
        return (None, "") if is_null(node) else (str(node.value), str(node.value))
    if not tag.startswith("!") and arg is node:
        return None, ""  # a plain mapping or list: not a reference
    if fn == "Ref":
        name = text_of(arg) or "?"
        return f"!Ref {name}", params.get(name, f"${{{name}}}")
    if fn == "Sub":
        template, local = arg, {}
        if isinstance(arg, SequenceNode) and arg.value:
            template = arg.value[0]
            if len(arg.value) > 1:
                local = {k: v for k, v in _scalar_items(arg.value[1])}
        text = text_of(template)
        if text is None:
            return "!Sub", "${?}"
        names = {**params, **local}
        return text, re.sub(
            r"\$\{([^}!]+)\}", lambda m: names.get(m.group(1).strip(), m.group(0)), text
        )
    if fn == "Join" and isinstance(arg, SequenceNode) and len(arg.value) == 2:
        sep = text_of(arg.value[0]) or ""
        parts = [_cfn_value(p, params)[1] for p in sequence(arg.value[1])]
        return "!Join", sep.join(parts)
    return f"!{fn}", f"${{{fn}}}"


def _scalar_items(node: Node) -> Iterator[tuple[str, str]]:
    for k, v in mapping_of(node).items():
        text = text_of(v)
        if text is not None and not (v.tag or "").startswith("!"):
            yield k, text
