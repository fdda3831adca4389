"""Helm templates read as the YAML around their actions (bot/formats/helm.py)."""

from __future__ import annotations

from bot.formats.helm import is_helm_template, restore, strip_actions
from bot.formats.yamldoc import get, load_yaml, scalar

TEMPLATE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "web.fullname" . }}
  labels:
    {{- include "web.labels" . | nindent 4 }}
spec:
  {{- if not .Values.autoscaling.enabled }}
  replicas: {{ .Values.replicaCount }}
  {{- end }}
  template:
    spec:
      {{/* a comment
           over two lines */}}
      containers:
        - image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
"""


def test_line_numbers_are_kept() -> None:
    stripped, _ = strip_actions(TEMPLATE)
    assert stripped.count("\n") == TEMPLATE.count("\n")
    assert stripped.splitlines()[15].strip().startswith('- image: "__TPL')


def test_actions_alone_on_a_line_vanish_and_inline_ones_are_placeholders() -> None:
    stripped, actions = strip_actions(TEMPLATE)
    assert "{{" not in stripped
    assert actions == [
        '{{ include "web.fullname" . }}',
        "{{ .Values.replicaCount }}",
        "{{ .Values.image.repository }}",
        "{{ .Values.image.tag | default .Chart.AppVersion }}",
    ]
    assert restore("__TPL2__:__TPL3__", actions) == (
        "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
    )


def test_load_yaml_reads_a_template_by_its_path() -> None:
    parsed = load_yaml(TEMPLATE, path="charts/web/templates/deployment.yaml")
    assert parsed.ok
    assert scalar(get(parsed.documents[0], "spec", "replicas")) == "__TPL1__"
    assert len(parsed.template_actions) == 4
    # elsewhere the same text is not a template, and is not YAML
    assert not load_yaml(TEMPLATE, path="deploy/deployment.yaml").ok


def test_what_is_not_yaml_even_without_actions_says_so() -> None:
    parsed = load_yaml("a: [\n{{ .x }}\n", path="templates/x.yaml")
    assert parsed.problem is not None and parsed.problem.startswith("Helm template")


def test_only_files_under_templates_with_actions() -> None:
    assert is_helm_template("charts/a/templates/x.yaml", "a: {{ .b }}")
    assert not is_helm_template("charts/a/templates/x.yaml", "a: b")
    assert not is_helm_template("charts/a/values.yaml", "a: {{ .b }}")
