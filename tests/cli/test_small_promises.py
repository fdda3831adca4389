"""Issue 15.6: the small promises of the command line, kept by the real commands."""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from support import REPO_ROOT, WorkTreeRepo, closed_port, run_cli

COMPOSE = "services:\n  web:\n    image: {image}\n"


def test_version(tmp_path: Path) -> None:
    from importlib.metadata import version

    proc = run_cli("--version", cwd=tmp_path)
    assert (proc.returncode, proc.stdout.strip()) == (0, f"changegate {version('changegate')}")


def test_help_lists_every_subcommand(tmp_path: Path) -> None:
    from bot.cli import build_parser

    top = run_cli("--help", cwd=tmp_path).stdout
    policy = run_cli("policy", "--help", cwd=tmp_path).stdout
    for name in ("validate", "schema", "simulate"):
        assert re.search(rf"^\s+{name}\s", policy, flags=re.MULTILINE), policy
    assert "simulate" in next(
        line for line in top.splitlines() if line.strip().startswith("policy")
    )
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in commands:
        assert re.search(rf"^\s+{name}\s", top, flags=re.MULTILINE), name


def test_serve_help_shows_defaults(tmp_path: Path) -> None:
    out = run_cli("serve", "--help", cwd=tmp_path).stdout
    assert "(default: 127.0.0.1)" in out and "(default: 8000)" in out
    out = run_cli("audit", "export", "--help", cwd=tmp_path).stdout
    assert "(default: 30d)" in " ".join(out.split())


def test_audit_export_defaults_to_30_days_and_all_means_all(tmp_path: Path) -> None:
    from bot import audit

    assert run_cli("db", "upgrade", cwd=tmp_path).returncode == 0
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'changegate.db'}")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with Session(engine) as session:
        for days, subject in ((90, "old"), (1, "new")):
            audit.append(
                session,
                audit.Entry(
                    action="verdict",
                    subject=subject,
                    sha="a" * 40,
                    at=now - dt.timedelta(days=days),
                ),
            )
        session.commit()
    engine.dispose()
    default = run_cli("audit", "export", cwd=tmp_path)
    assert default.returncode == 0, default.stderr
    assert [r["subject"] for r in json.loads(default.stdout)] == ["new"]
    everything = run_cli("audit", "export", "--since", "all", cwd=tmp_path)
    assert [r["subject"] for r in json.loads(everything.stdout)] == ["old", "new"]


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation but `-` and `_` dropped."""
    out = set()
    for heading in re.findall(r"^#{1,6} (.+)$", markdown, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


def test_sarif_help_uri_points_at_a_readme_anchor_per_kind(git_repo: WorkTreeRepo) -> None:
    from bot.policy.schema import Policy

    anchors = _anchors((REPO_ROOT / "README.md").read_text())
    kinds = _rule_kinds(Policy)
    assert len(kinds) >= 6
    # the fields a kind cannot do without (an expression rule needs one to run)
    required = {"expression": ", over: files, match: \"file.path != ''\", message: m"}
    policy = "version: 1\nrules:\n" + "".join(
        f"  - {{id: r{i}, kind: {kind}, action: warn{required.get(kind, '')}}}\n"
        for i, kind in enumerate(kinds)
    )
    git_repo.commit(
        {".changegate.yml": policy, "compose.yaml": COMPOSE.format(image="nginx:1.25.3")}, "base"
    )
    git_repo.git("tag", "base")
    git_repo.commit({"compose.yaml": COMPOSE.format(image="nginx:latest")}, "head")
    proc = run_cli(
        "check", "--base", "base", "--head", "HEAD", "--format", "sarif", cwd=git_repo.path
    )
    rules = json.loads(proc.stdout)["runs"][0]["tool"]["driver"]["rules"]
    assert rules, proc.stdout
    for rule in rules:
        anchor = rule["helpUri"].split("#", 1)[1]
        assert anchor == rule["name"] and anchor in anchors, rule["helpUri"]
    from bot.report import help_uri

    for kind in kinds:
        assert help_uri(kind).split("#", 1)[1] in anchors, kind


def _rule_kinds(policy_model: type) -> list[str]:
    from typing import get_args

    from bot.rules.base import RuleBase

    found: list[str] = []

    def walk(tp: object) -> None:
        if isinstance(tp, type) and issubclass(tp, RuleBase) and "kind" in tp.model_fields:
            found.append(tp.kind_name())
        for arg in get_args(tp):
            walk(arg)

    walk(policy_model.model_fields["rules"].annotation)  # type: ignore[attr-defined]
    return sorted(set(found))


def test_serve_start_up_log_names_the_port_served_and_alembic_speaks_once(
    tmp_path: Path,
) -> None:
    port = closed_port()
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("CHANGEGATE_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Uvicorn running on" in line:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    records = [json.loads(line) for line in lines if line.startswith("{")]
    starting = next(r for r in records if r["msg"] == "changegate starting")
    assert starting["settings"]["public_url"] == f"http://127.0.0.1:{port}"
    alembic = [r["msg"] for r in records if r["logger"].startswith("alembic")]
    assert len(alembic) == len(set(alembic)), alembic
    assert any(m.startswith("Running upgrade") for m in alembic)
