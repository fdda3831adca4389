"""Sign in with GitHub for the admin pages, through the App's OAuth user web flow."""

from __future__ import annotations

import logging

from github import Auth, Github
from github.GithubException import GithubException

from bot.forges.github.client import ForgeRetry, make_retry
from bot.settings import Settings

log = logging.getLogger(__name__)


class GitHubSignIn:
    """ "Sign in with GitHub" for the admin pages: the GitHub App's user web flow, through
    PyGithub's `ApplicationOAuth`. The authorize and token URLs are derived from
    `CHANGEGATE_GITHUB_API_URL` the way PyGithub does it (api.github.com -> github.com,
    `https://host/api/v3` -> `https://host`), so a GitHub Enterprise server or a local
    stand-in needs nothing more. The user's token is used once, to ask who they are, and
    is not kept."""

    def __init__(self, client_id: str, client_secret: str, api_url: str, *, timeout: int = 15):
        self.api_url = api_url.rstrip("/")
        self._timeout = timeout
        app = Github(base_url=self.api_url, timeout=timeout, retry=self._retry())
        self._oauth = app.get_oauth_application(client_id, client_secret)

    @staticmethod
    def _retry() -> ForgeRetry:
        """Someone is waiting at the browser: two quick retries, then say GitHub is down."""
        return make_retry(total=2, backoff_factor=0.25, max_wait=5)

    @classmethod
    def from_settings(cls, settings: Settings) -> GitHubSignIn | None:
        """None unless the App's client id and secret are set."""
        secret = settings.github_client_secret
        if not settings.github_client_id or secret is None:
            return None
        return cls(settings.github_client_id, secret.get_secret_value(), settings.github_api_url)

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        return self._oauth.get_login_url(redirect_uri=redirect_uri, state=state)

    def login_of(self, code: str) -> str | None:
        """The login of the user who authorized, or None when GitHub refuses the code
        (wrong, used already, expired: GitHub answers those 200 with an `error`)."""
        try:
            token = self._oauth.get_access_token(code)
        except GithubException as exc:
            if exc.status != 200:  # GitHub is down or refusing us: not the user's fault
                raise
            log.warning("GitHub sign-in: the code was refused (%s)", exc.data)
            return None
        user = Github(
            base_url=self.api_url,
            auth=Auth.Token(token.token),
            timeout=self._timeout,
            retry=self._retry(),
        ).get_user()
        return str(user.login)
