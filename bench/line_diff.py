"""The cost of judging what a change did (issue 15.3): the line diff that tells findings on
touched lines from those already present, against judging the whole file.

    python bench/line_diff.py [--services 5000] [--repeat 5]

One compose file with N services, every one on `:latest` (N findings), and a change that
edits one environment value. It times `evaluate` with the rule's default `scope: change`
(the file is diffed, all N findings marked preexisting) and with `scope: file` (no diff),
alternating, fresh views each run, the cycle collector off as in `check`, and prints the medians and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bot.cli.check import without_cycle_collection
from bot.policy.evaluate import evaluate
from bot.policy.schema import load_policy_text
from bot.views.memory import MemoryView

POLICY = (
    "version: 1\nrules:\n  - {{id: pinned, kind: unpinned-image, action: block, scope: {scope}}}\n"
)


def compose(services: int, edited: int | None) -> str:
    out = ["services:"]
    for i in range(services):
        value = "new" if i == edited else "old"
        out += [
            f"  web{i}:",
            "    image: nginx:latest",
            "    environment:",
            f"      TOKEN: {value}",
        ]
    return "\n".join(out) + "\n"


def run(scope: str, base: str, head: str) -> tuple[float, int]:
    policy = load_policy_text(POLICY.format(scope=scope), "bench.yml")
    view = MemoryView({"compose.yaml": head}, {"compose.yaml": base})
    start = time.perf_counter()
    with without_cycle_collection():  # as `check` runs
        verdict = evaluate(policy, view)
    return time.perf_counter() - start, sum(f.preexisting for f in verdict.findings)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    base = compose(args.services, None)
    head = compose(args.services, args.services // 2)
    times: dict[str, list[float]] = {"change": [], "file": []}
    marked: dict[str, int] = {}
    for _ in range(args.repeat):
        for scope in ("change", "file"):
            took, before = run(scope, base, head)
            times[scope].append(took)
            marked[scope] = before
    lines = head.count("\n")
    for scope in ("change", "file"):
        print(
            f"scope: {scope:<6} {statistics.median(times[scope]):.3f} s median of {args.repeat}"
            f" — {lines} lines, {args.services} findings, {marked[scope]} preexisting"
        )
    ratio = statistics.median(times["change"]) / statistics.median(times["file"])
    print(f"ratio change / file: {ratio:.2f}x")


if __name__ == "__main__":
    main()
