"""Block Kit for approval requests: the message (and its updates) and the reason modals.

`request_blocks` is the message a request is posted as and updated to: a header, what
and whose the change is, what needs approval, who can approve, and either the buttons
(pending) or who decided and when. Every text a user wrote (titles, reasons, paths,
environment names) goes through `escape`, so it cannot ping a channel or disguise a
link; every text is clipped to Block Kit's limits.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

from bot.approvals.models import ApprovalRequestRecord, RequestKind, RequestState
from bot.change import Finding
from bot.policy.schema import Group
from bot.slack.interactions import (
    APPROVE_ACTION,
    BREAK_GLASS_ACTION,
    BREAK_GLASS_MODAL,
    REASON_BLOCK,
    REASON_INPUT,
    REJECT_ACTION,
    REJECT_MODAL,
)
from bot.slack.signing import ButtonSigner

Block = dict[str, Any]

MAX_FINDINGS_SHOWN = 10
#: Block Kit's limit on a section's or a context element's text
TEXT_LIMIT = 3000

_ICONS = {
    RequestState.APPROVED: ":white_check_mark:",
    RequestState.REJECTED: ":x:",
    RequestState.EXPIRED: ":hourglass:",
    RequestState.SUPERSEDED: ":fast_forward:",
    RequestState.PENDING: ":hourglass_flowing_sand:",
}


# -- text ------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Text written by users (titles, reasons, paths, environment names) as Slack mrkdwn
    shows it: only &, < and > are escaped, and that is enough to keep `<!channel>` from
    pinging and `<url|text>` from disguising a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(url: str | None, text: str) -> str:
    """`<url|text>` for a URL that cannot break out of the link; else the text alone."""
    if not url or not re.fullmatch(r"https?://[^\s<>|]+", url):
        return text
    return f"<{url.replace('&', '&amp;')}|{text}>"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def date_token(when: dt.datetime) -> str:
    """A Slack date token: shown in the reader's own time zone, with a UTC fallback."""
    aware = when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when
    return f"<!date^{int(aware.timestamp())}^{{date_short_pretty}} {{time}}|{aware:%Y-%m-%d %H:%M} UTC>"


def is_usergroup(entry: str) -> bool:
    return entry.startswith("S") and entry[1:].isalnum()


def approver_mentions(group: Group | None) -> list[str]:
    """Slack mentions of who may approve: users `<@U…>`, user groups `<!subteam^S…>`."""
    if group is None:
        return []
    return [
        f"<!subteam^{entry}>" if is_usergroup(entry) else f"<@{entry}>" for entry in group.slack
    ]


def findings_detail(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    """What a request's message lists, stored in `details["findings"]` when it opens."""
    return [
        {"rule": f.rule, "path": f.path, "line": f.line, "message": f.message}
        for f in sorted(findings, key=Finding.sort_key)
    ]


# -- the request message ---------------------------------------------------------------


def request_blocks(
    request: ApprovalRequestRecord,
    *,
    group: Group | None,
    signer: ButtonSigner | None,
    break_glass: bool = False,
) -> list[Block]:
    """The message body; with `signer` None (decided requests) there are no buttons.
    `break_glass` adds a third button for the emergency group (not on retro-reviews)."""
    blocks = [_header(request), _summary(request)]
    reason = request.details.get("break_glass_reason")
    if reason:
        blocks.append(_section(f"*Break-glass reason:* {escape(reason)}"))
    blocks.append(_section("*Needs approval:*\n" + "\n".join(_needs_approval(request))))
    blocks.append(_context(_who_can_approve(request, group)))
    if signer is not None and request.state == RequestState.PENDING:
        offer_glass = break_glass and request.kind != RequestKind.RETRO_REVIEW
        blocks.append(_buttons(request, signer.value(request.id, request.sha), offer_glass))
    else:
        blocks.append(_context(_outcome(request)))
    return blocks


def request_text(request: ApprovalRequestRecord) -> str:
    """The notification fallback text (mrkdwn too: escaped)."""
    return escape(f"{_headline(request)} at {request.sha[:7]} ({request.state})")


def _section(mrkdwn: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(mrkdwn, TEXT_LIMIT)}}


def _context(mrkdwn: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(mrkdwn, TEXT_LIMIT)}]}


def _headline(request: ApprovalRequestRecord) -> str:
    where = request.repo + (f" #{request.number}" if request.number else "")
    if request.kind == RequestKind.DEPLOY:
        return f"Deploy approval needed: {request.repo} → {request.environment}"
    if request.kind == RequestKind.RETRO_REVIEW:
        return f"Retro-review after break-glass: {where}"
    return f"Approval needed: {where}"


def _header(request: ApprovalRequestRecord) -> Block:
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": _clip(_headline(request), 150)},
    }


