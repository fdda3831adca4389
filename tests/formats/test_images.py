"""The OCI reference grammar and image-reference extraction from every format we read."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.formats.images import (
    ActionRef,
    FileKind,
    ImageRef,
    Reference,
    extract,
    file_kind,
    has_template,
    parse_reference,
)
from bot.views.memory import MemoryView

SHA = "sha256:" + "0123456789abcdef" * 4

# -- the grammar -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nginx", Reference(None, "nginx")),
        ("nginx:1.25.3", Reference(None, "nginx", "1.25.3")),
        ("library/nginx:latest", Reference(None, "library/nginx", "latest")),
        ("docker.io/library/nginx", Reference("docker.io", "library/nginx")),
        ("localhost:5000/app", Reference("localhost:5000", "app")),
        ("localhost:5000/app:1.0", Reference("localhost:5000", "app", "1.0")),
        ("localhost/app", Reference("localhost", "app")),
        ("registry:5000/team/app", Reference("registry:5000", "team/app")),
        ("Registry.Example.com/app:v2", Reference("Registry.Example.com", "app", "v2")),
        ("[::1]:5000/app:v1", Reference("[::1]:5000", "app", "v1")),
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:2024.06.01",
            Reference("123456789012.dkr.ecr.us-east-1.amazonaws.com", "web", "2024.06.01"),
        ),
        (f"name:tag@{SHA}", Reference(None, "name", "tag", SHA)),
        (f"ghcr.io/org/app@{SHA}", Reference("ghcr.io", "org/app", None, SHA)),
        ("foo_bar/baz__qux/a--b:x", Reference(None, "foo_bar/baz__qux/a--b", "x")),
        ("app:RC1", Reference(None, "app", "RC1")),
    ],
)
def test_parses_valid_references(text: str, expected: Reference) -> None:
    parsed = parse_reference(text)
    assert parsed == expected
    assert str(parsed) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Nginx",  # upper case is a registry only when a path follows
        "nginx:",
        "nginx:-bad",
        ":latest",
        "nginx@sha256:abc",  # too short a digest
        "nginx@sha256:" + "0" * 63,  # sha256 is exactly 64 hex digits
        "my image",
        "a//b",
        "/abs/path",
        "http://ghcr.io/app",
        "a" * 256,
        "CONTAINER_IMAGE",
        "gcr.io/PROJECT_ID/app",
        "nginx:" + "t" * 129,
    ],
)
def test_rejects_non_references(text: str) -> None:
    assert parse_reference(text) is None


def test_implicit_registry_is_docker_hub() -> None:
    ref = parse_reference("nginx:1.25")
    assert ref is not None and ref.registry is None and ref.domain == "docker.io"
    local = parse_reference("localhost:5000/app")
    assert local is not None and local.domain == "localhost:5000" and local.tag is None


@pytest.mark.parametrize(
    ("text", "template"),
    [
        ("{{ .Values.image.repository }}:{{ .Values.image.tag }}", True),
        ("${{ matrix.image }}", True),
        ("$CI_REGISTRY_IMAGE:$CI_COMMIT_SHA", True),
        ("ghcr.io/acme/app:${TAG}", True),
        ("<image_url>", True),
        ("CONTAINER_IMAGE", True),
        ("gcr.io/PROJECT_ID/hello-app:v1", True),
        ("$[[ inputs.image ]]", True),
        ("__IMAGE__", True),
        ("acme/foo__bar__baz:1", False),
        ("nginx:1.25", False),
        ("app:RC1", False),
    ],
)
def test_template_detection(text: str, template: bool) -> None:
    assert has_template(text) is template


_LOWER = "abcdefghijklmnopqrstuvwxyz0123456789"
_alnum = st.text(alphabet=_LOWER, min_size=1, max_size=8)
_component = st.builds(
    lambda first, rest: first + "".join(sep + word for sep, word in rest),
    _alnum,
    st.lists(st.tuples(st.sampled_from([".", "_", "__", "-", "---"]), _alnum), max_size=2),
)
_host = st.lists(_alnum, min_size=2, max_size=3).map(".".join)
_domain = st.one_of(
    st.just("localhost"),
    _host,
    st.builds(lambda h, p: f"{h}:{p}", st.just("localhost") | _host, st.integers(1, 65535)),
)
_tag = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(_LOWER + "ABCXYZ_"),
    st.text(alphabet=_LOWER + "ABCXYZ_.-", max_size=20),
)
_digest = st.binary(min_size=32, max_size=32).map(lambda b: "sha256:" + b.hex())


@st.composite
def references(draw: st.DrawFn) -> Reference:
    registry = draw(st.none() | _domain)
    components = draw(st.lists(_component, min_size=1, max_size=3))
    if registry is None and len(components) > 1 and "." in components[0]:
        # `a.b/c` reads as registry `a.b`: the grammar's rule, not a round-trip failure.
        registry = "docker.io"
    repository = "/".join(components)
    return Reference(registry, repository, draw(st.none() | _tag), draw(st.none() | _digest))


@settings(max_examples=200, deadline=None)
@given(references())
def test_round_trips_generated_references(ref: Reference) -> None:
    text = str(ref)
    assert parse_reference(text) == ref


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_never_raises_on_arbitrary_text(text: str) -> None:
    parsed = parse_reference(text)
    if parsed is not None:
        assert parse_reference(str(parsed)) == parsed
    has_template(text)


# -- extraction ------------------------------------------------------------------------------


def _images(path: str, content: str) -> list[tuple[int | None, str, bool]]:
    found = extract(MemoryView({path: textwrap.dedent(content)}), path)
    assert found.problem is None, found.problem
    return sorted((r.line, r.text, r.template) for r in found.images)


def _image_refs(path: str, content: str) -> list[ImageRef]:
    found = extract(MemoryView({path: textwrap.dedent(content)}), path)
    assert found.problem is None, found.problem
    return sorted(found.images, key=lambda r: (r.line or 0, r.text))


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


KUBERNETES = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      initContainers:
        - name: migrate
          image: ghcr.io/acme/migrate:1.4.2
      containers:
        - name: web
          image: nginx:latest
        - name: sidecar
          image: "localhost:5000/proxy"
---
apiVersion: batch/v1
kind: CronJob
metadata:
  generateName: report-
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: report
              image: busybox
---
apiVersion: v1
kind: Pod
metadata:
  name: debug
spec:
  containers:
    - name: app
      image: app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
  ephemeralContainers:
    - name: shell
      image: busybox:1.36
---
apiVersion: v1
kind: PodTemplate
metadata:
  name: tpl
template:
  spec:
    containers:
      - name: x
        image: redis:7.2
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: not-an-image
data:
  image: nginx:latest
"""


