"""`prod-only-change`: production changed and no other environment did.

The outage: a production-only config change pointed a module at the wrong Redis store.
A change that lands in staging first has been exercised somewhere; one that touches
production alone has not, so it needs a senior's eyes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bot.change import Finding
from bot.rules.base import WHOLE_FILE, RuleBase, RuleContext
from bot.rules.strict import StrictModel


class ProdOnlyChangeOptions(StrictModel):
    production: list[str] = Field(
        default_factory=lambda: ["production"],
        description="Names of the environments that count as production.",
    )


class ProdOnlyChangeRule(RuleBase):
    kind: Literal["prod-only-change"] = "prod-only-change"
    options: ProdOnlyChangeOptions = Field(default_factory=ProdOnlyChangeOptions)

    def check(self, ctx: RuleContext) -> list[Finding]:
        production = set(self.options.production)
        prod_files: list[str] = []
        other_envs: set[str] = set()
        for changed in ctx.view.changed_files():
            for path in {changed.path, changed.old_path or changed.path}:
                if not self.applies_to(path):
                    continue
                envs = set(ctx.environment_of(path, self))
                if envs & production:
                    prod_files.append(path)
                other_envs |= envs - production
        if not prod_files or other_envs:
            return []
        names = ", ".join(sorted(production & set(ctx.environments)) or sorted(production))
        at_head = {f.path for f in ctx.view.changed_files() if f.exists_at_head}
        return [
            self.finding(
                path,
                WHOLE_FILE if path in at_head else None,  # a deleted file has no lines
                path,
                f"changes {names} and no other environment: nothing else has run this change first",
            )
            for path in sorted(set(prod_files))
        ]
