"""Deploy gates, the pure part: freeze windows, break-glass settings, the gate decision.

`FreezeWindow` is `deploys.<environment>.freeze` in the policy (`DeployGate.freeze`) and
`BreakGlassSettings` is its `break_glass:` (`Policy.break_glass`); `decide_gate` turns
what `bot.approvals.deploys.gate_deploy` gathered from the store into the forge's answer
(approved, rejected, or pending for now). In a policy:

```yaml
deploys:
  production:
    approvers: senior
    freeze:
      - name: weekend
        timezone: Europe/Berlin
        days: [fri]            # weekly: from Friday 16:00 ...
        start: "16:00"
        end: "08:00"           # ... to Saturday 08:00 (an end before the start wraps)
      - name: year-end
        timezone: America/New_York
        from: 2024-12-20       # dated: a date (from midnight) or a local date-time
        until: 2025-01-02      # a date includes that whole day
break_glass:
  group: emergency
  retro_review_within: 24h
```

Times are read in the window's own time zone (zoneinfo), so a window means the same wall
clock hours in summer and winter.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, WithJsonSchema, field_validator, model_validator

from bot.durations import parse_duration
from bot.rules.strict import StrictModel

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_TIME = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")
MINUTES_PER_DAY = 24 * 60
#: stored as minutes since midnight, written as "HH:MM"
TimeOfDay = Annotated[
    int, WithJsonSchema({"type": "string", "pattern": r"^\d{1,2}:\d{2}$", "examples": ["18:00"]})
]


def _minutes(value: Any) -> int:
    """Minutes since midnight from "HH:MM" ("24:00" is the end of the day).

    YAML 1.1 reads an unquoted `18:00` as the base-60 integer 1080 (but `08:00` as a
    string), and `18:00:00` as 64800: both are taken back to the time that was written.
    """
    if isinstance(value, bool):
        raise ValueError(f'not a time of day: {value!r}; write it like "18:00"')
    if isinstance(value, int):
        if 0 <= value <= MINUTES_PER_DAY:  # H:MM read as minutes
            return value
        if value % 60 == 0 and value <= MINUTES_PER_DAY * 60:  # H:MM:SS read as seconds
            return value // 60
        raise ValueError(f'not a time of day: {value!r}; write it like "18:00"')
    if isinstance(value, dt.time):
        return value.hour * 60 + value.minute
    match = _TIME.match(str(value))
    if not match:
        raise ValueError(f'not a time of day: {value!r}; write it like "18:00"')
    hours, minutes = int(match.group(1)), int(match.group(2))
    total = hours * 60 + minutes
    if minutes > 59 or total > MINUTES_PER_DAY:
        raise ValueError(f"not a time of day: {value!r}")
    return total


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


#: a date (`2024-12-20`) or a local date-time (`2024-12-20T18:00`), in the window's zone
LocalMoment = Annotated[
    dt.datetime,
    WithJsonSchema(
        {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]}
    ),
]


class FreezeWindow(StrictModel):
    """A weekly window (`days`, `start`, `end`) or a dated period (`from`, `until`)."""

    name: str = Field(default="freeze", description="Shown in the gate's comment.")
    timezone: str = Field(default="UTC", description="IANA zone the times are read in.")
    days: list[Weekday] = Field(default_factory=list, description="Weekly: days it starts on.")
    start: TimeOfDay = Field(
        default="00:00", validate_default=True, description='Weekly: start time, "HH:MM".'
    )
    end: TimeOfDay = Field(
        default="24:00", validate_default=True, description="Weekly: end; before start wraps."
    )
    from_: LocalMoment | None = Field(default=None, alias="from", description="Dated: start.")
    until: LocalMoment | None = Field(default=None, description="Dated: end; a date is inclusive.")

    model_config = {**StrictModel.model_config, "populate_by_name": True}

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("start", "end", mode="before")
    @classmethod
    def _time_of_day(cls, value: Any) -> int:
        return _minutes(value)

    @field_validator("days", mode="before")
    @classmethod
    def _lower_days(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        return [str(d).strip().lower()[:3] for d in value] if isinstance(value, list) else value

    @field_validator("from_", mode="before")
    @classmethod
    def _from_date(cls, value: Any) -> Any:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return dt.datetime.combine(value, dt.time())
        return value

    @field_validator("until", mode="before")
    @classmethod
    def _until_date(cls, value: Any) -> Any:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return dt.datetime.combine(value + dt.timedelta(days=1), dt.time())
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            return cls._until_date(dt.date.fromisoformat(value.strip()))
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> FreezeWindow:
        weekly, dated = bool(self.days), self.from_ is not None or self.until is not None
        if weekly == dated:
            raise ValueError("a freeze window has either `days` (weekly) or `from`/`until`")
        if dated:
            if self.from_ is None or self.until is None:
                raise ValueError("a dated freeze window needs both `from` and `until`")
            if self.from_.tzinfo is not None or self.until.tzinfo is not None:
                raise ValueError("write local times; the zone comes from `timezone`")
            if self.until <= self.from_:
                raise ValueError("`until` must be after `from`")
        elif self.start == self.end:
            raise ValueError("`start` and `end` are equal: the window is empty")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def contains(self, when: dt.datetime) -> bool:
        """Is the instant `when` (aware, or naive UTC) inside this window?"""
        local = _aware(when).astimezone(self.zone)
        if self.from_ is not None and self.until is not None:
            start = self.from_.replace(tzinfo=self.zone)
            end = self.until.replace(tzinfo=self.zone)
            return start <= local < end
        minute = local.hour * 60 + local.minute
        today = DAYS[local.weekday()]
        yesterday = DAYS[(local.weekday() - 1) % 7]
        if self.start < self.end:
            return today in self.days and self.start <= minute < self.end
        # wraps past midnight: the evening of a listed day, or the morning after it
        return (today in self.days and minute >= self.start) or (
            yesterday in self.days and minute < self.end
        )

    def describe(self) -> str:
        if self.from_ is not None and self.until is not None:
            return (
                f"{self.name} ({self.from_:%Y-%m-%d %H:%M} to {self.until:%Y-%m-%d %H:%M} "
                f"{self.timezone})"
            )
        days = ", ".join(d.capitalize() for d in self.days)
        return f"{self.name} ({days} {_clock(self.start)}-{_clock(self.end)} {self.timezone})"


class BreakGlassSettings(StrictModel):
    """Who may override a gate in an emergency, and how soon it must be reviewed."""

    group: str = Field(default="emergency", description="Group whose members may break glass.")
    retro_review_within: str = Field(
        default="24h", description="A retro-review must be approved within this, or escalates."
    )
    min_reason_length: int = Field(default=10, ge=1, description="A written reason, not 'x'.")

    @field_validator("retro_review_within")
    @classmethod
    def _valid_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def retro_review_delta(self) -> dt.timedelta:
        return parse_duration(self.retro_review_within)


def _aware(when: dt.datetime) -> dt.datetime:
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when


def active_freeze(windows: list[FreezeWindow], when: dt.datetime) -> FreezeWindow | None:
    return next((w for w in windows if w.contains(when)), None)


GateState = Literal["approved", "rejected", "pending"]


@dataclass(frozen=True)
class GateDecision:
    """What the forge is told: GitHub's `state` (pending means: do not answer yet)."""

    state: GateState
    comment: str


