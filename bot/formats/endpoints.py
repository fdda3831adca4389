"""Datastore endpoints (Redis, Postgres, Kafka, ...) in any configuration file, with lines.

Three shapes cover real configuration:

* URLs with a datastore scheme (`redis://:pw@cache.internal:6379/0`, `jdbc:postgresql://...`,
  multi-host `mongodb://a,b/db`), found by a regex over the text of any file;
* host/port pairs under datastore-ish names: flat keys (`REDIS_HOST` + `REDIS_PORT` in a
  `.env`, a ConfigMap, a k8s `env:` list or a helmfile `set:` list; `spring.redis.host`)
  and nested ones (Helm `redis: {host, port}`, `externalRedis.host`);
* bare `host:port` values under such names (`REDIS_ADDR: cache:6379`, `kafka: [k1:9092]`).

A port that is not written is the scheme's or kind's default port. Templated values
(`{{ .Values.x }}`, `${VAR}`) are not endpoints. Nothing here knows about policies.
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from bot.change import FileView
from bot.formats import yamldoc
from bot.formats.helm import PLACEHOLDER_RE as HELM_PLACEHOLDER_RE
from bot.formats.yamldoc import MappingNode, Node, ScalarNode, SequenceNode

__all__ = [
    "DEFAULT_PORTS",
    "Endpoint",
    "endpoints_in_text",
    "find_endpoints",
    "parse_hostport",
    "parse_url",
]


@dataclass(frozen=True, order=True)
class Endpoint:
    """One reference to a datastore instance at a line of a file."""

    path: str
    line: int
    kind: str  # "redis" | "postgres" | "mysql" | ... | "database" / "cache" when unknown
    host: str  # lowercased; IPv6 without brackets
    port: int
    raw: str  # the source line, stripped

    @property
    def address(self) -> str:
        """`host:port`, with IPv6 hosts in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


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

_SCHEME_RE = re.compile(r"(?<![\w+.-])([A-Za-z][A-Za-z0-9+.-]*)://")
#: The authority after `scheme://`: up to a path, query, fragment, quote or space; Helm
#: `{{ ... }}` may contain spaces and is kept whole so that it can be recognised.
_AUTHORITY_RE = re.compile(r"(?:\{\{[^{}\n]{0,200}\}\}|[^\s/?#\"'`<>;\\|])*")
_HOSTNAME_RE = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?")
_HOSTPORT_RE = re.compile(
    r"(?:\[(?P<v6>[0-9a-fA-F:.]+(?:%[\w.-]+)?)\]|(?P<host>[A-Za-z0-9_.-]+))(?::(?P<port>\d{1,5}))?"
)
_TEMPLATE_MARKS = ("{", "}", "$", "%", "<", ">", "*", "(", ")")
#: What a Helm template action reads as (bot/formats/helm.py), host names lower-cased.
_HELM_ACTION_RE = re.compile(HELM_PLACEHOLDER_RE.pattern, re.I)
_KV_LINE_RE = re.compile(
    r"""^\s*(?:export\s+)?["']?(?P<key>[A-Za-z_][\w.\-]*)["']?\s*(?:=|:(?!//))\s*(?P<value>.*)$"""
)
_SECTION_RE = re.compile(r"^\s*\[+\s*(?P<name>[A-Za-z_][\w.\-\" ]*?)\s*\]+\s*$")
_CAMEL_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SPLIT_RE = re.compile(r"[^a-z0-9]+")
_YAML_SUFFIXES = (".yaml", ".yml", ".json")
_MAX_LINE = 4000  # longer lines are minified data, not hand-written configuration


# -- public API -----------------------------------------------------------------------


def find_endpoints(view: FileView, path: str) -> list[Endpoint]:
    """Every datastore endpoint in `path` at head; [] for absent or binary files."""
    text = view.text(path)
    if text is None:
        return []
    if path.lower().endswith(_YAML_SUFFIXES):
        doc = view.yaml(path)
        if doc.ok:
            out = _Collector(path, text)
            out.urls()
            for root in doc.documents:
                _yaml_document(out, root)
            return out.result()
    return endpoints_in_text(path, text)


def endpoints_in_text(path: str, text: str) -> list[Endpoint]:
    """Endpoints in a text file read line by line (`.env`, properties, INI, TOML, ...)."""
    out = _Collector(path, text)
    out.urls()
    _key_values(out, text.splitlines(), first_line=1)
    return out.result()


