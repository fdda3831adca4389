"""Datastore endpoints in the config files real projects write."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.formats.endpoints import Endpoint, find_endpoints
from bot.views.memory import MemoryView

Found = tuple[int, str, str, int]  # (line, kind, host, port)


def found(path: str, content: str | bytes) -> list[Found]:
    view = MemoryView({path: content})
    return [(e.line, e.kind, e.host, e.port) for e in find_endpoints(view, path)]


def test_default_port_makes_bare_host_and_host_port_equal() -> None:
    assert found("a.env", "REDIS_URL=redis://cache\n") == found("b.env", "REDIS_ADDR=cache:6379\n")


HELM_VALUES = """\
# values-production.yaml
image:
  repository: ghcr.io/acme/api
  tag: "2.14.0"
redis:
  enabled: false
externalRedis:
  host: shared-redis.internal
  port: 6379
  database: 0
postgresql:
  enabled: false
  image:
    repository: bitnami/postgresql
    tag: "15.4.0"
externalDatabase:
  host: pg-main.internal
  port: 5432
  database: api_production
  user: api
ingress:
  enabled: true
  hostname: api.acme.com
elasticsearch:
  hosts: ["es1.internal", "https://es2.internal"]
memcached:
  servers:
    - mc1.internal:11211
    - mc2.internal
"""

K8S_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  template:
    spec:
      containers:
        - name: worker
          image: ghcr.io/acme/worker:1.4.2
          env:
            - name: REDIS_HOST
              value: shared-redis.internal
            - name: REDIS_PORT
              value: "6380"
            - name: REDIS_PASSWORD
              valueFrom:
                secretKeyRef: {name: redis, key: password}
            - name: DATABASE_URL
              value: postgresql://api@pg-main.internal:5432/api_demo
            - name: CACHE_URL
              value: "redis://{{ .Values.cache.host }}:6379"
            - name: SENTRY_DSN
              value: https://abc@sentry.io/1
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: api-config
data:
  MONGO_HOST: mongo.internal
  KAFKA_BROKERS: "k1.internal:9092,k2.internal:9092"
  application.properties: |
    spring.redis.host=props-redis.internal
    spring.redis.port=6390
    spring.datasource.url=jdbc:mysql://mysql.internal/app
"""

DOTENV = """\
# demo environment
export REDIS_HOST=Shared-Redis.internal
REDIS_PORT=6379
REDIS_DB=3
DATABASE_URL="postgres://demo:pw@pg-main.internal:5432/api_demo"
# REDIS_URL=redis://commented-out.internal:6379
PGHOST=pg-replica.internal
PGPORT=5433
DB_CONNECTION=pgsql
DB_HOST=laravel-db.internal
ELASTICSEARCH_URL=https://es.internal:9243
SMTP_HOST=smtp.internal
APP_HOST=app.acme.com
"""

JSON_CONFIG = """\
{
  "redis": {
    "host": "json-redis.internal",
    "port": 6381
  },
  "db": "[fd00::7]:5432",
  "sentry": {"dsn": "https://key@sentry.io/2"},
  "api": {"host": "api.acme.com", "port": 443}
}
"""

INI_CONFIG = """\
[server]
host = 0.0.0.0
port = 8080

[redis]
host = ini-redis.internal
port = 6382

[database]
host = ini-db.internal
"""


@pytest.mark.parametrize(
    ("path", "content", "expected"),
    [
        (
            "deploy/production/values-production.yaml",
            HELM_VALUES,
            [
                (8, "redis", "shared-redis.internal", 6379),
                (17, "postgres", "pg-main.internal", 5432),
                (25, "elasticsearch", "es1.internal", 9200),
                (25, "elasticsearch", "es2.internal", 443),
                (28, "memcached", "mc1.internal", 11211),
                (29, "memcached", "mc2.internal", 11211),
            ],
        ),
        (
            "deploy/demo/worker.yaml",
            K8S_DEPLOYMENT,
            [
                (13, "redis", "shared-redis.internal", 6380),
                (20, "postgres", "pg-main.internal", 5432),
                (31, "mongodb", "mongo.internal", 27017),
                (32, "kafka", "k1.internal", 9092),
                (32, "kafka", "k2.internal", 9092),
                (34, "redis", "props-redis.internal", 6390),
                (36, "mysql", "mysql.internal", 3306),
            ],
        ),
        (
            "deploy/demo/.env",
            DOTENV,
            [
                (2, "redis", "shared-redis.internal", 6379),
                (5, "postgres", "pg-main.internal", 5432),
                (7, "postgres", "pg-replica.internal", 5433),
                (10, "postgres", "laravel-db.internal", 5432),
                (11, "elasticsearch", "es.internal", 9243),
            ],
        ),
        (
            "config/production.json",
            JSON_CONFIG,
            [(3, "redis", "json-redis.internal", 6381), (6, "postgres", "fd00::7", 5432)],
        ),
        # a generic "database" section with no port and no engine names no instance
        ("config/app.ini", INI_CONFIG, [(6, "redis", "ini-redis.internal", 6382)]),
        (
            "config/settings.toml",
            '[cache]\nhost = "toml-cache.internal"\nport = 6379\n',
            [(2, "redis", "toml-cache.internal", 6379)],
        ),
        (
            "config/database.yml",
            "production:\n  adapter: postgresql\n  host: rails-db.internal\n  database: app\n",
            [(3, "postgres", "rails-db.internal", 5432)],
        ),
        (
            "helmfile.yaml",
            "releases:\n  - name: api\n    set:\n      - name: externalRedis.host\n"
            "        value: set-redis.internal\n",
            [(5, "redis", "set-redis.internal", 6379)],
        ),
        (
            "docker-compose.production.yml",
            "services:\n  api:\n    image: ghcr.io/acme/api:2.1.0\n    environment:\n"
            "      - REDIS_HOST=compose-redis.internal\n      - REDIS_PORT=6390\n"
            "      - DEBUG=0\n  redis:\n    image: redis:7.2\n    ports: ['6379:6379']\n",
            [(5, "redis", "compose-redis.internal", 6390)],
        ),
        (
            "config/application-production.yml",
            "spring:\n  data:\n    redis:\n      host: spring-redis.internal\n"
            "  datasource:\n    url: jdbc:postgresql://spring-db.internal:5432/app\n",
            [
                (4, "redis", "spring-redis.internal", 6379),
                (6, "postgres", "spring-db.internal", 5432),
            ],
        ),
        (
            "values.yaml",
            "global:\n  psql:\n    host: gitlab-db.internal\n    port: 5433\n"
            "  redis:\n    host: gitlab-redis.internal\n    auth:\n      enabled: true\n",
            [
                (3, "postgres", "gitlab-db.internal", 5433),
                (6, "redis", "gitlab-redis.internal", 6379),
            ],
        ),
        (
            "deploy/values.yaml",
            "cache:\n  redis: cache-redis.internal:6379\n  ttl: 300\n",
            [(2, "redis", "cache-redis.internal", 6379)],
        ),
    ],
)
def test_find_endpoints(path: str, content: str, expected: list[Found]) -> None:
    assert found(path, content) == expected


