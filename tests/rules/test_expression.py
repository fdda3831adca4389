"""`expression`: rules written in CEL over the fact model, through `evaluate` and the CLI."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from bot.change import Action, Decision, Finding
from bot.policy.evaluate import evaluate
from bot.policy.schema import PolicyError, load_policy_text
from bot.rules import expression
from bot.views.memory import MemoryView

from support import WorkTreeRepo, run_cli

HEADER = """\
version: 1
environments:
  production: {paths: ["deploy/production/**"]}
  staging: {paths: ["deploy/staging/**"]}
rules:
"""

#: CloudCannon's lesson: production images pinned by digest, from the release registry.
RELEASE_IMAGES = """\
  - id: release-images
    kind: expression
    action: block
    over: images
    match: >
      image.environment == 'production' &&
      (image.digest == '' || image.registry != 'registry.acme.io')
    message: "{image.reference} in {image.file}: production images come from registry.acme.io, pinned by digest"
"""

DIGEST = "sha256:" + "a" * 64


def deployment(image: str) -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: api}}
        spec:
          template:
            spec:
              containers:
                - name: api
                  image: {image}
        """
    )


def findings(
    rules: str,
    head: dict[str, str],
    base: dict[str, str] | None = None,
    **change: object,
) -> list[Finding]:
    policy = load_policy_text(HEADER + rules, "p.yml")
    view = MemoryView(head, base if base is not None else {}, **change)  # type: ignore[arg-type]
    return [f for f in evaluate(policy, view).findings if f.kind == "expression"]


def test_production_images_need_the_release_registry_and_a_digest() -> None:
    head = {
        "deploy/production/a.yaml": deployment("registry.acme.io/api:1.2.0"),
        "deploy/production/b.yaml": deployment(f"docker.io/acme/api@{DIGEST}"),
        "deploy/production/c.yaml": deployment(f"registry.acme.io/api@{DIGEST}"),
        "deploy/staging/a.yaml": deployment("registry.acme.io/api:1.2.0"),
    }
    found = findings(RELEASE_IMAGES, head)
    assert [(f.path, f.line, f.action, f.subject) for f in found] == [
        ("deploy/production/a.yaml", 9, Action.BLOCK, "registry.acme.io/api:1.2.0"),
        ("deploy/production/b.yaml", 9, Action.BLOCK, f"docker.io/acme/api@{DIGEST}"),
    ]
    assert found[0].message == (
        "registry.acme.io/api:1.2.0 in deploy/production/a.yaml: production images come "
        "from registry.acme.io, pinned by digest"
    )


def test_a_finding_decides_like_any_other_rule() -> None:
    policy = load_policy_text(HEADER + RELEASE_IMAGES, "p.yml")
    bad = MemoryView({"deploy/production/a.yaml": deployment("nginx:1.25")}, {})
    good = MemoryView({"deploy/production/a.yaml": deployment(f"registry.acme.io/x@{DIGEST}")}, {})
    assert evaluate(policy, bad).decision is Decision.FAIL
    assert evaluate(policy, good).decision is Decision.PASS


def test_an_untouched_line_is_reported_as_already_there() -> None:
    before = deployment("nginx:1.25") + "  replicas: 1\n"
    after = deployment("nginx:1.25") + "  replicas: 2\n"
    found = findings(
        RELEASE_IMAGES, {"deploy/production/a.yaml": after}, {"deploy/production/a.yaml": before}
    )
    assert [(f.action, f.preexisting) for f in found] == [(Action.WARN, True)]


