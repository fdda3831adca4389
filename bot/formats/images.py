"""Image references: the OCI reference grammar, and where references are written.

Two ideas live here. `parse_reference()` reads `[registry[:port]/]path[:tag][@digest]` by the
grammar of github.com/distribution/reference (the one Docker, containerd and Kubernetes
share), including its rule for telling a registry from the first path component.
`extract()` reads one file of any kind we know (Kubernetes, kustomize, Helm values,
docker-compose, Dockerfile, CloudFormation, Terraform, GitLab CI, GitHub workflows and
action metadata) and returns the references written in it, each with its line.

Nothing here knows about policy: whether `nginx:latest` is acceptable is the rule's call.
Values the file itself defines (Dockerfile `ARG` defaults, CloudFormation parameter
defaults, Terraform variable defaults, GitLab CI variables, `${VAR:-default}`) are
substituted; whatever stays unresolved marks the reference as a template.
"""

from __future__ import annotations

import enum
import io
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from bot.formats.helm import PLACEHOLDER_RE as HELM_PLACEHOLDER_RE
from bot.formats.helm import restore
from bot.formats.yamldoc import (
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
    YamlFile,
    is_null,
    line_of,
)

if TYPE_CHECKING:
    from bot.change import FileView

__all__ = [
    "ActionRef",
    "Extraction",
    "FileKind",
    "ImageRef",
    "Reference",
    "extract",
    "file_kind",
    "has_template",
    "parse_reference",
]

# -- the reference grammar (distribution/reference, regexp.go) ------------------------------

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_REMOTE_NAME = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_DOMAIN_RE = re.compile(_DOMAIN)
_REMOTE_NAME_RE = re.compile(_REMOTE_NAME)
_TAG_RE = re.compile(_TAG)
_DIGEST_RE = re.compile(_DIGEST)
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}

#: Longest name (registry and path) the grammar accepts.
NAME_TOTAL_LENGTH_MAX = 255
DEFAULT_REGISTRY = "docker.io"


@dataclass(frozen=True)
class Reference:
    """A parsed image reference; `registry` is None when written without one (docker.io)."""

    registry: str | None
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def domain(self) -> str:
        return self.registry or DEFAULT_REGISTRY

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    @property
    def pinned_by_digest(self) -> bool:
        return self.digest is not None

    def __str__(self) -> str:
        out = self.name
        if self.tag is not None:
            out += f":{self.tag}"
        if self.digest is not None:
            out += f"@{self.digest}"
        return out


def parse_reference(text: str) -> Reference | None:
    """The reference written as `text`, or None when it is not one. Never raises.

    The first path component is a registry only if it has a `.` or a `:`, is
    `localhost`, or has an upper-case letter (distribution's `splitDockerDomain`), so
    `localhost:5000/app` is registry `localhost:5000` with no tag.
    """
    if not isinstance(text, str) or not text or len(text) > 1024:
        return None
    name_tag, at, digest = text.partition("@")
    if at:
        if not _DIGEST_RE.fullmatch(digest):
            return None
        algorithm, _, encoded = digest.partition(":")
        expected = _DIGEST_LENGTHS.get(algorithm)
        if expected is not None and len(encoded) != expected:
            return None
    slash = name_tag.rfind("/")
    colon = name_tag.rfind(":")
    tag: str | None = None
    name = name_tag
    if colon > slash:
        name, tag = name_tag[:colon], name_tag[colon + 1 :]
        if not _TAG_RE.fullmatch(tag):
            return None
    if not name or len(name) > NAME_TOTAL_LENGTH_MAX:
        return None
    registry: str | None = None
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        if not _DOMAIN_RE.fullmatch(first):
            return None
        registry, name = first, rest
    if not _REMOTE_NAME_RE.fullmatch(name):
        return None
    return Reference(registry, name, tag, digest if at else None)


# -- templates ----------------------------------------------------------------------------

#: Placeholders a tool fills in later: Helm/Jinja/Go `{{ }}`, GitHub `${{ }}`, GitLab
#: `$[[ ]]`, shell/compose/Terraform/CloudFormation `${X}` and `$X`, `<image_url>`, ERB.
_PLACEHOLDER_RE = re.compile(
    r"\$\{\{.*?\}\}|\{\{.*?\}\}|\$\[\[.*?\]\]|\$\{[^{}]*\}|\$\([^()]*\)|\$[A-Za-z_][A-Za-z0-9_]*"
    r"|<[^<>\s]+>|<%.*?%>|%\{[^{}]*\}|#\{[^{}]*\}|@[A-Za-z_][A-Za-z0-9_]*@"
    r"|(?<![A-Za-z0-9])__[A-Z0-9_]+__(?![A-Za-z0-9])"
)
#: An all-capitals word that stands where a name should be (`CONTAINER_IMAGE`, `PROJECT_ID`).
_CAPS_WORD_RE = re.compile(r"(?<![A-Za-z0-9])[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*(?![a-z0-9])")


