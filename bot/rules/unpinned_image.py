"""`unpinned-image`: image references that can change under you (`:latest`, no tag, ...).

The outage behind it: a recreated service fell back to the `latest` tag and pulled code
nobody had released. What counts as pinned:

- a digest (`name@sha256:…`, also `name:tag@sha256:…`) always pins;
- otherwise a tag that is not in `mutable_tags` pins, unless `require_digest`;
- a GitHub Actions `uses:` pins only with a full 40-hex commit SHA (`check_actions`),
  unless the action matches a `trusted_actions` glob.

References the file cannot resolve (`${IMAGE}`, `{{ .Values.image }}`, `!Sub …`) are judged
on what is visible: `repo/app:${TAG}` is pinned by whoever sets TAG and passes;
`${REGISTRY}/nginx:latest` names the tag `latest` whatever REGISTRY is, and is judged at the
rule's action like `nginx:latest`; `${REGISTRY}/nginx` warns (the rest is not known); a
reference that is a placeholder as a whole (`$IMAGE`) could be anything, and warns so that
a human looks.
"""

from __future__ import annotations

import fnmatch
import re
from functools import cached_property
from typing import Literal

from pydantic import Field

from bot.change import Action, Finding
from bot.formats.images import (
    ActionRef,
    FileKind,
    ImageRef,
    Reference,
    extract,
    file_kind,
    kustomize_overrides,
    mask_templates,
    parse_reference,
)
from bot.rules.base import RuleBase, RuleContext
from bot.rules.strict import StrictModel

#: Tags that name a moving target rather than a release (docs/reading-files.md lists them).
#: A listed tag with a variant suffix (`lts-alpine`, `latest-slim`) moves with it.
DEFAULT_MUTABLE_TAGS = [
    "latest",
    "stable",
    "lts",
    "current",
    "edge",
    "nightly",
    "main",
    "master",
    "trunk",
    "head",
    "dev",
    "develop",
    "development",
    "canary",
    "next",
    "beta",
    "alpha",
    "rc",
    "preview",
    "testing",
    "unstable",
    "experimental",
    "snapshot",
    "rolling",
    "mainline",
]

_FULL_SHA_RE = re.compile(r"[0-9a-fA-F]{40}")
_HOLE = "\x00"  # what a placeholder becomes in a masked reference


class UnpinnedImageOptions(StrictModel):
    mutable_tags: list[str] = Field(
        default_factory=lambda: list(DEFAULT_MUTABLE_TAGS),
        description="Tags that move (replaces the default list; see docs/reading-files.md).",
    )
    extra_mutable_tags: list[str] = Field(
        default_factory=list,
        description="More tags that move, added to `mutable_tags` (e.g. `prod`, `qa`).",
    )
    require_digest: bool = False
    check_actions: bool = Field(
        default=True,
        description="GitHub Actions `uses: owner/repo@ref` must pin a full 40-hex commit SHA.",
    )
    trusted_actions: list[str] = Field(
        default_factory=list,
        description="Globs of actions that may be pinned by tag (e.g. `actions/*`).",
    )


