"""Helm values files: whole, split and sibling-tag images."""

from __future__ import annotations

import textwrap

from .reading import SHA, read_refs, read_values

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
    refs = read_refs("charts/web/values.yaml", HELM_VALUES)
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
    refs = read_refs("deploy/values-production.yaml", "image:\n  tag: latest\n")
    assert [(r.line, r.template) for r in refs] == [(2, True)]
    assert refs[0].text.endswith(":latest")


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
    assert sorted(read_values("values.yaml", values)) == [
        (1, "ghcr.io/acme/side:v1.20"),
        (4, f"ghcr.io/acme/proxy@sha256:{'a' * 64}"),
        (5, "nginx:1.25"),
        (6, "busybox"),
    ]
