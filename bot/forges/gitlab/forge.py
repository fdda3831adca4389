"""`GitLabForge`: the Forge protocol for GitLab, put together from the modules that each
own one part of it (client, events, files, statuses, deploys, approvals)."""

from __future__ import annotations

from gitlab.exceptions import GitlabError

from bot.change import Approval, Change, Verdict
from bot.forges import Delivery, DeployTarget, Forge, Work
from bot.forges.gitlab import deploys
from bot.forges.gitlab.approvals import GitLabApprovals
from bot.forges.gitlab.client import GitLabApi, GitLabOptions
from bot.forges.gitlab.events import GitLabEvents
from bot.forges.gitlab.files import GitLabFiles, GitLabView
from bot.forges.gitlab.statuses import GitLabStatuses
from bot.policy.approvers import Directory
from bot.policy.sources import REPOSITORY_POLICY
from bot.settings import Settings


class GitLabForge(GitLabApi):
    """A GitLab instance seen through one bot user's token, through python-gitlab."""

    name = "gitlab"

    def __init__(self, url: str, token: str, options: GitLabOptions | None = None) -> None:
        options = options or GitLabOptions()
        super().__init__(url, token, options)
        self._events = GitLabEvents(self)
        self._files = GitLabFiles(self)
        self._statuses = GitLabStatuses(self)
        self._approvals = GitLabApprovals(self, options.group_ttl)

    @classmethod
    def from_settings(cls, settings: Settings) -> GitLabForge:
        """Build from the settings (`gitlab_url`, `gitlab_token`): GitLab must be on."""
        if settings.gitlab_url is None or settings.gitlab_token is None:
            raise ValueError("GitLab is not configured (CHANGEGATE_GITLAB_URL, _TOKEN)")
        return cls(settings.gitlab_url, settings.gitlab_token.get_secret_value())

    # -- events -----------------------------------------------------------------------------
    def subject_of(self, delivery: Delivery) -> str:
        return self._events.subject_of(delivery)

    def parse(self, delivery: Delivery) -> Work:
        return self._events.parse(delivery)

    def change_work(self, repo: str, number: int) -> Work:
        return self._events.change_work(repo, number)

    # -- reading ------------------------------------------------------------------------------
    def view(self, change: Change) -> GitLabView:
        return GitLabView(self._files, change)

    def repository_policy(self, change: Change) -> str | None:
        """`.changegate.yml` from the default branch, never from the change itself."""
        info = self.project_info(change.repo)
        if not info.default_branch:
            return None
        try:
            data = self.project(change.repo).files.raw(REPOSITORY_POLICY, ref=info.default_branch)
        except GitlabError as exc:
            if getattr(exc, "response_code", None) == 404:
                return None
            raise
        return bytes(data).decode("utf-8", "replace")

    def approvals(self, change: Change) -> list[Approval]:
        return self._approvals.approvals(change)

    def directory(self, entries: list[str]) -> Directory:
        return self._approvals.directory(entries)

    # -- statuses and deploys -----------------------------------------------------------------
    def start(self, change: Change, details_url: str) -> None:
        self._statuses.start(change, details_url)

    def publish(
        self, change: Change, verdict: Verdict, details_url: str, *, note: str | None = None
    ) -> None:
        self._statuses.publish(change, verdict, details_url, note=note)

    def answer_deployment(
        self, repo: str, environment: str, target: DeployTarget, approved: bool, comment: str
    ) -> tuple[int, ...]:
        return deploys.answer_deployment(self, repo, environment, target, approved, comment)

    def play_job(self, repo: str, job_id: int) -> None:
        """Start a manual job (the deploy gates play them through `answer_deployment`)."""
        deploys.play_job(self, repo, job_id)


_: type[Forge] = GitLabForge  # mypy checks the forge against the protocol
