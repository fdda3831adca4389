"""Attacks on the first-run setup (issue 13): only the person who started the server may
register the GitHub App, once, with a state and a code that work once."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from setup.harness import FirstRun, first_run, standin

from bot.setup import stored

from standins.github import GitHubStandIn, app_key_pair


@pytest.fixture
def github() -> Iterator[GitHubStandIn]:
    with standin() as server:
        yield server


@pytest.fixture
def fresh(tmp_path: Path, github: GitHubStandIn) -> Iterator[FirstRun]:
    yield from first_run(tmp_path, github)


def nothing_registered(run: FirstRun) -> bool:
    return not stored.app_file(run.settings).exists() and not run.settings.github_enabled


def test_register_app_without_the_setup_token(fresh: FirstRun) -> None:
    stranger = httpx.Client()
    page = stranger.get(f"{fresh.url}/")
    assert page.status_code == 200 and 'id="register-form"' not in page.text
    assert fresh.begin(stranger).status_code == 403
    # even with a state and code from a flow of their own, the callback wants the token
    fresh.enter()
    back = fresh.to_github(fresh.begin())
    assert stranger.get(back).status_code == 403
    assert nothing_registered(fresh)
    assert fresh.browser.get(back).status_code == 200  # the owner's browser still can


def test_guessed_setup_token(fresh: FirstRun) -> None:
    guess = httpx.get(f"{fresh.url}/setup?token=guess", follow_redirects=False)
    assert guess.status_code == 403 and "set-cookie" not in guess.headers
    forged = httpx.Client(cookies={"changegate_setup": "guess"})
    assert fresh.begin(forged).status_code == 403


def test_cross_site_registration_form_post(fresh: FirstRun) -> None:
    """A page elsewhere making the owner's browser post the form: no CSRF field."""
    fresh.enter()
    posted = fresh.browser.post(f"{fresh.url}/setup/github", data={"owner": "personal"})
    assert posted.status_code == 403 and 'name="manifest"' not in posted.text


def test_forged_callback_state(fresh: FirstRun) -> None:
    fresh.enter()
    back = fresh.to_github(fresh.begin())
    code = parse_qs(urlsplit(back).query)["code"][0]
    forged = fresh.browser.get(f"{fresh.url}/setup/github/callback?code={code}&state=forged")
    assert forged.status_code == 400 and nothing_registered(fresh)
    assert code in fresh.github.manifest_codes  # never converted


def test_callback_state_replayed(fresh: FirstRun) -> None:
    fresh.enter()
    first = fresh.begin()
    back = fresh.to_github(first)
    state = parse_qs(urlsplit(back).query)["state"][0]
    # the same state again with another code: a state is spent by its first callback
    fresh.browser.get(back.replace("code=", "code=x"))
    assert nothing_registered(fresh)
    again = fresh.browser.get(back)
    assert again.status_code == 400 and "Unknown, used or expired state" in again.text
    assert state not in fresh.server.app.state.setup._states


def test_manifest_code_used_twice(fresh: FirstRun, github: GitHubStandIn) -> None:
    """Someone converts the code first (it leaked): GitHub refuses the second conversion
    with 404, changegate keeps nothing and the setup stays open for a fresh attempt."""
    fresh.enter()
    back = fresh.to_github(fresh.begin())
    code = parse_qs(urlsplit(back).query)["code"][0]
    stolen = httpx.post(f"{github.url}/app-manifests/{code}/conversions")
    assert stolen.status_code == 201
    again = httpx.post(f"{github.url}/app-manifests/{code}/conversions")
    assert again.status_code == 404 and again.json()["message"] == "Not Found"
    late = fresh.browser.get(back)
    assert late.status_code == 400 and "did not accept the code" in late.text
    assert nothing_registered(fresh)
    assert fresh.browser.get(fresh.to_github(fresh.begin())).status_code == 200


def test_setup_link_after_the_app_exists(fresh: FirstRun) -> None:
    old_link = fresh.setup_url
    assert fresh.register().status_code == 200
    assert fresh.server.app.state.setup.setup_url is None
    assert httpx.get(old_link, follow_redirects=False).status_code == 404
    assert fresh.begin().status_code == 404
    page = fresh.browser.get(f"{fresh.url}/")
    assert 'id="register-form"' not in page.text and not re.search(r"/setup\?token=\w", page.text)


def test_setup_when_github_is_configured_from_the_environment(
    tmp_path: Path, github: GitHubStandIn
) -> None:
    key = tmp_path / "key.pem"
    key.write_text(app_key_pair()[0])
    for run in first_run(
        tmp_path, github, github_app_id="5", github_private_key_path=key,
        github_webhook_secret="env-secret", workers=0,
    ):  # fmt: skip
        assert run.server.app.state.setup.setup_url is None
        assert httpx.get(f"{run.url}/setup?token=x").status_code == 404
        assert 'id="register' not in httpx.get(f"{run.url}/").text


def test_registration_under_a_webhook_secret_from_the_environment(
    tmp_path: Path, github: GitHubStandIn
) -> None:
    """A half-configured GitHub: the environment's webhook secret would win over the new
    App's, so every one of its webhooks would be refused. No setup is offered."""
    for run in first_run(tmp_path, github, github_webhook_secret="env-secret", workers=0):
        assert run.server.app.state.setup.setup_url is None
        assert httpx.get(f"{run.url}/setup?token=x").status_code == 404
        twin = httpx.get(f"{run.url}/?format=json").json()
        assert twin["setup"]["open"] is False
        assert any("partly configured" in step for step in twin["next"])