@pytest.mark.parametrize(
    ("path", "content"),
    [
        # templates
        ("values.yaml", "redis:\n  host: '{{ .Values.global.redisHost }}'\n  port: 6379\n"),
        ("app.env", "REDIS_HOST=${REDIS_HOST}\nREDIS_PORT=6379\n"),
        ("app.env", "REDIS_URL=redis://${REDIS_HOST}:${REDIS_PORT}/0\n"),
        # not datastores, or not endpoints
        ("values.yaml", "ingress:\n  hosts:\n    - host: api.acme.com\n"),
        ("values.yaml", "redis:\n  image:\n    repository: bitnami/redis\n    tag: 7.2.4\n"),
        ("values.yaml", "redis:\n  image: redis:7\n"),
        ("values.yaml", "redis:\n  metrics:\n    serviceMonitor:\n      host: prom.internal\n"),
        ("values.yaml", "database: api_production\ncache: redis\nredis:\n  db: 2\n"),
        ("values.yaml", "redis:\n  host: ''\n  port: 6379\n"),
        ("values.yaml", "redis:\n  host: ~\n"),
        ("compose.yaml", "services:\n  redis:\n    image: redis:7.2\n    ports: ['6379:6379']\n"),
        ("app.env", "# REDIS_URL=redis://old.internal:6379\n"),
        # a Helm template that is not YAML yet
        (
            "templates/deploy.yaml",
            "env:\n{{- if .Values.redis.enabled }}\n  - name: REDIS_HOST\n"
            '    value: {{ include "app.redis" . }}\n{{- end }}\n',
        ),
    ],
)
def test_not_endpoints(path: str, content: str) -> None:
    assert found(path, content) == []


def test_broken_yaml_falls_back_to_text() -> None:
    content = "redis: [unclosed\nREDIS_URL: redis://fallback.internal:6379\n"
    assert found("values.yaml", content) == [(2, "redis", "fallback.internal", 6379)]


def test_endpoint_record() -> None:
    view = MemoryView({"deploy/demo/.env": "REDIS_URL=redis://:pw@[fd00::1]:6380/1\n"})
    [endpoint] = find_endpoints(view, "deploy/demo/.env")
    assert endpoint == Endpoint(
        "deploy/demo/.env", 1, "redis", "fd00::1", 6380, "REDIS_URL=redis://:pw@[fd00::1]:6380/1"
    )
    assert endpoint.address == "[fd00::1]:6380"


def test_binary_files_are_skipped() -> None:
    blob = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01\x02redis://x.internal:6379\x00\x00"
    assert found("deploy/demo/blob.env", blob) == []
    assert found("deploy/demo/blob.env", b"\xff\xfe REDIS_HOST=x.internal") == []  # UTF-16


def test_stray_bytes_are_read_past() -> None:
    """A NUL or a bad byte in a text file is read as U+FFFD; the rest is still judged."""
    content = b"# caf\xe9\x00\nREDIS_URL=redis://x.internal:6379\n"
    assert found("deploy/demo/app.env", content) == [(2, "redis", "x.internal", 6379)]


def test_absent_file() -> None:
    assert find_endpoints(MemoryView({}), "nope.yaml") == []


def test_alias_bomb_is_harmless() -> None:
    bomb = "a: &a [redis://x.internal:1, redis://x.internal:1]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    assert found("values.yaml", bomb) == [(1, "redis", "x.internal", 1)]


_CONFIG_ALPHABET = st.sampled_from(
    list("abcdeHOSTPR_=:/@[]{}$,.#\"' \n\t-0123456789")
    + ["redis://", "REDIS_HOST=", "host: ", "port: ", "- name: ", "value: ", "{{ ", "[::1]"]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_CONFIG_ALPHABET, max_size=60).map("".join),
    st.sampled_from(["x.yaml", "x.env", "x.json"]),
)
def test_never_crashes(text: str, path: str) -> None:
    for endpoint in find_endpoints(MemoryView({path: text}), path):
        assert 0 < endpoint.port < 65536
        assert endpoint.host == endpoint.host.lower()
        assert endpoint.line >= 1
