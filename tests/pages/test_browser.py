"""The pages in a real headless Chromium (Debian's `chromium`), driven by Playwright, against
the whole app served by uvicorn on 127.0.0.1 with a worker running.

Needs `apt-get install -y chromium` and `pip install playwright` (never `playwright
install`: the browser is Debian's). Without them these tests fail under CI=true and are
skipped, with the reason, elsewhere. Set CHANGEGATE_SCREENSHOTS=docs to refresh the README
screenshots.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from live import LiveServer
from pydantic import SecretStr
from serverkit.testforge import MemoryForge, gh_headers, payload
from sqlalchemy.engine import Engine
from starlette.applications import Starlette

from bot import inbox, pages
from bot.app import AppOptions, create_app
from bot.governor import PolicyHolder
from bot.settings import Settings

from .conftest import (
    ADMIN_TOKEN,
    HEAD,
    REPO,
    Seeded,
    mount_pages,
    seed_blocked_change,
)
from standins.github import GitHubStandIn, app_key_pair

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = os.environ.get("CHANGEGATE_CHROMIUM", "/usr/bin/chromium")
#: Playwright adds --headless and a fresh, temporary --user-data-dir of its own.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # a second site name for this machine: a sign-in that leaves for GitHub and comes back
    # must cross sites, as it does for real (SameSite cookies), without leaving 127.0.0.1
    "--host-resolver-rules=MAP changegate.test 127.0.0.1",
]
MAX_SCREENSHOT_BYTES = 300_000
DEPLOYMENT = (
    "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - name: web\n      image: nginx:latest\n"
)


def browser_missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"Chromium not found at {CHROMIUM}: apt-get install -y chromium"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is missing: pip install playwright (not `playwright install`)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    why = browser_missing()
    if why is not None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"browser tests cannot run under CI: {why}")
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def shot(tmp_path: Path) -> Callable[[Page, str], Path]:
    """Save a full-page PNG (to CHANGEGATE_SCREENSHOTS when set) and check it is small."""
    target = Path(os.environ.get("CHANGEGATE_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)

    def save(page: Page, name: str) -> Path:
        path = target / name
        page.screenshot(path=str(path), full_page=True)
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(data) < MAX_SCREENSHOT_BYTES, f"{name} is {len(data)} bytes"
        return path

    return save


@pytest.fixture
def live(
    make_settings: Callable[..., Settings], engine: Engine
) -> Iterator[tuple[LiveServer, MemoryForge]]:
    """The whole app (webhooks, one worker, pages) on a real port."""
    forge = MemoryForge()
    settings = make_settings(max_attempts=1, poll_interval_seconds=0.05)
    app = mount_pages(
        create_app(settings, AppOptions(forges={"github": forge}, engine=engine, workers=1))
    )
    with LiveServer(app) as server:
        yield server, forge


def wait_for(check: Callable[[], Any], what: str, seconds: float = 10) -> Any:
    deadline = time.monotonic() + seconds
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return result


def test_verdict_page_of_a_blocked_change(
    live: tuple[LiveServer, MemoryForge],
    engine: Engine,
    page: Page,
    shot: Callable[[Page, str], Path],
) -> None:
    server, _ = live
    seeded: Seeded = seed_blocked_change(engine, live_policy(server))
    response = page.goto(f"{server.url}/v/{seeded.token}")
    assert response is not None and response.status == 200
    assert page.locator("#decision").inner_text() == "Blocked"
    finding = page.locator("#findings .finding.block")
    link = finding.locator("a.file")
    assert link.inner_text() == "deploy/production/app.yaml:10"
    assert link.get_attribute("href") == (
        f"https://github.com/{REPO}/blob/{HEAD}/deploy/production/app.yaml#L10"
    )
    assert "nginx:latest" in finding.locator(".message").inner_text()
    missing = page.locator("#approvals .approval.missing")
    assert missing.count() == 1
    heading = missing.locator("h3").inner_text()
    assert "senior" in heading and "1 more of 1 needed" in heading
    people = missing.locator(".people").inner_text()
    assert "alice, carol" in people and "U0ALICE" in people
    assert "bob (github): not a member of senior" in people
    assert "the author cannot approve their own change" in people
    assert page.locator("#timeline li").count() == 7
    # the stylesheet loaded (a blocked verdict is framed in red) and CSP let it
    border = page.locator("section.verdict").evaluate("e => getComputedStyle(e).borderLeftColor")
    assert border == "rgb(207, 34, 46)"
    shot(page, "verdict-page.png")
    # readable on a phone: nothing wider than the screen
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "verdict-page-phone.png")
    missing_page = page.goto(f"{server.url}/v/not-a-token")
    assert missing_page is not None and missing_page.status == 404


def live_policy(server: LiveServer) -> Any:
    return server.app.state.policy.policy


def test_admin_sign_in_requeue_a_dead_delivery_and_see_it_processed(
    live: tuple[LiveServer, MemoryForge],
    engine: Engine,
    page: Page,
    shot: Callable[[Page, str], Path],
) -> None:
    server, forge = live
    seed_blocked_change(engine, live_policy(server))
    # a delivery whose first processing fails, with one attempt allowed: dead
    body = payload(
        repo=REPO,
        number=7,
        head="c0ffee0000000000000000000000000000000007",
        files={"deploy/production/pod.yaml": DEPLOYMENT},
        fail=1,
    )
    r = httpx.post(
        f"{server.url}/webhooks/github",
        content=body,
        headers=gh_headers(body, delivery="dl-7"),
        timeout=10,
    )
    assert r.status_code == 202
    key = "github:dl-7"
    wait_for(lambda: (inbox.get(engine, key) or {}).get("state") == inbox.DEAD, "dead letter")

    # not signed in: sent to the login; a wrong token is refused there
    page.goto(f"{server.url}/admin/dead")
    assert "/admin/login" in page.url
    page.fill("#token", "not-the-token")
    with page.expect_response(lambda resp: resp.url.endswith("/admin/login")) as refused:
        page.click("button[type=submit]")
    assert refused.value.status == 401
    assert page.locator("[role=alert]").inner_text() == "That token is not right."
    assert page.locator("table#dead").count() == 0

    page.fill("#token", ADMIN_TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/admin/dead")
    row = page.locator(f'tr[data-key="{key}"]')
    assert row.count() == 1
    assert "injected failure 1" in row.inner_text()
    shot(page, "admin-dead-letters.png")

    row.locator("button", has_text="Re-queue").click()
    page.wait_for_url("**/admin/dead?requeued=*")
    assert "Re-queued" in page.locator("[role=status]").inner_text()
    assert page.locator(f'tr[data-key="{key}"]').count() == 0
    assert page.locator("#empty").inner_text() == "No dead deliveries."

    # the worker picks it up again, and this time it goes through
    wait_for(lambda: (inbox.get(engine, key) or {}).get("state") == inbox.DONE, "re-processing")
    assert [p.change.number for p in forge.published] == [7]
    page.goto(f"{server.url}/admin/verdicts?decision=fail")
    page.locator("a", has_text=f"{REPO} #7").click()
    assert page.locator("#decision").inner_text() == "Blocked"
    assert page.url == forge.published[0].details_url.replace("http://127.0.0.1:8000", server.url)

    page.goto(f"{server.url}/admin/requests")
    assert page.locator("table tbody tr").count() == 1
    shot(page, "admin-requests.png")
    page.goto(f"{server.url}/admin/policy")
    assert page.locator("#group-senior").count() == 1
    shot(page, "admin-policy.png")


def test_admin_refuses_a_missing_or_wrong_token(
    live: tuple[LiveServer, MemoryForge], browser: Browser
) -> None:
    server, _ = live
    context = browser.new_context()
    try:
        page = context.new_page()
        for path in ("/admin", "/admin/requests", "/admin/audit"):
            page.goto(f"{server.url}{path}")
            assert page.url.startswith(f"{server.url}/admin/login?next=")
        api = context.request
        assert api.get(f"{server.url}/admin/dead?format=json").status == 401
        wrong = api.get(
            f"{server.url}/admin/dead?format=json", headers={"Authorization": "Bearer nope"}
        )
        assert wrong.status == 401 and wrong.json()["error"] == "admin token required"
        posted = api.post(
            f"{server.url}/admin/dead/requeue",
            data={"delivery": "github:dl-7"},
            headers={"Authorization": "Bearer nope"},
        )
        assert posted.status == 401
        right = api.get(
            f"{server.url}/admin/dead?format=json",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert right.status == 200 and right.json()["dead"] == []
    finally:
        context.close()


def test_admin_signs_in_with_github_across_sites(
    browser: Browser,
    engine: Engine,
    holder: PolicyHolder,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    """changegate.test -> the GitHub stand-in on 127.0.0.1 (another site) -> back: the
    session cookie (SameSite=Strict) set at the end of that cross-site trip is sent by the
    next page, so the admin lands where they were going, signed in."""
    key = app_key_pair()
    with GitHubStandIn(4242, key[1]) as github:
        github.add_oauth_app("Iv1.browser", "browser-secret")
        github.signed_in_user = "alice"
        server = LiveServer(Starlette())
        public = f"http://changegate.test:{server.port}"
        settings = make_settings(
            admin_token=None,
            github_api_url=github.url,
            github_client_id="Iv1.browser",
            github_client_secret=SecretStr("browser-secret"),
            admin_github="alice",
            public_url=public,
        )
        server.app.router.routes.extend(pages.routes(engine, settings, holder))
        context = browser.new_context()
        try:
            with server:
                page = context.new_page()
                page.goto(f"{public}/admin/dead")
                assert page.url.startswith(f"{public}/admin/login?next=")
                assert page.locator("#token").count() == 0  # no token sign-in configured
                page.get_by_role("button", name="Sign in with GitHub").click()  # a link styled so
                page.wait_for_url(f"{public}/admin/dead")
                assert page.get_by_role("heading", name="Dead-letter queue").is_visible()
                assert page.get_by_role("button", name="Sign out").is_visible()
                visited = [r.path for r in github.requests]
                assert visited == ["/login/oauth/authorize", "/login/oauth/access_token", "/user"]
        finally:
            context.close()
