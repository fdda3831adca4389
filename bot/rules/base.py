"""What every rule kind shares: its YAML fields, the context it runs in, and findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar, Literal

import pathspec
from pydantic import Field, PrivateAttr, field_validator

from bot.change import Action, ChangedFile, Finding
from bot.rules.conditions import Condition
from bot.rules.linear_regex import compile_globs, unclosed_bracket
from bot.rules.strict import StrictModel
from bot.views.base import FileView


def check_globs(patterns: list[str]) -> list[str]:
    """Each glob compiles, and has no `[` left open (git would match nothing with it)."""
    for pattern in patterns:
        if not pattern.strip():
            raise ValueError("an empty glob matches nothing")
        at = unclosed_bracket(pattern)
        if at is not None:
            raise ValueError(
                f"bad glob `{pattern}`: the `[` at character {at + 1} is never closed "
                "(write `\\[` for a literal bracket)"
            )
        try:
            compile_globs([pattern])
        except Exception as exc:  # pathspec raises several types
            raise ValueError(f"bad glob `{pattern}`: {exc}") from exc
    return patterns


#: The line of a finding about a whole file (it changed, it is a migration): SPEC gives
#: every finding on a file with lines a line, and a forge annotation needs one.
WHOLE_FILE = 1
#: How the finding for a file that could not be read begins (`RuleBase.unreadable`).
UNREADABLE = "could not check: "
#: How the note on a file read with a caveat begins (`RuleBase.read_notes`).
READ_NOTE = "read with a caveat: "


@dataclass
class RuleContext:
    """Everything a rule may look at. No forge, no database, no network."""

    view: FileView
    environments: dict[str, pathspec.PathSpec] = field(default_factory=dict)
    #: added by a repository's policy: they count only for paths no other environment matches
    repository_environments: frozenset[str] = frozenset()

    @property
    def description(self) -> str:
        return self.view.change.description

    def environment_of(self, path: str, rule: RuleBase) -> list[str]:
        """Names of the environments whose paths match `path`, as `rule` may see them.

        An admin rule sees the admin's environments only: a repository adding `sandbox`
        must not make a production-only change look exercised elsewhere. A repository's
        own rule also sees the repository's environments, for paths the admin's leave
        unclassified (a path the admin classifies is theirs alone)."""
        return self.environments_seen(path, from_repository=rule.from_repository)

    def environments_seen(self, path: str, *, from_repository: bool) -> list[str]:
        """`environment_of` for an admin rule (False) or a repository's own (True)."""
        found = [name for name, spec in self.environments.items() if spec.match_file(path)]
        admins = [name for name in found if name not in self.repository_environments]
        if not from_repository:
            return admins
        return admins or found


class RuleBase(StrictModel):
    id: str = Field(min_length=1, description="Unique; shown in every finding.")
    action: Action = Field(description="block | require-approval | warn")
    paths: list[str] = Field(
        default_factory=lambda: ["**"],
        description="gitignore-style globs of the files the rule looks at; default all files.",
    )
    approvers: str | None = Field(
        default=None, description="Group whose members may approve (require-approval)."
    )
    min_approvals: int = Field(default=1, ge=1, description="Distinct approvers needed.")
    slack_channel: str | None = Field(
        default=None, description="Slack channel id for approval requests of this rule."
    )
    scope: Literal["change", "file"] = Field(
        default="change",
        description="change: findings on lines the change did not touch are reported as "
        "already present, at warn; file: every finding in a changed file at the rule's action.",
    )
    if_: Condition | None = Field(
        default=None,
        alias="if",
        description="The rule runs only when every predicate here holds.",
    )
    unless: Condition | None = Field(
        default=None, description="The rule does not run when every predicate here holds."
    )

    #: True for kinds that judge file contents alone (they also run under `scan`).
    reads_contents: ClassVar[bool] = False
    #: What a finding of the kind is about (bot/policy/preexisting.py): the `change` as a
    #: whole, its `lines`, or `references` that together make one problem.
    judges: ClassVar[Literal["change", "lines", "references"]] = "change"

    #: set by `bot.policy.merge` on rules only a repository's `.changegate.yml` wrote
    _from_repository: bool = PrivateAttr(default=False)

    @property
    def from_repository(self) -> bool:
        """True for a rule the repository added (not an admin rule it tightened)."""
        return self._from_repository

    @field_validator("paths")
    @classmethod
    def _valid_globs(cls, value: list[str]) -> list[str]:
        return check_globs(value)

    @cached_property
    def path_spec(self) -> pathspec.PathSpec:
        return compile_globs(self.paths)

    def applies_to(self, path: str) -> bool:
        return self.path_spec.match_file(path)

    def changed_files(self, ctx: RuleContext) -> list[ChangedFile]:
        """Changed files under the rule's `paths` that exist at head."""
        return [f for f in ctx.view.changed_files() if f.exists_at_head and self.applies_to(f.path)]

    def reads(self, ctx: RuleContext) -> list[str]:
        """Changed files whose head contents `check` is sure to read: the view fetches them
        together before the rules run. Default: none (each read happens as `check` asks)."""
        return []

    def check(self, ctx: RuleContext) -> list[Finding]:  # pragma: no cover - abstract
        raise NotImplementedError

    def finding(
        self,
        path: str,
        line: int | None,
        subject: str,
        message: str,
        *,
        action: Action | None = None,
        column: int | None = None,
    ) -> Finding:
        """A finding of this rule; `action` only ever softens the rule's own (to warn)."""
        return Finding(
            path=path,
            line=line,
            rule=self.id,
            kind=self.kind_name(),
            action=action or self.action,
            subject=subject,
            message=message,
            column=column,
        )

    def unreadable(self, path: str, reason: str, line: int | None = None) -> Finding:
        """A file this rule should judge but could not read: at the rule's own action (fail
        closed: a `block` rule blocks), saying why. The rest of the change is still checked."""
        return self.finding(path, line, path, UNREADABLE + reason)

    def read_notes(self, ctx: RuleContext, path: str, rev: str = "head") -> list[Finding]:
        """The `warn` note on a file that was read and judged, but not as plainly as written
        (bad bytes replaced, a large file): one per file after `evaluate` merges them."""
        note = ctx.view.read_note(path, rev)
        if note is None:
            return []
        return [self.finding(path, None, path, READ_NOTE + note, action=Action.WARN)]

    def judged_as(self) -> Literal["change", "lines", "references"]:
        """What this rule's findings are about (`judges`; a kind may decide per rule)."""
        return self.judges

    @classmethod
    def kind_name(cls) -> str:
        kind_field = cls.model_fields["kind"]
        return str(kind_field.default)
