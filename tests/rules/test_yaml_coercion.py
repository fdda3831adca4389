"""`yaml-version-coercion` on files written the way real projects write them."""

from __future__ import annotations

import re
import textwrap

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.change import Action, Finding
from bot.rules.base import RuleContext
from bot.rules.yaml_coercion import YamlVersionCoercionRule
from bot.views.memory import MemoryView


def rule(**options: object) -> YamlVersionCoercionRule:
    return YamlVersionCoercionRule.model_validate(
        {"id": "yaml-versions", "action": "block", "options": options}
    )


def check(
    files: dict[str, str],
    *,
    base: dict[str, str] | None = None,
    paths: list[str] | None = None,
    **options: object,
) -> list[Finding]:
    r = rule(**options)
    if paths is not None:
        r = YamlVersionCoercionRule.model_validate(
            {"id": "yaml-versions", "action": "block", "paths": paths, "options": options}
        )
    view = MemoryView({p: textwrap.dedent(t) for p, t in files.items()}, base)
    return sorted(r.check(RuleContext(view=view)))


def found(files: dict[str, str], **options: object) -> list[tuple[str, int | None, str]]:
    return [(f.path, f.line, f.subject) for f in check(files, **options)]


HELM_VALUES = """\
    replicaCount: 2
    image:
      repository: ghcr.io/acme/api
      tag: 1.20
      pullPolicy: IfNotPresent
    sidecar:
      image:
        repository: envoyproxy/envoy
        tag: v1.29.1
    migrations:
      imageTag: 20231020
    volumes:
      - name: config
        configMap:
          name: api-config
          defaultMode: 0400
"""

CHART = """\
    apiVersion: v2
    name: api
    description: The API
    type: application
    version: 1.2.3
    appVersion: 6.10
    kubeVersion: ">=1.25.0"
"""

WORKFLOW = """\
    name: CI
    on:
      push:
        branches: [main]
    jobs:
      test:
        runs-on: ubuntu-latest
        strategy:
          fail-fast: false
          matrix:
            python-version: [3.8, 3.9, 3.10]
            experimental: [false]
            include:
              - python-version: "3.12"
                experimental: true
        steps:
          - uses: actions/checkout@v4
          - uses: actions/setup-python@v5
            with:
              python-version: ${{ matrix.python-version }}
      build:
        runs-on: ubuntu-latest
        steps:
          - uses: actions/setup-go@v5
            with:
              go-version: 1.20
          - uses: actions/setup-node@v4
            with:
              node-version: 20
"""

GITLAB_CI = """\
    stages: [test, deploy]
    variables:
      PYTHON_VERSION: 3.10
      DOCKER_DRIVER: overlay2
      POSTGRES_PORT: 5432
      DEPLOY: yes
      RELEASE:
        value: 1.10
        description: "Release to deploy"
        options: [1.9, 1.10, "1.11"]
    test:
      stage: test
      image: python:3.12
      variables:
        PIP_VERSION: 23.0
        FEATURE_FLAG: "on"
      script:
        - pytest
    deploy:
      stage: deploy
      rules:
        - if: $CI_COMMIT_BRANCH == "main"
          variables:
            HELM_TIMEOUT: 5m
            DRY_RUN: off
      script:
        - ./deploy.sh
"""

