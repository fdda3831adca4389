"""The GitLab forge against the local GitLab API stand-in, through the real python-gitlab.

Every test builds real git repositories, serves them with tests/standins/gitlab.py and drives
`GitLabForge` the way the worker and governor do: parse a webhook payload, build the view,
evaluate a small policy, publish the status and the note.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import gitlab
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.change import (
    Action,
    ApprovalStatus,
    Change,
    ChangedFile,
    Decision,
    FileStatus,
    Finding,
    Verdict,
)
from bot.forges import Delivery, DeployKind, DeployTarget, Landed, Work
from bot.forges.gitlab import (
    NOTE_MARKER,
    GitLabForge,
    GitLabOptions,
    GitLabRateLimited,
    clear_caches,
    note_body,
    status_description,
)
from bot.policy.evaluate import evaluate
from bot.policy.schema import Policy, load_policy_text

from standins.gitlab import GitLabStandIn
from standins.gitrepo import GitRepo

PAYLOADS = Path(__file__).resolve().parent.parent / "payloads" / "gitlab"
TOKEN = "glpat-changegate-tests"
PATH = "acme/platform/payments"
DETAILS = "http://127.0.0.1:8000/v/abc123"

POLICY = load_policy_text(
    """
version: 1
environments:
  production:
    paths: ["deploy/production/**"]
  staging:
    paths: ["deploy/staging/**"]
groups:
  senior:
    gitlab: ["alice", "@acme/sre-leads"]
rules:
  - id: migration-playbook
    kind: migration-playbook
    action: block
    paths: ["db/migrate/**"]
  - id: prod-only
    kind: prod-only-change
    action: require-approval
    approvers: senior
    min_approvals: 1
