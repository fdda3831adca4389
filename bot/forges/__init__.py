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

from bot.change import Approval, Change, FileView, Verdict
from bot.policy.approvers import Directory


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


@dataclass(frozen=True)
class Work:
    """What a delivery asks for, once parsed by its forge.

    `subject` serializes work: two deliveries with the same subject (one pull request,
    one branch) are never processed at the same time.
    """

    action: str  # "evaluate" | "ignore" | forge-specific actions such as "deployment-gate"
    subject: str = ""  # e.g. "github:acme/app#12"
    change: Change | None = None
    reason: str = ""  # why ignored, for logs and the inbox record
    extra: dict[str, Any] = field(default_factory=dict)


class Forge(Protocol):
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
