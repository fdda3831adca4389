"""GitHub merge groups parsed into a change on the queue's commit, with what each queued
pull request brought (bot/forges/github/merge_queue.py), against the GitHub stand-in."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bot.change import ChangedFile, FileStatus
from bot.forges import Delivery, Landed
from bot.forges.github.merge_queue import queued_numbers

from payloads.octokit import examples
from standins.github import GitHubStandIn
from standins.gitrepo import GitRepo

SECRET = "webhook-secret"


def deliver(payload: dict[str, Any], event: str = "merge_group") -> Delivery:
    body, headers = GitHubStandIn.webhook(event, payload, SECRET, delivery="d-1")
    return Delivery("d-1", "github", event, body, headers)


def test_the_queue_names_its_requests_in_its_branch_and_its_commit_messages():
    head_ref = "refs/heads/gh-readonly-queue/main/pr-104-929f8209d40f77f4abc622a499c93a83babdbe64"
    messages = [
        "Bump replicas (#101)\n\nsquashed",
        "Merge pull request #102 from acme/feature\n\nTitle",
        "Rebased commit without a number",
        "Mentions #103 in passing",
        "Squash again (#101)",
    ]
    assert queued_numbers(head_ref, messages) == [101, 102, 104]
    assert queued_numbers("refs/heads/main", []) == []


def test_the_octokit_merge_group_examples_are_judged_on_their_head(forge, github, tmp_path):
    cases = [c for c in examples() if c.event == "merge_group"]
    assert {c.payload["action"] for c in cases} == {"checks_requested"}
    for index, case in enumerate(cases):
        repo = GitRepo(tmp_path / f"octo-repo-{index}.git")
        repo.commit("main", {"README.md": "# octo\n"}, "initial commit")
        github.add_repo("octo-org/octo-repo", repo, installation_id=1)
        repo.commit("feature", {"deploy/app.yaml": "replicas: 2\n"}, "feature work")
        github.open_pull("octo-org/octo-repo", "feature", title="Scale up", author="bob")
        queued = github.queue_pulls("octo-org/octo-repo", [1])
        payload = copy.deepcopy(case.payload)  # the example, at SHAs the stand-in holds
        for key in ("head_sha", "base_sha"):
            payload["merge_group"][key] = queued["merge_group"][key]
        work = forge.parse(deliver(payload))
        assert work.action == "evaluate", work.reason
        head_ref = case.payload["merge_group"]["head_ref"]
        assert work.subject == "github:octo-org/octo-repo@merge_group:" + head_ref.removeprefix(
            "refs/heads/"
        )
        assert work.change is not None
        assert (work.change.base, work.change.head) == (
            queued["merge_group"]["base_sha"],
            queued["merge_group"]["head_sha"],
        )
        assert (work.change.number, work.change.base_ref) == (None, "main")
        assert work.change.title == "merge queue for main: #1 Scale up"
        assert work.change.author == "bob"  # #104, named by the branch, does not exist
        assert work.landed[0].covers == {"", "deploy/app.yaml"}


def test_each_request_covers_the_files_of_the_group_holding_what_it_brought(
    forge, github, make_repo
):
    repo = make_repo(files={"README.md": "# app\n", "deploy/db.yaml": "size: 1\n"})
    repo.commit("one", {"deploy/app.yaml": "replicas: 2\n", "deploy/db.yaml": None}, "one")
    first = github.open_pull("acme/app", "one", title="First", labels=["infra"]).number
    repo.commit("two", {"deploy/web.yaml": "replicas: 3\n"}, "two")
    second = github.open_pull("acme/app", "two", title="Second", author="carol").number
    repo.commit("three", {"README.md": "# app v2\n"}, "three")
    third = github.open_pull("acme/app", "three", title="Third", labels=["docs"]).number
    # the queue's branch also gets a commit nobody reviewed: a new file, and web.yaml again
    also = {"deploy/extra.yaml": "smuggled: true\n", "deploy/web.yaml": "replicas: 9\n"}
    payload = github.queue_pulls("acme/app", [first, second, third], also=also)
    work = forge.parse(deliver(payload))
    assert work.action == "evaluate" and work.change is not None
    assert work.change.title == "merge queue for main: #1 First, #2 Second, #3 Third"
    assert work.change.labels == ("docs", "infra")
    assert work.change.author == "dev"  # #3's, named by the queue's branch
    heads = {n: repo.branch_sha(b) for n, b in ((1, "one"), (3, "three"))}
    assert work.landed == (  # #2 brought web.yaml at 3 replicas, not 9
        Landed("github:acme/app#1", 1, heads[1], frozenset({"deploy/app.yaml", "deploy/db.yaml"})),
        Landed("github:acme/app#3", 3, heads[3], frozenset({"README.md"})),
    )
    files = forge.view(work.change).changed_files()
    assert ChangedFile("deploy/extra.yaml", FileStatus.ADDED) in files


def test_a_queued_request_that_is_gone_covers_nothing(forge, github, make_repo):
    repo = make_repo()
    repo.commit("one", {"deploy/app.yaml": "replicas: 2\n"}, "one")
    number = github.open_pull("acme/app", "one", title="First").number
    payload = github.queue_pulls("acme/app", [number])
    github.repos["acme/app"].pulls[number].state = "closed"
    work = forge.parse(deliver(payload))
    assert work.action == "evaluate" and work.landed == ()
    del github.repos["acme/app"].pulls[number]
    assert forge.parse(deliver(payload)).landed == ()


@pytest.mark.parametrize("reason", ["merged", "invalidated", "dequeued"])
def test_a_destroyed_group_is_ignored_with_its_reason(forge, github, make_repo, reason):
    repo = make_repo()
    repo.commit("one", {"deploy/app.yaml": "replicas: 2\n"}, "one")
    payload = github.queue_pulls("acme/app", [github.open_pull("acme/app", "one").number])
    payload = {**payload, "action": "destroyed", "reason": reason}
    work = forge.parse(deliver(payload))
    assert (work.action, work.reason) == (
        "ignore",
        f"merge_group destroyed ({reason}): nothing to check",
    )
    assert work.subject.startswith("github:acme/app@merge_group:gh-readonly-queue/main/pr-1-")


def test_a_rerun_of_the_groups_check_run_judges_the_group_again(forge, github, make_repo):
    """Re-run from the checks tab: GitHub sends `check_run` `rerequested` for the queue's
    commit, whose suite names the queue's branch; it is judged as the group, not a push."""
    repo = make_repo()
    repo.commit("one", {"deploy/app.yaml": "replicas: 2\n"}, "one")
    number = github.open_pull("acme/app", "one", title="First").number
    work = forge.parse(deliver(github.queue_pulls("acme/app", [number])))
    assert work.change is not None
    forge.start(work.change, "http://127.0.0.1/v/x")
    (run,) = github.runs_for("acme/app", work.change.head)
    again = forge.parse(deliver(github.check_run_payload(run.id), "check_run"))
    assert again.action == "evaluate"
    assert (again.subject, again.change, again.landed) == (work.subject, work.change, work.landed)
    assert again.landed and again.landed[0].number == number
