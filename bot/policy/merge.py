"""The server's effective policy: the admin's, which a repository may only tighten.

A repository's `.changegate.yml` (from its default branch, never from the change under
review) may add environments (for paths no admin environment matches), groups, rules and
deploy gates of its own, and make an admin rule's action stricter. It can never loosen,
remove or redefine what the admin wrote: its environments count only for its own rules
(`RuleContext.environment_of`), it cannot define the break-glass group, and it cannot
declare `people:` (that would let a repository claim someone else's identity).
"""

from __future__ import annotations

import logging
from typing import Any

from bot.change import Action
from bot.policy.schema import Deploys, Policy, PolicyError, load_policy_text
from bot.policy.sources import REPOSITORY_POLICY
from bot.rules.base import RuleBase

log = logging.getLogger(__name__)

STRICTNESS = {Action.WARN: 0, Action.REQUIRE_APPROVAL: 1, Action.BLOCK: 2}


def merge_policies(
    admin: Policy, repo_text: str | None, filename: str = REPOSITORY_POLICY
) -> Policy:
    """Admin policy plus what the repository policy may add. An invalid repository policy
    is logged and ignored: the admin policy still governs."""
    if not repo_text:
        return admin
    try:
        repo = load_policy_text(repo_text, filename, known_groups=frozenset(admin.groups))
    except PolicyError as exc:
        log.warning("ignoring repository policy %s: %s", filename, exc)
        return admin
    if admin.break_glass.group in repo.groups:
        # who may break glass is the admin's alone (the deploy helper and the approvals
        # read that group from the admin policy): a repository naming it is refused whole
        log.warning(
            "ignoring repository policy %s: it defines the break-glass group %r",
            filename,
            admin.break_glass.group,
        )
        return admin
    return combine(admin, repo)


def combine(admin: Policy, repo: Policy) -> Policy:
    rules: list[RuleBase] = []
    repo_rules = {r.id: r for r in repo.rules}
    for rule in admin.rules:
        mine = repo_rules.pop(rule.id, None)
        tightens = (
            mine is not None
            and mine.kind_name() == rule.kind_name()
            and STRICTNESS[mine.action] > STRICTNESS[rule.action]
        )
        if mine is not None and tightens:
            approvers = rule.approvers or mine.approvers
            rule = rule.model_copy(update={"action": mine.action, "approvers": approvers})
        if mine is not None and mine.kind_name() == rule.kind_name() and mine.scope == "file":
            rule = rule.model_copy(update={"scope": "file"})  # judging whole files is stricter
        rules.append(rule)
    for added in repo_rules.values():
        added = added.model_copy()
        added._from_repository = True  # it sees the repository's environments too
        rules.append(added)
    # gates match case-insensitively; `deploys.default` is the admin's alone (a repository
    # cannot let its own ungated deploys through)
    deploys: dict[str, Any] = dict(repo.deploys.gates)
    for env, gate in admin.deploys.items():
        theirs = repo.deploys.name_of(env)
        if theirs is not None:
            mine = deploys.pop(theirs)
            if mine.min_approvals > gate.min_approvals:
                gate = gate.model_copy(update={"min_approvals": mine.min_approvals})
        deploys[env] = gate
    deploys["default"] = admin.deploys.default
    merged = Policy(
        version=1,
        environments={**repo.environments, **admin.environments},
        groups={**repo.groups, **admin.groups},
        people=admin.people,
        rules=rules,  # type: ignore[arg-type]
        deploys=Deploys.model_validate(deploys),
        break_glass=admin.break_glass,
    )
    # the repository may name environments for paths the admin left unclassified, never
    # reclassify the admin's: a `shadow` environment over deploy/production/** would make
    # every production-only change look exercised elsewhere
    merged._repository_environments = frozenset(repo.environments) - frozenset(admin.environments)
    return merged
