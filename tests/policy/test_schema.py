"""Loading policies: the SPEC example loads; every kind of mistake names FILE:LINE:COL."""

from __future__ import annotations

import json
import textwrap

import pytest

from bot.durations import parse_duration
from bot.policy.schema import (
    PolicyError,
    load_policy_file,
    load_policy_text,
    policy_json_schema,
)

from support import REPO_ROOT

SPEC_EXAMPLE = textwrap.dedent(
    """\
    version: 1
    environments:
      production:
        paths: ["deploy/production/**", "**/values-production.yaml"]
      staging:
        paths: ["deploy/staging/**", "**/values-staging.yaml"]
    groups:
      senior:
        github: ["alice", "@acme/sre-leads"]
        gitlab: ["alice"]
        slack: ["U0ALICE", "S0SRELEADS"]
    rules:
      - id: pinned-images
        kind: unpinned-image
        action: block
        paths: ["**"]
        options:
          mutable_tags: [latest, stable, main, master, dev, edge, nightly]
          require_digest: false
          check_actions: true
      - id: yaml-versions
        kind: yaml-version-coercion
        action: block
      - id: shared-datastores
        kind: shared-resource
        action: block
      - id: prod-only
        kind: prod-only-change
        action: require-approval
        approvers: senior
        min_approvals: 1
      - id: migration-playbook
        kind: migration-playbook
        action: block
        paths: ["alembic/versions/**", "db/migrate/**", "**/migrations/**"]
        options:
          link_pattern: 'https://runbooks\\.example\\.com/\\S+|docs/playbooks/\\S+\\.md'
      - id: major-upgrades
        kind: dependency-major-upgrade
        action: require-approval
        approvers: senior
    deploys:
      production:
        approvers: senior
        min_approvals: 1
        slack_channel: C0DEPLOYS
        expires_after: 4h
    """
)


def test_spec_example_loads_with_every_kind() -> None:
    policy = load_policy_text(SPEC_EXAMPLE, "spec.yml")
    assert [r.kind_name() for r in policy.rules] == [
        "unpinned-image",
        "yaml-version-coercion",
        "shared-resource",
        "prod-only-change",
        "migration-playbook",
        "dependency-major-upgrade",
    ]
    assert policy.groups["senior"].github == ["alice", "@acme/sre-leads"]
    assert policy.deploys["production"].expires_after_delta.total_seconds() == 4 * 3600
    assert policy.environment_specs["production"].match_file("a/values-production.yaml")


def test_bundled_default_policy_loads() -> None:
    policy = load_policy_file(REPO_ROOT / "policies" / "default.yml")
    assert {r.id for r in policy.rules} >= {"pinned-images", "yaml-versions"}


def test_committed_json_schema_is_current() -> None:
    committed = json.loads((REPO_ROOT / "policies" / "schema.json").read_text())
    assert committed == policy_json_schema(), "run: changegate policy schema > policies/schema.json"


