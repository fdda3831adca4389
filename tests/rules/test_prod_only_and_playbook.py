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


@pytest.mark.parametrize(
    ("link", "why"),
    [
        ("docs/playbooks/../../secrets.md", "`..` or `.` segments"),
        ("docs/playbooks/%2e%2e/x.md", "percent-encoded"),
        ("docs/playbooks/x?ref=evil.md", "query or fragment"),
    ],
)
def test_a_playbook_path_that_could_leave_the_repository_is_refused_unread(
    link: str, why: str
) -> None:
    """Even when the file exists: the link is refused, saying why, and never read."""
    read: list[str] = []

    class Watching(MemoryView):
        def read(self, path: str, rev: str = "head") -> bytes | None:
            read.append(path)
            return super().read(path, rev)

    playbook = {"docs/playbooks/x.md": "# run it", "secrets.md": "x"}
    view = Watching(head={**MIGRATION, **playbook}, base={}, description=f"see {link}")
    [finding] = evaluate(POLICY, view).findings
    assert link in finding.message and why in finding.message
    assert not [p for p in read if p.endswith(".md")]


def test_at_most_ten_playbook_paths_are_looked_up() -> None:
    links = " ".join(f"docs/playbooks/p{i}.md" for i in range(12))
    view = MemoryView(head=MIGRATION, base={}, description=links)
    [finding] = evaluate(POLICY, view).findings
    assert "docs/playbooks/p9.md does not exist" in finding.message
    assert "p10.md" not in finding.message
    assert "2 more links were not looked up (at most 10)" in finding.message


def test_only_the_first_65536_characters_of_a_description_are_searched() -> None:
    playbook = {"docs/playbooks/redis.md": "# steps"}
    description = "x" * 65_536 + " docs/playbooks/redis.md"
    view = MemoryView(head={**MIGRATION, **playbook}, base={}, description=description)
    [finding] = evaluate(POLICY, view).findings
    assert "no playbook in its first 65,536 characters" in finding.message
    early = MemoryView(
        head={**MIGRATION, **playbook},
        base={},
        description="docs/playbooks/redis.md " + "x" * 70_000,
    )
    assert evaluate(POLICY, early).findings == ()


def test_an_absolute_playbook_path_is_refused() -> None:
    policy = load_policy_text(
        "version: 1\nrules:\n  - id: playbook\n    kind: migration-playbook\n"
        "    action: block\n    options: {link_pattern: '\\S+\\.md'}\n"
    )
    view = MemoryView(head={**MIGRATION, "etc/x.md": "#"}, base={}, description="/etc/x.md")
    [finding] = evaluate(policy, view).findings
    assert "/etc/x.md (it is an absolute path; only plain paths" in finding.message
