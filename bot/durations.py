"""Durations as a policy or the server's settings write them: `30m`, `4h`, `1d12h`."""

from __future__ import annotations

import datetime as dt
import re

_DURATION = re.compile(
    r"^\s*(?:(\d+)\s*w)?\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*$"
)


def parse_duration(value: str | int | dt.timedelta) -> dt.timedelta:
    """`4h`, `30m`, `1d12h`, or seconds as a number."""
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, int):
        return dt.timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if not match or not any(match.groups()):
        raise ValueError(f"bad duration {value!r}: write it like 30m, 4h or 2d")
    weeks, days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return dt.timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
