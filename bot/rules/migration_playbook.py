"""`migration-playbook`: a migration must link the playbook it is run by."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from bot.change import Finding
from bot.rules.base import WHOLE_FILE, RuleBase, RuleContext
from bot.rules.linear_regex import MAX_SEARCHED, compile_regex, find_all
from bot.rules.strict import StrictModel

DEFAULT_LINK_PATTERN = r"https://runbooks\.example\.com/\S+|docs/playbooks/\S+\.md"
#: Repository paths looked up per description: a description cannot make the bot fetch
#: hundreds of paths.
MAX_LOOKUPS = 10

_URL = re.compile(r"[a-z][a-z0-9+.-]*://", re.I)


class MigrationPlaybookOptions(StrictModel):
    link_pattern: str = Field(
        default=DEFAULT_LINK_PATTERN,
        description="Regex (RE2 syntax) a playbook link in the description must match. A "
        "match that is not a URL is a plain repository path from the repository root and "
        "must exist at the head revision.",
    )

    @field_validator("link_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        compile_regex(value)
        return value


def refused_path(link: str) -> str | None:
    """Why a repository link is not looked up, or None for a plain path from the root.

    The path is fetched through the forge's API: `..` segments or percent-escapes could
    make that request leave the repository (`GET /orgs/acme/teams/x.md`)."""
    if link.startswith(("/", "\\")):
        return "it is an absolute path"
    if "%" in link:
        return "it is percent-encoded"
    if "\\" in link:
        return "it contains a backslash"
    if "?" in link or "#" in link:
        return "it has a query or fragment (`?`, `#`)"
    if any(part in ("..", ".") for part in link.split("/")):
        return "it has `..` or `.` segments"
    return None


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
        problem = self._problem(ctx)
        if problem is None:
            return []
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

    def _problem(self, ctx: RuleContext) -> str | None:
        """None when the description links a playbook, else what is wrong."""
        description = ctx.description
        found = find_all(self.options.link_pattern, description)
        links = [link.rstrip(").,;>]'\"") for link in found]
        missing: list[str] = []
        refused: list[str] = []
        unchecked = 0
        for link in links:
            if _URL.match(link):
                return None
            path = link.removeprefix("./")
            why = refused_path(path)
            if why is not None:
                refused.append(f"{link} ({why}; only plain paths from the repository root)")
            elif len(missing) == MAX_LOOKUPS:
                unchecked += 1
            elif ctx.view.exists(path):
                return None
            else:
                missing.append(link)
        parts = []
        if missing:
            parts.append(
                f"the linked playbook {', '.join(missing)} does not exist at the head revision"
            )
        if unchecked:
            parts.append(f"{unchecked} more links were not looked up (at most {MAX_LOOKUPS})")
        if refused:
            parts.append(f"refused: {', '.join(refused)}")
        if parts:
            return "; ".join(parts)
        if len(description) > MAX_SEARCHED:
            return (
                f"the description links no playbook in its first {MAX_SEARCHED:,} characters "
                f"(it has {len(description):,}; nothing beyond that is searched)"
            )
        return "the description links no playbook"