def has_template(text: str) -> bool:
    """Does `text` hold a placeholder that some tool fills in later?"""
    if _PLACEHOLDER_RE.search(text):
        return True
    # An all-caps word only counts when the text is not a valid reference without it
    # (tags may be upper case: `app:RC1` is a real tag, `CONTAINER_IMAGE` is not a name).
    return parse_reference(text) is None and bool(_CAPS_WORD_RE.search(text))


def mask_templates(text: str, replacement: str = "\x00") -> str:
    """`text` with every placeholder replaced by `replacement` (one char keeps it simple)."""
    masked = _PLACEHOLDER_RE.sub(replacement, text)
    if parse_reference(text) is None:
        masked = _CAPS_WORD_RE.sub(replacement, masked)
    return masked


_VAR_RE = re.compile(
    r"\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-+?=])(?P<arg>[^{}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


def substitute(text: str, values: Mapping[str, str], *, use_defaults: bool = True) -> str:
    """Shell-style `$X`, `${X}`, `${X:-default}` with `values`; unknown names stay as written."""

    def repl(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        op = match.group("op")
        value = values.get(name)
        if op in (":-", "-", ":=", "="):
            if value is not None and (value or op in ("-", "=")):
                return value
            return str(match.group("arg")) if use_defaults else match.group(0)
        if op in (":+", "+"):
            return (
                str(match.group("arg")) if value else ("" if value is not None else match.group(0))
            )
        if op is not None:  # `${X:?error}`
            return value if value else match.group(0)
        return value if value is not None else match.group(0)

    return _VAR_RE.sub(repl, text)


# -- what extraction yields ------------------------------------------------------------------


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


# -- recognising files -----------------------------------------------------------------------

_DOCKERFILE_RE = re.compile(
    r"^(?:dockerfile|containerfile)(?:[.-].*)?$|^.+\.(?:dockerfile|containerfile)$", re.I
)
_YAML_RE = re.compile(r"\.ya?ml$", re.I)
_WORKFLOW_RE = re.compile(r"(?:^|/)\.github/workflows/[^/]+\.ya?ml$", re.I)
_ACTION_META_RE = re.compile(r"(?:^|/)action\.ya?ml$", re.I)
_GITLAB_RE = re.compile(r"(?:^|/|\.)gitlab-ci\.ya?ml$|(?:^|/)\.gitlab/ci/.+\.ya?ml$", re.I)
_KUSTOMIZATION_RE = re.compile(r"(?:^|/)kustomization\.ya?ml$", re.I)
_HELM_VALUES_RE = re.compile(r"(?:^|/)values[^/]*\.ya?ml$", re.I)


def file_kind(path: str) -> FileKind | None:
    """Which reader handles `path`, by name alone; None for files we do not read."""
    base = os.path.basename(path)
    if _DOCKERFILE_RE.match(base):
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


# -- YAML family ---------------------------------------------------------------------------


def _extract_yaml(view: FileView, path: str, rev: str, out: Extraction) -> None:
    doc = view.yaml(path, rev)
    if doc.missing:
        return
    if not doc.ok:
        out.problem = doc.problem or "unreadable"
        out.problem_line = doc.problem_line
        return
    _extract_documents(path, doc, out)
    if doc.template_actions:
        # A Helm template read without its actions: show the references as written.
        out.images = [_restored(image, doc.template_actions) for image in out.images]


def _restored(image: ImageRef, actions: list[str]) -> ImageRef:
    if not HELM_PLACEHOLDER_RE.search(image.text + image.value):
        return image
    text, value = restore(image.text, actions), restore(image.value, actions)
    return ImageRef(image.path, image.line, text, image.source, has_template(value), value)


def _extract_documents(path: str, doc: YamlFile, out: Extraction) -> None:
    emit = _Emitter(path, out)
    if _WORKFLOW_RE.search(path):
        for root in doc.documents:
            _github_workflow(root, emit)
        return
    if _ACTION_META_RE.search(path):
        for root in doc.documents:
            _github_action_metadata(root, emit)
        return
    if _GITLAB_RE.search(path):
        for root in doc.documents:
            _gitlab_ci(root, emit)
        return
    helm_values = bool(_HELM_VALUES_RE.search(path))
    for root in doc.documents:
        if isinstance(root, SequenceNode):
            _json6902_patch(root, emit)
            continue
        if not isinstance(root, MappingNode):
            continue
        keys = {k.value: v for k, v in root.value if isinstance(k, ScalarNode)}
        if _KUSTOMIZATION_RE.search(path) or _is_kustomization(keys):
            _kustomization(keys, emit)
        elif "apiVersion" in keys and "kind" in keys:
            _kubernetes(root, keys, emit)
        elif isinstance(keys.get("Resources"), MappingNode):
            _cloudformation(keys, emit)
        elif helm_values:
            _helm_values(root, emit)
        elif isinstance(keys.get("services"), MappingNode):
            _compose(keys["services"], emit)
        elif _is_compose_v1(path, keys):
            _compose(root, emit)


class _Emitter:
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
        resolved: str | None = None,
    ) -> None:
        text = text.strip()
        if not text:
            return
        if resolved is not None:
            value = resolved
        else:
            value = substitute(text, values or {}) if "$" in text else text
        is_template = has_template(value) if template is None else template
        self.out.images.append(ImageRef(self.path, line, text, source, is_template, value, note))

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


def _mapping(node: Node | None) -> dict[str, Node]:
    if isinstance(node, MappingNode):
        return {str(k.value): v for k, v in node.value if isinstance(k, ScalarNode)}
    return {}


def _seq(node: Node | None) -> list[Node]:
    return list(node.value) if isinstance(node, SequenceNode) else []


def _text(node: Node | None) -> str | None:
    if isinstance(node, ScalarNode) and not is_null(node):
        return str(node.value)
    return None


# Kubernetes ---------------------------------------------------------------------------------

#: Where the pod spec sits, per pod-bearing kind.
_POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
#: Kinds that never hold a container image (or hold schemas that look like one).
_NO_IMAGES = {
    "CustomResourceDefinition",
    "ConfigMap",
    "Secret",
    "Service",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "Namespace",
    "Ingress",
    "NetworkPolicy",
    "PersistentVolumeClaim",
    "PersistentVolume",
    "StorageClass",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "APIService",
    "PrometheusRule",
    "ServiceMonitor",
    "PodMonitor",
    "Endpoints",
    "EndpointSlice",
    "LimitRange",
    "ResourceQuota",
    "PriorityClass",
}


def _kubernetes(root: MappingNode, keys: dict[str, Node], emit: _Emitter) -> None:
    kind = _text(keys.get("kind")) or ""
    if kind.endswith("List"):
        for item in _seq(keys.get("items")):
            item_keys = _mapping(item)
            if isinstance(item, MappingNode) and "kind" in item_keys:
                _kubernetes(item, item_keys, emit)
        return
    spec_path = _POD_SPEC_PATHS.get(kind)
    if spec_path is not None:
        node: Node | None = root
        for key in spec_path:
            node = _mapping(node).get(key)
        pod = _mapping(node)
        for list_name in _CONTAINER_LISTS:
            for container in _seq(pod.get(list_name)):
                # A kustomize patch names a container without restating its image.
                emit.image_node(_mapping(container).get("image"), "kubernetes")
        return
    if kind in _NO_IMAGES:
        return
    # Custom resources (Argo Rollouts, Knative, Tekton, Prometheus, ...): any `image:` scalar.
    for value in _image_values(root):
        emit.image_node(value, "kubernetes")


def _image_values(root: Node, names: frozenset[str] = frozenset({"image"})) -> Iterator[Node]:
    """Values of every `image:` key, each node once (aliases cost nothing), no path tuples."""
    seen: set[int] = set()
    stack: list[Node] = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            for k, v in node.value:
                if isinstance(v, ScalarNode):
                    if k.value in names:
                        yield v
                else:
                    if k.value in names:
                        yield v
                    stack.append(v)
        elif isinstance(node, SequenceNode):
            stack.extend(c for c in node.value if not isinstance(c, ScalarNode))


def _is_kustomization(keys: dict[str, Node]) -> bool:
    kind = _text(keys.get("kind"))
    api = _text(keys.get("apiVersion")) or ""
    return kind in ("Kustomization", "Component") and api.startswith("kustomize.config.k8s.io")


def _kustomization(keys: dict[str, Node], emit: _Emitter) -> None:
    """`images:` entries that set a tag or a digest; a rename alone keeps the manifest's tag."""
    for entry in _seq(keys.get("images")):
        fields = _mapping(entry)
        name = _text(fields.get("newName")) or _text(fields.get("name"))
        tag_node, digest_node = fields.get("newTag"), fields.get("digest")
        tag, digest = _text(tag_node), _text(digest_node)
        if not name or (tag is None and digest is None):
            continue
        text = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
        where = digest_node if digest else tag_node
        emit.image(text, line_of(where) if where is not None else line_of(entry), "kustomize")


def _json6902_patch(root: SequenceNode, emit: _Emitter) -> None:
    """A kustomize JSON patch: `- {op: replace, path: /spec/.../image, value: nginx:1.25}`."""
    for op in root.value:
        fields = _mapping(op)
        target = _text(fields.get("path")) or ""
        if _text(fields.get("op")) in ("add", "replace") and target.endswith("/image"):
            emit.image_node(fields.get("value"), "kustomize")


# Helm values ------------------------------------------------------------------------------


def _helm_values(root: Node, emit: _Emitter) -> None:
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
                        siblings = _mapping(node)
                    _helm_image_scalar(v, siblings, emit)
                continue
            if lowered.endswith("image") and isinstance(v, MappingNode) and _helm_split(v, emit):
                continue
            stack.append(v)


def _helm_image_scalar(node: ScalarNode, siblings: dict[str, Node], emit: _Emitter) -> None:
    """`image: ghcr.io/acme/side` with a sibling `tag: v1.20` (or `digest:`): charts write
    `{{ .image }}:{{ .tag }}`, so the two together are the reference."""
    image = _text(node)
    tag_node, digest_node = siblings.get("tag"), siblings.get("digest")
    tag, digest = _text(tag_node), _text(digest_node)
    ref = parse_reference(image) if image else None
    if image is None or (tag is None and digest is None) or ref is None or ref.tag or ref.digest:
        emit.image_node(node, "helm")
        return
    text = image + (f":{tag}" if tag else "")
    if digest:
        text += f"@{digest}" if ":" in digest else f"@sha256:{digest}"
    where = tag_node if tag else digest_node
    emit.image(text, line_of(where) if where is not None else line_of(node), "helm")


def _helm_split(node: MappingNode, emit: _Emitter) -> bool:
    """One split image mapping; False when the mapping is not one (keep walking inside)."""
    fields = _mapping(node)
    repo_node = (
        fields.get("repository") or fields.get("repo") or fields.get("name") or fields.get("image")
    )
    repository = _text(repo_node)
    tag_node = fields.get("tag")
    tag = _text(tag_node)
    digest_node = fields.get("digest") or fields.get("sha")
    digest = _text(digest_node)
    if repository is None and tag is None:
        return False
    registry = _text(fields.get("registry"))
    note = None
    if repository is None:
        # An override that sets only the tag: the repository is the chart's default.
        repository, note = "{{ .Values.image.repository }}", "the repository comes from the chart"
    name = f"{registry.strip('/')}/{repository}" if registry else repository
    text = name + (f":{tag}" if tag else "")
    if digest:
        text += f"@{digest}" if ":" in digest else f"@sha256:{digest}"
    template = None
    if not tag and not digest:
        template = True
        note = "the chart's appVersion is used instead"
    where = tag_node if tag else (digest_node if digest else repo_node)
    emit.image(
        text,
        line_of(where) if where is not None else line_of(node),
        "helm",
        template=template,
        note=note,
    )
    return True


# docker-compose -----------------------------------------------------------------------------


_COMPOSE_NAME_RE = re.compile(r"(?:^|/)(?:docker-)?compose[^/]*\.ya?ml$", re.I)


def _is_compose_v1(path: str, keys: dict[str, Node]) -> bool:
    """The version-1 layout: services at the top level, no `services:` key. Trusted by file
    name, or when every top-level entry is a service (a mapping with `image` or `build`)."""
    services = [v for k, v in keys.items() if k != "version"]
    if not services or not all(isinstance(v, MappingNode) for v in services):
        return False
    has_image = [("image" in _mapping(v) or "build" in _mapping(v)) for v in services]
    if _COMPOSE_NAME_RE.search(path):
        return any(has_image)
    return all(has_image)


def _compose(services: Node, emit: _Emitter) -> None:
    """`services.*.image`; with `build:` the image is the name compose gives what it builds."""
    for _name, service in _mapping(services).items():
        fields = _mapping(service)
        if "build" not in fields:
            emit.image_node(fields.get("image"), "compose")


# CloudFormation ---------------------------------------------------------------------------

_CFN_IMAGE_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "AWS::ECS::TaskDefinition": (("ContainerDefinitions", "*", "Image"),),
    "AWS::Batch::JobDefinition": (("ContainerProperties", "Image"),),
    "AWS::Lambda::Function": (("Code", "ImageUri"),),
    "AWS::Serverless::Function": (("ImageUri",),),
    "AWS::AppRunner::Service": (("SourceConfiguration", "ImageRepository", "ImageIdentifier"),),
}


