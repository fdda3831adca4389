"""References between parts of a policy file: rule ids, and the groups that rules, conditions,
gates and `break_glass` name.

Read from the YAML as written, not the validated model, so that they are reported together
with any schema error instead of only once those are fixed. Each problem is a location in
the file's data (`("rules", 2, "approvers")`) and a message; bot/policy/schema.py turns the
location into FILE:LINE:COL.
"""

from __future__ import annotations

from typing import Any

from bot.policy.freeze import BreakGlassSettings

#: where in the policy's data (keys and list indexes), and what is wrong there
Reference = tuple[tuple[Any, ...], str]


def cross_reference_problems(data: Any, known_groups: frozenset[str]) -> list[Reference]:
    """Every broken reference in a policy's data; `known_groups` are groups defined
    elsewhere (the admin policy, for a repository's `.changegate.yml`)."""
    if not isinstance(data, dict):
        return []
    declared = data.get("groups")
    groups = (set(declared) if isinstance(declared, dict) else set()) | known_groups
    return [
        *_rule_problems(data.get("rules"), groups),
        *_break_glass_problems(data.get("break_glass"), groups),
        *_deploy_problems(data.get("deploys"), groups),
    ]


def _rule_problems(rules: Any, groups: set[str]) -> list[Reference]:
    """Duplicate rule ids, undefined approver groups (also in `if:`/`unless:`), and a
    require-approval rule with nobody to approve."""
    problems: list[Reference] = []
    seen_ids: set[str] = set()
    for index, rule in enumerate(rules if isinstance(rules, list) else []):
        if not isinstance(rule, dict):
            continue
        rule_id, approvers = rule.get("id"), rule.get("approvers")
        if isinstance(rule_id, str):
            if rule_id in seen_ids:
                problems.append((("rules", index, "id"), f"duplicate rule id {rule_id!r}"))
            seen_ids.add(rule_id)
        if isinstance(approvers, str) and approvers not in groups:
            problems.append((("rules", index, "approvers"), f"undefined group {approvers!r}"))
        for clause in ("if", "unless"):
            condition = rule.get(clause)
            for key in ("author_in", "author_not_in"):
                group = condition.get(key) if isinstance(condition, dict) else None
                if isinstance(group, str) and group not in groups:
                    problems.append((("rules", index, clause, key), f"undefined group {group!r}"))
        if rule.get("action") == "require-approval" and approvers is None:
            message = f"rule {rule_id!r} requires approval but names no approvers"
            problems.append((("rules", index), message))
    return problems


def _break_glass_problems(break_glass: Any, groups: set[str]) -> list[Reference]:
    if not isinstance(break_glass, dict):
        return []
    group = break_glass.get("group", BreakGlassSettings.model_fields["group"].default)
    if isinstance(group, str) and group not in groups:
        return [(("break_glass", "group"), f"undefined group {group!r}")]
    return []


def _deploy_problems(deploys: Any, groups: set[str]) -> list[Reference]:
    """Two spellings of one environment (names match case-insensitively), and undefined
    approver groups of gates."""
    problems: list[Reference] = []
    spelled: dict[str, str] = {}
    for env, gate in deploys.items() if isinstance(deploys, dict) else []:
        if isinstance(env, str) and env != "default":
            other = spelled.setdefault(env.casefold(), env)
            if other != env:
                message = (
                    f"{env!r} and {other!r} are one environment (names match case-insensitively)"
                )
                problems.append((("deploys", env), message))
        approvers = gate.get("approvers") if isinstance(gate, dict) else None
        if isinstance(approvers, str) and approvers not in groups:
            problems.append((("deploys", env, "approvers"), f"undefined group {approvers!r}"))
    return problems
