"""A first run: the real app (create_app, uvicorn, its workers) started with no GitHub
settings at all, the GitHub stand-in as github.com and its API, and the steps a newcomer's
browser takes, over HTTP (the Chromium test takes the same steps in a real browser)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from live import LiveServer, free_port, wait_for

from bot.app import AppOptions, create_app
from bot.settings import Settings

from standins.github import CheckRun, GitHubStandIn, app_key_pair
from standins.gitrepo import GitRepo

REPO = "acme/app"
POLICY = """\
version: 1
rules:
  - id: pinned-images
    kind: unpinned-image
    action: block
"""
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: web
          image: {image}
"""


def first_run_settings(tmp_path: Path, github: GitHubStandIn, port: int, **extra: Any) -> Settings:
    """Settings as a newcomer has them: nothing about GitHub but where it is."""
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'changegate.db'}",
        "policy": policy,
        "public_url": f"http://127.0.0.1:{port}",
        "github_api_url": github.url,
        "github_throttle": False,
        "redelivery_interval_seconds": 0,
        "poll_interval_seconds": 0.05,
        "max_attempts": 2,
        "backoff_base_seconds": 0.1,
        **extra,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class FirstRun:
    """The running server, its settings and the stand-in; `browser` keeps the cookies of
    the person who started the server."""

    server: LiveServer
    settings: Settings
    github: GitHubStandIn
    tmp_path: Path
    browser: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def setup_url(self) -> str:
        url = self.server.app.state.setup.setup_url
        assert url is not None, "no setup URL: setup is closed"
        return str(url)

    # -- the steps ---------------------------------------------------------------------
    def enter(self) -> httpx.Response:
        """Open the start-up log's setup URL (the cookie lands in `browser`)."""
        return self.browser.get(self.setup_url, follow_redirects=True)

    def begin(self, client: httpx.Client | None = None, **form: str) -> httpx.Response:
        """Submit the start page's registration form."""
        client = client or self.browser
        start = client.get(f"{self.url}/")
        found = re.search(r'name="csrf" value="([^"]*)"', start.text)
        data = {"csrf": found.group(1) if found else "", "owner": "personal", **form}
        return client.post(f"{self.url}/setup/github", data=data)

    @staticmethod
    def github_form(page: httpx.Response) -> tuple[str, str]:
        """The action and the manifest of the page that posts to GitHub."""
        assert page.status_code == 200, page.text
        action = re.search(r'<form method="post" action="([^"]+)"[^>]*id="to-github"', page.text)
        manifest = re.search(r'name="manifest" value="([^"]*)"', page.text)
        assert action and manifest, page.text
        return html.unescape(action.group(1)), html.unescape(manifest.group(1))

    def to_github(self, page: httpx.Response) -> str:
        """Post the manifest to GitHub's new-app form; the URL GitHub sends the browser to."""
        action, manifest = self.github_form(page)
        answer = httpx.post(action, data={"manifest": manifest}, follow_redirects=False)
        assert answer.status_code == 302, answer.text
        return answer.headers["location"]

    def register(self) -> httpx.Response:
        """The whole flow; the page the callback answers."""
        assert self.enter().status_code == 200
        back = self.to_github(self.begin())
        return self.browser.get(back)

    # -- after -------------------------------------------------------------------------
    def app_secret(self) -> str:
        return str(self.github.created_apps[-1]["webhook_secret"])

    def pull_with_latest_image(self) -> tuple[int, str]:
        """A repository the App is installed on, and a pull request that pins nothing."""
        git = GitRepo(self.tmp_path / "repo")
        git.commit("main", {"README.md": "app\n"}, "init")
        self.github.add_repo(REPO, git, installation_id=77)
        head = git.commit("change", {"deploy/app.yaml": DEPLOYMENT.format(image="nginx:latest")})
        pull = self.github.open_pull(REPO, head="change", author="bob")
        return pull.number, head

    def send_pull(self, number: int, secret: str) -> httpx.Response:
        payload = self.github.pull_request_payload(REPO, number)
        body, headers = self.github.webhook("pull_request", payload, secret)
        return httpx.post(f"{self.url}/webhooks/github", content=body, headers=headers)

    def completed_run(self, head: str) -> CheckRun:
        def probe() -> CheckRun | None:
            runs = [r for r in self.github.runs_for(REPO, head) if r.status == "completed"]
            return runs[-1] if runs else None

        return wait_for(probe, what=f"a completed check run on {head[:7]}")


def standin() -> GitHubStandIn:
    """github.com and its API before any App exists (a throwaway App id and key)."""
    return GitHubStandIn(1, app_key_pair()[1])


def first_run(tmp_path: Path, github: GitHubStandIn, *, workers: int = 1, **extra: Any
              ) -> Iterator[FirstRun]:  # fmt: skip
    port = free_port()
    settings = first_run_settings(tmp_path, github, port, **extra)
    app = create_app(settings, AppOptions(workers=workers))
    with LiveServer(app, port) as server:
        run = FirstRun(server, settings, github, tmp_path)
        try:
            yield run
        finally:
            run.browser.close()
