"""Kubernetes manifests: containers of every pod-bearing kind, any `image:` in custom resources."""

from __future__ import annotations

from collections.abc import Iterator

from bot.formats.images.records import Emitter
from bot.formats.yamldoc import (
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
    get,
    mapping_of,
    sequence,
    text_of,
)

#: Where the pod spec sits, per pod-bearing kind.
_POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
#: Kinds that never hold a container image (or hold schemas that look like one).
_NO_IMAGES = {
    "CustomResourceDefinition",
    "ConfigMap",
    "Secret",
    "Service",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "Namespace",
    "Ingress",
    "NetworkPolicy",
    "PersistentVolumeClaim",
    "PersistentVolume",
    "StorageClass",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "APIService",
    "PrometheusRule",
    "ServiceMonitor",
    "PodMonitor",
    "Endpoints",
    "EndpointSlice",
    "LimitRange",
    "ResourceQuota",
    "PriorityClass",
}


def is_manifest(keys: dict[str, Node]) -> bool:
    """A Kubernetes object: it says its `apiVersion` and `kind`."""
    return "apiVersion" in keys and "kind" in keys


def read_manifest(root: MappingNode, keys: dict[str, Node], emit: Emitter) -> None:
    """Containers of pod-bearing kinds; any `image:` in a custom resource; items of a List."""
    kind = text_of(keys.get("kind")) or ""
    if kind.endswith("List"):
        for item in sequence(keys.get("items")):
            item_keys = mapping_of(item)
            if isinstance(item, MappingNode) and "kind" in item_keys:
                read_manifest(item, item_keys, emit)
        return
    spec_path = _POD_SPEC_PATHS.get(kind)
    if spec_path is not None:
        pod = mapping_of(get(root, *spec_path))
        for list_name in _CONTAINER_LISTS:
            for container in sequence(pod.get(list_name)):
                # A kustomize patch names a container without restating its image.
                emit.image_node(mapping_of(container).get("image"), "kubernetes")
        return
    if kind in _NO_IMAGES:
        return
    # Custom resources (Argo Rollouts, Knative, Tekton, Prometheus, ...): any `image:` scalar.
    for value in _image_values(root):
        emit.image_node(value, "kubernetes")


def _image_values(root: Node, names: frozenset[str] = frozenset({"image"})) -> Iterator[Node]:
    """Values of every `image:` key, each node once (aliases cost nothing), no path tuples."""
    seen: set[int] = set()
    stack: list[Node] = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            for k, v in node.value:
                if isinstance(v, ScalarNode):
                    if k.value in names:
                        yield v
                else:
                    if k.value in names:
                        yield v
                    stack.append(v)
        elif isinstance(node, SequenceNode):
            stack.extend(c for c in node.value if not isinstance(c, ScalarNode))
