"""Missed deliveries, against the stand-ins with the real PyGithub and python-gitlab clients.

GitHub: the App's delivery log on the stand-in (`GET /app/hook/deliveries`, cursor-paged,
App JWT) decides what is asked again (`POST .../attempts`); a redelivery really reaches a
running server and lands in the inbox. GitLab: open merge requests without a
`changegate` status on their head get a re-check queued in the inbox, once.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from live import LiveServer
from serverkit.testforge import SECRET, MemoryForge
from sqlalchemy.engine import Engine

from bot import inbox
from bot.change import Change
from bot.forges import Delivery
from bot.forges.github import GitHubForge, GitHubOptions
from bot.forges.gitlab import GitLabForge, GitLabOptions
from bot.redelivery import (
    recent_gitlab_projects,
    reconcile_open_mrs,
    redeliver_missed,
    start_jobs,
    start_periodic,
)
from bot.settings import Settings

from standins.github import GitHubStandIn, app_key_pair
from standins.gitlab import GitLabStandIn
from standins.gitrepo import GitRepo

APP_ID = 4711
GL_TOKEN = "glpat-redelivery-test"
HOUR = 3600.0


@pytest.fixture(scope="module")
def app_key() -> tuple[str, str]:
    return app_key_pair()


@pytest.fixture(scope="module")
def github_server(app_key: tuple[str, str]) -> Iterator[GitHubStandIn]:
    with GitHubStandIn(APP_ID, app_key[1]) as standin:
        yield standin


@pytest.fixture
def github(github_server: GitHubStandIn) -> GitHubStandIn:
    github_server.reset()
    return github_server


@pytest.fixture
def gh_forge(github: GitHubStandIn, app_key: tuple[str, str]) -> GitHubForge:
    return GitHubForge(
        APP_ID, app_key[0], github.url, GitHubOptions(throttle=False, backoff_factor=0.001)
    )


@pytest.fixture(scope="module")
def gitlab_server() -> Iterator[GitLabStandIn]:
    with GitLabStandIn(token=GL_TOKEN) as standin:
        yield standin


@pytest.fixture
def gitlab(gitlab_server: GitLabStandIn) -> GitLabStandIn:
    gitlab_server.reset()
    return gitlab_server


@pytest.fixture
def gl_forge(gitlab: GitLabStandIn) -> GitLabForge:
    return GitLabForge(gitlab.url, GL_TOKEN, GitLabOptions(max_rate_limit_wait=5))


def ago(seconds: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)


def stored(engine: Engine, forge: str, delivery_id: str) -> bool:
    return inbox.get(engine, inbox.key_of(forge, delivery_id)) is not None


def put_in_inbox(engine: Engine, guid: str, event: str = "pull_request") -> None:
    inbox.store(engine, Delivery(id=guid, forge="github", event=event, body=b"{}"))


# -- GitHub --------------------------------------------------------------------------------
# (attempts as (status_code, seconds ago), oldest first; in the inbox?; asked again?)
CASES = [
    pytest.param([(502, 60)], False, True, id="one failed attempt, not stored"),
    pytest.param([(0, 60)], False, True, id="timed out (status 0), not stored"),
    pytest.param([(503, 60)], True, False, id="failed, but the inbox holds it"),
    pytest.param([(202, 60)], False, False, id="accepted"),
    pytest.param([(200, 60)], False, False, id="answered 200 (ping, duplicate)"),
    pytest.param([(500, 120), (202, 60)], False, False, id="failed, then redelivered fine"),
    pytest.param([(202, 120), (500, 60)], False, True, id="latest attempt failed"),
    pytest.param([(401, 60)], False, True, id="refused (wrong secret then)"),
    pytest.param([(502, 3 * HOUR)], False, False, id="failed before the window"),
    pytest.param([(502, 300)] * 5, False, False, id="failed five times: given up"),
]


@pytest.mark.parametrize(("attempts", "in_inbox", "asked"), CASES)
def test_failed_deliveries_missing_from_the_inbox_are_redelivered(
    gh_forge: GitHubForge,
    github: GitHubStandIn,
    engine: Engine,
    attempts: list[tuple[int, float]],
    in_inbox: bool,
    asked: bool,
) -> None:
    guid = str(uuid.uuid4())
    logged = [
        github.add_hook_delivery(
            guid, "pull_request", code, action="opened", delivered_at=time.time() - secs
        )
        for code, secs in attempts
    ]
    github.add_hook_delivery(str(uuid.uuid4()), "push", 202)  # a healthy neighbour
    if in_inbox:
        put_in_inbox(engine, guid)

    report = redeliver_missed(gh_forge, engine, since=ago(2 * HOUR))

    assert github.redelivered == ([logged[-1]["id"]] if asked else [])
    assert report.requested == ([guid] if asked else [])
    assert report.errors == []
    assert (guid in report.in_inbox) == in_inbox
    jwt_calls = github.calls(pattern=r"^/app/hook/deliveries")
    assert jwt_calls and all(c.status in (200, 202) for c in jwt_calls)


def test_the_log_is_followed_by_cursor_until_the_window_ends(
    gh_forge: GitHubForge, github: GitHubStandIn, engine: Engine
) -> None:
    now = time.time()
    for i in range(120):  # older than the window: the round stops at the first of them
        github.add_hook_delivery(f"old-{i}", "push", 502, delivered_at=now - 4 * HOUR + i)
    recent = [
        github.add_hook_delivery(f"new-{i}", "push", 500 if i % 3 == 0 else 202, delivered_at=now)
        for i in range(230)
    ]

    report = redeliver_missed(gh_forge, engine, since=ago(HOUR))

    assert report.listed == len(recent)
    assert sorted(report.requested) == sorted(d["guid"] for d in recent if d["status_code"] == 500)
    lists = github.calls("GET", r"^/app/hook/deliveries$")
    assert len(lists) == 3  # 100 + 100 + the page where the window ends
    assert "cursor=" not in lists[0].query and all("cursor=v1_" in c.query for c in lists[1:])


def test_a_redelivery_reaches_the_server_and_is_stored(
    gh_forge: GitHubForge,
    github: GitHubStandIn,
    make_settings: Callable[..., Settings],
    forge: MemoryForge,
) -> None:
    body, headers = github.webhook("push", {"ref": "refs/heads/main", "ok": True}, SECRET)
    guid = headers["X-GitHub-Delivery"]
    github.add_hook_delivery(guid, "push", 0, body=body, headers=headers)  # server was down
    app = create_live_app(make_settings, forge)
    engine = app.state.engine
    with LiveServer(app) as server:
        github.hook_url = f"{server.url}/webhooks/github"
        first = redeliver_missed(gh_forge, engine, since=ago(HOUR))
        second = redeliver_missed(gh_forge, engine, since=ago(HOUR))

    assert first.requested == [guid]
    row = inbox.get(engine, inbox.key_of("github", guid))
    assert row is not None and row["body"] == body and row["event"] == "push"
    assert github.hook_deliveries[0]["status_code"] == 202  # the redelivery, logged by GitHub
    assert second.requested == [] and second.failed == []  # latest attempt now succeeded


def create_live_app(make_settings: Callable[..., Settings], forge: MemoryForge):  # type: ignore[no-untyped-def]
    from bot.app import AppOptions, create_app

    return create_app(make_settings(), AppOptions(forges={"github": forge}, workers=0))


def test_a_refused_redelivery_is_reported_and_the_round_goes_on(
    gh_forge: GitHubForge, github: GitHubStandIn, engine: Engine
) -> None:
    first = github.add_hook_delivery("a", "push", 502, delivered_at=time.time() - 10)
    second = github.add_hook_delivery("b", "push", 502, delivered_at=time.time() - 5)
    github.fail("POST", rf"/app/hook/deliveries/{second['id']}/attempts$", 422)

    report = redeliver_missed(gh_forge, engine, since=ago(HOUR))

    assert report.requested == ["a"]
    assert len(report.errors) == 1 and report.errors[0].startswith("b: ")
    assert github.redelivered == [first["id"]]


def test_a_log_that_cannot_be_read_is_an_error_not_a_crash(
    gh_forge: GitHubForge, github: GitHubStandIn, engine: Engine
) -> None:
    github.add_hook_delivery("a", "push", 502)
    github.fail("GET", r"^/app/hook/deliveries$", 404)

    report = redeliver_missed(gh_forge, engine, since=ago(HOUR))

    assert report.requested == [] and len(report.errors) == 1
    assert github.redelivered == []


# -- GitLab --------------------------------------------------------------------------------
@pytest.fixture
def gl_project(tmp_path: Path, gitlab: GitLabStandIn) -> GitRepo:
    repo = GitRepo(tmp_path / "app.git")
    repo.commit("main", {"README.md": "# app\n"}, "initial commit")
    for branch in ("checked", "unchecked", "closed", "busy"):
        repo.commit(branch, {f"deploy/{branch}.yaml": "image: nginx:latest\n"}, branch)
    gitlab.add_project("acme/platform/app", repo, project_id=77)
    return repo


def test_open_mrs_without_a_status_get_one_recheck(
    gl_forge: GitLabForge, gitlab: GitLabStandIn, gl_project: GitRepo, engine: Engine
) -> None:
    path = "acme/platform/app"
    checked = gitlab.open_mr(path, "checked")
    unchecked = gitlab.open_mr(path, "unchecked")
    closed = gitlab.open_mr(path, "closed")
    gitlab.edit_mr(path, closed.iid, state="closed")
    busy = gitlab.open_mr(path, "busy")
    head = gl_project.branch_sha("checked")
    assert head is not None
    change = Change(repo=path, base=None, head=head, forge="gitlab", number=checked.iid)
    gl_forge.start(change, "https://changegate.example.com/v/x")  # a real status, via the API
    inbox.store(  # a webhook for `busy` is waiting in the queue: nothing to add
        engine,
        Delivery(id="hook-1", forge="gitlab", event="Merge Request Hook", body=b"{}"),
        subject=f"gitlab:{path}!{busy.iid}",
    )

    report = reconcile_open_mrs(gl_forge, engine, [path])
    again = reconcile_open_mrs(gl_forge, engine, [path])

    assert report.listed == 3  # open ones only
    assert report.requested == [f"{path}!{unchecked.iid}"]
    assert report.in_inbox == [f"{path}!{busy.iid}"]
    assert again.requested == [] and f"{path}!{unchecked.iid}" in again.in_inbox
    sha = gl_project.branch_sha("unchecked")
    row = inbox.get(engine, inbox.key_of("gitlab", f"reconcile:77!{unchecked.iid}@{sha}"))
    assert row is not None and row["subject"] == f"gitlab:{path}!{unchecked.iid}"

    # the synthetic delivery is evaluated like a webhook: the MR as it is now
    delivery = Delivery(id=row["delivery_id"], forge="gitlab", event=row["event"], body=row["body"])
    assert gl_forge.subject_of(delivery) == row["subject"]
    work = gl_forge.parse(delivery)
    assert work.action == "evaluate" and work.change is not None
    assert (work.change.repo, work.change.number, work.change.head) == (path, unchecked.iid, sha)


def test_an_unknown_project_is_an_error_and_the_others_still_run(
    gl_forge: GitLabForge, gitlab: GitLabStandIn, gl_project: GitRepo, engine: Engine
) -> None:
    mr = gitlab.open_mr("acme/platform/app", "unchecked")
    report = reconcile_open_mrs(gl_forge, engine, ["acme/gone", "acme/platform/app"])
    assert report.requested == [f"acme/platform/app!{mr.iid}"]
    assert len(report.errors) == 1 and report.errors[0].startswith("acme/gone: ")


@pytest.mark.parametrize(
    ("subject", "project"),
    [
        ("gitlab:acme/app!12", "acme/app"),
        ("gitlab:acme/platform/app@main", "acme/platform/app"),
        ("gitlab:acme/platform/app@deploy:production", "acme/platform/app"),
        ("gitlab:acme/app/pipelines/991", "acme/app"),
        ("gitlab:acme/app", "acme/app"),
    ],
)
def test_projects_to_reconcile_come_from_recent_gitlab_subjects(
    engine: Engine, subject: str, project: str
) -> None:
    inbox.store(engine, Delivery(id="x", forge="gitlab", event="Push Hook", body=b"{}"), subject)
    inbox.store(engine, Delivery(id="y", forge="github", event="push", body=b"{}"), "github:a/b")
    assert recent_gitlab_projects(engine, ago(60)) == [project]
    assert recent_gitlab_projects(engine, dt.datetime.now(dt.UTC) + dt.timedelta(1)) == []


# -- running periodically ------------------------------------------------------------------
def test_a_periodic_job_survives_a_failing_round_and_stops_on_request() -> None:
    rounds: list[int] = []
    third = threading.Event()

    def job() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise RuntimeError("GitHub is down")
        if len(rounds) == 3:
            third.set()

    periodic = start_periodic(job, 0.001, name="test-job")
    assert third.wait(10)
    periodic.stop()
    assert not periodic.thread.is_alive()
    count = len(rounds)
    assert count >= 3 and periodic.stop_event.is_set()
    assert len(rounds) == count  # nothing runs after stop()


def test_start_jobs_runs_the_github_round_for_a_github_forge(
    gh_forge: GitHubForge,
    github: GitHubStandIn,
    engine: Engine,
    make_settings: Callable[..., Settings],
) -> None:
    github.add_hook_delivery("missed", "pull_request", 502)
    jobs = start_jobs(make_settings(), {"github": gh_forge}, engine, interval=0.01, initial_delay=0)
    try:
        names = [p.thread.name for p in jobs.running]
        assert names == ["github-redelivery"]
        deadline = time.monotonic() + 10
        while not github.redelivered and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        jobs.stop()
    assert github.redelivered[:1] == [github.hook_deliveries[-1]["id"]]


def test_start_jobs_is_off_with_interval_zero(
    gh_forge: GitHubForge, engine: Engine, make_settings: Callable[..., Settings]
) -> None:
    assert start_jobs(make_settings(), {"github": gh_forge}, engine, interval=0).running == []


def test_synthetic_payload_is_json_the_forge_reads() -> None:
    from types import SimpleNamespace

    from bot.redelivery import synthetic_mr_delivery

    d = synthetic_mr_delivery(5, "g/p", "main", SimpleNamespace(iid=3, sha="a" * 40))
    body = json.loads(d.body)
    assert (d.forge, d.event, d.id) == ("gitlab", "Merge Request Hook", f"reconcile:5!3@{'a' * 40}")
    assert body["object_attributes"]["action"] == "update"
    assert body["project"]["path_with_namespace"] == "g/p"


def test_only_one_replica_runs_a_round_on_postgres(
    gh_forge: GitHubForge, github: GitHubStandIn, pg_schema_url: str
) -> None:
    import sqlalchemy as sa

    from bot import store

    engine = store.make_engine(pg_schema_url)
    store.load_models().create_all(engine)
    github.add_hook_delivery("missed", "push", 502)
    try:
        with engine.connect() as other:  # another replica, mid-round
            other.execute(sa.select(sa.func.pg_advisory_lock(store.advisory_key("redelivery"))))
            busy = redeliver_missed(gh_forge, engine, since=ago(HOUR))
            other.execute(sa.select(sa.func.pg_advisory_unlock(store.advisory_key("redelivery"))))
        free = redeliver_missed(gh_forge, engine, since=ago(HOUR))
    finally:
        engine.dispose()
    assert busy.skipped and busy.requested == []
    assert not free.skipped and free.requested == ["missed"]