""",
    "policy.yml",
)

BASE_FILES: dict[str, str | bytes | None] = {
    "README.md": "# payments\n",
    "deploy/production/app.yaml": "replicas: 3\n",
    "deploy/staging/app.yaml": "replicas: 1\n",
    "db/migrate/.keep": "",
}
CONTENT_CALLS = r"/repository/(files|blobs|tree|compare)|/changes$|/diffs$"


# -- fixtures ---------------------------------------------------------------------------
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
    git.commit("main", BASE_FILES, "initial commit")
    server.add_project(PATH, git, project_id=4242)
    return git


def deliver(forge: GitLabForge, event: str, payload: dict[str, Any]) -> Work:
    delivery = Delivery(id="d-1", forge="gitlab", event=event, body=json.dumps(payload).encode())
    return forge.parse(delivery)


def check(forge: GitLabForge, work: Work, policy: Policy = POLICY) -> Verdict:
    """What governor.handle does, minus the store: start, view, approvals, evaluate, publish."""
    assert work.action == "evaluate" and work.change is not None, work.reason
    change = work.change
    forge.start(change, DETAILS)
    entries = [m for g in policy.groups.values() for m in g.members("gitlab") if m[0] == "@"]
    verdict = evaluate(
        policy,
        forge.view(change),
        forge.approvals(change),
        directory=forge.directory(entries),
    )
    forge.publish(change, verdict, DETAILS)
    return verdict


def open_migration_mr(server: GitLabStandIn, repo: GitRepo, description: str = "") -> int:
    repo.commit(
        "ledger-index",
        {"db/migrate/20240503_ledger_index.rb": "add_index :ledger, :account_id\n"},
        "Add migration for ledger index",
    )
    mr = server.open_mr(
        PATH, "ledger-index", title="Add ledger index", description=description, author="dana"
    )
    return mr.iid


def bot_notes(server: GitLabStandIn, iid: int) -> list[Any]:
    return [n for n in server.notes_of(PATH, iid) if n.author == server.bot.username]


# -- the end-to-end story -------------------------------------------------------------------
def test_migration_without_playbook_fails_then_the_same_note_turns_green(
    server: GitLabStandIn, forge: GitLabForge, repo: GitRepo
) -> None:
    iid = open_migration_mr(server, repo, "Adds an index on ledger entries.")
    work = deliver(forge, "Merge Request Hook", server.merge_request_payload(PATH, iid, "open"))
    head = repo.branch_sha("ledger-index")
    assert work.subject == f"gitlab:{PATH}!{iid}"
    assert work.change is not None and work.change.head == head
    assert work.change.base == repo.branch_sha("main")

    verdict = check(forge, work)

    assert verdict.decision is Decision.FAIL
    assert [f.rule for f in verdict.findings] == ["migration-playbook"]
    [status] = server.statuses_for(PATH, head, "changegate")
    assert status.history == ["running", "failed"]
    assert status.target_url == DETAILS and status.ref == "ledger-index"
    assert "blocking" in (status.description or "")
    [note] = bot_notes(server, iid)
    assert note.body.startswith(NOTE_MARKER)
    assert "migration-playbook" in note.body and "db/migrate/20240503_ledger_index.rb" in note.body

    server.edit_mr(
        PATH,
        iid,
        description="Adds an index.\n\nPlaybook: https://runbooks.example.com/db/ledger-index",
    )
    work = deliver(forge, "Merge Request Hook", server.merge_request_payload(PATH, iid, "update"))
    verdict = check(forge, work)

    assert verdict.decision is Decision.PASS
    statuses = server.statuses_for(PATH, head, "changegate")
    assert [s.history for s in statuses] == [["running", "failed"], ["running", "success"]]
    [edited] = bot_notes(server, iid)
    assert edited.id == note.id
    assert "changegate: pass" in edited.body and "migration-playbook" not in edited.body
    assert len(server.calls("POST", r"/notes$")) == 1
    assert len(server.calls("PUT", rf"/notes/{note.id}$")) == 1


def test_rerun_on_the_same_head_makes_no_content_requests(
    server: GitLabStandIn, forge: GitLabForge, repo: GitRepo
) -> None:
    iid = open_migration_mr(server, repo)
    work = deliver(forge, "Merge Request Hook", server.merge_request_payload(PATH, iid, "open"))
    first = check(forge, work)
    assert server.calls("GET", CONTENT_CALLS)

    server.reset_calls()
    second = check(forge, work)

    assert second == first
    assert server.calls("GET", CONTENT_CALLS) == []
    assert server.calls("PUT", r"/notes/") == []  # same verdict: the note is left alone


def test_an_unchanged_file_is_read_once_across_heads(
    server: GitLabStandIn, forge: GitLabForge, repo: GitRepo
) -> None:
    """Blob-id caching: a new head that leaves a file alone costs no new blob download."""
    base = repo.branch_sha("main")
    assert base is not None
    view = forge.view(Change(repo=PATH, base=None, head=base, forge="gitlab"))
    assert view.read("deploy/production/app.yaml") == b"replicas: 3\n"
    head = repo.commit("main", {"README.md": "# payments v2\n"}, "docs")
    tree_view = forge.view(Change(repo=PATH, base=None, head=head, forge="gitlab"))
    assert "deploy/production/app.yaml" in tree_view.head_paths()
    server.reset_calls()

    assert tree_view.read("deploy/production/app.yaml") == b"replicas: 3\n"
    assert tree_view.read("deploy/nothing-here.yaml") is None
    assert server.calls() == []


# -- approvals --------------------------------------------------------------------------
def test_prod_only_change_is_approved_by_a_group_member_on_the_head_only(
    server: GitLabStandIn, forge: GitLabForge, repo: GitRepo
) -> None:
    server.add_group("acme/sre-leads", ["bob"])
    repo.commit("scale-up", {"deploy/production/app.yaml": "replicas: 5\n"}, "Scale up")
    iid = server.open_mr(PATH, "scale-up", author="dana").iid
    work = deliver(forge, "Merge Request Hook", server.merge_request_payload(PATH, iid, "open"))

    assert check(forge, work).decision is Decision.APPROVAL_REQUIRED
    [status] = server.statuses_for(PATH, repo.branch_sha("scale-up") or "", "changegate")
    assert status.state == "failed" and status.description == "approval required: prod-only"

    server.approve(PATH, iid, "mallory")  # not in the group
    server.approve(PATH, iid, "bob")  # in @acme/sre-leads
    work = deliver(forge, "Merge Request Hook", server.merge_request_payload(PATH, iid, "approval"))
    verdict = check(forge, work)
    assert verdict.decision is Decision.PASS
    assert verdict.approvals[0].approvers == ("bob (gitlab)",)

    # a new push: the old approvals stay in approved_by, but were not given on this head
    time.sleep(0.002)
    repo.commit("scale-up", {"deploy/production/app.yaml": "replicas: 6\n"}, "More")
    work = deliver(forge, "Merge Request Hook", server.merge_request_payload(PATH, iid, "update"))
    assert work.change is not None
    assert forge.approvals(work.change) == []
    assert check(forge, work).decision is Decision.APPROVAL_REQUIRED


def test_the_author_and_unapproved_users_do_not_count(
    server: GitLabStandIn, forge: GitLabForge, repo: GitRepo
) -> None:
    repo.commit("scale-up", {"deploy/production/app.yaml": "replicas: 5\n"}, "Scale up")
    iid = server.open_mr(PATH, "scale-up", author="alice").iid
    server.approve(PATH, iid, "alice")
    server.approve(PATH, iid, "carol")
    server.unapprove(PATH, iid, "carol")
    work = deliver(forge, "Merge Request Hook", server.merge_request_payload(PATH, iid, "open"))
    assert work.change is not None
    assert [a.user for a in forge.approvals(work.change)] == ["alice"]
    verdict = check(forge, work)
    assert verdict.decision is Decision.APPROVAL_REQUIRED
    assert verdict.approvals[0].granted == 0


# -- listings -------------------------------------------------------------------------------
def test_a_diff_over_the_instance_limit_falls_back_to_the_trees(
    tmp_path: Path,
) -> None:
    with GitLabStandIn(token=TOKEN, max_diff_files=3) as server:
        clear_caches()
        forge = GitLabForge(server.url, TOKEN)
        git = GitRepo(tmp_path / "big.git")
        git.commit("main", BASE_FILES, "initial")
        server.add_project(PATH, git)
        files: dict[str, str | bytes | None] = {f"src/m{i}.py": f"x = {i}\n" for i in range(5)}
        files["db/migrate/001_init.rb"] = "create_table :t\n"
        files["README.md"] = None
        git.commit("big", files, "Big change")
        iid = server.open_mr(PATH, "big").iid
        work = deliver(forge, "Merge Request Hook", server.merge_request_payload(PATH, iid))
        assert work.change is not None

        changed = forge.view(work.change).changed_files()

        assert len(changed) == 7
        assert ChangedFile("README.md", FileStatus.DELETED) in changed
        assert ChangedFile("db/migrate/001_init.rb", FileStatus.ADDED) in changed
        assert server.calls("GET", r"/repository/tree$")
        assert check(forge, work).decision is Decision.FAIL


def test_push_to_the_default_branch_is_checked_over_the_whole_range(
    server: GitLabStandIn, forge: GitLabForge, repo: GitRepo
) -> None:
    before = repo.branch_sha("main") or ""
    for i in range(20):  # with the migration, more than the 20 commits a payload lists
        repo.commit("main", {f"docs/page{i}.md": f"page {i}\n"}, f"docs {i}")
    after = repo.commit("main", {"db/migrate/002_more.rb": "add_column :t, :c\n"}, "migrate")
    payload = server.push_payload(PATH, "main", before, after)
    assert len(payload["commits"]) == 20 and payload["total_commits_count"] == 21

    work = deliver(forge, "Push Hook", payload)

    assert work.subject == f"gitlab:{PATH}@main"
    assert work.change is not None and (work.change.base, work.change.head) == (before, after)
    changed = forge.view(work.change).changed_files()
    assert len(changed) == 21
    assert server.calls("GET", r"/repository/compare$")
    assert check(forge, work).decision is Decision.FAIL
    assert server.statuses_for(PATH, after, "changegate")[-1].state == "failed"
    assert server.calls("POST", r"/notes") == []  # a push has no merge request to note on


def test_a_merged_merge_request_is_judged_on_main_with_its_own_description(
    server: GitLabStandIn, forge: GitLabForge, repo: GitRepo
) -> None:
    """A migration MR that passed with its playbook link is squash-merged; the squash
    commit's message is the MR title. The push of that commit is the MR landing: it is
    judged with the MR's description and author, so it passes on main too."""
    head = repo.commit("ledger", {"db/migrate/003_ledger.rb": "add_index :ledger, :at\n"}, "index")
    description = "Adds an index.\n\nPlaybook: https://runbooks.example.com/db/ledger-index"
    mr = server.open_mr(PATH, "ledger", title="Ledger index", description=description)
    before = repo.branch_sha("main") or ""
    after = server.merge_mr(PATH, mr.iid)

    work = deliver(forge, "Push Hook", server.push_payload(PATH, "main", before, after))

    assert work.change is not None
    assert work.change.description == f"{description}\n\nLedger index"
    assert work.change.title == f"push to main: !{mr.iid} Ledger index"
    # the squash commit holds the files of the MR's head: its approvals carry over
    landed = (Landed(f"gitlab:{PATH}!{mr.iid}", mr.iid, head),)
    assert work.landed == landed
    assert check(forge, work).decision is Decision.PASS
    assert server.statuses_for(PATH, after, "changegate")[-1].state == "success"


