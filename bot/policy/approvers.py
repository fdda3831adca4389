"""Who may approve, and which approvals count. Pure: team and user-group members are
resolved by the caller (a forge or Slack) and handed in as a `Directory`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bot.change import Approval
from bot.policy.schema import Group, Person, Policy

SYSTEMS = ("github", "gitlab", "slack")


@dataclass(frozen=True)
class Directory:
    """What the policy's text cannot say by itself: members of the collective entries of
    groups (`@org/team` slugs, Slack user groups), and, where the settings allow matching
    people by e-mail, each identity's e-mail (`email_of(system, user)`, looked up and cached
    by the caller, asked only for identities that `people:` does not list)."""

    members: dict[str, frozenset[str]] = field(default_factory=dict)
    email_of: Callable[[str, str], str | None] | None = None

    def expand(self, entry: str) -> frozenset[str]:
        return frozenset(m.lower() for m in self.members.get(entry, frozenset()))


EMPTY_DIRECTORY = Directory()


def _person(
    policy: Policy, system: str, user: str, directory: Directory
) -> tuple[int, Person] | None:
    """The `people:` entry of this identity: the one that lists it, else (e-mail matching
    on) the one whose `email` is this identity's e-mail. A listed identity always wins, so
    an e-mail can never move someone who is listed to another person."""
    wanted = (system, user.lower())
    for index, person in enumerate(policy.people):
        if wanted in person.identities():
            return index, person
    if directory.email_of is None or not any(p.email for p in policy.people):
        return None
    email = directory.email_of(system, user)
    if not email:
        return None
    by_email = ("email", email.lower())
    for index, person in enumerate(policy.people):
        if by_email in person.identities():
            return index, person
    return None


def person_key(
    policy: Policy, system: str, user: str, directory: Directory = EMPTY_DIRECTORY
) -> str:
    """One key per human: the `people:` entry of this identity, else the identity."""
    found = _person(policy, system, user, directory)
    if found is not None:
        index, person = found
        return f"person:{person.name or index}"
    return f"{system}:{user.lower()}"


def identities_of(
    policy: Policy, system: str, user: str, directory: Directory = EMPTY_DIRECTORY
) -> set[tuple[str, str]]:
    """Every (system, name) this human is known by."""
    found = _person(policy, system, user, directory)
    if found is not None:
        return {(system, user.lower()), *found[1].identities()}
    return {(system, user.lower())}


def is_member(
    policy: Policy, group: Group, system: str, user: str, directory: Directory = EMPTY_DIRECTORY
) -> bool:
    for sys_name, name in identities_of(policy, system, user, directory):
        if sys_name not in SYSTEMS:
            continue
        for entry in group.members(sys_name):
            if entry.lower() == name or name in directory.expand(entry):
                return True
    return False


def is_linked(
    policy: Policy, system: str, user: str, directory: Directory = EMPTY_DIRECTORY
) -> bool:
    """True when `people:` (or, if allowed, an e-mail) says which human this identity is."""
    return _person(policy, system, user, directory) is not None


def unlinked_alias(
    policy: Policy,
    group: Group,
    actor: tuple[str, str],
    excluded: Iterable[tuple[str, str]],
    directory: Directory = EMPTY_DIRECTORY,
) -> tuple[str, str] | None:
    """The excluded identity (an author, an initiator) that `actor` may be under another
    name, else None.

    A group that lists GitHub `alice` and Slack `U0ALICE` without a `people:` entry cannot
    tell whether they are one human: when someone excluded is in the group unlinked, an
    approval from an unlinked identity on another system does not count."""
    system, user = actor
    if is_linked(policy, system, user, directory):
        return None
    for other in excluded:
        other_system, other_user = other
        if (
            other_system != system
            and other_system in SYSTEMS
            and other_user
            and not is_linked(policy, other_system, other_user, directory)
            and is_member(policy, group, other_system, other_user, directory)
        ):
            return other
    return None


def unlinked_reason(alias: tuple[str, str], group_name: str) -> str:
    """Why an approval from a possible alias of the author did not count."""
    system, user = alias
    return (
        f"not linked to a person in `people:`, and {user} ({system}), who made this change, "
        f"is in {group_name} unlinked too: they may be one person (link them under `people:`)"
    )


@dataclass(frozen=True)
class Tally:
    granted: tuple[str, ...]  # display names of the people who counted
    ignored: tuple[tuple[str, str], ...]  # (who, why not)


@dataclass(frozen=True)
class ApprovalTerms:
    """What an approval must be to count: given on `head` (and after `since`, when the
    change was retargeted), by none of those who set the change in motion: its `author`
    and `authors` (a deploy's initiators)."""

    head: str
    author: tuple[str, str] | None = None
    authors: Iterable[tuple[str, str]] = ()
    since: dt.datetime | None = None


def tally(
    policy: Policy,
    group_name: str,
    approvals: Iterable[Approval],
    terms: ApprovalTerms,
    *,
    directory: Directory = EMPTY_DIRECTORY,
) -> Tally:
    """Distinct members of `group_name` whose approvals count on `terms`."""
    head, author, since = terms.head, terms.author, terms.since
    group = policy.groups[group_name]
    excluded_identities = [
        (system, user) for system, user in ([author] if author else []) + list(terms.authors)
        if system and user
    ]  # fmt: skip
    excluded = {person_key(policy, *who, directory) for who in excluded_identities}
    counted: dict[str, str] = {}
    ignored: list[tuple[str, str]] = []
    for approval in approvals:
        who = f"{approval.user} ({approval.system})"
        key = person_key(policy, approval.system, approval.user, directory)
        if approval.sha != head:
            ignored.append((who, f"given on {approval.sha[:12]}, not the head commit"))
        elif since is not None and (approval.at is None or approval.at < since):
            ignored.append((who, "given before the change's base changed"))
        elif key in excluded:
            ignored.append((who, "the author cannot approve their own change"))
        elif not is_member(policy, group, approval.system, approval.user, directory):
            ignored.append((who, f"not a member of {group_name}"))
        elif alias := unlinked_alias(
            policy, group, (approval.system, approval.user), excluded_identities, directory
        ):
            ignored.append((who, unlinked_reason(alias, group_name)))
        else:
            counted.setdefault(key, who)
    return Tally(granted=tuple(counted.values()), ignored=tuple(ignored))
