"""Helm chart templates: YAML with Go template actions, read as the YAML around them.

A template is not YAML (`image: {{ .Values.image }}` is a flow mapping with a bad key), so
its actions are taken out before parsing: an action alone on its line (`{{- if … }}`,
`{{- toYaml … | nindent 8 }}`, `{{- end }}`) becomes a blank line, an action inside a line
becomes a placeholder (`__TPL3__`) that reads as a plain scalar and that the image reader
knows as a template. Newlines are kept, so every line number is the template's own. Both
branches of an `if` are kept: what either could render is judged.
"""

from __future__ import annotations

import re

__all__ = ["PLACEHOLDER_RE", "is_helm_template", "restore", "strip_actions"]

_TEMPLATES_DIR_RE = re.compile(r"(?:^|/)templates/", re.I)
_ACTION_RE = re.compile(r"\{\{.*?\}\}", re.S)
#: What an inline action becomes; `__[A-Z0-9_]+__` is a placeholder to `has_template`.
PLACEHOLDER_RE = re.compile(r"__TPL(\d+)__")


def is_helm_template(path: str, text: str) -> bool:
    """A YAML file under a `templates/` directory that holds template actions."""
    return bool(_TEMPLATES_DIR_RE.search(path)) and "{{" in text


def strip_actions(text: str) -> tuple[str, list[str]]:
    """`text` with every `{{ … }}` action taken out (see the module docstring), and the
    actions replaced by placeholders, in order (`__TPL0__` is `actions[0]`)."""
    actions: list[str] = []
    out: list[str] = []
    pos = 0
    for match in _ACTION_RE.finditer(text):
        out.append(text[pos : match.start()])
        action = match.group()
        line_start = text.rfind("\n", 0, match.start()) + 1
        line_end = text.find("\n", match.end())
        line_end = len(text) if line_end < 0 else line_end
        before = _ACTION_RE.sub("", text[line_start : match.start()])
        after = _ACTION_RE.sub("", text[match.end() : line_end])
        alone = not before.strip() and not after.strip()
        if alone:
            out.append("\n" * action.count("\n"))
        else:
            out.append(f"__TPL{len(actions)}__" + "\n" * action.count("\n"))
            actions.append(action)
        pos = match.end()
    out.append(text[pos:])
    return "".join(out), actions


def restore(value: str, actions: list[str]) -> str:
    """`value` with its placeholders turned back into the actions they stand for."""
    return PLACEHOLDER_RE.sub(
        lambda m: actions[int(m.group(1))] if int(m.group(1)) < len(actions) else m.group(), value
    )
