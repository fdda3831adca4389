"""`env-drift`: a key production sets that no other environment sets, through `evaluate`."""

from __future__ import annotations

import json

from bot.change import Action, Decision, Finding
from bot.policy.evaluate import evaluate
from bot.policy.schema import load_policy_text
from bot.views.memory import MemoryView

from support import WorkTreeRepo, run_cli

POLICY = """\
version: 1
environments:
  production: {paths: ["deploy/production/**", "**/values-production.yaml"]}
  staging: {paths: ["deploy/staging/**", "**/values-staging.yaml"]}
rules:
  - {id: drift, kind: env-drift, action: block}
"""

PROD_VALUES = "charts/api/values-production.yaml"
STAGING_VALUES = "charts/api/values-staging.yaml"

VALUES = """\
replicaCount: 3
externalRedis:
  host: redis-{env}.internal
  port: 6379
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: api}}
spec:
  template:
    spec:
      containers:
        - name: api
          image: ghcr.io/acme/api:2.14.0
          env:
            - name: LOG_LEVEL
              value: info
{extra}"""

COMPOSE = """\
services:
  api:
    image: ghcr.io/acme/api:2.14.0
    environment:
{extra}"""


def findings(
    head: dict[str, str], base: dict[str, str] | None, policy: str = POLICY
) -> list[Finding]:
    verdict = evaluate(load_policy_text(policy, "p.yml"), MemoryView(head, base))
    return [f for f in verdict.findings if f.kind == "env-drift"]


def where(found: list[Finding]) -> list[tuple[str, int | None, str, Action, bool]]:
    return [(f.path, f.line, f.subject, f.action, f.preexisting) for f in found]


def test_helm_value_added_only_in_production_is_named_with_the_files_looked_in() -> None:
    base = {PROD_VALUES: VALUES.format(env="prod"), STAGING_VALUES: VALUES.format(env="staging")}
    head = {
        **base,
        PROD_VALUES: VALUES.format(env="prod") + "sessionStore:\n  redisDb: 5\n",
    }
    [finding] = findings(head, base)
    assert where([finding]) == [(PROD_VALUES, 6, "sessionStore.redisDb", Action.BLOCK, False)]
    assert finding.message == (
        "sessionStore.redisDb is set for production only: no file of staging sets it "
        f"(looked in {STAGING_VALUES}); set it in another environment too, so it runs "
        "somewhere before production"
    )


def test_a_key_staging_already_sets_is_not_drift() -> None:
    base = {PROD_VALUES: VALUES.format(env="prod"), STAGING_VALUES: VALUES.format(env="staging")}
    head = {**base, PROD_VALUES: VALUES.format(env="prod").replace("port: 6379", "port: 6380")}
    assert findings(head, base) == []


def test_keys_the_change_did_not_touch_are_not_reported() -> None:
    # production set `featureFlags.beta` long ago; this change only edits replicaCount
    old = VALUES.format(env="prod") + "featureFlags:\n  beta: true\n"
    base = {PROD_VALUES: old, STAGING_VALUES: VALUES.format(env="staging")}
    head = {**base, PROD_VALUES: old.replace("replicaCount: 3", "replicaCount: 4")}
    assert findings(head, base) == []
    # ... but a scan, or `scope: file`, judges every key of the file
    assert [f.subject for f in findings(head, None)] == ["featureFlags.beta"]
    file_scope = POLICY.replace("action: block}", "action: block, scope: file}")
    assert [f.subject for f in findings(head, base, file_scope)] == ["featureFlags.beta"]


def test_changing_the_value_of_a_production_only_key_is_drift() -> None:
    old = VALUES.format(env="prod") + "cache:\n  url: redis://shared.internal:6379/0\n"
    base = {PROD_VALUES: old, STAGING_VALUES: VALUES.format(env="staging")}
    head = {**base, PROD_VALUES: old.replace("/0", "/5")}
    assert where(findings(head, base)) == [(PROD_VALUES, 6, "cache.url", Action.BLOCK, False)]


def test_manifest_env_var_counts_as_set_by_another_environments_dotenv() -> None:
    base = {
        "deploy/production/api.yaml": DEPLOYMENT.format(extra=""),
        "deploy/staging/api.yaml": DEPLOYMENT.format(extra=""),
        "deploy/staging/.env": "SESSION_REDIS_URL=redis://redis-staging:6379\n",
    }
    extra = (
        "            - name: SESSION_REDIS_URL\n"
        "              value: redis://redis-prod:6379\n"
        "            - name: CACHE_TTL\n"
        '              value: "30"\n'
    )
    head = {**base, "deploy/production/api.yaml": DEPLOYMENT.format(extra=extra)}
    found = findings(head, base)
    assert where(found) == [("deploy/production/api.yaml", 15, "CACHE_TTL", Action.BLOCK, False)]
    assert "deploy/staging/.env" in found[0].message
    assert "deploy/staging/api.yaml" in found[0].message


