"""A pull request's life through the real server: check runs on the GitHub stand-in,
approval requests in the Slack stand-in, clicks signed the way Slack signs them."""

from __future__ import annotations

import datetime as dt
import time

from bot.slack.interactions import (
    BREAK_GLASS_ACTION,
    BREAK_GLASS_MODAL,
    REJECT_ACTION,
    REJECT_MODAL,
)

from .conftest import REPO, Harness, block_actions, manifest, wait_for
from standins.gitrepo import GitRepo
from standins.slack import form, view_submission


def open_pull(harness: Harness, repo: GitRepo, files: dict[str, str], branch: str = "change"
              ) -> tuple[int, str]:  # fmt: skip
    head = repo.commit(branch, files, "a change")
    pull = harness.github.open_pull(REPO, head=branch, author="bob", title="Bump production")
    harness.send_github("pull_request", harness.github.pull_request_payload(REPO, pull.number))
    return pull.number, head


def push(harness: Harness, repo: GitRepo, number: int, files: dict[str, str]) -> str:
    head = repo.commit("change", files, "another change")
    payload = harness.github.pull_request_payload(REPO, number, "synchronize")
    harness.send_github("pull_request", payload)
    return head


def outcome_text(message: object) -> str:
    blocks = message.blocks  # type: ignore[attr-defined]
    assert all(b["type"] != "actions" for b in blocks), "buttons still shown"
    return str(blocks[-1]["elements"][0]["text"])


def test_unpinned_image_fails_on_its_line_and_a_fix_turns_it_green(
    harness: Harness, repo: GitRepo
) -> None:
    head = repo.commit("pin", {"deploy/staging/app.yaml": manifest("nginx:latest")}, "latest")
    pull = harness.github.open_pull(REPO, head="pin", author="bob", title="Use latest")
    payload = harness.github.pull_request_payload(REPO, pull.number)
    body, headers = harness.github_hook("pull_request", payload)
    assert harness.post("/webhooks/github", body, headers).status_code == 202
    assert harness.post("/webhooks/github", body, headers).status_code == 200  # the same again

    run = harness.completed_run(head, "failure")
    assert [(a["path"], a["start_line"], a["annotation_level"]) for a in run.annotations] == [
        ("deploy/staging/app.yaml", 11, "failure")
    ]
    assert "nginx:latest" in run.annotations[0]["title"]
    harness.settled()
    assert len(harness.github.runs_for(REPO, head)) == 1  # one delivery, one check run
    assert harness.messages("C0APPROVALS") == []  # nothing to approve

    fixed = repo.commit("pin", {"deploy/staging/app.yaml": manifest("nginx:1.25.4")}, "pin")
    harness.send_github("pull_request", harness.github.pull_request_payload(REPO, 1, "synchronize"))
    green = harness.completed_run(fixed, "success")
    assert green.annotations == []


