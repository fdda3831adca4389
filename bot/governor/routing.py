"""How governed work is named and answered: inbox subjects, and what a handler returns.

A delivery's inbox subject serializes it: two deliveries with one subject (one pull
request, one deploy gate) are never processed at the same time. Slack clicks and the
re-evaluations the governor asks of itself are stored under the subject of what they
decide, so they queue behind that change's or that gate's own deliveries.
"""

from __future__ import annotations

from bot.approvals.models import ApprovalRequestRecord, RequestKind

#: (inbox state, note): what a source or action handler tells the worker to record
Result = tuple[str, str | None]

#: inbox `forge` of the re-evaluations the server asks of itself
RECHECK_SOURCE = "changegate"


def forge_of(subject: str) -> str:
    """`github:acme/app#12` -> `github`."""
    return subject.split(":", 1)[0]


def inbox_subject_of(request: ApprovalRequestRecord) -> str:
    """The inbox subject a delivery about `request` is serialized under: the pull
    request's own, or the deploy gate's (`github:acme/app@deploy:production`, which is
    what the forges name deploy events)."""
    if request.kind == RequestKind.DEPLOY or (
        request.kind == RequestKind.RETRO_REVIEW and request.environment and not request.number
    ):
        return f"{forge_of(request.subject)}:{request.repo}@deploy:{request.environment}"
    return request.subject
