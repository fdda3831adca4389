"""`changegate policy test FILE`: admins test their policy like code (`opa test`,
`conftest verify`).

A test file names the policy (relative to itself) and lists cases: the files before and
after, the change's description, title, author, labels, target branch and draft flag,
approvals given, and the expected decision and findings. Each case is evaluated with the
same `evaluate` the server runs; any mismatch is shown as a diff.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import Field, ValidationError

from bot.change import Approval, Finding
from bot.policy.evaluate import evaluate
from bot.policy.schema import Policy, PolicyError, PolicyProblem, load_policy_file
from bot.rules.strict import StrictModel
from bot.views.memory import MemoryView


class ExpectedFinding(StrictModel):
    rule: str
    path: str
    line: int | None = Field(default=None, description="Omit to accept any line.")
    action: Literal["block", "require-approval", "warn"] | None = None


class Expect(StrictModel):
    decision: Literal["pass", "fail", "approval_required"]
    findings: list[ExpectedFinding] | None = Field(
        default=None, description="Exactly these findings (omit to check the decision only)."
    )


class Case(StrictModel):
    name: str
    before: dict[str, str | None] = Field(default_factory=dict)
    after: dict[str, str | None] = Field(
        default_factory=dict, description="Files at head; null deletes a file of `before`."
    )
    title: str = ""
    description: str = ""
    author: str | None = "someone"
    forge: Literal["github", "gitlab"] = "github"
    labels: list[str] | None = None
    target_branch: str | None = None
    draft: bool | None = None
    approvals: list[Annotated[str, Field(pattern=r"^(github|gitlab|slack):.+$")]] = Field(
        default_factory=list, description="`system:user` of each approval of the head."
    )
    expect: Expect


class TestFile(StrictModel):
    policy: str = Field(description="The policy file, relative to this file.")
    cases: list[Case] = Field(min_length=1)


@dataclass(frozen=True)
class CaseResult:
    name: str
    diff: list[str]  # empty: the case passed

    @property
    def passed(self) -> bool:
        return not self.diff


def load_tests(path: Path) -> TestFile:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return TestFile.model_validate(data)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PolicyError([PolicyProblem(str(path), 1, 1, f"cannot read tests: {exc}")]) from None
    except ValidationError as exc:
        problems = [
            PolicyProblem(str(path), 1, 1, f"{'.'.join(map(str, e['loc']))}: {e['msg']}")
            for e in exc.errors()
        ]
        raise PolicyError(problems) from None


def run_tests(path: Path) -> list[CaseResult]:
    tests = load_tests(path)
    policy = load_policy_file(path.parent / tests.policy)
    return [run_case(policy, case) for case in tests.cases]


def run_case(policy: Policy, case: Case) -> CaseResult:
    base = {p: c for p, c in case.before.items() if c is not None}
    head = dict(base)
    for p, c in case.after.items():
        if c is None:
            head.pop(p, None)
        else:
            head[p] = c
    view = MemoryView(
        head,
        base,
        description=case.description,
        title=case.title,
        author=case.author,
        forge=case.forge,
        base_ref=case.target_branch,
        labels=tuple(case.labels) if case.labels is not None else None,
        draft=case.draft,
    )
    approvals = [
        Approval(system=system, user=user, sha="head")
        for system, user in (a.split(":", 1) for a in case.approvals)
    ]
    verdict = evaluate(policy, view, approvals)
    want = [f"decision: {case.expect.decision}"]
    got = [f"decision: {verdict.decision}"]
    if case.expect.findings is not None:
        actual = list(verdict.findings)
        want += _expected_lines(case.expect.findings, actual)
        got += sorted(_line(f) for f in actual)
    diff = list(difflib.unified_diff(want, got, "expected", "actual", lineterm="", n=99))
    return CaseResult(case.name, diff)


def _line(f: Finding) -> str:
    where = f"{f.path}:{f.line}" if f.line else f.path
    return f"finding: {f.rule} {where} {f.action}"


def _expected_lines(expected: list[ExpectedFinding], actual: list[Finding]) -> list[str]:
    """Expected findings as lines; an omitted line or action takes the actual one of the
    same rule and path, so that only what was stated is compared."""
    unused = list(actual)
    out = []
    for e in expected:
        match = next(
            (
                f
                for f in unused
                if f.rule == e.rule
                and f.path == e.path
                and (e.line is None or f.line == e.line)
                and (e.action is None or str(f.action) == e.action)
            ),
            None,
        )
        if match is not None:
            unused.remove(match)
            out.append(_line(match))
        else:
            where = f"{e.path}:{e.line}" if e.line else e.path
            out.append(f"finding: {e.rule} {where} {e.action or '?'}")
    return sorted(out)


def render(path: Path, results: list[CaseResult]) -> str:
    lines = []
    for r in results:
        lines.append(f"{'ok  ' if r.passed else 'FAIL'} {r.name}")
        lines += [f"    {d}" for d in r.diff]
    failed = sum(not r.passed for r in results)
    lines.append(f"{path}: {len(results) - failed} passed, {failed} failed")
    return "\n".join(lines)
