"""Talking to Slack with slack-sdk's WebClient: request messages, replies, modals, user groups.

The WebClient retries rate limits (honouring Retry-After) and dropped connections, which
sleeps: call it from workers, never from a request handler (the endpoint's fast path uses
a client with a short timeout and no retries). A failed call is a `SlackError` whose
message says what an admin must fix.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from bot.approvals.models import ApprovalRequestRecord
from bot.policy.approvers import Directory
from bot.policy.schema import Group, Policy
from bot.slack.blocks import (
    approver_mentions,
    break_glass_modal,
    date_token,
    escape,
    is_usergroup,
    reject_modal,
    request_blocks,
    request_text,
)
from bot.slack.interactions import Click
from bot.slack.signing import ButtonSigner

log = logging.getLogger(__name__)


class SlackError(Exception):
    """A Slack call failed in a way an admin must fix; the message says how."""


class UserGroupsUnavailable(SlackError):
    """The workspace cannot resolve user groups (plan, scope, or unknown id)."""


def make_client(
    token: str, base_url: str = "https://slack.com/api/", *, timeout: int = 10, retries: int = 3
) -> WebClient:
    """A WebClient that honours 429 Retry-After and retries dropped connections."""
    if not base_url.endswith("/"):
        base_url += "/"
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=timeout,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=retries),
            RateLimitErrorRetryHandler(max_retry_count=retries),
        ],
    )


class SlackNotifier:
    """Posts and updates request messages, replies to clickers, opens the reason modals."""

    def __init__(
        self, client: WebClient, signer: ButtonSigner, *, break_glass: bool = False
    ) -> None:
        self.client = client
        self.signer = signer
        self.break_glass = break_glass  # offer the Break glass button on open requests
        self._team_id: str | None = None

    def team_id(self) -> str:
        """The workspace the bot is installed in (`auth.test`), asked once: interactions
        from any other workspace are refused. SlackError if Slack cannot say."""
        if self._team_id is None:
            team = str(self._call(self.client.auth_test).get("team_id") or "")
            if not team:
                raise SlackError("Slack auth.test named no team_id")
            self._team_id = team
        return self._team_id

    def post_request(
        self, request: ApprovalRequestRecord, group: Group | None, channel: str
    ) -> tuple[str, str]:
        """chat.postMessage; returns (channel id, ts) to store with the request."""
        response = self._call(
            self.client.chat_postMessage,
            channel=channel,
            text=request_text(request),
            blocks=request_blocks(
                request, group=group, signer=self.signer, break_glass=self.break_glass
            ),
            unfurl_links=False,
        )
        return str(response["channel"]), str(response["ts"])

    def update_request(self, request: ApprovalRequestRecord, group: Group | None) -> None:
        """chat.update after a decision: who decided and when; buttons gone unless pending."""
        if not request.channel or not request.message_ts:
            return
        self._call(
            self.client.chat_update,
            channel=request.channel,
            ts=request.message_ts,
            text=request_text(request),
            blocks=request_blocks(
                request, group=group, signer=self.signer, break_glass=self.break_glass
            ),
        )

    def remind(self, request: ApprovalRequestRecord, group: Group | None) -> None:
        """A threaded nudge under the request, mentioning who can approve."""
        if not request.channel or not request.message_ts:
            return
        mentions = ", ".join(approver_mentions(group)) or request.group_name
        self._call(
            self.client.chat_postMessage,
            channel=request.channel,
            thread_ts=request.message_ts,
            reply_broadcast=True,
            text=f"Reminder: {mentions}, this request expires {date_token(request.expires_at)}.",
        )

    def reply(self, channel: str, user: str, text: str) -> None:
        """An ephemeral answer only the clicker sees (a refusal, a confirmation)."""
        self._call(self.client.chat_postEphemeral, channel=channel, user=user, text=escape(text))

    def announce(self, channel: str, text: str, *, thread_ts: str | None = None) -> str:
        response = self._call(
            self.client.chat_postMessage, channel=channel, text=text, thread_ts=thread_ts
        )
        return str(response["ts"])

    def open_reject_modal(self, click: Click) -> None:
        self._call(
            self.client.views_open,
            trigger_id=click.trigger_id,
            view=reject_modal(
                self.signer, click.request_id, click.sha, click.channel_id, click.message_ts
            ),
        )

    def open_break_glass_modal(self, click: Click) -> None:
        self._call(
            self.client.views_open,
            trigger_id=click.trigger_id,
            view=break_glass_modal(
                self.signer, click.request_id, click.sha, click.channel_id, click.message_ts
            ),
        )

    @staticmethod
    def _call(method: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            raise SlackError(f"Slack {error or exc}") from exc


class UserGroupResolver:
    """Members of Slack user groups (`usergroups.users.list`), and with `match_email` the
    e-mail of Slack users (`users.info`), each cached for `ttl` seconds.

    Failures are cached too, so a workspace without user groups is not asked on every
    click. Needs the `usergroups:read` scope, and `users:read.email` to match by e-mail.
    """

    def __init__(
        self,
        client: WebClient,
        *,
        ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        match_email: bool = False,
    ) -> None:
        self.client = client
        self.ttl = ttl
        self.clock = clock
        self.match_email = match_email
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}  # (what, id) -> expiry, value
        self._lock = threading.Lock()

    def _cached(self, key: tuple[str, str], fetch: Callable[[], Any]) -> Any:
        now = self.clock()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = fetch()
        with self._lock:
            self._cache[key] = (now + self.ttl, value)
        return value

    def email(self, system: str, user: str) -> str | None:
        """A Slack user's e-mail, cached; None for other systems and unknown users."""
        if system != "slack":
            return None
        return cast(str | None, self._cached(("email", user), lambda: email_of(self.client, user)))

    def members(self, usergroup: str) -> frozenset[str]:
        result = self._cached(("usergroup", usergroup), lambda: self._fetch_members(usergroup))
        if isinstance(result, UserGroupsUnavailable):
            raise result
        return cast(frozenset[str], result)

    def _fetch_members(self, usergroup: str) -> frozenset[str] | UserGroupsUnavailable:
        try:
            response = self.client.usergroups_users_list(usergroup=usergroup)
        except SlackApiError as exc:
            return _group_error(usergroup, exc)
        return frozenset(str(u) for u in response.get("users") or [])

    def directory(self, policy: Policy, groups: Sequence[str] | None = None) -> Directory:
        """A Directory expanding every user group named in the given groups' `slack:`."""
        members: dict[str, frozenset[str]] = {}
        for name in groups if groups is not None else list(policy.groups):
            group = policy.groups.get(name)
            for entry in group.slack if group else []:
                if is_usergroup(entry) and entry not in members:
                    members[entry] = self.members(entry)
        return Directory(members=members, email_of=self.email if self.match_email else None)