@dataclass(frozen=True)
class BreakGlassInfo:
    actor: str
    reason: str
    retro_due: dt.datetime | None = None


@dataclass(frozen=True)
class GateFacts:
    """What a deploy gate decides on: the deploy, its freeze windows, the approvals that
    count (`granted` of `required`, from `group`), a reject in Slack, a break-glass."""

    environment: str
    sha: str
    verdict: str | None
    freeze: list[FreezeWindow]
    granted: tuple[str, ...]
    required: int
    group: str
    now: dt.datetime
    rejected_by: tuple[str, str] | None = None
    break_glass: BreakGlassInfo | None = None


def decide_gate(facts: GateFacts) -> GateDecision:
    """Decide a deploy of `facts.sha` to `facts.environment`.

    Order matters: break-glass overrides everything; a freeze window rejects; a reject in
    Slack rejects; then the approvals decide. `verdict` is the SHA's last changegate
    decision ("pass", "fail", "approval_required", or None when never evaluated): a deploy
    of a SHA that bypassed a failing or unapproved check still needs approval now, and the
    comment says so.
    """
    short = facts.sha[:12]
    glass = facts.break_glass
    if glass is not None:
        due = (
            f"; retro-review due {glass.retro_due:%Y-%m-%d %H:%M} UTC" if (glass.retro_due) else ""
        )
        return GateDecision(
            "approved",
            f"Break-glass by {glass.actor}: {glass.reason}{due}",
        )
    window = active_freeze(facts.freeze, facts.now)
    if window is not None:
        return GateDecision(
            "rejected",
            f"Deploy of {short} to {facts.environment} falls in freeze window {window.describe()}; "
            "only break-glass can override it.",
        )
    if facts.rejected_by is not None:
        who, reason = facts.rejected_by
        return GateDecision(
            "rejected", f"Rejected by {who}: {reason}" if reason else f"Rejected by {who}."
        )
    verdict = facts.verdict
    if verdict == "pass":
        why = "changegate passed"
    elif verdict is None:
        why = f"{short} has no changegate verdict (it was never checked)"
    else:
        why = f"{short} was merged with changegate {verdict.replace('_', ' ')}"
    granted, required, group = facts.granted, facts.required, facts.group
    if len(granted) >= required:
        return GateDecision(
            "approved",
            f"{why}; approved by {', '.join(granted)} ({group}, {len(granted)}/{required}).",
        )
    return GateDecision(
        "pending",
        f"{why}; waiting for {required - len(granted)} more approval(s) from {group} "
        f"({len(granted)}/{required}).",
    )
