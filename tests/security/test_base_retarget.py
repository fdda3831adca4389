"""Retargeting after approval: a pull request `sneaky -> innocuous` shows one production
file, a senior approves, the author changes the base to `main`, which adds a production
file nobody saw, and the check stayed `success`."""

from __future__ import annotations

import time
from pathlib import Path

from e2e.conftest import PROJECT, REPO, Harness, manifest, wait_for

from standins.gitrepo import GitRepo


def sneaky_pull(harness: Harness, repo: GitRepo) -> tuple[int, str]:
    """`innocuous` adds a production file; `sneaky`, on top of it, changes another one."""
    repo.commit("innocuous", {"deploy/production/backdoor.yaml": manifest(replicas=9)}, "hidden")
    head = repo.commit("sneaky", {"deploy/production/app.yaml": manifest(replicas=4)}, "scale")
    pull = harness.github.open_pull(REPO, head="sneaky", base="innocuous", author="bob")
    harness.send_github("pull_request", harness.github.pull_request_payload(REPO, pull.number))
    return pull.number, head


def approve_on_github(harness: Harness, number: int) -> None:
    review = harness.github.add_review(REPO, number, "alice", "APPROVED")
    harness.send_github("pull_request_review", harness.github.review_payload(REPO, number, review))


def newest_conclusion(harness: Harness, head: str, conclusion: str) -> None:
    def probe() -> bool:
        runs = sorted(harness.github.runs_for(REPO, head), key=lambda r: r.id)
        return bool(runs) and runs[-1].status == "completed" and runs[-1].conclusion == conclusion

    harness.settled()
    wait_for(probe, what=f"{conclusion} on {head[:7]}")


def test_retargeting_after_a_review_voids_the_review(harness: Harness, repo: GitRepo) -> None:
    number, head = sneaky_pull(harness, repo)
    newest_conclusion(harness, head, "action_required")
    approve_on_github(harness, number)
    newest_conclusion(harness, head, "success")

    harness.send_github("pull_request", harness.github.retarget_pull(REPO, number, "main"))
    newest_conclusion(harness, head, "action_required")  # alice saw one file, not two

    time.sleep(1.1)  # GitHub stamps reviews to the second
    approve_on_github(harness, number)  # approving what is shown now counts
    newest_conclusion(harness, head, "success")


def test_retargeting_supersedes_the_slack_request_for_the_old_diff(
    harness: Harness, repo: GitRepo
) -> None:
    number, head = sneaky_pull(harness, repo)
    first = harness.request_message("C0APPROVALS")

    harness.send_github("pull_request", harness.github.retarget_pull(REPO, number, "main"))
    harness.settled()
    [old] = harness.requests(state="superseded")
    assert old.message_ts == first.ts
    second = harness.request_message("C0APPROVALS", count=2)  # asks about the diff shown now
    [current] = harness.requests(state="pending")
    assert current.message_ts == second.ts and current.basis.startswith("main@")

    def old_message_retired() -> bool:
        with harness.slack._lock:
            current = harness.slack.messages[(first.channel, first.ts)]
            return all(b["type"] != "actions" for b in current.blocks)

    wait_for(old_message_retired, what="the old request's buttons to go")
    harness.click(first, "U0ALICE")  # a click on the old diff's message counts for nothing
    newest_conclusion(harness, head, "action_required")
    harness.click(second, "U0ALICE")
    newest_conclusion(harness, head, "success")


def test_retargeting_a_merge_request_voids_its_approvals(harness: Harness, tmp_path: Path) -> None:
    git = GitRepo(tmp_path / "gl.git")
    git.commit("main", {"deploy/production/app.yaml": manifest()}, "initial")
    git.commit("innocuous", {"deploy/production/backdoor.yaml": manifest(replicas=9)}, "hidden")
    head = git.commit("sneaky", {"deploy/production/app.yaml": manifest(replicas=4)}, "scale")
    gitlab = harness.gitlab
    gitlab.add_project(PROJECT, git)
    mr = gitlab.open_mr(PROJECT, "sneaky", "innocuous", author="bob")
    harness.send_gitlab("Merge Request Hook", gitlab.merge_request_payload(PROJECT, mr.iid))
    wait_for(lambda: gitlab_state(harness, head, "failed"), what="approval required")

    gitlab.approve(PROJECT, mr.iid, "alice")
    harness.send_gitlab(
        "Merge Request Hook", gitlab.merge_request_payload(PROJECT, mr.iid, "approved")
    )
    wait_for(lambda: gitlab_state(harness, head, "success"), what="approved")

    harness.send_gitlab("Merge Request Hook", gitlab.retarget_mr(PROJECT, mr.iid, "main"))
    wait_for(lambda: gitlab_state(harness, head, "failed"), what="the approval voided")


def gitlab_state(harness: Harness, head: str, state: str) -> bool:
    harness.settled()
    found = harness.gitlab.statuses_for(PROJECT, head, name="changegate")
    return bool(found) and found[-1].state == state
