"""A merge queue through the real server: the `changegate` check run on the queue's own
commit, with the queued pull requests' approvals counting for what each brought."""

from __future__ import annotations

from .conftest import REPO, Harness, manifest
from standins.gitrepo import GitRepo


def approved_pull(harness: Harness, repo: GitRepo, files: dict[str, str], branch: str) -> int:
    """A pull request changing `files`, approved by alice (senior) and green."""
    head = repo.commit(branch, files, "a change")
    number = harness.github.open_pull(REPO, head=branch, author="bob", title=branch).number
    harness.send_github("pull_request", harness.github.pull_request_payload(REPO, number))
    harness.completed_run(head, "action_required")
    review = harness.github.add_review(REPO, number, "alice", "APPROVED")
    harness.send_github("pull_request_review", harness.github.review_payload(REPO, number, review))
    harness.completed_run(head, "success")
    return number


def test_a_queued_approved_prod_only_pull_request_passes_on_the_queue_commit(
    harness: Harness, repo: GitRepo
) -> None:
    number = approved_pull(harness, repo, {"deploy/production/app.yaml": manifest(replicas=3)},
                           "scale")  # fmt: skip
    payload = harness.github.queue_pulls(REPO, [number])
    harness.send_github("merge_group", payload)
    head = payload["merge_group"]["head_sha"]
    run = harness.completed_run(head, "success")
    assert run.title is not None and run.title.startswith("Passed")
    assert run.name == "changegate"


def test_a_group_smuggling_an_unapproved_production_file_needs_its_own_approval(
    harness: Harness, repo: GitRepo
) -> None:
    number = approved_pull(harness, repo, {"deploy/production/app.yaml": manifest(replicas=3)},
                           "scale")  # fmt: skip
    smuggled = {"deploy/production/worker.yaml": manifest("nginx:1.25.3", replicas=1)}
    payload = harness.github.queue_pulls(REPO, [number], also=smuggled)
    harness.send_github("merge_group", payload)
    run = harness.completed_run(payload["merge_group"]["head_sha"], "action_required")
    assert run.title == "Approval required (prod-only)"
    # the file alice approved is flagged too, but it is worker.yaml nobody approved
    assert {a["path"] for a in run.annotations} == {
        "deploy/production/app.yaml",
        "deploy/production/worker.yaml",
    }


def test_a_second_unapproved_pull_request_in_the_group_is_not_covered_by_the_first(
    harness: Harness, repo: GitRepo
) -> None:
    first = approved_pull(harness, repo, {"deploy/production/app.yaml": manifest(replicas=3)},
                          "scale")  # fmt: skip
    repo.commit("more", {"deploy/production/db.yaml": manifest(replicas=1)}, "more")
    second = harness.github.open_pull(REPO, head="more", author="bob", title="more").number
    payload = harness.github.queue_pulls(REPO, [first, second])
    harness.send_github("merge_group", payload)
    harness.completed_run(payload["merge_group"]["head_sha"], "action_required")
