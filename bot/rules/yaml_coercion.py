"""`yaml-version-coercion`: unquoted versions that YAML reads as something else (`1.20` -> 1.2)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bot.change import Finding
from bot.rules.base import RuleBase, RuleContext, StrictModel


class YamlVersionCoercionOptions(StrictModel):
    extra_keys: list[str] = Field(
        default_factory=list,
        description="More key names (exact, case-insensitive) to treat as version-like.",
    )


class YamlVersionCoercionRule(RuleBase):
    kind: Literal["yaml-version-coercion"] = "yaml-version-coercion"
    options: YamlVersionCoercionOptions = Field(default_factory=YamlVersionCoercionOptions)

    reads_contents = True

    def check(self, ctx: RuleContext) -> list[Finding]:
        raise NotImplementedError
