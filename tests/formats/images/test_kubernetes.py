"""Kubernetes manifests: pod-bearing kinds, custom resources, Lists."""

from __future__ import annotations

import pytest

from .reading import read_images

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
    assert read_images("deploy/app.yaml", KUBERNETES) == [
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
    assert read_images("k8s/w.yaml", manifest) == [(10, "postgres:16", False)]


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
    assert read_images("k8s/list.yaml", manifest) == [
        (12, "ghcr.io/acme/app:main", False),
        (17, "quay.io/prometheus/prometheus:v2.51.0", False),
    ]
