"""`shared-resource`: one datastore instance used by two environments."""

from __future__ import annotations

import pytest

from bot.change import Action, Decision, Finding
from bot.policy.evaluate import evaluate
from bot.policy.schema import load_policy_text
from bot.rules.base import RuleContext, compile_globs
from bot.rules.shared_resource import SharedResourceOptions, SharedResourceRule
from bot.views.memory import MemoryView

ENVIRONMENTS = {
    "production": compile_globs(["deploy/production/**", "**/values-production.yaml"]),
    "demo": compile_globs(["deploy/demo/**", "**/values-demo.yaml"]),
    "staging": compile_globs(["deploy/staging/**", "**/values-staging.yaml"]),
}

RULE = SharedResourceRule(id="shared-datastores", action=Action.BLOCK)


def values(redis: str, postgres: str, *, redis_db: int = 0, database: str = "api") -> str:
    """A Helm values file the way charts using bitnami subcharts write one."""
    return f"""\
replicaCount: 3
image:
  repository: ghcr.io/acme/api
  tag: "2.14.0"
redis:
  enabled: false
externalRedis:
  host: {redis}
  port: 6379
  database: {redis_db}
postgresql:
  enabled: false
externalDatabase:
  host: {postgres}
  port: 5432
  database: {database}
  user: api
"""


PROD = "charts/api/values-production.yaml"
DEMO = "charts/api/values-demo.yaml"


def check(
    head: dict[str, str], base: dict[str, str] | None = None, rule: SharedResourceRule = RULE
) -> list[Finding]:
    ctx = RuleContext(view=MemoryView(head, base), environments=ENVIRONMENTS)
    return sorted(rule.check(ctx))


def where(findings: list[Finding]) -> list[tuple[str, int | None, str]]:
    return [(f.path, f.line, f.subject) for f in findings]


@pytest.mark.parametrize(
    ("prod", "demo", "expected"),
    [
        # the outage: one Redis, different database numbers; the Postgres is separate
        (
            values("shared-redis.internal", "pg-prod.internal", redis_db=0),
            values("shared-redis.internal", "pg-demo.internal", redis_db=5),
            [
                (DEMO, 8, "redis://shared-redis.internal:6379"),
                (PROD, 8, "redis://shared-redis.internal:6379"),
            ],
        ),
        # one Postgres server, different database names
        (
            values("redis-prod.internal", "pg-main.internal", database="api_production"),
            values("redis-demo.internal", "pg-main.internal", database="api_demo"),
            [
                (DEMO, 14, "postgres://pg-main.internal:5432"),
                (PROD, 14, "postgres://pg-main.internal:5432"),
            ],
        ),
        # each environment its own instances
        (
            values("redis-prod.internal", "pg-prod.internal"),
            values("redis-demo.internal", "pg-demo.internal"),
            [],
        ),
        # host names are case-insensitive
        (
            values("Shared-Redis.Internal", "pg-prod.internal"),
            values("shared-redis.internal", "pg-demo.internal"),
            [
                (DEMO, 8, "redis://shared-redis.internal:6379"),
                (PROD, 8, "redis://shared-redis.internal:6379"),
            ],
        ),
        # loopback: every environment has its own
        (values("localhost", "127.0.0.1"), values("localhost", "127.0.0.1"), []),
        (values("127.0.0.2", "::1"), values("127.0.0.2", "::1"), []),
    ],
    ids=["redis-db-numbers", "postgres-db-names", "separate", "case", "localhost", "loopback"],
)
def test_helm_values_scan(prod: str, demo: str, expected: list[tuple[str, int, str]]) -> None:
    assert where(check({PROD: prod, DEMO: demo})) == expected


def test_message_names_the_other_environment_and_its_line() -> None:
    findings = check(
        {
            PROD: values("shared-redis.internal", "pg-prod.internal"),
            DEMO: values("shared-redis.internal", "pg-demo.internal", redis_db=3),
        }
    )
    by_path = {f.path: f for f in findings}
    assert by_path[PROD].message == (
        "production and demo both use redis at shared-redis.internal:6379 "
        f"(also in {DEMO}:8); give each environment its own instance"
    )
    assert by_path[DEMO].message.startswith("demo and production both use redis")
    assert by_path[PROD].rule == "shared-datastores"
    assert by_path[PROD].kind == "shared-resource"
    assert by_path[PROD].action is Action.BLOCK