def _group_error(usergroup: str, exc: SlackApiError) -> UserGroupsUnavailable:
    error = exc.response.get("error") if exc.response is not None else None
    if error == "plan_upgrade_required":
        return UserGroupsUnavailable(
            f"Slack user group {usergroup} cannot be resolved: this workspace's plan has no "
            "user groups (plan_upgrade_required). List Slack user ids (U…) in the policy's "
            "groups instead."
        )
    if error == "missing_scope":
        return UserGroupsUnavailable(
            f"Slack user group {usergroup} cannot be resolved: the bot token lacks the "
            "usergroups:read scope."
        )
    if error == "no_such_subteam":
        return UserGroupsUnavailable(f"Slack user group {usergroup} does not exist.")
    return UserGroupsUnavailable(f"Slack user group {usergroup} cannot be resolved: {error}")


def email_of(client: WebClient, user_id: str) -> str | None:
    """A Slack user's e-mail (`users.info`, needs users:read.email), for matching people
    across systems when the policy's `people:` does not list them."""
    try:
        response = client.users_info(user=user_id)
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        if error == "missing_scope":
            log.warning("matching people by e-mail needs the users:read.email scope")
        return None
    profile = (response.get("user") or {}).get("profile") or {}
    email = profile.get("email")
    return str(email).lower() if email else None
