"""Renderers of a Verdict: text for people, JSON for scripts, SARIF for code scanning,
markdown for check-run summaries and merge-request notes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from itertools import groupby
from typing import Any

from bot.change import Action, ApprovalStatus, Decision, Finding, Verdict

try:
    from importlib.metadata import version as _version

    VERSION = _version("changegate")
except Exception:  # noqa: BLE001 - running from a source tree
    VERSION = "0.0.0"

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"

_HEADLINE = {
    Decision.PASS: "pass",
    Decision.FAIL: "fail",
    Decision.APPROVAL_REQUIRED: "approval required",
}


def render(verdict: Verdict, fmt: str, *, color: bool = False, with_range: bool = True) -> str:
    if fmt == "json":
        return to_json(verdict, with_range=with_range)
    if fmt == "sarif":
        return json.dumps(to_sarif(verdict), indent=2)
    return to_text(verdict, color=color)


def to_json(verdict: Verdict, *, with_range: bool = True) -> str:
    return json.dumps(verdict.as_dict(with_range=with_range), indent=2)


# -- text ----------------------------------------------------------------------------

_COLORS = {"red": "31", "yellow": "33", "green": "32", "dim": "2", "bold": "1"}
_ACTION_COLOR = {Action.BLOCK: "red", Action.REQUIRE_APPROVAL: "yellow", Action.WARN: "dim"}
_DECISION_COLOR = {
    Decision.PASS: "green",
    Decision.FAIL: "red",
    Decision.APPROVAL_REQUIRED: "yellow",
}


def to_text(verdict: Verdict, *, color: bool = False) -> str:
    def paint(text: str, name: str) -> str:
        return f"\033[{_COLORS[name]}m{text}\033[0m" if color else text

    lines: list[str] = []
    new, before = split_preexisting(verdict.findings)
    for title, findings in (("", new), (PREEXISTING_TITLE, before)):
        if title and findings:
            lines.append(paint(f"{title} (warn, not judged):", "dim"))
            lines.append("")
        for path, group in groupby(findings, key=lambda f: f.path):
            lines.append(paint(path, "bold"))
            for finding in group:
                where = f"{finding.line}" if finding.line else "-"
                action = paint(f"{finding.action:<16}", _ACTION_COLOR[finding.action])
                lines.append(f"  {where:>5}  {action} {finding.rule}: {finding.message}")
            lines.append("")
    for status in verdict.approvals:
        state = "ok" if status.satisfied else "missing"
        lines.append(
            f"approval {state}: {status.rule} needs {status.required} from "
            f"{status.group}, has {status.granted}"
        )
    counts = _counts(verdict.findings)
    summary = ", ".join(f"{n} {a}" for a, n in counts.items() if n) or "no findings"
    headline = paint(_HEADLINE[verdict.decision], _DECISION_COLOR[verdict.decision])
    lines.append(f"changegate: {headline} ({summary})")
    return "\n".join(lines)


#: How every output names findings on lines the change did not touch.
PREEXISTING_TITLE = "Already present before this change"


def split_preexisting(findings: Iterable[Finding]) -> tuple[list[Finding], list[Finding]]:
    """(what the change introduced, what was already there): shown apart everywhere."""
    new: list[Finding] = []
    before: list[Finding] = []
    for f in findings:
        (before if f.preexisting else new).append(f)
    return new, before


def _counts(findings: Iterable[Finding]) -> dict[str, int]:
    """Findings per action, and those already present before the change on their own."""
    counts = {str(a): 0 for a in Action}
    counts["already present"] = 0
    for f in findings:
        counts["already present" if f.preexisting else str(f.action)] += 1
    return counts


# -- SARIF ---------------------------------------------------------------------------

_SARIF_LEVEL = {Action.BLOCK: "error", Action.REQUIRE_APPROVAL: "warning", Action.WARN: "note"}

README_URL = "https://github.com/changegate/changegate"


def help_uri(kind: str) -> str:
    """The README's section on a rule kind: its heading is the kind in backticks, which
    GitHub's heading anchors render as the kind itself."""
    return f"{README_URL}#{kind}"


