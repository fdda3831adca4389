"""`unpinned-image` over realistic changes: what is flagged, at what action, and why."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from bot.change import Action, Finding
from bot.rules.base import RuleContext
from bot.rules.unpinned_image import UnpinnedImageRule
from bot.views.memory import MemoryView

SHA = "sha256:" + "0123456789abcdef" * 4
COMMIT = "b4ffde65f46336ab88eb53be808477a3936bae11"


def run(
    files: dict[str, str],
    base: dict[str, str] | None = None,
    **options: Any,
) -> list[Finding]:
    rule = UnpinnedImageRule(id="pinned-images", action=Action.BLOCK, options=options)
    view = MemoryView({p: textwrap.dedent(c) for p, c in files.items()}, base)
    return sorted(rule.check(RuleContext(view=view)))


def summary(findings: list[Finding]) -> list[tuple[str, int | None, str, str]]:
    return [(f.path, f.line, str(f.action), f.subject) for f in findings]


B, W = "block", "warn"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {
                "deploy/production/web.yaml": """\
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: web}
                spec:
                  template:
                    spec:
                      initContainers:
                        - name: init
                          image: busybox
                      containers:
                        - name: web
                          image: nginx:latest
                        - name: api
                          image: ghcr.io/acme/api:1.8.2
                        - name: pinned
                          image: ghcr.io/acme/worker:stable@<SHA>
                        - name: local
                          image: localhost:5000/app
                """.replace("<SHA>", SHA)
            },
            [
                ("deploy/production/web.yaml", 9, B, "busybox"),
                ("deploy/production/web.yaml", 12, B, "nginx:latest"),
                ("deploy/production/web.yaml", 18, B, "localhost:5000/app"),
            ],
            id="kubernetes",
        ),
        pytest.param(
            {
                "charts/web/values.yaml": """\
                image:
                  registry: docker.io
                  repository: bitnami/nginx
                  tag: ""
                metrics:
                  image:
                    repository: bitnami/nginx-exporter
                    tag: latest
                backup:
                  image:
                    repository: bitnami/os-shell
                    tag: 12-debian-12-r16
                """,
            },
            [
                ("charts/web/values.yaml", 3, W, "docker.io/bitnami/nginx"),
                ("charts/web/values.yaml", 8, B, "bitnami/nginx-exporter:latest"),
            ],
            id="helm-values",
        ),
        pytest.param(
            {
                "overlays/prod/kustomization.yaml": """\
                apiVersion: kustomize.config.k8s.io/v1beta1
                kind: Kustomization
                resources: [../../base]
                patches:
                  - path: patch.yaml
                images:
                  - name: quay.io/argoproj/argocd
                    newTag: latest
                  - name: ghcr.io/acme/api
                    newTag: v1.2.0
                """,
                "overlays/prod/patch.yaml": """\
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: api}
                spec:
                  template:
                    spec:
                      containers:
                        - name: api
                          env: [{name: LOG_LEVEL, value: debug}]
                """,
            },
            [("overlays/prod/kustomization.yaml", 8, B, "quay.io/argoproj/argocd:latest")],
            id="kustomize",
        ),
        pytest.param(
            {
                "compose.yaml": """\
                services:
                  app:
                    build: .
                    image: acme/app
                  db:
                    image: postgres:16.2
                  cache:
                    image: redis
                  proxy:
                    image: traefik:${TRAEFIK_VERSION:-latest}
                """,
            },
            [
                ("compose.yaml", 8, B, "redis"),
                ("compose.yaml", 10, B, "traefik:${TRAEFIK_VERSION:-latest}"),
            ],
            id="compose",
        ),
        pytest.param(
            {
                "cfn/service.yaml": """\
                AWSTemplateFormatVersion: "2010-09-09"
                Parameters:
                  ImageUrl: {Type: String, Default: nginx}
                  Tag: {Type: String}
                Resources:
                  TaskDefinition:
                    Type: AWS::ECS::TaskDefinition
                    Properties:
                      ContainerDefinitions:
                        - Name: web
                          Image: !Sub "${AWS::AccountId}.dkr.ecr.${AWS::Region}.amazonaws.com/web:latest"
                        - Name: api
                          Image: !Sub "${AWS::AccountId}.dkr.ecr.${AWS::Region}.amazonaws.com/api:${Tag}"
                        - Name: proxy
                          Image: !Ref ImageUrl
                """,
            },
            [
                (
                    "cfn/service.yaml",
                    11,
                    B,  # the tag is `latest` whatever the account and region are
                    "${AWS::AccountId}.dkr.ecr.${AWS::Region}.amazonaws.com/web:latest",
                ),
                ("cfn/service.yaml", 15, B, "!Ref ImageUrl"),
            ],
            id="cloudformation",
        ),
        pytest.param(
            {
                ".gitlab-ci.yml": """\
                image: python:3.12-slim
                variables:
                  DIND: docker:latest
                test:
                  services: [redis:latest, "postgres:16"]
                  script: [pytest]
                build:
                  image: {name: $DIND}
                  script: [docker build .]
                deploy:
                  image: $CI_REGISTRY_IMAGE/deployer:$CI_COMMIT_SHA
                  script: [./deploy]
                release:
                  image: $RELEASE_IMAGE
                  script: [./release]
                """,
            },
            [
                (".gitlab-ci.yml", 5, B, "redis:latest"),
                (".gitlab-ci.yml", 8, B, "$DIND"),
                (".gitlab-ci.yml", 14, W, "$RELEASE_IMAGE"),
            ],
            id="gitlab-ci",
        ),
        pytest.param(
            {
                ".github/workflows/ci.yaml": """\
                on: push
                jobs:
                  test:
                    runs-on: ubuntu-latest
                    container: node:20-bookworm
                    services:
                      db:
                        image: postgres
                    steps:
                      - uses: actions/checkout@v4
                      - uses: actions/setup-node@<COMMIT>
                      - uses: ./.github/actions/setup
                      - uses: docker://alpine:latest
                """.replace("<COMMIT>", COMMIT),
            },
            [
                (".github/workflows/ci.yaml", 8, B, "postgres"),
                (".github/workflows/ci.yaml", 10, B, "actions/checkout@v4"),
                (".github/workflows/ci.yaml", 13, B, "alpine:latest"),
            ],
            id="github-workflow",
        ),
        pytest.param(
            {
                "Dockerfile": """\
                ARG BASE=alpine:latest
                ARG GO=golang:1.22.3@<SHA>
                FROM ${GO} AS build
                COPY --from=ghcr.io/acme/tools /bin/tool /bin/tool
                FROM $BASE
                COPY --from=build /out /out
                FROM scratch
                """.replace("<SHA>", SHA),
            },
            [
                ("Dockerfile", 4, B, "ghcr.io/acme/tools"),
                ("Dockerfile", 5, B, "$BASE"),
            ],
            id="dockerfile",
        ),
        pytest.param(
            {
                "infra/main.tf": """\
                resource "docker_container" "web" {
                  name  = "web"
                  image = "nginx:latest"
                }
                resource "kubernetes_pod" "api" {
                  metadata { name = "api" }
                  spec {
                    container {
                      name  = "api"
                      image = "ghcr.io/acme/api:${var.api_tag}"
                    }
                  }
                }
                """,
            },
            [("infra/main.tf", 3, B, "nginx:latest")],
            id="terraform",
        ),
    ],
)
def test_findings(files: dict[str, str], expected: list[tuple[str, int, str, str]]) -> None:
    assert summary(run(files)) == sorted(expected)


def test_messages_say_what_is_wrong_and_how_to_fix_it() -> None:
    files = {
        "k8s/pod.yaml": """\
        apiVersion: v1
        kind: Pod
        metadata: {name: p}
        spec:
          containers:
            - {name: a, image: nginx:latest}
            - {name: b, image: redis}
        """,
        "Dockerfile": "ARG BASE=alpine:edge\nFROM $BASE\n",
    }
    by_subject = {f.subject: f for f in run(files)}
    latest = by_subject["nginx:latest"].message
    assert "mutable tag `latest`" in latest and "pin it to a version tag or a digest" in latest
    assert "no tag or digest" in by_subject["redis"].message
    assert "`$BASE` (= `alpine:edge`)" in by_subject["$BASE"].message
    assert all(
        f.kind == "unpinned-image" and f.rule == "pinned-images" for f in by_subject.values()
    )


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, [(4, B, "actions/checkout@v4")]),
        ({"require_digest": True}, [(3, B, "nginx:1.25"), (4, B, "actions/checkout@v4")]),
        ({"check_actions": False}, []),
        ({"trusted_actions": ["actions/*"]}, []),
        ({"trusted_actions": ["ACTIONS/checkout"]}, []),
        ({"trusted_actions": ["github/*"]}, [(4, B, "actions/checkout@v4")]),
        ({"mutable_tags": ["1.25"]}, [(3, B, "nginx:1.25"), (4, B, "actions/checkout@v4")]),
    ],
)
def test_options(options: dict[str, Any], expected: list[tuple[int, str, str]]) -> None:
    workflow = """\
    jobs:
      build:
        container: nginx:1.25
        steps: [{uses: actions/checkout@v4}, {uses: "actions/cache@<COMMIT>"}]
    """.replace("<COMMIT>", COMMIT)
    findings = run({".github/workflows/build.yml": workflow}, **options)
    assert [(f.line, str(f.action), f.subject) for f in findings] == expected


@pytest.mark.parametrize(
    ("image", "require_digest", "expected"),
    [
        ("ghcr.io/acme/app:${TAG}", False, None),  # whoever sets TAG pins it
        ("ghcr.io/acme/app:${TAG}", True, W),
        ("${REGISTRY}/nginx:latest", False, B),  # `latest` whatever REGISTRY is
        ("${REGISTRY}/nginx", False, W),
        ("${IMAGE}", False, W),  # could be anything
        ("${REGISTRY}/nginx@${DIGEST}", True, None),
        ("{{ .Values.image.repository }}:{{ .Values.image.tag }}", False, None),
        ("<image_url>", False, W),
        ("CONTAINER_IMAGE", False, W),
        ("gcr.io/PROJECT_ID/hello-app:v1", False, None),
        ("gcr.io/PROJECT_ID/hello-app:latest", False, B),
    ],
)
def test_templates_warn_unless_the_written_tag_is_mutable(
    image: str, require_digest: bool, expected: str | None
) -> None:
    compose = f'services:\n  app:\n    image: "{image}"\n'
    findings = run({"docker-compose.yml": compose}, require_digest=require_digest)
    assert [str(f.action) for f in findings] == ([expected] if expected else [])
    assert all(f.subject == image and f.line == 3 for f in findings)


def test_only_changed_files_that_exist_at_head_are_checked() -> None:
    base = {
        "old.yaml": "services: {a: {image: 'nginx:latest'}}\n",
        "same.yaml": "services: {a: {image: 'redis:latest'}}\n",
        "gone.yaml": "services: {a: {image: 'mongo:latest'}}\n",
    }
    head = {
        "old.yaml": "services: {a: {image: 'nginx:latest'}, b: {image: 'busybox'}}\n",
        "same.yaml": base["same.yaml"],
    }
    findings = run(head, base)
    assert summary(findings) == [
        ("old.yaml", 1, B, "nginx:latest"),
        ("old.yaml", 1, B, "busybox"),
    ]


@pytest.mark.parametrize(
    ("path", "content", "warned"),
    [
        ("deploy/app.yaml", "kind: Pod\nspec: [oops\n", True),
        ("infra/main.tf", 'resource "a" "b" {\n', True),
        ("Dockerfile", b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00FROM x", True),
        ("notes.txt", b"\xff\xfe not text", False),
        ("logo.png", b"\x89PNG\r\n\x1a\n\x00\x00", False),
    ],
)
def test_unreadable_files_are_findings_only_for_types_we_read(
    path: str, content: str | bytes, warned: bool
) -> None:
    rule = UnpinnedImageRule(id="pinned-images", action=Action.BLOCK)
    findings = rule.check(RuleContext(view=MemoryView({path: content})))
    if warned:
        assert [(f.path, str(f.action)) for f in findings] == [(path, B)]
        assert findings[0].message.startswith("could not check")
    else:
        assert findings == []


def test_stray_bytes_are_read_past_with_one_note() -> None:
    rule = UnpinnedImageRule(id="pinned-images", action=Action.BLOCK)
    view = MemoryView({"Dockerfile": b"# caf\xe9\x00\nFROM alpine\n"})
    findings = rule.check(RuleContext(view=view))
    assert [(f.line, str(f.action), f.subject) for f in findings] == [
        (None, W, "Dockerfile"),
        (2, B, "alpine"),
    ]
    assert "U+FFFD" in findings[0].message


def test_paths_limit_the_rule() -> None:
    rule = UnpinnedImageRule(id="p", action=Action.BLOCK, paths=["deploy/**"])
    view = MemoryView(
        {
            "deploy/a.yaml": "services: {a: {image: nginx}}\n",
            "examples/b.yaml": "services: {a: {image: nginx}}\n",
        }
    )
    assert [f.path for f in rule.check(RuleContext(view=view))] == ["deploy/a.yaml"]


def test_a_kustomization_that_pins_the_image_pins_the_manifest() -> None:
    from bot.policy.evaluate import evaluate
    from bot.policy.schema import load_policy_text
    from bot.views.memory import MemoryView

    policy = load_policy_text(
        "version: 1\nrules:\n  - {id: pin, kind: unpinned-image, action: block}\n"
    )
    deployment = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n"
        "    spec:\n      containers:\n        - {name: web, image: web}\n"
        "        - {name: proxy, image: envoy}\n"
    )
    kustomization = (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources: [base/web.yaml]\nimages:\n  - {name: web, newName: ghcr.io/acme/web, "
        'newTag: "2.4.1"}\n'
    )
    view = MemoryView(
        head={"app/base/web.yaml": deployment, "app/kustomization.yaml": kustomization}
    )
    findings = evaluate(policy, view).findings
    assert [(f.path, f.subject) for f in findings] == [("app/base/web.yaml", "envoy")]


def test_a_kustomization_that_retags_to_latest_does_not_pin_and_json_manifests_are_read() -> None:
    from bot.policy.evaluate import evaluate
    from bot.policy.schema import load_policy_text
    from bot.views.memory import MemoryView

    policy = load_policy_text(
        "version: 1\nrules:\n  - {id: pin, kind: unpinned-image, action: block}\n"
    )
    deployment = "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - {name: web, image: web}\n"
    kustomization = "images:\n  - {name: web, newTag: latest}\n"
    pod_json = '{"apiVersion": "v1", "kind": "Pod",\n "spec": {"containers": [\n  {"name": "db", "image": "mongo"}]}}\n'
    view = MemoryView(
        head={
            "k/web.yaml": deployment,
            "k/kustomization.yaml": kustomization,
            "pods/mongo.json": pod_json,
            "package.json": '{"name": "x", "dependencies": {"image": "latest"}}',
            "broken.json": "{not json",
        }
    )
    found = sorted((f.path, f.line, f.subject) for f in evaluate(policy, view).findings)
    assert found == [
        ("k/kustomization.yaml", 2, "web:latest"),
        ("k/web.yaml", 7, "web"),
        ("pods/mongo.json", 3, "mongo"),
    ]