class UnpinnedImageRule(RuleBase):
    kind: Literal["unpinned-image"] = "unpinned-image"
    options: UnpinnedImageOptions = Field(default_factory=UnpinnedImageOptions)

    reads_contents = True
    judges = "lines"

    def reads(self, ctx: RuleContext) -> list[str]:
        return [f.path for f in self.changed_files(ctx) if file_kind(f.path) is not None]

    def check(self, ctx: RuleContext) -> list[Finding]:
        findings: list[Finding] = []
        for changed in self.changed_files(ctx):
            found = extract(ctx.view, changed.path)
            if found.kind is None:
                continue
            if found.problem is not None:
                findings.append(self.unreadable(changed.path, found.problem, found.problem_line))
            elif found.kind is not FileKind.JSON:
                findings.extend(self.read_notes(ctx, changed.path))
            overrides: dict[str, Reference] | None = None
            for image in found.images:
                if image.source == "kubernetes" and image.reference is not None:
                    if overrides is None:
                        overrides = kustomize_overrides(ctx.view, changed.path)
                    override = overrides.get(image.reference.name)
                    if override is not None and self._pins(override):
                        continue  # `kubectl apply -k` replaces it with a pinned one
                finding = self._judge_image(image)
                if finding is not None:
                    findings.append(finding)
            if self.options.check_actions:
                for action in found.actions:
                    finding = self._judge_action(action)
                    if finding is not None:
                        findings.append(finding)
        return findings

    # -- images -------------------------------------------------------------------------

    def _pins(self, ref: Reference) -> bool:
        if ref.digest is not None:
            return True
        return (
            ref.tag is not None and not self._mutable(ref.tag) and not self.options.require_digest
        )

    @cached_property
    def _mutable_set(self) -> frozenset[str]:
        tags = [*self.options.mutable_tags, *self.options.extra_mutable_tags]
        return frozenset(t.lower() for t in tags)

    def _mutable(self, tag: str) -> bool:
        """A listed tag, or one with a variant suffix and no version (`lts-alpine`,
        `stable-bookworm-slim`); `main-3f2c1a9` or `dev-2024.1` name one build."""
        lowered = tag.lower()
        if lowered in self._mutable_set:
            return True
        first, dash, rest = lowered.partition("-")
        return bool(dash) and first in self._mutable_set and not any(c.isdigit() for c in rest)

    def _judge_image(self, image: ImageRef) -> Finding | None:
        if image.template:
            return self._judge_template(image)
        ref = image.reference
        if ref is None:
            if "\ufffd" in image.value:
                return self._image_finding(
                    image,
                    f"{_shown(image)} holds bytes that are not text (shown as U+FFFD), so the "
                    "image it names cannot be known; write it as plain UTF-8",
                )
            return None  # not a reference at all (e.g. a Helm flag named `image`)
        shown = _shown(image)
        if ref.digest is not None:
            return None
        if ref.tag is None:
            return self._image_finding(
                image,
                f"{shown} has no tag or digest, so it pulls whatever `:latest` is at the "
                "time; pin it to a version tag or a digest (`:<version>` or `@sha256:…`)",
            )
        if self._mutable(ref.tag):
            return self._image_finding(
                image,
                f"{shown} uses the mutable tag `{ref.tag}`; pin it to a version tag or a digest "
                "(`:<version>` or `@sha256:…`)",
            )
        if self.options.require_digest:
            return self._image_finding(
                image,
                f"{shown} has no digest, and this policy requires one; pin it by digest "
                f"(`{ref.name}:{ref.tag}@sha256:…`)",
            )
        return None

    def _judge_template(self, image: ImageRef) -> Finding | None:
        """Judge what a template shows: a warn, unless the visible tag alone is mutable."""
        masked = mask_templates(image.value, _HOLE)
        name_tag, at, digest = masked.partition("@")
        if at and (_HOLE in digest or _valid_digest(digest)):
            return None
        last = name_tag.rsplit("/", 1)[-1]
        why = f" ({image.note})" if image.note else ""
        shown = _shown(image)
        if ":" in last:
            tag = last.rsplit(":", 1)[1]
            if _HOLE not in tag and self._mutable(tag):
                # The tag is written out: it is `latest` whatever the path becomes, so this
                # is as unpinned as a plain `nginx:latest` (the rule's own action).
                return self._image_finding(
                    image,
                    f"{shown} uses the mutable tag `{tag}`{why}; pin it to a version tag or a "
                    "digest",
                    exact=True,
                )
            if self.options.require_digest:
                return self._image_finding(
                    image,
                    f"{shown} has no digest, and this policy requires one{why}; pin it by digest",
                    template=True,
                )
            return None
        if _HOLE in last:
            return self._image_finding(
                image,
                f"{shown} is not defined in this file, so it cannot be checked{why}; make sure "
                "whatever sets it pins a version tag or a digest",
                template=True,
            )
        return self._image_finding(
            image,
            f"{shown} has no tag or digest{why}; pin it to a version tag or a digest",
            template=True,
        )

    def _image_finding(
        self, image: ImageRef, message: str, *, template: bool = False, exact: bool = False
    ) -> Finding:
        """At the rule's action, or a `warn` when a template hides what the finding is
        about (`exact`: the template hides nothing that matters)."""
        soften = not exact and (template or image.template)
        return self.finding(
            image.path, image.line, image.text, message, action=Action.WARN if soften else None
        )

    # -- actions ------------------------------------------------------------------------

    def _trusted(self, action: ActionRef) -> bool:
        name = action.name.lower()
        full = action.text.lower()
        return any(
            fnmatch.fnmatchcase(name, glob.lower()) or fnmatch.fnmatchcase(full, glob.lower())
            for glob in self.options.trusted_actions
        )

    def _judge_action(self, action: ActionRef) -> Finding | None:
        if action.template or self._trusted(action):
            return None
        if action.ref is None or not action.ref:
            message = (
                f"`{action.text}` names no version at all; pin it to a full 40-character "
                f"commit SHA (`{action.name}@<sha>`)"
            )
        elif _FULL_SHA_RE.fullmatch(action.ref):
            return None
        else:
            message = (
                f"`{action.text}` follows `{action.ref}`, which can be moved to other code; pin "
                f"it to the full 40-character commit SHA (`{action.name}@<sha>  # "
                f"{action.ref}`)"
            )
        return self.finding(action.path, action.line, action.text, message)


def _shown(image: ImageRef) -> str:
    """The reference as written, and what it resolves to when that differs."""
    if image.value != image.text:
        return f"`{image.text}` (= `{image.value}`)"
    return f"`{image.text}`"


def _valid_digest(digest: str) -> bool:
    return parse_reference(f"x@{digest}") is not None