@pytest.mark.parametrize(
    ("prod_path", "prod", "demo_path", "demo", "expected"),
    [
        # .env pair against a Helm value; the default port makes them one instance
        (
            "deploy/production/.env",
            "REDIS_HOST=cache.acme.internal\nREDIS_PORT=6379\nREDIS_DB=0\n",
            "deploy/demo/values.yaml",
            "redis:\n  url: redis://cache.acme.internal/4\n",
            [
                ("deploy/demo/values.yaml", 2, "redis://cache.acme.internal:6379"),
                ("deploy/production/.env", 1, "redis://cache.acme.internal:6379"),
            ],
        ),
        # redis://cache == cache:6379, named by a "cache" key in one file
        (
            "deploy/production/app.env",
            "CACHE_ADDR=cache:6379\n",
            "deploy/demo/app.env",
            "REDIS_URL=redis://cache\n",
            [
                ("deploy/demo/app.env", 1, "redis://cache:6379"),
                ("deploy/production/app.env", 1, "redis://cache:6379"),
            ],
        ),
        # a Deployment's env list against a JSON config
        (
            "deploy/production/worker.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n"
            "      containers:\n        - name: worker\n          env:\n"
            "            - name: DATABASE_URL\n"
            "              value: postgresql://worker@10.20.0.5:5432/jobs_production\n",
            "deploy/demo/config.json",
            '{\n  "database": {\n    "host": "10.20.0.5",\n    "port": 5432,\n'
            '    "name": "jobs_demo"\n  }\n}\n',
            [
                ("deploy/demo/config.json", 3, "postgres://10.20.0.5:5432"),
                ("deploy/production/worker.yaml", 10, "postgres://10.20.0.5:5432"),
            ],
        ),
        # IPv6 literal, same address written two ways
        (
            "deploy/production/.env",
            "REDIS_URL=redis://[fd00:10::5]:6379/0\n",
            "deploy/demo/values.yaml",
            "redis:\n  host: 'fd00:10::5'\n",
            [
                ("deploy/demo/values.yaml", 2, "redis://[fd00:10::5]:6379"),
                ("deploy/production/.env", 1, "redis://[fd00:10::5]:6379"),
            ],
        ),
        # same host, another port: another instance
        (
            "deploy/production/.env",
            "REDIS_URL=redis://cache.acme.internal:6379\n",
            "deploy/demo/.env",
            "REDIS_URL=redis://cache.acme.internal:6380\n",
            [],
        ),
        # templates are not endpoints
        (
            "deploy/production/.env",
            "REDIS_URL=redis://${REDIS_HOST}:6379\n",
            "deploy/demo/values.yaml",
            "redis:\n  host: '{{ .Values.global.redisHost }}'\n",
            [],
        ),
    ],
)
def test_formats_across_environments(
    prod_path: str, prod: str, demo_path: str, demo: str, expected: list[tuple[str, int, str]]
) -> None:
    assert where(check({prod_path: prod, demo_path: demo})) == expected


def test_a_file_in_no_environment_is_ignored() -> None:
    head = {
        PROD: values("shared-redis.internal", "pg-prod.internal"),
        "docs/examples/values.yaml": values("shared-redis.internal", "pg-prod.internal"),
        "charts/api/values.yaml": values("shared-redis.internal", "pg-prod.internal"),
    }
    assert check(head) == []


def test_three_environments() -> None:
    url = "REDIS_URL=redis://shared-redis.internal:6379/{}\n"
    findings = check(
        {
            "deploy/production/.env": url.format(0),
            "deploy/demo/.env": url.format(1),
            "deploy/staging/.env": url.format(2),
        }
    )
    assert len(findings) == 3
    prod = next(f for f in findings if f.path == "deploy/production/.env")
    assert prod.message == (
        "production, demo and staging all use redis at shared-redis.internal:6379 "
        "(also in deploy/demo/.env:1, deploy/staging/.env:1); "
        "give each environment its own instance"
    )


def test_a_file_of_two_environments_shares_by_itself() -> None:
    envs = {
        "production": compile_globs(["deploy/production/**", "deploy/common/**"]),
        "demo": compile_globs(["deploy/demo/**", "deploy/common/**"]),
    }
    view = MemoryView({"deploy/common/.env": "REDIS_URL=redis://shared.internal\n"})
    [finding] = RULE.check(RuleContext(view=view, environments=envs))
    assert finding.message == (
        "production and demo both use redis at shared.internal:6379 "
        "(deploy/common/.env configures all of them); give each environment its own instance"
    )


