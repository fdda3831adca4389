"""`paths`: files matching `paths` (and not `exclude`) need approval, block or warn.

The CODEOWNERS / policy-bot "changed files" rule: whoever owns `deploy/**` approves every
change to it. A rename or a deletion counts at both of its paths, so moving a file out of
`deploy/` is as governed as editing it there.
"""

from __future__ import annotations

from functools import cached_property
from typing import Literal

import pathspec
from pydantic import Field, field_validator

from bot.change import Finding
from bot.rules.base import WHOLE_FILE, RuleBase, RuleContext, check_globs, compile_globs


class PathsRule(RuleBase):
    kind: Literal["paths"] = "paths"
    exclude: list[str] = Field(
        default_factory=list, description="gitignore-style globs taken out of `paths`."
    )

    @field_validator("exclude")
    @classmethod
    def _valid_excludes(cls, value: list[str]) -> list[str]:
        return check_globs(value)

    @cached_property
    def exclude_spec(self) -> pathspec.PathSpec:
        return compile_globs(self.exclude)

    def governs(self, path: str) -> bool:
        return self.applies_to(path) and not self.exclude_spec.match_file(path)

    def check(self, ctx: RuleContext) -> list[Finding]:
        findings = []
        for changed in ctx.view.changed_files():
            for path in dict.fromkeys([changed.path, changed.old_path or changed.path]):
                if not self.governs(path):
                    continue
                here = path == changed.path and changed.exists_at_head
                verb = "deleted" if not changed.exists_at_head else "changed"
                if path != changed.path:
                    verb = f"renamed to {changed.path}"
                findings.append(
                    self.finding(
                        path,
                        WHOLE_FILE if here else None,  # a deleted or moved-away path has no lines
                        path,
                        f"{path} {verb}: governed by rule {self.id} "
                        f"(paths {', '.join(self.paths)})",
                    )
                )
        return findings
