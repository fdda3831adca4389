"""Helm values files: `image: name:tag`, a sibling `tag:`, or split `{registry, repository, tag}`."""

from __future__ import annotations

import re

from bot.formats.images.records import Emitter
from bot.formats.images.reference import join_reference, parse_reference
from bot.formats.yamldoc import (
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
    line_of,
    mapping_of,
    text_of,
)

_HELM_VALUES_RE = re.compile(r"(?:^|/)values[^/]*\.ya?ml$", re.I)


def is_values_file(path: str) -> bool:
    """`values.yaml`, `values-production.yml`, ... (by name: values files have no marker)."""
    return bool(_HELM_VALUES_RE.search(path))


def read_values(root: Node, emit: Emitter) -> None:
    """`image: nginx:1.25`, or the split `image: {registry, repository, tag, digest}` anywhere."""
    stack: list[Node] = [root]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, SequenceNode):
            stack.extend(c for c in node.value if not isinstance(c, ScalarNode))
            continue
        if not isinstance(node, MappingNode):
            continue
        siblings: dict[str, Node] | None = None
        for k, v in node.value:
            key = str(k.value) if isinstance(k, ScalarNode) else ""
            lowered = key.lower()
            if isinstance(v, ScalarNode):
                if lowered == "image":
                    if siblings is None:
                        siblings = mapping_of(node)
                    _image_scalar(v, siblings, emit)
                continue
            if lowered.endswith("image") and isinstance(v, MappingNode) and _split_image(v, emit):
                continue
            stack.append(v)


def _image_scalar(node: ScalarNode, siblings: dict[str, Node], emit: Emitter) -> None:
    """`image: ghcr.io/acme/side` with a sibling `tag: v1.20` (or `digest:`): charts write
    `{{ .image }}:{{ .tag }}`, so the two together are the reference."""
    image = text_of(node)
    tag_node, digest_node = siblings.get("tag"), siblings.get("digest")
    tag, digest = text_of(tag_node), text_of(digest_node)
    ref = parse_reference(image) if image else None
    if image is None or (tag is None and digest is None) or ref is None or ref.tag or ref.digest:
        emit.image_node(node, "helm")
        return
    text = join_reference(image, tag, _with_algorithm(digest))
    emit.image(text, _line(tag_node if tag else digest_node, node), "helm")


def _split_image(node: MappingNode, emit: Emitter) -> bool:
    """One split image mapping; False when the mapping is not one (keep walking inside)."""
    fields = mapping_of(node)
    repo_node = (
        fields.get("repository") or fields.get("repo") or fields.get("name") or fields.get("image")
    )
    repository = text_of(repo_node)
    tag_node = fields.get("tag")
    tag = text_of(tag_node)
    digest_node = fields.get("digest") or fields.get("sha")
    digest = text_of(digest_node)
    if repository is None and tag is None:
        return False
    registry = text_of(fields.get("registry"))
    note = None
    if repository is None:
        # An override that sets only the tag: the repository is the chart's default.
        repository, note = "{{ .Values.image.repository }}", "the repository comes from the chart"
    name = f"{registry.strip('/')}/{repository}" if registry else repository
    template = None
    if not tag and not digest:
        template = True
        note = "the chart's appVersion is used instead"
    where = tag_node if tag else (digest_node if digest else repo_node)
    text = join_reference(name, tag, _with_algorithm(digest))
    emit.image(text, _line(where, node), "helm", template=template, note=note)
    return True


def _with_algorithm(digest: str | None) -> str | None:
    """Charts often write the bare hex of a digest; it is a sha256 one."""
    if not digest:
        return digest
    return digest if ":" in digest else f"sha256:{digest}"


def _line(where: Node | None, fallback: Node) -> int:
    return line_of(where) if where is not None else line_of(fallback)