def test_compose_environment_as_a_list_and_as_a_map() -> None:
    base = {
        "deploy/production/compose.yaml": COMPOSE.format(extra="      LOG_LEVEL: info\n"),
        "deploy/staging/compose.yaml": COMPOSE.format(
            extra="      - LOG_LEVEL=debug\n      - REDIS_URL=redis://redis:6379\n"
        ),
    }
    head = {
        **base,
        "deploy/production/compose.yaml": COMPOSE.format(
            extra="      LOG_LEVEL: info\n      REDIS_URL: redis://prod:6379\n      PAYMENTS_KEY: x\n"
        ),
    }
    assert where(findings(head, base)) == [
        ("deploy/production/compose.yaml", 7, "PAYMENTS_KEY", Action.BLOCK, False)
    ]
    # and the other way round: staging's list form is read, production's list too
    flipped = {
        "deploy/production/compose.yaml": COMPOSE.format(extra="      - ONLY_PROD=1\n"),
        "deploy/staging/compose.yaml": COMPOSE.format(extra="      SHARED: 1\n"),
    }
    assert [f.subject for f in findings(flipped, None)] == ["ONLY_PROD"]


def test_dotenv_lines_and_a_file_shared_by_both_environments() -> None:
    policy = POLICY.replace(
        '"deploy/staging/**", ', '"deploy/staging/**", "deploy/common/**", '
    ).replace('"deploy/production/**", ', '"deploy/production/**", "deploy/common/**", ')
    base = {"deploy/common/.env": "SHARED=1\n", "deploy/staging/.env": "A=1\n"}
    head = {
        **base,
        "deploy/production/.env": "# production\nexport A=2\nB=3\n",
        "deploy/common/.env": "SHARED=1\nCOMMON=2\n",  # both environments set what it sets
    }
    found = findings(head, base, policy)
    assert where(found) == [("deploy/production/.env", 3, "B", Action.BLOCK, False)]
    assert "deploy/common/.env" in found[0].message


def test_an_unreadable_file_of_another_environment_fails_closed() -> None:
    base = {PROD_VALUES: VALUES.format(env="prod"), STAGING_VALUES: "a: [unclosed\n"}
    head = {**base, PROD_VALUES: VALUES.format(env="prod") + "newKey: 1\n"}
    verdict = evaluate(load_policy_text(POLICY, "p.yml"), MemoryView(head, base))
    assert verdict.decision is Decision.FAIL
    got = {(f.path, f.action, f.preexisting) for f in verdict.findings}
    assert (STAGING_VALUES, Action.BLOCK, False) in got
    staging = next(f for f in verdict.findings if f.path == STAGING_VALUES)
    assert staging.message.startswith("could not check: YAML syntax error")


def test_an_unparsable_production_file_fails_closed() -> None:
    base = {PROD_VALUES: VALUES.format(env="prod"), STAGING_VALUES: VALUES.format(env="staging")}
    head = {**base, PROD_VALUES: "a: [unclosed\n"}
    [finding] = findings(head, base)
    assert (finding.path, finding.action) == (PROD_VALUES, Action.BLOCK)
    assert finding.message.startswith("could not check:")


def test_no_other_environment_means_nothing_to_compare() -> None:
    policy = POLICY.replace(
        '  staging: {paths: ["deploy/staging/**", "**/values-staging.yaml"]}\n', ""
    )
    head = {PROD_VALUES: VALUES.format(env="prod") + "x: 1\n"}
    assert findings(head, {PROD_VALUES: VALUES.format(env="prod")}, policy) == []


def test_other_environment_without_files_is_said_so() -> None:
    base = {PROD_VALUES: VALUES.format(env="prod")}
    head = {PROD_VALUES: VALUES.format(env="prod") + "x: 1\n"}
    [finding] = findings(head, base)
    assert "staging has no configuration file at head" in finding.message


def test_changegate_check_cli_reports_env_drift(git_repo: WorkTreeRepo) -> None:
    git_repo.commit(
        {
            ".changegate.yml": POLICY,
            PROD_VALUES: VALUES.format(env="prod"),
            STAGING_VALUES: VALUES.format(env="staging"),
        },
        "initial",
    )
    git_repo.git("tag", "base")
    git_repo.commit({PROD_VALUES: VALUES.format(env="prod") + "sessionStore:\n  redisDb: 5\n"})
    proc = run_cli(
        "check", "--repo", str(git_repo.path), "--base", "base", "--head", "HEAD",
        "--format", "json", cwd=git_repo.path,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert data["decision"] == "fail"
    assert [(f["kind"], f["path"], f["line"], f["subject"]) for f in data["findings"]] == [
        ("env-drift", PROD_VALUES, 6, "sessionStore.redisDb")
    ]
    assert STAGING_VALUES in data["findings"][0]["message"]
