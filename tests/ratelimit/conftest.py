"""Redis for the rate-limit tests: ``GRANTLINE_TEST_REDIS_URL`` (``.ci/run`` sets it, and
then an unreachable Redis fails the run), else the local default, skipped when nothing
answers there. Each test gets its own key prefix and leaves no key behind."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_url() -> str:
    return os.environ.get("GRANTLINE_TEST_REDIS_URL", DEFAULT_REDIS_URL)


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"grantline-test:{secrets.token_hex(6)}:"
    client = Redis.from_url(redis_url, socket_connect_timeout=2)
    try:
        try:
            client.ping()
        except (RedisConnectionError, OSError):
            if "GRANTLINE_TEST_REDIS_URL" in os.environ:
                raise
            pytest.skip(f"no Redis at {redis_url}")
        yield prefix
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