COMPOSE = """\
    services:
      api:
        image: ghcr.io/acme/api:${IMAGE_TAG}
        environment:
          IMAGE_TAG: 1.10
          LOG_LEVEL: info
          WORKERS: 4
      worker:
        image: ghcr.io/acme/worker:1.4.2
        environment:
          - APP_VERSION=1.10
"""


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {"charts/api/values.yaml": HELM_VALUES},
            [
                ("charts/api/values.yaml", 4, "tag: 1.20"),
                ("charts/api/values.yaml", 11, "imageTag: 20231020"),
            ],
            id="helm-values",
        ),
        pytest.param(
            {"charts/api/Chart.yaml": CHART},
            [("charts/api/Chart.yaml", 6, "appVersion: 6.10")],
            id="helm-chart",
        ),
        pytest.param(
            {".github/workflows/ci.yml": WORKFLOW},
            [
                (".github/workflows/ci.yml", 11, "python-version: 3.10"),
                (".github/workflows/ci.yml", 26, "go-version: 1.20"),
            ],
            id="github-workflow",
        ),
        pytest.param(
            {".gitlab-ci.yml": GITLAB_CI},
            [
                (".gitlab-ci.yml", 3, "PYTHON_VERSION: 3.10"),
                (".gitlab-ci.yml", 6, "DEPLOY: yes"),
                (".gitlab-ci.yml", 8, "RELEASE: 1.10"),
                (".gitlab-ci.yml", 10, "RELEASE: 1.10"),
                (".gitlab-ci.yml", 15, "PIP_VERSION: 23.0"),
                (".gitlab-ci.yml", 25, "DRY_RUN: off"),
            ],
            id="gitlab-ci-variables",
        ),
        pytest.param(
            {"docker-compose.yml": COMPOSE},
            [("docker-compose.yml", 5, "IMAGE_TAG: 1.10")],
            id="compose-environment",
        ),
        pytest.param(
            {
                "k8s/deployment.yaml": """\
                    apiVersion: apps/v1
                    kind: Deployment
                    metadata:
                      name: api
                      labels:
                        app.kubernetes.io/version: 2.0
                    spec:
                      template:
                        spec:
                          containers:
                            - name: api
                              image: ghcr.io/acme/api:2.0.1
                              env:
                                - name: APP_VERSION
                                  value: 1.20
                                - name: WORKERS
                                  value: 1.20
                              volumeMounts:
                                - name: secrets
                                  mountPath: /etc/secrets
                          volumes:
                            - name: secrets
                              secret:
                                secretName: api
                                defaultMode: 0400
                """
            },
            [
                ("k8s/deployment.yaml", 6, "app.kubernetes.io/version: 2.0"),
                ("k8s/deployment.yaml", 15, "APP_VERSION: 1.20"),
            ],
            id="kubernetes-labels-and-env",
        ),
        pytest.param(
            {
                "ansible/group_vars/all.yml": """\
                    nginx_version: 1.24.0
                    postgres_version: 16
                    redis_version: 7.0
                    node_tag: "1.10"
                    file_mode: 0644
                """
            },
            [("ansible/group_vars/all.yml", 3, "redis_version: 7.0")],
            id="ansible-vars",
        ),
        pytest.param(
            {
                "cloudformation/stack.yaml": """\
                    AWSTemplateFormatVersion: 2010-09-09
                    Resources:
                      Bucket:
                        Type: AWS::S3::Bucket
                        Properties:
                          VersioningConfiguration:
                            Status: Enabled
                          Tags:
                            - Key: release-tag
                              Value: !Ref Release
                """
            },
            [],
            id="cloudformation-date-version-is-fine",
        ),
    ],
)
def test_realistic_files(files: dict[str, str], expected: list[tuple[str, int, str]]) -> None:
    assert found(files) == expected


