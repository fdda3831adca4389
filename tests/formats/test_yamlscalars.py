"""How YAML consumers read plain scalars and print them back."""

from __future__ import annotations

import pytest

from bot.formats.yamlscalars import (
    Dialect,
    dialect_of,
    go_format_float,
    print_plain,
    read_go_yaml_v2,
    read_yaml12_core,
)


@pytest.mark.parametrize(
    ("number", "printed"),
    [
        (1.2, "1.2"),
        (1.0, "1"),
        (20231020.0, "2.023102e+07"),
        (1e6, "1e+06"),
        (999999.0, "999999"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1234.5, "1234.5"),
        (-3.25, "-3.25"),
        (0.0, "0"),
    ],
)
def test_go_float_formatting(number: float, printed: str) -> None:
    assert go_format_float(number) == printed


@pytest.mark.parametrize(
    ("path", "dialect"),
    [
        ("charts/api/values.yaml", Dialect.HELM_VALUES),
        ("deploy/values-production.yml", Dialect.HELM_VALUES),
        ("charts/api/Chart.yaml", Dialect.HELM_CHART),
        (".gitlab-ci.yml", Dialect.GENERIC),
        ("k8s/deployment.yaml", Dialect.GENERIC),
    ],
)
def test_dialect_of(path: str, dialect: Dialect) -> None:
    assert dialect_of(path) is dialect


@pytest.mark.parametrize(
    ("text", "yaml12", "go_yaml_v2"),
    [
        ("1.20", 1.2, 1.2),
        ("010", 10, 8),
        ("0o17", 15, 15),
        ("yes", "yes", True),
        ("~", None, None),
        ("v1.2", "v1.2", "v1.2"),
        ("1e400", "1e400", "1e400"),
    ],
)
def test_how_each_reader_reads_plain_scalars(text: str, yaml12: object, go_yaml_v2: object) -> None:
    assert read_yaml12_core(text) == yaml12
    assert read_go_yaml_v2(text) == go_yaml_v2


def test_print_plain_drops_a_trailing_point_zero() -> None:
    assert [print_plain(v) for v in (3.0, 3.1, True, None, 7)] == ["3", "3.1", "true", "", "7"]