def test_kubernetes_every_pod_bearing_kind() -> None:
    assert _images("deploy/app.yaml", KUBERNETES) == [
        (10, "ghcr.io/acme/migrate:1.4.2", False),
        (13, "nginx:latest", False),
        (15, "localhost:5000/proxy", False),
        (29, "busybox", False),
        (38, "app@sha256:" + "0123456789abcdef" * 4, False),
        (41, "busybox:1.36", False),
        (51, "redis:7.2", False),
    ]


@pytest.mark.parametrize(
    "kind",
    ["StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController", "Deployment"],
)
def test_kubernetes_workload_kinds(kind: str) -> None:
    manifest = f"""\
    apiVersion: apps/v1
    kind: {kind}
    metadata:
      name: w
    spec:
      template:
        spec:
          containers:
            - name: c
              image: postgres:16
    """
    assert _images("k8s/w.yaml", manifest) == [(10, "postgres:16", False)]


def test_kubernetes_custom_resource_and_list() -> None:
    manifest = """\
    apiVersion: v1
    kind: List
    items:
      - apiVersion: argoproj.io/v1alpha1
        kind: Rollout
        metadata: {name: r}
        spec:
          template:
            spec:
              containers:
                - name: app
                  image: ghcr.io/acme/app:main
      - apiVersion: monitoring.coreos.com/v1
        kind: Prometheus
        metadata: {name: p}
        spec:
          image: quay.io/prometheus/prometheus:v2.51.0
    """
    assert _images("k8s/list.yaml", manifest) == [
        (12, "ghcr.io/acme/app:main", False),
        (17, "quay.io/prometheus/prometheus:v2.51.0", False),
    ]


