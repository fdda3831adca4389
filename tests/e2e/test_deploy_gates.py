"""Deploy gates through the real server: GitHub deployment protection rules answered
through their callback, GitLab manual deploy jobs played only once approved in Slack,
freeze windows, break-glass with its retro-review, and the expiry sweep."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from bot.approvals.models import RequestKind
from bot.slack.interactions import BREAK_GLASS_ACTION, BREAK_GLASS_MODAL
from bot.store import deliveries

from .conftest import PROJECT, REPO, Harness, manifest, wait_for
from .deploys import answers, main_head, pipeline_payload, request_deploy
from standins.gitlab import BOT_USERNAME
from standins.gitrepo import GitRepo
from standins.slack import view_submission


def test_protection_rule_waits_for_slack_then_freeze_rejects_and_break_glass_approves(
    harness: Harness, repo: GitRepo
) -> None:
    sha = main_head(repo)
    run_id = request_deploy(harness, sha, "production")
    message = harness.request_message("C0DEPLOYS")
    assert message.blocks[0]["text"]["text"] == f"Deploy approval needed: {REPO} → production"
    assert answers(harness, run_id) == []  # waits for a human

    harness.click(message, "U0BOB")  # bob started the deploy
    assert "You started this deploy" in harness.ephemerals_for("U0BOB")[-1]
    assert answers(harness, run_id) == []
    harness.click(message, "U0DAVE")  # a senior through the S0SRELEADS user group
    [answer] = wait_for(lambda: answers(harness, run_id), what="the gate's answer")
    assert (answer["state"], answer["environment_name"]) == ("approved", "production")
    assert "approved by U0DAVE (slack)" in answer["comment"]
    assert "no changegate verdict" in answer["comment"]  # main was never checked

    # an environment the policy does not gate is held: rejected, never left hanging
    free_run = request_deploy(harness, sha, "staging")
    [free] = wait_for(lambda: answers(harness, free_run), what="the ungated answer")
    assert free["state"] == "rejected" and "no gate for staging" in free["comment"]

    # a freeze window rejects at once, without asking anyone
    frozen_run = request_deploy(harness, sha, "frozen")
    [frozen] = wait_for(lambda: answers(harness, frozen_run), what="the frozen gate's answer")
    assert frozen["state"] == "rejected"
    assert "freeze window change-freeze" in frozen["comment"]

    # break-glass: the emergency group overrides a pending gate, with a reason
    urgent = repo.commit("main", {"README.md": "# hotfix\n"}, "hotfix")
    urgent_run = request_deploy(harness, urgent, "production")
    pending = harness.request_message("C0DEPLOYS", 2)
    views_before = len(harness.slack.views)
    harness.click(pending, "U0ALICE", BREAK_GLASS_ACTION)  # a senior, not in emergency
    assert "Only members of emergency can break glass" in harness.ephemerals_for("U0ALICE")[-1]
    assert len(harness.slack.views) == views_before
    harness.click(pending, "U0OPS", BREAK_GLASS_ACTION)
    assert len(harness.slack.views) == views_before + 1
    submission = view_submission(
        user="U0OPS",
        callback_id=BREAK_GLASS_MODAL,
        private_metadata=harness.slack.views[-1]["private_metadata"],
        reason="checkout is down, shipping the fix now",
    )
    assert harness.interact(submission).status_code == 200
    [glass] = wait_for(lambda: answers(harness, urgent_run), what="the break-glass answer")
    assert glass["state"] == "approved"
    assert glass["comment"].startswith(
        "Break-glass by U0OPS (slack): checkout is down, shipping the fix now"
    )
    harness.settled()
    [retro] = harness.requests(kind=str(RequestKind.RETRO_REVIEW))
    assert (retro.state, retro.sha, retro.group_name) == ("pending", urgent, "senior")
    assert retro.message_ts is not None  # posted for the reviewers
    retro_message = harness.slack.message(retro.channel or "", retro.message_ts)
    assert "checkout is down" in str(retro_message.blocks)
    announced = [m for m in harness.slack.messages.values() if m.thread_ts == pending.ts]
    assert any(":rotating_light: <@U0OPS> broke glass" in m.text for m in announced)
    assert [r.action for r in harness.audit("break_glass")] == ["break_glass"]


def test_an_unanswered_gate_is_rejected_when_its_request_expires(
    harness: Harness, repo: GitRepo
) -> None:
    sha = main_head(repo)
    run_id = request_deploy(harness, sha, "production")
    message = harness.request_message("C0DEPLOYS")
    approvals = harness.server.app.state.governor.sweep
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=5)  # past `expires_after: 4h`
    assert approvals.tick(later) == (1, 0)
    [answer] = wait_for(lambda: answers(harness, run_id), what="the expired gate's answer")
    assert answer["state"] == "rejected" and "expired" in answer["comment"]
    harness.settled()
    updated = harness.slack.message(message.channel, message.ts)
    assert ":hourglass: *Expired*" in str(updated.blocks[-1])


def test_gitlab_manual_deploy_job_is_played_only_after_approval_in_slack(
    harness: Harness, tmp_path: Any
) -> None:
    git = GitRepo(tmp_path / "gl.git")
    sha = git.commit("main", {"deploy/production/app.yaml": manifest()}, "initial")
    harness.gitlab.add_project(PROJECT, git)
    job = harness.gitlab.add_manual_job(PROJECT, sha, name="deploy-production",
                                        environment="production")  # fmt: skip
    harness.send_gitlab("Pipeline Hook", pipeline_payload(harness.gitlab, sha, job.id))
    message = harness.request_message("C0DEPLOYS")
    assert message.blocks[0]["text"]["text"] == f"Deploy approval needed: {PROJECT} → production"
    harness.settled()
    assert job.status == "manual"  # not played while nobody approved

    harness.click(message, "U0MALLORY")
    assert job.status == "manual"
    harness.click(message, "U0ALICE")
    wait_for(lambda: job.status == "pending", what="the manual job to be played")
    assert job.played_by == BOT_USERNAME  # GitLab sees the bot's token ...
    [played] = harness.audit("deploy.played")  # ... the audit log names the human
    assert (played.actor_system, played.actor) == ("slack", "U0ALICE")
    assert played.detail["job_id"] == job.id
    assert played.sha == sha


def test_gitlab_blocked_deployment_is_approved_through_the_approvals_api(
    harness: Harness, tmp_path: Any
) -> None:
    git = GitRepo(tmp_path / "gl.git")
    sha = git.commit("main", {"deploy/production/app.yaml": manifest()}, "initial")
    project = harness.gitlab.add_project(PROJECT, git)
    job = harness.gitlab.add_manual_job(PROJECT, sha, name="deploy-production",
                                        environment="production")  # fmt: skip
    deployment = harness.gitlab.add_deployment(PROJECT, job, status="blocked", user="dana")
    payload = {
        "object_kind": "deployment",
        "status": "blocked",
        "deployment_id": deployment.id,
        "deployable_id": job.id,
        "deployable_url": f"https://gitlab.example.com/{PROJECT}/-/jobs/{job.id}",
        "environment": "production",
        "project": {
            "id": project.id,
            "name": "app",
            "path_with_namespace": PROJECT,
            "default_branch": "main",
        },  # fmt: skip
        "short_sha": sha[:8],
        "user": {"id": 51, "name": "Dana", "username": "dana", "email": "[REDACTED]"},
        "commit_title": "initial",
        "ref": "main",
    }
    harness.send_gitlab("Deployment Hook", payload)
    message = harness.request_message("C0DEPLOYS")
    harness.settled()
    assert deployment.approvals == []
    harness.click(message, "U0ALICE")
    [approval] = wait_for(lambda: deployment.approvals, what="the deployment approval")
    assert approval["status"] == "approved"
    assert "approved by U0ALICE (slack)" in approval["comment"]


def test_gitlab_prod_only_merge_request_is_approved_in_slack_and_goes_green(
    harness: Harness, tmp_path: Any
) -> None:
    """One policy governs GitHub and GitLab; GitLab's re-evaluation after a click too."""
    git = GitRepo(tmp_path / "gl.git")
    git.commit("main", {"deploy/production/app.yaml": manifest(),
                        "deploy/staging/app.yaml": manifest()}, "initial")  # fmt: skip
    head = git.commit("bump", {"deploy/production/app.yaml": manifest(replicas=4)}, "bump")
    harness.gitlab.add_project(PROJECT, git)
    mr = harness.gitlab.open_mr(PROJECT, "bump", title="Bump prod", author="bob")
    harness.send_gitlab("Merge Request Hook", harness.gitlab.merge_request_payload(PROJECT, mr.iid))

    def status(state: str) -> Any:
        found = harness.gitlab.statuses_for(PROJECT, head, name="changegate")
        return found[-1] if found and found[-1].state == state else None

    failed = wait_for(lambda: status("failed"), what="the failed status")
    assert failed.description == "approval required: prod-only"
    message = harness.request_message("C0APPROVALS")
    assert message.blocks[0]["text"]["text"] == f"Approval needed: {PROJECT} #{mr.iid}"
    harness.click(message, "U0BOB")  # bob wrote it (people: gitlab bob = slack U0BOB)
    assert "You made this change" in harness.ephemerals_for("U0BOB")[-1]
    harness.click(message, "U0ALICE")
    wait_for(lambda: status("success"), what="the success status")
    [note] = harness.gitlab.notes_of(PROJECT, mr.iid)
    assert "pass" in note.body.lower()


def test_a_run_that_no_longer_waits_does_not_make_the_click_retry_forever(
    harness: Harness, repo: GitRepo
) -> None:
    sha = main_head(repo)
    run_id = request_deploy(harness, sha, "production")
    message = harness.request_message("C0DEPLOYS")
    # GitHub gave up on the run meanwhile: answering it is refused
    harness.github.fail("POST", rf"/actions/runs/{run_id}/deployment_protection_rule", 422)
    harness.click(message, "U0ALICE")
    with harness.engine.connect() as conn:
        states = conn.execute(
            sa.select(deliveries.c.forge, deliveries.c.state).where(deliveries.c.forge == "slack")
        ).all()
    assert [tuple(row) for row in states] == [("slack", "done")]
    assert answers(harness, run_id) == []
    assert [r.state for r in harness.requests(sha=sha)] == ["approved"]
    assert harness.audit("deploy.gate")[-1].decision == "approved"
