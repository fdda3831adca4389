"""The stand-ins refuse what GitHub and Slack refuse, through the real clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import github as pygithub
import pytest
from github.Repository import Repository
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from standins import contract
from standins.github import GitHubStandIn, app_key_pair
from standins.gitrepo import GitRepo
from standins.slack import TOKEN, SlackStandin

APP_ID = 77


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    return app_key_pair()


@pytest.fixture
def repo(tmp_path: Path, keys: tuple[str, str]) -> Iterator[Repository]:
    """acme/app on a GitHub stand-in, through PyGithub; its `head` is main's commit."""
    with GitHubStandIn(APP_ID, keys[1]) as standin:
        git = GitRepo(tmp_path / "app.git")
        git.commit("main", {"README.md": "# app\n"}, "initial commit")
        standin.add_repo("acme/app", git, installation_id=1)
        auth = pygithub.Auth.AppAuth(APP_ID, keys[0]).get_installation_auth(1)
        client = pygithub.Github(auth=auth, base_url=standin.url, retry=None)
        repository = client.get_repo("acme/app")
        repository.head = git.branch_sha("main")  # type: ignore[attr-defined]
        yield repository


def annotation(line: int) -> dict[str, object]:
    return {"path": "README.md", "start_line": line, "end_line": line,
            "annotation_level": "failure", "message": "no"}  # fmt: skip


def test_a_check_run_with_50_annotations_is_accepted(repo: Repository) -> None:
    head = repo.head
    output = {"title": "t", "summary": "s", "annotations": [annotation(1)] * 50}
    run = repo.create_check_run("changegate", head, status="completed", conclusion="failure",
                                output=output)  # fmt: skip
    assert run.conclusion == "failure"


def test_51_annotations_are_refused_like_github_refuses_them(repo: Repository) -> None:
    head = repo.head
    output = {"title": "t", "summary": "s", "annotations": [annotation(1)] * 51}
    with contract.refusals() as refused, pytest.raises(pygithub.GithubException) as raised:
        repo.create_check_run("changegate", head, output=output)
    assert raised.value.status == 422
    assert refused == [
        "GitHub stand-in: POST /repos/{owner}/{repo}/check-runs: "
        "body: output/annotations: breaks maxItems=50"
    ]


def test_a_conclusion_outside_the_enum_is_refused(repo: Repository) -> None:
    head = repo.head
    with contract.refusals() as refused, pytest.raises(pygithub.GithubException) as raised:
        repo.create_check_run("changegate", head, status="completed", conclusion="passed")
    assert raised.value.status == 422
    assert any("conclusion" in r for r in refused), refused


def test_a_route_github_does_not_have_is_a_violation(repo: Repository) -> None:
    with contract.refusals() as refused, pytest.raises(pygithub.GithubException) as raised:
        repo._requester.requestJsonAndCheck("GET", "/repos/acme/app/verdicts")
    assert raised.value.status == 404
    assert refused == [
        "GitHub stand-in: GET /repos/acme/app/verdicts: no such route in GitHub's REST API"
    ]


@pytest.fixture
def slack() -> Iterator[WebClient]:
    with SlackStandin.running() as standin:
        yield WebClient(token=TOKEN, base_url=standin.api_url)


def test_slack_refuses_a_message_without_a_channel(slack: WebClient) -> None:
    with contract.refusals() as refused, pytest.raises(SlackApiError) as raised:
        slack.api_call("chat.postMessage", json={"text": "hello"})
    assert raised.value.response["error"] == "invalid_arguments"
    assert refused == ["Slack stand-in: chat.postMessage: missing required argument 'channel'"]


def test_slack_refuses_a_method_it_does_not_have(slack: WebClient) -> None:
    with contract.refusals() as refused, pytest.raises(SlackApiError):
        slack.api_call("chat.sendApproval", json={"channel": "C0APPROVALS"})
    assert refused == ["Slack stand-in: chat.sendApproval: no such method in Slack's Web API"]


def test_slack_accepts_a_valid_message(slack: WebClient) -> None:
    answer = slack.chat_postMessage(channel="C0APPROVALS", text="hello")
    assert answer["ok"] is True
