"""The GitHub forge of a server whose App is not registered yet.

Workers, the ingress and the approval service each copy the forges mapping when they are
built, so the App registered later cannot be added to it; this stands in the mapping
from the start instead and becomes the real `GitHubForge` as soon as the App's
credentials exist (registered through this server, or by another process that shares the
file: `stored.refresh`). Until then every use fails, which the worker retries: nothing
reaches it anyway, since the ingress refuses GitHub deliveries without a webhook secret.
"""

from __future__ import annotations

import threading
from typing import Any

from bot.forges.github import GitHubForge
from bot.settings import Settings
from bot.setup import stored


class GitHubNotRegistered(AttributeError):
    """Raised by every use of the forge before the App exists. An AttributeError, so
    `hasattr(forge, ...)` probes (e.g. which periodic jobs to start) say "not there"."""


class PendingGitHub:
    name = "github"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._forge: Any = None
        self._lock = threading.Lock()

    @property
    def registered(self) -> bool:
        return self._current(required=False) is not None

    def _current(self, *, required: bool = True) -> Any:
        forge = self._forge
        if forge is not None:
            return forge
        with self._lock:
            if self._forge is None and stored.refresh(self._settings):
                self._forge = GitHubForge.from_settings(self._settings)
            if self._forge is None and required:
                raise GitHubNotRegistered(
                    "the GitHub App is not registered yet: open the setup URL of the start-up "
                    "log, or set CHANGEGATE_GITHUB_APP_ID and friends"
                )
            return self._forge

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._current(), name)

    def __repr__(self) -> str:
        return f"PendingGitHub(registered={self._forge is not None})"