def test_endpoints_dependencies_and_files() -> None:
    rules = """\
  - id: prod-redis
    kind: expression
    action: warn
    over: endpoints
    match: endpoint.kind == 'redis' && !endpoint.host.endsWith('.internal')
    message: "{endpoint.host}:{endpoint.port} ({endpoint.environment})"
  - id: no-django-5
    kind: expression
    action: block
    over: dependencies
    match: dependency.name == 'django' && dependency.major_upgrade
    message: "django {dependency.from} -> {dependency.to} in {dependency.file}"
  - id: deleted-prod
    kind: expression
    action: warn
    over: files
    match: file.status == 'deleted' && file.environment == 'production'
    message: "{file.path} deleted by {change.author}"
"""
    base = {
        "requirements.txt": "django==4.2.7\nrequests==2.31.0\n",
        "deploy/production/old.yaml": "a: 1\n",
    }
    head = {
        "requirements.txt": "django==5.0.1\nrequests==2.32.0\nflask==3.0.0\n",
        "deploy/production/app.env": "REDIS_URL=redis://cache.example.com:6380/0\n",
    }
    found = findings(rules, head, base, author="bob")
    assert [(f.rule, f.path, f.line, f.subject, f.message) for f in found] == [
        (
            "prod-redis",
            "deploy/production/app.env",
            1,
            "redis://cache.example.com:6380",
            "cache.example.com:6380 (production)",
        ),
        (
            "deleted-prod",
            "deploy/production/old.yaml",
            None,
            "deploy/production/old.yaml",
            "deploy/production/old.yaml deleted by bob",
        ),
        (
            "no-django-5",
            "requirements.txt",
            1,
            "django 4.2.7 -> 5.0.1",
            "django 4.2.7 -> 5.0.1 in requirements.txt",
        ),
    ]


def test_the_change_and_other_collections_are_readable() -> None:
    rules = """\
  - id: hotfix-images
    kind: expression
    action: require-approval
    approvers: sre
    over: images
    match: >
      'hotfix' in change.labels && change.target_branch.startsWith('release/') &&
      !images.exists(i, i.environment == 'staging' && i.reference == image.reference)
    message: "{image.reference}: not tried in staging ({change.title})"
"""
    policy = HEADER.replace("rules:\n", "groups: {sre: {github: [carol]}}\nrules:\n")
    head = {
        "deploy/production/a.yaml": deployment("acme/api:2.0.0"),
        "deploy/production/b.yaml": deployment("acme/web:2.0.0"),
        "deploy/staging/b.yaml": deployment("acme/web:2.0.0"),
    }
    view = MemoryView(
        head, {}, labels=("hotfix",), base_ref="release/2", title="Hotfix", forge="github"
    )
    verdict = evaluate(load_policy_text(policy + rules, "p.yml"), view)
    assert [(f.path, f.message) for f in verdict.findings] == [
        ("deploy/production/a.yaml", "acme/api:2.0.0: not tried in staging (Hotfix)")
    ]
    assert verdict.decision is Decision.APPROVAL_REQUIRED


def test_an_evaluation_error_fails_closed() -> None:
    # labels are unknown on a push or a local check: `in` on null is an error, not a pass
    rules = """\
  - id: needs-label
    kind: expression
    action: block
    over: images
    match: "!('reviewed' in change.labels)"
    message: "{image.reference} unreviewed"
"""
    found = findings(rules, {"deploy/production/a.yaml": deployment("acme/api:1.0.0")})
    assert [
        (f.action, f.message.startswith("could not check: evaluation failed")) for f in found
    ] == [(Action.BLOCK, True)]


def test_unreadable_files_fail_closed() -> None:
    found = findings(RELEASE_IMAGES, {"deploy/production/a.yaml": "a: [unclosed\n"})
    assert [(f.path, f.action, f.message.startswith("could not check")) for f in found] == [
        ("deploy/production/a.yaml", Action.BLOCK, True)
    ]


def test_matches_are_capped_and_the_rest_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(expression, "MAX_MATCHES", 2)
    head = {f"deploy/production/{n}.yaml": deployment(f"acme/app{n}:1.0.0") for n in range(5)}
    found = findings(RELEASE_IMAGES, head)
    assert len(found) == 3
    assert found[-1].message == "rule release-images: 3 more matches not shown"
    assert all(f.action is Action.BLOCK for f in found)


def test_the_time_budget_stops_evaluation_and_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(expression, "BUDGET_SECONDS", -1.0)
    found = findings(RELEASE_IMAGES, {"deploy/production/a.yaml": deployment("acme/a:1.0.0")})
    assert len(found) == 1
    assert found[0].action is Action.BLOCK
    assert "stopped after -1 s: 0 of 1 images judged" in found[0].message


