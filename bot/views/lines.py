"""Which lines of a file a change touched: a patience-style line diff of old and new text.

Patience diff anchors on lines that occur exactly once on both sides, so a change that
edits one value of a compose file matches every other line as unchanged, even when many
lines look alike (`- "80:80"`, `restart: always`). Stretches without unique anchors fall
back to difflib on small regions; a region too large for that counts as touched, so a
file the diff cannot settle is judged whole, never excused.
"""

from __future__ import annotations

import bisect
import difflib
from collections.abc import Sequence

#: Past this many lines on each side, an unanchored region is not diffed line by line.
FALLBACK_LIMIT = 2_000


def touched_lines(old: str | None, new: str) -> frozenset[int]:
    """1-based numbers of the lines of `new` that are not an unchanged line of `old`
    (added or edited). With no `old` (a new file), every line is touched."""
    new_lines = new.splitlines()
    if old is None:
        return frozenset(range(1, len(new_lines) + 1))
    matched = _match(old.splitlines(), new_lines)
    return frozenset(i + 1 for i in range(len(new_lines)) if i not in matched)


def lines_changed(old: str, new: str) -> int:
    """Lines added plus lines removed between `old` and `new`, by the same diff."""
    old_lines, new_lines = old.splitlines(), new.splitlines()
    unchanged = len(_match(old_lines, new_lines))
    return (len(old_lines) - unchanged) + (len(new_lines) - unchanged)


def _match(a: Sequence[str], b: Sequence[str]) -> set[int]:
    """Indices of `b` matched to an equal line of `a`."""
    matched: set[int] = set()
    stack = [(0, len(a), 0, len(b))]
    while stack:
        a0, a1, b0, b1 = stack.pop()
        # common prefix and suffix
        while a0 < a1 and b0 < b1 and a[a0] == b[b0]:
            matched.add(b0)
            a0, b0 = a0 + 1, b0 + 1
        while a0 < a1 and b0 < b1 and a[a1 - 1] == b[b1 - 1]:
            matched.add(b1 - 1)
            a1, b1 = a1 - 1, b1 - 1
        if a0 == a1 or b0 == b1:
            continue
        anchors = _unique_common(a, a0, a1, b, b0, b1)
        if anchors:
            prev_a, prev_b = a0, b0
            for ia, ib in anchors:
                matched.add(ib)
                stack.append((prev_a, ia, prev_b, ib))
                prev_a, prev_b = ia + 1, ib + 1
            stack.append((prev_a, a1, prev_b, b1))
        elif (a1 - a0) <= FALLBACK_LIMIT and (b1 - b0) <= FALLBACK_LIMIT:
            matcher = difflib.SequenceMatcher(None, a[a0:a1], b[b0:b1], autojunk=False)
            for block in matcher.get_matching_blocks():
                matched.update(range(b0 + block.b, b0 + block.b + block.size))
    return matched


def _unique_common(
    a: Sequence[str], a0: int, a1: int, b: Sequence[str], b0: int, b1: int
) -> list[tuple[int, int]]:
    """Lines unique in both ranges, as (index in a, index in b), longest increasing run."""
    count_a: dict[str, int] = {}
    where_a: dict[str, int] = {}
    for i in range(a0, a1):
        count_a[a[i]] = count_a.get(a[i], 0) + 1
        where_a[a[i]] = i
    count_b: dict[str, int] = {}
    where_b: dict[str, int] = {}
    for j in range(b0, b1):
        count_b[b[j]] = count_b.get(b[j], 0) + 1
        where_b[b[j]] = j
    pairs = [
        (where_a[line], j)
        for line, j in sorted(where_b.items(), key=lambda kv: kv[1])
        if count_b[line] == 1 and count_a.get(line) == 1
    ]
    return _longest_increasing(pairs)


def _longest_increasing(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Patience sorting: the longest run of pairs (ordered by b) increasing in a."""
    tails: list[int] = []  # a-index of the smallest tail of each pile length
    tail_at: list[int] = []  # index into pairs of that tail
    back: list[int] = [-1] * len(pairs)
    for k, (ia, _ib) in enumerate(pairs):
        pos = bisect.bisect_left(tails, ia)
        if pos == len(tails):
            tails.append(ia)
            tail_at.append(k)
        else:
            tails[pos] = ia
            tail_at[pos] = k
        back[k] = tail_at[pos - 1] if pos else -1
    out: list[tuple[int, int]] = []
    k = tail_at[-1] if tail_at else -1
    while k != -1:
        out.append(pairs[k])
        k = back[k]
    return out[::-1]