# -- addressing -----------------------------------------------------------------------------
def test_project_by_full_path_with_subgroups(
    server: GitLabStandIn, forge: GitLabForge, repo: GitRepo
) -> None:
    """Without a payload's id, a project is addressed by its URL-encoded full path; once the
    API has named its id, the id is used."""
    head = repo.branch_sha("main") or ""
    change = Change(repo=PATH, base=None, head=head, forge="gitlab")

    assert forge.view(change).read("deploy/production/app.yaml") == b"replicas: 3\n"
    assert forge.repository_policy(change) is None  # no .changegate.yml: 404 -> None
    repo.commit("main", {".changegate.yml": "version: 1\n"}, "policy")
    assert forge.repository_policy(change) == "version: 1\n"

    encoded = "/api/v4/projects/acme%2Fplatform%2Fpayments"
    assert [(c.raw_path, c.status) for c in server.calls()] == [
        (f"{encoded}/repository/files/deploy%2Fproduction%2Fapp.yaml/raw", 200),
        (encoded, 200),
        ("/api/v4/projects/4242/repository/files/.changegate.yml/raw", 404),
        ("/api/v4/projects/4242/repository/files/.changegate.yml/raw", 200),
    ]
    assert [c.query for c in server.calls()][-1] == "ref=main"


