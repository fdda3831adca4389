"""Links into a forge's web UI (bot/pages/links.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bot.pages import ForgeLinks, forge_web_base


@pytest.mark.parametrize(
    ("settings", "forge", "base"),
    [
        ({"github_api_url": "https://api.github.com"}, "github", "https://github.com"),
        ({"github_api_url": "https://api.github.com/"}, "github", "https://github.com"),
        ({"github_api_url": "https://ghe.acme.corp/api/v3"}, "github", "https://ghe.acme.corp"),
        ({"github_api_url": "https://ghe.acme.corp/api/v3/"}, "github", "https://ghe.acme.corp"),
        ({"github_api_url": "https://api.acme.ghe.com"}, "github", "https://acme.ghe.com"),
        ({"github_api_url": "http://127.0.0.1:8123"}, "github", "http://127.0.0.1:8123"),
        ({"gitlab_url": "https://gitlab.example.com/"}, "gitlab", "https://gitlab.example.com"),
        ({"gitlab_url": "https://git.acme.corp/gitlab"}, "gitlab", "https://git.acme.corp/gitlab"),
        ({"gitlab_url": None}, "gitlab", None),
        ({}, "git", None),
    ],
)
def test_forge_web_base(settings: dict[str, object], forge: str, base: str | None) -> None:
    assert forge_web_base(SimpleNamespace(**settings), forge) == base


@pytest.mark.parametrize(
    ("forge", "path", "line", "url"),
    [
        ("github", "k8s/app.yaml", 7, "https://f.example/acme/app/blob/abc/k8s/app.yaml#L7"),
        ("github", "Dockerfile", None, "https://f.example/acme/app/blob/abc/Dockerfile"),
        (
            "github",
            "charts/my app/values #1.yaml",
            3,
            "https://f.example/acme/app/blob/abc/charts/my%20app/values%20%231.yaml#L3",
        ),
        (
            "gitlab",
            "ci/.gitlab-ci.yml",
            12,
            "https://f.example/acme/app/-/blob/abc/ci/.gitlab-ci.yml#L12",
        ),
    ],
)
def test_file_links(forge: str, path: str, line: int | None, url: str) -> None:
    assert ForgeLinks(forge, "https://f.example").blob("acme/app", "abc", path, line) == url


def test_no_links_without_a_forge_web_address() -> None:
    links = ForgeLinks("git", None)
    assert links.blob("acme/app", "abc", "x.yaml", 1) is None
    assert links.change("acme/app", 1) is None and links.commit("acme/app", "abc") is None
