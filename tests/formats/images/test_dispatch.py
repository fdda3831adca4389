"""Which reader a file goes to; files that cannot be read; Helm templates."""

from __future__ import annotations

import textwrap

import pytest

from bot.formats.images import FileKind, extract, file_kind
from bot.views.memory import MemoryView


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("Dockerfile", FileKind.DOCKERFILE),
        ("docker/Dockerfile.prod", FileKind.DOCKERFILE),
        ("build/api.Dockerfile", FileKind.DOCKERFILE),
        ("Dockerfile-alpine", FileKind.DOCKERFILE),
        ("Containerfile", FileKind.DOCKERFILE),
        ("dockerfile", FileKind.DOCKERFILE),
        ("infra/main.tf", FileKind.TERRAFORM),
        ("deploy/app.yaml", FileKind.YAML),
        (".gitlab-ci.yml", FileKind.YAML),
        ("README.md", None),
        ("Dockerfiles.md", None),
        ("src/main.py", None),
    ],
)
def test_file_kind(path: str, kind: FileKind | None) -> None:
    assert file_kind(path) is kind


@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("deploy/broken.yaml", "apiVersion: v1\nkind: Pod\nspec: [unclosed\n"),
        ("infra/broken.tf", 'resource "x" "y" {\n  image = \n'),
    ],
)
def test_unparseable_files_report_a_problem(path: str, content: str) -> None:
    found = extract(MemoryView({path: content}), path)
    assert found.problem is not None
    assert found.images == []


def test_helm_templates_are_read_without_their_actions() -> None:
    path = "charts/web/templates/deployment.yaml"
    template = """\
    apiVersion: apps/v1
    kind: Deployment
    spec:
      template:
        spec:
          containers:
            - image: "{{ .Values.image }}"
    """
    found = extract(MemoryView({path: textwrap.dedent(template)}), path)
    assert found.problem is None
    assert [(i.line, i.text, i.template) for i in found.images] == [
        (7, "{{ .Values.image }}", True)
    ]


def test_helm_template_actions_inside_a_line_are_placeholders() -> None:
    template = (
        "apiVersion: v1\nkind: Pod\n"
        "spec:\n  containers:\n    - image: {{ .Values.image }}\n      {{- toYaml .Values.x }}\n"
        "    - image: nginx:latest\n"
    )
    found = extract(
        MemoryView({"charts/web/templates/deploy.yaml": template}),
        "charts/web/templates/deploy.yaml",
    )
    assert found.problem is None
    assert [(i.line, i.text, i.template) for i in found.images] == [
        (5, "{{ .Values.image }}", True),
        (7, "nginx:latest", False),
    ]


def test_other_files_are_not_read() -> None:
    found = extract(MemoryView({"notes.txt": "image: nginx:latest"}), "notes.txt")
    assert found.kind is None and found.images == [] and found.problem is None
