"""Key names split into the words that say what a value points at."""

from __future__ import annotations

import pytest

from bot.formats.endpoints import words


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("externalRedis", ["external", "redis"]),
        ("REDIS_HOST", ["redis", "host"]),
        ("PGHOST", ["pg", "host"]),
        ("spring.redis.host", ["spring", "redis", "host"]),
        ("KAFKA_BOOTSTRAP_SERVERS", ["kafka", "bootstrap", "servers"]),
        ("MongoDB", ["mongo", "db"]),
        ("redisURL", ["redis", "url"]),
    ],
)
def test_words(key: str, expected: list[str]) -> None:
    assert words(key) == expected