def test_a_change_is_blamed_at_the_lines_it_introduces() -> None:
    base = {
        PROD: values("shared-redis.internal", "pg-prod.internal"),
        DEMO: values("redis-demo.internal", "pg-demo.internal"),
    }
    head = {**base, DEMO: values("shared-redis.internal", "pg-demo.internal")}
    [finding] = check(head, base)
    assert (finding.path, finding.line) == (DEMO, 8)
    assert f"also in {PROD}:8" in finding.message


def test_a_change_elsewhere_is_not_blamed() -> None:
    shared = {
        PROD: values("shared-redis.internal", "pg-prod.internal"),
        DEMO: values("shared-redis.internal", "pg-demo.internal"),
        "README.md": "hello",
    }
    assert check({**shared, "README.md": "hello again"}, shared) == []


def test_ignore_hosts_globs_and_short_names() -> None:
    head = {
        "deploy/production/.env": "REDIS_URL=redis://redis-master\nDATABASE_URL=postgres://db.svc.local/app\n",
        "deploy/demo/.env": "REDIS_URL=redis://redis-master\nDATABASE_URL=postgres://db.svc.local/app\n",
    }
    assert len(check(head)) == 4
    rule = SharedResourceRule(
        id="shared",
        action=Action.BLOCK,
        options=SharedResourceOptions(ignore_hosts=["*.svc.local"], ignore_short_hosts=True),
    )
    assert check(head, rule=rule) == []


def test_rule_paths_limit_what_is_read() -> None:
    rule = SharedResourceRule(id="shared", action=Action.WARN, paths=["**/*.yaml"])
    head = {
        "deploy/production/.env": "REDIS_URL=redis://shared.internal\n",
        "deploy/demo/.env": "REDIS_URL=redis://shared.internal\n",
    }
    assert check(head, rule=rule) == []
    assert len(check(head)) == 2


def test_no_environments_no_findings() -> None:
    view = MemoryView({"a/.env": "REDIS_URL=redis://x.internal\n"})
    assert RULE.check(RuleContext(view=view)) == []


def test_an_oversized_changed_file_is_a_finding_at_the_rules_action() -> None:
    class SmallView(MemoryView):
        MAX_FILE_BYTES = 64

    view = SmallView(
        {
            "deploy/demo/.env": "REDIS_URL=redis://x.internal\n" * 10,
            "deploy/demo/logo.png": b"\x89PNG\x00\x00",
        }
    )
    [finding] = RULE.check(RuleContext(view=view, environments=ENVIRONMENTS))
    assert (finding.path, finding.action) == ("deploy/demo/.env", RULE.action)
    assert "limit" in finding.message and "split it" in finding.message


def test_scan_through_the_policy() -> None:
    policy = load_policy_text(
        """\
version: 1
environments:
  production: {paths: ["deploy/production/**", "**/values-production.yaml"]}
  demo: {paths: ["deploy/demo/**", "**/values-demo.yaml"]}
rules:
  - {id: shared-datastores, kind: shared-resource, action: block}
""",
        "p.yml",
    )
    view = MemoryView(
        {
            PROD: values("shared-redis.internal", "pg-prod.internal"),
            DEMO: values("shared-redis.internal", "pg-demo.internal", redis_db=1),
        }
    )
    verdict = evaluate(policy, view)
    assert verdict.decision is Decision.FAIL
    assert [(f.path, f.line) for f in verdict.findings] == [(DEMO, 8), (PROD, 8)]


def test_thousands_of_files_outside_environments_are_not_read() -> None:
    class CountingView(MemoryView):
        reads: list[str] = []

        def read(self, path: str, rev: str = "head") -> bytes | None:
            self.reads.append(path)
            return super().read(path, rev)

    head = {
        f"src/pkg{i}/mod{j}.py": "REDIS_URL = 'redis://x.internal'\n"
        for i in range(100)
        for j in range(30)
    }
    head[PROD] = values("shared-redis.internal", "pg-prod.internal")
    head[DEMO] = values("shared-redis.internal", "pg-demo.internal")
    view = CountingView(head)
    findings = RULE.check(RuleContext(view=view, environments=ENVIRONMENTS))
    assert len(findings) == 2
    assert set(view.reads) == {PROD, DEMO}
