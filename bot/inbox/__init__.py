"""The durable inbox: deliveries stored before they are answered, then claimed by workers.

A delivery goes `queued -> processing -> done | ignored`, or back to `queued` with an
exponential, jittered backoff when processing fails, and to `dead` after a bounded number
of attempts (re-queued by `changegate` CLI). A claim is a lease: a worker that dies keeps
nothing, since an expired lease makes the delivery claimable again.

Two deliveries with the same subject (one pull request) are never leased at once. Claims
are serialized so that this check is exact: on SQLite by the single writer (transactions
begin IMMEDIATE), on PostgreSQL by a transaction-scoped advisory lock taken before the
claim query reads, plus `FOR UPDATE SKIP LOCKED` so a claim never waits on rows that
other workers are completing. A claim is one short statement pair, so serializing it
costs little next to the work it hands out.

One module per side: `states` (the vocabulary), `intake` (the ack path's insert),
`writer` (group commit), `leases` (the workers' claims and outcomes), `admin` (re-queue,
stats, one row). Callers use this package: `inbox.claim(...)`, `inbox.Writer(...)`.
"""

from bot.inbox.admin import QueueStats, get, requeue_dead, stats
from bot.inbox.intake import store, store_many
from bot.inbox.leases import claim, complete, extend, fail, release
from bot.inbox.states import (
    DEAD,
    DONE,
    IGNORED,
    KEPT_HEADERS,
    PROCESSING,
    QUEUED,
    STATES,
    Backoff,
    Claimed,
    keep_headers,
    key_of,
)
from bot.inbox.writer import Writer

__all__ = [
    "DEAD",
    "DONE",
    "IGNORED",
    "KEPT_HEADERS",
    "PROCESSING",
    "QUEUED",
    "STATES",
    "Backoff",
    "Claimed",
    "QueueStats",
    "Writer",
    "claim",
    "complete",
    "extend",
    "fail",
    "get",
    "keep_headers",
    "key_of",
    "release",
    "requeue_dead",
    "stats",
    "store",
    "store_many",
]
