"""docker-compose files: `services.*.image`, in the current layout and version 1's."""

from __future__ import annotations

import re

from bot.formats.images.records import Emitter
from bot.formats.yamldoc import MappingNode, Node, mapping_of

_COMPOSE_NAME_RE = re.compile(r"(?:^|/)(?:docker-)?compose[^/]*\.ya?ml$", re.I)


def services_of(path: str, root: Node, keys: dict[str, Node]) -> Node | None:
    """The `services:` mapping, or the top level in the version-1 layout; None if neither."""
    services = keys.get("services")
    if isinstance(services, MappingNode):
        return services
    return root if _is_compose_v1(path, keys) else None


def _is_compose_v1(path: str, keys: dict[str, Node]) -> bool:
    """The version-1 layout: services at the top level, no `services:` key. Trusted by file
    name, or when every top-level entry is a service (a mapping with `image` or `build`)."""
    services = [v for k, v in keys.items() if k != "version"]
    if not services or not all(isinstance(v, MappingNode) for v in services):
        return False
    has_image = [("image" in mapping_of(v) or "build" in mapping_of(v)) for v in services]
    if _COMPOSE_NAME_RE.search(path):
        return any(has_image)
    return all(has_image)


def read_services(services: Node, emit: Emitter) -> None:
    """`services.*.image`; with `build:` the image is the name compose gives what it builds."""
    for _name, service in mapping_of(services).items():
        fields = mapping_of(service)
        if "build" not in fields:
            emit.image_node(fields.get("image"), "compose")
