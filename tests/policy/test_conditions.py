"""`if:` / `unless:` on every rule: each predicate, and fail-closed when a fact is missing."""

from __future__ import annotations

import textwrap

import pytest

from bot.change import Decision
from bot.policy.approvers import Directory
from bot.policy.evaluate import evaluate
from bot.policy.schema import Policy, PolicyError, load_policy_text
from bot.views.memory import MemoryView


def _policy(condition: str, clause: str = "if") -> Policy:
    return load_policy_text(
        textwrap.dedent(
            """\
            version: 1
            environments:
              production: {paths: ["deploy/production/**"]}
              staging: {paths: ["deploy/staging/**"]}
            groups:
              sre: {github: [alice, "@acme/sre"], gitlab: [alice]}
            rules:
              - id: deploy
                kind: paths
                action: block
                paths: ["deploy/**"]
                %s:
            """
        )
        % clause
        + textwrap.indent(textwrap.dedent(condition), " " * 6),
        "policy.yml",
    )


def _view(**change: object) -> MemoryView:
    head = change.pop("head", {"deploy/production/app.yaml": "a: 2\nb: 1\n"})
    base = change.pop("base", {"deploy/production/app.yaml": "a: 1\n"})
    change.setdefault("forge", "github")
    change.setdefault("author", "bob")
    return MemoryView(head=head, base=base, **change)  # type: ignore[arg-type]


def _runs(policy: Policy, view: MemoryView, directory: Directory | None = None) -> bool:
    verdict = evaluate(policy, view, directory=directory or Directory({"@acme/sre": frozenset()}))
    (outcome,) = verdict.conditions
    assert outcome.applies is bool(verdict.findings)
    return outcome.applies


@pytest.mark.parametrize(
    ("condition", "change", "expected"),
    [
        ("target_branch: [main, 'release/*']", {"base_ref": "main"}, True),
        ("target_branch: [main, 'release/*']", {"base_ref": "release/2.1"}, True),
        ("target_branch: [main, 'release/*']", {"base_ref": "feature/x"}, False),
        ("author_in: sre", {"author": "alice"}, True),
        ("author_in: sre", {"author": "bob"}, False),
        ("author_not_in: sre", {"author": "bob"}, True),
        ("author_not_in: sre", {"author": "Alice"}, False),
        ("labels_any: [risky, db]", {"labels": ("db", "x")}, True),
        ("labels_any: [risky, db]", {"labels": ("x",)}, False),
        ("labels_all: [risky, db]", {"labels": ("db", "risky")}, True),
        ("labels_all: [risky, db]", {"labels": ("db",)}, False),
        ("title_matches: '(?i)^hotfix'", {"title": "HOTFIX: redis"}, True),
        ("title_matches: '(?i)^hotfix'", {"title": "feature"}, False),
        ("description_matches: 'JIRA-\\d+'", {"description": "fixes JIRA-12"}, True),
        ("description_matches: 'JIRA-\\d+'", {"description": "no ticket"}, False),
        ("changed_files: {min: 2}", {}, False),
        ("changed_files: {max: 1}", {}, True),
        ("changed_lines: {min: 3}", {}, True),  # a: 1 -> a: 2 and b: 1 added
        ("changed_lines: {min: 4}", {}, False),
        ("environments: [production]", {}, True),
        ("environments: [staging]", {}, False),
        ("draft: false", {"draft": False}, True),
        ("draft: false", {"draft": True}, False),
        ("{target_branch: [main], draft: false}", {"base_ref": "main", "draft": True}, False),
    ],
)
def test_each_predicate_decides_whether_the_rule_runs(
    condition: str, change: dict[str, object], expected: bool
) -> None:
    assert _runs(_policy(condition), _view(**change)) is expected
    # `unless:` is the mirror image
    assert _runs(_policy(condition, "unless"), _view(**change)) is not expected


@pytest.mark.parametrize(
    ("condition", "change"),
    [
        ("target_branch: [main]", {}),  # a local check: no target branch
        ("labels_any: [risky]", {}),  # a push: no labels
        ("labels_all: [risky]", {}),
        ("draft: true", {}),
        ("author_in: sre", {"author": None}),
        ("author_in: sre", {"forge": "git"}),  # a git author is no forge identity
    ],
)
def test_a_missing_fact_fails_closed_both_ways(condition: str, change: dict[str, object]) -> None:
    """Whatever the clause, a predicate the forge could not answer never switches a rule off."""
    assert _runs(_policy(condition), _view(**change)) is True
    assert _runs(_policy(condition, "unless"), _view(**change)) is True
    verdict = evaluate(_policy(condition, "unless"), _view(**change))
    assert "unknown, taken not to hold (fail closed)" in verdict.conditions[0].checks[0]


def test_an_unlisted_team_makes_membership_unknown_not_false() -> None:
    """bob may be in @acme/sre: if its members could not be listed, `author_not_in: sre`
    must not exempt him, and `author_in` must not skip him."""
    assert _runs(_policy("author_in: sre"), _view(author="bob"), Directory()) is True
    assert _runs(_policy("author_not_in: sre"), _view(author="bob"), Directory()) is True
    listed = Directory({"@acme/sre": frozenset({"bob"})})
    assert _runs(_policy("author_in: sre"), _view(author="bob"), listed) is True
    assert _runs(_policy("author_not_in: sre"), _view(author="bob"), listed) is False


def test_the_verdict_says_which_conditions_held() -> None:
    policy = _policy("{target_branch: [main], labels_any: [risky]}")
    verdict = evaluate(policy, _view(base_ref="main", labels=("docs",)))
    assert verdict.decision is Decision.PASS
    assert verdict.as_dict()["conditions"] == [
        {
            "rule": "deploy",
            "applies": False,
            "checks": [
                "if target_branch ['main']: held (main)",
                "if labels_any ['risky']: did not hold (docs)",
            ],
        }
    ]


def test_a_title_pattern_runs_in_linear_time() -> None:
    """(a+)+$ backtracks exponentially in Python's re; RE2 answers at once."""
    policy = _policy("title_matches: '(a+)+$'")
    assert _runs(policy, _view(title="a" * 5000 + "!")) is False


def test_bad_conditions_are_file_line_col_errors() -> None:
    with pytest.raises(PolicyError) as err:
        _policy("{title_matches: '(a', author_in: nobody, changed_files: {min: 3, max: 1}}")
    text = str(err.value)
    assert "policy.yml:13:23: rules.0.if.title_matches: bad regex /(a/: missing )" in text
    assert "undefined group 'nobody'" in text
    assert "rules.0.if.changed_files: min 3 is above max 1" in text
    with pytest.raises(PolicyError, match="unknown key 'branch' in rules.0.if"):
        _policy("branch: main")
    with pytest.raises(PolicyError, match="an empty condition"):
        _policy("{}")
    with pytest.raises(PolicyError, match="no backreferences or lookaround"):
        _policy("title_matches: '(?=lookahead)'")  # not RE2: refused, not silently slow