@pytest.mark.parametrize(
    ("path", "line", "message"),
    [
        (
            "values.yaml",
            "tag: 1.20",
            '`tag: 1.20` is read as the number 1.2 (Helm renders it `1.2`); quote it: "1.20"',
        ),
        (
            "deploy/production/values-production.yaml",
            "tag: 20231020",
            "`tag: 20231020` is read as the number 20231020 (Helm renders it `2.023102e+07`);"
            ' quote it: "20231020"',
        ),
        (
            "values.yaml",
            "tag: 1234567",
            "`tag: 1234567` is read as the number 1234567 (Helm renders it `1.234567e+06`);"
            ' quote it: "1234567"',
        ),
        (
            "values.yaml",
            "tag: 010",
            '`tag: 010` is read as the octal number 8 (Helm renders it `8`); quote it: "010"',
        ),
        (
            "values.yaml",
            "tag: 1e3",
            '`tag: 1e3` is read as the number 1000 (Helm renders it `1000`); quote it: "1e3"',
        ),
        (
            "values.yaml",
            "tag: on",
            '`tag: on` is read as the boolean true (Helm renders it `true`); quote it: "on"',
        ),
        (
            "values.yaml",
            "tag: 08",
            '`tag: 08` is read as the number 8 (Helm renders it `8`); quote it: "08"',
        ),
        (
            "Chart.yaml",
            "version: 1.0",
            '`version: 1.0` is read as the number 1 (Helm renders it `1`); quote it: "1.0"',
        ),
        (
            "app/config.yaml",
            "tag: 1.20",
            '`tag: 1.20` is read as the number 1.2; quote it: "1.20"',
        ),
        (
            "app/config.yaml",
            "version: 3.0",
            '`version: 3.0` is read as the number 3; quote it: "3.0"',
        ),
        (
            "app/config.yaml",
            "tag: 1e3",
            '`tag: 1e3` is read as the number 1000; quote it: "1e3"',
        ),
        (
            "app/config.yaml",
            "tag: 0x1F",
            '`tag: 0x1F` is read as the hexadecimal number 31; quote it: "0x1F"',
        ),
        (
            "app/config.yaml",
            "release_tag: no",
            '`release_tag: no` is read as the boolean false; quote it: "no"',
        ),
        (
            "app/config.yaml",
            "release_tag: true",
            '`release_tag: true` is read as the boolean true; quote it: "true"',
        ),
        (
            "app/config.yaml",
            "tag: ~",
            '`tag: ~` is read as null (no value); quote it: "~"',
        ),
        (
            ".gitlab-ci.yml",
            "variables:\n  DEPLOY: yes\nbuild:\n  script: [make]",
            "`DEPLOY: yes` is read as the boolean true (GitLab CI variables are strings);"
            ' quote it: "yes"',
        ),
    ],
)
def test_messages_say_what_it_becomes(path: str, line: str, message: str) -> None:
    findings = check({path: line + "\n"})
    assert [f.message for f in findings] == [message]
    key = findings[0].subject.split(":")[0]
    assert line.split("\n")[findings[0].line - 1].strip().startswith(key + ":")
    assert findings[0].action is Action.BLOCK
    assert findings[0].kind == "yaml-version-coercion"
    assert findings[0].rule == "yaml-versions"


@pytest.mark.parametrize(
    "document",
    [
        'tag: "1.20"',
        "tag: '1.20'",
        "tag: 1.2.3",
        "tag: v1.20",
        "tag: 1.2",
        "version: 2",
        "appVersion: 1.24.0-alpine",
        "python-version: 3.x",
        "node-version: lts/*",
        "tag: !!str 1.20",
        "tag:",
        'tag: ""',
        "tag: |\n  1.20",
        "tag: >-\n  1.20",
        "tag: 2023-10-20",
        "tag: sha-3f2a9c1",
        "defaultMode: 0400",
        "mode: 0644",
        "replicas: 010",
        "enabled: yes",
        "timeout: 1.10",
        "tags: [1.0, 2.0]",
        "image: {repository: nginx, tag: 1.25.3}",
    ],
)
def test_values_that_survive_or_are_not_versions_are_not_flagged(document: str) -> None:
    for path in ("values.yaml", "app/config.yaml"):
        assert found({path: document + "\n"}) == []


def test_github_matrix_values_under_any_key() -> None:
    workflow = """\
        on: pull_request
        jobs:
          test:
            runs-on: ${{ matrix.os }}
            strategy:
              matrix:
                os: [ubuntu-latest, macos-latest]
                python: [3.9, 3.10, "3.11"]
                django: [4.2, 5.0]
                coverage: [true, false]
                debug: [yes]
                include:
                  - python: 3.10
                    django: 4.2
                    toxenv: py310
            steps:
              - uses: actions/setup-python@v5
                with:
                  python-version: ${{ matrix.python }}
    """
    findings = check({".github/workflows/test.yml": workflow})
    assert [(f.line, f.subject) for f in findings] == [
        (8, "python: 3.10"),
        (9, "django: 5.0"),
        (11, "debug: yes"),
        (13, "python: 3.10"),
    ]
    assert "matrix values are substituted as text" in findings[0].message