def test_once_a_payload_names_the_project_calls_use_its_id(
    server: GitLabStandIn, forge: GitLabForge, repo: GitRepo
) -> None:
    iid = open_migration_mr(server, repo)
    check(forge, deliver(forge, "Merge Request Hook", server.merge_request_payload(PATH, iid)))
    assert server.calls()
    paths = {c.raw_path for c in server.calls()}
    assert "/api/v4/user" in paths and "/api/v4/groups/acme%2Fsre-leads/members/all" in paths
    assert all(
        p.startswith("/api/v4/projects/4242/")
        for p in paths - {"/api/v4/user", "/api/v4/groups/acme%2Fsre-leads/members/all"}
    )


# -- faults -------------------------------------------------------------------------------
def test_server_errors_are_retried_then_recover(
    server: GitLabStandIn, forge: GitLabForge, repo: GitRepo
) -> None:
    iid = open_migration_mr(server, repo)
    server.fail("GET", rf"/merge_requests/{iid}$", 502, times=2)

    work = deliver(forge, "Merge Request Hook", server.merge_request_payload(PATH, iid))

    assert work.action == "evaluate"
    assert [c.status for c in server.calls("GET", rf"/merge_requests/{iid}$")] == [502, 502, 200]


def test_a_lasting_outage_raises_after_a_bounded_number_of_retries(
    server: GitLabStandIn, forge: GitLabForge, repo: GitRepo
) -> None:
    iid = open_migration_mr(server, repo)
    server.fail("GET", rf"/merge_requests/{iid}$", 503, times=100)
    forge.gl.max_retries = 2  # backoff 0.1 s, 0.2 s

    with pytest.raises(gitlab.GitlabGetError) as raised:
        deliver(forge, "Merge Request Hook", server.merge_request_payload(PATH, iid))

    assert raised.value.response_code == 503
    assert len(server.calls("GET", rf"/merge_requests/{iid}$")) == 1 + forge.gl.max_retries


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_429_retry_after_is_honoured(
    server: GitLabStandIn, forge: GitLabForge, repo: GitRepo, form: str
) -> None:
    # an HTTP date has whole seconds: 1.5 s ahead is a wait of 1 or 2 s once rounded up
    wait = "1" if form == "seconds" else formatdate(time.time() + 1.5, usegmt=True)
    headers = {"Retry-After": wait}
    iid = open_migration_mr(server, repo)
    work = deliver(forge, "Merge Request Hook", server.merge_request_payload(PATH, iid))
    assert work.change is not None
    server.fail("GET", r"/changes$", 429, headers=headers)

    started = time.monotonic()
    changed = forge.view(work.change).changed_files()

    assert time.monotonic() - started >= 0.9
    assert [c.path for c in changed] == ["db/migrate/20240503_ledger_index.rb"]
    assert [c.status for c in server.calls("GET", r"/changes$")] == [429, 200]


