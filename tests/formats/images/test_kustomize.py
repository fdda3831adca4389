"""kustomize: kustomization `images:` and JSON 6902 patches."""

from __future__ import annotations

from .reading import SHA, read_images


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
    assert read_images("overlays/production/replicas-patch.yaml", patch) == []


def test_kustomize_json6902_patch() -> None:
    patch = """\
    - op: replace
      path: /spec/template/spec/containers/0/image
      value: ghcr.io/acme/web:main
    - op: replace
      path: /spec/replicas
      value: 3
    """
    assert read_images("overlays/staging/image-patch.yaml", patch) == [
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
    assert read_images("overlays/production/kustomization.yaml", kustomization) == [
        (9, "nginx:latest", False),
        (12, "registry.acme.io/web:2.3.1", False),
        (14, f"ghcr.io/acme/worker@{SHA}", False),
    ]