def test_prod_only_change_is_approved_in_slack_then_superseded_and_rejected(
    harness: Harness, repo: GitRepo
) -> None:
    number, head = open_pull(harness, repo, {"deploy/production/app.yaml": manifest(replicas=4)})
    run = harness.completed_run(head, "action_required")
    assert run.title == "Approval required (prod-only)"
    assert "- **prod-only**: 0 of 1 from group `senior` — can approve: `alice`" in str(run.summary)
    message = harness.request_message("C0APPROVALS")
    assert message.blocks[0]["text"]["text"] == f"Approval needed: {REPO} #{number}"
    assert f"commit `{head[:7]}`" in str(message.blocks[1])
    assert "deploy/production/app.yaml" in str(message.blocks)
    runs_before = len(harness.github.runs_for(REPO, head))

    harness.click(message, "U0MALLORY")
    assert "You are not a member of senior" in harness.ephemerals_for("U0MALLORY")[-1]
    harness.click(message, "U0BOB")  # bob wrote the change (people: maps U0BOB to bob)
    assert "You made this change" in harness.ephemerals_for("U0BOB")[-1]
    assert len(harness.github.runs_for(REPO, head)) == runs_before  # refusals change nothing
    assert harness.completed_run(head).conclusion == "action_required"

    harness.click(message, "U0ALICE")
    harness.completed_run(head, "success")
    updated = harness.slack.message(message.channel, message.ts)
    assert outcome_text(updated).startswith(":white_check_mark: *Approved* by <@U0ALICE>")
    assert [r.state for r in harness.requests(sha=head)] == ["approved"]

    # a new push: the approval was for the old commit; a newer push supersedes that request
    second = push(harness, repo, number, {"deploy/production/app.yaml": manifest(replicas=5)})
    harness.completed_run(second, "action_required")
    second_message = harness.request_message("C0APPROVALS", 2)
    third = push(harness, repo, number, {"deploy/production/app.yaml": manifest(replicas=6)})
    harness.completed_run(third, "action_required")
    third_message = harness.request_message("C0APPROVALS", 3)
    harness.settled()
    superseded = harness.slack.message(second_message.channel, second_message.ts)
    assert outcome_text(superseded).startswith(":fast_forward: *Superseded*")
    assert [r.state for r in harness.requests(sha=second)] == ["superseded"]

    # a click on the superseded message is refused and records nothing
    harness.click(second_message, "U0ALICE")
    assert "out of date" in harness.ephemerals_for("U0ALICE")[-1]

    # reject: the modal opens at once, its reason reaches the check
    views_before = len(harness.slack.views)
    harness.click(third_message, "U0ALICE", REJECT_ACTION)
    assert len(harness.slack.views) == views_before + 1
    view = harness.slack.views[-1]
    submission = view_submission(
        user="U0ALICE",
        callback_id=REJECT_MODAL,
        private_metadata=view["private_metadata"],
        reason="Roll it out to staging first",
    )
    assert harness.interact(submission).status_code == 200
    rejected = harness.completed_run(third, "failure")
    assert rejected.title == "Rejected in Slack by U0ALICE (slack): Roll it out to staging first"
    assert rejected.summary is not None and "Roll it out to staging first" in rejected.summary
    harness.settled()
    assert outcome_text(harness.slack.message(third_message.channel, third_message.ts)).startswith(
        ":x: *Rejected* by <@U0ALICE>"
    )


def test_an_approving_review_by_a_group_member_turns_the_check_green(
    harness: Harness, repo: GitRepo
) -> None:
    number, head = open_pull(harness, repo, {"deploy/production/app.yaml": manifest(replicas=3)})
    harness.completed_run(head, "action_required")
    message = harness.request_message("C0APPROVALS")

    review = harness.github.add_review(REPO, number, "alice", "APPROVED")
    harness.send_github("pull_request_review", harness.github.review_payload(REPO, number, review))
    run = harness.completed_run(head, "success")
    assert run.title is not None and run.title.startswith("Passed")
    harness.settled()
    # the Slack request is settled by the review, and says so
    updated = harness.slack.message(message.channel, message.ts)
    assert "approved by alice (github)" in outcome_text(updated)


def test_replayed_and_stale_slack_requests_get_401(harness: Harness, repo: GitRepo) -> None:
    _number, head = open_pull(harness, repo, {"deploy/production/app.yaml": manifest(replicas=7)})
    harness.completed_run(head, "action_required")
    message = harness.request_message("C0APPROVALS")
    actions = next(b for b in message.blocks if b["type"] == "actions")
    value = actions["elements"][0]["value"]
    payload = block_actions(
        user="U0MALLORY", value=value, action_id=actions["elements"][0]["action_id"],
        channel=message.channel, ts=message.ts,
    )  # fmt: skip
    body = form(payload)
    headers = harness.sign(body)
    assert harness.post("/slack/interactions", body, headers).status_code == 200
    assert harness.post("/slack/interactions", body, headers).status_code == 401  # replayed
    stale = harness.sign(body, int(time.time()) - 301)
    assert harness.post("/slack/interactions", body, stale).status_code == 401
    forged = dict(headers, **{"X-Slack-Signature": "v0=" + "0" * 64})
    assert harness.post("/slack/interactions", body, forged).status_code == 401
    harness.settled()
    assert len(harness.ephemerals_for("U0MALLORY")) == 1  # processed once, refused once
    assert [r.state for r in harness.requests(sha=head)] == ["pending"]


