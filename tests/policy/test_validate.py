"""`changegate policy validate` as a user runs it (a subprocess): every mistake at its
FILE:LINE:COL, written as the user wrote it, with a "did you mean" for near misses;
warnings do not fail the command."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from support import REPO_ROOT


def validate(path: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "policy", "validate", str(path)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yml"
    path.write_text(textwrap.dedent(text))
    return path


def test_mistakes_are_named_as_written_with_did_you_mean(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        r"""
        version: 1
        environments:
          production: {paths: ["deploy/[prod/**"]}
        rules:
          - id: playbook
            kind: migration-playbok
            action: block
          - id: other
            kind: migration-playbook
            action: block
            optons: {}
            options: {link_pattern: 'docs/\S+\.md|(a)\1', link_patern: x}
        """,
    )
    proc = validate(path)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert lines[0] == (
        f"{path}:4:23: environments.production.paths: bad glob `deploy/[prod/**`: the `[` at "
        "character 8 is never closed (write `\\[` for a literal bracket)"
    )
    assert lines[1].startswith(
        f"{path}:7:11: unknown rule kind 'migration-playbok'; did you mean 'migration-playbook'?"
    )
    assert lines[2] == f"{path}:12:5: unknown key 'optons' in rules.1; did you mean 'options'?"
    assert lines[3].startswith(
        f"{path}:13:29: rules.1.options.link_pattern: bad regex /docs/\\S+\\.md|(a)\\1/: "
    )
    assert "no backreferences or lookaround" in lines[3]
    assert lines[4] == (
        f"{path}:13:51: unknown key 'link_patern' in rules.1.options; did you mean 'link_pattern'?"
    )


def test_a_directory_is_called_a_directory(tmp_path: Path) -> None:
    proc = validate(tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"changegate: {tmp_path}: is a directory, not a file"
    assert "no such file" in validate(tmp_path / "nope.yml").stderr


def test_a_group_naming_people_on_several_systems_unlinked_is_a_warning(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        version: 1
        groups:
          senior:
            github: [alice, carol, "@acme/leads"]
            slack: [U0ALICE, U0CAROL, S0LEADS]
          ops:
            slack: [U0OPS]
        people:
          - {name: carol, github: carol, slack: U0CAROL}
        """,
    )
    proc = validate(path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        f"{path}:3:3: warning: group 'senior' names people on github and slack without "
        "linking them under `people:` (github: alice; slack: U0ALICE); changegate cannot tell "
        "who is who across systems, so an approval from one of them does not count on a "
        "change by another"
    ]
    assert proc.stdout.strip() == f"{path}: ok (0 rules, 2 groups, 0 environments, 1 warning)"
