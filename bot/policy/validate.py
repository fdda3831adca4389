"""`changegate policy validate`: the errors of loading (bot.policy.schema), and warnings
about a policy that loads but may not mean what it says.

A warning is printed as `FILE:LINE:COL: warning: ...` and does not fail the command.
"""

from __future__ import annotations

from pathlib import Path

from bot.formats import yamldoc
from bot.policy.schema import Policy, PolicyProblem, load_policy_file

#: systems whose group entries name one person each (collective entries excepted)
_SYSTEMS = ("github", "gitlab", "slack")


def validate_file(path: Path) -> tuple[Policy, list[PolicyProblem]]:
    """The loaded policy and its warnings; PolicyError when it does not load."""
    policy = load_policy_file(path)
    text = path.read_text(encoding="utf-8")
    return policy, policy_warnings(policy, text, str(path))


def policy_warnings(policy: Policy, text: str, filename: str) -> list[PolicyProblem]:
    """Groups that name people on several systems without linking them under `people:`:
    changegate cannot tell GitHub `alice` and Slack `U0ALICE` apart, so an approval from one
    does not count on a change by the other (`bot.policy.approvers.unlinked_alias`)."""
    parsed = yamldoc.load_yaml(text)
    root = parsed.documents[0] if parsed.documents else None
    linked = {identity for person in policy.people for identity in person.identities()}
    warnings = []
    for name, group in policy.groups.items():
        unlinked = {
            system: [m for m in _individuals(system, group.members(system))
                     if (system, m.lower()) not in linked]
            for system in _SYSTEMS
        }  # fmt: skip
        unlinked = {system: names for system, names in unlinked.items() if names}
        if len(unlinked) < 2:
            continue
        groups = yamldoc.get(root, "groups") if root is not None else None
        key = next((k for n, k, _ in yamldoc.items(groups) if n == name), None)
        named = "; ".join(f"{system}: {', '.join(names)}" for system, names in unlinked.items())
        message = (
            f"warning: group {name!r} names people on {' and '.join(unlinked)} without "
            f"linking them under `people:` ({named}); changegate cannot tell who is who "
            "across systems, so an approval from one of them does not count on a change by "
            "another"
        )
        line, column = (yamldoc.line_of(key), yamldoc.column_of(key)) if key is not None else (1, 1)
        warnings.append(PolicyProblem(filename, line, column, message))
    return warnings


def _individuals(system: str, entries: list[str]) -> list[str]:
    """Entries naming one person: not a GitHub `@org/team`, not a Slack user group (`S…`)."""
    if system == "github":
        return [e for e in entries if not e.startswith("@")]
    if system == "slack":
        return [e for e in entries if not e.startswith("S")]
    return list(entries)
