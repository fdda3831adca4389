"""Changes bigger than GitHub's file list: 3,001 padding files hid `nginx:latest` in
`zz/k8s/app.yaml` and the pull request got `success`."""

from __future__ import annotations

from e2e.conftest import REPO, Harness, manifest, wait_for

from standins.gitrepo import GitRepo


def padding(count: int, dirs: int = 1) -> dict[str, str]:
    return {f"pad/d{i % dirs:04}/f{i:05}.txt": f"{i}\n" for i in range(count)}


def open_pull(harness: Harness, repo: GitRepo, files: dict[str, str]) -> str:
    head = repo.commit("big", files, "a big change")
    pull = harness.github.open_pull(REPO, head="big", author="bob", title="Padding")
    harness.send_github("pull_request", harness.github.pull_request_payload(REPO, pull.number))
    return head


def test_an_image_after_3000_padding_files_is_still_found(harness: Harness, repo: GitRepo) -> None:
    head = open_pull(harness, repo, {**padding(3001), "zz/k8s/app.yaml": manifest("nginx:latest")})
    run = harness.completed_run(head)
    assert run.conclusion == "failure"
    assert [a["path"] for a in run.annotations] == ["zz/k8s/app.yaml"]


def test_a_change_too_big_to_list_even_by_trees_fails_with_a_reason(
    harness: Harness, repo: GitRepo
) -> None:
    # 700 directories and trees GitHub cuts short: the walk needs more than 600 requests
    harness.github.tree_entry_limit = 1000
    head = open_pull(
        harness, repo, {**padding(3001, dirs=700), "zz/k8s/app.yaml": manifest("nginx:latest")}
    )
    run = wait_for(  # some 600 tree requests first: give a loaded machine time
        lambda: next((r for r in harness.github.runs_for(REPO, head) if r.conclusion), None),
        timeout=180,
        what="the check run",
    )
    assert run.conclusion == "failure"
    assert "changegate" in (run.summary or "") and "600 API requests" in (run.summary or "")
    assert len(harness.github.calls("GET", r"/git/trees/")) <= 600
