"""The verdict on GitLab: a commit status named `changegate`, and one merge request note
with the findings, found again by its hidden marker and edited in place."""

from __future__ import annotations

import logging
import time
from typing import Any

from gitlab.exceptions import GitlabError

from bot.change import Change, Decision, Verdict
from bot.forges.cache import LRU
from bot.forges.common import headline, with_note
from bot.forges.gitlab.client import GitLabApi
from bot.report import markdown_summary

log = logging.getLogger(__name__)

STATUS_NAME = "changegate"
NOTE_MARKER = "<!-- changegate -->"
DESCRIPTION_LIMIT = 255
NOTE_LIMIT = 60_000  # GitLab accepts 1,000,000 characters; a note people read needs far less
STATUS_CONFLICT_RETRIES = 3  # python-gitlab retries a 409 only if its *reason phrase* says so

_STATE = {
    Decision.PASS: "success",
    Decision.FAIL: "failed",
    Decision.APPROVAL_REQUIRED: "failed",
}


class GitLabStatuses:
    """Commit statuses and the MR note of each change."""

    def __init__(self, api: GitLabApi) -> None:
        self.api = api
        self._notes: LRU[tuple[str, int], int] = LRU(max_entries=4096)  # (repo, iid) -> note id

    def start(self, change: Change, details_url: str) -> None:
        """Commit status `running`. Already running (a re-check racing another) is fine."""
        self._status(change, "running", "checking the change against the policy", details_url)

    def publish(
        self, change: Change, verdict: Verdict, details_url: str, *, note: str | None = None
    ) -> None:
        """Commit status `success` / `failed`, then the one MR note, edited in place.

        GitLab has no `action_required`: approval_required is posted as `failed` with
        "approval required" as its description. `pending` would read as "still checking"
        to people and to tooling, and it would stay that way until someone approves; a
        failed status with the approval page as its target says exactly what is missing,
        blocks merging where "pipelines must succeed" is on, and turns `success` on the
        re-check an approval triggers.
        """
        state = _STATE[verdict.decision]
        description = note or status_description(verdict)
        self._status(change, state, description, details_url)
        if change.number is not None:  # a note (a rejection in Slack, a break-glass) first
            self.upsert_note(change, note_body(verdict, details_url, note))

    def _status(self, change: Change, state: str, description: str, target_url: str) -> None:
        body: dict[str, Any] = {
            "state": state,
            "name": STATUS_NAME,
            "target_url": target_url,
            "description": description[:DESCRIPTION_LIMIT],
        }
        hit, ref = self.api.refs.get((change.repo.lower(), change.head))
        if hit and ref:
            body["ref"] = ref
        commit = self.api.project(change.repo).commits.get(change.head, lazy=True)
        for attempt in range(STATUS_CONFLICT_RETRIES + 1):
            try:
                commit.statuses.create(body)
                return
            except GitlabError as exc:
                code = getattr(exc, "response_code", None)
                message = str(getattr(exc, "error_message", "") or exc)
                if code == 400 and "Cannot transition" in message:
                    log.info("%s@%s: status already %s", change.repo, change.head[:12], state)
                    return
                if code != 409 or attempt == STATUS_CONFLICT_RETRIES:
                    raise
                # two writers on one status ("409 Conflict: Resource lock"): try again shortly
                time.sleep(0.2 * (attempt + 1))

    def upsert_note(self, change: Change, body: str) -> None:
        """Edit our note (hidden marker, authored by the bot) or create it once."""
        assert change.number is not None
        mr = self.api.project(change.repo).mergerequests.get(change.number, lazy=True)
        note = self._find_note(change, mr)
        if note is None:
            created = mr.notes.create({"body": body})
            self._notes.put((change.repo.lower(), change.number), int(created.id))
            return
        if note.body != body:
            note.body = body
            note.save()

    def _find_note(self, change: Change, mr: Any) -> Any:
        assert change.number is not None
        key = (change.repo.lower(), change.number)
        hit, note_id = self._notes.get(key)
        if hit and note_id is not None:
            try:
                return mr.notes.get(note_id)
            except GitlabError as exc:
                if getattr(exc, "response_code", None) != 404:
                    raise
        bot = self.api.bot_username()
        for note in mr.notes.list(sort="asc", order_by="created_at", iterator=True):
            author = (note.author or {}).get("username")
            if not note.system and author == bot and NOTE_MARKER in (note.body or ""):
                self._notes.put(key, int(note.id))
                return note
        return None


def status_description(verdict: Verdict) -> str:
    """One line for the commit status, at most 255 characters."""
    return headline(verdict, status_line=True)[:DESCRIPTION_LIMIT]


def note_body(verdict: Verdict, details_url: str, note: str | None = None) -> str:
    """The MR note: a hidden marker (how the note is found again), then the summary,
    headed by `note` when there is one."""
    summary = markdown_summary(
        verdict, details_url=details_url, limit=NOTE_LIMIT - len(NOTE_MARKER) - 1
    )
    return f"{NOTE_MARKER}\n{with_note(summary, note)}"
