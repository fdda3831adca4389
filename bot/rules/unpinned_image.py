"""`unpinned-image`: image references that can change under you (`:latest`, no tag, ...)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bot.change import Finding
from bot.rules.base import RuleBase, RuleContext, StrictModel

DEFAULT_MUTABLE_TAGS = ["latest", "stable", "main", "master", "dev", "edge", "nightly"]


class UnpinnedImageOptions(StrictModel):
    mutable_tags: list[str] = Field(default_factory=lambda: list(DEFAULT_MUTABLE_TAGS))
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

    def check(self, ctx: RuleContext) -> list[Finding]:
        raise NotImplementedError
