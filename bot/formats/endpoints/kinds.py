"""The vocabulary: which datastore a URL scheme, a key's words or a port name, and the
roles (host, url, port, engine) a key's last word gives its value."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

#: Kinds whose name says what the datastore is; GENERIC kinds only say "some datastore".
GENERIC_KINDS = frozenset({"database", "cache"})

DEFAULT_PORTS: dict[str, int] = {
    "redis": 6379,
    "postgres": 5432,
    "mysql": 3306,
    "mongodb": 27017,
    "memcached": 11211,
    "elasticsearch": 9200,
    "kafka": 9092,
    "amqp": 5672,
    "nats": 4222,
    "cassandra": 9042,
    "clickhouse": 9000,
    "mssql": 1433,
    "oracle": 1521,
    "etcd": 2379,
    "zookeeper": 2181,
    "couchdb": 5984,
    "influxdb": 8086,
    "neo4j": 7687,
}

#: URL scheme -> (kind, default port). `scheme+driver` falls back to `scheme`.
SCHEMES: dict[str, tuple[str, int]] = {
    "redis": ("redis", 6379),
    "rediss": ("redis", 6379),
    "redis+sentinel": ("redis", 26379),
    "valkey": ("redis", 6379),
    "valkeys": ("redis", 6379),
    "postgres": ("postgres", 5432),
    "postgresql": ("postgres", 5432),
    "pgsql": ("postgres", 5432),
    "postgis": ("postgres", 5432),
    "timescaledb": ("postgres", 5432),
    "mysql": ("mysql", 3306),
    "mysqlx": ("mysql", 33060),
    "mariadb": ("mysql", 3306),
    "mongodb": ("mongodb", 27017),
    "mongodb+srv": ("mongodb", 27017),
    "mongo": ("mongodb", 27017),
    "amqp": ("amqp", 5672),
    "amqps": ("amqp", 5671),
    "memcached": ("memcached", 11211),
    "memcache": ("memcached", 11211),
    "kafka": ("kafka", 9092),
    "nats": ("nats", 4222),
    "cassandra": ("cassandra", 9042),
    "clickhouse": ("clickhouse", 9000),
    "sqlserver": ("mssql", 1433),
    "mssql": ("mssql", 1433),
    "oracle": ("oracle", 1521),
    "etcd": ("etcd", 2379),
    "zookeeper": ("zookeeper", 2181),
    "couchdb": ("couchdb", 5984),
    "influxdb": ("influxdb", 8086),
    "neo4j": ("neo4j", 7687),
    "bolt": ("neo4j", 7687),
}

#: Plain web schemes: an endpoint only under a datastore-ish key (`ELASTICSEARCH_URL`).
WEB_SCHEMES: dict[str, int] = {"http": 80, "https": 443}

#: Words in key names that say which datastore a value points at.
WORD_KINDS: dict[str, str] = {
    "redis": "redis",
    "valkey": "redis",
    "keydb": "redis",
    "sentinel": "redis",
    "postgres": "postgres",
    "postgresql": "postgres",
    "pg": "postgres",
    "pgsql": "postgres",
    "psql": "postgres",
    "pgbouncer": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "mongo": "mongodb",
    "mongodb": "mongodb",
    "memcache": "memcached",
    "memcached": "memcached",
    "elasticsearch": "elasticsearch",
    "elastic": "elasticsearch",
    "opensearch": "elasticsearch",
    "es": "elasticsearch",
    "kafka": "kafka",
    "rabbit": "amqp",
    "rabbitmq": "amqp",
    "amqp": "amqp",
    "nats": "nats",
    "cassandra": "cassandra",
    "clickhouse": "clickhouse",
    "mssql": "mssql",
    "sqlserver": "mssql",
    "etcd": "etcd",
    "zookeeper": "zookeeper",
    "couchdb": "couchdb",
    "influxdb": "influxdb",
    "neo4j": "neo4j",
    "db": "database",
    "database": "database",
    "datastore": "database",
    "datasource": "database",
    "cache": "cache",
}

#: A nearer enclosing key with one of these names is another system (an exporter, an
#: ingress, a mail server), even inside a datastore's section.
STOP_WORDS = frozenset(
    {
        "ingress",
        "metrics",
        "exporter",
        "monitor",
        "servicemonitor",
        "dashboard",
        "ui",
        "smtp",
        "mail",
        "ldap",
        "oidc",
        "oauth",
        "sentry",
        "otel",
        "tracing",
        "jaeger",
        "webhook",
        "api",
        "proxy",
        "image",
        "registry",
    }
)

HOST_ROLES = frozenset(
    {
        "host",
        "hosts",
        "hostname",
        "server",
        "servers",
        "addr",
        "address",
        "addresses",
        "endpoint",
        "endpoints",
        "broker",
        "brokers",
        "node",
        "nodes",
        "seeds",
    }
)
URL_ROLES = frozenset({"url", "urls", "uri", "dsn"})
PORT_ROLES = frozenset({"port"})
#: Sibling keys whose value names the datastore (Rails `adapter`, Django `ENGINE`,
#: Laravel `DB_CONNECTION`).
ENGINE_ROLES = frozenset({"adapter", "engine", "driver", "dialect", "connection", "backend"})

#: Ports that identify a datastore when the key only says "database" or "cache".
WELL_KNOWN_PORTS: dict[int, str] = {
    6379: "redis",
    26379: "redis",
    5432: "postgres",
    3306: "mysql",
    27017: "mongodb",
    11211: "memcached",
    9200: "elasticsearch",
    9092: "kafka",
    5672: "amqp",
    5671: "amqp",
    1433: "mssql",
    9042: "cassandra",
}

NOT_HOSTS = frozenset({"true", "false", "null", "none", "nil", "yes", "no", "on", "off"})


_CAMEL_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
SPLIT_RE = re.compile(r"[^a-z0-9]+")


def words(key: str) -> list[str]:
    """`externalRedis.host` -> [external, redis, host]; `PGHOST` -> [pg, host]."""
    return list(words_of(key))


@functools.lru_cache(maxsize=4096)
def words_of(key: str) -> tuple[str, ...]:
    """`words()` as a tuple, cached: the same keys recur in every document of a change."""
    spaced = _CAMEL_RE.sub("_", key)
    out: list[str] = []
    for word in SPLIT_RE.split(spaced.lower()):
        if not word:
            continue
        compound = _COMPOUND_RE.fullmatch(word) if word not in _KNOWN_WORDS else None
        out.extend(compound.groups() if compound else (word,))
    return tuple(out)


_KNOWN_WORDS = frozenset({*WORD_KINDS, *HOST_ROLES, *URL_ROLES, *PORT_ROLES})
#: The last words of the keys a scope looks at; other keys can be dropped early.
SCOPE_ROLES = frozenset({*_KNOWN_WORDS, *ENGINE_ROLES})
#: `pghost`, `dbport`, `redishost`: a datastore word glued to a role.
_COMPOUND_RE = re.compile(
    "({})({})".format(
        "|".join(sorted(WORD_KINDS, key=len, reverse=True)),
        "|".join(sorted({*HOST_ROLES, *URL_ROLES, *PORT_ROLES}, key=len, reverse=True)),
    )
)


def kind_from_words(nearest_first: Iterable[str]) -> str | None:
    """The first specific datastore word before any stop word; else the first generic one."""
    generic = None
    for word in nearest_first:
        if word in STOP_WORDS:
            break
        kind = WORD_KINDS.get(word)
        if kind is None:
            continue
        if kind not in GENERIC_KINDS:
            return kind
        generic = generic or kind
    return generic


def kind_in_value(value: str) -> str | None:
    """`postgresql`, `django.db.backends.postgresql`, `pgsql` (Laravel) -> a kind."""
    for word in reversed(SPLIT_RE.split(value.lower())):
        kind = WORD_KINDS.get(word) or (SCHEMES.get(word) or (None, 0))[0]
        if kind and kind not in GENERIC_KINDS:
            return kind
    return None
