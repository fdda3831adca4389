"""Observability: Prometheus metrics and JSON log lines that carry the delivery id.

Metrics live in one registry of their own (not prometheus-client's global one), created
once at import: counters are process-wide by nature, and several apps in one test process
must not register them twice. Queue depth and age come from the database at scrape time,
so every `serve` replica reports the shared queue.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

RECEIVED = Counter(
    "changegate_deliveries_received",
    "Webhook deliveries stored in the inbox.",
    ["forge", "event"],
    registry=REGISTRY,
)
DUPLICATES = Counter(
    "changegate_deliveries_duplicate",
    "Deliveries answered but not stored again (delivery id seen before).",
    ["forge"],
    registry=REGISTRY,
)
REJECTED = Counter(
    "changegate_webhooks_rejected",
    "Webhook requests refused before storing, by reason.",
    ["forge", "reason"],
    registry=REGISTRY,
)
PROCESSED = Counter(
    "changegate_deliveries_processed",
    "Deliveries a worker finished, by outcome (done, ignored).",
    ["forge", "event", "outcome"],
    registry=REGISTRY,
)
FAILED = Counter(
    "changegate_deliveries_failed",
    "Failed processing attempts (each will be retried or dead-lettered).",
    ["forge", "event"],
    registry=REGISTRY,
)
DEAD = Counter(
    "changegate_deliveries_dead",
    "Deliveries dead-lettered after their last attempt.",
    ["forge", "event"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "changegate_processing_seconds",
    "Time a worker spent on one delivery.",
    ["forge", "event"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
    registry=REGISTRY,
)
STORE_BATCH = Histogram(
    "changegate_inbox_store_batch_size",
    "Deliveries written by one commit of the ack path (group commit).",
    buckets=(1, 2, 4, 8, 16, 32, 64),
    registry=REGISTRY,
)
STORE_SECONDS = Histogram(
    "changegate_inbox_store_seconds",
    "One group commit of the ack path: waiting for the write lock, insert, commit.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "changegate_queue_depth",
    "Deliveries in the inbox by state (from the database at scrape time).",
    ["state"],
    registry=REGISTRY,
)
QUEUE_AGE = Gauge(
    "changegate_queue_oldest_age_seconds",
    "Age of the oldest delivery still waiting or being processed.",
    registry=REGISTRY,
)
POLICY_LOADED = Gauge(
    "changegate_policy_loaded",
    "1 when the admin policy is loaded and the last reload succeeded, else 0.",
    registry=REGISTRY,
)
POLICY_RELOADS = Counter(
    "changegate_policy_reloads",
    "Admin policy reloads, by result (ok, error).",
    ["result"],
    registry=REGISTRY,
)
STALE_SKIPPED = Counter(
    "changegate_stale_deliveries",
    "Deliveries skipped because a newer head commit was already evaluated.",
    ["forge"],
    registry=REGISTRY,
)
VERDICTS = Counter(
    "changegate_verdicts",
    "Verdicts published, by decision.",
    ["forge", "decision"],
    registry=REGISTRY,
)
# For the forges: API calls made and the rate limit they last reported.
FORGE_API_CALLS = Counter(
    "changegate_forge_api_calls",
    "Forge API requests, by forge and status class.",
    ["forge", "status"],
    registry=REGISTRY,
)
FORGE_RATE_REMAINING = Gauge(
    "changegate_forge_rate_limit_remaining",
    "Remaining forge API rate limit, as last reported.",
    ["forge"],
    registry=REGISTRY,
)
APPROVALS_PENDING = Gauge(
    "changegate_approvals_pending",
    "Approval requests still open.",
    registry=REGISTRY,
)


# -- logs ---------------------------------------------------------------------------------

delivery_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "changegate_delivery", default=None
)


@contextlib.contextmanager
def delivery_context(delivery_key: str | None) -> Iterator[None]:
    """Every log line inside carries this delivery id."""
    token = delivery_var.set(delivery_key)
    try:
        yield
    finally:
        delivery_var.reset(token)


_RESERVED = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, delivery, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        delivery = getattr(record, "delivery", None) or delivery_var.get()
        if delivery:
            out["delivery"] = delivery
        for key, value in vars(record).items():
            if key not in _RESERVED and key != "delivery" and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(level: int | str = logging.INFO) -> None:
    """Send every logger (ours, uvicorn's, alembic's) to stdout as JSON lines."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
