"""Forge API calls and the rate limit left reach /metrics, counted from real client traffic."""

from __future__ import annotations

from typing import Any

from bot import metrics
from bot.forges import Delivery
from bot.forges.github import GitHubForge

from standins.github import GitHubStandIn
from standins.gitrepo import GitRepo


def sample(name: str, **labels: str) -> float:
    return float(metrics.REGISTRY.get_sample_value(name, labels) or 0.0)


def test_github_requests_are_counted_with_their_status_class(
    forge: GitHubForge, github: GitHubStandIn, make_repo: Any
) -> None:
    repo: GitRepo = make_repo()
    repo.commit("feature", {"a.yaml": "a: 1\n"}, "feature work")
    number = github.open_pull("acme/app", "feature").number
    before_ok = sample("changegate_forge_api_calls_total", forge="github", status="2xx")
    body, headers = GitHubStandIn.webhook(
        "pull_request", github.pull_request_payload("acme/app", number, "opened"), "secret"
    )
    work = forge.parse(Delivery("d-m", "github", "pull_request", body, headers))
    assert work.action == "evaluate"
    served = len(github.calls("GET", r"/pulls/\d+$")) + len(
        github.calls("POST", r"/access_tokens$")
    )
    counted = sample("changegate_forge_api_calls_total", forge="github", status="2xx") - before_ok
    assert counted >= served >= 1
