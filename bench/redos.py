"""Policy regexes and globs: Python's backtracking `re` (the old engine) vs RE2 (now).

    python bench/redos.py [--budget 5]

For the evil link pattern `(x+x+)+y` and the evil glob `*a*a*a*a*a*a*b`, it times one
match on inputs of growing length with both engines, side by side (globs: pathspec's
pure-Python `simple` backend, what runs when RE2 is not installed, vs its `re2` backend). The old engine's time
roughly doubles per character; it is stopped once a run exceeds --budget seconds (longer
inputs would take minutes, then hours). RE2's time is linear in the input.
"""

from __future__ import annotations

import argparse
import re
import time

import pathspec

from bot.rules.linear_regex import compile_globs, compile_regex

EVIL_REGEX = "(x+x+)+y"
EVIL_GLOB = "*a*a*a*a*a*a*b"


def _time(run: object) -> float:
    start = time.perf_counter()
    run()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=5.0, help="stop the old engine past this")
    args = parser.parse_args()

    print(f"link_pattern /{EVIL_REGEX}/ on a description of n x's (one search)")
    print(f"{'n':>6} {'re (old)':>12} {'RE2 (new)':>12}")
    old_regex, new_regex = re.compile(EVIL_REGEX), compile_regex(EVIL_REGEX)
    old_done = False
    for n in (16, 18, 20, 22, 24, 26, 40, 65_536):
        text = "x" * n
        old = "-" if old_done else f"{_time(lambda t=text: old_regex.search(t)):.4f}s"
        old_done = old_done or (old != "-" and float(old[:-1]) > args.budget)
        new = _time(lambda t=text: list(new_regex.finditer(t)))
        print(f"{n:>6} {old:>12} {new:>11.6f}s")

    print(f"\nglob `{EVIL_GLOB}` on a path of n a's (one match)")
    print(f"{'n':>6} {'re (old)':>12} {'RE2 (new)':>12}")
    old_spec = pathspec.PathSpec.from_lines("gitignore", [EVIL_GLOB], backend="simple")
    new_spec = compile_globs([EVIL_GLOB])
    old_done = False
    for n in (30, 40, 50, 60, 70, 4096):
        path = "x/" + "a" * n
        old = "-" if old_done else f"{_time(lambda p=path: old_spec.match_file(p)):.4f}s"
        old_done = old_done or (old != "-" and float(old[:-1]) > args.budget)
        new = _time(lambda p=path: new_spec.match_file(p))
        print(f"{n:>6} {old:>12} {new:>11.6f}s")


if __name__ == "__main__":
    main()
