"""Issue 13, part 1: a server started with no GitHub settings serves a start page, lets
the person who started it register the GitHub App through GitHub's manifest flow, and
then accepts and evaluates that App's signed webhooks, without a restart."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import httpx

from bot.settings import Settings
from bot.setup import stored
from bot.worker import WorkerOptions, run_workers

from .harness import FirstRun, first_run
from standins.github import GitHubStandIn


def test_start_page_says_what_is_on_and_what_to_do(fresh: FirstRun) -> None:
    page = httpx.get(f"{fresh.url}/")
    assert page.status_code == 200
    assert "Register the GitHub App" in page.text
    assert "/setup?token=" in page.text  # how to get in: the start-up log's URL, not the token
    assert fresh.server.app.state.setup.token not in page.text
    twin = httpx.get(f"{fresh.url}/?format=json").json()
    systems = {s["name"]: s for s in twin["systems"]}
    assert {n: s["on"] for n, s in systems.items()} == {
        "GitHub": False,
        "GitLab": False,
        "Slack": False,
        "Admin pages": False,
        "Database": True,
    }
    assert twin["policy"]["path"].endswith("policy.yml") and twin["policy"]["rules"] == 1
    assert twin["policy"]["source"] == "the CHANGEGATE_POLICY file"
    assert twin["policy"]["deploy_gates"] == 0 and twin["policy"]["error"] is None
    assert twin["setup"] == {
        "open": True,
        "allowed": False,
        "csrf": "",
        "github_url": fresh.github.url,
    }
    assert any("Register the GitHub App" in step for step in twin["next"])
    assert "request_url: http://127.0.0.1" in twin["slack_manifest"]


def test_register_the_app_then_its_signed_webhook_is_accepted_and_evaluated(
    fresh: FirstRun,
) -> None:
    number, head = fresh.pull_with_latest_image()
    before = fresh.send_pull(number, "any secret")
    assert before.status_code == 401  # no App, no secret: refused, never accepted unsigned

    entered = fresh.enter()
    assert entered.status_code == 200 and 'id="register-form"' in entered.text
    to_github = fresh.begin()
    action, manifest_json = fresh.github_form(to_github)
    assert action.startswith(f"{fresh.github.url}/settings/apps/new?state=")
    manifest = json.loads(manifest_json)
    assert manifest["hook_attributes"]["url"] == f"{fresh.url}/webhooks/github"
    assert manifest["redirect_url"] == f"{fresh.url}/setup/github/callback"
    assert manifest["default_permissions"]["checks"] == "write"
    done = fresh.browser.get(fresh.to_github(to_github))
    assert done.status_code == 200, done.text
    assert "GitHub App registered" in done.text and "/installations/new" in done.text

    created = fresh.github.created_apps[-1]
    kept = stored.app_file(fresh.settings)
    assert kept == fresh.tmp_path / stored.FILE_NAME
    data = json.loads(kept.read_text())
    assert (
        data["app_id"] == str(created["id"]) and data["webhook_secret"] == created["webhook_secret"]
    )
    key = Path(data["key_path"])
    assert key.read_text() == created["pem"]
    for path in (kept, key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    accepted = fresh.send_pull(number, fresh.app_secret())
    assert accepted.status_code == 202, accepted.text
    run = fresh.completed_run(head)
    assert run.conclusion == "failure" and run.app_id == created["id"]
    assert any("nginx:latest" in a["message"] for a in run.annotations)
    assert fresh.send_pull(number, "a wrong secret").status_code == 401

    after = httpx.get(f"{fresh.url}/?format=json").json()
    github = next(s for s in after["systems"] if s["name"] == "GitHub")
    assert github["on"] and str(kept) in github["state"]
    assert after["setup"]["open"] is False


def test_an_organization_app_on_the_organization_form(fresh: FirstRun) -> None:
    fresh.enter()
    page = fresh.begin(owner="organization", organization="acme")
    action, _ = fresh.github_form(page)
    assert action.startswith(f"{fresh.github.url}/organizations/acme/settings/apps/new?state=")
    assert fresh.browser.get(fresh.to_github(page)).status_code == 200
    assert fresh.github.created_apps[-1]["owner"]["login"] == "acme"


def test_an_enterprise_server_url_sends_the_manifest_there(fresh: FirstRun) -> None:
    fresh.enter()
    page = fresh.begin(enterprise_url="https://github.acme.test/")
    action, _ = fresh.github_form(page)
    assert action.startswith("https://github.acme.test/settings/apps/new?state=")
    csp = page.headers["content-security-policy"]
    assert "form-action 'self' https://github.acme.test;" in csp


def test_a_separate_worker_process_picks_up_the_registered_app(
    tmp_path: Path, github: GitHubStandIn
) -> None:
    """`changegate worker` started before the App existed evaluates its deliveries: it
    shares the database and the kept App, not the server's memory."""
    for run in first_run(tmp_path, github, workers=0):
        worker_settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            **run.settings.model_dump(
                include={
                    "database_url",
                    "policy",
                    "public_url",
                    "github_api_url",
                    "github_throttle",
                    "poll_interval_seconds",
                    "max_attempts",
                    "backoff_base_seconds",
                }
            ),
        )
        assert not worker_settings.github_enabled
        stop = threading.Event()
        worker = threading.Thread(
            target=run_workers,
            args=(
                worker_settings,
                WorkerOptions(count=1, install_signals=False, stop_event=stop),
            ),
            daemon=True,
        )
        worker.start()
        try:
            number, head = run.pull_with_latest_image()
            assert run.register().status_code == 200
            assert run.send_pull(number, run.app_secret()).status_code == 202
            assert run.completed_run(head).conclusion == "failure"
            assert worker_settings.github_app_id == str(github.created_apps[-1]["id"])
        finally:
            stop.set()
            worker.join(20)


def test_environment_settings_win_over_the_kept_app(tmp_path: Path) -> None:
    path = tmp_path / stored.FILE_NAME
    app = stored.StoredApp(
        app_id="11",
        slug="cg",
        html_url="",
        owner="o",
        client_id="Iv1.kept",
        client_secret="kept-secret",
        webhook_secret="kept-hook",
        api_url="https://ghe/api/v3",
        web_url="https://ghe",
    )
    stored.save(path, app, "PEM")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite:///{tmp_path / 'x.db'}",
        github_webhook_secret="from-env",
        github_api_url="https://api.github.com",
    )
    assert stored.refresh(settings)
    assert settings.github_app_id == "11"  # unset in the environment: the kept App's
    assert settings.github_client_id == "Iv1.kept"
    assert settings.github_webhook_secret is not None
    assert settings.github_webhook_secret.get_secret_value() == "from-env"
    assert settings.github_api_url == "https://api.github.com"
