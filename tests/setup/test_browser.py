"""The first run in a real headless Chromium (Debian's), as a newcomer does it: the
start-up log's setup link, the start page, "Register the GitHub App", GitHub's new-app
form (the stand-in, another site, sends the browser straight back), the callback; then a
signed webhook of the new App is accepted and evaluated. Set CHANGEGATE_SCREENSHOTS=docs/img
to refresh the README's screenshots (see tests/pages/test_browser.py for the set-up)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from live import LiveServer, free_port
from pages.test_browser import MAX_SCREENSHOT_BYTES

from bot.app import AppOptions, create_app

from .harness import FirstRun, first_run_settings
from standins.github import GitHubStandIn

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# the module-scoped `browser` fixture (Debian's Chromium) comes from tests/pages, through
# this package's conftest


def shot(page: Page, name: str, tmp_path: Path) -> None:
    target = Path(os.environ.get("CHANGEGATE_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    path = target / name
    page.screenshot(path=str(path), full_page=True)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < MAX_SCREENSHOT_BYTES, name


def test_start_register_and_a_signed_webhook_is_evaluated(
    browser: Browser, github: GitHubStandIn, tmp_path: Path
) -> None:
    port = free_port()
    public = f"http://changegate.test:{port}"  # another site than the stand-in's 127.0.0.1
    settings = first_run_settings(tmp_path, github, port, public_url=public)
    with LiveServer(create_app(settings, AppOptions(workers=1)), port) as server:
        run = FirstRun(server, settings, github, tmp_path)
        number, head = run.pull_with_latest_image()
        context = browser.new_context(viewport={"width": 1000, "height": 800})
        context.set_default_timeout(10_000)
        try:
            page = context.new_page()
            page.goto(f"{public}/")
            assert page.get_by_role("heading", name="Register the GitHub App").is_visible()
            assert page.locator("#register-form").count() == 0  # not without the token

            page.goto(run.setup_url)
            page.wait_for_url(f"{public}/")
            assert page.get_by_role("button", name="Register the GitHub App").is_visible()
            shot(page, "setup-start.png", tmp_path)
            page.get_by_role("button", name="Register the GitHub App").click()
            page.get_by_role("button", name="Create the App on GitHub").click()
            page.wait_for_url(f"{public}/setup/github/callback?*")
            assert page.get_by_role("heading", name="GitHub App registered").is_visible()
            shot(page, "setup-done.png", tmp_path)

            created = github.created_apps[-1]
            assert created["manifest"]["hook_attributes"]["url"] == f"{public}/webhooks/github"
            accepted = run.send_pull(number, run.app_secret())
            assert accepted.status_code == 202, accepted.text
            assert run.completed_run(head).conclusion == "failure"

            page.goto(f"{public}/")
            status = page.locator("#status")
            assert "kept in" in status.inner_text()
            assert page.locator("#register-form").count() == 0
            shot(page, "start-page.png", tmp_path)
        finally:
            context.close()
