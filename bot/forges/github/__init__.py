"""The GitHub forge on PyGithub: App auth, events to `Change`s, lazy file views, check runs,
deployment protection rules, and Sign in with GitHub for the admin pages."""

from bot.forges.common import clear_caches
from bot.forges.github.checks import ANNOTATIONS_PER_REQUEST, CHECK_NAME, annotation
from bot.forges.github.client import GitHubOptions
from bot.forges.github.events import HANDLED_EVENTS
from bot.forges.github.forge import GitHubForge
from bot.forges.github.signin import GitHubSignIn

__all__ = [
    "ANNOTATIONS_PER_REQUEST",
    "CHECK_NAME",
    "HANDLED_EVENTS",
    "GitHubForge",
    "GitHubOptions",
    "GitHubSignIn",
    "annotation",
    "clear_caches",
]
