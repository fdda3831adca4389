"""The governor: the one orchestrator between the entry points and the adapters.

One module per thing it governs, all sharing the policy in force (`policy.py`) and, when
Slack is configured, the Slack side of approval requests (`messages.py`):

- `change.py`: a change's verdict, its check and its approval requests;
- `deploy.py`: deploy gates, answered now or once a decision arrives;
- `click.py`: Slack clicks and decisions, break-glass;
- `sweep.py`: time: expiry, reminders and the rechecks they call for.

`build()` makes the whole graph once, with constructor arguments, in this order (each
part only calls the ones built before it); the entry points (`bot.app`, `bot.worker`)
call it and plug `Governor.sources`, `.actions` and `.periodic` into their workers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from bot import inbox
from bot.durations import parse_duration
from bot.forges import Forge, Work
from bot.governor.change import ChangeGovernor
from bot.governor.click import Clicks
from bot.governor.deploy import DeployGates
from bot.governor.messages import SlackRequests
from bot.governor.policy import PolicyHolder
from bot.governor.routing import RECHECK_SOURCE, Result
from bot.governor.sweep import Sweep
from bot.settings import Settings

__all__ = ["Governor", "PolicyHolder", "build"]


@dataclass(frozen=True)
class Governor:
    """The governor's parts for one server or worker process. `clicks` and `sweep` exist
    only with Slack configured."""

    holder: PolicyHolder
    changes: ChangeGovernor
    gates: DeployGates
    slack: SlackRequests | None = None
    clicks: Clicks | None = None
    sweep: Sweep | None = None
    tick_seconds: float = 0.0
    #: set when the governor stores a delivery for itself (a recheck): the workers' wake-up
    doorbell: threading.Event = field(default_factory=threading.Event)

    @property
    def sources(self) -> dict[str, Callable[[inbox.Claimed], Result]]:
        """Worker handlers by delivery source: Slack clicks and the governor's rechecks."""
        if self.clicks is None or self.sweep is None:
            return {}
        return {"slack": self.clicks.handle_delivery, RECHECK_SOURCE: self.sweep.handle_recheck}

    @property
    def actions(self) -> dict[str, Callable[[Work, Forge, inbox.Claimed], Result]]:
        """Worker handlers by the action a forge parsed a delivery into."""
        return {"evaluate": self.changes.action, "deployment-gate": self.gates.handle}

    @property
    def periodic(self) -> list[tuple[float, Callable[[], Any]]]:
        """(interval, job): the expiry and reminder sweep, when Slack is on."""
        if self.sweep is None or self.tick_seconds <= 0:
            return []
        return [(self.tick_seconds, self.sweep.tick)]


def build(
    settings: Settings,
    engine: Engine,
    holder: PolicyHolder,
    forges: Mapping[str, Forge],
    *,
    on_enqueued: Callable[[], None] | None = None,
) -> Governor:
    """The governor for these settings, with a new doorbell for in-process workers to idle
    on. The governor rings it when it stores a recheck for itself, or calls `on_enqueued`
    instead (workers in other processes)."""
    doorbell = threading.Event()
    slack = SlackRequests.from_settings(settings, engine, holder)
    changes = ChangeGovernor(
        engine,
        holder,
        forges,
        public_url=settings.public_url,
        slack=slack,
        expires_after=parse_duration(settings.approval_expires_after),
    )
    gates = DeployGates(engine, holder, forges, slack)
    if slack is None:
        return Governor(holder, changes, gates, doorbell=doorbell)
    clicks = Clicks(engine, holder, forges, slack=slack, changes=changes, gates=gates)
    sweep = Sweep(
        engine, slack=slack, changes=changes, gates=gates, on_enqueued=on_enqueued or doorbell.set
    )
    return Governor(
        holder, changes, gates, slack, clicks, sweep, settings.approvals_tick_seconds, doorbell
    )
