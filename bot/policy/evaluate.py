"""evaluate(policy, view, approvals) -> Verdict: the one pure function every entry point runs."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable

from bot.change import (
    Action,
    Approval,
    ApprovalStatus,
    Change,
    ConditionOutcome,
    Decision,
    Finding,
    Verdict,
)
from bot.policy.approvers import (
    EMPTY_DIRECTORY,
    SYSTEMS,
    ApprovalTerms,
    Directory,
    is_member,
    tally,
)
from bot.policy.carryover import least_approved
from bot.policy.preexisting import TouchedLines, judge_change_only
from bot.policy.schema import Policy
from bot.policy.sources import REPOSITORY_POLICY
from bot.rules.base import READ_NOTE, UNREADABLE, RuleBase, RuleContext
from bot.rules.conditions import ChangeFacts, outcome
from bot.views.base import FileView

log = logging.getLogger(__name__)


def evaluate(
    policy: Policy,
    view: FileView,
    approvals: Iterable[Approval] = (),
    *,
    directory: Directory = EMPTY_DIRECTORY,
) -> Verdict:
    """Run every applicable rule over the view and decide.

    Rules about a change (base vs head, description) are skipped when the view has no base:
    a directory scan only runs the rules that judge file contents.
    """
    ctx = RuleContext(
        view=view,
        environments=policy.environment_specs,
        repository_environments=policy.repository_environments,
    )
    findings: list[Finding] = []
    touched = TouchedLines(view)
    facts = change_facts(policy, ctx, directory)
    conditions: list[ConditionOutcome] = []
    running: list[RuleBase] = []
    for rule in policy.rules:
        if not view.has_base and not rule.reads_contents:
            continue
        if rule.if_ is not None or rule.unless is not None:
            runs, checks = outcome(rule.if_, rule.unless, facts.for_rule(rule.from_repository))
            conditions.append(ConditionOutcome(rule.id, runs, checks))
            if not runs:
                continue
        running.append(rule)
    view.prefetch({path for ready in running for path in ready.reads(ctx)})
    for ready in running:
        findings.extend(judge_change_only(ready, run_rule(ready, ctx), touched))
    findings.extend(_incomplete_change(view))
    findings = _one_warning_per_unreadable_file(findings)
    findings.sort(key=Finding.sort_key)
    statuses = approval_statuses(policy, view, findings, list(approvals), directory)
    return Verdict(
        decision=decide(findings, statuses),
        findings=tuple(findings),
        approvals=tuple(statuses),
        base=view.change.base,
        head=view.change.head,
        conditions=tuple(conditions),
    )


def change_facts(policy: Policy, ctx: RuleContext, directory: Directory) -> ChangeFacts:
    """The facts `if:` / `unless:` read, each computed at most once and only if asked."""
    view, change = ctx.view, ctx.view.change

    def member_of(group: str) -> bool | None:
        if change.forge not in SYSTEMS or not change.author or group not in policy.groups:
            return None
        found = policy.groups[group]
        if is_member(policy, found, change.forge, change.author, directory):
            return True
        teams = [e for e in found.members(change.forge) if e.startswith("@")]
        if any(team not in directory.members for team in teams):
            return None  # a team whose members could not be listed: cannot say "not in"
        return False

    def environments(from_repository: bool) -> set[str]:
        return {
            env
            for f in view.changed_files()
            for path in {f.path, f.old_path or f.path}
            for env in ctx.environments_seen(path, from_repository=from_repository)
        }

    return ChangeFacts(
        title=change.title,
        description=change.description,
        author=change.author,
        target_branch=change.base_ref,
        labels=change.labels,
        draft=change.draft,
        count_files=lambda: len(view.changed_files()),
        count_lines=view.changed_line_count,
        touched_environments=environments,
        member_of=member_of,
    )


#: the rule id and kind of findings about changegate's own reading of the change
CHANGEGATE_RULE = "changegate"
INCOMPLETE_CHANGE = "incomplete-change"


def _incomplete_change(view: FileView) -> list[Finding]:
    """A change the forge could not list whole was judged on part of its files: block."""
    reason = view.unlisted()
    if reason is None:
        return []
    return [
        Finding(
            path="",
            line=None,
            rule=CHANGEGATE_RULE,
            kind=INCOMPLETE_CHANGE,
            action=Action.BLOCK,
            subject="change not listed whole",
            message=f"changegate could not list every file of this change: {reason}",
        )
    ]


def run_rule(rule: RuleBase, ctx: RuleContext) -> list[Finding]:
    """A rule that crashes on some input is a bug, but must not hide the other rules."""
    try:
        return rule.check(ctx)
    except Exception as exc:  # noqa: BLE001 - reported as a finding, logged with traceback
        log.exception("rule %s crashed", rule.id)
        return [
            rule.finding(
                REPOSITORY_POLICY,
                None,
                rule.id,
                f"internal error in rule {rule.id}: {type(exc).__name__}: {exc}",
                action=Action.WARN,
            )
        ]


def approval_statuses(
    policy: Policy,
    view: FileView,
    findings: list[Finding],
    approvals: list[Approval],
    directory: Directory,
) -> list[ApprovalStatus]:
    change = view.change
    author = (change.forge, change.author) if change.author else None
    statuses = []
    asking = {f.rule for f in findings if f.action is Action.REQUIRE_APPROVAL}
    for rule in policy.rules:
        if rule.id not in asking or rule.approvers is None:
            continue
        counted = least_approved(
            (f.path for f in findings if f.rule == rule.id and f.action is Action.REQUIRE_APPROVAL),
            approvals,
            functools.partial(
                tally,
                policy,
                rule.approvers,
                terms=ApprovalTerms(head=change.head, author=author, since=change.basis_since),
                directory=directory,
            ),
        )
        statuses.append(
            ApprovalStatus(
                rule=rule.id,
                group=rule.approvers,
                required=rule.min_approvals,
                granted=len(counted.granted),
                approvers=counted.granted,
                ignored=counted.ignored,
                eligible=_eligible(policy, rule.approvers, change),
            )
        )
    return statuses


def _eligible(policy: Policy, group: str, change: Change) -> tuple[str, ...]:
    """The group's members on the change's own forge, but its author: what the check summary
    names under "can approve" (Slack ids mean nothing to a reader on GitHub or GitLab)."""
    if change.forge not in ("github", "gitlab"):
        return ()
    return tuple(m for m in policy.groups[group].members(change.forge) if m != change.author)


def decide(findings: list[Finding], statuses: list[ApprovalStatus]) -> Decision:
    if any(f.action is Action.BLOCK for f in findings):
        return Decision.FAIL
    if any(not s.satisfied for s in statuses):
        return Decision.APPROVAL_REQUIRED
    return Decision.PASS


def _one_warning_per_unreadable_file(findings: list[Finding]) -> list[Finding]:
    """A file no rule could read (binary, too big, an alias bomb), or read with a caveat, is
    one finding per action, from the first rule that tried, not one per rule that reads
    contents. Require-approval ones stay one per rule: each names its own approvers."""
    seen: set[tuple[str, int | None, str, str, str]] = set()
    kept: list[Finding] = []
    for finding in findings:
        if finding.message.startswith((UNREADABLE, READ_NOTE)):
            rule = finding.rule if finding.action is Action.REQUIRE_APPROVAL else ""
            key = (finding.path, finding.line, finding.message, str(finding.action), rule)
            if key in seen:
                continue
            seen.add(key)
        kept.append(finding)
    return kept
