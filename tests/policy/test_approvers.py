"""Who is who across systems: `people:` first, then (where the settings allow it) e-mail."""

from __future__ import annotations

from bot.change import Approval
from bot.policy.approvers import (
    ApprovalTerms,
    Directory,
    identities_of,
    is_member,
    person_key,
    tally,
)
from bot.policy.schema import load_policy_text

POLICY = """
version: 1
groups:
  senior:
    github: ["alice", "erin"]
people:
  - name: alice
    github: alice
    slack: U0ALICE
    email: alice@example.com
  - name: erin
    github: erin
    email: erin@example.com
rules: []
"""
SHA = "a" * 40


class Emails:
    """A directory's e-mail lookup that records who it was asked about."""

    def __init__(self, known: dict[tuple[str, str], str]) -> None:
        self.known, self.asked = known, []  # type: ignore[var-annotated]

    def __call__(self, system: str, user: str) -> str | None:
        self.asked.append((system, user))
        return self.known.get((system, user))


def test_an_unlisted_identity_is_the_person_with_its_email() -> None:
    policy = load_policy_text(POLICY, "policy.yml")
    emails = Emails({("slack", "U0ERIN"): "Erin@Example.com"})
    directory = Directory(email_of=emails)
    assert person_key(policy, "slack", "U0ERIN", directory) == "person:erin"
    assert ("github", "erin") in identities_of(policy, "slack", "U0ERIN", directory)
    assert is_member(policy, policy.groups["senior"], "slack", "U0ERIN", directory)
    # without the lookup (matching off) the same user is nobody the policy knows
    assert person_key(policy, "slack", "U0ERIN") == "slack:u0erin"
    assert not is_member(policy, policy.groups["senior"], "slack", "U0ERIN")


def test_a_listed_identity_is_never_moved_by_its_email() -> None:
    policy = load_policy_text(POLICY, "policy.yml")
    emails = Emails({("slack", "U0ALICE"): "erin@example.com"})
    directory = Directory(email_of=emails)
    assert person_key(policy, "slack", "U0ALICE", directory) == "person:alice"
    assert emails.asked == []  # listed: not even looked up


def test_no_lookup_when_no_person_has_an_email() -> None:
    policy = load_policy_text(POLICY.replace("    email: ", "    # email: "), "policy.yml")
    emails = Emails({("slack", "U0ERIN"): "erin@example.com"})
    assert person_key(policy, "slack", "U0ERIN", Directory(email_of=emails)) == "slack:u0erin"
    assert emails.asked == []


def test_a_review_and_a_click_by_one_person_count_once_and_the_author_not_at_all() -> None:
    policy = load_policy_text(POLICY, "policy.yml")
    directory = Directory(
        email_of=Emails(
            {("slack", "U0ERIN"): "erin@example.com", ("slack", "U0AL2"): "alice@example.com"}
        )
    )
    approvals = [
        Approval(system="github", user="erin", sha=SHA, via="review"),
        Approval(system="slack", user="U0ERIN", sha=SHA, via="slack"),
        Approval(system="slack", user="U0AL2", sha=SHA, via="slack"),  # alice, the author
    ]
    counted = tally(
        policy,
        "senior",
        approvals,
        ApprovalTerms(head=SHA, author=("github", "alice")),
        directory=directory,
    )
    assert counted.granted == ("erin (github)",)
    assert counted.ignored == (("U0AL2 (slack)", "the author cannot approve their own change"),)


UNLINKED = """
version: 1
groups:
  senior:
    github: ["alice", "bob"]
    slack: ["U0ALICE", "U0BOB", "U0CAROL"]
people:
  - name: carol
    github: carol
    slack: U0CAROL
"""


def test_an_unlinked_identity_on_another_system_may_be_the_unlinked_author() -> None:
    policy = load_policy_text(UNLINKED, "policy.yml")
    approvals = [
        Approval("slack", "U0ALICE", SHA),  # alice under another name? nobody can tell
        Approval("slack", "U0CAROL", SHA),  # linked: known to be carol
        Approval("github", "bob", SHA),  # the same system: another login is another human
    ]
    counted = tally(
        policy, "senior", approvals, ApprovalTerms(head=SHA, author=("github", "alice"))
    )
    assert counted.granted == ("U0CAROL (slack)", "bob (github)")
    [(who, why)] = counted.ignored
    assert who == "U0ALICE (slack)"
    assert "alice (github), who made this change, is in senior unlinked too" in why
    # an author who is linked (or not in the group) is told apart: nothing is suspect
    by_carol = tally(
        policy, "senior", approvals, ApprovalTerms(head=SHA, author=("github", "carol"))
    )
    assert len(by_carol.granted) == 2 and by_carol.ignored[0][1].startswith("the author")
    by_dan = tally(policy, "senior", approvals, ApprovalTerms(head=SHA, author=("github", "dan")))
    assert len(by_dan.granted) == 3 and by_dan.ignored == ()
