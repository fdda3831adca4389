"""The GitLab forge on python-gitlab: webhooks to `Change`s, lazy file views, commit statuses
and one merge request note kept up to date, deploy gates."""

from bot.forges.common import clear_caches
from bot.forges.gitlab.client import GitLabOptions, GitLabRateLimited
from bot.forges.gitlab.events import GitLabNotReady
from bot.forges.gitlab.forge import GitLabForge
from bot.forges.gitlab.statuses import NOTE_MARKER, STATUS_NAME, note_body, status_description

__all__ = [
    "NOTE_MARKER",
    "STATUS_NAME",
    "GitLabForge",
    "GitLabNotReady",
    "GitLabOptions",
    "GitLabRateLimited",
    "clear_caches",
    "note_body",
    "status_description",
]
