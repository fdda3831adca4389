"""Issue 11 item 2: files a rule cannot read. Each attack is a file that used to pass with a
warning; `changegate check` (a real subprocess over a real git repository) must judge what it
can still read and fail closed, at the rule's action, on what it cannot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from e2e.conftest import Harness
from e2e.test_github_flow import open_pull

from standins.gitrepo import GitRepo
from support import WorkTreeRepo

POLICY = """\
version: 1
rules:
  - {id: pinned-images, kind: unpinned-image, action: block}
  - {id: yaml-versions, kind: yaml-version-coercion, action: block}
"""

POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n"
LATEST_POD = POD + "    - name: web\n      image: nginx:latest\n"
MiB = 1024 * 1024


def check(
    repo: WorkTreeRepo, files: dict[str, str | bytes], policy: str = POLICY
) -> dict[str, Any]:
    repo.commit({".changegate.yml": policy}, "base")
    repo.git("tag", "base")
    repo.commit(dict(files), "change")
    argv = ["check", "--repo", str(repo.path), "--base", "base", "--head", "HEAD"]
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", *argv, "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ},
    )
    assert proc.returncode in (0, 1), proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    assert proc.returncode == (0 if data["decision"] == "pass" else 1)
    return data


def of(data: dict[str, Any], path: str) -> list[tuple[str, int | None, str]]:
    return [(f["action"], f["line"], f["rule"]) for f in data["findings"] if f["path"] == path]


def padding(size: int) -> str:
    """ConfigMaps, as many as make `size` bytes: real YAML that a rule must wade through."""
    item = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: pad}\ndata:\n" + "".join(
        f"  key{i}: value-{i}-of-some-padding-data\n" for i in range(2000)
    )
    return item * (size // len(item) + 1)


def test_dockerfile_with_an_invalid_utf8_byte_in_a_comment(git_repo: WorkTreeRepo) -> None:
    dockerfile = b"# maintained by Ren\xe9\nFROM nginx:latest\nRUN true\n"
    data = check(git_repo, {"Dockerfile": dockerfile})
    assert data["decision"] == "fail"
    assert of(data, "Dockerfile") == [
        ("warn", None, "pinned-images"),
        ("block", 2, "pinned-images"),
    ]
    note = data["findings"][0]["message"]
    assert "not valid UTF-8" in note and "U+FFFD" in note


def test_manifest_with_a_nul_byte(git_repo: WorkTreeRepo) -> None:
    manifest = POD.encode() + b"    # \x00\n    - name: web\n      image: nginx:latest\n"
    data = check(git_repo, {"k8s/pod.yaml": manifest})
    assert data["decision"] == "fail"
    # one note for the file, though two rules read it
    assert of(data, "k8s/pod.yaml") == [
        ("warn", None, "pinned-images"),
        ("block", 8, "pinned-images"),
    ]


@pytest.mark.parametrize("size", [int(5.6 * MiB), 20 * MiB], ids=["5.6MB", "20MB"])
def test_large_manifest_is_read_in_full(git_repo: WorkTreeRepo, size: int) -> None:
    data = check(git_repo, {"k8s/big.yaml": padding(size) + "---\n" + LATEST_POD})
    assert data["decision"] == "fail"
    found = of(data, "k8s/big.yaml")
    assert [(action, rule) for action, _line, rule in found] == [
        ("warn", "pinned-images"),
        ("block", "pinned-images"),
    ]
    assert "read in full" in data["findings"][0]["message"]


def test_manifest_over_the_hard_cap_blocks_and_says_how_to_get_under(
    git_repo: WorkTreeRepo,
) -> None:
    data = check(git_repo, {"k8s/huge.yaml": padding(26 * MiB), "k8s/ok.yaml": POD})
    assert data["decision"] == "fail"
    assert of(data, "k8s/huge.yaml") == [("block", None, "pinned-images")]
    message = data["findings"][0]["message"]
    assert "25.0 MiB limit" in message and "split it into smaller files" in message


def test_yaml_syntax_error_blocks_with_the_parsers_line(git_repo: WorkTreeRepo) -> None:
    broken = POD + "    - name: web\n      image: [nginx:latest\n"
    data = check(git_repo, {"k8s/pod.yaml": broken})
    assert data["decision"] == "fail"
    [(action, line, _rule)] = of(data, "k8s/pod.yaml")
    assert action == "block" and line is not None and line >= 7
    assert "YAML syntax error" in data["findings"][0]["message"]


def test_binary_file_named_yaml_blocks(git_repo: WorkTreeRepo) -> None:
    blob = bytes(range(256)) * 64
    data = check(git_repo, {"k8s/app.yaml": blob})
    assert data["decision"] == "fail"
    assert of(data, "k8s/app.yaml") == [("block", None, "pinned-images")]
    assert "binary file" in data["findings"][0]["message"]


def test_a_warn_rule_that_cannot_read_a_file_only_warns(git_repo: WorkTreeRepo) -> None:
    policy = "version: 1\nrules:\n  - {id: pins, kind: unpinned-image, action: warn}\n"
    data = check(git_repo, {"k8s/app.yaml": "image: [oops\n"}, policy)
    assert data["decision"] == "pass"
    assert of(data, "k8s/app.yaml") == [("warn", 2, "pins")]


def test_helm_template_is_judged_without_its_actions(git_repo: WorkTreeRepo) -> None:
    template = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n"
        '  name: {{ include "web.fullname" . }}\n'
        '  labels: {{- include "web.labels" . | nindent 4 }}\n'
        "spec:\n  template:\n    spec:\n"
        "      {{- with .Values.imagePullSecrets }}\n"
        "      imagePullSecrets: {{- toYaml . | nindent 8 }}\n"
        "      {{- end }}\n"
        "      containers:\n"
        "        - name: web\n"
        '          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"\n'
        "        - name: proxy\n"
        "          image: envoyproxy/envoy:latest\n"
    )
    data = check(git_repo, {"charts/web/templates/deployment.yaml": template})
    assert data["decision"] == "fail"
    assert of(data, "charts/web/templates/deployment.yaml") == [("block", 16, "pinned-images")]


def test_helm_template_that_is_not_yaml_even_without_actions_blocks(
    git_repo: WorkTreeRepo,
) -> None:
    template = "apiVersion: v1\nkind: Pod\nspec:\n  containers: [\n{{ .Values.x }}\n"
    data = check(git_repo, {"charts/web/templates/pod.yaml": template})
    assert data["decision"] == "fail"
    found = of(data, "charts/web/templates/pod.yaml")
    assert {action for action, _line, _rule in found} == {"block"}
    assert "Helm template" in data["findings"][0]["message"]


def test_a_pull_request_with_a_broken_manifest_fails_on_github(
    harness: Harness, repo: GitRepo
) -> None:
    """The same rule through the server: a GitHub pull request, the stand-in's API, the
    check run's conclusion."""
    _number, head = open_pull(
        harness, repo, {"deploy/staging/app.yaml": "spec: {containers: [{image: nginx\n"}
    )
    run = harness.completed_run(head, "failure")
    assert run.conclusion == "failure"
    assert any("YAML syntax error" in a["message"] for a in run.annotations)


def test_a_file_broken_before_the_change_still_blocks_when_the_change_touches_it(
    git_repo: WorkTreeRepo,
) -> None:
    """Its syntax error is on a line the change did not touch, but nothing in it was judged."""
    broken = "a: 1\nb: [oops\n" + "".join(f"c{i}: {i}\n" for i in range(20))
    git_repo.commit({"k8s/app.yaml": broken}, "broken long ago")
    data = check(git_repo, {"k8s/app.yaml": broken.replace("c19: 19", "c19: 20")})
    assert data["decision"] == "fail"
    assert {action for action, _line, _rule in of(data, "k8s/app.yaml")} == {"block"}
