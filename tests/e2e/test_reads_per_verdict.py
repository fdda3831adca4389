"""API economy of one verdict, counted at the GitHub stand-in: a pull request's files are
read once each (fetched together, bounded), and a re-run at the same head reads none."""

from __future__ import annotations

from .conftest import REPO, Harness, manifest
from standins.gitrepo import GitRepo

FILES = 20
#: what a verdict asks besides reading files: the pull request's file list, its merge base
#: (compare) and its reviews. Reading files: each changed file's blob, the repository policy
#: from the default branch, path lookups (kustomization.yaml in parent directories) and the
#: tree that answers further lookups.
BESIDES_FILES = 3


def _reads(harness: Harness, since: int) -> list[str]:
    """GET paths the stand-in answered since the `since`-th request (token minting aside)."""
    return [
        r.path
        for r in harness.github.requests[since:]
        if r.method == "GET" and "/access_tokens" not in r.path
    ]


def _file_reads(paths: list[str]) -> list[str]:
    return [p for p in paths if any(k in p for k in ("/git/blobs/", "/contents/", "/git/trees/"))]


def _change_contents(paths: list[str]) -> list[str]:
    """Reads of the change's own files (the policy comes from the default branch)."""
    return [p for p in _file_reads(paths) if not p.endswith("/contents/.changegate.yml")]


def test_a_verdict_reads_each_file_once_and_a_rerun_reads_none(
    harness: Harness, repo: GitRepo
) -> None:
    files = {f"deploy/staging/app-{i}.yaml": manifest(f"nginx:1.25.{i}") for i in range(FILES)}
    head = repo.commit("many", files, "twenty manifests")
    pull = harness.github.open_pull(REPO, head="many", author="bob", title="Many files")
    payload = harness.github.pull_request_payload(REPO, pull.number)

    before = len(harness.github.requests)
    harness.send_github("pull_request", payload)
    harness.completed_run(head, "success")
    harness.settled()
    parse, *verdict = _reads(harness, before)  # the pull request as it is now, then the verdict
    assert parse.endswith(f"/pulls/{pull.number}")
    assert len([p for p in verdict if "/git/blobs/" in p]) == FILES  # each changed file once
    assert len(verdict) <= BESIDES_FILES + len(_file_reads(verdict)), verdict

    again = len(harness.github.requests)
    harness.send_github("pull_request", harness.github.pull_request_payload(REPO, pull.number))
    harness.settled()
    assert len(harness.github.runs_for(REPO, head)) == 2  # evaluated again
    assert _change_contents(_reads(harness, again)) == []
