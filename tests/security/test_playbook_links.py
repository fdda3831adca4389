"""A playbook link with `..` segments made the bot request `GET /orgs/acme/teams/x.md`:
a repository link is looked up inside the repository only, or refused saying why."""

from __future__ import annotations

from e2e.conftest import REPO, Harness

from standins.gitrepo import GitRepo

ESCAPE = "docs/playbooks/" + "../" * 6 + "orgs/acme/teams/x.md"


def test_playbook_link_with_dot_dot_segments_is_refused_and_never_looked_up(
    harness: Harness, repo: GitRepo
) -> None:
    head = repo.commit("change", {"db/migrate/001.sql": "select 1;\n"}, "a migration")
    pull = harness.github.open_pull(REPO, head="change", author="bob", body=f"Playbook: {ESCAPE}")
    harness.send_github("pull_request", harness.github.pull_request_payload(REPO, pull.number))
    run = harness.completed_run(head, "failure")
    paths = [r.path for r in harness.github.requests]
    assert not [p for p in paths if "/orgs/" in p or "x.md" in p], paths
    message = str(run.annotations)
    assert ESCAPE in message and "segments" in message, message