def test_a_429_asking_for_too_long_a_wait_raises_for_the_inbox(
    server: GitLabStandIn, forge: GitLabForge, repo: GitRepo
) -> None:
    iid = open_migration_mr(server, repo)
    server.fail("GET", rf"/merge_requests/{iid}$", 429, headers={"Retry-After": "3600"})

    started = time.monotonic()
    with pytest.raises(GitLabRateLimited) as raised:
        deliver(forge, "Merge Request Hook", server.merge_request_payload(PATH, iid))

    assert raised.value.retry_after == 3600
    assert time.monotonic() - started < 60  # it did not sit out the hour


def test_a_wrong_token_is_refused(server: GitLabStandIn, repo: GitRepo) -> None:
    iid = open_migration_mr(server, repo)
    forge = GitLabForge(server.url, "glpat-wrong")
    with pytest.raises(gitlab.GitlabAuthenticationError):
        deliver(forge, "Merge Request Hook", server.merge_request_payload(PATH, iid))
    assert [c.status for c in server.calls()] == [401]


def test_a_conflict_on_the_status_is_retried(
    server: GitLabStandIn, forge: GitLabForge, repo: GitRepo
) -> None:
    """GitLab answers 409 "Resource lock" to concurrent status updates; python-gitlab retries."""
    iid = open_migration_mr(server, repo)
    work = deliver(forge, "Merge Request Hook", server.merge_request_payload(PATH, iid))
    assert work.change is not None
    server.fail("POST", r"/statuses/", 409, message="409 Conflict: Resource lock")
    forge.start(work.change, DETAILS)
    assert [c.status for c in server.calls("POST", r"/statuses/")] == [409, 201]


def test_starting_twice_is_harmless(
    server: GitLabStandIn, forge: GitLabForge, repo: GitRepo
) -> None:
    iid = open_migration_mr(server, repo)
    work = deliver(forge, "Merge Request Hook", server.merge_request_payload(PATH, iid))
    assert work.change is not None
    forge.start(work.change, DETAILS)
    forge.start(work.change, DETAILS)  # GitLab: 400 "Cannot transition status via :run"
    [status] = server.statuses_for(PATH, work.change.head)
    assert status.state == "running"
    assert [c.status for c in server.calls("POST", r"/statuses/")] == [201, 400]


