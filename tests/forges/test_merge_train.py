"""GitLab merge trains: a car's pipeline judged on the train commit, with what each merge
request in the train brought (bot/forges/gitlab/merge_train.py), against the GitLab stand-in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.change import Approval, Decision
from bot.forges import Delivery, Landed, Work
from bot.forges.gitlab import GitLabForge, GitLabOptions, clear_caches
from bot.forges.gitlab.merge_train import train_numbers
from bot.policy.evaluate import evaluate
from bot.policy.schema import load_policy_text

from standins.gitlab import GitLabStandIn
from standins.gitrepo import GitRepo

PAYLOAD = (
    Path(__file__).resolve().parent.parent / "payloads" / "gitlab" / "pipeline_merge_train.json"
)
TOKEN = "glpat-changegate-tests"
PATH = "acme/platform/payments"
POLICY = load_policy_text(
    """
version: 1
environments:
  production: {paths: ["deploy/production/**"]}
groups:
  senior: {gitlab: ["alice"]}
rules:
  - id: prod-only
    kind: prod-only-change
    action: require-approval
    approvers: senior
""",
    "policy.yml",
)


@pytest.fixture(scope="module")
def running_server() -> Iterator[GitLabStandIn]:
    with GitLabStandIn(token=TOKEN) as standin:
        yield standin


@pytest.fixture
def server(running_server: GitLabStandIn) -> GitLabStandIn:
    running_server.reset()
    return running_server


@pytest.fixture
def forge(server: GitLabStandIn) -> GitLabForge:
    clear_caches()
    return GitLabForge(server.url, TOKEN, GitLabOptions(max_rate_limit_wait=5))


@pytest.fixture
def repo(tmp_path: Path, server: GitLabStandIn) -> GitRepo:
    git = GitRepo(tmp_path / "payments.git")
    git.commit("main", {"README.md": "# payments\n", "deploy/production/db.yaml": "a: 1\n"})
    server.add_project(PATH, git, project_id=4242)
    return git


def parse(forge: GitLabForge, payload: dict[str, Any]) -> Work:
    body = json.dumps(payload).encode()
    return forge.parse(Delivery("k", "gitlab", "Pipeline Hook", body))


def open_mr(server: GitLabStandIn, repo: GitRepo, branch: str, files: dict[str, Any]) -> int:
    repo.commit(branch, files, branch)
    return server.open_mr(PATH, branch, title=branch.title(), author="dana").iid


def test_the_train_names_its_cars_in_the_merge_commits_it_wrote():
    messages = [
        "Merge branch 'a' into 'main'\n\nA\n\nSee merge request acme/platform/payments!7",
        "Squashed: no number here",
        "Merge branch 'b' into 'main'\n\nB\n\nSee merge request !9",
    ]
    assert train_numbers(12, messages) == [7, 9, 12]
    assert train_numbers(7, messages) == [9, 7]  # its own comes last


def test_the_documented_train_pipeline_is_judged_on_the_train_commit(
    server: GitLabStandIn, forge: GitLabForge, repo: GitRepo
) -> None:
    iid = open_mr(server, repo, "ledger-index", {"deploy/production/app.yaml": "replicas: 2\n"})
    assert iid == 1
    train = server.train_mrs(PATH, [iid])
    payload = json.loads(PAYLOAD.read_text())  # GitLab's documented shape, about MR !12
    payload["object_attributes"].update(
        status="pending",
        sha=train["object_attributes"]["sha"],
        ref=f"refs/merge-requests/{iid}/train",
    )
    payload["merge_request"]["iid"] = iid

    work = parse(forge, payload)

    assert (work.action, work.subject) == ("evaluate", f"gitlab:{PATH}!{iid}/train"), work.reason
    change = work.change
    assert change is not None and change.number is None
    assert (change.base, change.head) == (
        repo.branch_sha("main"),
        payload["object_attributes"]["sha"],
    )
    assert change.title == "merge train for main: !1 Ledger-Index"
    assert change.author == "dana" and change.base_ref == "main"
    head = repo.branch_sha("ledger-index") or ""
    assert work.landed == (
        Landed(f"gitlab:{PATH}!1", 1, head, frozenset({"", "deploy/production/app.yaml"})),
    )

    # the approval carried over passes the car; the status goes on the train commit's ref
    approval = Approval("gitlab", "alice", change.head, covers=work.landed[0].covers)
    verdict = evaluate(POLICY, forge.view(change), [approval])
    assert verdict.decision is Decision.PASS
    forge.publish(change, verdict, "http://127.0.0.1/v/x")
    (status,) = server.statuses_for(PATH, change.head, "changegate")
    assert (status.state, status.ref) == ("success", f"refs/merge-requests/{iid}/train")


def test_a_file_no_car_brought_is_covered_by_nobody(
    server: GitLabStandIn, forge: GitLabForge, repo: GitRepo
) -> None:
    first = open_mr(server, repo, "one", {"deploy/production/app.yaml": "replicas: 2\n"})
    second = open_mr(server, repo, "two", {"deploy/production/db.yaml": None})
    train = server.train_mrs(PATH, [first, second], also={"deploy/production/x.yaml": "x: 1\n"})
    work = parse(forge, train)
    assert work.action == "evaluate" and work.change is not None
    assert work.change.title == "merge train for main: !1 One, !2 Two"
    assert [(landed.number, landed.covers) for landed in work.landed] == [
        (1, {"deploy/production/app.yaml"}),
        (2, {"deploy/production/db.yaml"}),
    ]
    approvals = [
        Approval("gitlab", "alice", work.change.head, covers=landed.covers)
        for landed in work.landed
    ]
    verdict = evaluate(POLICY, forge.view(work.change), approvals)
    assert verdict.decision is Decision.APPROVAL_REQUIRED  # x.yaml: nobody's


@pytest.mark.parametrize("status", ["running", "success", "failed", "canceled"])
def test_only_the_start_of_a_train_pipeline_is_judged(
    server: GitLabStandIn, forge: GitLabForge, repo: GitRepo, status: str
) -> None:
    iid = open_mr(server, repo, "one", {"deploy/production/app.yaml": "replicas: 2\n"})
    work = parse(forge, server.train_mrs(PATH, [iid], status=status))
    assert (work.action, work.reason) == (
        "ignore",
        f"train pipeline {status}: judged when it started",
    )


def test_a_merge_request_pipeline_that_is_not_a_train_is_not_a_train(
    server: GitLabStandIn, forge: GitLabForge, repo: GitRepo
) -> None:
    iid = open_mr(server, repo, "one", {"deploy/production/app.yaml": "replicas: 2\n"})
    payload = server.train_mrs(PATH, [iid])
    payload["object_attributes"]["ref"] = f"refs/merge-requests/{iid}/head"
    work = parse(forge, payload)
    assert work.action == "ignore" and work.subject.endswith(
        "/pipelines/" + str(payload["object_attributes"]["id"])
    )
