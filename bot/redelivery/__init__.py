"""Missed deliveries: GitHub does not redeliver a failed webhook, and GitLab gives up too.

While the server is down, unreachable or answering 5xx, GitHub logs each failed attempt
and moves on. A periodic job reads the App's delivery log (`GET /app/hook/deliveries`, App
JWT), and for every delivery whose latest attempt failed and whose guid is not in the
inbox, asks GitHub to deliver it again (`POST /app/hook/deliveries/{id}/attempts`): the
redelivery comes through the normal webhook path, signed, and is stored like any other.
The guid is the `X-GitHub-Delivery` the inbox is keyed by, so a redelivery of something
already stored is a harmless duplicate.

GitLab has no such log in its API. Instead, open merge requests whose head commit carries
no `changegate` status are re-checked by storing a synthetic merge request delivery in the
inbox, with a delivery id derived from the head, so repeated reconciliations of the same
head store it once.

`start_periodic` runs such a job on a daemon thread; `start_jobs(settings, forges, engine)`
starts the right ones for the configured forges (the app lifespan calls it).

One module per part: `rounds` (what every round shares), `github`, `gitlab`, `jobs`
(running them). Callers use this package.
"""

from bot.redelivery.github import redeliver_missed
from bot.redelivery.gitlab import (
    recent_gitlab_projects,
    reconcile_open_mrs,
    synthetic_mr_delivery,
)
from bot.redelivery.jobs import Jobs, Periodic, start_jobs, start_periodic
from bot.redelivery.rounds import RedeliveryReport

__all__ = [
    "Jobs",
    "Periodic",
    "RedeliveryReport",
    "reconcile_open_mrs",
    "recent_gitlab_projects",
    "redeliver_missed",
    "start_jobs",
    "start_periodic",
    "synthetic_mr_delivery",
]
