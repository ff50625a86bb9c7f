"""Settings from the environment: bad values stop the process with the variable's name."""

from __future__ import annotations

import pytest

from app.cli import main
from app.config import ConfigError, Settings
from app.crypto import generate_key


def test_settings_read_every_variable_by_its_name():
    key = generate_key()
    settings = Settings.from_env(
        {
            "REDIS_URL": "redis://example:6380/2",
            "CARECYCLE_RATE_LIMIT_PER_MIN": "30",
            "LEADRELAY_SOURCE_KEYS": "web=s1, partner=s2",
            "LEADRELAY_OPS_TOKENS": "alice=t1",
            "LEADRELAY_ENCRYPTION_KEY": key,
            "LEADRELAY_RETRY_BASE_SECONDS": "2.5",
        }
    )

    assert settings.redis_url == "redis://example:6380/2"
    assert settings.carecycle_rate_limit_per_min == 30
    assert settings.leadrelay_source_keys == {"s1": "web", "s2": "partner"}
    assert settings.leadrelay_ops_tokens == {"t1": "alice"}
    assert settings.leadrelay_retry_base_seconds == 2.5
    assert settings.carecycle_base_url == "https://api.carecycle.ai"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        pytest.param("CARECYCLE_RATE_LIMIT_PER_MIN", "sixty", id="not-a-number"),
        pytest.param("CARECYCLE_RATE_LIMIT_PER_MIN", "0", id="zero-limit"),
        pytest.param("CARECYCLE_BASE_URL", "api.carecycle.ai", id="url-without-scheme"),
        pytest.param("REDIS_URL", "http://localhost", id="not-redis"),
        pytest.param("LEADRELAY_ENCRYPTION_KEY", "short", id="bad-encryption-key"),
        pytest.param("LEADRELAY_SOURCE_KEYS", "justasecret", id="pairs-without-names"),
        pytest.param("LEADRELAY_VISIBILITY_TIMEOUT_SECONDS", "10", id="visibility-shorter-than-upload-timeout"),
        pytest.param("LEADRELAY_MAX_AGE_HOURS", "-1", id="negative-age"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(variable, value):
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({variable: value})

    assert len(raised.value.problems) == 1
    assert raised.value.problems[0].startswith(f"{variable}:")
    assert value not in raised.value.problems[0] or variable not in ("LEADRELAY_ENCRYPTION_KEY",)


def test_every_problem_is_listed_at_once():
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"CARECYCLE_RATE_LIMIT_PER_MIN": "x", "REDIS_URL": "nope", "LEADRELAY_DELIVERY_LANES": "0"})

    assert len(raised.value.problems) == 3


def test_check_config_exits_non_zero_and_lists_each_problem(monkeypatch, capsys):
    monkeypatch.setenv("CARECYCLE_RATE_LIMIT_PER_MIN", "many")
    monkeypatch.delenv("CARECYCLE_API_KEY", raising=False)

    assert main(["check-config"]) == 2

    assert "CARECYCLE_RATE_LIMIT_PER_MIN" in capsys.readouterr().err


def test_check_config_names_required_secrets_that_are_missing(monkeypatch, capsys):
    for variable in ("CARECYCLE_API_KEY", "LEADRELAY_ENCRYPTION_KEY", "CARECYCLE_RATE_LIMIT_PER_MIN"):
        monkeypatch.delenv(variable, raising=False)

    assert main(["check-config"]) == 2

    err = capsys.readouterr().err
    assert "CARECYCLE_API_KEY: required" in err and "LEADRELAY_ENCRYPTION_KEY: required" in err