def test_a_note_deleted_by_someone_is_posted_again(
    server: GitLabStandIn, forge: GitLabForge, repo: GitRepo
) -> None:
    iid = open_migration_mr(server, repo)
    work = deliver(forge, "Merge Request Hook", server.merge_request_payload(PATH, iid))
    check(forge, work)
    server.project(PATH).mrs[iid].notes.clear()
    check(forge, work)
    assert len(bot_notes(server, iid)) == 1


def test_a_note_by_someone_else_with_the_marker_is_not_ours(
    server: GitLabStandIn, forge: GitLabForge, repo: GitRepo
) -> None:
    iid = open_migration_mr(server, repo)
    server.comment(PATH, iid, f"{NOTE_MARKER}\nquoting the bot", author="dana")
    check(forge, deliver(forge, "Merge Request Hook", server.merge_request_payload(PATH, iid)))
    assert len(bot_notes(server, iid)) == 1
    assert server.notes_of(PATH, iid)[0].body == f"{NOTE_MARKER}\nquoting the bot"


# -- deploy gates -------------------------------------------------------------------------
def test_play_job_and_answer_a_blocked_deployment(
    server: GitLabStandIn, forge: GitLabForge, repo: GitRepo
) -> None:
    sha = repo.branch_sha("main") or ""
    job = server.add_manual_job(PATH, sha, name="deploy-production", environment="production")
    dep = server.add_deployment(PATH, job, status="blocked")

    approval = DeployTarget(DeployKind.APPROVAL, deployment_id=dep.id)
    forge.answer_deployment(PATH, "production", approval, True, "approved in Slack by alice")
    manual = DeployTarget(DeployKind.MANUAL_JOB, job_ids=(job.id,))
    assert forge.answer_deployment(PATH, "production", manual, True, "ok") == (job.id,)

    assert dep.approvals[0]["status"] == "approved"
    assert dep.approvals[0]["comment"] == "approved in Slack by alice"
    assert job.status == "pending" and job.played_by == server.bot.username
    with pytest.raises(gitlab.GitlabJobPlayError):
        forge.play_job(PATH, job.id)  # no longer manual: GitLab says "Unplayable Job"


def test_a_rejected_manual_deploy_stays_unplayed(
    server: GitLabStandIn, forge: GitLabForge, repo: GitRepo
) -> None:
    sha = repo.branch_sha("main") or ""
    job = server.add_manual_job(PATH, sha, name="deploy-production", environment="production")
    manual = DeployTarget(DeployKind.MANUAL_JOB, job_ids=(job.id,))
    assert forge.answer_deployment(PATH, "production", manual, False, "rejected") == ()
    assert job.status == "manual"
    with pytest.raises(ValueError):  # GitHub's kind of target: a bug, never a request
        rule = DeployTarget(DeployKind.PROTECTION_RULE, run_id=1)
        forge.answer_deployment(PATH, "production", rule, True, "ok")


# -- payloads -------------------------------------------------------------------------------
EVENTS = {
    "merge_request": "Merge Request Hook",
    "push": "Push Hook",
    "note": "Note Hook",
    "pipeline": "Pipeline Hook",
    "deployment": "Deployment Hook",
}
EXPECTED = {
    "merge_request_open.json": ("evaluate", f"gitlab:{PATH}!12"),
    "merge_request_update_description.json": ("evaluate", f"gitlab:{PATH}!12"),
    "merge_request_update_push.json": ("evaluate", f"gitlab:{PATH}!12"),
    "merge_request_approved.json": ("evaluate", f"gitlab:{PATH}!12"),
    "merge_request_merge.json": ("ignore", f"gitlab:{PATH}!12"),
    "merge_request_close.json": ("ignore", f"gitlab:{PATH}!12"),
    "push_default_branch.json": ("evaluate", f"gitlab:{PATH}@main"),
    "push_new_branch.json": ("ignore", f"gitlab:{PATH}@ledger-index"),
    "push_other_branch.json": ("ignore", f"gitlab:{PATH}@ledger-index"),
    "push_delete_branch.json": ("ignore", f"gitlab:{PATH}@ledger-index"),
    "note_merge_request_recheck.json": ("evaluate", f"gitlab:{PATH}!12"),
    "note_merge_request_chat.json": ("ignore", f"gitlab:{PATH}!12"),
    "note_issue_recheck.json": ("ignore", f"gitlab:{PATH}"),
    "pipeline_manual_deploy.json": ("deployment-gate", f"gitlab:{PATH}@deploy:production"),
    "pipeline_success.json": ("ignore", f"gitlab:{PATH}/pipelines/31"),
    # a merge train car's pipeline, judged when it starts (tests/forges/test_merge_train.py)
    "pipeline_merge_train.json": ("ignore", f"gitlab:{PATH}!12/train"),
    "deployment_blocked.json": ("deployment-gate", f"gitlab:{PATH}@deploy:production"),
    "deployment_success.json": ("ignore", f"gitlab:{PATH}@deploy:production"),
}


