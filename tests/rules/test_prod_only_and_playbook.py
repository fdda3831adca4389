"""`prod-only-change` and `migration-playbook`: rules about the change, not the contents."""

from __future__ import annotations

import pytest

from bot.policy.evaluate import evaluate
from bot.policy.schema import load_policy_text
from bot.views.memory import MemoryView

POLICY = load_policy_text(
    """\
version: 1
environments:
  production: {paths: ["deploy/production/**", "**/values-production.yaml"]}
  staging: {paths: ["deploy/staging/**", "**/values-staging.yaml"]}
rules:
  - {id: prod-only, kind: prod-only-change, action: block}
  - id: playbook
    kind: migration-playbook
    action: block
    paths: ["alembic/versions/**", "db/migrate/**", "**/migrations/**"]
""",
    "p.yml",
)


def rules_hit(view: MemoryView) -> list[tuple[str, str]]:
    return [(f.rule, f.path) for f in evaluate(POLICY, view).findings]


@pytest.mark.parametrize(
    ("base", "head", "expected"),
    [
        # production alone: flagged, once per file
        (
            {"charts/app/values-production.yaml": "a: 1"},
            {"charts/app/values-production.yaml": "a: 2"},
            [("prod-only", "charts/app/values-production.yaml")],
        ),
        # production and staging together: fine
        (
            {"charts/app/values-production.yaml": "a: 1", "charts/app/values-staging.yaml": "a: 1"},
            {"charts/app/values-production.yaml": "a: 2", "charts/app/values-staging.yaml": "a: 2"},
            [],
        ),
        # deleting a production file is a production change
        ({"deploy/production/cron.yaml": "x"}, {}, [("prod-only", "deploy/production/cron.yaml")]),
        # production plus a file of no environment is still production only
        (
            {"deploy/production/a.yaml": "1", "README.md": "a"},
            {"deploy/production/a.yaml": "2", "README.md": "b"},
            [("prod-only", "deploy/production/a.yaml")],
        ),
        # staging alone
        ({"deploy/staging/a.yaml": "1"}, {"deploy/staging/a.yaml": "2"}, []),
    ],
)
def test_prod_only(
    base: dict[str, str], head: dict[str, str], expected: list[tuple[str, str]]
) -> None:
    assert rules_hit(MemoryView(head=head, base=base)) == expected


MIGRATION = {"alembic/versions/0042_drop_flags.py": "def upgrade(): ..."}


@pytest.mark.parametrize(
    ("description", "head_extra", "flagged"),
    [
        ("Drops the old flags table.", {}, True),
        ("Playbook: https://runbooks.example.com/redis/migrate-flags", {}, False),
        (
            "Follow docs/playbooks/flags.md before running.",
            {"docs/playbooks/flags.md": "# steps"},
            False,
        ),
        ("Follow docs/playbooks/missing.md before running.", {}, True),
        ("See (https://runbooks.example.com/x).", {}, False),
        ("See https://wiki.example.com/x", {}, True),
    ],
)
def test_migration_playbook(description: str, head_extra: dict[str, str], flagged: bool) -> None:
    view = MemoryView(head={**MIGRATION, **head_extra}, base={}, description=description)
    hits = rules_hit(view)
    assert (("playbook", "alembic/versions/0042_drop_flags.py") in hits) is flagged


def test_missing_playbook_message_names_the_path() -> None:
    view = MemoryView(head=MIGRATION, base={}, description="docs/playbooks/nope.md")
    message = evaluate(POLICY, view).findings[0].message
    assert "docs/playbooks/nope.md does not exist" in message


def test_deleting_a_migration_needs_no_playbook() -> None:
    assert rules_hit(MemoryView(head={}, base=MIGRATION)) == []


def test_whole_file_findings_point_at_line_1_unless_the_file_is_gone() -> None:
    """SPEC: every finding on a file with lines has a line; for a finding about a whole
    file that is line 1 (a deleted file has no lines at head)."""
    changed = MemoryView(
        head={"deploy/production/a.yaml": "2", **MIGRATION},
        base={"deploy/production/a.yaml": "1", "deploy/production/gone.yaml": "x"},
    )
    lines = {(f.rule, f.path): f.line for f in evaluate(POLICY, changed).findings}
    assert lines[("prod-only", "deploy/production/a.yaml")] == 1
    assert lines[("prod-only", "deploy/production/gone.yaml")] is None
    assert all(line == 1 for (rule, _), line in lines.items() if rule == "playbook")
