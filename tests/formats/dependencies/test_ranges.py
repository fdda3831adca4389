"""The lowest version a range admits."""

from __future__ import annotations

import pytest

from bot.formats.dependencies import lowest_admitted


@pytest.mark.parametrize(
    ("spec", "npm", "expected"),
    [
        ("^1.2.3", True, "1.2.3"),
        ("~1.2", True, "1.2.0"),
        ("1.x", True, "1.0.0"),
        ("1.2.*", True, "1.2.0"),
        (">=2 <3", True, "2.0.0"),
        (">= 2.1.0 < 3", True, "2.1.0"),
        ("1.2.3 - 2.3.4", True, "1.2.3"),
        ("^17.0.0 || ^18.0.0", True, "17.0.0"),
        (">1", True, "2.0.0"),
        (">1.2", True, "1.3.0"),
        ("v2.0.0-beta.3", True, "2.0.0-beta.3"),
        ("*", True, None),
        ("", True, None),
        ("<3", True, None),
        ("latest", True, None),
        ("^1 || *", True, None),
        ("^0.4", False, "0.4.0"),
        (">=4.2,<5.0", False, "4.2.0"),
        ("~=4.2", False, "4.2.0"),
        (">1", False, "1.0.0"),
        ("==4.2.7", False, "4.2.7"),
    ],
)
def test_lowest_admitted(spec: str, npm: bool, expected: str | None) -> None:
    assert lowest_admitted(spec, npm=npm) == expected
