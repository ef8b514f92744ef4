"""``[rate_limits]``: limit syntax, defaults, and refusing what does not parse."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from grantline.instance import Instance, example_config
from grantline.ratelimit.config import (
    EndpointLimits,
    Limit,
    RateLimitSettings,
    SignInPolicy,
    parse_limit,
    rate_limits_from_config,
)
from grantline.settings import Settings


@pytest.mark.parametrize(
    ("text", "count", "period"),
    [("10/s", 10, 1), ("600/min", 600, 60), (" 5 / h ", 5, 3600), ("1/second", 1, 1)],
)
def test_limits_parse(text: str, count: int, period: int) -> None:
    assert parse_limit(text) == Limit(count, period)


@pytest.mark.parametrize("text", ["off", "OFF", False])
def test_off_disables_a_limit(text: object) -> None:
    assert parse_limit(text) is None


@pytest.mark.parametrize("text", ["10", "10/day", "0/s", "-1/s", "ten/s", 10, "10/s/s", ""])
def test_malformed_limits_are_refused(text: object) -> None:
    with pytest.raises(ValueError, match="limit"):
        parse_limit(text)


def test_a_limit_costs_its_period_divided_evenly() -> None:
    limit = Limit(600, 60)
    assert limit.interval_us == 100_000
    assert limit.burst_us == 60_000_000
    assert str(limit) == "600/min"
    # Faster than a microsecond per request still costs one.
    assert Limit(5_000_000, 1).interval_us == 1


def test_the_written_config_says_what_the_defaults_are() -> None:
    config = tomllib.loads(example_config(issuer=None, dev_mode=False))
    assert rate_limits_from_config(config) == RateLimitSettings()


def test_defaults_stay_above_the_existing_races_and_the_benchmark() -> None:
    # 50-way races and a 5 s benchmark at a few thousand pushes/s from one client and one
    # address must not be refused: every back-channel budget holds at least 60,000 at once.
    settings = RateLimitSettings()
    for name in ("par", "token", "introspect"):
        limits = settings.endpoints[name]
        assert limits.per_client is not None and limits.per_client.count >= 60_000
        assert limits.per_address is not None and limits.per_address.count >= 60_000


def test_partial_tables_keep_the_other_defaults() -> None:
    settings = rate_limits_from_config(
        {
            "rate_limit_url": "redis://127.0.0.1:6379/0",
            "rate_limits": {
                "par": {"per_client": "3/min"},
                "token": {"per_address": "off"},
                "sync_interval_ms": 0,
                "sign_in": {"account_failures": 3},
            },
        }
    )
    default = RateLimitSettings()
    assert settings.url == "redis://127.0.0.1:6379/0"
    assert settings.sync_interval_ms == 0
    assert settings.endpoints["par"] == EndpointLimits(
        Limit(3, 60), default.endpoints["par"].per_address
    )
    assert settings.endpoints["token"].per_address is None
    assert settings.endpoints["introspect"] == default.endpoints["introspect"]
    assert settings.sign_in == SignInPolicy(account_failures=3)


def test_disabled_limits_apply_to_no_endpoint() -> None:
    settings = rate_limits_from_config({"rate_limits": {"enabled": False}})
    assert settings.for_endpoint("par") is None
    assert RateLimitSettings().for_endpoint("par") is not None


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"rate_limits": {"authorize": {"per_client": "1/s"}}}, "unknown option 'authorize'"),
        ({"rate_limits": {"par": {"per_user": "1/s"}}}, "rate_limits.par: unknown option"),
        ({"rate_limits": {"par": "1/s"}}, "must be a table"),
        ({"rate_limits": {"par": {"per_client": "fast"}}}, "rate_limits.par"),
        ({"rate_limits": {"sign_in": {"lockout": 1}}}, "rate_limits.sign_in: unknown"),
        ({"rate_limits": {"sync_interval_ms": -1}}, "sync_interval_ms"),
        ({"rate_limit_url": "http://127.0.0.1:6379"}, "redis://"),
        ({"rate_limits": {"sign_in": {"account_max_delay": 3600}}}, "failure_window"),
        ({"rate_limits": {"sign_in": {"first_delay": 0}}}, "at least 1"),
    ],
)
def test_bad_configuration_is_refused_at_start_up(config: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rate_limits_from_config(config)


def test_sign_in_delay_doubles_from_the_threshold_up_to_the_cap() -> None:
    policy = SignInPolicy(first_delay=5)
    waits = [policy.delay(n, 5, 300) for n in range(3, 13)]
    assert waits == [0, 0, 5, 10, 20, 40, 80, 160, 300, 300]
    # Absurd counts do not overflow.
    assert policy.delay(10_000, 5, 300) == 300


def test_an_instance_reads_its_limits_and_admission_bounds(tmp_path: Path) -> None:
    instance = Instance(tmp_path)
    instance.write_initial_files(issuer=None, dev_mode=False)
    config = instance.config_path
    text = config.read_text()
    for old, new in {
        "max_concurrent_requests = 64": "max_concurrent_requests = 8",
        "admission_wait_ms = 500": "admission_wait_ms = 0",
        'par = { per_client = "60000/min", per_address = "60000/min" }': (
            'par = { per_client = "10/s", per_address = "off" }'
        ),
        '# rate_limit_url = "redis://127.0.0.1:6379/0"': 'rate_limit_url = "redis://r:6379/2"',
    }.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    config.write_text(text)
    settings = instance.settings()
    assert (settings.max_concurrent_requests, settings.admission_wait_ms) == (8, 0)
    assert settings.rate_limits.endpoints["par"] == EndpointLimits(Limit(10, 1), None)
    assert settings.rate_limits.url == "redis://r:6379/2"


def test_negative_admission_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="max_concurrent_requests"):
        Settings(
            issuer="http://127.0.0.1:8000",
            database_url="sqlite://",
            secret_key=b"k" * 32,
            max_concurrent_requests=-1,
        )