def test_break_glass_passes_the_check_with_a_note_and_opens_a_retro_review(
    harness: Harness, repo: GitRepo
) -> None:
    _number, head = open_pull(harness, repo, {"deploy/production/app.yaml": manifest(replicas=9)})
    harness.completed_run(head, "action_required")
    message = harness.request_message("C0APPROVALS")
    harness.click(message, "U0OPS", BREAK_GLASS_ACTION)
    submission = view_submission(
        user="U0OPS",
        callback_id=BREAK_GLASS_MODAL,
        private_metadata=harness.slack.views[-1]["private_metadata"],
        reason="incident 4711: production is down",
    )
    assert harness.interact(submission).status_code == 200
    run = harness.completed_run(head, "success")
    assert run.title is not None
    assert run.title.startswith("Break-glass by U0OPS (slack): incident 4711: production is down")
    harness.settled()
    states = {r.kind: r.state for r in harness.requests(sha=head)}
    assert states == {"change": "approved", "retro-review": "pending"}
    assert "Approved* by <@U0OPS>" in outcome_text(
        harness.slack.message(message.channel, message.ts)
    )


def test_an_expired_request_updates_its_message_and_the_check(
    harness: Harness, repo: GitRepo
) -> None:
    _number, head = open_pull(harness, repo, {"deploy/production/app.yaml": manifest(replicas=8)})
    harness.completed_run(head, "action_required")
    message = harness.request_message("C0APPROVALS")
    # the worker records the message's ts after posting it: the sweep must find it there,
    # or the reminder cannot go into the message's thread
    harness.settled()
    runs = len(harness.github.runs_for(REPO, head))
    approvals = harness.server.app.state.governor.sweep
    now = dt.datetime.now(dt.UTC)
    assert approvals.tick(now + dt.timedelta(hours=71, minutes=30)) == (0, 1)  # a reminder
    assert approvals.tick(now + dt.timedelta(hours=73)) == (1, 0)  # then expiry
    harness.settled()
    reminder = wait_for(
        lambda: [m for m in harness.slack.messages.values() if m.thread_ts == message.ts],
        what="the reminder in the request's thread",
    )
    assert [m.text.split(",")[0] for m in reminder] == ["Reminder: <@U0ALICE>"]
    assert ":hourglass: *Expired*" in outcome_text(
        harness.slack.message(message.channel, message.ts)
    )
    run = wait_for(
        lambda: (
            len(harness.github.runs_for(REPO, head)) > runs
            and harness.completed_run(head, "action_required")
        ),
        what="the re-evaluation after expiry",
    )
    assert run.title is not None and "expired" in run.title


def test_an_approved_pull_request_stays_green_on_main_once_merged(
    harness: Harness, repo: GitRepo
) -> None:
    """The merge commit holds exactly the files alice approved: her review carries over
    to it, so main does not show `action_required` for a change that was approved. A
    direct push of another production change on top has nobody's approval."""
    number, head = open_pull(harness, repo, {"deploy/production/app.yaml": manifest(replicas=3)})
    harness.completed_run(head, "action_required")
    review = harness.github.add_review(REPO, number, "alice", "APPROVED")
    harness.send_github("pull_request_review", harness.github.review_payload(REPO, number, review))
    harness.completed_run(head, "success")
    harness.settled()

    before = repo.branch_sha("main") or ""
    merged = harness.github.merge_pull(REPO, number)
    harness.send_github("push", harness.github.push_payload(REPO, "main", before, merged))
    run = harness.completed_run(merged, "success")
    assert run.title is not None and run.title.startswith("Passed")

    hotfix = repo.commit("main", {"deploy/production/app.yaml": manifest(replicas=4)}, "hotfix")
    harness.send_github("push", harness.github.push_payload(REPO, "main", merged, hotfix))
    harness.completed_run(hotfix, "action_required")
