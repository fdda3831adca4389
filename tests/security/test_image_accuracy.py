"""Issue 11 items 15-18 and issue 15 item 4: image references read as Docker, compose and
Helm read them, through `changegate check` on a real git repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from support import WorkTreeRepo

POLICY = """\
version: 1
rules:
  - {id: pinned-images, kind: unpinned-image, action: block}
"""


def check(
    repo: WorkTreeRepo, files: dict[str, str | bytes], policy: str = POLICY
) -> dict[str, Any]:
    """Commit `files` on top of a base holding only the policy; run the CLI on the range."""
    repo.commit({".changegate.yml": policy}, "base")
    repo.git("tag", "base")
    repo.commit(dict(files), "change")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "check",
            "--repo",
            str(repo.path),
            "--base",
            "base",
            "--head",
            "HEAD",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ},
    )
    assert proc.returncode in (0, 1), proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    assert (proc.returncode == 1) == (data["decision"] == "fail")
    return data


def blocked(data: dict[str, Any]) -> list[tuple[str, int, str]]:
    return [
        (f["path"], f["line"], f["subject"]) for f in data["findings"] if f["action"] == "block"
    ]


def test_from_continued_right_after_the_keyword_is_read(git_repo: WorkTreeRepo) -> None:
    dockerfile = (
        "ARG arg=linux/amd64\nFROM\\\n  --platform=$arg \\\n# the base image\n  node\nRUN npm ci\n"
    )
    data = check(git_repo, {"Dockerfile": dockerfile})
    assert data["decision"] == "fail"
    assert blocked(data) == [("Dockerfile", 2, "node")]


def test_compose_version_1_layout_is_read(git_repo: WorkTreeRepo) -> None:
    compose = "web:\n  image: nginx:latest\n  ports: ['80:80']\ndb:\n  build: ./db\n"
    data = check(git_repo, {"docker-compose.yml": compose})
    assert blocked(data) == [("docker-compose.yml", 2, "nginx:latest")]


def test_compose_version_1_layout_under_another_name_is_read(git_repo: WorkTreeRepo) -> None:
    stack = "web:\n  image: redis\n  restart: always\nworker:\n  image: app:1.4.2\n"
    data = check(git_repo, {"deploy/stack.yml": stack})
    assert blocked(data) == [("deploy/stack.yml", 2, "redis")]


def test_explicit_latest_behind_a_registry_placeholder_blocks(git_repo: WorkTreeRepo) -> None:
    manifest = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n"
        "    - name: web\n      image: us-docker.pkg.dev/$PROJECT_ID/app/web:latest\n"
        "    - name: side\n      image: us-docker.pkg.dev/$PROJECT_ID/app/side\n"
    )
    data = check(git_repo, {"k8s/pod.yaml": manifest})
    assert blocked(data) == [("k8s/pod.yaml", 7, "us-docker.pkg.dev/$PROJECT_ID/app/web:latest")]
    # what the placeholder hides (the tag of the untagged one) stays a warning
    warned = [(f["line"], f["action"]) for f in data["findings"] if f["line"] == 9]
    assert warned == [(9, "warn")]


def test_helm_image_with_a_sibling_tag_is_pinned(git_repo: WorkTreeRepo) -> None:
    values = (
        "sidecar:\n"
        "  image: ghcr.io/acme/side\n"
        "  tag: v1.20\n"
        "proxy:\n"
        "  image: ghcr.io/acme/proxy\n"
        "  tag: latest\n"
        "agent:\n"
        "  image: ghcr.io/acme/agent\n"
    )
    data = check(git_repo, {"charts/app/values.yaml": values})
    assert blocked(data) == [
        ("charts/app/values.yaml", 6, "ghcr.io/acme/proxy:latest"),
        ("charts/app/values.yaml", 8, "ghcr.io/acme/agent"),
    ]


def test_mutable_tags_like_lts_are_unpinned(git_repo: WorkTreeRepo) -> None:
    compose = (
        "services:\n"
        "  a: {image: 'node:lts'}\n"
        "  b: {image: 'node:current-alpine'}\n"
        "  c: {image: 'app:canary'}\n"
        "  d: {image: 'app:develop'}\n"
        "  e: {image: 'app:main-3f2c1a9'}\n"
        "  f: {image: 'node:20.11.1'}\n"
    )
    data = check(git_repo, {"compose.yaml": compose})
    assert [line for _p, line, _s in blocked(data)] == [2, 3, 4, 5]


def test_a_policy_extends_the_mutable_tags(git_repo: WorkTreeRepo) -> None:
    policy = (
        "version: 1\nrules:\n  - id: pinned-images\n    kind: unpinned-image\n"
        "    action: block\n    options: {extra_mutable_tags: [prod]}\n"
    )
    compose = "services:\n  a: {image: 'app:prod'}\n  b: {image: 'app:latest'}\n"
    data = check(git_repo, {"compose.yaml": compose}, policy)
    assert [line for _p, line, _s in blocked(data)] == [2, 3]