def test_multi_document_file_reports_each_document_with_its_line() -> None:
    stream = """\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: versions
        data:
          API_VERSION: 1.10
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: other
        data:
          WORKER_TAG: 2.0
          WORKER_NAME: worker
        ---
        # an empty document
        ---
        tag: "fine"
    """
    assert found({"k8s/configmaps.yaml": stream}) == [
        ("k8s/configmaps.yaml", 6, "API_VERSION: 1.10"),
        ("k8s/configmaps.yaml", 13, "WORKER_TAG: 2.0"),
    ]


def test_anchor_and_aliases() -> None:
    values = """\
        x-release: &release 1.10
        common: &common
          tag: 3.10
          pullPolicy: Always
        api:
          image:
            <<: *common
            repository: acme/api
        worker:
          imageTag: *release
          other: *release
        jobs:
          tag: *release
    """
    findings = check({"values.yaml": values})
    assert [(f.line, f.subject) for f in findings] == [
        (3, "tag: 3.10"),
        (10, "imageTag: 1.10"),
        (13, "tag: 1.10"),
    ]
    assert "through an alias of line 1" in findings[1].message
    assert findings[0].column == 8 and findings[1].column is None


def _alias_bomb(levels: int, fanout: int) -> str:
    lines = ["a0: &a0 {tag: 1.20, x: y}"]
    for i in range(1, levels + 1):
        refs = ", ".join([f"*a{i - 1}"] * fanout)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


def test_aliases_expanding_to_a_million_nodes_stay_cheap() -> None:
    findings = found({"values.yaml": _alias_bomb(levels=9, fanout=4)})  # ~1.3 million nodes
    assert findings == [("values.yaml", 1, "tag: 1.20")]


def test_alias_bomb_gives_one_finding_at_the_rules_action() -> None:
    findings = check({"values.yaml": _alias_bomb(levels=20, fanout=9)})
    assert [(f.action, f.subject) for f in findings] == [(Action.BLOCK, "values.yaml")]
    assert "alias bomb" in findings[0].message


def test_broken_file_gives_one_finding_and_the_rest_is_checked() -> None:
    findings = check(
        {
            "values.yaml": "image:\n  tag: 1.20\n  repository: [nginx\n",
            "charts/ok/values.yaml": "tag: 1.20\n",
        }
    )
    assert [(f.path, f.action) for f in findings] == [
        ("charts/ok/values.yaml", Action.BLOCK),
        ("values.yaml", Action.BLOCK),  # a block rule that cannot read a file blocks
    ]
    warning = findings[1]
    assert warning.message.startswith("could not check: YAML syntax error")
    assert warning.line == 4


def test_only_yaml_files_under_the_rule_paths_changed_at_head() -> None:
    base = {
        "charts/api/values.yaml": "tag: 1.20\n",  # unchanged: not looked at
        "charts/old/values.yaml": "tag: 1.20\n",  # deleted
        "charts/web/values.yaml": 'tag: "1.0"\n',
    }
    head = {
        "charts/api/values.yaml": "tag: 1.20\n",
        "charts/web/values.yaml": "tag: 1.0\n",
        "charts/web/notes.txt": "tag: 1.0\n",
        "charts/web/config.json": '{"tag": 1.0}\n',
        "docs/values.yaml": "tag: 1.0\n",
        ".gitlab-ci.yml": "variables:\n  GO_VERSION: 1.20\n",
    }
    findings = check(head, base=base, paths=["charts/**", ".gitlab-ci.yml"])
    assert [(f.path, f.line) for f in findings] == [
        (".gitlab-ci.yml", 2),
        ("charts/web/values.yaml", 1),
    ]