def parse_url(url: str, *, web_kind: str | None = None) -> list[tuple[str, str, int]] | None:
    """(kind, host, port) of each host of a datastore URL; None if it is not one.

    `web_kind` accepts http(s) URLs as that kind (for `ELASTICSEARCH_URL=https://...`).
    """
    match = _SCHEME_RE.search(url)
    if match is None:
        return None
    scheme = match.group(1).lower()
    kind_port = _scheme_kind(scheme)
    if kind_port is None:
        if web_kind is None or scheme not in WEB_SCHEMES:
            return None
        kind_port = (web_kind, WEB_SCHEMES[scheme])
    authority = _AUTHORITY_RE.match(url, match.end())
    return _authority_hosts(authority.group(0) if authority else "", *kind_port)


def parse_hostport(value: str, *, need_port: bool) -> tuple[str, int | None] | None:
    """`host`, `host:port` or `[v6]:port` as (lowercased host, port or None)."""
    value = value.strip()
    if _HELM_ACTION_RE.search(value):
        return None  # a Helm template action: whatever it renders is not known here
    if value.count(":") > 1 and "[" not in value:
        # a bare IPv6 address (`fd00::5`) cannot carry a port
        return None if need_port else _bare_ipv6(value)
    match = _HOSTPORT_RE.fullmatch(value)
    if match is None:
        return None
    port_text = match.group("port")
    if need_port and port_text is None:
        return None
    port = int(port_text) if port_text is not None else None
    if port is not None and not 0 < port < 65536:
        return None
    if match.group("v6") is not None:
        v6 = _bare_ipv6(match.group("v6"))
        return (v6[0], port) if v6 else None
    host = _clean_host(match.group("host"))
    return (host, port) if host is not None else None


# -- collection -----------------------------------------------------------------------