def test_kustomize_overlay_patch_without_image_yields_nothing() -> None:
    patch = """\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
    spec:
      replicas: 5
      template:
        spec:
          containers:
            - name: web
              resources:
                limits: {memory: 512Mi}
    """
    assert _images("overlays/production/replicas-patch.yaml", patch) == []


def test_kustomize_json6902_patch() -> None:
    patch = """\
    - op: replace
      path: /spec/template/spec/containers/0/image
      value: ghcr.io/acme/web:main
    - op: replace
      path: /spec/replicas
      value: 3
    """
    assert _images("overlays/staging/image-patch.yaml", patch) == [
        (3, "ghcr.io/acme/web:main", False)
    ]


def test_kustomization_images() -> None:
    kustomization = f"""\
    apiVersion: kustomize.config.k8s.io/v1beta1
    kind: Kustomization
    resources:
      - ../../base
    patches:
      - path: replicas-patch.yaml
    images:
      - name: nginx
        newTag: latest
      - name: ghcr.io/acme/web
        newName: registry.acme.io/web
        newTag: "2.3.1"
      - name: ghcr.io/acme/worker
        digest: {SHA}
      - name: only-renamed
        newName: registry.acme.io/renamed
    """
    assert _images("overlays/production/kustomization.yaml", kustomization) == [
        (9, "nginx:latest", False),
        (12, "registry.acme.io/web:2.3.1", False),
        (14, f"ghcr.io/acme/worker@{SHA}", False),
    ]


HELM_VALUES = """\
replicaCount: 2
image:
  registry: docker.io
  repository: bitnami/nginx
  tag: 1.25.4-debian-12-r3
  digest: ""
  pullPolicy: IfNotPresent
metrics:
  enabled: true
  image:
    registry: docker.io
    repository: bitnami/nginx-exporter
    tag: ""
    pullPolicy: IfNotPresent
volumePermissions:
  image:
    repository: bitnami/os-shell
    tag: latest
sidecars:
  - name: logger
    image: fluent/fluent-bit
prometheus:
  configReloader:
    image:
      registry: quay.io
      repository: prometheus-operator/prometheus-config-reloader
      tag: v0.72.0
      sha: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
"""


def test_helm_values_split_images() -> None:
    refs = _image_refs("charts/web/values.yaml", HELM_VALUES)
    assert [(r.line, r.text, r.template) for r in refs] == [
        (5, "docker.io/bitnami/nginx:1.25.4-debian-12-r3", False),
        (12, "docker.io/bitnami/nginx-exporter", True),
        (18, "bitnami/os-shell:latest", False),
        (21, "fluent/fluent-bit", False),
        (
            27,
            "quay.io/prometheus-operator/prometheus-config-reloader:v0.72.0@" + SHA,
            False,
        ),
    ]
    empty_tag = refs[1]
    assert empty_tag.note is not None and "appVersion" in empty_tag.note


def test_helm_tag_only_override() -> None:
    refs = _image_refs("deploy/values-production.yaml", "image:\n  tag: latest\n")
    assert [(r.line, r.template) for r in refs] == [(2, True)]
    assert refs[0].text.endswith(":latest")


CLOUDFORMATION = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  ImageUrl:
    Type: String
    Default: nginx
  Tag:
    Type: String
