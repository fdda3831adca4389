"""`changegate policy simulate`: replay recent changes against a candidate policy.

Before a policy change goes live, an admin wants to know which pull requests it would
have blocked or let through. Each subject evaluated since the given time is evaluated
again, at the head commit it was judged on, through the same forge views the server
uses, under the candidate policy; the result is compared with the stored verdict.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot import store
from bot.change import Change
from bot.forges import Forge
from bot.governor.policy import effective_policy
from bot.policy.evaluate import evaluate
from bot.policy.schema import Policy


@dataclass(frozen=True)
class Replay:
    subject: str
    head: str
    was: str  # the stored decision
    would_be: str | None  # None when the change could not be replayed
    added: tuple[str, ...] = ()  # findings only the candidate gives ("rule path:line")
    removed: tuple[str, ...] = ()  # findings only the stored verdict had
    note: str = ""

    @property
    def changed(self) -> bool:
        return self.would_be is not None and self.would_be != self.was


def latest_evaluations(engine: Engine, since: dt.datetime) -> list[dict[str, Any]]:
    """The newest stored evaluation of every subject evaluated since `since`."""
    ev = store.evaluations
    newest = (
        sa.select(ev.c.subject, sa.func.max(ev.c.id).label("id"))
        .where(ev.c.created_at >= since.astimezone(dt.UTC).replace(tzinfo=None))
        .group_by(ev.c.subject)
        .subquery()
    )
    query = sa.select(ev).join(newest, ev.c.id == newest.c.id).order_by(ev.c.subject)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def simulate(
    engine: Engine, forges: Mapping[str, Forge], candidate: Policy, since: dt.datetime
) -> list[Replay]:
    replays = []
    for row in latest_evaluations(engine, since):
        forge = forges.get(row["forge"])
        if forge is None:
            replays.append(_skipped(row, f"{row['forge']} is not configured here"))
            continue
        change = _change_of(forge, row)
        if change is None:
            replays.append(_skipped(row, "the pull request is gone"))
            continue
        policy = effective_policy(candidate, forge, change)  # as the server would govern it
        verdict = evaluate(policy, forge.view(change), forge.approvals(change))
        before = {_key(f) for f in row["verdict"].get("findings", [])}
        after = {_key(f.as_dict()) for f in verdict.findings}
        replays.append(
            Replay(
                subject=row["subject"],
                head=row["head_sha"],
                was=row["decision"],
                would_be=str(verdict.decision),
                added=tuple(sorted(after - before)),
                removed=tuple(sorted(before - after)),
                note="Slack approvals are not replayed" if verdict.missing_approvals else "",
            )
        )
    return replays


def _change_of(forge: Forge, row: dict[str, Any]) -> Change | None:
    """The change as judged: description and author from the forge, commits as stored."""
    base = Change(
        repo=row["repo"],
        base=row["base_sha"],
        head=row["head_sha"],
        forge=row["forge"],
        number=row["number"],
    )
    if row["number"] is None:
        return base  # a push: no description to fetch
    work = forge.change_work(row["repo"], int(row["number"]))
    if work.change is None:
        return None
    return dataclasses.replace(work.change, base=row["base_sha"], head=row["head_sha"])


def _skipped(row: dict[str, Any], why: str) -> Replay:
    return Replay(row["subject"], row["head_sha"], row["decision"], None, note=why)


def _key(finding: Mapping[str, Any]) -> str:
    where = f"{finding['path']}:{finding['line']}" if finding.get("line") else finding["path"]
    return f"{finding['rule']} {where}"


def render(replays: list[Replay]) -> str:
    lines = []
    for r in replays:
        if r.would_be is None:
            lines.append(f"  skipped   {r.subject} @ {r.head[:12]}: {r.note}")
            continue
        mark = "CHANGES" if r.changed else "same   "
        lines.append(f"  {mark}   {r.subject} @ {r.head[:12]}: {r.was} -> {r.would_be}")
        lines += [f"              + {f}" for f in r.added]
        lines += [f"              - {f}" for f in r.removed]
        if r.note:
            lines.append(f"              ({r.note})")
    changed = sum(r.changed for r in replays)
    lines.append(f"{len(replays)} changes replayed; {changed} verdicts would change")
    return "\n".join(lines)