def _cloudformation(keys: dict[str, Node], emit: _Emitter) -> None:
    params: dict[str, str] = {}
    for name, param in _mapping(keys.get("Parameters")).items():
        default = _text(_mapping(param).get("Default"))
        if default is not None:
            params[name] = default
    for _name, resource in _mapping(keys.get("Resources")).items():
        fields = _mapping(resource)
        paths = _CFN_IMAGE_PATHS.get(_text(fields.get("Type")) or "")
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
        for item in _seq(node):
            yield from _follow(item, rest)
    else:
        yield from _follow(_mapping(node).get(head), rest)


def _cfn_image(node: Node, params: dict[str, str], emit: _Emitter) -> None:
    written, value = _cfn_value(node, params)
    if written is None:
        return
    emit.image(written, line_of(node), "cloudformation", resolved=value)


def _cfn_value(node: Node, params: dict[str, str]) -> tuple[str | None, str]:
    """(as written, resolved) for an intrinsic-bearing value; unresolved parts as `${X}`."""
    tag = node.tag or ""
    fn, arg = tag.lstrip("!"), node
    if isinstance(node, MappingNode) and len(node.value) == 1:
        only_key = _text(node.value[0][0]) or ""
        if only_key == "Ref" or only_key.startswith("Fn::"):
            fn, arg = only_key.removeprefix("Fn::"), node.value[0][1]
    if isinstance(node, ScalarNode) and not tag.startswith("!"):
        return (None, "") if is_null(node) else (str(node.value), str(node.value))
    if not tag.startswith("!") and arg is node:
        return None, ""  # a plain mapping or list: not a reference
    if fn == "Ref":
        name = _text(arg) or "?"
        return f"!Ref {name}", params.get(name, f"${{{name}}}")
    if fn == "Sub":
        template, local = arg, {}
        if isinstance(arg, SequenceNode) and arg.value:
            template = arg.value[0]
            if len(arg.value) > 1:
                local = {k: v for k, v in _scalar_items(arg.value[1])}
        text = _text(template)
        if text is None:
            return "!Sub", "${?}"
        names = {**params, **local}
        return text, re.sub(
            r"\$\{([^}!]+)\}", lambda m: names.get(m.group(1).strip(), m.group(0)), text
        )
    if fn == "Join" and isinstance(arg, SequenceNode) and len(arg.value) == 2:
        sep = _text(arg.value[0]) or ""
        parts = [_cfn_value(p, params)[1] for p in _seq(arg.value[1])]
        return "!Join", sep.join(parts)
    return f"!{fn}", f"${{{fn}}}"


