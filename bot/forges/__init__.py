"""The Forge seam: what the worker and governor need from GitHub or GitLab, nothing more.

A forge turns a stored delivery into a forge-neutral `Change` (or says why it is ignored),
gives a `FileView` of that change read through its API, and publishes the verdict. Rules
never see a forge; forges never see a rule. A forge that is not configured is absent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import orjson

from bot.change import Approval, Change, Verdict
from bot.forges.work import (
    RECHECK,
    DeployKind,
    Deployment,
    DeploymentGone,
    DeployTarget,
    Landed,
    Work,
)
from bot.policy.approvers import Directory
from bot.views.base import FileView

__all__ = [
    "RECHECK",
    "Delivery",
    "DeployKind",
    "DeployTarget",
    "DeploymentGone",
    "Deployment",
    "Forge",
    "Landed",
    "Work",
]


@dataclass(frozen=True)
class Delivery:
    """A webhook delivery as stored in the inbox."""

    id: str  # the forge's delivery id (X-GitHub-Delivery, Idempotency-Key, ...)
    forge: str  # "github" | "gitlab" | "slack"
    event: str  # X-GitHub-Event / X-Gitlab-Event / slack payload type
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @cached_property
    def payload(self) -> dict[str, Any] | None:
        """The body as a JSON object, None if it is not one. Parsed once per delivery: the
        ack path validates it and reads the subject from it, the worker reads it again."""
        try:
            payload = orjson.loads(self.body)
        except orjson.JSONDecodeError:  # orjson refuses a few things json reads: huge ints,
            # lone surrogates
            try:
                payload = json.loads(self.body)
            except (ValueError, UnicodeDecodeError, RecursionError):
                return None
        return payload if isinstance(payload, dict) else None


class Forge(Protocol):
    """Everything the orchestrators ask of a forge; mypy checks each forge against it."""

    name: str

    def subject_of(self, delivery: Delivery) -> str:
        """The serialization key of a delivery, read cheaply from its payload."""
        ...

    def parse(self, delivery: Delivery) -> Work:
        """Turn a payload into work, asking the API for what the payload lacks (current head)."""
        ...

    def change_work(self, repo: str, number: int) -> Work:
        """The pull/merge request as it is now, for a re-evaluation nobody's webhook asked
        for (after a Slack decision, or `policy simulate`)."""
        ...

    def view(self, change: Change) -> FileView:
        """The change's files, read lazily through the API and cached by blob id."""
        ...

    def repository_policy(self, change: Change) -> str | None:
        """`.changegate.yml` from the repository's default branch (never from the change)."""
        ...

    def approvals(self, change: Change) -> list[Approval]:
        """Approvals given on the forge itself (approving reviews, MR approvals)."""
        ...

    def directory(self, entries: list[str]) -> Directory:
        """Members of the team slugs named in the policy's groups."""
        ...

    def start(self, change: Change, details_url: str) -> None:
        """Tell the forge a check is running (check run in_progress / status running)."""
        ...

    def publish(
        self, change: Change, verdict: Verdict, details_url: str, *, note: str | None = None
    ) -> None:
        """Post the verdict: check run + annotations, or commit status + MR note. `note`
        says why the decision differs from the findings (a Slack rejection, a break-glass);
        it is passed only when there is one."""
        ...

    def answer_deployment(
        self, repo: str, environment: str, target: DeployTarget, approved: bool, comment: str
    ) -> tuple[int, ...]:
        """Answer a deployment waiting on changegate: approve or reject a GitHub protection
        rule or a GitLab blocked deployment, play GitLab manual jobs once approved (a
        rejected one stays unplayed). Returns the ids of the jobs it started, for the
        audit log. A target of another forge's kind is a bug: ValueError. A deployment that
        no longer waits raises DeploymentGone."""
        ...
