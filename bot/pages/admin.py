"""The admin pages, `/admin/...`: open approval requests, recent verdicts, the dead-letter
queue (with re-queue), the audit log and the loaded policy, behind `bot.pages.auth`.

Read-only but for the re-queue form; every view is plain data shared by the page and its
JSON twin (`bot.pages.templates`). The SQL is in `bot.pages.queries`.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot import inbox
from bot.pages import queries
from bot.pages.advice import audit_sentence
from bot.pages.auth import MAX_FORM_BYTES, AdminGuard, read_form
from bot.pages.queries import PolicySource, iso, loaded_policy, policy_source_info
from bot.pages.templates import SECURITY_HEADERS, wants_json

log = logging.getLogger(__name__)

PAGE_LIMIT = 100
MAX_LIMIT = 500
RULE_WINDOW = 2000  # verdicts read to filter by rule (the rule lives inside the verdict JSON)
DECISIONS = ("fail", "approval_required", "pass")
SYSTEMS = ("github", "gitlab", "slack")
UNAVAILABLE = "The database is unavailable; try again shortly."


def page_limit(raw: str | None) -> int:
    """`?limit=`: a number from 1 to 500, `PAGE_LIMIT` when absent or not a number."""
    try:
        value = int(raw) if raw else PAGE_LIMIT
    except ValueError:
        return PAGE_LIMIT
    return min(max(value, 1), MAX_LIMIT)


class AdminPages:
    """The admin pages of one app: its store, its policy, and who may see them."""

    def __init__(
        self,
        engine: Engine,
        policy: PolicySource,
        guard: AdminGuard,
        *,
        requeue: Callable[[Engine, str], int] = inbox.requeue_dead,
    ) -> None:
        self.engine = engine
        self.policy_source = policy
        self.guard = guard
        self.requeue = requeue

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/admin", self.admin_home, methods=["GET"], name="admin"),
            Route("/admin/requests", self.admin_requests, methods=["GET"]),
            Route("/admin/verdicts", self.admin_verdicts, methods=["GET"]),
            Route("/admin/dead", self.admin_dead, methods=["GET"]),
            Route("/admin/dead/requeue", self.admin_requeue, methods=["POST"]),
            Route("/admin/audit", self.admin_audit, methods=["GET"]),
            Route("/admin/policy", self.admin_policy, methods=["GET"]),
        ]

    async def _page(
        self, request: Request, template: str, build: Callable[[], Mapping[str, Any]]
    ) -> Response:
        """An admin page: the guard first, then the view (off the event loop)."""
        guard = await self.guard.admit(request)
        if isinstance(guard, Response):
            return guard
        try:
            view = await run_in_threadpool(build)
        except SQLAlchemyError as exc:
            log.warning("admin page %s: database unavailable: %s", request.url.path, exc)
            return self.guard.error(request, 503, UNAVAILABLE)
        return self.guard.render(request, template, dict(view), session=guard)

    # -- endpoints -----------------------------------------------------------------------
    async def admin_home(self, request: Request) -> Response:
        return await self._page(request, "admin_home.html", self.home_view)

    async def admin_requests(self, request: Request) -> Response:
        return await self._page(request, "admin_requests.html", self.requests_view)

    async def admin_verdicts(self, request: Request) -> Response:
        q = request.query_params
        return await self._page(
            request,
            "admin_verdicts.html",
            lambda: self.verdicts_view(
                repo=q.get("repo", ""),
                rule=q.get("rule", ""),
                decision=q.get("decision", ""),
                limit=page_limit(q.get("limit")),
            ),
        )

    async def admin_dead(self, request: Request) -> Response:
        requeued = request.query_params.get("requeued")
        return await self._page(
            request, "admin_dead.html", lambda: self.dead_view(requeued=requeued)
        )

    async def admin_audit(self, request: Request) -> Response:
        q = request.query_params
        return await self._page(
            request,
            "admin_audit.html",
            lambda: self.audit_view(subject=q.get("subject", ""), limit=page_limit(q.get("limit"))),
        )

    async def admin_policy(self, request: Request) -> Response:
        return await self._page(request, "admin_policy.html", self.policy_view)

    async def admin_requeue(self, request: Request) -> Response:
        """Put a dead delivery back in the queue: a form (CSRF token) or a JSON script."""
        guard = await self.guard.admit(request)
        if isinstance(guard, Response):
            return guard
        body = (await request.body())[:MAX_FORM_BYTES]
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                raw = json.loads(body or b"{}")
            except ValueError:
                raw = None
            if not isinstance(raw, dict):
                return self.guard.error(request, 400, "Send a JSON object with `delivery`.")
            form = {k: str(v) for k, v in raw.items()}
        else:
            form = read_form(body)
        if not self.guard.auth.csrf_ok(guard, form.get("csrf", "")):
            message = "The form has expired; reload the page and retry."
            return self.guard.error(request, 403, message)
        key = form.get("delivery", "").strip()
        if not key:
            return self.guard.error(request, 400, "Name the delivery to re-queue.")
        try:
            count = await run_in_threadpool(self.requeue, self.engine, key)
        except SQLAlchemyError as exc:
            log.warning("re-queue failed: %s", exc)
            return self.guard.error(request, 503, UNAVAILABLE)
        log.info(
            "admin re-queued dead delivery %s (%d)",
            key,
            count,
            extra={"via": guard.via, "who": guard.who},
        )
        if wants_json(request) or guard.via == "bearer":
            status = 200 if count else 404
            answer = {"delivery": key, "requeued": count}
            return JSONResponse(answer, status_code=status, headers=SECURITY_HEADERS)
        if not count:
            message = f"No dead delivery {key!r} (re-queued already?)."
            return self.guard.error(request, 404, message)
        return RedirectResponse(f"/admin/dead?requeued={urllib.parse.quote(key)}", status_code=303)

    # -- views: plain data, shared by HTML and JSON -----------------------------------------
    def home_view(self) -> dict[str, Any]:
        stats = inbox.stats(self.engine)
        totals = queries.totals(self.engine)
        return {
            "queue": stats.by_state,
            "oldest_waiting_seconds": round(stats.oldest_queued_age, 1),
            "open_requests": totals.open_requests,
            "evaluations": totals.evaluations,
            "audit": {
                "rows": totals.audit_rows,
                "intact": not totals.audit_problems,
                "problems": totals.audit_problems,
            },
            "policy": policy_source_info(self.policy_source),
        }

    def requests_view(self) -> dict[str, Any]:
        return {
            "requests": [
                {
                    "id": x.id,
                    "kind": x.kind,
                    "subject": x.subject,
                    "repo": x.repo,
                    "number": x.number,
                    "title": x.title,
                    "environment": x.environment,
                    "sha": x.sha,
                    "group": x.group_name,
                    "rules": list(x.rules or []),
                    "required": x.min_approvals,
                    "approved": int(x.approved or 0),
                    "author": f"{x.author} ({x.author_system})" if x.author else None,
                    "created_at": iso(x.created_at),
                    "expires_at": iso(x.expires_at),
                    "verdict_url": f"/v/{x.token}" if x.token else None,
                }
                for x in queries.pending_requests(self.engine)
            ]
        }

    def verdicts_view(
        self, *, repo: str = "", rule: str = "", decision: str = "", limit: int = PAGE_LIMIT
    ) -> dict[str, Any]:
        # the rule lives inside the verdict JSON: filter in Python over a bounded window
        window = limit if not rule else max(limit * 20, RULE_WINDOW)
        rows, repos = queries.recent_evaluations(
            self.engine, repo=repo, decision=decision, limit=window
        )
        out: list[dict[str, Any]] = []
        for x in rows:
            stored = x.verdict if isinstance(x.verdict, dict) else {}
            rules = _rules_of(stored)
            if rule and rule not in rules:
                continue
            out.append(
                {
                    "repo": x.repo,
                    "forge": x.forge,
                    "number": x.number,
                    "head": x.head_sha,
                    "decision": x.decision,
                    "findings": len(stored.get("findings", [])),
                    "rules": rules,
                    "created_at": iso(x.created_at),
                    "url": f"/v/{x.token}",
                }
            )
            if len(out) >= limit:
                break
        policy = loaded_policy(self.policy_source)
        return {
            "filters": {"repo": repo, "rule": rule, "decision": decision, "limit": limit},
            "choices": {
                "decisions": list(DECISIONS),
                "rules": [r.id for r in policy.rules] if policy else [],
                "repos": repos,
            },
            "verdicts": out,
        }

    def dead_view(self, *, requeued: str | None = None) -> dict[str, Any]:
        return {
            "requeued": requeued,
            "dead": [
                {
                    "key": x.id,
                    "forge": x.forge,
                    "delivery_id": x.delivery_id,
                    "event": x.event,
                    "subject": x.subject,
                    "attempts": x.attempts,
                    "error": (x.last_error or "").strip().splitlines()[0][:300]
                    if x.last_error
                    else "",
                    "error_detail": x.last_error or "",
                    "received_at": iso(x.received_at),
                    "died_at": iso(x.processed_at),
                }
                for x in queries.dead_deliveries(self.engine)
            ],
        }

    def audit_view(self, *, subject: str = "", limit: int = PAGE_LIMIT) -> dict[str, Any]:
        page = queries.audit_page(self.engine, subject=subject, limit=limit)
        return {
            "chain": {
                "intact": not page.problems,
                "problems": page.problems,
                "rows": page.rows,
                "head": {"seq": page.rows, "hash": page.head_hash},
            },
            "filters": {"subject": subject, "limit": limit},
            "entries": [_audit_entry(a) for a in page.entries],
        }

    def policy_view(self) -> dict[str, Any]:
        policy = loaded_policy(self.policy_source)
        info = policy_source_info(self.policy_source)
        if policy is None:
            return {**info, "loaded": False}
        dumped = policy.model_dump(mode="json")
        return {
            **info,
            "loaded": True,
            "environments": [
                {"name": name, "paths": env["paths"]}
                for name, env in dumped.get("environments", {}).items()
            ],
            "groups": [
                {
                    "name": name,
                    "members": {s: group.get(s, []) for s in SYSTEMS if group.get(s)},
                    "slack_channel": group.get("slack_channel"),
                }
                for name, group in dumped.get("groups", {}).items()
            ],
            "people": dumped.get("people", []),
            "rules": [_policy_rule(rule) for rule in dumped.get("rules", [])],
            "deploys": [
                {"environment": name, **gate}
                for name, gate in dumped.get("deploys", {}).items()
                if isinstance(gate, dict)  # `default` is a setting, not an environment
            ],
            "break_glass": dumped.get("break_glass", {}),
        }


def _rules_of(stored: Mapping[str, Any]) -> list[str]:
    """The rules a stored verdict names, in its findings or its approvals."""
    return sorted(
        {str(f.get("rule")) for f in stored.get("findings", []) if isinstance(f, dict)}
        | {str(a.get("rule")) for a in stored.get("approvals", []) if isinstance(a, dict)}
    )


def _audit_entry(a: Any) -> dict[str, Any]:
    return {
        "seq": a.seq,
        "at": iso(a.at),
        "action": a.action,
        "actor": f"{a.actor} ({a.actor_system})" if a.actor else "",
        "subject": a.subject,
        "sha": a.sha,
        "rules": list(a.rules or []),
        "channel": a.channel,
        "decision": a.decision,
        "text": audit_sentence(
            a.action,
            a.actor_system,
            a.actor,
            a.sha,
            a.detail if isinstance(a.detail, dict) else {},
        ),
        "hash": a.hash,
    }


def _policy_rule(dumped: Mapping[str, Any]) -> dict[str, Any]:
    """One rule of the dumped policy: the common fields, its options, and the rest."""
    rule = dict(dumped)
    return {
        "id": rule.pop("id"),
        "kind": rule.pop("kind"),
        "action": rule.pop("action"),
        "paths": rule.pop("paths", []),
        "approvers": rule.pop("approvers", None),
        "min_approvals": rule.pop("min_approvals", 1),
        "slack_channel": rule.pop("slack_channel", None),
        "options": {k: v for k, v in rule.pop("options", {}).items()},
        "other": rule,
    }
