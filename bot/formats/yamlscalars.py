"""How YAML consumers read a plain scalar, and the text they print back for it.

A version written unquoted may not come back as written: Helm renders `tag: 1.20` as `1.2`.
Two readers model the consumers. Helm (values files, Chart.yaml) reads with go-yaml v2 and
then routes values through JSON, so every number is a float64 printed with Go's `%v`. Every
other file is judged by the union of YAML 1.1 (PyYAML: `yes`/`on`, `010` octal) and the
YAML 1.2 core schema (`1e3`, `08`, `0o17`), since CI runners and tools use either.
`yaml-version-coercion` (bot/rules/yaml_coercion.py) decides where that matters.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from posixpath import basename

from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from bot.formats.yamldoc import STR_TAG, ScalarNode

_HELM_VALUES_NAME = re.compile(r"(?:^|.*[-_.])values(?:[-_.].*)?\.ya?ml")


class Dialect(enum.Enum):
    """Who reads the file, which decides how a scalar is read and printed back."""

    HELM_VALUES = "helm-values"
    HELM_CHART = "helm-chart"
    GENERIC = "generic"


def dialect_of(path: str) -> Dialect:
    name = basename(path).lower()
    if name in ("chart.yaml", "chart.yml"):
        return Dialect.HELM_CHART
    if _HELM_VALUES_NAME.fullmatch(name):
        return Dialect.HELM_VALUES
    return Dialect.GENERIC


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