def _error(text: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        load_policy_text(textwrap.dedent(text), "p.yml")
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            """\
            version: 1
            rules:
              - id: a
                kind: unpinned-image
                action: block
                colour: red
            """,
            "p.yml:6:5: unknown key 'colour' in rules.0",
        ),
        (
            """\
            version: 1
            rules:
              - id: a
                kind: unpinned-imag
                action: block
            """,
            "p.yml:4:11: unknown rule kind 'unpinned-imag'",
        ),
        (
            """\
            version: 1
            rules:
              - id: a
                kind: prod-only-change
                action: require-approval
                approvers: seniors
            """,
            "p.yml:6:16: undefined group 'seniors'",
        ),
        (
            """\
            version: 1
            rules:
              - id: a
                kind: unpinned-image
                action: block
              - id: a
                kind: yaml-version-coercion
                action: warn
            """,
            "p.yml:6:9: duplicate rule id 'a'",
        ),
        (
            """\
            version: 1
            rules:
              - id: m
                kind: migration-playbook
                action: block
                options:
                  link_pattern: "([unclosed"
            """,
            "p.yml:7:21: rules.0.options.link_pattern: bad regex",
        ),
        (
            """\
            version: 1
            environments:
              production:
                paths: ["\\\\"]
            """,
            "p.yml:4:12: environments.production.paths: bad glob",
        ),
        (
            """\
            version: 1
            rules:
              - id: a
                kind: unpinned-image
                action: stop
            """,
            "p.yml:5:13: rules.0.action: Input should be 'block', 'require-approval' or 'warn'",
        ),
        (
            """\
            version: 2
            """,
            "p.yml:1:10: version: Input should be 1",
        ),
        (
            """\
            version: 1
            rules:
              - id: a
                action: block
            """,
            "p.yml:3:5: a rule needs a `kind`",
        ),
        (
            """\
            version: 1
            groups: {a: {github: [x]}}
            groups: {b: {github: [y]}}
            """,
            "p.yml:3:1: duplicate key 'groups'",
        ),
        (
            """\
            version: 1
            rules: [
            """,
            "p.yml:3:1: YAML syntax error",
        ),
        (
            """\
            version: 1
            deploys:
              production: {approvers: nobody, expires_after: soon}
            """,
            "p.yml:3:50: deploys.production.expires_after: bad duration 'soon'",
        ),
    ],
)
def test_errors_name_file_line_and_column(text: str, expected: str) -> None:
    problems = _error(text)
    assert any(p.startswith(expected) for p in problems), problems


def test_alias_bomb_in_policy_is_refused_quickly() -> None:
    bomb = "version: 1\na: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)
    )
    problems = _error(bomb)
    assert "alias" in problems[0]


@pytest.mark.parametrize(
    ("text", "seconds"), [("4h", 14400), ("30m", 1800), ("1d12h", 129600), ("90s", 90)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


def test_deploy_freeze_windows_and_break_glass_load() -> None:
    policy = load_policy_text(
        textwrap.dedent(
            """\
            version: 1
            groups:
              senior: {slack: [U0ALICE]}
              oncall: {slack: [U0BOB]}
            break_glass: {group: oncall, retro_review_within: 24h}
            deploys:
              production:
                approvers: senior
                freeze:
                  - {name: weekend, timezone: Europe/Berlin, days: [fri], start: "18:00", end: "08:00"}
                  - {name: year-end, from: 2026-12-20, until: 2027-01-02}
            """
        )
    )
    assert [w.name for w in policy.deploys["production"].freeze] == ["weekend", "year-end"]
    assert policy.break_glass.group == "oncall"


def test_break_glass_group_must_exist() -> None:
    problems = _error("version: 1\nbreak_glass: {group: firefighters}\n")
    assert problems == ["p.yml:2:22: undefined group 'firefighters'"]


def test_every_mistake_is_reported_at_once_schema_and_references_together() -> None:
    text = textwrap.dedent(
        """\
        version: 1
        enviroments:
          production: {paths: ["deploy/production/**"]}
        groups:
          senior: {github: [alice]}
        rules:
          - {id: a, kind: unpinned-image, action: block}
          - {id: a, kind: unpinned-image, action: block}
          - {id: b, kind: prod-only-change, action: require-approval, approvers: nobody}
          - {id: c, kind: nope, action: block}
        break_glass: {}
        deploys:
          production: {approvers: nobody-either}
        """
    )
    problems = _error(text)
    assert [p.split(": ", 1)[0] for p in problems] == [
        "p.yml:2:1",
        "p.yml:8:10",
        "p.yml:9:74",
        "p.yml:10:19",
        "p.yml:11:14",
        "p.yml:13:27",
    ], problems
    assert "duplicate rule id 'a'" in problems[1]
    assert "undefined group 'nobody'" in problems[2]
    assert "undefined group 'emergency'" in problems[4]  # break_glass's default group
    assert "undefined group 'nobody-either'" in problems[5]