def to_sarif(verdict: Verdict) -> dict[str, Any]:
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for finding in verdict.findings:
        if finding.rule not in rules:
            rules[finding.rule] = {
                "id": finding.rule,
                "name": finding.kind,
                "shortDescription": {"text": f"changegate {finding.kind}"},
                "helpUri": help_uri(finding.kind),
                "defaultConfiguration": {"level": _SARIF_LEVEL[finding.action]},
                "properties": {"kind": finding.kind},
            }
        location: dict[str, Any] = {"artifactLocation": {"uri": finding.path or "."}}
        if finding.line:
            location["region"] = {"startLine": finding.line}
            if finding.column:
                location["region"]["startColumn"] = finding.column
        results.append(
            {
                "ruleId": finding.rule,
                "ruleIndex": list(rules).index(finding.rule),
                "level": _SARIF_LEVEL[finding.action],
                "message": {"text": finding.message},
                "locations": [{"physicalLocation": location}],
                "partialFingerprints": {
                    "changegate/v1": f"{finding.rule}:{finding.path}:{finding.subject}"
                },
                "properties": {"action": str(finding.action), "subject": finding.subject},
            }
        )
        if verdict.base is not None:  # a scan has no baseline
            results[-1]["baselineState"] = "unchanged" if finding.preexisting else "new"
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "changegate",
                "version": VERSION,
                "informationUri": README_URL,
                "rules": list(rules.values()),
            }
        },
        "results": results,
        "properties": {"decision": str(verdict.decision)},
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


# -- markdown (check-run summary, MR note) ----------------------------------------------

MARKDOWN_LIMIT = 65_535


def markdown_summary(
    verdict: Verdict,
    *,
    details_url: str | None = None,
    limit: int = MARKDOWN_LIMIT,
) -> str:
    """Verdict, findings table, missing approvals and who can give them; within `limit`."""
    head = [f"**changegate: {_HEADLINE[verdict.decision]}**"]
    if verdict.head:
        head[0] += f" on `{verdict.head[:12]}`"
    counts = _counts(verdict.findings)
    head.append(", ".join(f"{n} {a}" for a, n in counts.items() if n) or "No findings.")
    missing = verdict.missing_approvals
    if missing:
        head.append("")
        head.append("### Approvals still needed")
        head.extend(_approval_line(s) for s in missing)
    body: list[str] = []
    icons = {Action.BLOCK: "❌", Action.REQUIRE_APPROVAL: "✋", Action.WARN: "⚠️"}
    new, before = split_preexisting(verdict.findings)
    for title, findings in (("Findings", new), (PREEXISTING_TITLE, before)):
        if not findings:
            continue
        body += ["", f"### {title}", ""]
        if findings is before:
            body += ["On lines this change did not touch; shown as warnings, not judged.", ""]
        body += ["| | rule | where | what |", "|---|---|---|---|"]
        for f in findings:
            where = (f"`{f.path}`" + (f":{f.line}" if f.line else "")) if f.path else "the change"
            body.append(f"| {icons[f.action]} | {f.rule} | {where} | {_cell(f.message)} |")
    tail = [""]
    if details_url:
        tail.append(f"[Details, approvals and history]({details_url})")
    text = "\n".join(head + body + tail)
    if len(text) <= limit:
        return text
    note = f"\n\n… truncated: {len(verdict.findings)} findings in all"
    if details_url:
        note += f"; see [the details page]({details_url})"
    return text[: limit - len(note)].rsplit("\n", 1)[0] + note


def _approval_line(status: ApprovalStatus) -> str:
    line = f"- **{status.rule}**: {status.granted} of {status.required} from group `{status.group}`"
    if status.eligible:
        line += " — can approve: " + ", ".join(f"`{m}`" for m in status.eligible)
    return line


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
