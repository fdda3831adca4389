"""What a forge's parse hands the orchestrators: `Work`, typed end to end.

A forge reads a payload (and asks its API for what the payload lacks) and says what is
to be done: evaluate a change, gate a deployment, or ignore the delivery with a reason.
Everything an orchestrator needs beyond the `Change` itself is a typed field here: the
merged requests whose approvals carry over to a landed merge, and the deployment a gate
answers later.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.change import Change


class DeployKind(StrEnum):
    """How a forge waits for (or merely reports) a deployment."""

    PROTECTION_RULE = "protection-rule"  # GitHub: a workflow run waits on our protection rule
    APPROVAL = "approval"  # GitLab Premium: a `blocked` deployment waits for an approval
    MANUAL_JOB = "manual-job"  # GitLab: manual deploy jobs, played once approved
    STARTED = "deployment"  # GitLab: a deployment created or running: nothing waits on us


class DeploymentGone(Exception):
    """The forge no longer waits for this answer (the run or job was answered, timed out or
    cancelled): retrying cannot change that."""

    def __init__(self, status: int, detail: object) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status


#: answers the forge refuses because nothing waits any more (GitHub 404/422 on an answered
#: or timed-out run; GitLab 400 "Unplayable Job", 404, 409)
DEPLOYMENT_GONE_STATUSES = frozenset({400, 404, 409, 422})


@dataclass(frozen=True)
class DeployTarget:
    """What it takes to answer one waiting deployment: given to `Forge.answer_deployment`,
    and kept as JSON on the deploy request (`details["waiting"]`) until it is decided."""

    kind: DeployKind
    run_id: int | None = None  # GitHub: the workflow run
    deployment_id: int | None = None  # GitLab: the deployment
    job_ids: tuple[int, ...] = ()  # GitLab: the jobs that deploy (played for a manual-job)
    pipeline_id: int | None = None  # GitLab: the pipeline of the manual jobs

    def to_json(self) -> dict[str, Any]:
        """The stored form: only what answering needs, in the shape stored since the first
        deploy gates (so a stored entry compares equal to the one a redelivery builds)."""
        if self.kind is DeployKind.PROTECTION_RULE:
            return {"kind": self.kind.value, "run_id": self.run_id}
        if self.kind is DeployKind.APPROVAL:
            return {"kind": self.kind.value, "deployment_id": self.deployment_id}
        return {"kind": self.kind.value, "job_ids": list(self.job_ids),
                "pipeline_id": self.pipeline_id}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeployTarget:
        """Read a stored entry back (see `to_json`)."""
        kind = DeployKind(str(data.get("kind")))
        return cls(
            kind,
            run_id=_int_or_none(data.get("run_id")),
            deployment_id=_int_or_none(data.get("deployment_id")),
            job_ids=tuple(int(job) for job in data.get("job_ids") or ()),
            pipeline_id=_int_or_none(data.get("pipeline_id")),
        )


@dataclass(frozen=True)
class Deployment:
    """A deployment that asks changegate (or, on GitLab, one that started without asking)."""

    environment: str
    target: DeployTarget
    #: (system, login) of everyone behind it: creator, workflow actors, authors of the
    #: deployed commit's requests. None of them may approve it.
    initiators: tuple[tuple[str, str], ...] = ()
    status: str = ""  # GitLab's deployment status (created, blocked, running)
    #: why the people behind it could not be read: then nobody's approval can be trusted
    unreadable: str = ""


@dataclass(frozen=True)
class Landed:
    """A pull/merge request merged as the pushed commit, holding the very files of its
    head: its approvals on that head carry over to the merge. Or one queued in a merge
    queue's group: its approvals carry over to the files in `covers` only (the group's
    files holding what it brought, bot/policy/carryover.py)."""

    subject: str  # e.g. "github:acme/app#12"
    number: int
    head: str
    covers: frozenset[str] | None = None  # None: the whole change


@dataclass(frozen=True)
class Work:
    """What a delivery asks for, once parsed by its forge.

    `subject` serializes work: two deliveries with the same subject (one pull request,
    one branch) are never processed at the same time.
    """

    action: str  # "evaluate" | "ignore" | "deployment-gate"
    subject: str = ""  # e.g. "github:acme/app#12"
    change: Change | None = None
    reason: str = ""  # why ignored, for logs and the inbox record
    #: the forge's event ("pull_request", "Merge Request Hook"), or `RECHECK` when
    #: changegate itself asks again (after a Slack decision, a recheck command)
    event: str = ""
    payload_head: str | None = None  # the head the payload named, when no longer current
    landed: tuple[Landed, ...] = ()  # for a push that is a merge: the requests it lands
    deployment: Deployment | None = None  # for "deployment-gate"


#: `Work.event` of a re-evaluation changegate asked for itself
RECHECK = "recheck"


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)
