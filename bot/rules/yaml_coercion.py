"""`yaml-version-coercion`: unquoted versions that YAML reads as something else (`1.20` -> 1.2).

A version or tag is text. Written unquoted, YAML may read it as a number, a boolean or null,
and whatever consumes the file then prints that value back, not what was written: Helm
renders `tag: 1.20` as `1.2` and `tag: 20231020` as `2.023102e+07`; a workflow installs
Python 3.1 for `python-version: 3.10`. The rule looks at plain scalars where a string is
meant (version-like keys, GitLab CI variables, GitHub Actions matrices), reads each the way
its consumer does, and flags those that do not come back as written.

Two readers model the consumers. Helm (values files, Chart.yaml) reads with go-yaml v2 and
then routes values through JSON, so every number is a float64 printed with Go's `%v`. Every
other file is judged by the union of YAML 1.1 (PyYAML: `yes`/`on`, `010` octal) and the
YAML 1.2 core schema (`1e3`, `08`, `0o17`), since CI runners and tools use either.
"""

from __future__ import annotations

import enum
import functools
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from posixpath import basename
from typing import Literal

from pydantic import Field
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from bot.change import Finding
from bot.formats.yamldoc import (
    STR_TAG,
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
from bot.rules.base import RuleBase, RuleContext, StrictModel


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
_HELM_VALUES_NAME = re.compile(r"(?:^|.*[-_.])values(?:[-_.].*)?\.ya?ml")
_GITLAB_CI_NAME = re.compile(r"(?:^|.*[-_.])gitlab-ci\.ya?ml")


class Dialect(enum.Enum):
    """Who reads the file, which decides how a scalar is read and printed back."""

    HELM_VALUES = "helm-values"
    HELM_CHART = "helm-chart"
    GENERIC = "generic"


def is_yaml_path(path: str) -> bool:
    return path.lower().endswith(_YAML_SUFFIXES)


def dialect_of(path: str) -> Dialect:
    name = basename(path).lower()
    if name in ("chart.yaml", "chart.yml"):
        return Dialect.HELM_CHART
    if _HELM_VALUES_NAME.fullmatch(name):
        return Dialect.HELM_VALUES
    return Dialect.GENERIC


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


# -- reading a plain scalar the way its consumer does ---------------------------------------

Value = bool | int | float | None


@dataclass(frozen=True)
class Reading:
    """A non-string reading of a scalar, and the text its consumer prints for it."""

    value: Value
    printed: str


_RESOLVER = Resolver()
_CONSTRUCTOR = SafeConstructor()
_NON_STRING_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("bool", "int", "float", "null")
)


def read_scalar(node: ScalarNode, dialect: Dialect) -> Reading | None:
    """How the file's consumer reads `node`; None if it reads the text as written.

    Quoted and block scalars, and scalars with an explicit tag (`!!str 1.20`, `!Ref x`), are
    what the author asked for.
    """
    if node.style or not node.value:
        return None
    text = str(node.value)
    if node.tag != _RESOLVER.resolve(ScalarNode, text, (True, False)):
        return None  # an explicit tag
    if dialect is Dialect.GENERIC:
        return _read_generic(node, text)
    value = read_go_yaml_v2(text)
    if isinstance(value, str):
        return None
    return Reading(value, print_helm(value, dialect))


def _read_generic(node: ScalarNode, text: str) -> Reading | None:
    if node.tag in _NON_STRING_TAGS:
        constructor = SafeConstructor.yaml_constructors[node.tag]
        value = constructor(_CONSTRUCTOR, node)
    elif node.tag == STR_TAG:
        value = read_yaml12_core(text)
    else:
        return None  # timestamps and the like print back as written
    if isinstance(value, str):
        return None
    assert value is None or isinstance(value, bool | int | float)
    return Reading(value, print_plain(value))


_CORE12_NULL = frozenset({"null", "Null", "NULL", "~"})
_CORE12_BOOL = {"true": True, "True": True, "TRUE": True}
_CORE12_BOOL.update({"false": False, "False": False, "FALSE": False})
_CORE12_INT = re.compile(r"[-+]?[0-9]+")
_CORE12_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")


