"""The inbox's vocabulary: a delivery's states, what a worker holds, the retry backoff."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

from bot.forges import Delivery

QUEUED, PROCESSING, DONE, IGNORED, DEAD = "queued", "processing", "done", "ignored", "dead"
STATES = (QUEUED, PROCESSING, DONE, IGNORED, DEAD)

#: Headers kept with a delivery: what a forge may need later, nothing secret.
KEPT_HEADERS = frozenset(
    {
        "content-type",
        "user-agent",
        "x-github-delivery",
        "x-github-event",
        "x-github-hook-id",
        "x-github-hook-installation-target-id",
        "x-github-hook-installation-target-type",
        "x-gitlab-event",
        "x-gitlab-event-uuid",
        "x-gitlab-instance",
        "x-gitlab-webhook-uuid",
        "idempotency-key",
        "x-slack-request-timestamp",
    }
)


@dataclass(frozen=True)
class Claimed:
    """A leased delivery: what the worker processes, and how to find it again."""

    key: str  # the inbox primary key, `forge:delivery-id`
    delivery: Delivery
    subject: str
    attempts: int  # including this one
    received_at: dt.datetime


@dataclass(frozen=True)
class Backoff:
    """Delay before retry n (1-based): base * 2**(n-1), capped, with "equal jitter"."""

    base_seconds: float = 2.0
    max_seconds: float = 600.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        full = min(self.max_seconds, self.base_seconds * (2 ** max(0, attempt - 1)))
        return full / 2 + (rng or random).uniform(0, full / 2)


def key_of(forge: str, delivery_id: str) -> str:
    return f"{forge}:{delivery_id}"


def keep_headers(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower() in KEPT_HEADERS}
