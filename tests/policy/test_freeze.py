"""Freeze windows (weekly and dated, in their own time zone) and deploy gate decisions
(`decide_gate`, pure: the store-backed gate is tests/approvals/test_deploys.py)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bot.policy.freeze import DAYS, FreezeWindow, GateFacts, decide_gate

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
SHA = "3333333333333333333333333333333333333333"

WEEKEND = FreezeWindow.model_validate(
    yaml.safe_load(
        """
        name: friday-evening
        timezone: Europe/Berlin
        days: [Fri]
        start: 16:00        # unquoted: YAML 1.1 reads the integer 960
        end: "08:00"
        """
    )
)
YEAR_END = FreezeWindow.model_validate(
    yaml.safe_load(
        """
        name: year-end
        timezone: America/New_York
        from: 2024-12-20
        until: 2025-01-02
        """
    )
)


def at(zone: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=zone)


@pytest.mark.parametrize(
    ("window", "when", "frozen"),
    [
        (WEEKEND, at(BERLIN, 2024, 6, 7, 15, 59), False),  # Friday, summer time (CEST)
        (WEEKEND, at(BERLIN, 2024, 6, 7, 16, 0), True),
        (WEEKEND, at(BERLIN, 2024, 6, 8, 7, 59), True),  # Saturday morning: wrapped
        (WEEKEND, at(BERLIN, 2024, 6, 8, 8, 0), False),
        (WEEKEND, at(BERLIN, 2024, 6, 6, 20, 0), False),  # Thursday evening
        (WEEKEND, at(BERLIN, 2024, 12, 6, 16, 30), True),  # Friday, winter time (CET)
        (WEEKEND, dt.datetime(2024, 12, 6, 15, 30), True),  # naive UTC: 16:30 in Berlin
        (WEEKEND, dt.datetime(2024, 6, 7, 14, 30), True),  # naive UTC: 16:30 CEST
        (WEEKEND, dt.datetime(2024, 6, 7, 13, 59), False),  # 15:59 CEST
        (YEAR_END, at(NEW_YORK, 2024, 12, 19, 23, 59), False),
        (YEAR_END, at(NEW_YORK, 2024, 12, 20, 0, 0), True),
        (YEAR_END, at(NEW_YORK, 2025, 1, 2, 23, 59), True),  # `until` date is inclusive
        (YEAR_END, at(NEW_YORK, 2025, 1, 3, 0, 0), False),
        (YEAR_END, dt.datetime(2025, 1, 3, 4, 59), True),  # naive UTC = 23:59 in New York
    ],
)
def test_contains(window: FreezeWindow, when: dt.datetime, frozen: bool) -> None:
    assert window.contains(when) is frozen


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("timezone: Mars/Olympus\ndays: [sat]", "unknown time zone"),
        ("days: [sat]\nfrom: 2024-01-01\nuntil: 2024-01-02", "either `days`"),
        ("name: nothing", "either `days`"),
        ("from: 2024-01-05\nuntil: 2024-01-01", "`until` must be after `from`"),
        ("from: 2024-01-05", "needs both"),
        ('days: [sat]\nstart: "25:00"', "not a time of day"),
        ('days: [sat]\nstart: "9:30"\nend: "9:30"', "empty"),
        ("days: [caturday]", "days"),
        ("days: [sat]\nstart: 9:30\nwhen: always", "Extra inputs"),
    ],
)
def test_bad_windows_are_refused(text: str, error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        FreezeWindow.model_validate(yaml.safe_load(text))


@pytest.mark.parametrize(
    ("written", "minutes"),
    [('"08:00"', 480), ("18:00", 1080), ("9:30", 570), ("18:30:00", 1110), ('"24:00"', 1440)],
)
def test_times_as_yaml_reads_them(written: str, minutes: int) -> None:
    window = FreezeWindow.model_validate(yaml.safe_load(f"days: [mon]\nend: {written}"))
    assert window.end == minutes


@settings(max_examples=200, deadline=None)
@given(
    days=st.sets(st.sampled_from(DAYS), min_size=1),
    start=st.integers(1, 1439),
    length=st.integers(1, 1438),
    instant=st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 12, 31)),
)
def test_wrapping_window_is_evening_plus_next_morning(
    days: set[str], start: int, length: int, instant: dt.datetime
) -> None:
    """A window past midnight is the same as the evening of each day plus the next morning."""
    end = (start + length) % 1440
    if end == 0 or end >= start:
        return

    def window(on: list[str], start: int, end: int) -> FreezeWindow:
        return FreezeWindow.model_validate(
            {"days": on, "start": start, "end": end, "timezone": "Europe/Berlin"}
        )

    wrapped = window(sorted(days), start, end)
    evening = window(sorted(days), start, 1440)
    morning = window(sorted(DAYS[(DAYS.index(d) + 1) % 7] for d in days), 0, end)
    assert wrapped.contains(instant) == (evening.contains(instant) or morning.contains(instant))


NOW = dt.datetime(2024, 6, 5, 10, 0)  # a Wednesday


@pytest.mark.parametrize(
    ("kwargs", "state", "says"),
    [
        ({"verdict": "pass", "granted": ("alice",)}, "approved", "approved by alice"),
        ({"verdict": "pass", "granted": ()}, "pending", "waiting for 1 more approval"),
        ({"verdict": "fail", "granted": ()}, "pending", "merged with changegate fail"),
        ({"verdict": None, "granted": ()}, "pending", "never checked"),
        (
            {"verdict": "approval_required", "granted": ("carol",)},
            "approved",
            "merged with changegate approval required",
        ),
        ({"verdict": "pass", "granted": ("alice",), "freeze": [YEAR_END]}, "approved", "alice"),
        (
            {
                "verdict": "pass",
                "granted": ("alice",),
                "freeze": [WEEKEND],
                "now": at(BERLIN, 2024, 6, 7, 17, 0),
            },
            "rejected",
            "freeze window friday-evening (Fri 16:00-08:00 Europe/Berlin)",
        ),
        (
            {"verdict": "pass", "granted": (), "rejected_by": ("<@U0ALICE>", "not today")},
            "rejected",
            "Rejected by <@U0ALICE>: not today",
        ),
    ],
)
def test_decide_gate(kwargs: dict, state: str, says: str) -> None:
    args = {
        "environment": "production",
        "sha": SHA,
        "freeze": [],
        "required": 1,
        "group": "senior",
        "now": NOW,
        **kwargs,
    }
    decision = decide_gate(GateFacts(**args))
    assert decision.state == state
    assert says in decision.comment
