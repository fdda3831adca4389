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

`kinds` holds the vocabulary, `addresses` the URL and `host:port` grammar, `scopes` what
sibling keys say together, `readers` where the keys come from (text files, YAML, JSON).
"""

from bot.formats.endpoints.addresses import parse_hostport, parse_url
from bot.formats.endpoints.kinds import DEFAULT_PORTS, GENERIC_KINDS, kind_from_words, words
from bot.formats.endpoints.readers import endpoints_in_text, find_endpoints
from bot.formats.endpoints.scopes import Endpoint

__all__ = [
    "DEFAULT_PORTS",
    "GENERIC_KINDS",
    "Endpoint",
    "endpoints_in_text",
    "find_endpoints",
    "kind_from_words",
    "parse_hostport",
    "parse_url",
    "words",
]
