"""Image references: the OCI reference grammar, and where references are written.

Two ideas live here. `parse_reference()` (`reference.py`) reads
`[registry[:port]/]path[:tag][@digest]` by the grammar Docker, containerd and Kubernetes
share. `extract()` (`dispatch.py`) reads one file of any kind we know and returns the
references written in it, each with its line; one module per format does the reading:
Kubernetes, kustomize, Helm values, docker-compose, Dockerfile, CloudFormation, Terraform,
GitLab CI, GitHub workflows and action metadata.

Nothing here knows about policy: whether `nginx:latest` is acceptable is the rule's call.
Values the file itself defines (Dockerfile `ARG` defaults, CloudFormation parameter
defaults, Terraform variable defaults, GitLab CI variables, `${VAR:-default}`) are
substituted; whatever stays unresolved marks the reference as a template.
"""

from bot.formats.images.dispatch import extract, file_kind
from bot.formats.images.dockerfile import dockerfile_images
from bot.formats.images.kustomize import kustomize_overrides
from bot.formats.images.records import ActionRef, Extraction, FileKind, ImageRef
from bot.formats.images.reference import (
    Reference,
    has_template,
    mask_templates,
    parse_reference,
    substitute,
)
from bot.formats.images.terraform import terraform_images

__all__ = [
    "ActionRef",
    "Extraction",
    "FileKind",
    "ImageRef",
    "Reference",
    "dockerfile_images",
    "extract",
    "file_kind",
    "has_template",
    "kustomize_overrides",
    "mask_templates",
    "parse_reference",
    "substitute",
    "terraform_images",
]
