"""What `major` means for a version."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.formats.dependencies import Dep, Ecosystem


@pytest.mark.parametrize(
    ("version", "eco", "key"),
    [
        ("4.2.7", Ecosystem.PYTHON, (0, 4)),
        ("1!2.0", Ecosystem.PYTHON, (1, 2)),
        ("0.4.1", Ecosystem.RUST, (0, 0, 4)),
        ("0.0.3", Ecosystem.JAVASCRIPT, (0, 0, 0, 3)),
        ("v0.0.0-20231006140011-7918f672742d", Ecosystem.GO, (0, 0, 0, 0)),
        ("v24.0.7+incompatible", Ecosystem.GO, (0, 24)),
        ("7.0.8.1", Ecosystem.RUBY, (0, 7)),
    ],
)
def test_major_key(version: str, eco: Ecosystem, key: tuple[int, ...]) -> None:
    assert Dep("x", version, 1, eco).major_key == key


versions = st.tuples(*(st.integers(0, 30),) * 3)


@given(versions, versions)
def test_major_key_orders_like_caret_ranges(old: tuple[int, ...], new: tuple[int, ...]) -> None:
    """Keys differ exactly when npm's `^old` would not admit `new` (or vice versa)."""
    a = Dep("x", ".".join(map(str, old)), 1, Ecosystem.JAVASCRIPT)
    b = Dep("x", ".".join(map(str, new)), 1, Ecosystem.JAVASCRIPT)

    def caret_admits(low: tuple[int, ...], v: tuple[int, ...]) -> bool:
        if v < low:
            return False
        first = next((i for i, p in enumerate(low) if p), 2)
        return v[: first + 1] == low[: first + 1]

    lo, hi = sorted([old, new])
    assert (a.major_key == b.major_key) == caret_admits(lo, hi)