def test_every_payload_file_has_an_expectation() -> None:
    assert sorted(p.name for p in PAYLOADS.glob("*.json")) == sorted(EXPECTED)


@pytest.fixture
def documented_world(server: GitLabStandIn, repo: GitRepo) -> dict[str, Any]:
    """The stand-in state the documented payloads talk about: MR !12, job 380, deployment 15."""
    repo.commit("ledger-index", {"db/migrate/001.rb": "x\n"}, "Add migration")
    mr = server.open_mr(
        PATH, "ledger-index", title="Add ledger index migration", author="dana", iid=12
    )
    assert mr.iid == 12
    sha = repo.branch_sha("main") or ""
    job = server.add_manual_job(
        PATH, sha, name="deploy-production", environment="production", job_id=380
    )
    server.add_deployment(PATH, job, status="blocked", deployment_id=15)
    return {"main": sha, "head": repo.branch_sha("ledger-index")}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parse_documented_payloads(
    name: str, server: GitLabStandIn, forge: GitLabForge, documented_world: dict[str, Any]
) -> None:
    payload = json.loads((PAYLOADS / name).read_text())
    event = EVENTS[payload["object_kind"]]
    if payload["object_kind"] == "deployment":
        payload["short_sha"] = documented_world["main"][:8]
    delivery = Delivery("k", "gitlab", event, json.dumps(payload).encode())
    action, subject = EXPECTED[name]

    work = forge.parse(delivery)

    assert (work.action, work.subject) == (action, subject), work.reason
    assert forge.subject_of(delivery) == subject
    if action == "ignore":
        assert work.change is None and work.reason
        return
    change = work.change
    assert change is not None and change.forge == "gitlab" and change.repo == PATH
    assert forge.project(PATH).id == 4242  # the payload's project id, remembered
    if payload["object_kind"] in ("merge_request", "note"):
        # stale payloads: the MR's current head from the API, not last_commit from the payload
        assert change.head == documented_world["head"] and change.number == 12
        assert change.author == "dana" and change.title == "Add ledger index migration"
        assert change.url == f"{server.url}/{PATH}/-/merge_requests/12"
    elif payload["object_kind"] == "push":
        assert (change.base, change.head) == (payload["before"], payload["after"])
        assert change.author == "dana"
    elif payload["object_kind"] == "pipeline":
        assert change.environment == "production"
        assert change.head == payload["object_attributes"]["sha"]
        assert work.deployment is not None
        assert work.deployment.target.job_ids[0] == 380
        assert work.deployment.target.pipeline_id == 31
    else:
        assert change.environment == "production"
        assert change.head == documented_world["main"]  # the full SHA, from the API
        assert work.deployment is not None
        assert work.deployment.target.deployment_id == 15
        assert work.deployment.target.job_ids == (380,)
        assert work.deployment.status == "blocked"
    # never a URL from the payload: every request went to the stand-in's API
    assert all(c.path.startswith("/api/v4/") for c in server.calls())


@pytest.mark.parametrize(
    ("body", "event"),
    [(b"not json", "Push Hook"), (b"[1, 2]", "Merge Request Hook"), (b"{}", "Push Hook")],
)
def test_bodies_that_are_not_payloads_are_ignored(
    forge: GitLabForge, body: bytes, event: str
) -> None:
    work = forge.parse(Delivery("k", "gitlab", event, body))
    assert work.action == "ignore" and work.reason


