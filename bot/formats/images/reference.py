"""The OCI image reference grammar, and the placeholders that make a reference a template.

`parse_reference()` reads `[registry[:port]/]path[:tag][@digest]` by the grammar of
github.com/distribution/reference (the one Docker, containerd and Kubernetes share),
including its rule for telling a registry from the first path component. `has_template()`
and `substitute()` are what every format reader uses on the text it finds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

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


def join_reference(name: str, tag: str | None, digest: str | None) -> str:
    """`name[:tag][@digest]` from fields written apart (kustomize, Helm values)."""
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


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
