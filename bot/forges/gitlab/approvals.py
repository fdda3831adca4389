"""Approvals given on GitLab (merge request approvals given on the current head) and the
members of the groups a policy names as `@group/subgroup`."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from gitlab.exceptions import GitlabError

from bot.change import Approval, Change
from bot.forges.common import Expiring
from bot.forges.gitlab.client import GitLabApi
from bot.policy.approvers import Directory

log = logging.getLogger(__name__)


class GitLabApprovals:
    """MR approvals and group members, through the bot user's token."""

    def __init__(self, api: GitLabApi, group_ttl: float) -> None:
        self.api = api
        self._groups: Expiring[frozenset[str]] = Expiring(group_ttl)

    def approvals(self, change: Change) -> list[Approval]:
        """MR approvals that were given on the current head.

        GitLab's approvals carry no commit: `approved_by` lists who approves now, and a
        project resets approvals on push only if configured to. So an approval counts only
        if its "approved this merge request" system note is no older than the MR diff
        version that brought the current head. Without that evidence nothing counts.
        """
        if change.number is None or change.forge != "gitlab":
            return []
        mr = self.api.project(change.repo).mergerequests.get(change.number, lazy=True)
        state = mr.approvals.get()
        approvers = {
            str((row.get("user") or {}).get("username"))
            for row in getattr(state, "approved_by", None) or []
            if (row.get("user") or {}).get("username")
        }
        if not approvers:
            return []
        since = None
        for version in mr.diffs.list(iterator=True):
            if version.head_commit_sha == change.head:
                since = _time(version.created_at)  # newest first: the latest push of head
                break
        if since is None:
            log.warning(
                "%s!%s: no diff version for head %s", change.repo, change.number, change.head
            )
            return []
        counted: dict[str, datetime] = {}
        for note in mr.notes.list(sort="desc", order_by="created_at", iterator=True):
            created = _time(note.created_at)
            if created < since:
                break
            user = (note.author or {}).get("username")
            if note.system and note.body.strip() == "approved this merge request" and user:
                counted.setdefault(str(user), created)  # newest first: the latest approval
        return [
            Approval(
                system="gitlab",
                user=user,
                sha=change.head,
                via="mr-approval",
                at=counted[user].astimezone(UTC).replace(tzinfo=None),
            )
            for user in sorted(approvers & counted.keys())
        ]

    def directory(self, entries: list[str]) -> Directory:
        """Members (direct and inherited) of the GitLab groups named as `@group/subgroup`."""
        members = {}
        for entry in entries:
            if entry.startswith("@") and len(entry) > 1:
                members[entry] = self._group_members(entry[1:])
        return Directory(members=members)

    def _group_members(self, group: str) -> frozenset[str]:
        return self._groups.get(group, lambda: self._read_group(group))

    def _read_group(self, group: str) -> frozenset[str]:
        try:
            rows = self.api.gl.groups.get(group, lazy=True).members_all.list(get_all=True)
        except GitlabError as exc:
            if getattr(exc, "response_code", None) != 404:
                raise
            log.warning("GitLab group %s not found: it grants no approvals", group)
            rows = []
        return frozenset(str(m.username).lower() for m in rows)


def _time(value: str) -> datetime:
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
