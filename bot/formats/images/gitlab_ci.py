"""GitLab CI pipelines: `image:` and `services:` of jobs and defaults, with CI variables."""

from __future__ import annotations

import re

from bot.formats.images.records import Emitter
from bot.formats.yamldoc import MappingNode, Node, mapping_of, sequence, text_of

_GITLAB_RE = re.compile(r"(?:^|/|\.)gitlab-ci\.ya?ml$|(?:^|/)\.gitlab/ci/.+\.ya?ml$", re.I)

#: Top-level keys that are not jobs.
_GITLAB_RESERVED = {
    "stages",
    "variables",
    "include",
    "workflow",
    "default",
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
    "types",
    "spec",
}


def is_pipeline(path: str) -> bool:
    """`.gitlab-ci.yml` (or `*.gitlab-ci.yml`) and files under `.gitlab/ci/` it includes."""
    return bool(_GITLAB_RE.search(path))


def _gitlab_variables(node: Node | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in mapping_of(node).items():
        text = text_of(value)
        if text is None:
            text = text_of(mapping_of(value).get("value"))
        if text is not None:
            out[name] = text
    return out


def read_pipeline(root: Node, emit: Emitter) -> None:
    """Images of the default, of every job and of the old global form, variables substituted."""
    top = mapping_of(root)
    global_vars = _gitlab_variables(top.get("variables"))
    _gitlab_job(top, global_vars, emit)  # top-level image/services (the old global form)
    _gitlab_job(mapping_of(top.get("default")), global_vars, emit)
    for name, job in top.items():
        if name in _GITLAB_RESERVED or not isinstance(job, MappingNode):
            continue
        fields = mapping_of(job)
        values = {**global_vars, **_gitlab_variables(fields.get("variables"))}
        _gitlab_job(fields, values, emit)


def _gitlab_job(fields: dict[str, Node], values: dict[str, str], emit: Emitter) -> None:
    image = fields.get("image")
    emit.image_node(image, "gitlab-ci", values)
    emit.image_node(mapping_of(image).get("name"), "gitlab-ci", values)
    for service in sequence(fields.get("services")):
        emit.image_node(service, "gitlab-ci", values)
        emit.image_node(mapping_of(service).get("name"), "gitlab-ci", values)
