"""The policy in force: the admin's file, held and reloaded, tightened per repository.

`PolicyHolder` keeps the admin policy, reloading the file when it changes and keeping the
last good policy when the new file is invalid. `effective_policy` is the one way to get the
policy that governs a change: the admin policy tightened by the repository's
`.changegate.yml` from its default branch (never from the change itself: a change does not
govern itself). Every governor module asks here.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from bot import metrics, store
from bot.change import Change
from bot.forges import Forge
from bot.policy.merge import merge_policies
from bot.policy.schema import Policy, PolicyError, load_policy_file
from bot.policy.sources import REPOSITORY_POLICY, resolve_policy_setting
from bot.settings import Settings

log = logging.getLogger(__name__)


class PolicyHolder:
    """The admin policy, reloaded when its file changes; never replaced by a broken one.

    The first load happens in the constructor and raises `PolicyError` (FILE:LINE:COL), so
    a server never starts on a policy it could not load.
    """

    def __init__(self, path: Path, *, reload_seconds: float = 5.0) -> None:
        self.path = Path(path)
        self.reload_seconds = reload_seconds
        self.error: str | None = None
        self._lock = threading.Lock()
        self._stamp = self._file_stamp()
        self._policy = load_policy_file(self.path)
        self.loaded_at = store.utcnow()
        self._checked = time.monotonic()
        metrics.POLICY_LOADED.set(1)

    @classmethod
    def from_settings(cls, settings: Settings) -> PolicyHolder:
        """CHANGEGATE_POLICY; the default falls back to the bundled policy when the relative
        `policies/default.yml` is not there (an installed package run from anywhere)."""
        path = resolve_policy_setting(str(settings.policy))
        return cls(path, reload_seconds=settings.policy_reload_seconds)

    @classmethod
    def of(cls, policy: Policy, path: Path = Path("<memory>")) -> PolicyHolder:
        """A fixed policy (tests, `policy simulate`): never reloaded."""
        holder = cls.__new__(cls)
        holder.path, holder.reload_seconds, holder.error = path, 0.0, None
        holder._lock, holder._stamp, holder._policy = threading.Lock(), None, policy
        holder._checked = time.monotonic()
        holder.loaded_at = store.utcnow()
        return holder

    @property
    def policy(self) -> Policy:
        if self.reload_seconds > 0 and time.monotonic() - self._checked >= self.reload_seconds:
            self.reload_if_changed()
        return self._policy

    def reload_if_changed(self) -> bool:
        """Reload when the file's mtime or size changed. True if a new policy is in force."""
        with self._lock:
            self._checked = time.monotonic()
            stamp = self._file_stamp()
            if stamp == self._stamp:
                return False
            self._stamp = stamp
            try:
                policy = load_policy_file(self.path)
            except PolicyError as exc:
                self.error = str(exc)
                metrics.POLICY_LOADED.set(0)
                metrics.POLICY_RELOADS.labels("error").inc()
                log.error("policy %s is invalid; keeping the last good one:\n%s", self.path, exc)
                return False
            self._policy, self.error = policy, None
            self.loaded_at = store.utcnow()
            metrics.POLICY_LOADED.set(1)
            metrics.POLICY_RELOADS.labels("ok").inc()
            log.info("policy %s reloaded", self.path)
            return True

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)


def effective_policy(admin: Policy, forge: Forge, change: Change) -> Policy:
    """Admin policy, tightened by the repository's `.changegate.yml` from its default
    branch (never from the change itself: a change does not govern itself)."""
    return merge_policies(admin, forge.repository_policy(change), REPOSITORY_POLICY)


def policy_at(
    admin: Policy, forges: Mapping[str, Forge], forge_name: str, repo: str, sha: str
) -> Policy:
    """`effective_policy` for a stored approval request, which names its forge, repository
    and commit; the admin policy alone when that forge is not configured here."""
    forge = forges.get(forge_name)
    if forge is None or not repo:
        return admin
    return effective_policy(admin, forge, Change(repo=repo, base=None, head=sha, forge=forge_name))
