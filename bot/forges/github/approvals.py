"""Approvals given on GitHub (approving reviews, bound to the commit reviewed) and the
members of the teams a policy names as `@org/team`."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from github import UnknownObjectException

from bot.change import Approval, Change
from bot.forges.common import Expiring
from bot.forges.github.client import GitHubApi
from bot.policy.approvers import Directory

log = logging.getLogger(__name__)


class GitHubApprovals:
    """Reviews and team members, through the App's installations."""

    def __init__(self, api: GitHubApi, team_ttl: float) -> None:
        self.api = api
        self._teams: Expiring[frozenset[str]] = Expiring(team_ttl)

    def approvals(self, change: Change) -> list[Approval]:
        """The latest approving review of each reviewer, bound to the commit it was given on.

        A later comment does not withdraw an approval; a later change request or a dismissal
        does (GitHub's own rule).
        """
        if change.number is None:
            return []
        latest: dict[str, Any] = {}
        for review in self.api.repo(change.repo).get_pull(change.number).get_reviews():
            if review.user is None or review.state not in (
                "APPROVED",
                "CHANGES_REQUESTED",
                "DISMISSED",
            ):
                continue
            latest[review.user.login.lower()] = review
        return [
            Approval(
                system="github", user=r.user.login, sha=r.commit_id, via="review", at=_naive(r)
            )
            for r in latest.values()
            if r.state == "APPROVED" and r.commit_id
        ]

    def directory(self, entries: list[str]) -> Directory:
        members: dict[str, frozenset[str]] = {}
        for entry in entries:
            if entry.startswith("@") and "/" in entry:
                members[entry] = self._team_members(entry)
        return Directory(members=members)

    def _team_members(self, entry: str) -> frozenset[str]:
        return self._teams.get(entry, lambda: self._read_team(entry))

    def _read_team(self, entry: str) -> frozenset[str]:
        org, slug = entry[1:].split("/", 1)
        try:
            gh = self.api.client(self.api.org_installation(org))
            team = gh.get_organization(org).get_team_by_slug(slug)
            logins = frozenset(m.login for m in team.get_members())
        except UnknownObjectException:
            log.warning("team %s not found (or the App lacks members: read)", entry)
            logins = frozenset()
        return logins


def _naive(review: Any) -> datetime | None:
    """A review's `submitted_at` as naive UTC, as the store keeps times."""
    at = review.submitted_at
    return at.astimezone(UTC).replace(tzinfo=None) if at is not None else None
