"""Issue 15.3 through the real server: a pull request is judged on what it changed; the
check run keeps what was already there apart (annotations and summary)."""

from __future__ import annotations

from .conftest import REPO, Harness, manifest
from standins.gitrepo import GitRepo


def test_a_change_beside_an_old_latest_passes_and_shows_it_apart(
    harness: Harness, repo: GitRepo
) -> None:
    repo.commit("main", {"deploy/staging/app.yaml": manifest("nginx:latest")}, "months ago")
    head = repo.commit(
        "scale", {"deploy/staging/app.yaml": manifest("nginx:latest", replicas=3)}, "scale"
    )
    pull = harness.github.open_pull(REPO, head="scale", author="bob", title="Scale staging")
    harness.send_github("pull_request", harness.github.pull_request_payload(REPO, pull.number))
    run = harness.completed_run(head, "success")
    assert [(a["path"], a["start_line"], a["annotation_level"]) for a in run.annotations] == [
        ("deploy/staging/app.yaml", 11, "notice")
    ]
    assert run.annotations[0]["message"].startswith("Already present before this change")
    assert run.summary is not None
    assert "### Already present before this change" in run.summary
    assert "### Findings" not in run.summary

    touched = repo.commit("scale", {"deploy/staging/app.yaml": manifest("redis:latest", 3)})
    harness.send_github(
        "pull_request", harness.github.pull_request_payload(REPO, pull.number, "synchronize")
    )
    failed = harness.completed_run(touched, "failure")
    assert [(a["start_line"], a["annotation_level"]) for a in failed.annotations] == [
        (11, "failure")
    ]