def read_yaml12_core(text: str) -> Value | str:
    """YAML 1.2 core schema (go-yaml v3, ruamel, js-yaml, the Actions runner)."""
    if text in _CORE12_NULL:
        return None
    if text in _CORE12_BOOL:
        return _CORE12_BOOL[text]
    if _CORE12_INT.fullmatch(text):
        return int(text, 10)
    if re.fullmatch(r"0o[0-7]+", text):
        return int(text[2:], 8)
    if re.fullmatch(r"0x[0-9a-fA-F]+", text):
        return int(text[2:], 16)
    if _CORE12_FLOAT.fullmatch(text):
        return _finite_or_text(text)
    return text


_GO_BOOLS = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "on", "On", "ON"), True),
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "off", "Off", "OFF"), False),
    **dict.fromkeys(("false", "False", "FALSE"), False),
}
_GO_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_GO_SPECIAL_FLOATS = {
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
}
_GO_INT = re.compile(r"([-+]?)(?:0[xX]([0-9a-fA-F]+)|0[oO]?([0-7]+)|0[bB]([01]+)|([1-9][0-9]*|0))")
_GO_YAML_FLOAT = _CORE12_FLOAT  # go-yaml v2's yamlStyleFloat is the YAML 1.2 float pattern


def read_go_yaml_v2(text: str) -> Value | str:
    """go-yaml v2's `resolve` for a plain scalar (what Helm reads values and charts with).

    Timestamp-like text stays a string when decoded into `interface{}`, as Helm does.
    """
    if text in _GO_BOOLS:
        return _GO_BOOLS[text]
    if text in _GO_NULLS:
        return None
    if text in _GO_SPECIAL_FLOATS:
        return _GO_SPECIAL_FLOATS[text]
    if text[0] == ".":
        if re.fullmatch(r"\.[0-9]+(?:[eE][-+]?[0-9]+)?", text):
            return float(text)
        return text
    if text[0] not in "+-0123456789":
        return text
    plain = text.replace("_", "")
    match = _GO_INT.fullmatch(plain)
    if match:
        sign, hexa, octal, binary, decimal = match.groups()
        if hexa is not None:
            number = int(hexa, 16)
        elif octal is not None:
            number = int(octal, 8)
        elif binary is not None:
            number = int(binary, 2)
        else:
            number = int(decimal, 10)
        number = -number if sign == "-" else number
        if -(2**63) <= number < 2**64:  # ParseInt, then ParseUint
            return number
    if _GO_YAML_FLOAT.fullmatch(plain):
        return _finite_or_text(plain)
    return text


def _finite_or_text(text: str) -> float | str:
    """Go's ParseFloat fails on overflow, and the scalar then stays a string."""
    value = float(text)
    return text if math.isinf(value) else value


# -- printing a value back ----------------------------------------------------------------


def print_helm(value: Value, dialect: Dialect) -> str:
    """What a Helm template prints for a value read from a values file or Chart.yaml.

    Values go through JSON, so every number is a float64 printed with `%v`. Chart.yaml
    fields are strings, and sigs.k8s.io/yaml keeps integers' digits there.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if dialect is Dialect.HELM_CHART and isinstance(value, int):
        return str(value)
    return go_format_float(float(value))


def go_format_float(number: float) -> str:
    """Go's `fmt.Sprintf("%v", float64)`: shortest digits, exponent form from 1e+06 up."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, number) < 0 else ""
    if number == 0:
        return sign + "0"
    _sign, digit_tuple, exponent = Decimal(repr(abs(number))).as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    exponent += len(digit_tuple) - len(digits)
    point = len(digits) + exponent  # digits are 0.DDDD x 10^point
    shown_exponent = point - 1
    if shown_exponent < -4 or shown_exponent >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        exp_sign = "-" if shown_exponent < 0 else "+"
        return f"{sign}{mantissa}e{exp_sign}{abs(shown_exponent):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def print_plain(value: Value) -> str:
    """How a CI runner or script prints a value: shortest digits, no trailing `.0`."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


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
