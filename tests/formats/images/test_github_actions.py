"""GitHub workflows and action metadata: containers, services, actions."""

from __future__ import annotations

import textwrap

from bot.formats.images import ActionRef, extract
from bot.views.memory import MemoryView

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
