"""The verdict as a GitHub check run: `in_progress` while evaluating, then completed with a
conclusion, a title, a markdown summary and annotations (50 per request, as GitHub takes
them)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from github.Repository import Repository

from bot.change import Action, Change, Decision, Finding, Verdict
from bot.forges.common import headline, with_note
from bot.forges.github.client import GitHubApi
from bot.report import markdown_summary

CHECK_NAME = "changegate"
ANNOTATIONS_PER_REQUEST = 50
SUMMARY_LIMIT = 65_535
TITLE_LIMIT = 255
#: How an annotation on a line the change did not touch begins (bot/policy/preexisting.py).
BEFORE_NOTE = "Already present before this change (not judged): "

_CONCLUSION = {
    Decision.PASS: "success",
    Decision.FAIL: "failure",
    Decision.APPROVAL_REQUIRED: "action_required",
}
_LEVEL = {Action.BLOCK: "failure", Action.REQUIRE_APPROVAL: "warning", Action.WARN: "notice"}


class CheckRuns:
    """The `changegate` check run of each head: started, then completed with the verdict."""

    def __init__(self, api: GitHubApi) -> None:
        self.api = api
        self._lock = threading.Lock()
        self._runs: OrderedDict[tuple[str, str], int] = OrderedDict()  # (repo, head) -> run id

    def start(self, change: Change, details_url: str) -> None:
        repo = self.api.repo(change.repo)
        key = (change.repo.lower(), change.head)
        run_id = self._runs.get(key)
        output: dict[str, Any] = {
            "title": "Checking…",
            "summary": f"Evaluating `{change.head[:12]}`.",
        }
        if run_id is not None:  # an earlier attempt died before publishing: reuse its run
            repo.get_check_run(run_id).edit(
                status="in_progress", details_url=details_url, output=output
            )
            return
        run = repo.create_check_run(
            name=CHECK_NAME,
            head_sha=change.head,
            status="in_progress",
            details_url=details_url,
            external_id=_external_id(change),
            started_at=datetime.now(UTC),
            output=output,
        )
        with self._lock:
            self._runs[key] = run.id
            while len(self._runs) > 10_000:
                self._runs.popitem(last=False)

    def publish(
        self, change: Change, verdict: Verdict, details_url: str, *, note: str | None = None
    ) -> None:
        """`note` (a rejection in Slack, a break-glass) titles the run and heads its summary."""
        repo = self.api.repo(change.repo)
        key = (change.repo.lower(), change.head)
        with self._lock:
            run_id = self._runs.pop(key, None)
        if run_id is None:
            run_id = self._find_open_run(repo, change.head)
        title = (note or headline(verdict))[:TITLE_LIMIT]
        summary = with_note(summary_markdown(verdict, details_url), note)[:SUMMARY_LIMIT]
        batches = list(_batches([annotation(f) for f in verdict.findings if f.path]))
        first = batches[0] if batches else []
        output = {"title": title, "summary": summary, "annotations": first}
        if run_id is None:
            run = repo.create_check_run(
                name=CHECK_NAME,
                head_sha=change.head,
                status="completed",
                conclusion=_CONCLUSION[verdict.decision],
                details_url=details_url,
                external_id=_external_id(change),
                completed_at=datetime.now(UTC),
                output=output,  # type: ignore[arg-type]
            )
        else:
            run = repo.get_check_run(run_id)
            run.edit(
                status="completed",
                conclusion=_CONCLUSION[verdict.decision],
                completed_at=datetime.now(UTC),
                details_url=details_url,
                output=output,
            )
        for batch in batches[1:]:  # GitHub appends annotations of further updates
            run.edit(output={"title": title, "summary": summary, "annotations": batch})

    def _find_open_run(self, repo: Repository, head: str) -> int | None:
        """Our unfinished check run on `head`, when `start` ran in another process."""
        runs = repo.get_commit(head).get_check_runs(check_name=CHECK_NAME, status="in_progress")
        for run in runs:
            if run.app is None or run.app.id == self.api.app_id:
                return int(run.id)
        return None


def summary_markdown(verdict: Verdict, details_url: str) -> str:
    text = markdown_summary(verdict, details_url=details_url, limit=SUMMARY_LIMIT)
    if len(text) > SUMMARY_LIMIT:  # belt and braces: GitHub rejects the whole update
        note = "\n\n… summary truncated"
        text = text[: SUMMARY_LIMIT - len(note)] + note
    return text


def annotation(finding: Finding) -> dict[str, Any]:
    line = finding.line or 1
    title = f"{finding.rule}: {finding.subject}" if finding.subject else finding.rule
    return {
        "path": finding.path,
        "start_line": line,
        "end_line": line,
        "annotation_level": _LEVEL[finding.action],
        "title": title[:TITLE_LIMIT],
        "message": (BEFORE_NOTE if finding.preexisting else "")
        + (finding.message[:SUMMARY_LIMIT] or finding.rule),
    }


def _batches(items: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(items), ANNOTATIONS_PER_REQUEST):
        yield items[i : i + ANNOTATIONS_PER_REQUEST]


def _external_id(change: Change) -> str:
    """Lets a re-requested check run on a push find its range again."""
    return f"pr:{change.number}" if change.number is not None else f"push:{change.base or ''}"