def _scalar_items(node: Node) -> Iterator[tuple[str, str]]:
    for k, v in _mapping(node).items():
        text = _text(v)
        if text is not None and not (v.tag or "").startswith("!"):
            yield k, text


# GitLab CI ----------------------------------------------------------------------------------

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


def _gitlab_variables(node: Node | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in _mapping(node).items():
        text = _text(value)
        if text is None:
            text = _text(_mapping(value).get("value"))
        if text is not None:
            out[name] = text
    return out


def _gitlab_ci(root: Node, emit: _Emitter) -> None:
    top = _mapping(root)
    global_vars = _gitlab_variables(top.get("variables"))
    _gitlab_job(top, global_vars, emit)  # top-level image/services (the old global form)
    _gitlab_job(_mapping(top.get("default")), global_vars, emit)
    for name, job in top.items():
        if name in _GITLAB_RESERVED or not isinstance(job, MappingNode):
            continue
        fields = _mapping(job)
        values = {**global_vars, **_gitlab_variables(fields.get("variables"))}
        _gitlab_job(fields, values, emit)


def _gitlab_job(fields: dict[str, Node], values: dict[str, str], emit: _Emitter) -> None:
    image = fields.get("image")
    emit.image_node(image, "gitlab-ci", values)
    emit.image_node(_mapping(image).get("name"), "gitlab-ci", values)
    for service in _seq(fields.get("services")):
        emit.image_node(service, "gitlab-ci", values)
        emit.image_node(_mapping(service).get("name"), "gitlab-ci", values)


# GitHub -----------------------------------------------------------------------------------


def _github_workflow(root: Node, emit: _Emitter) -> None:
    for _name, job in _mapping(_mapping(root).get("jobs")).items():
        fields = _mapping(job)
        container = fields.get("container")
        emit.image_node(container, "github-actions")
        emit.image_node(_mapping(container).get("image"), "github-actions")
        for _service, spec in _mapping(fields.get("services")).items():
            emit.image_node(_mapping(spec).get("image"), "github-actions")
        uses = fields.get("uses")  # a reusable workflow
        if isinstance(uses, ScalarNode):
            emit.action(str(uses.value), line_of(uses))
        _github_steps(fields.get("steps"), emit)


def _github_steps(steps: Node | None, emit: _Emitter) -> None:
    for step in _seq(steps):
        uses = _mapping(step).get("uses")
        if isinstance(uses, ScalarNode):
            emit.action(str(uses.value), line_of(uses))


def _github_action_metadata(root: Node, emit: _Emitter) -> None:
    runs = _mapping(_mapping(root).get("runs"))
    _github_steps(runs.get("steps"), emit)
    image = _text(runs.get("image"))
    if image is not None and image.startswith("docker://"):
        emit.action(image, line_of(runs["image"]))


# -- Dockerfile -----------------------------------------------------------------------------

_HEREDOC_RE = re.compile(r"<<-?\s*([\"']?)([A-Za-z_][A-Za-z0-9_]*)\1")
_FROM_FLAG_RE = re.compile(r"^--[A-Za-z-]+=\S*$")


def dockerfile_images(path: str, text: str) -> list[ImageRef]:
    """`FROM` and `COPY --from` / `RUN --mount=from=` images, ARG defaults substituted.

    dockerfile-parse reads continuation lines and comments; it does not know heredocs
    (`RUN <<EOF`), whose bodies it would read as instructions, and it cannot read files
    with stray carriage returns or NULs. Those files are read line by line instead.
    """
    instructions = _dockerfile_instructions(text)
    out: list[ImageRef] = []
    global_args: dict[str, str] = {}  # ARGs before the first FROM: what FROM lines see
    stage_args: dict[str, str] = {}  # what the current stage's instructions see
    stages: set[str] = set()
    in_stage = False
    for name, value, line in instructions:
        if name == "ARG":
            scope = stage_args if in_stage else global_args
            for word in _split_words(value):
                arg, eq, default = word.partition("=")
                if eq:
                    scope[arg] = substitute(_unquote(default), scope)
                elif in_stage and arg in global_args:
                    scope[arg] = global_args[arg]  # `ARG X` re-declares the global default
        elif name == "FROM":
            in_stage = True
            stage_args = {}
            words = [w for w in _split_words(value) if not _FROM_FLAG_RE.match(w)]
            if not words:
                continue
            image = words[0]
            if image.lower() not in stages:
                _docker_image(out, path, image, line, global_args)
            if len(words) >= 3 and words[1].lower() == "as":
                stages.add(words[2].lower())
        elif name in ("COPY", "ADD", "RUN"):
            for source in _from_flags(value):
                if source.lower() in stages or source.isdigit():
                    continue  # an earlier stage, by name or by index
                _docker_image(out, path, source, line, stage_args)
    return out


def _docker_image(
    out: list[ImageRef], path: str, image: str, line: int, args: Mapping[str, str]
) -> None:
    value = substitute(image, args)
    if value.lower() == "scratch":
        return
    out.append(ImageRef(path, line, image, "dockerfile", has_template(value), value))


def _from_flags(value: str) -> Iterator[str]:
    for word in _split_words(value):
        if word.startswith("--from="):
            yield _unquote(word[len("--from=") :])
        elif word.startswith("--mount="):
            for part in word[len("--mount=") :].split(","):
                key, _, val = part.partition("=")
                if key == "from" and val:
                    yield _unquote(val)
        elif not word.startswith("--"):
            return  # flags come first


def _split_words(value: str) -> list[str]:
    return value.split()


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _dockerfile_instructions(text: str) -> list[tuple[str, str, int]]:
    """(INSTRUCTION, value, 1-based line) of every instruction."""
    if (
        "\r" not in text.replace("\r\n", "\n")
        and "\x00" not in text
        and not _HEREDOC_RE.search(text)
    ):
        try:
            from dockerfile_parse import DockerfileParser

            parser = DockerfileParser(fileobj=io.BytesIO(text.encode("utf-8")))
            found = [
                (str(i["instruction"]).upper(), str(i["value"]), int(i["startline"]) + 1)
                for i in parser.structure
                if i["instruction"] != "COMMENT"
            ]
            # dockerfile-parse splits the keyword at the first space, so `FROM\` continued
            # on the next line comes back as an instruction named `FROM\`: read by lines.
            if all(name.isalpha() for name, _, _ in found):
                return found
        except Exception:  # noqa: BLE001 - any failure means: read it line by line
            pass
    return _dockerfile_lines(text)


def _dockerfile_lines(text: str) -> list[tuple[str, str, int]]:
    """A line reader that knows comments, `\\` continuations and heredoc bodies."""
    out: list[tuple[str, str, int]] = []
    lines = re.split(r"\r\n|\r|\n", text)
    escape = "\\"
    match = re.match(r"#\s*escape\s*=\s*(\S)", lines[0] if lines else "")
    if match:
        escape = match.group(1)
    i = 0
    while i < len(lines):
        start = i
        line = lines[i].replace("\x00", "")
        i += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = [stripped]
        # Docker drops comment and blank lines inside a continuation and reads on.
        while parts[-1].endswith(escape) and i < len(lines):
            parts[-1] = parts[-1][:-1]
            while i < len(lines):
                nxt = lines[i].replace("\x00", "").strip()
                i += 1
                if nxt and not nxt.startswith("#"):
                    parts.append(nxt)
                    break
        joined = " ".join(p.strip() for p in parts if p.strip())
        name, _, value = joined.partition(" ")
        out.append((name.upper(), value.strip(), start + 1))
        for heredoc in _HEREDOC_RE.finditer(joined):
            # A BuildKit heredoc body runs to its terminator line; an old-style shell
            # heredoc inside `\\` continuations has none, and nothing is skipped.
            end = heredoc.group(2)
            for j in range(i, len(lines)):
                if lines[j].strip() == end:
                    i = j + 1
                    break
    return out


# -- Terraform --------------------------------------------------------------------------------

_TF_IMAGE_ATTRS = {"image", "image_uri", "container_image"}
_TF_NAME_IS_IMAGE = {"docker_image", "docker_registry_image"}
_JSON_IMAGE_RE = re.compile(r'"[Ii]mage"\s*:\s*"((?:[^"\\]|\\.)*)"')


def terraform_images(path: str, text: str, out: Extraction) -> None:
    """`image = "..."` in any block (containers, docker, ECS `jsonencode`/heredoc JSON)."""
    try:
        from hcl2.api import parses_to_tree
        from lark import Token, Tree
        from lark.exceptions import LarkError, UnexpectedInput
    except ImportError:  # pragma: no cover - python-hcl2 >= 8 is a dependency
        out.problem = "Terraform support needs python-hcl2 8 or later"
        return
    try:
        tree = parses_to_tree(text)
    except UnexpectedInput as exc:
        out.problem = "HCL syntax error: unexpected input"
        if isinstance(getattr(exc, "column", None), int) and exc.column > 0:
            out.problem += f" at column {exc.column}"
        line = getattr(exc, "line", None)
        out.problem_line = line if isinstance(line, int) and line > 0 else None
        return
    except (LarkError, RecursionError, ValueError) as exc:
        out.problem = f"HCL error: {exc}"
        return

    def token_text(node: Any) -> str:
        if isinstance(node, Token):
            return str(node)
        return "".join(token_text(c) for c in node.children)

    def string_value(node: Any) -> str | None:
        """The text of a `string` node as written (interpolations kept as `${...}`)."""
        if not isinstance(node, Tree) or node.data != "string":
            return None
        parts: list[str] = []
        for child in node.children:
            if isinstance(child, Token):
                continue  # the quotes
            for piece in child.children:
                if isinstance(piece, Token):
                    parts.append(str(piece))
                else:
                    inner = token_text(piece)
                    parts.append(inner)
        return "".join(parts)

    def first_line(node: Any) -> int | None:
        for tok in (
            node.scan_values(lambda v: isinstance(v, Token)) if isinstance(node, Tree) else [node]
        ):
            return getattr(tok, "line", None)
        return None

    def expr_of(node: Any) -> Any:
        while isinstance(node, Tree) and node.data == "expr_term" and len(node.children) == 1:
            node = node.children[0]
        return node

    variables: dict[str, str] = {}
    for block in tree.find_data("block"):
        labels = [string_value(c) for c in block.children[1:] if isinstance(c, Tree)]
        if token_text(block.children[0]) == "variable" and labels and labels[0]:
            for attr in _tf_attributes(block):
                if token_text(attr.children[0]) == "default":
                    default = string_value(expr_of(attr.children[-1]))
                    if default is not None and "${" not in default:
                        variables[labels[0]] = default

    def resolve(text: str) -> str:
        return re.sub(
            r"\$\{\s*var\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}",
            lambda m: variables.get(m.group(1), m.group(0)),
            text,
        )

    def emit_expr(expr: Any, line: int | None) -> None:
        expr = expr_of(expr)
        written = string_value(expr)
        if written is None:
            if not isinstance(expr, Tree) or expr.data in ("object", "tuple", "function_call"):
                return  # walked for nested `image` keys below
            written = "${" + token_text(expr) + "}"
            value = resolve(written)
            written = token_text(expr)
        else:
            value = resolve(written)
        if not written.strip():
            return
        out.images.append(ImageRef(path, line, written, "terraform", has_template(value), value))

    def key_name(node: Any) -> str:
        if node.data == "attribute":
            return token_text(node.children[0])
        key = expr_of(node.children[0].children[0]) if node.children else None
        if isinstance(key, Tree) and key.data == "string":
            return string_value(key) or ""
        return token_text(key) if key is not None else ""

    for block in tree.find_data("block"):
        block_type = token_text(block.children[0])
        labels = [string_value(c) for c in block.children[1:] if isinstance(c, Tree)]
        for attr in _tf_attributes(block):
            name = token_text(attr.children[0])
            if name in _TF_IMAGE_ATTRS or (
                name == "name"
                and block_type in ("resource", "data")
                and labels
                and labels[0] in _TF_NAME_IS_IMAGE
            ):
                emit_expr(attr.children[-1], first_line(attr))
    for elem in tree.find_data("object_elem"):
        if key_name(elem) in _TF_IMAGE_ATTRS:
            emit_expr(elem.children[-1], first_line(elem))
    for tok in tree.scan_values(lambda v: isinstance(v, Token) and v.type.startswith("HEREDOC")):
        body = str(tok)
        for match in _JSON_IMAGE_RE.finditer(body):
            try:
                written = json.loads(f'"{match.group(1)}"')
            except ValueError:
                continue
            line = (tok.line or 1) + body.count("\n", 0, match.start())
            value = resolve(written)
            out.images.append(
                ImageRef(path, line, written, "terraform", has_template(value), value)
            )


def _tf_attributes(block: Any) -> Iterator[Any]:
    """The attributes directly in a block's body (not those of nested blocks)."""
    from lark import Tree

    for child in block.children:
        if isinstance(child, Tree) and child.data == "body":
            for item in child.children:
                if isinstance(item, Tree) and item.data == "attribute":
                    yield item


_KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def kustomize_overrides(view: FileView, path: str) -> dict[str, Reference]:
    """What a kustomization in `path`'s directory or a parent turns image names into
    (`images: [{name, newName, newTag, digest}]`). `kubectl apply -k` replaces those manifest
    images, so the manifest's `image: app` is pinned or not by the kustomization."""
    found: dict[str, Reference] = {}
    parts = path.split("/")[:-1]
    for depth in range(len(parts), -1, -1):
        directory = "/".join(parts[:depth])
        for name in _KUSTOMIZATION_NAMES:
            candidate = f"{directory}/{name}" if directory else name
            parsed = view.yaml(candidate)
            if not parsed.ok:
                continue
            for doc in parsed.documents:
                for entry in _seq(_mapping(doc).get("images")):
                    fields = _mapping(entry)
                    image = _text(fields.get("name"))
                    tag, digest = _text(fields.get("newTag")), _text(fields.get("digest"))
                    if not image or (tag is None and digest is None) or image in found:
                        continue
                    target = _text(fields.get("newName")) or image
                    text = target + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
                    ref = parse_reference(text)
                    if ref is not None:
                        found[image] = ref
    return found
