"""GitLab CI pipelines: job and default images, variables."""

from __future__ import annotations

from .reading import read_images, read_refs

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
    refs = read_refs(".gitlab-ci.yml", GITLAB_CI)
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
    assert read_images("ci/lint.gitlab-ci.yml", content) == [
        (2, "golangci/golangci-lint:latest", False)
    ]
