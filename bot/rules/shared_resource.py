"""`shared-resource`: one datastore instance referenced by two environments."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bot.change import Finding
from bot.rules.base import RuleBase, RuleContext, StrictModel


class SharedResourceOptions(StrictModel):
    ignore_hosts: list[str] = Field(
        default_factory=lambda: ["localhost", "127.0.0.1", "::1", "0.0.0.0"],
        description="Hosts that are never one shared instance (each environment has its own).",
    )


class SharedResourceRule(RuleBase):
    kind: Literal["shared-resource"] = "shared-resource"
    options: SharedResourceOptions = Field(default_factory=SharedResourceOptions)

    reads_contents = True

    def check(self, ctx: RuleContext) -> list[Finding]:
        raise NotImplementedError