Resources:
  TaskDefinition:
    Type: AWS::ECS::TaskDefinition
    Properties:
      Family: web
      ContainerDefinitions:
        - Name: web
          Image: !Sub "${AWS::AccountId}.dkr.ecr.${AWS::Region}.amazonaws.com/web:latest"
        - Name: api
          Image: !Sub "${AWS::AccountId}.dkr.ecr.${AWS::Region}.amazonaws.com/api:${Tag}"
        - Name: proxy
          Image: !Ref ImageUrl
        - Name: xray
          Image: public.ecr.aws/xray/aws-xray-daemon:3.3.10
        - Name: long-form
          Image:
            Fn::Join: [":", [!Ref ImageUrl, "1.25"]]
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Sub "${AWS::StackName}-image"
"""


def test_cloudformation_ecs_task_definition() -> None:
    refs = _image_refs("cfn/service.yaml", CLOUDFORMATION)
    assert [(r.line, r.text, r.value, r.template) for r in refs] == [
        (
            15,
            "${AWS::AccountId}.dkr.ecr.${AWS::Region}.amazonaws.com/web:latest",
            "${AWS::AccountId}.dkr.ecr.${AWS::Region}.amazonaws.com/web:latest",
            True,
        ),
        (
            17,
            "${AWS::AccountId}.dkr.ecr.${AWS::Region}.amazonaws.com/api:${Tag}",
            "${AWS::AccountId}.dkr.ecr.${AWS::Region}.amazonaws.com/api:${Tag}",
            True,
        ),
        (19, "!Ref ImageUrl", "nginx", False),
        (
            21,
            "public.ecr.aws/xray/aws-xray-daemon:3.3.10",
            "public.ecr.aws/xray/aws-xray-daemon:3.3.10",
            False,
        ),
        (24, "!Join", "nginx:1.25", False),
    ]


COMPOSE = """\
services:
  web:
    build: .
    image: acme/web
  db:
    image: postgres:16.2
  cache:
    image: redis
  proxy:
    image: "traefik:${TRAEFIK_VERSION:-v3.0}"
  worker:
    image: ${WORKER_IMAGE}
"""


def test_compose_services() -> None:
    refs = _image_refs("docker-compose.yml", COMPOSE)
    assert [(r.line, r.text, r.value, r.template) for r in refs] == [
        (6, "postgres:16.2", "postgres:16.2", False),
        (8, "redis", "redis", False),
        (10, "traefik:${TRAEFIK_VERSION:-v3.0}", "traefik:v3.0", False),
        (12, "${WORKER_IMAGE}", "${WORKER_IMAGE}", True),
    ]


GITLAB_CI = """\
image: python:3.12-slim
variables:
  DOCKER_IMAGE: docker:24.0.7
  POSTGRES_VERSION: "16"
stages: [test, build]
default:
  services:
    - name: postgres:$POSTGRES_VERSION
      alias: db
test:
  stage: test
  services:
    - redis:latest
  script: [pytest]
build:
  stage: build
  image:
    name: $DOCKER_IMAGE
    entrypoint: [""]
  services:
    - docker:dind
  script:
    - docker build -t $CI_REGISTRY_IMAGE:$CI_COMMIT_SHA .
deploy:
  image: $CI_REGISTRY_IMAGE/deployer
  script: [deploy]
"""


def test_gitlab_ci() -> None:
    refs = _image_refs(".gitlab-ci.yml", GITLAB_CI)
    assert [(r.line, r.text, r.value, r.template) for r in refs] == [
        (1, "python:3.12-slim", "python:3.12-slim", False),
        (8, "postgres:$POSTGRES_VERSION", "postgres:16", False),
        (13, "redis:latest", "redis:latest", False),
        (18, "$DOCKER_IMAGE", "docker:24.0.7", False),
        (21, "docker:dind", "docker:dind", False),
        (25, "$CI_REGISTRY_IMAGE/deployer", "$CI_REGISTRY_IMAGE/deployer", True),
    ]


def test_included_gitlab_ci_file_is_read_as_gitlab_ci() -> None:
    content = "lint:\n  image: golangci/golangci-lint:latest\n  script: [golangci-lint run]\n"
    assert _images("ci/lint.gitlab-ci.yml", content) == [
        (2, "golangci/golangci-lint:latest", False)
    ]


WORKFLOW = """\
name: ci
on: [push, pull_request]
jobs:
  test:
    runs-on: ubuntu-latest
    container: node:20
    services:
      redis:
        image: redis
        ports: ["6379:6379"]
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-node@60edb5dd545a775178f52524783378180af0d1f8
      - uses: ./.github/actions/local
      - uses: docker://alpine:3.19
      - uses: github/codeql-action/init@main
      - run: npm test
  matrix:
    runs-on: ubuntu-latest
    container:
      image: ${{ matrix.image }}
    steps:
      - uses: actions/cache
  release:
    uses: acme/workflows/.github/workflows/release.yml@v1