def problems(rule: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_policy_text(HEADER + rule, "p.yml")
    return [str(p) for p in caught.value.problems]


def rule_with(match: str, over: str = "images", message: str = "x") -> str:
    return (
        f"  - id: r\n    kind: expression\n    action: warn\n    over: {over}\n"
        f"    match: {match}\n    message: {json.dumps(message)}\n"
    )


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ("image.tag == 'latest' &&", "p.yml:10:36: rules.0.match: CEL syntax error"),
        ("image.tga == 'latest'", "p.yml:10:18: rules.0.match: no field `tga` on image"),
        ("imag.tag == 'latest'", "p.yml:10:12: rules.0.match: unknown name `imag`"),
        ("image.line + 'a' == 1", "p.yml:10:12: rules.0.match: CEL: No such overload"),
        ("image.tag", "p.yml:10:12: rules.0.match: the expression must be true or false"),
        (
            "images.all(a, images.exists(b, a == b))",
            "p.yml:10:39: rules.0.match: `exists` inside another macro",
        ),
        (
            "images.map(a, a.tag).exists(t, t == '')",
            "p.yml:10:39: rules.0.match: `exists` over the result of another macro",
        ),
        (
            "image.digest == '' || image.registyr == ''",
            "p.yml:10:40: rules.0.match: no field `registyr` on image",
        ),
    ],
)
def test_bad_expressions_are_file_line_column_errors(match: str, expected: str) -> None:
    assert problems(rule_with(match))[0].startswith(expected)


def test_an_error_in_a_folded_expression_points_into_it() -> None:
    rule = (
        "  - id: r\n    kind: expression\n    action: warn\n    over: images\n"
        "    match: >\n      image.environment == 'production' &&\n"
        "      image.regsitry != 'x'\n    message: m\n"
    )
    assert problems(rule)[0].startswith("p.yml:12:13: rules.0.match: no field `regsitry`")


def test_bad_messages_and_kinds_of_fact() -> None:
    assert problems(rule_with("image.tag == ''", message="{image.refrence}"))[0].startswith(
        "p.yml:11:14: rules.0.message: `{image.refrence}`: image has reference"
    )
    assert problems(rule_with("image.tag == ''", message="{endpoint.host}"))[0].startswith(
        "p.yml:11:14: rules.0.message: `{endpoint.host}`: a message over images"
    )
    assert "over" in problems(rule_with("image.tag == ''", over="pods"))[0]


def test_changegate_policy_validate_reports_the_column(tmp_path: Path) -> None:
    (tmp_path / "policy.yml").write_text(HEADER + rule_with("image.tag ==  && true"))
    proc = run_cli("policy", "validate", "policy.yml", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("policy.yml:10:26: rules.0.match: CEL syntax error"), proc.stderr


def test_changegate_check_shows_expression_findings(git_repo: WorkTreeRepo) -> None:
    git_repo.commit({".changegate.yml": HEADER + RELEASE_IMAGES})
    base = git_repo.git("rev-parse", "HEAD")
    head = git_repo.commit({"deploy/production/api.yaml": deployment("nginx:1.25")})
    proc = run_cli("check", "--base", base, "--head", head, "--format", "json", cwd=git_repo.path)
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    assert out["decision"] == "fail"
    assert [(f["rule"], f["kind"], f["path"], f["line"]) for f in out["findings"]] == [
        ("release-images", "expression", "deploy/production/api.yaml", 9)
    ]


LABELLED = """\
  - id: hotfix-images
    kind: expression
    action: block
    over: images
    match: "'hotfix' in change.labels && !change.draft"
    message: "{image.reference}: a hotfix image, labels {change.labels}"
"""


def test_changegate_check_takes_labels_and_draft(git_repo: WorkTreeRepo) -> None:
    git_repo.commit({".changegate.yml": HEADER + LABELLED})
    base = git_repo.git("rev-parse", "HEAD")
    head = git_repo.commit({"deploy/production/api.yaml": deployment("acme/api:1.0.0")})

    def check(*flags: str) -> Any:
        proc = run_cli(
            "check", "--base", base, "--head", head, "--format", "json", *flags, cwd=git_repo.path
        )
        assert proc.returncode in (0, 1), proc.stderr
        return json.loads(proc.stdout)

    hotfix = check("--label", "hotfix", "--label", "db", "--no-draft")
    assert [f["message"] for f in hotfix["findings"]] == [
        "acme/api:1.0.0: a hotfix image, labels hotfix, db"
    ]
    assert check("--label", "docs", "--no-draft")["decision"] == "pass"
    assert check("--label", "hotfix", "--draft")["decision"] == "pass"
    # without the flags the labels are unknown: the expression cannot be evaluated, and blocks
    unknown = check()
    assert unknown["decision"] == "fail"
    assert "evaluation failed" in unknown["findings"][0]["message"]