def test_a_closed_merge_request_is_not_evaluated_even_on_an_update(
    server: GitLabStandIn, forge: GitLabForge, repo: GitRepo
) -> None:
    iid = open_migration_mr(server, repo)
    payload = server.merge_request_payload(PATH, iid, "update")
    server.edit_mr(PATH, iid, state="closed")
    work = deliver(forge, "Merge Request Hook", payload)
    assert work.action == "ignore" and "closed" in work.reason


def test_from_settings_reads_the_url_and_secret_token(server: GitLabStandIn) -> None:
    from pydantic import SecretStr

    class Settings:
        gitlab_url = server.url + "/"
        gitlab_token = SecretStr(TOKEN)

    forge = GitLabForge.from_settings(Settings())
    assert forge.url == server.url
    assert forge.bot_username() == "changegate-bot"


# -- rendering --------------------------------------------------------------------------
finding = st.builds(
    Finding,
    path=st.text(min_size=1, max_size=80),
    line=st.none() | st.integers(1, 10_000),
    rule=st.text(min_size=1, max_size=60),
    kind=st.just("migration-playbook"),
    action=st.sampled_from(list(Action)),
    subject=st.text(max_size=40),
    message=st.text(max_size=300),
)
status = st.builds(
    ApprovalStatus,
    rule=st.text(min_size=1, max_size=120),
    group=st.text(min_size=1, max_size=20),
    required=st.integers(1, 3),
    granted=st.just(0),
)


@settings(max_examples=20, deadline=None)
@given(
    decision=st.sampled_from(list(Decision)),
    findings=st.lists(finding, max_size=30),
    approvals=st.lists(status, max_size=5),
)
def test_status_and_note_fit_gitlab_limits(
    decision: Decision, findings: list[Finding], approvals: list[ApprovalStatus]
) -> None:
    verdict = Verdict(decision, tuple(findings), tuple(approvals), head="a" * 40)
    assert len(status_description(verdict)) <= 255
    body = note_body(verdict, DETAILS)
    assert body.startswith(NOTE_MARKER + "\n") and len(body) <= 60_000


def test_lists_are_followed_across_pages(
    server: GitLabStandIn, forge: GitLabForge, repo: GitRepo
) -> None:
    """python-gitlab follows the `Link: rel="next"` the stand-in builds from its own URL."""
    head = repo.commit("main", {f"charts/c{i:03}.yaml": f"i: {i}\n" for i in range(230)}, "many")
    view = forge.view(Change(repo=PATH, base=None, head=head, forge="gitlab"))

    paths = view.head_paths()

    assert len(paths) == 230 + len(BASE_FILES)
    pages = server.calls("GET", r"/repository/tree$")
    assert len(pages) == 3
    assert ["page=2" in c.query for c in pages] == [False, True, False]
    assert "page=3" in pages[2].query and "recursive=True" in pages[0].query


def test_labels_draft_and_target_branch_come_from_the_merge_request(
    server: GitLabStandIn, forge: GitLabForge, repo: GitRepo
) -> None:
    """What `if:` / `unless:` conditions read is read here, at the forge's edge."""
    repo.commit("ledger", {"db/migrate/003_ledger.rb": "add_index :ledger, :at\n"}, "index")
    mr = server.open_mr(PATH, "ledger", labels=["database", "risky"], draft=True)
    work = deliver(forge, "Merge Request Hook", server.merge_request_payload(PATH, mr.iid))
    change = work.change
    assert change is not None
    assert (change.base_ref, change.labels, change.draft) == (
        "main",
        ("database", "risky"),
        True,
    )
    before = repo.branch_sha("main") or ""
    after = server.merge_mr(PATH, mr.iid)
    work = deliver(forge, "Push Hook", server.push_payload(PATH, "main", before, after))
    assert work.change is not None
    assert (work.change.base_ref, work.change.labels) == ("main", ("database", "risky"))
