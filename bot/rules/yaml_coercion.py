"""`yaml-version-coercion`: unquoted versions that YAML reads as something else (`1.20` -> 1.2).

A version or tag is text. Written unquoted, YAML may read it as a number, a boolean or null,
and whatever consumes the file then prints that value back, not what was written: Helm
renders `tag: 1.20` as `1.2` and `tag: 20231020` as `2.023102e+07`; a workflow installs
Python 3.1 for `python-version: 3.10`. The rule looks at plain scalars where a string is
meant (version-like keys, GitLab CI variables, GitHub Actions matrices), reads each the way
its consumer does (bot/formats/yamlscalars.py), and flags those that do not come back as
written.
"""

from __future__ import annotations

import enum
import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from posixpath import basename
from typing import Literal

from pydantic import Field

from bot.change import Finding
from bot.formats.yamldoc import (
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
    get,
    items,
    line_of,
    sequence,
    walk,
)
from bot.formats.yamlscalars import Dialect, Reading, dialect_of, print_plain, read_scalar
from bot.rules.base import RuleBase, RuleContext
from bot.rules.strict import StrictModel


class YamlVersionCoercionOptions(StrictModel):
    extra_keys: list[str] = Field(
        default_factory=list,
        description="More key names (exact, case-insensitive) to treat as version-like.",
    )


class YamlVersionCoercionRule(RuleBase):
    kind: Literal["yaml-version-coercion"] = "yaml-version-coercion"
    options: YamlVersionCoercionOptions = Field(default_factory=YamlVersionCoercionOptions)

    reads_contents = True
    judges = "lines"

    def reads(self, ctx: RuleContext) -> list[str]:
        return [f.path for f in self.changed_files(ctx) if is_yaml_path(f.path)]

    def check(self, ctx: RuleContext) -> list[Finding]:
        extra = frozenset(k.lower() for k in self.options.extra_keys)
        findings: list[Finding] = []
        for changed in self.changed_files(ctx):
            path = changed.path
            if not is_yaml_path(path):
                continue
            parsed = ctx.view.yaml(path)
            if parsed.missing:
                continue
            if parsed.problem is not None:
                findings.append(self.unreadable(path, parsed.problem, parsed.problem_line))
                continue
            findings.extend(self.read_notes(ctx, path))
            dialect = dialect_of(path)
            for root in parsed.documents:
                for coercion in find_coercions(root, dialect, path=path, extra_keys=extra):
                    findings.append(
                        self.finding(
                            path,
                            coercion.line,
                            coercion.subject,
                            coercion.message,
                            column=coercion.column,
                        )
                    )
        return findings


# -- which files, which scalars ----------------------------------------------------------

_YAML_SUFFIXES = (".yaml", ".yml")
_GITLAB_CI_NAME = re.compile(r"(?:^|.*[-_.])gitlab-ci\.ya?ml")


def is_yaml_path(path: str) -> bool:
    return path.lower().endswith(_YAML_SUFFIXES)


@functools.lru_cache(maxsize=4096)
def is_version_key(key: str, extra_keys: frozenset[str] = frozenset()) -> bool:
    """`tag`, `imageTag`, `IMAGE_TAG`, `python-version`, `appVersion`, ... (any case/separator)."""
    if key.lower() in extra_keys:
        return True
    folded = re.sub(r"[^a-z0-9]", "", key.lower())
    return folded.endswith(("tag", "version"))


class Strictness(enum.Enum):
    #: Where only a string makes sense: booleans and nulls are always wrong.
    STRICT = "strict"
    #: Where other types are fine (a matrix of `true`/`false`): only changed text is wrong.
    LOOSE = "loose"


@dataclass(frozen=True)
class Site:
    """A plain scalar found where a string is meant, and the key it is written under."""

    key: str
    key_node: Node
    value: ScalarNode
    strictness: Strictness
    where: str = ""  # why a string is required there, if not for a version-like key


def sites(
    root: Node, *, path: str = "", extra_keys: frozenset[str] = frozenset()
) -> Iterator[Site]:
    """Every scalar of `root` that must be a string; each (place, value) edge once.

    `walk` yields each collection object once, so the edges enumerated here are bounded by
    the composed (not alias-expanded) size of the document.
    """
    gitlab = is_gitlab_ci(path, root)
    for _path, node in walk(root):
        if not isinstance(node, MappingNode):
            continue
        env_name: ScalarNode | None = None
        env_value: tuple[Node, ScalarNode] | None = None
        for key, key_node, value in items(node):
            if is_version_key(key, extra_keys):
                yield from _string_values(key, key_node, value, Strictness.STRICT)
            if key == "name" and isinstance(value, ScalarNode):
                env_name = value
            elif key == "value" and isinstance(value, ScalarNode):
                env_value = (key_node, value)
            elif gitlab and key == "variables":
                yield from _gitlab_variables(value)
            elif gitlab and key == "parallel":
                yield from _gitlab_matrix_values(value)
        # Kubernetes-style env entries: `{name: APP_VERSION, value: 1.20}`.
        if env_name is not None and env_value is not None:
            name = str(env_name.value)
            if is_version_key(name, extra_keys):
                yield Site(name, env_value[0], env_value[1], Strictness.STRICT)
    yield from _github_matrix_values(root)


