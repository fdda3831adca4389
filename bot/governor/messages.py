"""The Slack side every governor module shares: who is in a group, and request messages.

`SlackRequests` exists only when Slack is configured; without it approvals come from the
forges alone and nothing is posted. It holds two sets of Slack clients: the workers' (with
retries) and the fast ones the HTTP endpoint uses while Slack's 3-second `trigger_id` is
alive (no retries, a short timeout).

No network call is made while a database session is open (on SQLite an open write
transaction holds the database's one write lock).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.approvals import requests
from bot.approvals.models import ApprovalRequestRecord
from bot.governor.policy import PolicyHolder
from bot.policy.approvers import Directory
from bot.policy.schema import DeployGate, Policy
from bot.settings import Settings, secret
from bot.slack.client import (
    SlackNotifier,
    UserGroupResolver,
    UserGroupsUnavailable,
    make_client,
)
from bot.slack.signing import ButtonSigner

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlackClients:
    """One workspace's notifier and user-group resolver, built on one WebClient."""

    notifier: SlackNotifier
    resolver: UserGroupResolver


class SlackRequests:
    """Approval requests in Slack: group members, posting and updating their messages."""

    def __init__(
        self,
        engine: Engine,
        holder: PolicyHolder,
        *,
        workers: SlackClients,
        endpoint: SlackClients,
        default_channel: str | None = None,
    ) -> None:
        self.engine = engine
        self.reader = engine.execution_options(sqlite_deferred=True)
        self.holder = holder
        self.notifier = workers.notifier
        self.resolver = workers.resolver
        self.fast_notifier = endpoint.notifier
        self.fast_resolver = endpoint.resolver
        self.signer = workers.notifier.signer
        self.default_channel = default_channel

    @classmethod
    def from_settings(
        cls, settings: Settings, engine: Engine, holder: PolicyHolder
    ) -> SlackRequests | None:
        """None when Slack is not configured (approvals then come from forges only)."""
        token, signing = secret(settings.slack_bot_token), secret(settings.slack_signing_secret)
        if not token or not signing:
            return None
        signer = ButtonSigner(signing)

        def clients(timeout: int, retries: int) -> SlackClients:
            client = make_client(token, settings.slack_api_url, timeout=timeout, retries=retries)
            return SlackClients(
                SlackNotifier(client, signer, break_glass=True),
                UserGroupResolver(
                    client,
                    ttl=settings.slack_usergroup_ttl_seconds,
                    match_email=settings.slack_match_email,
                ),
            )

        return cls(
            engine,
            holder,
            workers=clients(10, 3),
            # the request path may spend well under Slack's 3 s: no retries, a short timeout
            endpoint=clients(2, 0),
            default_channel=settings.slack_default_channel,
        )

    # -- people ------------------------------------------------------------------------
    def directory(
        self, policy: Policy, groups: Sequence[str] | None = None, *, fast: bool = False
    ) -> Directory:
        """Slack user groups of `groups` resolved; a workspace without them resolves none
        (its user ids still count) and the failure is logged, not raised."""
        resolver = self.fast_resolver if fast else self.resolver
        try:
            return resolver.directory(policy, groups)
        except UserGroupsUnavailable as exc:
            log.warning("%s", exc)
            return Directory()

    # -- channels ----------------------------------------------------------------------
    def change_channel(self, policy: Policy, rules: Sequence[str], group: str) -> str | None:
        """Where a change's request goes: its first rule's channel, its group's, or the
        default."""
        by_id = {r.id: r for r in policy.rules}
        for rule_id in rules:
            rule = by_id.get(rule_id)
            if rule is not None and rule.slack_channel:
                return rule.slack_channel
        found = policy.groups.get(group)
        if found is not None and found.slack_channel:
            return found.slack_channel
        return self.default_channel

    def deploy_channel(self, policy: Policy, gate: DeployGate) -> str | None:
        """Where a deploy's request goes: the gate's channel, its group's, or the default."""
        group = policy.groups.get(gate.approvers)
        if gate.slack_channel:
            return gate.slack_channel
        if group is not None and group.slack_channel:
            return group.slack_channel
        return self.default_channel

    # -- messages ----------------------------------------------------------------------
    def _request(self, request_id: str) -> ApprovalRequestRecord | None:
        with Session(self.reader) as session:
            request = requests.get_request(session, request_id)
            if request is not None:
                session.expunge(request)
            return request

    def post_requests(self, request_ids: Iterable[str]) -> None:
        """Post each open request that has no message yet."""
        policy = self.holder.policy
        for request_id in request_ids:
            request = self._request(request_id)
            if request is None or not request.is_open or request.message_ts:
                continue
            channel = request.channel or self.default_channel
            if not channel:
                log.warning(
                    "approval request %s (%s) has no Slack channel: set slack_channel on "
                    "the rule, the group or the deploy gate, or CHANGEGATE_SLACK_DEFAULT_CHANNEL",
                    request.id,
                    request.subject,
                )
                continue
            posted_channel, ts = self.notifier.post_request(
                request, policy.groups.get(request.group_name), channel
            )
            with Session(self.engine, expire_on_commit=False) as session:
                requests.set_message(session, request.id, posted_channel, ts)
                session.commit()

    def update_messages(self, request_ids: Iterable[str]) -> None:
        """Bring each request's posted message in line with its state."""
        policy = self.holder.policy
        for request_id in dict.fromkeys(request_ids):
            request = self._request(request_id)
            if request is not None and request.message_ts:
                self.notifier.update_request(request, policy.groups.get(request.group_name))
