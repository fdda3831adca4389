"""The verdict page, `/v/{token}`: the check run's details URL.

It answers "why is my change blocked, and who can unblock it": each finding with its fix
and a link to the line, each approval still missing with who may give it, and the
subject's timeline (evaluations, requests, decisions, refusals). It is reachable only
through its unguessable token; an admin who is signed in sees the admin menu on it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bot import store
from bot.pages.advice import ACTION_NOTES, DECISION_LABELS, FIXES, audit_sentence, summary
from bot.pages.auth import AdminAuth
from bot.pages.links import ForgeLinks
from bot.pages.queries import (
    PolicySource,
    SubjectHistory,
    iso,
    loaded_policy,
    subject_history,
)
from bot.pages.templates import Renderer, short
from bot.policy.schema import Policy
from bot.settings import Settings

log = logging.getLogger(__name__)

SYSTEMS = ("github", "gitlab", "slack")
MAX_TOKEN = 64


class VerdictPage:
    """The verdict page of one app: where verdicts are stored and how to link to forges."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        policy: PolicySource,
        renderer: Renderer,
        auth: AdminAuth,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.policy_source = policy
        self.renderer = renderer
        self.auth = auth

    def routes(self) -> list[BaseRoute]:
        return [Route("/v/{token}", self.verdict, methods=["GET"], name="verdict")]

    async def verdict(self, request: Request) -> Response:
        token = request.path_params["token"]
        try:
            view = await run_in_threadpool(self.verdict_view, token)
        except SQLAlchemyError as exc:
            log.warning("verdict page: database unavailable: %s", exc)
            return self.renderer.error(
                request, 503, "The database is unavailable; try again shortly."
            )
        if view is None:
            return self.renderer.error(request, 404, "No such verdict. The link may be mistyped.")
        session = self.auth.session_of(request) if self.auth.enabled else None
        context = self.auth.page_context(session)
        return self.renderer.render(request, "verdict.html", view, context=context)

    def verdict_view(self, token: str) -> dict[str, Any] | None:
        """The page's view, or None when no verdict has this token."""
        if not token or len(token) > MAX_TOKEN:
            return None
        row = store.evaluation_by_token(self.engine, token)
        if row is None:
            return None
        links = ForgeLinks.of(self.settings, row["forge"])
        stored = row["verdict"] if isinstance(row["verdict"], dict) else {}
        repo, head = row["repo"], row["head_sha"]
        history = subject_history(self.engine, row["subject"])
        events = timeline(history, row["token"])
        raw_change = stored.get("change")
        change: dict[str, Any] = raw_change if isinstance(raw_change, dict) else {}
        title = str(change.get("title") or next((t for t in history.titles if t), ""))
        findings = [finding(f, links, repo, head) for f in stored.get("findings", [])]
        policy = loaded_policy(self.policy_source)
        approvals = [approval(a, policy) for a in stored.get("approvals", [])]
        newest = next((e for e in reversed(events) if e["kind"] == "evaluation"), None)
        return {
            "repo": repo,
            "forge": row["forge"],
            "subject": row["subject"],
            "number": row["number"],
            "title": title,
            "author": change.get("author"),
            "change_url": change.get("url") or links.change(repo, row["number"]),
            "head": head,
            "head_url": links.commit(repo, head),
            "base": row["base_sha"],
            "decision": row["decision"],
            "decision_label": DECISION_LABELS.get(row["decision"], row["decision"]),
            "created_at": iso(row["created_at"]),
            "findings": findings,
            "new_findings": [f for f in findings if not f["preexisting"]],
            "preexisting": [f for f in findings if f["preexisting"]],
            "approvals": approvals,
            "missing_approvals": [a for a in approvals if not a["satisfied"]],
            "summary": summary(findings, approvals),
            "timeline": events,
            "conditions": conditions(stored.get("conditions")),
            "newer": newest["url"] if newest and newest.get("token") != token else None,
            # what scripts read from the first, minimal version of this endpoint
            "verdict": stored,
        }


def finding(raw: Mapping[str, Any], links: ForgeLinks, repo: str, head: str) -> dict[str, Any]:
    """A stored finding, with its link to the line, its fix and what its action does."""
    action = str(raw.get("action", ""))
    line = raw.get("line") if isinstance(raw.get("line"), int) else None
    path = str(raw.get("path", ""))
    return {
        "rule": raw.get("rule"),
        "kind": raw.get("kind"),
        "action": action,
        "path": path,
        "line": line,
        "subject": raw.get("subject"),
        "message": raw.get("message"),
        "url": links.blob(repo, head, path, line),
        "fix": FIXES.get(str(raw.get("kind")), ""),
        "effect": ACTION_NOTES.get(action, ""),
        "preexisting": bool(raw.get("preexisting")),
    }


