"""Terraform: image attributes, variable defaults, syntax errors."""

from __future__ import annotations

from bot.formats.images import extract
from bot.views.memory import MemoryView

from .reading import read_refs

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
    refs = read_refs("infra/main.tf", TERRAFORM)
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
    refs = read_refs("main.tf", content)
    assert [(r.line, r.text, r.value, r.template) for r in refs] == [
        (6, "var.image", "nginx:latest", False)
    ]


def test_hcl_syntax_error_has_a_line() -> None:
    path = "infra/broken.tf"
    found = extract(MemoryView({path: 'resource "a" "b" {\n  image = \n'}), path)
    assert found.problem is not None and found.problem.startswith("HCL syntax error")
    assert found.problem_line == 2
