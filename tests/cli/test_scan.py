"""`changegate scan`: content rules over files, paths as named, JSON/SARIF/text output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      initContainers:
        - name: migrate
          image: registry.example.com/app/migrate:1.4.2
      containers:
        - name: web
          image: localhost:5000/web
        - name: sidecar
          image: nginx:latest
"""

VALUES = """\
image:
  repository: ghcr.io/acme/api
  tag: 1.20
"""


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "web.yaml").write_text(DEPLOYMENT)
    (tmp_path / "deploy" / "values.yaml").write_text(VALUES)
    (tmp_path / "deploy" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def scan(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["scan", *argv])
    return code, capsys.readouterr().out


def test_json_has_no_range_and_paths_keep_the_prefix_given(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = scan(capsys, "deploy", "--format", "json")
    data = json.loads(out)
    assert code == 1
    assert list(data) == ["decision", "findings", "approvals"]
    got = [(f["path"], f["line"], f["kind"], f["subject"]) for f in data["findings"]]
    assert got == [
        ("deploy/values.yaml", 3, "yaml-version-coercion", "tag: 1.20"),
        ("deploy/web.yaml", 13, "unpinned-image", "localhost:5000/web"),
        ("deploy/web.yaml", 15, "unpinned-image", "nginx:latest"),
    ]


def test_single_file_argument_and_dot_slash_prefix(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = scan(capsys, "./deploy/web.yaml", "--format", "json")
    assert {f["path"] for f in json.loads(out)["findings"]} == {"deploy/web.yaml"}


def test_sarif_is_2_1_0_with_rules_and_regions(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = scan(capsys, "deploy", "--format", "sarif")
    sarif = json.loads(out)
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    assert run["tool"]["driver"]["name"] == "changegate"
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    for result in run["results"]:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
        assert result["level"] == "error"
        region = result["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1
    assert {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]
    } == {
        "deploy/values.yaml",
        "deploy/web.yaml",
    }


def test_text_output_groups_by_file(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = scan(capsys, "deploy")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "deploy/values.yaml"
    assert "deploy/web.yaml" in lines
    assert lines[-1].startswith("changegate: fail (3 block")
    assert "\033[" not in out  # not a terminal: no colour


def test_clean_tree_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ok.yaml").write_text("image: nginx:1.27.2\n")
    code, out = scan(capsys, str(tmp_path), "--format", "json")
    assert code == 0 and json.loads(out) == {"decision": "pass", "findings": [], "approvals": []}


def test_missing_path_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(tmp_path / "nope")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "content", "reason", "actions"),
    [
        (
            "bomb.yaml",
            "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
            + "".join(
                f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 10)}]\n"
                for i in range(8)
            ),
            "alias",
            ["block"],
        ),
        ("deep.yaml", "[" * 50_000 + "]" * 50_000, "nesting deeper", ["block"]),
        ("bad.yaml", "image: [unclosed\n", "YAML syntax error", ["block"]),
        # read on with U+FFFD: the reference it names cannot be known, and one note
        (
            "latin1.yaml",
            "kind: Pod\napiVersion: v1\nspec:\n  containers:\n    - image: caf\xe9:1\n".encode(
                "latin-1"
            ),
            "not valid UTF-8",
            ["warn", "block"],
        ),
        # over the soft cap: read anyway, with a note
        (
            "huge.yaml",
            "image: nginx:1.0\n" + "# " + "x" * (6 * 1024 * 1024) + "\n",
            "read in full",
            ["warn"],
        ),
    ],
    ids=["alias-bomb", "deep-nesting", "syntax-error", "latin1", "over-soft-size-limit"],
)
def test_hostile_files_are_one_finding_and_the_rest_is_still_checked(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: str | bytes,
    reason: str,
    actions: list[str],
) -> None:
    target = tmp_path / name
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        target.write_text(content)
    (tmp_path / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - image: redis\n"
    )
    code, out = scan(capsys, str(tmp_path), "--format", "json")
    findings = json.loads(out)["findings"]
    mine = [f for f in findings if f["path"].endswith(name)]
    # one finding per file and action, not one per rule that reads contents; a block rule
    # that cannot read a file blocks
    assert [f["action"] for f in mine] == actions, findings
    assert reason in mine[0]["message"], mine
    assert any(f["path"].endswith("pod.yaml") and f["action"] == "block" for f in findings)
    assert code == 1
