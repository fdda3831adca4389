"""The forge-neutral vocabulary: a change, its changed files, findings and the verdict.

GitHub and GitLab events are turned into these at the edge (bot/forges), the CLI builds
them from git or a directory (bot/views), and rules only ever see these types. The view
that reads a change's files is `bot.views.base.FileView`. This module imports nothing
from bot: everything else builds on it.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any


class Action(enum.StrEnum):
    BLOCK = "block"
    REQUIRE_APPROVAL = "require-approval"
    WARN = "warn"


class Decision(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    APPROVAL_REQUIRED = "approval_required"


class FileStatus(enum.StrEnum):
    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"
    RENAMED = "renamed"


@dataclass(frozen=True)
class ChangedFile:
    path: str
    status: FileStatus
    old_path: str | None = None  # set for renames

    @property
    def exists_at_head(self) -> bool:
        return self.status is not FileStatus.DELETED


@dataclass(frozen=True)
class Change:
    """What a pull request, merge request, push, deploy or `changegate check` is about."""

    repo: str
    base: str | None
    head: str
    forge: str = "git"  # "github" | "gitlab" | "git"; the system `author` is a name on
    author: str | None = None  # forge login/username of who made the change
    description: str = ""
    title: str = ""
    number: int | None = None  # PR/MR number, if any
    url: str | None = None
    environment: str | None = None  # the target of a deploy
    base_ref: str | None = None  # the branch a pull/merge request targets
    # what approvals bind to besides the head: "<base ref>@<merge base>", set by the governor
    basis: str | None = None
    # when this head was first shown against `basis` after another base: approvals given
    # before then were given on another diff (None: the only base this head was shown on)
    basis_since: dt.datetime | None = None
    # What `if:` / `unless:` conditions read besides `base_ref`. None means the forge did
    # not say (a push, a deploy, a local `check`): a condition needing it fails closed.
    labels: tuple[str, ...] | None = None
    draft: bool | None = None


@dataclass(frozen=True)
class Finding:
    """One problem a rule found. Sorted by `sort_key` for deterministic output."""

    path: str
    line: int | None
    rule: str
    kind: str
    action: Action
    subject: str
    message: str
    column: int | None = None
    #: on a line the change did not touch: reported at warn, apart (bot/policy/preexisting.py)
    preexisting: bool = False

    def sort_key(self) -> tuple[str, int, str, int]:
        """(path, line, rule): a whole-file finding (no line) comes first in its file; the
        sort is stable, so findings on one line keep the order they were found in."""
        return (self.path, self.line or 0, self.rule, self.column or 0)

    def __lt__(self, other: Finding) -> bool:
        return self.sort_key() < other.sort_key()

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "kind": self.kind,
            "action": str(self.action),
            "path": self.path,
            "line": self.line,
            "subject": self.subject,
            "message": self.message,
            "preexisting": self.preexisting,
        }


@dataclass(frozen=True)
class Approval:
    """An approval given by one person on one system, bound to one head commit."""

    system: str  # "github" | "gitlab" | "slack"
    user: str  # login, username or Slack user id
    sha: str
    via: str = ""  # e.g. "review", "slack", "mr-approval"
    at: dt.datetime | None = None  # when it was given (naive UTC), where the system says
    #: the paths it vouches for, None for the whole change: an approval carried over from
    #: a pull request in a merge queue covers only what that request brought
    #: (bot/policy/carryover.py; "" stands for the change as a whole)
    covers: frozenset[str] | None = None


@dataclass(frozen=True)
class ApprovalStatus:
    rule: str
    group: str
    required: int
    granted: int
    approvers: tuple[str, ...] = ()  # who counted
    ignored: tuple[tuple[str, str], ...] = ()  # (who, why it did not count)
    # who may still approve on the change's forge (logins, @org/team slugs), for the summary
    eligible: tuple[str, ...] = ()

    @property
    def satisfied(self) -> bool:
        return self.granted >= self.required

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "group": self.group,
            "required": self.required,
            "granted": self.granted,
        }


@dataclass(frozen=True)
class ConditionOutcome:
    """How a rule's `if:` / `unless:` came out: whether the rule ran, and why."""

    rule: str
    applies: bool
    #: one line per predicate: "if target_branch ['main']: held (main)"
    checks: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "applies": self.applies, "checks": list(self.checks)}


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    findings: tuple[Finding, ...]
    approvals: tuple[ApprovalStatus, ...] = ()
    base: str | None = None
    head: str | None = None
    conditions: tuple[ConditionOutcome, ...] = ()

    @property
    def missing_approvals(self) -> tuple[ApprovalStatus, ...]:
        return tuple(a for a in self.approvals if not a.satisfied)

    def as_dict(self, *, with_range: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"decision": str(self.decision)}
        if with_range:
            out["base"] = self.base
            out["head"] = self.head
        out["findings"] = [f.as_dict() for f in self.findings]
        out["approvals"] = [a.as_dict() for a in self.approvals]
        if self.conditions:
            out["conditions"] = [c.as_dict() for c in self.conditions]
        return out
