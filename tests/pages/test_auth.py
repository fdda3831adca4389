"""Admin authentication (bot/pages/auth.py), in process: the token, the signed session
cookie, CSRF, the guard's refusals, the sign-in state. GitHub sign-in against the GitHub
stand-in: test_auth_github.py."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote

import pytest
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from bot import inbox
from bot.governor import PolicyHolder
from bot.pages import SESSION_COOKIE, AdminAuth
from bot.settings import Settings

from .conftest import (
    ADMIN_PAGES,
    ADMIN_TOKEN,
    BEARER,
    Seeded,
    csrf_of,
    dead_delivery,
    pages_app,
    state_of,
)


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_pages_without_a_session_redirect_to_the_login(client: TestClient, path: str) -> None:
    r = client.get(path, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"/admin/login?next={quote(path)}"


@pytest.mark.parametrize("path", ADMIN_PAGES)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
        {"Authorization": f"Basic {ADMIN_TOKEN}"},
        {"Cookie": f"{SESSION_COOKIE}=1.2.3"},
    ],
)
def test_json_twins_refuse_a_wrong_or_missing_token(
    client: TestClient, path: str, headers: dict[str, str]
) -> None:
    r = client.get(path, params={"format": "json"}, headers=headers, follow_redirects=False)
    assert r.status_code == 401
    assert r.json() == {"error": "admin token required", "status": 401}
    assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_bearer_token_opens_every_json_twin(client: TestClient, seeded: Seeded, path: str) -> None:
    r = client.get(path, params={"format": "json"}, headers=BEARER)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("token", ["", "wrong", ADMIN_TOKEN.upper(), ADMIN_TOKEN + " "])
def test_wrong_token_at_the_login_is_refused(client: TestClient, token: str) -> None:
    r = client.post("/admin/login", data={"token": token}, follow_redirects=False)
    assert r.status_code == 401
    assert "That token is not right." in r.text
    assert SESSION_COOKIE not in r.headers.get("set-cookie", "")
    assert client.get("/admin", follow_redirects=False).status_code == 303


def test_login_sets_a_strict_httponly_cookie_and_logout_clears_it(client: TestClient) -> None:
    assert "Admin token" in client.get("/admin/login").text
    r = client.post(
        "/admin/login",
        data={"token": ADMIN_TOKEN, "next": "/admin/policy"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/admin/policy"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/admin"):
        assert attribute.lower() in cookie.lower(), attribute
    page = client.get("/admin/policy")
    assert page.status_code == 200 and "Loaded policy" in page.text
    # signing out needs the CSRF token of the page
    assert client.post("/admin/logout", data={"csrf": "0" * 64}).status_code == 403
    r = client.post("/admin/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/admin/policy", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    ("next_path", "landing"),
    [
        ("/admin/dead", "/admin/dead"),
        ("/admin/verdicts?decision=fail", "/admin/verdicts?decision=fail"),
        ("https://evil.example/admin", "/admin"),
        ("//evil.example/admin", "/admin"),
        ("/admin//evil.example", "/admin"),
        ("/v/some-token", "/admin"),
        ("/admin\\@evil.example", "/admin"),
    ],
)
def test_login_redirects_only_inside_admin(
    client: TestClient, next_path: str, landing: str
) -> None:
    r = client.post(
        "/admin/login", data={"token": ADMIN_TOKEN, "next": next_path}, follow_redirects=False
    )
    assert r.headers["location"] == landing


def test_cookie_signature_and_age_are_checked() -> None:
    auth = AdminAuth("token-one", max_age=60)
    now = time.time()
    cookie = auth.new_cookie(now=now)
    assert auth.read_cookie(cookie, now + 59) is not None
    assert auth.read_cookie(cookie, now + 61) is None  # expired
    assert auth.read_cookie(cookie, now - 5) is None  # from the future
    issued, nonce, who, signature = cookie.split(".")
    assert auth.read_cookie(f"{int(issued) + 1000}.{nonce}.{who}.{signature}", now) is None
    assert auth.read_cookie(f"{issued}.{nonce}x.{who}.{signature}", now) is None
    # who the session is for is signed too: a token session cannot become someone else's
    assert auth.read_cookie(f"{issued}.{nonce}.github:alice.{signature}", now) is None
    assert AdminAuth("token-two").read_cookie(cookie, now) is None  # new token: signed out
    assert AdminAuth(None).read_cookie(cookie, now) is None
    # with GitHub sign-in only, a token session (from before the token was removed) is void
    github_only = AdminAuth(None, sign_in_secret="client-secret", max_age=60)
    assert github_only.read_cookie(github_only.new_cookie("token", now), now) is None
    signed_in = github_only.read_cookie(github_only.new_cookie("github:alice", now), now)
    assert signed_in is not None and signed_in.github_login == "alice"


def test_sign_in_state_is_signed_fresh_and_bound_to_the_browser() -> None:
    auth = AdminAuth(None, sign_in_secret="client-secret")
    now = time.time()
    state, nonce = auth.new_state("/admin/dead?x=1", now)
    assert auth.read_state(state, nonce, now + 10) == "/admin/dead?x=1"
    assert auth.read_state(state, "another-browser", now) is None
    assert auth.read_state(state, "", now) is None
    assert auth.read_state(state, nonce, now + 601) is None  # stale
    issued, n, target, signature = state.split(".")
    assert auth.read_state(f"{issued}.{n}.{target}x.{signature}", nonce, now) is None
    assert AdminAuth(None, sign_in_secret="other").read_state(state, nonce, now) is None
    # a state can only ever send the browser to an admin page of this server
    evil, evil_nonce = auth.new_state("https://evil.example/", now)
    assert auth.read_state(evil, evil_nonce, now) == "/admin"


@pytest.mark.parametrize("path", [*ADMIN_PAGES, "/admin/login"])
def test_admin_pages_do_not_exist_without_a_token(
    engine: Engine,
    make_settings: Callable[..., Settings],
    holder: PolicyHolder,
    seeded: Seeded,
    path: str,
) -> None:
    settings = make_settings(admin_token=None)
    with TestClient(pages_app(engine, settings, holder, None)) as c:
        assert c.get(path, follow_redirects=False).status_code == 404
        assert c.get(path, headers={"Authorization": "Bearer "}).status_code == 404
        assert c.get(path, params={"format": "json"}).status_code == 404
        assert c.post("/admin/login", data={"token": ""}).status_code == 404
        assert c.post("/admin/dead/requeue", data={"delivery": "x"}).status_code == 404
        assert c.get(f"/v/{seeded.token}").status_code == 200  # the verdict page stays


def test_a_form_posted_without_a_session_leads_back_to_its_page(
    client: TestClient, engine: Engine
) -> None:
    key = dead_delivery(engine, "dead-5")
    r = client.post("/admin/dead/requeue", data={"delivery": key}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin/login?next=/admin/dead"
    assert state_of(engine, key) == inbox.DEAD
