"""`migration-playbook`: a migration must link the playbook it is run by."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from bot.change import Finding
from bot.rules.base import WHOLE_FILE, RuleBase, RuleContext, StrictModel

DEFAULT_LINK_PATTERN = r"https://runbooks\.example\.com/\S+|docs/playbooks/\S+\.md"


class MigrationPlaybookOptions(StrictModel):
    link_pattern: str = Field(
        default=DEFAULT_LINK_PATTERN,
        description="Regex a playbook link in the description must match. A match that is "
        "not a URL is a repository path and must exist at the head revision.",
    )

    @field_validator("link_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"bad regex {value!r}: {exc}") from exc
        return value


class MigrationPlaybookRule(RuleBase):
    kind: Literal["migration-playbook"] = "migration-playbook"
    paths: list[str] = Field(
        default_factory=lambda: ["alembic/versions/**", "db/migrate/**", "**/migrations/**"]
    )
    options: MigrationPlaybookOptions = Field(default_factory=MigrationPlaybookOptions)

    def check(self, ctx: RuleContext) -> list[Finding]:
        migrations = sorted(f.path for f in self.changed_files(ctx))
        if not migrations:
            return []
        links = [m.group(0) for m in re.finditer(self.options.link_pattern, ctx.description)]
        links = [link.rstrip(").,;>]'\"") for link in links]
        missing_paths = []
        for link in links:
            if re.match(r"[a-z][a-z0-9+.-]*://", link, re.I):
                return []
            if ctx.view.exists(link.lstrip("/").removeprefix("./")):
                return []
            missing_paths.append(link)
        if missing_paths:
            problem = (
                f"the linked playbook {', '.join(missing_paths)} does not exist at the head "
                "revision"
            )
        else:
            problem = "the description links no playbook"
        return [
            self.finding(
                path,
                WHOLE_FILE,
                path,
                f"migration without a playbook: {problem}; link one matching "
                f"/{self.options.link_pattern}/ in the description",
            )
            for path in migrations
        ]
