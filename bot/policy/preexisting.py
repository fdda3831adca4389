"""Judge what the change did, not the whole file ("clean as you code").

A rule that judges lines (an unpinned image, a coerced version) reports problems wherever
they are in a changed file; a commit that only edits `POSTGRES_PASSWORD` must not be blocked
for the `:latest` that sat on line 3 for months. Such findings, on lines the change did not
touch, are kept but downgraded to `warn` and marked `preexisting`, and every output shows
them apart. What a rule judges is its `judges` class attribute (`judged_as()`, where a kind decides
per rule):

- `change`: the change as a whole (prod-only, migration playbook, a version bump): never
  downgraded;
- `lines`: a finding belongs to its line: new when the change touched that line;
- `references`: one problem is reported at several references (one instance used by two
  environments): new when the change touched any of them.

A rule with `scope: file` is judged on whole files, as before. Without a base (a directory
scan) nothing is preexisting. A file whose lines cannot be compared counts as touched
everywhere: what cannot be settled is judged, never excused.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from bot.change import Action, ChangedFile, FileStatus, Finding
from bot.rules.base import UNREADABLE, RuleBase
from bot.views.base import FileView
from bot.views.lines import touched_lines

log = logging.getLogger(__name__)


class TouchedLines:
    """The head lines a change touched, per path, each file diffed once per evaluation."""

    def __init__(self, view: FileView) -> None:
        self.view = view
        self.active = view.has_base
        self._changed: dict[str, ChangedFile] | None = None
        self._lines: dict[str, frozenset[int] | None] = {}

    def touches(self, path: str, line: int | None) -> bool:
        """Whether the change touched `line` of `path` (any line, for a finding with none).
        What cannot be read counts as touched: the finding keeps the rule's action."""
        try:
            if self._changed is None:
                self._changed = {c.path: c for c in self.view.changed_files()}
            changed = self._changed.get(path)
            if changed is None:
                return False
            if path not in self._lines:
                self._lines[path] = self._diff(changed)
        except Exception:  # noqa: BLE001 - a rule already reported what it could not read
            log.warning("cannot tell which lines of %s the change touched", path, exc_info=True)
            return True
        lines = self._lines[path]
        return lines is None or line is None or line in lines

    def _diff(self, changed: ChangedFile) -> frozenset[int] | None:
        return lines_touched(self.view, changed)


def lines_touched(view: FileView, changed: ChangedFile) -> frozenset[int] | None:
    """The head lines of `changed` the change touched; None when the file cannot be
    compared: then every line counts as touched."""
    new = view.text(changed.path, "head")
    if new is None:
        return None
    if changed.status is FileStatus.ADDED:
        return touched_lines(None, new)
    old_path = changed.old_path or changed.path
    old = view.text(old_path, "base")
    if old is None:
        return None if view.exists(old_path, "base") else touched_lines(None, new)
    return touched_lines(old, new)


def judge_change_only(
    rule: RuleBase, findings: list[Finding], touched: TouchedLines
) -> list[Finding]:
    """`findings` of `rule`, those the change did not cause downgraded and marked."""
    judges = rule.judged_as()
    if not touched.active or rule.scope == "file" or judges == "change" or not findings:
        return findings
    if judges == "references":
        by_subject: dict[str, bool] = defaultdict(bool)
        for f in findings:
            by_subject[f.subject] |= touched.touches(f.path, f.line)
        new = [by_subject[f.subject] for f in findings]
    else:
        new = [touched.touches(f.path, f.line) for f in findings]
    # A file the rule could not read was not judged at all, whatever line the parser named:
    # it stays at the rule's action (fail closed).
    return [
        f if is_new or f.message.startswith(UNREADABLE) else _preexisting(f)
        for f, is_new in zip(findings, new, strict=True)
    ]


def _preexisting(f: Finding) -> Finding:
    # spelled out: dataclasses.replace costs 10x this, felt with thousands of findings
    return Finding(
        f.path, f.line, f.rule, f.kind, Action.WARN, f.subject, f.message, f.column, True
    )
