"""slack-sdk's WebClient against the stand-in: retries, errors an admin can act on, user
groups and e-mails (cached)."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient

from bot.policy.schema import Policy
from bot.slack.client import (
    SlackError,
    SlackNotifier,
    UserGroupResolver,
    UserGroupsUnavailable,
    email_of,
    make_client,
)
from bot.slack.signing import ButtonSigner

from .conftest import make_request
from standins.slack import SlackStandin, SlackState


def test_rate_limited_post_is_retried(
    slack: SlackStandin, client: WebClient, signer: ButtonSigner, policy: Policy
) -> None:
    before = len(slack.calls)
    slack.rate_limit("chat.postMessage", times=1, retry_after=0)
    channel, ts = SlackNotifier(client, signer).post_request(
        make_request(), policy.groups["senior"], "C0APPROVALS"
    )
    statuses = [c.status for c in slack.calls[before:] if c.method == "chat.postMessage"]
    assert statuses == [429, 200]
    assert slack.message(channel, ts)


def test_slack_errors_are_reported(client: WebClient, signer: ButtonSigner, policy: Policy) -> None:
    with pytest.raises(SlackError, match="channel_not_found"):
        SlackNotifier(client, signer).post_request(make_request(), None, "C0NOWHERE")


def test_user_groups_are_cached(slack: SlackStandin, client: WebClient, policy: Policy) -> None:
    clock = [1000.0]
    resolver = UserGroupResolver(client, ttl=60, clock=lambda: clock[0])
    before = len(slack.calls_of("usergroups.users.list"))
    directory = resolver.directory(policy, ["senior"])
    assert directory.expand("S0SRELEADS") == {"u0carol", "u0dave"}
    resolver.directory(policy, ["senior"])
    assert len(slack.calls_of("usergroups.users.list")) == before + 1
    clock[0] += 61
    resolver.members("S0SRELEADS")
    assert len(slack.calls_of("usergroups.users.list")) == before + 2


def test_unknown_user_group(client: WebClient) -> None:
    with pytest.raises(UserGroupsUnavailable, match="S0NOPE does not exist"):
        UserGroupResolver(client).members("S0NOPE")


def test_plan_without_user_groups_is_a_clear_error(client: WebClient) -> None:
    with SlackStandin.running(SlackState(plan_has_usergroups=False)) as free_plan:
        resolver = UserGroupResolver(make_client("xoxb-standin-token", free_plan.api_url))
        for _ in range(2):
            with pytest.raises(UserGroupsUnavailable, match="plan_upgrade_required") as err:
                resolver.members("S0SRELEADS")
        assert "List Slack user ids" in str(err.value)
        assert len(free_plan.calls_of("usergroups.users.list")) == 1  # the failure is cached


def test_email_of(client: WebClient) -> None:
    assert email_of(client, "U0BOB") == "bob@example.com"
    assert email_of(client, "U0GHOST") is None
