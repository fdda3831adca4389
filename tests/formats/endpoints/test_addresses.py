"""Datastore URLs and host:port values."""

from __future__ import annotations

import pytest

from bot.formats.endpoints import parse_hostport, parse_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://cache", [("redis", "cache", 6379)]),
        ("redis://cache:6379", [("redis", "cache", 6379)]),
        (
            "redis://:s3cret@Shared-Redis.internal:6380/2",
            [("redis", "shared-redis.internal", 6380)],
        ),
        ("rediss://default:p@ss@cache.example.com:6380/0", [("redis", "cache.example.com", 6380)]),
        ("redis+sentinel://sentinel.internal/mymaster", [("redis", "sentinel.internal", 26379)]),
        ("postgres://app:pw@db.internal/app", [("postgres", "db.internal", 5432)]),
        ("postgresql://db.internal:6432/app?sslmode=require", [("postgres", "db.internal", 6432)]),
        ("postgresql+psycopg://u:p@db.internal/app", [("postgres", "db.internal", 5432)]),
        ("jdbc:postgresql://db.internal:5432/app", [("postgres", "db.internal", 5432)]),
        ("mysql+pymysql://root@mysql.internal/app", [("mysql", "mysql.internal", 3306)]),
        (
            "mongodb://m1.internal:27017,m2.internal/app?replicaSet=rs0",
            [("mongodb", "m1.internal", 27017), ("mongodb", "m2.internal", 27017)],
        ),
        (
            "mongodb+srv://u:p@cluster0.ab1cd.mongodb.net/app",
            [("mongodb", "cluster0.ab1cd.mongodb.net", 27017)],
        ),
        ("amqp://guest:guest@rabbit.internal//", [("amqp", "rabbit.internal", 5672)]),
        ("amqps://rabbit.internal", [("amqp", "rabbit.internal", 5671)]),
        ("memcached://mc.internal", [("memcached", "mc.internal", 11211)]),
        ("kafka://k1.internal:9093", [("kafka", "k1.internal", 9093)]),
        ("redis://[::1]:6379/0", [("redis", "::1", 6379)]),
        ("redis://[fd00:10::5]/0", [("redis", "fd00:10::5", 6379)]),
        ("redis://10.0.3.7:6379", [("redis", "10.0.3.7", 6379)]),
        # templates are not endpoints; a templated password does not hide the host
        ("redis://{{ .Values.redis.host }}:6379", []),
        ("redis://${REDIS_HOST}:6379", []),
        ("redis://$(REDIS_HOST):6379", []),
        (
            "redis://:{{ .Values.redis.password }}@cache.internal:6379",
            [("redis", "cache.internal", 6379)],
        ),
        ("redis://cache.internal:99999", []),
    ],
)
def test_parse_url(url: str, expected: list[tuple[str, str, int]]) -> None:
    assert (parse_url(url) or []) == expected


@pytest.mark.parametrize("url", ["https://example.com", "ftp://files.internal", "not a url"])
def test_parse_url_refuses_non_datastore_schemes(url: str) -> None:
    assert parse_url(url) is None


def test_web_urls_count_only_under_a_datastore_key() -> None:
    assert parse_url("https://es.internal", web_kind="elasticsearch") == [
        ("elasticsearch", "es.internal", 443)
    ]


@pytest.mark.parametrize(
    ("value", "need_port", "expected"),
    [
        ("cache:6379", True, ("cache", 6379)),
        ("cache", False, ("cache", None)),
        ("cache", True, None),
        ("[::1]:6379", True, ("::1", 6379)),
        ("DB.Internal.", False, ("db.internal", None)),
        ("true", False, None),
        ("6379", False, None),
        ("a..b", False, None),
        ("redis:latest", True, None),
    ],
)
def test_parse_hostport(
    value: str, need_port: bool, expected: tuple[str, int | None] | None
) -> None:
    assert parse_hostport(value, need_port=need_port) == expected
