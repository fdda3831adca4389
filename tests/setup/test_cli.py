"""The first run from the command line: `changegate serve` prints the one-time setup URL
in its start-up log, and `changegate slack manifest` prints the Slack app's manifest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml
from live import free_port

from .harness import POLICY
from support import REPO_ROOT


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHANGEGATE_")}
    return {
        **env,
        "PYTHONPATH": str(REPO_ROOT),
        "CHANGEGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'changegate.db'}",
        "CHANGEGATE_POLICY": str(policy),
        "CHANGEGATE_REDELIVERY_INTERVAL_SECONDS": "0",
        **extra,
    }


def test_serve_prints_the_setup_url_and_only_that_url_opens_the_setup(tmp_path: Path) -> None:
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=cli_env(tmp_path, CHANGEGATE_PUBLIC_URL=public, CHANGEGATE_WORKER_COUNT="0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline, line = time.monotonic() + 30, ""
        while "/setup?token=" not in line:
            assert time.monotonic() < deadline and proc.poll() is None, "no setup URL logged"
            line = proc.stdout.readline()
        record = json.loads(line)
        assert record["level"] == "warning"
        url = next(w for w in record["msg"].split() if w.startswith(f"{public}/setup?token="))
        wait = time.monotonic() + 10
        while True:
            try:
                start = httpx.get(f"{public}/")
                break
            except httpx.ConnectError:
                assert time.monotonic() < wait
                time.sleep(0.1)
        assert start.status_code == 200 and 'id="register-form"' not in start.text
        assert httpx.get(url.replace("token=", "token=x")).status_code == 403
        with httpx.Client() as browser:
            page = browser.get(url, follow_redirects=True)
            assert page.status_code == 200 and 'id="register-form"' in page.text
            assert str(page.url) == f"{public}/"  # the token left the address bar
    finally:
        proc.terminate()
        proc.wait(15)


def test_slack_manifest_has_the_scopes_of_every_slack_call_and_the_interactivity_url(
    tmp_path: Path,
) -> None:
    public = "https://changegate.example.com"

    def manifest(fmt: str, **env: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "bot.cli", "slack", "manifest", "--format", fmt],
            cwd=tmp_path,
            env=cli_env(tmp_path, CHANGEGATE_PUBLIC_URL=public, **env),
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    data = json.loads(manifest("json"))
    assert yaml.safe_load(manifest("yaml")) == data
    assert data["settings"]["interactivity"] == {
        "is_enabled": True,
        "request_url": f"{public}/slack/interactions",
    }
    assert data["features"]["bot_user"]["display_name"] == "changegate"
    assert data["display_information"]["name"] == "changegate"
    # Slack's Web API spec: chat.postMessage/update/postEphemeral need chat:write,
    # users.info users:read, usergroups.users.list usergroups:read, views.open nothing
    assert sorted(data["oauth_config"]["scopes"]["bot"]) == [
        "chat:write",
        "usergroups:read",
        "users:read",
    ]
    by_email = json.loads(manifest("json", CHANGEGATE_SLACK_MATCH_EMAIL="true"))
    assert "users:read.email" in by_email["oauth_config"]["scopes"]["bot"]
