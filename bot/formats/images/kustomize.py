"""kustomize: `images:` overrides in a kustomization, and JSON 6902 patches of `/image`."""

from __future__ import annotations

import re

from bot.formats.images.records import Emitter
from bot.formats.images.reference import Reference, join_reference, parse_reference
from bot.formats.yamldoc import Node, SequenceNode, line_of, mapping_of, sequence, text_of
from bot.views.base import FileView

_KUSTOMIZATION_RE = re.compile(r"(?:^|/)kustomization\.ya?ml$", re.I)
_KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def is_kustomization(path: str, keys: dict[str, Node]) -> bool:
    """A kustomization by its file name, or by its `kind` and `apiVersion`."""
    if _KUSTOMIZATION_RE.search(path):
        return True
    kind = text_of(keys.get("kind"))
    api = text_of(keys.get("apiVersion")) or ""
    return kind in ("Kustomization", "Component") and api.startswith("kustomize.config.k8s.io")


def read_kustomization(keys: dict[str, Node], emit: Emitter) -> None:
    """`images:` entries that set a tag or a digest; a rename alone keeps the manifest's tag."""
    for entry in sequence(keys.get("images")):
        fields = mapping_of(entry)
        name = text_of(fields.get("newName")) or text_of(fields.get("name"))
        tag_node, digest_node = fields.get("newTag"), fields.get("digest")
        tag, digest = text_of(tag_node), text_of(digest_node)
        if not name or (tag is None and digest is None):
            continue
        where = digest_node if digest else tag_node
        line = line_of(where) if where is not None else line_of(entry)
        emit.image(join_reference(name, tag, digest), line, "kustomize")


def read_json6902_patch(root: SequenceNode, emit: Emitter) -> None:
    """A kustomize JSON patch: `- {op: replace, path: /spec/.../image, value: nginx:1.25}`."""
    for op in root.value:
        fields = mapping_of(op)
        target = text_of(fields.get("path")) or ""
        if text_of(fields.get("op")) in ("add", "replace") and target.endswith("/image"):
            emit.image_node(fields.get("value"), "kustomize")


def kustomize_overrides(view: FileView, path: str) -> dict[str, Reference]:
    """What a kustomization in `path`'s directory or a parent turns image names into
    (`images: [{name, newName, newTag, digest}]`). `kubectl apply -k` replaces those manifest
    images, so the manifest's `image: app` is pinned or not by the kustomization."""
    found: dict[str, Reference] = {}
    parts = path.split("/")[:-1]
    for depth in range(len(parts), -1, -1):
        directory = "/".join(parts[:depth])
        for name in _KUSTOMIZATION_NAMES:
            parsed = view.yaml(f"{directory}/{name}" if directory else name)
            if not parsed.ok:
                continue
            for doc in parsed.documents:
                for image, ref in _overrides_in(doc):
                    found.setdefault(image, ref)
    return found


def _overrides_in(doc: Node) -> list[tuple[str, Reference]]:
    out: list[tuple[str, Reference]] = []
    for entry in sequence(mapping_of(doc).get("images")):
        fields = mapping_of(entry)
        image = text_of(fields.get("name"))
        tag, digest = text_of(fields.get("newTag")), text_of(fields.get("digest"))
        if not image or (tag is None and digest is None):
            continue
        target = text_of(fields.get("newName")) or image
        ref = parse_reference(join_reference(target, tag, digest))
        if ref is not None:
            out.append((image, ref))
    return out
