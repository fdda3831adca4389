"""Dockerfiles: FROM, COPY --from, ARG defaults, heredocs, continuations."""

from __future__ import annotations

from .reading import SHA, read_images, read_refs, read_values

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
    refs = read_refs("Dockerfile", DOCKERFILE)
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
    refs = read_refs("services/api/Dockerfile.prod", content)
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
    assert read_images("Containerfile", content) == [
        (1, "ubuntu:22.04", False),
        (10, "busybox:1.36", False),
    ]


def test_dockerfile_old_style_shell_heredoc_does_not_swallow_the_file() -> None:
    content = "FROM debian:12\nRUN cat > /etc/x <<EOF \\\n  && echo done\nFROM node:latest\n"
    assert read_images("app.Dockerfile", content) == [
        (1, "debian:12", False),
        (4, "node:latest", False),
    ]


def test_dockerfile_keyword_continued_past_comments_and_blank_lines() -> None:
    text = "FROM\\\n  --platform=linux/arm64 \\\n# why\n\n  python:3.12 AS build\nFROM build\n"
    assert read_values("Dockerfile", text) == [(1, "python:3.12")]