class _Collector:
    """Endpoints of one file, deduplicated by (line, host, port), specific kinds winning."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self._found: dict[tuple[int, str, int], Endpoint] = {}

    def add(self, line: int, kind: str, host: str, port: int) -> None:
        key = (line, host, port)
        known = self._found.get(key)
        if known is not None and (known.kind not in GENERIC_KINDS or kind in GENERIC_KINDS):
            return
        raw = self.lines[line - 1].strip() if 0 < line <= len(self.lines) else ""
        self._found[key] = Endpoint(self.path, line, kind, host, port, raw[:200])

    def urls(self) -> None:
        """Datastore URLs anywhere in the text, except on comment lines."""
        for number, line in enumerate(self.lines, start=1):
            if "://" not in line or _is_comment(line):
                continue
            for match in _SCHEME_RE.finditer(line):
                kind_port = _scheme_kind(match.group(1).lower())
                if kind_port is None:
                    continue
                authority = _AUTHORITY_RE.match(line, match.end())
                text = authority.group(0) if authority else ""
                for kind, host, port in _authority_hosts(text, *kind_port):
                    self.add(number, kind, host, port)

    def result(self) -> list[Endpoint]:
        return sorted(self._found.values())


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith(("#", "//", ";", "--"))


def _scheme_kind(scheme: str) -> tuple[str, int] | None:
    return SCHEMES.get(scheme) or SCHEMES.get(scheme.split("+", 1)[0])


def _authority_hosts(authority: str, kind: str, default_port: int) -> list[tuple[str, str, int]]:
    """Hosts of `[user[:password]@]host[:port][,host[:port]...]`; templated ones dropped."""
    hostinfo = authority.rsplit("@", 1)[-1]
    out = []
    for part in hostinfo.split(","):
        part = part.rstrip(").}")
        if part.endswith("]") and part.count("[") < part.count("]"):
            part = part[:-1]
        if not part or any(mark in part for mark in _TEMPLATE_MARKS):
            continue
        parsed = parse_hostport(part, need_port=False)
        if parsed is not None:
            out.append((kind, parsed[0], parsed[1] or default_port))
    return out


def _bare_ipv6(value: str) -> tuple[str, int | None] | None:
    try:
        return str(ipaddress.IPv6Address(value.lower())).lower(), None
    except ValueError:
        return None


def _clean_host(host: str) -> str | None:
    host = host.lower().rstrip(".")
    if not host or host in NOT_HOSTS or host.isdigit() or ".." in host:
        return None
    return host if _HOSTNAME_RE.fullmatch(host) else None


# -- key names --------------------------------------------------------------------------


def words(key: str) -> list[str]:
    """`externalRedis.host` -> [external, redis, host]; `PGHOST` -> [pg, host]."""
    return list(_words(key))


@functools.lru_cache(maxsize=4096)
def _words(key: str) -> tuple[str, ...]:
    spaced = _CAMEL_RE.sub("_", key)
    out: list[str] = []
    for word in _SPLIT_RE.split(spaced.lower()):
        if not word:
            continue
        compound = _COMPOUND_RE.fullmatch(word) if word not in _KNOWN_WORDS else None
        out.extend(compound.groups() if compound else (word,))
    return tuple(out)


_KNOWN_WORDS = frozenset({*WORD_KINDS, *HOST_ROLES, *URL_ROLES, *PORT_ROLES})
#: The last words of the keys a scope looks at; other keys can be dropped early.
_SCOPE_ROLES = frozenset({*_KNOWN_WORDS, *ENGINE_ROLES})
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


def _kind_in_value(value: str) -> str | None:
    """`postgresql`, `django.db.backends.postgresql`, `pgsql` (Laravel) -> a kind."""
    for word in reversed(_SPLIT_RE.split(value.lower())):
        kind = WORD_KINDS.get(word) or (SCHEMES.get(word) or (None, 0))[0]
        if kind and kind not in GENERIC_KINDS:
            return kind
    return None


# -- scopes: sets of sibling keys -----------------------------------------------------


@dataclass
class _Entry:
    key: str
    words: tuple[str, ...]
    value: str
    line: int

    @property
    def role(self) -> str:
        return self.words[-1] if self.words else ""

    @property
    def stem(self) -> tuple[str, ...]:
        return tuple(self.words[:-1])


def _scope(out: _Collector, entries: list[_Entry], context: list[str]) -> None:
    """Endpoints among sibling keys; `context` holds enclosing key words, nearest first."""
    ports: dict[tuple[str, ...], list[tuple[int, int]]] = {}
    engines: dict[tuple[str, ...], str] = {}
    for entry in entries:
        if entry.role in PORT_ROLES:
            value = entry.value.strip()
            if value.isdigit() and 0 < int(value) < 65536:
                ports.setdefault(entry.stem, []).append((entry.line, int(value)))
        elif entry.role in ENGINE_ROLES:
            engine = _kind_in_value(entry.value)
            if engine:
                engines.setdefault(entry.stem, engine)
    for found in ports.values():
        found.sort()
    for entry in entries:
        role = entry.role
        if role in HOST_ROLES or role in URL_ROLES:
            stem = entry.stem
            kind = kind_from_words([*reversed(stem), *context])
            engine = engines.get(stem)
            if engine and (kind is None or kind in GENERIC_KINDS):
                kind = engine
            if kind is None:
                continue
            sentinel = "sentinel" in stem or "sentinel" in context[:3]
            port = _nearest_port(ports.get(stem, []), entry.line)
            _host_value(out, entry, kind, port, need_port=role in URL_ROLES, sentinel=sentinel)
        elif WORD_KINDS.get(role) is not None:
            # `redis: cache.internal:6379`, `REDIS=...`: a bare value needs a port.
            kind = kind_from_words([role, *reversed(entry.stem), *context])
            if kind is not None:
                _host_value(out, entry, kind, None, need_port=True, sentinel=False)


def _nearest_port(candidates: list[tuple[int, int]], line: int) -> int | None:
    """The port of the `(line, port)` (sorted by line) written nearest to `line`."""
    if not candidates:
        return None
    at = bisect.bisect_left(candidates, (line, 0))
    near = candidates[max(0, at - 1) : at + 1]
    return min(near, key=lambda c: abs(c[0] - line))[1]


def _host_value(
    out: _Collector, entry: _Entry, kind: str, port: int | None, *, need_port: bool, sentinel: bool
) -> None:
    """One host-ish value: a URL, `host`, `host:port`, or a comma-separated list of them."""
    value = entry.value.strip().strip("\"'")
    if not value or any(mark in value for mark in ("{{", "${", "$(", "%(", "<%")):
        return
    if "://" in value:
        for url_kind, host, url_port in parse_url(value, web_kind=kind) or []:
            final = url_kind if url_kind not in GENERIC_KINDS else _refine(url_kind, url_port)
            out.add(entry.line, final, host, url_port)
        return
    for part in re.split(r"[,\s]+", value):
        if not part:
            continue
        parsed = parse_hostport(part, need_port=need_port)
        if parsed is None:
            continue
        host, written = parsed
        final_port = written or port
        if final_port is None:
            final_port = 26379 if sentinel and kind == "redis" else DEFAULT_PORTS.get(kind)
        if final_port is None:
            continue  # "database" at some host, port unknown: not an instance we can name
        out.add(entry.line, _refine(kind, final_port), host, final_port)


def _refine(kind: str, port: int) -> str:
    return WELL_KNOWN_PORTS.get(port, kind) if kind in GENERIC_KINDS else kind


# -- text formats ---------------------------------------------------------------------


def _key_values(out: _Collector, lines: list[str], first_line: int) -> None:
    """`KEY=value` / `key: value` lines; INI/TOML `[section]` headers give context."""
    sections: dict[str, list[_Entry]] = {}
    section = ""
    for offset, line in enumerate(lines):
        if len(line) > _MAX_LINE or _is_comment(line):
            continue
        header = _SECTION_RE.match(line)
        if header:
            section = header.group("name").strip('" ')
            continue
        match = _KV_LINE_RE.match(line)
        if match is None:
            continue
        value = _unquote(match.group("value"))
        if not value:
            continue
        key = match.group("key")
        sections.setdefault(section, []).append(
            _Entry(key, _words(key), value, first_line + offset)
        )
    for name, entries in sections.items():
        _scope(out, entries, list(reversed(_words(name))))


def _unquote(value: str) -> str:
    value = value.strip().rstrip(",").strip()
    if value[:1] in ("'", '"'):
        end = value.find(value[0], 1)
        return value[1:end] if end > 0 else value[1:]
    return value.split(" #", 1)[0].strip()


# -- YAML and JSON ----------------------------------------------------------------------


def _yaml_document(out: _Collector, root: Node) -> None:
    for key_path, node in yamldoc.walk(root):
        if isinstance(node, ScalarNode):
            if node.style == "|" and "\n" in node.value:
                # An embedded .env / properties file in a ConfigMap, a line below its key.
                _key_values(out, str(node.value).splitlines(), yamldoc.line_of(node) + 1)
            continue
        if isinstance(node, MappingNode):
            entries = [e for e in _mapping_entries(node) if e.role in _SCOPE_ROLES]
        elif isinstance(node, SequenceNode):
            entries = [e for e in _name_value_entries(node) if e.role in _SCOPE_ROLES]
        else:
            continue
        if entries:
            # key_path ends with this node's own key, then its ancestors': nearest first.
            _scope(out, entries, _context(key_path))


def _context(key_path: tuple[str | int, ...]) -> list[str]:
    return [w for part in reversed(key_path) if isinstance(part, str) for w in _words(part)]


def _mapping_entries(node: MappingNode) -> Iterator[_Entry]:
    for key, _key_node, value in yamldoc.items(node):
        key_words = _words(key)
        if isinstance(value, ScalarNode) and not yamldoc.is_null(value):
            yield _Entry(key, key_words, str(value.value), yamldoc.line_of(value))
        elif isinstance(value, SequenceNode) and key_words:
            role = key_words[-1]
            if role in HOST_ROLES or role in URL_ROLES or role in WORD_KINDS:
                for item in value.value:
                    if isinstance(item, ScalarNode) and not yamldoc.is_null(item):
                        yield _Entry(key, key_words, str(item.value), yamldoc.line_of(item))


def _name_value_entries(node: SequenceNode) -> Iterator[_Entry]:
    """k8s `env: [{name: REDIS_HOST, value: ...}]`, helmfile `set: [{name, value}]`, and
    docker-compose `environment: ["REDIS_HOST=..."]`."""
    for item in node.value:
        if isinstance(item, ScalarNode):
            pair = _ENV_ITEM_RE.match(str(item.value))
            if pair:
                key, value = pair.groups()
                yield _Entry(key, _words(key), value, yamldoc.line_of(item))
            continue
        name = yamldoc.scalar(yamldoc.get(item, "name"))
        value_node = yamldoc.get(item, "value")
        if name and isinstance(value_node, ScalarNode) and not yamldoc.is_null(value_node):
            yield _Entry(name, _words(name), str(value_node.value), yamldoc.line_of(value_node))


_ENV_ITEM_RE = re.compile(r"([A-Za-z_][\w.]*)=(.*)", re.DOTALL)