def approval(raw: Mapping[str, Any], policy: Policy | None) -> dict[str, Any]:
    """A stored approval requirement, with the members of its group in today's policy."""
    group_name = str(raw.get("group", ""))
    group = policy.groups.get(group_name) if policy is not None else None
    members = (
        {system: group.members(system) for system in SYSTEMS if group.members(system)}
        if group is not None
        else {}
    )
    required = int(raw.get("required") or 0)
    granted = int(raw.get("granted") or 0)
    approvers = raw.get("approvers")
    ignored = raw.get("ignored")
    return {
        "rule": raw.get("rule"),
        "group": group_name,
        "required": required,
        "granted": granted,
        "still_needed": max(0, required - granted),
        "satisfied": granted >= required,
        "members": members,
        "group_known": group is not None,
        # None: this verdict was stored without the names (an older server)
        "approvers": list(approvers) if isinstance(approvers, list) else None,
        "ignored": [_ignored(i) for i in ignored] if isinstance(ignored, list) else None,
    }


def _ignored(item: Any) -> dict[str, str]:
    """An approval that did not count: stored as {"who", "why"} or as a [who, why] pair."""
    if isinstance(item, dict):
        return {"who": str(item.get("who", "")), "why": str(item.get("why", ""))}
    if isinstance(item, list | tuple) and len(item) == 2:
        return {"who": str(item[0]), "why": str(item[1])}
    return {"who": str(item), "why": ""}


def conditions(raw: Any) -> list[dict[str, Any]]:
    """Rules with `if:` / `unless:`: whether each ran, and what each predicate saw."""
    out = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict):
            checks = item.get("checks")
            out.append(
                {
                    "rule": str(item.get("rule", "")),
                    "applies": bool(item.get("applies")),
                    "checks": [str(c) for c in checks] if isinstance(checks, list) else [],
                }
            )
    return out


# -- the timeline -----------------------------------------------------------------------


def timeline(history: SubjectHistory, current: str) -> list[dict[str, Any]]:
    """Evaluations of the subject, and its approval requests and decisions as the audit
    log recorded them (with the refusals, which only the audit log keeps); requests and
    decisions the audit log lacks come from their own tables."""
    events = [_evaluation_event(e, current) for e in history.evaluations]
    audited_requests: set[str] = set()
    audited_decisions: set[tuple[str, str, str]] = set()
    for a in history.audit:
        detail = a.detail if isinstance(a.detail, dict) else {}
        request_id = str(detail.get("request", ""))
        if a.action == "approval.requested":
            audited_requests.add(request_id)
        if a.action in ("approval.approve", "approval.reject"):
            audited_decisions.add((request_id, a.actor_system, a.actor))
        events.append(
            {
                "at": iso(a.at),
                "kind": "audit",
                "action": a.action,
                "sha": a.sha,
                "text": audit_sentence(a.action, a.actor_system, a.actor, a.sha, detail),
                "seq": a.seq,
            }
        )
    for r in history.requests:
        if r.id not in audited_requests:
            events.append(
                {
                    "at": iso(r.created_at),
                    "kind": "request",
                    "sha": r.sha,
                    "text": f"Approval requested from {r.group_name} for {short(r.sha)}"
                    f" (now {r.state})",
                }
            )
    for d in history.decisions:
        if (d.request_id, d.actor_system, d.actor) not in audited_decisions:
            events.append(_decision_event(d))
    events.sort(key=lambda e: e["at"] or "")
    return events


def _evaluation_event(e: Any, current: str) -> dict[str, Any]:
    label = DECISION_LABELS.get(e.decision, e.decision).lower()
    return {
        "at": iso(e.created_at),
        "kind": "evaluation",
        "sha": e.head_sha,
        "text": f"Evaluated {short(e.head_sha)}: {label}",
        "decision": e.decision,
        "url": f"/v/{e.token}",
        "token": e.token,
        "current": e.token == current,
    }


def _decision_event(d: Any) -> dict[str, Any]:
    verb = "approved" if d.decision == "approve" else "rejected"
    reason = f": {d.reason}" if d.reason else ""
    return {
        "at": iso(d.created_at),
        "kind": "decision",
        "sha": d.sha,
        "text": f"{d.actor} ({d.actor_system}) {verb} {short(d.sha)}{reason}",
    }
