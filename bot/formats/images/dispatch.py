"""Which reader a file goes to: by its name first, then by what each YAML document says."""

from __future__ import annotations

import os
import re

from bot.formats.helm import PLACEHOLDER_RE as HELM_PLACEHOLDER_RE
from bot.formats.helm import restore
from bot.formats.images import (
    cloudformation,
    compose,
    github_actions,
    gitlab_ci,
    helm_values,
    kubernetes,
    kustomize,
)
from bot.formats.images.dockerfile import DOCKERFILE_RE, dockerfile_images
from bot.formats.images.records import Emitter, Extraction, FileKind, ImageRef
from bot.formats.images.reference import has_template
from bot.formats.images.terraform import terraform_images
from bot.formats.yamldoc import MappingNode, Node, SequenceNode, YamlFile, mapping_of
from bot.views.base import FileView

_YAML_RE = re.compile(r"\.ya?ml$", re.I)


def file_kind(path: str) -> FileKind | None:
    """Which reader handles `path`, by name alone; None for files we do not read."""
    base = os.path.basename(path)
    if DOCKERFILE_RE.match(base):
        return FileKind.DOCKERFILE
    if base.lower().endswith(".tf"):
        return FileKind.TERRAFORM
    if _YAML_RE.search(base):
        return FileKind.YAML
    if base.lower().endswith(".json"):
        return FileKind.JSON
    return None


def extract(view: FileView, path: str, rev: str = "head") -> Extraction:
    """Every image and action reference in `path` at `rev`. Never raises on file content."""
    kind = file_kind(path)
    out = Extraction(kind=kind)
    if kind is None:
        return out
    if kind is FileKind.YAML:
        _extract_yaml(view, path, rev, out)
        return out
    if kind is FileKind.JSON:
        # Kubernetes manifests and CloudFormation templates are also written in JSON, which
        # the YAML reader reads. Other JSON (package.json, lockfiles, dashboards) is not a
        # format we promise to read, so a file that does not parse is not reported.
        _extract_yaml(view, path, rev, out)
        out.problem = out.problem_line = None
        return out
    text = view.text(path, rev)
    if text is None:
        out.problem = view.unreadable_reason(path, rev) or "unreadable"
        return out
    if kind is FileKind.DOCKERFILE:
        out.images.extend(dockerfile_images(path, text))
    else:
        terraform_images(path, text, out)
    return out


def _extract_yaml(view: FileView, path: str, rev: str, out: Extraction) -> None:
    doc = view.yaml(path, rev)
    if doc.missing:
        return
    if not doc.ok:
        out.problem = doc.problem or "unreadable"
        out.problem_line = doc.problem_line
        return
    _extract_documents(path, doc, Emitter(path, out))
    if doc.template_actions:
        # A Helm template read without its actions: show the references as written.
        out.images = [_restored(image, doc.template_actions) for image in out.images]


def _restored(image: ImageRef, actions: list[str]) -> ImageRef:
    if not HELM_PLACEHOLDER_RE.search(image.text + image.value):
        return image
    text, value = restore(image.text, actions), restore(image.value, actions)
    return ImageRef(image.path, image.line, text, image.source, has_template(value), value)


def _extract_documents(path: str, doc: YamlFile, emit: Emitter) -> None:
    """A CI file is read as one whatever its content; other YAML by what each document is."""
    if github_actions.is_workflow(path):
        for root in doc.documents:
            github_actions.read_workflow(root, emit)
    elif github_actions.is_action_metadata(path):
        for root in doc.documents:
            github_actions.read_action_metadata(root, emit)
    elif gitlab_ci.is_pipeline(path):
        for root in doc.documents:
            gitlab_ci.read_pipeline(root, emit)
    else:
        for root in doc.documents:
            _extract_document(path, root, emit)


def _extract_document(path: str, root: Node, emit: Emitter) -> None:
    if isinstance(root, SequenceNode):
        kustomize.read_json6902_patch(root, emit)
        return
    if not isinstance(root, MappingNode):
        return
    keys = mapping_of(root)
    if kustomize.is_kustomization(path, keys):
        kustomize.read_kustomization(keys, emit)
    elif kubernetes.is_manifest(keys):
        kubernetes.read_manifest(root, keys, emit)
    elif cloudformation.is_template(keys):
        cloudformation.read_template(keys, emit)
    elif helm_values.is_values_file(path):
        helm_values.read_values(root, emit)
    elif (services := compose.services_of(path, root, keys)) is not None:
        compose.read_services(services, emit)
