"""`GitHubForge`: the Forge protocol for a GitHub App, put together from the modules that
each own one part of it (clients, events, files, check runs, deploys, approvals)."""

from __future__ import annotations

from github import UnknownObjectException

from bot.change import Approval, Change, Verdict
from bot.forges import Delivery, DeployTarget, Forge, Work
from bot.forges.github import deploys
from bot.forges.github.approvals import GitHubApprovals
from bot.forges.github.checks import CheckRuns
from bot.forges.github.client import GitHubApi, GitHubOptions
from bot.forges.github.events import GitHubEvents
from bot.forges.github.files import GitHubView, blob
from bot.policy.approvers import Directory
from bot.policy.sources import REPOSITORY_POLICY
from bot.settings import Settings


class GitHubForge(GitHubApi):
    """A GitHub App installation's view of GitHub, through PyGithub."""

    name = "github"

    def __init__(
        self, app_id: int, private_key: str, api_url: str, options: GitHubOptions | None = None
    ) -> None:
        options = options or GitHubOptions()
        super().__init__(app_id, private_key, api_url, options)
        self._events = GitHubEvents(self)
        self._checks = CheckRuns(self)
        self._approvals = GitHubApprovals(self, options.team_ttl)

    @classmethod
    def from_settings(cls, settings: Settings) -> GitHubForge:
        """Build from the settings (github_app_id, github_private_key_path, ...): GitHub
        must be on."""
        if settings.github_app_id is None or settings.github_private_key_path is None:
            raise ValueError(
                "GitHub is not configured (CHANGEGATE_GITHUB_APP_ID, _PRIVATE_KEY_PATH)"
            )
        key = settings.github_private_key_path.read_text(encoding="utf-8")
        options = GitHubOptions(throttle=settings.github_throttle)
        return cls(int(settings.github_app_id), key, settings.github_api_url, options)

    # -- events -----------------------------------------------------------------------------
    def subject_of(self, delivery: Delivery) -> str:
        return self._events.subject_of(delivery)

    def parse(self, delivery: Delivery) -> Work:
        return self._events.parse(delivery)

    def change_work(self, repo: str, number: int) -> Work:
        return self._events.change_work(repo, number)

    # -- reading ------------------------------------------------------------------------------
    def view(self, change: Change) -> GitHubView:
        return GitHubView(self, change)

    def repository_policy(self, change: Change) -> str | None:
        repo = self.repo(change.repo)
        try:
            found = repo.get_contents(REPOSITORY_POLICY)  # no ref: the default branch
        except UnknownObjectException:
            return None
        if isinstance(found, list) or found.type != "file":
            return None
        data = found.decoded_content if found.encoding == "base64" else blob(repo, found.sha)
        return data.decode("utf-8", "replace")

    def approvals(self, change: Change) -> list[Approval]:
        return self._approvals.approvals(change)

    def directory(self, entries: list[str]) -> Directory:
        return self._approvals.directory(entries)

    # -- check runs and deploys ---------------------------------------------------------------
    def start(self, change: Change, details_url: str) -> None:
        self._checks.start(change, details_url)

    def publish(
        self, change: Change, verdict: Verdict, details_url: str, *, note: str | None = None
    ) -> None:
        self._checks.publish(change, verdict, details_url, note=note)

    def answer_deployment(
        self, repo: str, environment: str, target: DeployTarget, approved: bool, comment: str
    ) -> tuple[int, ...]:
        return deploys.answer_deployment(self, repo, environment, target, approved, comment)


_: type[Forge] = GitHubForge  # mypy checks the forge against the protocol
