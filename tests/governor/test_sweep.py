"""bot/governor/sweep.py: reminders, expiry, and the recheck an expiry enqueues for the
workers (serialized with the pull request's own deliveries, waking idle workers)."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy.engine import Engine

from bot import inbox, store
from bot.forges import Delivery
from bot.governor import Governor
from bot.governor.routing import RECHECK_SOURCE

from .conftest import REPO, NotedForge, claimed, pull, requests
from standins.slack import SlackStandin


def test_an_expired_request_is_updated_in_slack_and_its_change_rechecked(
    parts: Governor, forge: NotedForge, engine: Engine, slack: SlackStandin
) -> None:
    assert parts.sweep is not None
    parts.changes.handle(pull(forge), forge, received_at=store.utcnow())
    now = store.utcnow()
    assert parts.sweep.tick(now + dt.timedelta(hours=71, minutes=30)) == (0, 1)  # a reminder
    assert not parts.doorbell.is_set()
    assert parts.sweep.tick(now + dt.timedelta(hours=73)) == (1, 0)  # then expiry
    assert [r.state for r in requests(engine)] == ["expired"]
    assert slack.calls_of("chat.update"), "the request message says it expired"
    assert parts.doorbell.is_set()  # idle workers are woken for the recheck
    [item] = inbox.claim(engine, "w", limit=1, lease=60)
    assert item.delivery.forge == RECHECK_SOURCE and item.subject == f"github:{REPO}#7"
    assert parts.sweep.handle_recheck(item) == (inbox.DONE, "published approval_required")
    assert len(forge.published) == 2


def test_an_unknown_recheck_is_ignored(parts: Governor, engine: Engine) -> None:
    assert parts.sweep is not None
    body = json.dumps({"kind": "mystery"}).encode()
    delivery = Delivery(id="r-1", forge=RECHECK_SOURCE, event="recheck", body=body)
    item = claimed(engine, delivery, "x")
    assert parts.sweep.handle_recheck(item) == (inbox.IGNORED, "unknown recheck 'mystery'")


def test_without_slack_there_is_nothing_to_sweep(quiet: Governor) -> None:
    assert quiet.sweep is None and quiet.clicks is None
    assert quiet.periodic == [] and quiet.sources == {}
    assert set(quiet.actions) == {"evaluate", "deployment-gate"}