def _string_values(
    key: str, key_node: Node, value: Node, strictness: Strictness, where: str = ""
) -> Iterator[Site]:
    """The scalar under a key, or each scalar item of the list under it."""
    if isinstance(value, ScalarNode):
        yield Site(key, key_node, value, strictness, where)
    elif isinstance(value, SequenceNode):
        for item in value.value:
            if isinstance(item, ScalarNode):
                yield Site(key, key_node, item, strictness, where)


def is_gitlab_ci(path: str, root: Node) -> bool:
    """`.gitlab-ci.yml`, or an included file: top-level jobs with `script`, no `jobs:`."""
    if not isinstance(root, MappingNode):
        return False
    if _GITLAB_CI_NAME.fullmatch(basename(path).lower()) or path.startswith(".gitlab/"):
        return True
    if get(root, "jobs") is not None:
        return False
    if get(root, "stages") is not None:
        return True
    return any(get(job, "script") is not None for _name, _k, job in items(root))


def _gitlab_variables(variables: Node) -> Iterator[Site]:
    """`VAR: value`, `VAR: {value: ..., options: [...]}`: GitLab wants strings."""
    where = "GitLab CI variables are strings"
    for name, name_node, value in items(variables):
        if isinstance(value, ScalarNode):
            yield Site(name, name_node, value, Strictness.STRICT, where)
        elif isinstance(value, MappingNode):
            for key, _key_node, inner in items(value):
                if key in ("value", "options"):
                    yield from _string_values(name, name_node, inner, Strictness.STRICT, where)


def _gitlab_matrix_values(parallel: Node) -> Iterator[Site]:
    """`parallel: matrix: [{PYTHON: [3.9, 3.10]}]`: GitLab wants strings here too."""
    where = "GitLab CI matrix values are strings"
    for entry in sequence(get(parallel, "matrix")):
        for name, name_node, values in items(entry):
            yield from _string_values(name, name_node, values, Strictness.STRICT, where)


def _github_matrix_values(root: Node) -> Iterator[Site]:
    """Values of `jobs.<id>.strategy.matrix`: substituted as text into `${{ matrix.x }}`."""
    for _job_id, _k, job in items(get(root, "jobs")):
        matrix = get(job, "strategy", "matrix")
        if not isinstance(matrix, MappingNode):
            continue
        for _path, node in walk(matrix):
            for key, key_node, value in items(node):
                yield from _string_values(
                    key, key_node, value, Strictness.LOOSE, "matrix values are substituted as text"
                )


# -- judging -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Coercion:
    line: int
    column: int | None
    subject: str
    message: str


def find_coercions(
    root: Node,
    dialect: Dialect,
    *,
    path: str = "",
    extra_keys: frozenset[str] = frozenset(),
) -> Iterator[Coercion]:
    """The scalars of one document that their consumer will not read as written."""
    reported: set[tuple[int, int]] = set()
    for site in sites(root, path=path, extra_keys=extra_keys):
        value = site.value
        reading = read_scalar(value, dialect)
        if reading is None or not _is_coerced(str(value.value), reading, site.strictness):
            continue
        # An alias composes to its anchor's node: report it where the key is written.
        through_alias = value.start_mark.index < site.key_node.start_mark.index
        line = line_of(site.key_node) if through_alias else line_of(value)
        if (id(value), line) in reported:
            continue
        reported.add((id(value), line))
        yield Coercion(
            line=line,
            column=None if through_alias else int(value.start_mark.column) + 1,
            subject=f"{site.key}: {value.value}",
            message=describe(site, reading, dialect, through_alias=through_alias),
        )


def _is_coerced(text: str, reading: Reading, strictness: Strictness) -> bool:
    if strictness is Strictness.STRICT and (
        reading.value is None or isinstance(reading.value, bool)
    ):
        return True
    return reading.printed != text


def describe(site: Site, reading: Reading, dialect: Dialect, *, through_alias: bool) -> str:
    text = str(site.value.value)
    value = reading.value
    if value is None:
        what = "null (no value)"
    elif isinstance(value, bool):
        what = f"the boolean {'true' if value else 'false'}"
    else:
        what = f"the {_notation(text)}number {print_plain(value)}"
    notes = []
    if dialect is not Dialect.GENERIC:
        notes.append(
            f"Helm renders it `{reading.printed}`" if reading.printed else "Helm renders nothing"
        )
    if site.where:
        notes.append(site.where)
    if through_alias:
        notes.append(f"through an alias of line {line_of(site.value)}")
    extra = f" ({'; '.join(notes)})" if notes else ""
    return f"`{site.key}: {text}` is read as {what}{extra}; quote it: {json.dumps(text)}"


def _notation(text: str) -> str:
    digits = text.lstrip("+-").replace("_", "")
    prefix = digits[:2].lower()
    if prefix == "0x":
        return "hexadecimal "
    if prefix == "0b":
        return "binary "
    if prefix == "0o" or (len(digits) > 1 and digits[0] == "0" and set(digits) <= set("01234567")):
        return "octal "
    return ""