"""


def test_github_workflow() -> None:
    path = ".github/workflows/ci.yml"
    found = extract(MemoryView({path: WORKFLOW}), path)
    assert found.problem is None
    assert sorted((r.line, r.text, r.template) for r in found.images) == [
        (6, "node:20", False),
        (9, "redis", False),
        (15, "alpine:3.19", False),
        (21, "${{ matrix.image }}", True),
    ]
    assert sorted((a.line, a.name, a.ref) for a in found.actions) == [
        (12, "actions/checkout", "v4"),
        (13, "actions/setup-node", "60edb5dd545a775178f52524783378180af0d1f8"),
        (16, "github/codeql-action/init", "main"),
        (23, "actions/cache", None),
        (25, "acme/workflows/.github/workflows/release.yml", "v1"),
    ]
    assert all(isinstance(a, ActionRef) for a in found.actions)


def test_composite_action_metadata() -> None:
    action = """\
    name: setup
    runs:
      using: composite
      steps:
        - uses: actions/setup-python@v5
    """
    found = extract(MemoryView({"action.yml": textwrap.dedent(action)}), "action.yml")
    assert [(a.line, a.text) for a in found.actions] == [(5, "actions/setup-python@v5")]


DOCKERFILE = """\
# syntax=docker/dockerfile:1.7
ARG BASE=alpine:latest
ARG GO_VERSION=1.22.3
ARG DISTROLESS
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-alpine AS build
WORKDIR /src
COPY --from=ghcr.io/acme/tools:2.1 /bin/protoc /usr/bin/protoc
RUN --mount=type=cache,target=/root/.cache/go-build \\
    --mount=type=bind,from=build,source=/src,target=/x \\
    go build -o /out/app ./cmd/app

FROM build AS test
RUN go test ./...

FROM $BASE AS runtime
COPY --from=build /out/app /app
COPY --from=0 /etc/ssl /etc/ssl
COPY --from=nginx:latest /etc/nginx/nginx.conf /etc/nginx/

FROM gcr.io/distroless/static${DISTROLESS}
FROM scratch
COPY --from=runtime /app /app
"""


def test_dockerfile_multi_stage_with_args() -> None:
    refs = _image_refs("Dockerfile", DOCKERFILE)
    assert [(r.line, r.text, r.value, r.template) for r in refs] == [
        (5, "golang:${GO_VERSION}-alpine", "golang:1.22.3-alpine", False),
        (7, "ghcr.io/acme/tools:2.1", "ghcr.io/acme/tools:2.1", False),
        (15, "$BASE", "alpine:latest", False),
        (18, "nginx:latest", "nginx:latest", False),
        (
            20,
            "gcr.io/distroless/static${DISTROLESS}",
            "gcr.io/distroless/static${DISTROLESS}",
            True,
        ),
    ]


def test_dockerfile_pinned_arg_default() -> None:
    content = f"ARG BASE=python:3.12-slim@{SHA}\nFROM ${{BASE}}\n"
    refs = _image_refs("services/api/Dockerfile.prod", content)
    assert [(r.line, r.value, r.template) for r in refs] == [(2, f"python:3.12-slim@{SHA}", False)]


def test_dockerfile_with_heredoc_is_read_line_by_line() -> None:
    # dockerfile-parse reads heredoc bodies as instructions: the `FROM` inside this one
    # would become a base image. The line reader knows where the heredoc ends.
    content = """\
    FROM ubuntu:22.04 AS base
    COPY <<EOF /etc/motd
    FROM here you can see the sea
    EOF
    RUN <<-SCRIPT bash
      set -e
      apt-get update
    SCRIPT
    FROM base
    COPY --from=busybox:1.36 /bin/busybox /bin/busybox
    """
    assert _images("Containerfile", content) == [
        (1, "ubuntu:22.04", False),
        (10, "busybox:1.36", False),
    ]


def test_dockerfile_old_style_shell_heredoc_does_not_swallow_the_file() -> None:
    content = "FROM debian:12\nRUN cat > /etc/x <<EOF \\\n  && echo done\nFROM node:latest\n"
    assert _images("app.Dockerfile", content) == [
        (1, "debian:12", False),
        (4, "node:latest", False),
    ]


TERRAFORM = """\
variable "redis_tag" {
  type    = string
  default = "7.2"
}

