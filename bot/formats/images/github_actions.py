"""GitHub Actions: workflow job containers and services, `uses:` actions and reusable
workflows, and action metadata (`action.yml`)."""

from __future__ import annotations

import re

from bot.formats.images.records import Emitter
from bot.formats.yamldoc import Node, ScalarNode, line_of, mapping_of, sequence, text_of

_WORKFLOW_RE = re.compile(r"(?:^|/)\.github/workflows/[^/]+\.ya?ml$", re.I)
_ACTION_META_RE = re.compile(r"(?:^|/)action\.ya?ml$", re.I)


def is_workflow(path: str) -> bool:
    return bool(_WORKFLOW_RE.search(path))


def is_action_metadata(path: str) -> bool:
    return bool(_ACTION_META_RE.search(path))


def read_workflow(root: Node, emit: Emitter) -> None:
    """Job containers and services; reusable workflows and step actions as `ActionRef`s."""
    for _name, job in mapping_of(mapping_of(root).get("jobs")).items():
        fields = mapping_of(job)
        container = fields.get("container")
        emit.image_node(container, "github-actions")
        emit.image_node(mapping_of(container).get("image"), "github-actions")
        for _service, spec in mapping_of(fields.get("services")).items():
            emit.image_node(mapping_of(spec).get("image"), "github-actions")
        uses = fields.get("uses")  # a reusable workflow
        if isinstance(uses, ScalarNode):
            emit.action(str(uses.value), line_of(uses))
        _github_steps(fields.get("steps"), emit)


def _github_steps(steps: Node | None, emit: Emitter) -> None:
    for step in sequence(steps):
        uses = mapping_of(step).get("uses")
        if isinstance(uses, ScalarNode):
            emit.action(str(uses.value), line_of(uses))


def read_action_metadata(root: Node, emit: Emitter) -> None:
    """A composite action's steps, and a Docker action's `runs.image: docker://...`."""
    runs = mapping_of(mapping_of(root).get("runs"))
    _github_steps(runs.get("steps"), emit)
    image = text_of(runs.get("image"))
    if image is not None and image.startswith("docker://"):
        emit.action(image, line_of(runs["image"]))
