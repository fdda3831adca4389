"""`dependency-major-upgrade`: a dependency whose major version rises between base and head."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bot.change import Finding
from bot.rules.base import RuleBase, RuleContext, StrictModel


class DependencyMajorUpgradeOptions(StrictModel):
    ignore: list[str] = Field(
        default_factory=list, description="Package names (globs) whose upgrades are routine."
    )


class DependencyMajorUpgradeRule(RuleBase):
    kind: Literal["dependency-major-upgrade"] = "dependency-major-upgrade"
    options: DependencyMajorUpgradeOptions = Field(default_factory=DependencyMajorUpgradeOptions)

    def check(self, ctx: RuleContext) -> list[Finding]:
        raise NotImplementedError