resource "kubernetes_deployment" "web" {
  metadata {
    name = "web"
  }
  spec {
    template {
      metadata {}
      spec {
        container {
          name  = "web"
          image = "nginx:latest"
        }
        init_container {
          name  = "init"
          image = "busybox:${var.busybox_tag}"
        }
      }
    }
  }
}

resource "docker_container" "redis" {
  name  = "redis"
  image = "redis:${var.redis_tag}"
}

resource "docker_image" "ubuntu" {
  name = "ubuntu:latest"
}

resource "aws_ecs_task_definition" "api" {
  family = "api"
  container_definitions = jsonencode([
    {
      name      = "api"
      image     = "123456789012.dkr.ecr.us-east-1.amazonaws.com/api"
      essential = true
    }
  ])
}

resource "aws_ecs_task_definition" "legacy" {
  family                = "legacy"
  container_definitions = <<DEFS
[
  {
    "name": "legacy",
    "image": "mysql:8.0.36"
  }
]
DEFS
}
"""


def test_terraform() -> None:
    refs = _image_refs("infra/main.tf", TERRAFORM)
    assert [(r.line, r.text, r.value, r.template) for r in refs] == [
        (16, "nginx:latest", "nginx:latest", False),
        (20, "busybox:${var.busybox_tag}", "busybox:${var.busybox_tag}", True),
        (29, "redis:${var.redis_tag}", "redis:7.2", False),
        (33, "ubuntu:latest", "ubuntu:latest", False),
        (
            41,
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/api",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/api",
            False,
        ),
        (53, "mysql:8.0.36", "mysql:8.0.36", False),
    ]


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


def test_terraform_variable_default_is_resolved() -> None:
    content = """\
    variable "image" {
      default = "nginx:latest"
    }
    resource "docker_container" "web" {
      name  = "web"
      image = var.image
    }
    """
    refs = _image_refs("main.tf", content)
    assert [(r.line, r.text, r.value, r.template) for r in refs] == [
        (6, "var.image", "nginx:latest", False)
    ]


def test_hcl_syntax_error_has_a_line() -> None:
    path = "infra/broken.tf"
    found = extract(MemoryView({path: 'resource "a" "b" {\n  image = \n'}), path)
    assert found.problem is not None and found.problem.startswith("HCL syntax error")
    assert found.problem_line == 2


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


def _values(path: str, text: str) -> list[tuple[int | None, str]]:
    return [(i.line, i.value) for i in extract(MemoryView({path: text}), path).images]


def test_dockerfile_keyword_continued_past_comments_and_blank_lines() -> None:
    text = "FROM\\\n  --platform=linux/arm64 \\\n# why\n\n  python:3.12 AS build\nFROM build\n"
    assert _values("Dockerfile", text) == [(1, "python:3.12")]


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        ("docker-compose.yml", "version: '2'\nweb:\n  image: nginx:1.25\n", [(3, "nginx:1.25")]),
        (
            "compose.yaml",
            "web:\n  build: .\n  image: mine\ncache:\n  image: redis\n",
            [(5, "redis")],
        ),
        ("deploy/stack.yml", "a:\n  image: x:1\nb:\n  image: y\n", [(2, "x:1"), (4, "y")]),
        # not every top-level entry is a service, and the name does not say compose
        ("config/app.yml", "a:\n  image: x:1\nlogging:\n  level: info\n", []),
    ],
)
def test_compose_version_1_layout(path: str, text: str, expected: list[tuple[int, str]]) -> None:
    assert _values(path, text) == expected


def test_helm_image_with_sibling_tag_or_digest() -> None:
    values = textwrap.dedent(
        """\
        sidecar: {image: ghcr.io/acme/side, tag: v1.20}
        proxy:
          image: ghcr.io/acme/proxy
          digest: sha256:{d}
        tagged: {image: "nginx:1.25", tag: ignored}
        lone: {image: busybox}
        """
    ).replace("{d}", "a" * 64)
    assert sorted(_values("values.yaml", values)) == [
        (1, "ghcr.io/acme/side:v1.20"),
        (4, f"ghcr.io/acme/proxy@sha256:{'a' * 64}"),
        (5, "nginx:1.25"),
        (6, "busybox"),
    ]
