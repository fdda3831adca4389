"""The GitHub forge, through the real PyGithub client, against the local GitHub stand-in."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from github import GithubException
from github.GithubException import BadCredentialsException, RateLimitExceededExceedsMaxWait
from hypothesis import given
from hypothesis import strategies as st

from bot.change import (
    Action,
    ApprovalStatus,
    ChangedFile,
    Decision,
    FileStatus,
    Finding,
    Verdict,
)
from bot.forges import Delivery, DeployKind, DeploymentGone, DeployTarget, Landed, Work
from bot.forges.common import headline
from bot.forges.github import (
    ANNOTATIONS_PER_REQUEST,
    HANDLED_EVENTS,
    GitHubForge,
    GitHubOptions,
    annotation,
    clear_caches,
)
from bot.forges.github.checks import _batches

from standins.github import GitHubStandIn
from standins.gitrepo import ZERO_SHA, GitRepo

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTENT = r"/(git/blobs|git/trees|contents)/"
SECRET = "webhook-secret"


def deliver(event: str, payload: dict[str, Any], delivery: str = "d-1") -> Delivery:
    body, headers = GitHubStandIn.webhook(event, payload, SECRET, delivery=delivery)
    return Delivery(delivery, "github", event, body, headers)


def open_pull(github: GitHubStandIn, repo: GitRepo, files: dict[str, Any], **kw: Any) -> int:
    repo.commit("feature", files, "feature work")
    return github.open_pull("acme/app", "feature", **kw).number


def finding(path: str, line: int | None, action: Action = Action.BLOCK, n: int = 0) -> Finding:
    return Finding(
        path=path,
        line=line,
        rule=f"rule-{n}",
        kind="unpinned-image",
        action=action,
        subject="nginx:latest",
        message=f"image nginx:latest is not pinned ({n})",
    )


# -- auth ----------------------------------------------------------------------------------


def test_one_installation_token_serves_many_calls(forge, github, make_repo):
    repo = make_repo()
    number = open_pull(github, repo, {"a.yaml": "a: 1\n"})
    for action in ("opened", "synchronize", "edited"):
        work = forge.parse(
            deliver("pull_request", github.pull_request_payload("acme/app", number, action))
        )
        assert work.action == "evaluate"
    assert len(github.calls("POST", r"/access_tokens$")) == 1
    assert len(github.calls("GET", r"/pulls/1$")) == 3


def test_a_wrong_app_key_is_refused(github, make_repo):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    make_repo()
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    forge = GitHubForge(github.app_id, other.decode(), github.url, GitHubOptions(throttle=False))
    with pytest.raises(GithubException) as caught:
        forge.repository_policy(_change_for("acme/app"))
    assert caught.value.status == 401
    assert [c.status for c in github.calls("GET", r"/installation$")] == [401]
    assert github.calls(pattern="/contents/") == []


def _change_for(repo: str):  # a minimal change naming a repository
    from bot.change import Change

    return Change(repo=repo, base=None, head="0" * 40, forge="github")


def test_from_settings_reads_the_key_file(github, make_repo, app_key, tmp_path):
    from bot.settings import Settings

    key_file = tmp_path / "app.pem"
    key_file.write_text(app_key[0])
    settings = Settings(
        _env_file=None,
        github_app_id=str(github.app_id),
        github_private_key_path=key_file,
        github_webhook_secret=SECRET,
        github_api_url=github.url + "/",
    )
    forge = GitHubForge.from_settings(settings)
    assert (forge.app_id, forge.api_url) == (github.app_id, github.url)
    make_repo(files={".changegate.yml": "version: 1\n"})
    assert forge.repository_policy(_change_for("acme/app")) == "version: 1\n"


# -- parse ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("opened", "evaluate"),
        ("synchronize", "evaluate"),
        ("reopened", "evaluate"),
        ("edited", "evaluate"),
        ("ready_for_review", "evaluate"),
        ("labeled", "evaluate"),
        ("unlabeled", "evaluate"),
        ("assigned", "ignore"),
        ("review_requested", "ignore"),
        ("converted_to_draft", "ignore"),
    ],
)
def test_pull_request_actions(forge, github, make_repo, action, expected):
    repo = make_repo()
    number = open_pull(github, repo, {"deploy/app.yaml": "image: nginx\n"}, draft=True)
    work = forge.parse(
        deliver("pull_request", github.pull_request_payload("acme/app", number, action))
    )
    assert work.action == expected
    assert work.subject == "github:acme/app#1"


def test_pull_request_becomes_a_change_read_from_the_api(forge, github, make_repo):
    repo = make_repo()
    base = repo.branch_sha("main")
    head = repo.commit("feature", {"deploy/app.yaml": "image: nginx\n"}, "pin")
    github.open_pull(
        "acme/app", "feature", title="Deploy app", body="See docs/playbooks/x.md", author="bob"
    )
    work = forge.parse(deliver("pull_request", github.pull_request_payload("acme/app", 1)))
    change = work.change
    assert change is not None
    assert (change.repo, change.base, change.head) == ("acme/app", base, head)
    assert (change.forge, change.author, change.number) == ("github", "bob", 1)
    assert (change.title, change.description) == ("Deploy app", "See docs/playbooks/x.md")
    assert change.url == "https://github.com/acme/app/pull/1"
    assert forge.installation_of("acme/app") == 1  # remembered from the payload


def test_a_null_body_is_an_empty_description(forge, github, make_repo):
    repo = make_repo()
    number = open_pull(github, repo, {"a": "1"}, body=None)
    work = forge.parse(deliver("pull_request", github.pull_request_payload("acme/app", number)))
    assert work.change is not None and work.change.description == ""


def test_a_stale_payload_evaluates_the_current_head(forge, github, make_repo):
    repo = make_repo()
    number = open_pull(github, repo, {"a.yaml": "a: 1\n"})
    stale = github.pull_request_payload("acme/app", number, "opened")
    newer = repo.commit("feature", {"a.yaml": "a: 2\n"}, "fix")
    work = forge.parse(deliver("pull_request", stale))
    assert work.change is not None and work.change.head == newer
    assert work.payload_head == stale["pull_request"]["head"]["sha"]
    assert "current head" in work.reason


def test_a_closed_pull_request_is_ignored(forge, github, make_repo):
    repo = make_repo()
    number = open_pull(github, repo, {"a": "1"})
    payload = github.pull_request_payload("acme/app", number, "edited")
    github.repos["acme/app"].pulls[number].state = "closed"
    work = forge.parse(deliver("pull_request", payload))
    assert (work.action, work.reason) == ("ignore", "acme/app#1 is closed")


def test_payload_urls_are_never_followed(forge, github, make_repo, app_key):
    """Every URL in the payload points at another server; none of them is contacted."""
    with GitHubStandIn(github.app_id, app_key[1]) as evil:
        repo = make_repo()
        number = open_pull(github, repo, {"a": "1"})
        payload = github.pull_request_payload("acme/app", number)
        text = json.dumps(payload).replace(github.url, evil.url)
        payload = json.loads(text)
        payload["pull_request"]["url"] = f"{evil.url}/repos/acme/app/pulls/1"
        payload["repository"]["url"] = f"{evil.url}/repos/acme/app"
        work = forge.parse(deliver("pull_request", payload))
        assert work.action == "evaluate"
        forge.view(work.change).changed_files()
        assert evil.requests == []
        assert github.calls("GET", r"^/repos/acme/app/pulls/1$")


@pytest.mark.parametrize(
    ("action", "expected"),
    [("submitted", "evaluate"), ("dismissed", "evaluate"), ("edited", "ignore")],
)
def test_reviews_re_evaluate_the_pull_request(forge, github, make_repo, action, expected):
    repo = make_repo()
    number = open_pull(github, repo, {"a": "1"})
    review = github.add_review("acme/app", number, "alice")
    work = forge.parse(
        deliver("pull_request_review", github.review_payload("acme/app", number, review, action))
    )
    assert work.action == expected
    assert work.subject == "github:acme/app#1"


def test_a_rerequested_check_run_re_evaluates_its_pull_request(forge, github, make_repo):
    repo = make_repo()
    number = open_pull(github, repo, {"a": "1"})
    work = forge.parse(deliver("pull_request", github.pull_request_payload("acme/app", number)))
    forge.start(work.change, "http://127.0.0.1/v/x")
    run = github.runs_for("acme/app")[0]
    again = forge.parse(deliver("check_run", github.check_run_payload(run.id)))
    assert again.action == "evaluate"
    assert again.change == work.change
    assert again.subject == "github:acme/app#1"


def test_a_check_suite_without_pull_requests_finds_them_by_head(forge, github, make_repo):
    repo = make_repo()
    head = repo.commit("feature", {"a": "1"}, "x")
    github.open_pull("acme/app", "feature")
    payload = {
        "action": "rerequested",
        "check_suite": {"head_sha": head, "pull_requests": [], "app": {"id": github.app_id}},
        "repository": github._repo_json(github.repos["acme/app"]),
        "installation": {"id": 1},
    }
    work = forge.parse(deliver("check_suite", payload))
    assert work.action == "evaluate"
    assert work.change is not None and (work.change.number, work.change.head) == (1, head)
    assert github.calls("GET", rf"/commits/{head}/pulls$")


def test_another_apps_check_run_is_ignored(forge, github, make_repo):
    repo = make_repo()
    number = open_pull(github, repo, {"a": "1"})
    work = forge.parse(deliver("pull_request", github.pull_request_payload("acme/app", number)))
    forge.start(work.change, "http://127.0.0.1/v/x")
    payload = github.check_run_payload(github.runs_for("acme/app")[0].id)
    payload["check_run"]["app"]["id"] = 1
    assert forge.parse(deliver("check_run", payload)).action == "ignore"


def test_push_to_the_default_branch_evaluates_the_pushed_range(forge, github, make_repo):
    repo = make_repo()
    before = repo.branch_sha("main")
    after = repo.commit("main", {"deploy/app.yaml": "image: nginx:latest\n"}, "direct push")
    work = forge.parse(deliver("push", github.push_payload("acme/app", "main", before, after)))
    assert work.action == "evaluate"
    assert work.subject == "github:acme/app@refs/heads/main"
    assert work.change is not None
    assert (work.change.base, work.change.head, work.change.number) == (before, after, None)
    assert work.change.description == "direct push"
    view = forge.view(work.change)
    assert view.changed_files() == [ChangedFile("deploy/app.yaml", FileStatus.ADDED)]
    assert view.text("deploy/app.yaml") == "image: nginx:latest\n"


def test_a_merged_pull_request_is_judged_on_main_with_its_own_description(forge, github, make_repo):
    """The merge (here a squash) lands on main with GitHub's default message, which has no
    playbook link: the push is the pull request landing, so it carries the pull request's
    description and author, and the migration that passed review does not fail on main."""
    repo = make_repo()
    repo.commit("feature", {"db/migrations/0042_drop_orders.sql": "DROP TABLE orders;\n"})
    body = "Drops the old table. Playbook: https://runbooks.example.com/db/0042"
    number = github.open_pull("acme/app", "feature", title="Drop orders", body=body).number
    before = repo.branch_sha("main")
    after = github.merge_pull("acme/app", number)
    work = forge.parse(deliver("push", github.push_payload("acme/app", "main", before, after)))
    assert work.change is not None
    assert work.change.description == f"{body}\n\nDrop orders (#{number})"
    assert work.change.author == "dev"
    assert work.change.title == f"push to main: #{number} Drop orders"
    assert [c.path for c in forge.view(work.change).changed_files()] == [
        "db/migrations/0042_drop_orders.sql"
    ]
    # the merge commit holds the files of the pull request's head: its approvals carry over
    pull_head = repo.branch_sha("feature")
    landed = (Landed(f"github:acme/app#{number}", number, pull_head),)
    assert work.landed == landed
    # main moved on before the next merge: its commit holds more than was approved
    repo.commit("other", {"docs/other.md": "x\n"}, "other work", parent=after)
    repo.commit("feature2", {"db/migrations/0043.sql": "SELECT 1;\n"}, "m2", parent=after)
    second = github.open_pull("acme/app", "feature2", title="Next", body=body).number
    repo.commit("main", {"docs/elsewhere.md": "y\n"}, "main moved")
    moved_from = repo.branch_sha("main")
    merged2 = github.merge_pull("acme/app", second)
    work = forge.parse(
        deliver("push", github.push_payload("acme/app", "main", moved_from, merged2))
    )
    assert work.change is not None and work.change.title == f"push to main: #{second} Next"
    assert work.landed == ()
    after = merged2
    # a direct push (no pull request merged as that commit) keeps its commit message
    direct = repo.commit("main", {"README.md": "# app v2\n"}, "direct push")
    work = forge.parse(deliver("push", github.push_payload("acme/app", "main", after, direct)))
    assert work.change is not None and work.change.description == "direct push"


@pytest.mark.parametrize(
    ("ref", "before", "after", "reason"),
    [
        ("refs/heads/feature", "b", "a", "not the default branch"),
        ("refs/tags/v1.0", "b", "a", "not a branch"),
        ("refs/heads/main", "b", ZERO_SHA, "deleted"),
        ("refs/heads/main", ZERO_SHA, "a", "created"),
    ],
)
def test_other_pushes_are_ignored(forge, github, make_repo, ref, before, after, reason):
    repo = make_repo()
    sha = repo.branch_sha("main")
    payload = github.push_payload("acme/app", "main", sha, sha)
    payload.update(
        ref=ref,
        before=sha if before == "b" else before,
        after=sha if after == "a" else after,
        deleted=after == ZERO_SHA,
    )
    work = forge.parse(deliver("push", payload))
    assert work.action == "ignore"
    assert reason in work.reason
    assert github.calls(pattern="^/repos/") == []


@pytest.mark.parametrize(
    ("event", "payload", "reason"),
    [
        ("installation", {"action": "created", "installation": {"id": 1}}, "installation created"),
        ("installation", {"action": "deleted", "installation": {"id": 1}}, "installation deleted"),
        (
            "installation_repositories",
            {"action": "added", "installation": {"id": 1}},
            "installation_repositories added",
        ),
        ("ping", {"zen": "Keep it logically awesome.", "hook_id": 1}, "no repository"),
        (
            "star",
            {
                "action": "created",
                "repository": {"full_name": "acme/app"},
                "installation": {"id": 1},
            },
            "star is not handled",
        ),
    ],
)
def test_other_events_are_ignored_with_a_reason(forge, event, payload, reason):
    work = forge.parse(deliver(event, payload))
    assert work.action == "ignore"
    assert reason in work.reason


@pytest.mark.parametrize(
    ("event", "body", "reason"),
    [
        ("pull_request", b"{not json", "body is not a JSON object"),
        ("pull_request", b"[1, 2]", "not a JSON object"),
        (
            "pull_request",
            b'{"action": "opened", "repository": {"full_name": "acme/app"}, "installation": {"id": 1}}',
            "malformed payload",
        ),
        (
            "pull_request",
            b'{"action": "opened", "number": 1, "repository": {"full_name": "acme/app"}}',
            "no installation",
        ),
        (
            "pull_request",
            b'{"action": "opened", "number": 1, "repository": {"full_name": "acme/app"}, '
            b'"installation": {"id": 31337}}',
            "not found on GitHub (404)",
        ),
    ],
)
def test_payloads_that_cannot_be_evaluated_are_ignored_not_retried(
    forge, github, make_repo, event, body, reason
):
    make_repo()
    work = forge.parse(Delivery("d-1", "github", event, body))
    assert work.action == "ignore"
    assert reason in work.reason


def test_a_deleted_installation_drops_its_client(forge, github, make_repo):
    make_repo()
    forge.repository_policy(_change_for("acme/app"))
    assert 1 in forge._clients
    forge.parse(deliver("installation", {"action": "deleted", "installation": {"id": 1}}))
    assert 1 not in forge._clients


@pytest.mark.parametrize(("status", "gone"), [(422, True), (404, True), (500, False)])
def test_a_run_that_no_longer_waits_is_said_in_the_forges_neutral_terms(
    forge, github, make_repo, status, gone
):
    """The governor need not know PyGithub's exceptions: a run GitHub no longer holds
    (answered, timed out) raises DeploymentGone; anything else is retried as raised."""
    make_repo()
    github.fail("POST", r"/actions/runs/77/deployment_protection_rule", status, times=10)
    target = DeployTarget(DeployKind.PROTECTION_RULE, run_id=77)
    with pytest.raises(Exception) as raised:
        forge.answer_deployment("acme/app", "production", target, True, "approved by alice")
    assert isinstance(raised.value, DeploymentGone) is gone


def test_deployment_protection_rule_is_answered_through_the_api_url(forge, github, make_repo):
    repo = make_repo()
    sha = repo.branch_sha("main")
    payload = {
        "action": "requested",
        "environment": "production",
        "event": "deployment",
        "deployment_callback_url": "https://evil.example/repos/acme/app/actions/runs/77/deployment_protection_rule",
        "deployment": {"sha": sha, "creator": {"login": "bob"}, "description": "ship it"},
        "repository": {"full_name": "acme/app", "default_branch": "main"},
        "installation": {"id": 1},
    }
    work = forge.parse(deliver("deployment_protection_rule", payload))
    assert work.action == "deployment-gate"
    assert work.change is not None and work.change.environment == "production"
    assert work.deployment is not None
    assert work.deployment.target == DeployTarget(DeployKind.PROTECTION_RULE, run_id=77)
    forge.answer_deployment(
        "acme/app", "production", work.deployment.target, True, "approved by alice"
    )
    assert github.gate_answers == [
        {
            "repo": "acme/app",
            "run_id": 77,
            "environment_name": "production",
            "state": "approved",
            "comment": "approved by alice",
        }
    ]
    payload["deployment_callback_url"] = payload["deployment_callback_url"].replace(
        "acme/app", "acme/other"
    )
    assert forge.parse(deliver("deployment_protection_rule", payload)).action == "ignore"


@pytest.mark.parametrize(
    ("event", "payload", "subject"),
    [
        ("pull_request", {"number": 12, "repository": {"full_name": "o/r"}}, "github:o/r#12"),
        (
            "pull_request_review",
            {"pull_request": {"number": 3}, "repository": {"full_name": "o/r"}},
            "github:o/r#3",
        ),
        (
            "push",
            {"ref": "refs/heads/main", "repository": {"full_name": "o/r"}},
            "github:o/r@refs/heads/main",
        ),
        (
            "check_run",
            {
                "check_run": {"head_sha": "abc", "pull_requests": [{"number": 5}]},
                "repository": {"full_name": "o/r"},
            },
            "github:o/r#5",
        ),
        (
            "check_suite",
            {
                "check_suite": {"head_sha": "abc", "pull_requests": []},
                "repository": {"full_name": "o/r"},
            },
            "github:o/r@abc",
        ),
        ("installation", {"installation": {"id": 9}}, "github:installation:9"),
        ("ping", {"zen": "x"}, ""),
    ],
)
def test_subject_of(forge, event, payload, subject):
    assert forge.subject_of(deliver(event, payload)) == subject


# -- the file view -----------------------------------------------------------------------------


def test_view_lists_and_reads_the_pull_request_files(forge, github, make_repo):
    repo = make_repo(
        files={
            "deploy/production/app.yaml": "image: nginx:1.25\n",
            "old/name.yaml": "a: 1\n",
            "gone.txt": "bye\n",
            "same.txt": "unchanged\n",
        }
    )
    number = open_pull(
        github,
        repo,
        {
            "deploy/production/app.yaml": "image: nginx:latest\n",
            "old/name.yaml": None,
            "new/name.yaml": "a: 1\n",
            "gone.txt": None,
            "added.txt": "hi\n",
        },
    )
    work = forge.parse(deliver("pull_request", github.pull_request_payload("acme/app", number)))
    view = forge.view(work.change)
    assert view.changed_files() == [
        ChangedFile("added.txt", FileStatus.ADDED),
        ChangedFile("deploy/production/app.yaml", FileStatus.MODIFIED),
        ChangedFile("gone.txt", FileStatus.DELETED),
        ChangedFile("new/name.yaml", FileStatus.RENAMED, "old/name.yaml"),
    ]
    assert view.read("deploy/production/app.yaml") == b"image: nginx:latest\n"
    assert view.read("deploy/production/app.yaml", "base") == b"image: nginx:1.25\n"
    assert view.read("gone.txt") is None
    assert view.read("gone.txt", "base") == b"bye\n"
    assert view.read("new/name.yaml", "base") is None
    assert view.read("old/name.yaml") is None
    assert view.read("old/name.yaml", "base") == b"a: 1\n"
    assert view.read("added.txt", "base") is None
    assert view.read("same.txt") == view.read("same.txt", "base") == b"unchanged\n"
    assert view.read("missing.txt") is None
    assert view.yaml("new/name.yaml").documents


def test_base_contents_come_from_the_merge_base(forge, github, make_repo):
    """main moved on after the branch was cut: the PR shows (and is judged on) its own diff."""
    repo = make_repo(files={"values.yaml": "tag: 1.0\n", "other.yaml": "x: 1\n"})
    repo.commit("feature", {"values.yaml": "tag: 2.0\n"}, "feature")
    repo.commit("main", {"values.yaml": "tag: 1.5\n", "other.yaml": "x: 2\n"}, "main moves on")
    github.open_pull("acme/app", "feature")
    work = forge.parse(deliver("pull_request", github.pull_request_payload("acme/app", 1)))
    view = forge.view(work.change)
    assert [f.path for f in view.changed_files()] == ["values.yaml"]
    assert view.read("values.yaml", "base") == b"tag: 1.0\n"
    assert view.read("other.yaml", "base") == b"x: 1\n"


def test_a_300_file_pull_request_costs_3_pages_plus_the_files_read(forge, github, make_repo):
    repo = make_repo()
    files = {f"deploy/svc{i:03}/values.yaml": f"tag: v{i}\n" for i in range(300)}
    number = open_pull(github, repo, files)
    work = forge.parse(deliver("pull_request", github.pull_request_payload("acme/app", number)))
    github.reset_calls()

    view = forge.view(work.change)
    assert len(view.changed_files()) == 300
    assert view.read("deploy/svc007/values.yaml") == b"tag: v7\n"
    assert view.read("deploy/svc250/values.yaml") == b"tag: v250\n"
    calls = github.calls()
    assert len(calls) <= 3 + 2, calls
    assert len(github.calls("GET", r"/pulls/1/files$")) == 3
    assert len(github.calls("GET", CONTENT)) == 2

    github.reset_calls()
    again = forge.view(work.change)  # a re-run on the same head
    assert len(again.changed_files()) == 300
    assert again.read("deploy/svc007/values.yaml") == b"tag: v7\n"
    assert again.read("deploy/svc250/values.yaml", "base") is None
    assert github.calls("GET", CONTENT) == []


def test_rereading_a_head_makes_no_content_requests(forge, github, make_repo):
    repo = make_repo(files={"values.yaml": "tag: 1.0\n", "shared.yaml": "redis: r:6379\n"})
    number = open_pull(github, repo, {"values.yaml": "tag: 2.0\n"})
    work = forge.parse(deliver("pull_request", github.pull_request_payload("acme/app", number)))
    first = forge.view(work.change)
    reads = [
        ("values.yaml", "head"),
        ("values.yaml", "base"),
        ("shared.yaml", "head"),
        ("nope", "base"),
    ]
    contents = [first.read(p, r) for p, r in reads]
    first.head_paths()
    assert github.calls("GET", CONTENT)
    github.reset_calls()
    second = forge.view(work.change)
    assert [second.read(p, r) for p, r in reads] == contents
    assert second.head_paths() == ["shared.yaml", "values.yaml"]
    assert github.calls("GET", CONTENT) == []


def test_head_paths_is_one_tree_request_made_only_when_asked(forge, github, make_repo):
    repo = make_repo(files={"a/b/c.yaml": "x: 1\n", "d.txt": "d\n"})
    number = open_pull(github, repo, {"e.txt": "e\n"})
    work = forge.parse(deliver("pull_request", github.pull_request_payload("acme/app", number)))
    view = forge.view(work.change)
    view.changed_files()
    assert github.calls("GET", "/git/trees/") == []
    assert view.head_paths() == ["a/b/c.yaml", "d.txt", "e.txt"]
    assert view.head_paths() == ["a/b/c.yaml", "d.txt", "e.txt"]
    assert len(github.calls("GET", "/git/trees/")) == 1
    view.read("a/b/c.yaml")
    assert github.calls("GET", "/contents/") == []  # the tree already named the blob


def test_probing_for_missing_files_costs_at_most_one_tree(forge, github, make_repo):
    """Rules look for kustomization.yaml in every parent directory: the view answers most
    of those probes from one tree request instead of one contents request each."""
    repo = make_repo(files={"deploy/base/kustomization.yaml": "resources: []\n"})
    number = open_pull(github, repo, {"deploy/production/app/pod.yaml": "kind: Pod\n"})
    work = forge.parse(deliver("pull_request", github.pull_request_payload("acme/app", number)))
    view = forge.view(work.change)
    view.changed_files()
    github.reset_calls()
    probes = [
        f"{d}/kustomization.{ext}" for d in ("a", "b", "c", "d", "e") for ext in ("yaml", "yml")
    ]
    assert [view.exists(p) for p in probes] == [False] * len(probes)
    assert view.exists("deploy/base/kustomization.yaml")
    assert len(github.calls("GET", "/contents/")) == 2
    assert len(github.calls("GET", "/git/trees/")) == 1


def test_app_jwt_reaches_app_endpoints(forge, github, make_repo):
    make_repo()
    github.hook_deliveries.append({"id": 1, "guid": "g-1", "status_code": 502, "event": "push"})
    _, data = forge.integration().requester.requestJsonAndCheck("GET", "/app/hook/deliveries")
    assert data == [{"id": 1, "guid": "g-1", "status_code": 502, "event": "push"}]


def test_repository_policy_comes_from_the_default_branch(forge, github, make_repo):
    repo = make_repo(files={".changegate.yml": "version: 1\nrules: []\n"})
    number = open_pull(github, repo, {".changegate.yml": "version: 1\nrules: [loosened]\n"})
    work = forge.parse(deliver("pull_request", github.pull_request_payload("acme/app", number)))
    assert forge.repository_policy(work.change) == "version: 1\nrules: []\n"
    contents = github.calls("GET", "/contents/")
    assert [(c.path, c.query) for c in contents] == [
        ("/repos/acme/app/contents/.changegate.yml", "")
    ]


def test_no_repository_policy_is_none(forge, github, make_repo):
    make_repo()
    assert forge.repository_policy(_change_for("acme/app")) is None


# -- approvals and teams ---------------------------------------------------------------------------


def test_approvals_are_the_latest_review_per_user(forge, github, make_repo):
    repo = make_repo()
    old_head = repo.commit("feature", {"a": "1"}, "one")
    github.open_pull("acme/app", "feature", author="bob")
    github.add_review("acme/app", 1, "alice")  # on the old head
    github.add_review("acme/app", 1, "carol")
    github.add_review("acme/app", 1, "carol", "CHANGES_REQUESTED")
    new_head = repo.commit("feature", {"a": "2"}, "two")
    github.add_review("acme/app", 1, "dave")
    github.add_review("acme/app", 1, "dave", "COMMENTED")  # a comment keeps the approval
    github.add_review("acme/app", 1, "erin")
    github.add_review("acme/app", 1, "erin", "DISMISSED")
    work = forge.parse(deliver("pull_request", github.pull_request_payload("acme/app", 1)))
    approvals = forge.approvals(work.change)
    assert {(a.user, a.sha, a.via, a.system) for a in approvals} == {
        ("alice", old_head, "review", "github"),
        ("dave", new_head, "review", "github"),
    }


def test_push_changes_have_no_review_approvals(forge, github, make_repo):
    make_repo()
    assert forge.approvals(_change_for("acme/app")) == []


def test_team_members_come_from_the_teams_api_and_are_cached(forge, github, make_repo):
    make_repo()
    github.teams[("acme", "sre-leads")] = ["alice", "Bob"]
    entries = ["@acme/sre-leads", "@acme/nobody", "plain-login"]
    directory = forge.directory(entries)
    assert directory.expand("@acme/sre-leads") == {"alice", "bob"}
    assert directory.expand("@acme/nobody") == frozenset()
    calls = len(github.calls())
    assert forge.directory(entries).members == directory.members
    assert len(github.calls()) == calls


# -- check runs ------------------------------------------------------------------------------------


def _evaluated(forge, github, make_repo) -> Work:
    repo = make_repo()
    number = open_pull(github, repo, {"deploy/app.yaml": "image: nginx:latest\n"})
    return forge.parse(deliver("pull_request", github.pull_request_payload("acme/app", number)))


def test_publish_completes_the_started_run_with_annotations_in_batches(forge, github, make_repo):
    work = _evaluated(forge, github, make_repo)
    change = work.change
    findings = tuple(
        finding(
            "deploy/app.yaml", i + 1, [Action.BLOCK, Action.REQUIRE_APPROVAL, Action.WARN][i % 3], i
        )
        for i in range(120)
    )
    verdict = Verdict(Decision.FAIL, findings, base=change.base, head=change.head)
    forge.start(change, "http://127.0.0.1:8000/v/tok")
    [run] = github.runs_for("acme/app", change.head)
    assert (run.status, run.name, run.details_url) == (
        "in_progress",
        "changegate",
        "http://127.0.0.1:8000/v/tok",
    )

    forge.publish(change, verdict, "http://127.0.0.1:8000/v/tok")
    assert github.runs_for("acme/app") == [run]
    assert (run.status, run.conclusion) == ("completed", "failure")
    patches = github.calls("PATCH", "/check-runs/")
    assert len(patches) == 3
    assert [len(h["output"]["annotations"]) for h in run.history[1:]] == [50, 50, 20]
    assert run.history[1]["conclusion"] == "failure"
    assert len(run.annotations) == 120
    assert run.annotations[0] == {
        "path": "deploy/app.yaml",
        "start_line": 1,
        "end_line": 1,
        "annotation_level": "failure",
        "title": "rule-0: nginx:latest",
        "message": "image nginx:latest is not pinned (0)",
    }
    assert [a["annotation_level"] for a in run.annotations[:3]] == ["failure", "warning", "notice"]
    assert run.title == "40 blocking findings"
    assert "changegate" in run.summary and "http://127.0.0.1:8000/v/tok" in run.summary


@pytest.mark.parametrize(
    ("decision", "conclusion", "title"),
    [
        (Decision.PASS, "success", "Passed"),
        (Decision.FAIL, "failure", "0 blocking findings"),
        (Decision.APPROVAL_REQUIRED, "action_required", "Approval required (prod-only)"),
    ],
)
def test_conclusions(forge, github, make_repo, decision, conclusion, title):
    work = _evaluated(forge, github, make_repo)
    approvals = (ApprovalStatus("prod-only", "senior", 1, 0),)
    verdict = Verdict(decision, (), approvals if decision is Decision.APPROVAL_REQUIRED else ())
    forge.start(work.change, "http://x/v/1")
    forge.publish(work.change, verdict, "http://x/v/1")
    [run] = github.runs_for("acme/app")
    assert (run.conclusion, run.title, run.annotations) == (conclusion, title, [])


def test_publish_from_another_process_finds_the_open_run(forge, github, make_repo, app_key):
    work = _evaluated(forge, github, make_repo)
    forge.start(work.change, "http://x/v/1")
    other = GitHubForge(github.app_id, app_key[0], github.url, GitHubOptions(throttle=False))
    other.publish(work.change, Verdict(Decision.PASS, ()), "http://x/v/1")
    [run] = github.runs_for("acme/app")
    assert run.conclusion == "success"
    # and with nothing started at all, publishing creates a completed run
    third = GitHubForge(github.app_id, app_key[0], github.url, GitHubOptions(throttle=False))
    third.publish(work.change, Verdict(Decision.PASS, ()), "http://x/v/2")
    runs = github.runs_for("acme/app")
    assert [(r.status, r.conclusion) for r in runs] == [("completed", "success")] * 2


def test_a_failed_attempt_reuses_its_in_progress_run(forge, github, make_repo):
    work = _evaluated(forge, github, make_repo)
    forge.start(work.change, "http://x/v/1")
    forge.start(work.change, "http://x/v/2")  # the worker retried before publishing
    forge.publish(work.change, Verdict(Decision.PASS, ()), "http://x/v/2")
    [run] = github.runs_for("acme/app")
    assert (run.conclusion, run.details_url) == ("success", "http://x/v/2")


def test_long_titles_and_summaries_fit_githubs_limits(forge, github, make_repo):
    work = _evaluated(forge, github, make_repo)
    long = finding("deploy/app.yaml", None)
    long = Finding(**{**long.__dict__, "subject": "x" * 400, "message": "m" * 2000})
    verdict = Verdict(Decision.FAIL, (long,) * 60)
    forge.publish(work.change, verdict, "http://x/v/1")
    [run] = github.runs_for("acme/app")
    assert run.conclusion == "failure"
    assert all(len(a["title"]) == 255 and a["start_line"] == 1 for a in run.annotations)
    assert len(run.summary) <= 65_535


# -- faults ----------------------------------------------------------------------------------------


def test_server_errors_are_retried_until_github_recovers(forge, github, make_repo):
    work = _evaluated(forge, github, make_repo)
    github.fail("POST", r"/check-runs$", 500, times=2)
    github.fail("PATCH", r"/check-runs/", 502)
    forge.start(work.change, "http://x/v/1")
    forge.publish(work.change, Verdict(Decision.PASS, ()), "http://x/v/1")
    [run] = github.runs_for("acme/app")
    assert run.conclusion == "success"
    assert [c.status for c in github.calls("POST", r"/check-runs$")] == [500, 500, 201]
    assert [c.status for c in github.calls("PATCH", r"/check-runs/")] == [502, 200]


def test_a_server_that_stays_down_raises(forge, github, make_repo):
    work = _evaluated(forge, github, make_repo)
    github.fail("POST", r"/check-runs$", 503, times=100)
    with pytest.raises(GithubException) as caught:
        forge.start(work.change, "http://x/v/1")
    assert caught.value.status == 503
    assert github.runs_for("acme/app") == []


def test_429_waits_for_retry_after(forge, github, make_repo):
    work = _evaluated(forge, github, make_repo)
    github.fail("GET", r"/pulls/1/files$", 429, headers={"Retry-After": "1"})
    started = time.monotonic()
    files = forge.view(work.change).changed_files()
    assert time.monotonic() - started >= 0.9
    assert [f.path for f in files] == ["deploy/app.yaml"]
    assert [c.status for c in github.calls("GET", r"/pulls/1/files$")] == [429, 200]


def test_primary_rate_limit_waits_for_the_reset(forge, github, make_repo):
    work = _evaluated(forge, github, make_repo)
    github.rate_limit(r"/contents/", reset_in=0)
    reset = int(time.time())
    started = time.monotonic()
    assert forge.repository_policy(work.change) is None
    # GithubRetry waits until x-ratelimit-reset, plus one second of slack
    assert (
        time.monotonic() - started >= reset + 1 - time.time() + (time.monotonic() - started) - 0.05
    )
    assert [c.status for c in github.calls("GET", "/contents/")] == [403, 404]


def test_a_wait_beyond_the_limit_raises_instead_of_blocking(github, make_repo, app_key):
    forge = GitHubForge(
        github.app_id, app_key[0], github.url, GitHubOptions(throttle=False, max_rate_limit_wait=5)
    )
    make_repo()
    github.fail("GET", r"/contents/", 429, headers={"Retry-After": "3600"})
    started = time.monotonic()
    with pytest.raises(RateLimitExceededExceedsMaxWait):
        forge.repository_policy(_change_for("acme/app"))
    assert time.monotonic() - started < 60  # it did not sit out the hour


@pytest.mark.parametrize(
    ("status", "exc"), [(401, BadCredentialsException), (422, GithubException)]
)
def test_client_errors_are_not_retried(forge, github, make_repo, status, exc):
    work = _evaluated(forge, github, make_repo)
    github.fail("POST", r"/check-runs$", status)
    with pytest.raises(exc):
        forge.start(work.change, "http://x/v/1")
    assert len(github.calls("POST", r"/check-runs$")) == 1


def test_an_unknown_pull_request_is_ignored(forge, github, make_repo):
    repo = make_repo()
    number = open_pull(github, repo, {"a": "1"})
    payload = github.pull_request_payload("acme/app", number)
    payload["number"] = 99
    work = forge.parse(deliver("pull_request", payload))
    assert (work.action, work.reason) == ("ignore", "github:acme/app#99: not found on GitHub (404)")


def test_a_change_without_base_views_the_whole_head(forge, github, make_repo):
    repo = make_repo(files={"deploy/app.yaml": "image: nginx\n", "README.md": "hi\n"})
    from bot.change import Change

    change = Change(repo="acme/app", base=None, head=repo.branch_sha("main"), forge="github")
    view = forge.view(change)
    assert view.changed_files() == [
        ChangedFile("README.md", FileStatus.ADDED),
        ChangedFile("deploy/app.yaml", FileStatus.ADDED),
    ]
    assert view.read("deploy/app.yaml") == b"image: nginx\n"
    assert view.read("deploy/app.yaml", "base") is None
    assert len(github.calls("GET", "/git/trees/")) == 1


def test_the_app_manifest_subscribes_to_exactly_the_handled_events():
    manifest = yaml.safe_load((REPO_ROOT / "app.yml").read_text())  # our own, trusted file
    assert set(manifest["default_events"]) == HANDLED_EVENTS
    assert manifest["hook_attributes"]["url"].endswith("/webhooks/github")
    assert manifest["default_permissions"] == {
        "actions": "read",
        "checks": "write",
        "contents": "read",
        "deployments": "write",
        "members": "read",
        "merge_queues": "read",
        "metadata": "read",
        "pull_requests": "read",
    }


# -- pure parts ------------------------------------------------------------------------------------


@given(st.lists(st.sampled_from(list(Action)), max_size=260))
def test_annotation_batches_keep_every_finding_in_order(actions):
    items = [annotation(finding("a.yaml", i + 1, a, i)) for i, a in enumerate(actions)]
    batches = list(_batches(items))
    assert all(0 < len(b) <= ANNOTATIONS_PER_REQUEST for b in batches)
    assert [a for b in batches for a in b] == items
    assert len(batches) == -(-len(items) // ANNOTATIONS_PER_REQUEST)


def test_check_title_counts_blocking_findings():
    verdict = Verdict(Decision.FAIL, (finding("a", 1), finding("b", 2, Action.WARN)))
    assert headline(verdict) == "1 blocking finding"
    assert (
        headline(Verdict(Decision.PASS, (finding("b", 2, Action.WARN),))) == "Passed with 1 warning"
    )


def teardown_module() -> None:
    clear_caches()


def test_labels_draft_and_target_branch_come_from_the_pull_request(forge, github, make_repo):
    """What `if:` / `unless:` conditions read is read here, at the forge's edge."""
    repo = make_repo()
    repo.commit("feature", {"deploy/app.yaml": "image: nginx\n"}, "pin")
    github.open_pull("acme/app", "feature", draft=True, labels=["risky", "db"])
    work = forge.parse(deliver("pull_request", github.pull_request_payload("acme/app", 1)))
    change = work.change
    assert change is not None
    assert (change.base_ref, change.labels, change.draft) == ("main", ("risky", "db"), True)
    # the pull request lands: the push carries its labels; a direct push has no labels to
    # read, so conditions on labels fail closed there
    before = repo.branch_sha("main")
    after = github.merge_pull("acme/app", 1)
    work = forge.parse(deliver("push", github.push_payload("acme/app", "main", before, after)))
    assert work.change is not None
    assert (work.change.base_ref, work.change.labels) == ("main", ("db", "risky"))
    direct = repo.commit("main", {"README.md": "# v2\n"}, "direct push")
    work = forge.parse(deliver("push", github.push_payload("acme/app", "main", after, direct)))
    assert work.change is not None and work.change.labels is None
