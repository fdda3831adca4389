"""Links from the pages into a forge's web UI: a file at a line, a pull/merge request, a
commit.

These are web addresses, not API calls, so they are built here from the settings and
never through a forge client (the pages import no forge adapter for them). The two forges
differ only in a few path segments, kept side by side in `WEB_PATHS` so the difference
reads at a glance.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from bot.settings import Settings


@dataclass(frozen=True)
class WebPaths:
    """The path segments of one forge's web UI, below `{base}/{owner}/{repo}`."""

    blob: str
    change: str
    commit: str


WEB_PATHS = {
    "github": WebPaths(blob="/blob/", change="/pull/", commit="/commit/"),
    "gitlab": WebPaths(blob="/-/blob/", change="/-/merge_requests/", commit="/-/commit/"),
}


def github_web_url(api_url: str) -> str:
    """GitHub's web address for its API address: api.github.com -> github.com, GitHub
    Enterprise Server `https://host/api/v3` -> `https://host`, data residency
    `api.acme.ghe.com` -> `acme.ghe.com`; a server that answers both (a stand-in) as is."""
    parts = urllib.parse.urlsplit((api_url or "https://api.github.com").rstrip("/"))
    host, path = parts.netloc, parts.path
    if path.endswith("/api/v3"):
        path = path[: -len("/api/v3")]
    elif host.startswith("api.") and not path:
        host = host[len("api.") :]
    return f"{parts.scheme or 'https'}://{host}{path}".rstrip("/")


def forge_web_base(settings: Settings, forge: str) -> str | None:
    """The forge's web address, derived from the API settings (`github_web_url`), or
    GitLab's own URL."""
    if forge == "github":
        return github_web_url(str(getattr(settings, "github_api_url", "") or ""))
    if forge == "gitlab":
        url = getattr(settings, "gitlab_url", None)
        return str(url).rstrip("/") if url else None
    return None


@dataclass(frozen=True)
class ForgeLinks:
    """Web links into one forge; every method returns None when the forge has no web UI."""

    forge: str
    base: str | None

    @classmethod
    def of(cls, settings: Settings, forge: str) -> ForgeLinks:
        return cls(forge, forge_web_base(settings, forge))

    @property
    def _paths(self) -> WebPaths:
        return WEB_PATHS["gitlab" if self.forge == "gitlab" else "github"]

    def _repo(self, repo: str) -> str | None:
        if not self.base or not repo:
            return None
        return f"{self.base}/{urllib.parse.quote(repo, safe='/')}"

    def blob(self, repo: str, sha: str, path: str, line: int | None) -> str | None:
        root = self._repo(repo)
        if root is None or not sha or not path:
            return None
        quoted = f"{urllib.parse.quote(sha, safe='')}/{urllib.parse.quote(path)}"
        url = f"{root}{self._paths.blob}{quoted}"
        return f"{url}#L{line}" if line else url

    def change(self, repo: str, number: int | None) -> str | None:
        root = self._repo(repo)
        if root is None or number is None:
            return None
        return f"{root}{self._paths.change}{number}"

    def commit(self, repo: str, sha: str) -> str | None:
        root = self._repo(repo)
        if root is None or not sha:
            return None
        return f"{root}{self._paths.commit}{urllib.parse.quote(sha, safe='')}"