def _summary(request: ApprovalRequestRecord) -> Block:
    """The change as a link, its repository, its author (or deploy's starter), the SHA."""
    link = _link(request.url, escape(request.title or request.subject))
    if not request.author:
        author = "unknown"
    elif request.author_system == "slack":
        author = f"<@{request.author}>"
    else:
        author = escape(request.author)
    role = "started by" if request.kind == RequestKind.DEPLOY else "by"
    return _section(
        f"*{link}*\n{escape(request.repo)} · {role} {author} · commit `{request.sha[:7]}`"
    )


def _needs_approval(request: ApprovalRequestRecord) -> list[str]:
    """One line per finding (at most MAX_FINDINGS_SHOWN, within the section's limit), or
    the rules that asked when the request stores no findings."""
    findings = request.details.get("findings") or []
    if not findings:
        return [f"• `{escape(rule)}`" for rule in request.rules]
    lines: list[str] = []
    budget = TEXT_LIMIT - 100  # room for the heading and the "…and N more" line
    for item in findings[:MAX_FINDINGS_SHOWN]:
        where = f"{item['path']}:{item['line']}" if item.get("line") else str(item["path"])
        line = _clip(f"• `{escape(item['rule'])}` {escape(where)}: {escape(item['message'])}", 400)
        if len(line) + 1 > budget:
            break
        lines.append(line)
        budget -= len(line) + 1
    if len(findings) > len(lines):
        lines.append(f"…and {len(findings) - len(lines)} more")
    return lines


def _who_can_approve(request: ApprovalRequestRecord, group: Group | None) -> str:
    mentions = ", ".join(approver_mentions(group)) or f"members of {request.group_name}"
    need = f"{request.min_approvals} of" if request.min_approvals > 1 else "one of"
    return (
        f"Who can approve: {need} {mentions} ({escape(request.group_name)}) · "
        f"expires {date_token(request.expires_at)}"
    )


def _button(action_id: str, text: str, value: str, style: str | None = None) -> Block:
    button: Block = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
    }
    if style:
        button["style"] = style
    button["value"] = value
    return button


def _buttons(request: ApprovalRequestRecord, value: str, break_glass: bool) -> Block:
    """Approve and Reject, and Break glass (behind a confirmation) when offered."""
    elements = [
        _button(APPROVE_ACTION, "Approve", value, "primary"),
        _button(REJECT_ACTION, "Reject", value, "danger"),
    ]
    if break_glass:
        glass = _button(BREAK_GLASS_ACTION, "Break glass", value)
        glass["confirm"] = {
            "title": {"type": "plain_text", "text": "Break glass?"},
            "text": {
                "type": "plain_text",
                "text": "Override this request now. It is announced, audited "
                "and needs a retro-review.",
            },
            "confirm": {"type": "plain_text", "text": "Continue"},
            "deny": {"type": "plain_text", "text": "Cancel"},
        }
        elements.append(glass)
    return {
        "type": "actions",
        "block_id": f"changegate:{request.id}:{request.sha[:12]}",
        "elements": elements,
    }


def _outcome(request: ApprovalRequestRecord) -> str:
    """Who decided and when, then the reason as plain (escaped) text: a reason is written
    by a user and must not ping channels or fake links."""
    state = RequestState(request.state)
    text = f"{_ICONS[state]} *{str(state).capitalize()}*"
    if request.decided_by and request.decided_by_system == "slack":
        text += f" by <@{request.decided_by}>"
    if request.decided_at:
        text += f" · {date_token(request.decided_at)}"
    if request.state_reason:
        text += f"\n{escape(request.state_reason)}"
    return text


# -- the reason modals -----------------------------------------------------------------


def reject_modal(
    signer: ButtonSigner, request_id: str, sha: str, channel: str, ts: str
) -> dict[str, Any]:
    """Asks the rejecter why: the reason is shown on the request and the check."""
    return {
        "type": "modal",
        "callback_id": REJECT_MODAL,
        "title": {"type": "plain_text", "text": "Reject change"},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": signer.seal(
            {"request": request_id, "sha": sha, "channel": channel, "ts": ts}
        ),
        "blocks": [
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": f"Why reject {sha[:7]}?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT,
                    "multiline": True,
                    "min_length": 3,
                    "max_length": 2000,
                },
            }
        ],
    }


def break_glass_modal(
    signer: ButtonSigner, request_id: str, sha: str, channel: str, ts: str
) -> dict[str, Any]:
    """Asks the emergency responder why: the reason is announced and audited."""
    modal = reject_modal(signer, request_id, sha, channel, ts)
    modal["callback_id"] = BREAK_GLASS_MODAL
    modal["title"] = {"type": "plain_text", "text": "Break glass"}
    modal["submit"] = {"type": "plain_text", "text": "Override"}
    modal["private_metadata"] = signer.seal(
        {"request": request_id, "sha": sha, "channel": channel, "ts": ts, "kind": "break-glass"}
    )
    modal["blocks"][0]["label"]["text"] = f"Why override {sha[:7]} now?"
    modal["blocks"][0]["element"]["min_length"] = 10
    return modal
