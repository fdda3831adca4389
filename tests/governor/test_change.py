"""bot/governor/change.py: a change judged, its check published and stored, its approval
requests kept in line with the verdict, a Slack decision deciding the check."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot import inbox, store
from bot.approvals.break_glass import BreakGlass, break_glass
from bot.approvals.models import RequestState
from bot.change import Decision
from bot.forges import Delivery
from bot.governor import Governor
from bot.governor.deploy import last_verdict
from bot.policy.schema import BreakGlassSettings

from .conftest import HEAD, REPO, NotedForge, pull, requests
from standins.slack import SlackStandin

T0 = dt.datetime(2026, 1, 5, 9, 0)


def test_a_change_is_judged_published_and_stored(
    quiet: Governor, forge: NotedForge, engine: Engine
) -> None:
    handled = quiet.changes.handle(pull(forge), forge, received_at=T0, delivery_key="github:d")
    assert handled.status == "published" and handled.decision == "approval_required"
    assert handled.details_url is not None
    assert handled.details_url.startswith("https://cg.example.com/v/")
    assert forge.started == [(HEAD, handled.details_url)]
    assert forge.last.verdict.decision is Decision.APPROVAL_REQUIRED
    assert forge.last.details_url == handled.details_url and forge.notes == [None]
    assert last_verdict(engine, "github", REPO, HEAD) == "approval_required"
    assert requests(engine) == []  # Slack off: nothing is asked in Slack


def test_an_older_head_arriving_late_is_stale_and_ignored(
    quiet: Governor, forge: NotedForge
) -> None:
    newer = pull(forge, head="b" * 40)
    older = pull(forge, head="c" * 40)
    assert quiet.changes.handle(newer, forge, received_at=T0).status == "published"
    late = quiet.changes.handle(older, forge, received_at=T0 - dt.timedelta(seconds=5))
    assert late.status == "stale" and "superseded" in late.reason
    assert [p.change.head for p in forge.published] == ["b" * 40]


def test_the_workers_evaluate_action_records_stale_work_as_ignored(
    quiet: Governor, forge: NotedForge, engine: Engine
) -> None:
    item_delivery = Delivery(id="late", forge="github", event="pull_request", body=b"{}")
    assert inbox.store(engine, item_delivery, f"github:{REPO}#7")
    [item] = inbox.claim(engine, "w", limit=1, lease=60)
    later = item.received_at + dt.timedelta(seconds=1)
    assert quiet.changes.handle(pull(forge, head="d" * 40), forge, received_at=later).status == (
        "published"
    )
    state, note = quiet.changes.action(pull(forge, head="e" * 40), forge, item)
    assert state == inbox.IGNORED and note is not None and "superseded" in note


def test_missing_approvals_are_asked_in_slack_once(
    parts: Governor, forge: NotedForge, engine: Engine, slack: SlackStandin
) -> None:
    parts.changes.handle(pull(forge), forge, received_at=T0)
    [request] = requests(engine)
    assert (request.group_name, request.sha, request.state) == ("senior", HEAD, "pending")
    [posted] = slack.calls_of("chat.postMessage")
    assert posted.args["channel"] == "C0APPROVALS"
    assert parts.changes.recheck("github", REPO, 7, None) == "published approval_required"
    assert len(slack.calls_of("chat.postMessage")) == 1  # asked once, not per evaluation


def test_a_break_glass_in_slack_passes_the_check_and_says_so(
    parts: Governor, forge: NotedForge, engine: Engine
) -> None:
    parts.changes.handle(pull(forge), forge, received_at=T0)
    with Session(engine) as session:
        glass = break_glass(
            session,
            parts.holder.policy,
            BreakGlass(
                subject=f"github:{REPO}#7",
                sha=HEAD,
                actor=("slack", "U0OPS"),
                reason="prod is down",
            ),
            settings=BreakGlassSettings(group="emergency"),
        )
        session.commit()
    assert glass.accepted, glass.message
    assert parts.changes.recheck("github", REPO, 7, "slack:x") == "published pass"
    assert forge.last.verdict.decision is Decision.PASS
    assert forge.notes[-1] == "Break-glass by U0OPS (slack): prod is down (retro-review pending)"
    stored = store.evaluation_by_token(engine, forge.last.details_url.rsplit("/", 1)[1])
    assert stored is not None and stored["decision"] == "pass"
    assert stored["verdict"]["note"] == forge.notes[-1]  # the details page says it too
    assert [r.state for r in requests(engine) if r.kind == "change"] == [RequestState.APPROVED]


def test_a_recheck_of_an_unknown_forge_or_pull_request_says_why(parts: Governor) -> None:
    unknown = parts.changes.recheck("gitlab", REPO, 7, None)
    assert unknown == f"forge gitlab cannot re-evaluate {REPO}#7"
    assert parts.changes.recheck("github", REPO, 99, None) == f"{REPO}#99: unknown"
