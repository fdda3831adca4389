"""Text written by users reaches Slack as mrkdwn: a pull request titled `<!channel> ...`
pinged the channel and `<https://evil|docs>` showed a disguised link. Titles, reasons and
paths are escaped in every message changegate posts."""

from __future__ import annotations

from e2e.conftest import REPO, Harness, manifest, wait_for

from bot.slack.interactions import BREAK_GLASS_ACTION, BREAK_GLASS_MODAL

from standins.gitrepo import GitRepo
from standins.slack import Message, view_submission

TITLE = "<!channel> urgent: see <https://evil.example/login|docs.example.com> & approve"
REASON = "<!here> prod is down, runbook <https://evil.example/x|wiki.example.com>"


def mrkdwn_of(message: Message) -> list[str]:
    """Every text Slack renders as mrkdwn (the fallback `text` is one of them)."""
    found = [message.text]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                found.append(str(node["text"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message.blocks)
    return found


def assert_inert(texts: list[str]) -> None:
    for text in texts:
        assert "<!channel>" not in text and "<!here>" not in text, text
        assert "<https://evil" not in text, text


def test_a_title_and_a_break_glass_reason_cannot_ping_the_channel_or_disguise_a_link(
    harness: Harness, repo: GitRepo
) -> None:
    head = repo.commit("change", {"deploy/production/app.yaml": manifest(replicas=6)}, "bump")
    pull = harness.github.open_pull(REPO, head="change", author="bob", title=TITLE)
    harness.send_github("pull_request", harness.github.pull_request_payload(REPO, pull.number))
    harness.completed_run(head, "action_required")
    message = harness.request_message("C0APPROVALS")
    assert_inert(mrkdwn_of(message))
    assert "&lt;!channel&gt; urgent" in str(message.blocks)  # shown, as text

    harness.click(message, "U0OPS", BREAK_GLASS_ACTION)
    submission = view_submission(
        user="U0OPS",
        callback_id=BREAK_GLASS_MODAL,
        private_metadata=harness.slack.views[-1]["private_metadata"],
        reason=REASON,
    )
    assert harness.interact(submission).status_code == 200
    harness.settled()

    def thread() -> list[Message]:
        return [m for m in harness.slack.messages.values() if m.thread_ts == message.ts]

    [announced] = wait_for(thread, what="the break-glass announcement")
    assert "&lt;!here&gt; prod is down" in announced.text
    assert_inert([announced.text])
    for posted in harness.slack.messages.values():  # the retro-review, the updated request
        assert_inert(mrkdwn_of(posted))
