""" "Sign in with GitHub" on the admin pages, through the real PyGithub web flow against the
GitHub stand-in (authorize, code for token, who is this), served by a real uvicorn: admins
by login and by team, a non-admin refused, a sign-in that did not start in this browser,
a code GitHub refuses, a user who cancels, and leaving the team ends the session."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from live import LiveServer
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from starlette.applications import Starlette

from bot import pages
from bot.forges.github import GitHubForge, GitHubOptions, clear_caches
from bot.governor import PolicyHolder
from bot.settings import Settings

from .conftest import Seeded
from standins.github import GitHubStandIn, app_key_pair
from standins.gitrepo import GitRepo
from standins.server import Fault

APP_ID = 4242
CLIENT_ID = "Iv1.8a61f9b3a7aba766"
CLIENT_SECRET = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"


@pytest.fixture(scope="module")
def app_key() -> tuple[str, str]:
    return app_key_pair()


@pytest.fixture
def github(app_key: tuple[str, str], tmp_path: Path) -> Iterator[GitHubStandIn]:
    with GitHubStandIn(APP_ID, app_key[1]) as standin:
        standin.add_oauth_app(CLIENT_ID, CLIENT_SECRET)
        git = GitRepo(tmp_path / "shop.git")
        git.commit("main", {"README.md": "# shop\n"}, "initial commit")
        standin.add_repo("acme/shop", git, installation_id=7)  # the App is installed on acme
        standin.teams[("acme", "sre-leads")] = ["bob"]
        yield standin


@pytest.fixture
def serve(
    engine: Engine,
    holder: PolicyHolder,
    make_settings: Callable[..., Settings],
    github: GitHubStandIn,
    app_key: tuple[str, str],
) -> Iterator[Callable[..., LiveServer]]:
    """A server whose pages sign in with GitHub; `admin_github` says who may."""
    servers: list[LiveServer] = []

    def start(
        admin_github: str | None = "alice, @acme/sre-leads", admin_token: str | None = None
    ) -> LiveServer:
        clear_caches()
        forge = GitHubForge(
            APP_ID, app_key[0], github.url, GitHubOptions(throttle=False, team_ttl=0)
        )
        server = LiveServer(Starlette())
        settings = make_settings(
            admin_token=SecretStr(admin_token) if admin_token else None,
            github_api_url=github.url,
            github_client_id=CLIENT_ID,
            github_client_secret=SecretStr(CLIENT_SECRET),
            admin_github=admin_github,
            public_url=server.url,
        )
        server.app.router.routes.extend(
            pages.routes(engine, settings, holder, forges={"github": forge})
        )
        servers.append(server.__enter__())
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def sign_in(http: httpx.Client, next_path: str = "/admin/dead") -> httpx.Response:
    """Click "Sign in with GitHub": our server, GitHub's authorize page (the stand-in
    approves for its signed-in user at once), and back to our callback."""
    return http.get("/admin/login/github", params={"next": next_path}, follow_redirects=True)


def callback_from_github(http: httpx.Client) -> httpx.URL:
    """Start a sign-in and let GitHub approve it, but stop before our callback: where
    GitHub sends the browser back (with its code and our state)."""
    start = http.get("/admin/login/github", follow_redirects=False)
    authorized = http.get(start.headers["location"], follow_redirects=False)
    return httpx.URL(authorized.headers["location"])


def test_an_admin_by_login_signs_in_and_lands_where_they_were_going(
    serve: Callable[..., LiveServer], github: GitHubStandIn, seeded: Seeded
) -> None:
    server = serve()
    github.signed_in_user = "Alice"  # logins compare case-insensitively
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.get("/admin/dead", follow_redirects=False).status_code == 303
        page = sign_in(http)
        assert page.status_code == 200 and "Signed in as Alice" in page.text
        assert page.url.path == "/admin/login/github/callback"
        assert re.search(r'http-equiv="refresh" content="0; url=/admin/dead"', page.text)
        dead = http.get("/admin/dead", follow_redirects=False)
        assert dead.status_code == 200 and "Dead letters" in dead.text
        assert http.get("/admin/dead", params={"format": "json"}).status_code == 200
    # what GitHub saw: the App's client id and our callback, and one code exchanged once
    authorize = [r for r in github.requests if r.path == "/login/oauth/authorize"]
    assert len(authorize) == 1 and f"client_id={CLIENT_ID}" in authorize[0].query
    assert "redirect_uri=" + httpx.URL(server.url).host in authorize[0].query.replace(
        "http%3A%2F%2F", ""
    )
    assert [r.status for r in github.requests if r.path == "/login/oauth/access_token"] == [200]
    assert [r.status for r in github.requests if r.path == "/user"] == [200]


def test_a_team_member_signs_in_and_leaving_the_team_ends_the_session(
    serve: Callable[..., LiveServer], github: GitHubStandIn, seeded: Seeded
) -> None:
    server = serve()
    github.signed_in_user = "bob"
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert "Signed in as bob" in sign_in(http).text
        assert http.get("/admin", follow_redirects=False).status_code == 200
        github.teams[("acme", "sre-leads")] = ["dave"]  # bob leaves the team
        gone = http.get("/admin", follow_redirects=False)
        assert gone.status_code == 303 and gone.headers["location"].startswith("/admin/login")


def test_someone_who_is_not_an_admin_is_refused_and_gets_no_session(
    serve: Callable[..., LiveServer], github: GitHubStandIn, seeded: Seeded
) -> None:
    server = serve()
    github.signed_in_user = "mallory"
    with httpx.Client(base_url=server.url, timeout=10) as http:
        page = sign_in(http)
        assert page.status_code == 403
        assert "mallory is not a changegate admin" in page.text
        assert pages.SESSION_COOKIE not in http.cookies
        assert http.get("/admin", follow_redirects=False).status_code == 303


def test_a_sign_in_that_did_not_start_in_this_browser_is_refused(
    serve: Callable[..., LiveServer], github: GitHubStandIn, seeded: Seeded
) -> None:
    server = serve()
    github.signed_in_user = "alice"
    with httpx.Client(base_url=server.url, timeout=10) as attacker:
        callback = callback_from_github(attacker)  # the attacker's own code and state
    with httpx.Client(base_url=server.url, timeout=10) as victim:
        page = victim.get(str(callback), follow_redirects=False)
        assert page.status_code == 400 and "did not start here" in page.text
        assert pages.SESSION_COOKIE not in victim.cookies
    # the code was never exchanged: the state was checked first
    assert not [r for r in github.requests if r.path == "/login/oauth/access_token"]


def test_a_code_github_refuses_and_a_cancelled_sign_in_sign_nobody_in(
    serve: Callable[..., LiveServer], github: GitHubStandIn, seeded: Seeded
) -> None:
    server = serve()
    github.signed_in_user = "alice"
    with httpx.Client(base_url=server.url, timeout=10) as http:
        forged = callback_from_github(http).copy_set_param("code", "not-a-code-github-gave")
        page = http.get(str(forged), follow_redirects=False)
        assert page.status_code == 401 and "did not accept" in page.text
        # GitHub answers a bad code 200 with an `error`; PyGithub raised, we said no
        assert [r.status for r in github.requests if r.path == "/login/oauth/access_token"] == [200]
        assert pages.SESSION_COOKIE not in http.cookies
        github.signed_in_user = None  # the user clicks "Cancel" on GitHub
        page = sign_in(http)
        assert page.status_code == 401 and "cancelled" in page.text
        assert pages.SESSION_COOKIE not in http.cookies


def test_github_unreachable_is_said_and_nobody_is_signed_in(
    serve: Callable[..., LiveServer], github: GitHubStandIn, seeded: Seeded
) -> None:
    server = serve()
    github.signed_in_user = "alice"
    github.faults.append(Fault("POST", r"/login/oauth/access_token", 503, times=20))
    with httpx.Client(base_url=server.url, timeout=60) as http:
        page = sign_in(http)
        assert page.status_code == 502 and "could not be reached" in page.text
        assert pages.SESSION_COOKIE not in http.cookies


def test_without_client_credentials_there_is_no_github_sign_in(
    serve: Callable[..., LiveServer], seeded: Seeded
) -> None:
    server = serve(admin_github=None, admin_token="a-token")
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.get("/admin/login/github").status_code == 404
        login = http.get("/admin/login")
        assert login.status_code == 200 and "Sign in with GitHub" not in login.text
        assert http.get("/admin/login", params={"format": "json"}).json() == {
            "next": "/admin",
            "error": None,
            "token_sign_in": True,
            "github_sign_in": False,
        }


def test_the_start_up_summary_says_how_admins_sign_in() -> None:
    def summary(**values: object) -> str:
        return Settings(_env_file=None, **values).summary()["admin pages"]  # type: ignore[arg-type, call-arg]

    github = {
        "github_client_id": CLIENT_ID,
        "github_client_secret": SecretStr(CLIENT_SECRET),
        "admin_github": "alice",
    }
    assert summary() == "off"
    assert summary(admin_token=SecretStr("t")) == "on (sign in with token)"
    assert summary(**github) == "on (sign in with GitHub)"
    assert summary(admin_token=SecretStr("t"), **github) == "on (sign in with token or GitHub)"
    # client credentials without anyone allowed in: no GitHub sign-in
    assert summary(**{**github, "admin_github": None}) == "off"