def test_gitlab_parallel_matrix_values() -> None:
    pipeline = """\
        test:
          image: python:$PYTHON
          parallel:
            matrix:
              - PYTHON: [3.9, 3.10, "3.11"]
                DB: [postgres, mysql]
              - PYTHON: 3.12
                DB: sqlite
          script: [tox]
    """
    findings = check({".gitlab-ci.yml": pipeline})
    assert [(f.line, f.subject) for f in findings] == [(5, "PYTHON: 3.10")]
    assert "GitLab CI matrix values are strings" in findings[0].message


def test_extra_keys_are_exact_and_case_insensitive() -> None:
    config = "python: 3.10\npythonish: 3.10\nruntime: 1.10\n"
    assert found({"app/config.yaml": config}) == []
    assert found({"app/config.yaml": config}, extra_keys=["Python", "RUNTIME"]) == [
        ("app/config.yaml", 1, "python: 3.10"),
        ("app/config.yaml", 3, "runtime: 1.10"),
    ]


def test_gitlab_included_file_is_recognised_by_its_jobs() -> None:
    template = """\
        .python:
          image: python:3.12
          variables:
            PIP_NO_CACHE_DIR: off
          script:
            - pip install .
    """
    assert found({"ci/templates/python.yml": template}) == [
        ("ci/templates/python.yml", 4, "PIP_NO_CACHE_DIR: off")
    ]
    # The same mapping outside a GitLab CI file is not a variables block.
    assert found({"app/config.yml": "variables:\n  PIP_NO_CACHE_DIR: off\n"}) == []


_DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=3)
#: `1`, `010`, `1.20`, `v1.2`, `3.10.1`: what people write under `tag:` / `version:`.
_VERSIONS = st.builds(
    lambda v, parts: ("v" if v else "") + ".".join(parts),
    st.booleans(),
    st.lists(_DIGITS, min_size=1, max_size=3),
)


def _expected_flag(text: str, *, helm: bool) -> bool:
    """Whether `text`, written unquoted, reads back as something else (by hand, not by code)."""
    if text.startswith("v") or text.count(".") >= 2:
        return False  # a string to every YAML reader
    if "." not in text:
        return (len(text) > 1 and text[0] == "0") or (helm and int(text) >= 1_000_000)
    whole, fraction = text.split(".")
    return (len(whole) > 1 and whole[0] == "0") or fraction.endswith("0")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_VERSIONS)
def test_flags_exactly_the_versions_that_do_not_read_back(text: str) -> None:
    for path, helm in (("deploy/app.yaml", False), ("charts/app/values.yaml", True)):
        flagged = found({path: f"image:\n  tag: {text}\n"})
        assert bool(flagged) == _expected_flag(text, helm=helm), (path, text)


@settings(max_examples=300, deadline=None)
@given(text=st.integers(0, 10**9).map(str) | st.text(alphabet="0123456789", min_size=1, max_size=9))
def test_helm_integers_flagged_when_go_prints_them_differently(text: str) -> None:
    flagged = found({"values.yaml": f"tag: {text}\n"})
    assert bool(flagged) == _expected_flag(text, helm=True), text


_CORE12 = re.compile(
    r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?"
)


@settings(max_examples=400, deadline=None)
@given(text=st.text(alphabet="0123456789.eEoxXbyYnN+-_~aflsu", min_size=1, max_size=8))
def test_only_values_some_yaml_reader_does_not_keep_as_text_are_flagged(text: str) -> None:
    try:
        loaded = yaml.safe_load(f"tag: {text}\n")
    except yaml.YAMLError:
        assume(False)
    assume(isinstance(loaded, dict) and not isinstance(loaded.get("tag"), dict | list))
    value = loaded["tag"]
    flagged = bool(found({"app/config.yaml": f"tag: {text}\n"}))
    if flagged:
        assert not isinstance(value, str) or _CORE12.fullmatch(text), text
    if isinstance(value, bool) or (value is None and text.strip()):
        assert flagged, text
    if isinstance(value, str) and not _CORE12.fullmatch(text):
        assert not flagged, text
