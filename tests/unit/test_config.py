"""Settings from the environment: bad values stop the process with the variable's name."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from redis import Redis

from app import bench
from app.cli import main
from app.config import ConfigError, Settings, shown_url
from app.credentials import parse_ops_tokens, parse_source_keys
from app.crypto import generate_key
from app.ports import free_port
from app.queues import FETCH_JOB_TIMEOUT_SECONDS
from app.store.fetches import FETCH_LEASE_SECONDS


@pytest.fixture
def environment(monkeypatch):
    """The process environment with no relay setting in it; set what a test is about."""
    for setting in dataclasses.fields(Settings):
        monkeypatch.delenv(setting.name.upper(), raising=False)
    return monkeypatch


def problem_lines(err: str) -> list[str]:
    """The `  - VARIABLE: ...` lines of a configuration error, one a problem."""
    return [line for line in err.splitlines() if line.startswith("  - ")]


def problem_variables(err: str) -> list[str]:
    """The variable (or sources-file place) each `  - VARIABLE: ...` line of a configuration error names."""
    return [line.removeprefix("  - ").split(":", 1)[0] for line in problem_lines(err)]


def use_sources_file(environment, tmp_path, toml: str) -> None:
    """Point LEADRELAY_SOURCES at a sources file holding `toml`."""
    sources = tmp_path / "sources.toml"
    sources.write_text(toml)
    environment.setenv("LEADRELAY_SOURCES", str(sources))


class Started(Exception):
    """Raised in place of starting gunicorn or a worker: the process got past its checks."""


def _start_nothing(environment):
    """Make `leadrelay web` and `leadrelay worker` raise `Started` where they would start serving: a test of a
    refusal fails on it, one of a start expects it."""

    def started(*args, **kwargs):
        raise Started

    environment.setattr("os.execv", started)
    environment.setattr("workers.runner.run_worker", started)


def test_settings_read_every_variable_by_its_name():
    key = generate_key()
    settings = Settings.from_env(
        {
            "REDIS_URL": "redis://example:6380/2",
            "CARECYCLE_RATE_LIMIT_PER_MIN": "30",
            "LEADRELAY_SOURCE_KEYS": "web=web-key-0123456789, partner=partner-key-0123456789",
            "LEADRELAY_OPS_TOKENS": "alice=alice-token-0123456789",
            "LEADRELAY_ENCRYPTION_KEY": key,
            "LEADRELAY_RETRY_BASE_SECONDS": "2.5",
        }
    )

    assert settings.redis_url == "redis://example:6380/2"
    assert settings.carecycle_rate_limit_per_min == 30
    assert settings.leadrelay_source_keys == {"web-key-0123456789": "web", "partner-key-0123456789": "partner"}
    assert settings.leadrelay_ops_tokens == {"alice-token-0123456789": "alice"}
    assert settings.leadrelay_retry_base_seconds == 2.5
    assert settings.carecycle_base_url == "https://api.carecycle.ai"


def test_settings_left_unset_take_the_defaults_the_product_promises():
    settings = Settings.from_env({"REDIS_URL": "redis://example:6380/2"})

    assert settings.carecycle_base_url == "https://api.carecycle.ai"
    assert settings.carecycle_rate_limit_per_min == 60
    assert settings.facebook_graph_url == "https://graph.facebook.com"
    assert settings.leadrelay_max_age_hours == 72.0


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
        pytest.param("CARECYCLE_BASE_URL", "http://127.0.0.1:abc", id="url-port-not-a-number"),
        pytest.param("LEADRELAY_PUBLIC_URL", "https://relay.example:70000", id="url-port-out-of-range"),
        pytest.param("REDIS_URL", "redis://127.0.0.1:notaport/13", id="redis-port-not-a-number"),
        pytest.param("REDIS_URL", "redis://127.0.0.1:99999/13", id="redis-port-out-of-range"),
        pytest.param("REDIS_URL", "redis://127.0.0.1:6379/abc", id="redis-database-not-a-number"),
        pytest.param("REDIS_URL", "redis://127.0.0.1:6379/-1", id="redis-database-negative"),
        pytest.param("REDIS_URL", "redis://127.0.0.1:6379/\u0661\u0663", id="redis-database-in-arabic-indic-digits"),
        pytest.param("REDIS_URL", "redis://127.0.0.1:6379/\uff11\uff13", id="redis-database-in-fullwidth-digits"),
        pytest.param("REDIS_URL", "redis://127.0.0.1:6379/13?foo=bar", id="redis-unknown-option"),
        pytest.param("REDIS_URL", "redis://127.0.0.1:6379/1?socket_timeout=abc", id="redis-bad-option-value"),
        pytest.param(
            "REDIS_URL", "rediss://127.0.0.1:6379/1?ssl_cert_reqs=CERT_NONE", id="redis-option-redis-py-refuses"
        ),
        pytest.param("REDIS_URL", "redis://127.0.0.1:6379/1?protocol=4", id="redis-unknown-protocol"),
        pytest.param("FACEBOOK_READ_TIMEOUT_SECONDS", "120", id="graph-call-outlasting-its-fetch-job"),
        pytest.param("FACEBOOK_CONNECT_TIMEOUT_SECONDS", "56", id="graph-connect-past-its-share-of-a-fetch-job"),
        pytest.param("FACEBOOK_GRAPH_VERSION", "21.0", id="graph-version-without-v"),
        pytest.param("FACEBOOK_GRAPH_VERSION", "v21", id="graph-version-without-minor"),
        pytest.param("LEADRELAY_PUBLIC_URL", "https://leads.example.com/?src=relay", id="public-url-with-a-query"),
        pytest.param("CARECYCLE_BASE_URL", "https://api.carecycle.ai/#v2", id="base-url-with-a-fragment"),
        pytest.param("FACEBOOK_GRAPH_URL", "https://graph.facebook.com?", id="graph-url-with-an-empty-query"),
        pytest.param("FACEBOOK_GRAPH_VERSION", "v21.0/me", id="graph-version-with-a-path"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(variable, value):
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({variable: value})

    assert len(raised.value.problems) == 1
    assert raised.value.problems[0].startswith(f"{variable}:")
    assert value not in raised.value.problems[0] or variable not in ("LEADRELAY_ENCRYPTION_KEY",)


@pytest.mark.parametrize("version", ["v25.0", "v2.12", "/v21.0/"])
def test_a_graph_api_version_is_taken_as_meta_spells_it(version):
    assert Settings.from_env({"FACEBOOK_GRAPH_VERSION": version}).facebook_graph_version == version


def test_the_longest_graph_timeouts_allowed_end_a_call_before_its_fetch_job_is_killed_or_its_lease_runs_out():
    # Else a hanging Graph API has every fetch job killed by RQ: nothing records the failure or pauses retrieval.
    # A call is a connect and a read, each at most its setting; 5 s are left to record how it ended.
    longest_each = (min(FETCH_JOB_TIMEOUT_SECONDS, FETCH_LEASE_SECONDS) - 5) / 2

    for variable in ("FACEBOOK_CONNECT_TIMEOUT_SECONDS", "FACEBOOK_READ_TIMEOUT_SECONDS"):
        with pytest.raises(ConfigError, match=variable):
            Settings.from_env({variable: str(longest_each + 0.5)})


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("\u201ccc_live_k3y\u201d", id="pasted-with-typographic-quotes"),
        pytest.param("cc_live_k3y # production", id="with-a-comment-pasted-along"),
        pytest.param("cc_live_k\u00e9y", id="with-a-letter-outside-ascii"),
    ],
)
def test_a_carecycle_api_key_of_characters_no_key_has_is_refused_without_showing_it(key):
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"CARECYCLE_API_KEY": key})

    [problem] = raised.value.problems
    assert problem.startswith("CARECYCLE_API_KEY: expected")
    assert "live" not in problem


def test_every_problem_is_listed_at_once():
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"CARECYCLE_RATE_LIMIT_PER_MIN": "x", "REDIS_URL": "nope", "LEADRELAY_DELIVERY_LANES": "0"})

    assert len(raised.value.problems) == 3


def test_check_config_exits_non_zero_and_lists_each_problem(environment, tmp_path, capsys):
    use_sources_file(environment, tmp_path, '[sources.x]\nkind = "api"')
    environment.setenv("REDIS_URL", "bogus://x")
    environment.setenv("CARECYCLE_RATE_LIMIT_PER_MIN", "many")

    assert main(["check-config"]) == 2

    assert sorted(problem_variables(capsys.readouterr().err)) == [
        "CARECYCLE_API_KEY",
        "CARECYCLE_RATE_LIMIT_PER_MIN",
        "LEADRELAY_ENCRYPTION_KEY",
        "REDIS_URL",
        "sources.x.secret_env",
    ]


@pytest.mark.parametrize(
    ("command", "required"),
    [
        pytest.param(["web"], ["LEADRELAY_ENCRYPTION_KEY"], id="web"),
        pytest.param(["worker", "--burst"], ["CARECYCLE_API_KEY", "LEADRELAY_ENCRYPTION_KEY"], id="worker"),
    ],
)
def test_a_process_stopped_by_its_settings_names_every_problem_as_check_config_does(
    environment, tmp_path, capsys, command, required
):
    # A malformed value, a missing secret and a sources file problem: each is named, not only the first kind.
    use_sources_file(environment, tmp_path, '[sources.x]\nkind = "api"')
    environment.setenv("CARECYCLE_RATE_LIMIT_PER_MIN", "many")
    environment.setenv("LEADRELAY_OPS_TOKENS", "ops team=ops-s3cr-0123456789")
    _start_nothing(environment)

    assert main(command) == 2

    err = capsys.readouterr().err
    assert sorted(problem_variables(err)) == sorted(
        ["CARECYCLE_RATE_LIMIT_PER_MIN", "LEADRELAY_OPS_TOKENS", *required, "sources.x.secret_env"]
    )
    assert "s3cr" not in err


def test_web_names_the_web_tier_counts_beside_the_settings_and_the_sources_file(environment, tmp_path, capsys):
    use_sources_file(environment, tmp_path, '[sources.x]\nkind = "api"')
    environment.setenv("LEADRELAY_ENCRYPTION_KEY", generate_key())
    environment.setenv("LEADRELAY_RETENTION_DAYS", "forever")
    environment.setenv("WEB_CONCURRENCY", "0")
    _start_nothing(environment)

    assert main(["web"]) == 2

    assert sorted(problem_variables(capsys.readouterr().err)) == [
        "LEADRELAY_RETENTION_DAYS",
        "WEB_CONCURRENCY",
        "sources.x.secret_env",
    ]


def test_a_command_whose_reader_went_away_exits_1_without_a_traceback(environment):
    """`leadrelay stats | head`: the pipe is closed before the command writes."""
    environment.setenv("CARECYCLE_API_KEY", "ck-test-0123456789abcdef")
    environment.setenv("LEADRELAY_ENCRYPTION_KEY", generate_key())
    environment.setenv("LEADRELAY_SOURCE_KEYS", "web=web-key-0123456789")
    command = [str(Path(sys.executable).with_name("leadrelay")), "check-config"]

    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as shell:
        shell.stdout.close()  # type: ignore[union-attr]
        err = shell.stderr.read().decode()  # type: ignore[union-attr]

    assert (shell.wait(timeout=60), err) == (1, "")


def test_check_config_reads_the_sources_file_with_the_valid_source_keys_beside_a_bad_value(
    environment, tmp_path, capsys
):
    use_sources_file(environment, tmp_path, '[sources.partner]\nkind = "api"\nsecret_env = "PARTNER_KEY"')
    environment.setenv("PARTNER_KEY", "partner-key-2-0123456789")
    environment.setenv("LEADRELAY_SOURCE_KEYS", "partner=partner-key-1-0123456789")
    environment.setenv("LEADRELAY_RETENTION_DAYS", "inf")

    assert main(["check-config"]) == 2

    assert problem_variables(capsys.readouterr().err) == [
        "LEADRELAY_RETENTION_DAYS",
        "CARECYCLE_API_KEY",
        "LEADRELAY_ENCRYPTION_KEY",
        "sources.partner",
    ]


def test_check_config_lists_every_sources_file_problem_in_one_run(environment, tmp_path, capsys):
    use_sources_file(
        environment,
        tmp_path,
        '[sources.acme]\nkind = "api"\nsecret_env = "ACME_KEY"\nsourceid = "typo"\n'
        '[sources.beta]\nkind = "api"\nsecret_env = "BETA_KEY_NOT_SET"\nduplicate_window_days = 60\n'
        '[sources.gamma]\nkind = "api"\nsecret_env = "ACME_KEY"\n',
    )
    environment.setenv("ACME_KEY", "acme-secret-0123456789")
    environment.setenv("CARECYCLE_API_KEY", "cc_x")
    environment.setenv("LEADRELAY_ENCRYPTION_KEY", generate_key())

    assert main(["check-config"]) == 2

    assert problem_variables(capsys.readouterr().err) == [
        "sources.acme.sourceid",
        "sources.beta.secret_env",
        "sources.gamma.secrets",
        "sources.beta.duplicate_window_days",
    ]


def test_check_config_refuses_a_source_key_that_is_also_an_ops_token(environment, capsys):
    environment.setenv("LEADRELAY_SOURCE_KEYS", "partner=one-secret-0123456789")
    environment.setenv("LEADRELAY_OPS_TOKENS", "alice=one-secret-0123456789")

    assert main(["check-config"]) == 2

    err = capsys.readouterr().err
    assert "sources.partner: a secret of this source is also an ops token" in err
    assert "one-secret-0123456789" not in err


@pytest.mark.parametrize(
    ("ops_tokens", "ops_problem"),
    [
        pytest.param("bob=short", "at least 16 characters", id="another-token-too-short"),
        pytest.param("bob", "expected comma-separated name=secret pairs", id="another-pair-malformed"),
        pytest.param("Bob Smith=bob-token-0123456789", "is not a slug", id="another-name-no-slug"),
        pytest.param("bob=bob-t\u00f6ken-0123456789", "visible ASCII", id="another-token-unsendable"),
        pytest.param("bob=one-secret-0123456789", "under one name", id="the-token-under-two-names"),
    ],
)
def test_check_config_refuses_a_source_key_that_is_also_an_ops_token_beside_other_ops_token_problems(
    environment, tmp_path, capsys, ops_tokens, ops_problem
):
    use_sources_file(environment, tmp_path, '[sources.filed]\nkind = "api"\nsecret_env = "FILED_KEY"')
    environment.setenv("FILED_KEY", "filed-secret-0123456789")
    environment.setenv("LEADRELAY_SOURCE_KEYS", "partner=one-secret-0123456789")
    environment.setenv(
        "LEADRELAY_OPS_TOKENS", f"alice=one-secret-0123456789,{ops_tokens},carol=filed-secret-0123456789"
    )

    assert main(["check-config"]) == 2

    err = capsys.readouterr().err
    assert ops_problem in err
    assert "sources.partner: a secret of this source is also an ops token" in err
    assert "sources.filed: a secret of this source is also an ops token" in err
    assert "one-secret-0123456789" not in err and "filed-secret-0123456789" not in err


@pytest.mark.parametrize(
    "ops_tokens",
    [
        pytest.param("alice=one-secret-0123456789", id="ops-tokens-sound"),
        pytest.param("alice=one-secret-0123456789,bob=tiny", id="ops-tokens-with-a-problem-too"),
    ],
)
def test_check_config_refuses_a_source_key_that_is_also_an_ops_token_beside_other_source_key_problems(
    environment, capsys, ops_tokens
):
    environment.setenv("LEADRELAY_SOURCE_KEYS", "other=short,partner=one-secret-0123456789")
    environment.setenv("LEADRELAY_OPS_TOKENS", ops_tokens)

    assert main(["check-config"]) == 2

    err = capsys.readouterr().err
    assert "LEADRELAY_SOURCE_KEYS: expected each secret to be a long random one" in err
    assert "LEADRELAY_SOURCE_KEYS: expected no source key that is also an ops token, got one in pair 2" in err
    assert "one-secret-0123456789" not in err


def test_check_config_says_nothing_of_ops_tokens_beside_source_key_problems_when_no_key_is_one(environment, capsys):
    environment.setenv("LEADRELAY_SOURCE_KEYS", "other=short,partner=one-secret-0123456789")
    environment.setenv("LEADRELAY_OPS_TOKENS", "alice=ops-secret-0123456789")

    assert main(["check-config"]) == 2

    assert "ops token" not in capsys.readouterr().err


def test_check_config_refuses_a_google_source_with_a_placeholder_key(environment, tmp_path, capsys):
    use_sources_file(environment, tmp_path, '[sources.gads]\nkind = "google"\nsecret_env = "GADS_KEY"')
    environment.setenv("GADS_KEY", "123")
    environment.setenv("CARECYCLE_API_KEY", "cc_x")
    environment.setenv("LEADRELAY_ENCRYPTION_KEY", generate_key())

    assert main(["check-config"]) == 2

    err = capsys.readouterr().err
    assert problem_variables(err) == ["sources.gads.secret_env"]
    assert "at least 16 characters" in err


def test_check_config_names_a_malformed_required_secret_once_not_as_missing_too(environment, capsys):
    environment.setenv("CARECYCLE_API_KEY", "\u201ccc_live_k3y\u201d")
    environment.setenv("LEADRELAY_ENCRYPTION_KEY", generate_key())

    assert main(["check-config"]) == 2

    err = capsys.readouterr().err
    assert problem_variables(err) == ["CARECYCLE_API_KEY"]
    assert "required" not in err


def test_check_config_names_required_secrets_that_are_missing(monkeypatch, capsys):
    for variable in ("CARECYCLE_API_KEY", "LEADRELAY_ENCRYPTION_KEY", "CARECYCLE_RATE_LIMIT_PER_MIN"):
        monkeypatch.delenv(variable, raising=False)

    assert main(["check-config"]) == 2

    err = capsys.readouterr().err
    assert "CARECYCLE_API_KEY: required" in err and "LEADRELAY_ENCRYPTION_KEY: required" in err


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("unix:///tmp/redis.sock", id="socket-path"),
        pytest.param("unix:///tmp/redis.sock?db=3", id="socket-path-and-db"),
        pytest.param("unix://:s3cret@/tmp/redis.sock?db=3", id="socket-path-and-password"),
    ],
)
def test_redis_url_takes_a_unix_socket_as_redis_py_reads_it(url):
    settings = Settings.from_env({"REDIS_URL": url})

    pool = Redis.from_url(settings.redis_url).connection_pool
    assert pool.connection_kwargs["path"] == "/tmp/redis.sock"


def test_check_config_passes_with_a_unix_socket_redis_url(environment, capsys):
    environment.setenv("REDIS_URL", "unix:///tmp/redis.sock?db=0")
    environment.setenv("CARECYCLE_API_KEY", "cc_x")
    environment.setenv("LEADRELAY_ENCRYPTION_KEY", generate_key())

    assert main(["check-config"]) == 0
    assert "configuration OK" in capsys.readouterr().out


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("unix://", id="no-path"),
        pytest.param("unix:///", id="root-only"),
        pytest.param("unix:///?db=0", id="query-without-path"),
        pytest.param("unix://tmp/redis.sock", id="two-slashes-read-as-host-tmp"),
    ],
)
def test_redis_url_refuses_a_unix_url_without_a_socket_path(url):
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"REDIS_URL": url})

    assert raised.value.problems == [
        f"REDIS_URL: expected unix:///path/to/the.sock (a socket path, no host), got {shown_url(url)!r}"
    ]


def test_a_refused_redis_url_is_shown_without_its_password():
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"REDIS_URL": "redis+sentinel://:s3cret@sentinel:26379/mymaster"})

    assert raised.value.problems == [
        "REDIS_URL: expected a redis/rediss/unix URL, got 'redis+sentinel://***@sentinel:26379/mymaster'"
    ]


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("redis:/:S3cretPW@host:6379/0", id="one-slash"),
        pytest.param("https//user:S3cretPW@host", id="no-scheme-colon"),
        pytest.param("redis://user:S3cretPW@host:port/0", id="bad-port"),
        pytest.param("redis://:S3cret@PW@host:6379/x", id="at-sign-in-password"),
        pytest.param("redis://default:4821/S3cretPW@127.0.0.1:6379/10", id="slash-in-password"),
        pytest.param("unix:///tmp/nope.sock?db=1&password=S3cretPW&foo=1", id="password-option"),
    ],
)
def test_a_malformed_redis_url_is_shown_without_its_password(url):
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"REDIS_URL": url})

    assert "S3cret" not in str(raised.value.problems) and "PW" not in str(raised.value.problems)
    assert raised.value.problems[0].startswith("REDIS_URL: expected")


def test_check_config_names_the_facebook_settings_its_facebook_sources_need(environment, tmp_path, capsys):
    use_sources_file(environment, tmp_path, '[sources.fb-acme]\nkind = "facebook"\npage_ids = ["123"]')
    environment.setenv("CARECYCLE_API_KEY", "cc_x")
    environment.setenv("LEADRELAY_ENCRYPTION_KEY", generate_key())
    environment.setenv("FACEBOOK_VERIFY_TOKEN", "verify")

    assert main(["check-config"]) == 2

    err = capsys.readouterr().err
    assert "FACEBOOK_APP_SECRET: required by the facebook sources (fb-acme)" in err
    assert "FACEBOOK_ACCESS_TOKEN: required by the facebook sources (fb-acme)" in err
    assert "FACEBOOK_VERIFY_TOKEN" not in err


def test_check_config_names_the_facebook_settings_beside_the_other_problems_of_the_sources_file(
    environment, tmp_path, capsys
):
    use_sources_file(
        environment,
        tmp_path,
        '[sources.fb-acme]\nkind = "facebook"\npage_ids = ["123"]\n'
        '[sources.partner]\nkind = "api"\nsecret_env = "PARTNER_KEY_NOT_SET"\n',
    )
    environment.setenv("CARECYCLE_API_KEY", "cc_x")
    environment.setenv("LEADRELAY_ENCRYPTION_KEY", generate_key())

    assert main(["check-config"]) == 2

    assert problem_variables(capsys.readouterr().err) == [
        "sources.partner.secret_env",
        "FACEBOOK_APP_SECRET",
        "FACEBOOK_VERIFY_TOKEN",
        "FACEBOOK_ACCESS_TOKEN",
    ]


@pytest.mark.parametrize(
    ("command", "required"),
    [
        pytest.param(["web"], ["FACEBOOK_APP_SECRET", "FACEBOOK_VERIFY_TOKEN"], id="web"),
        pytest.param(["worker", "--burst"], ["FACEBOOK_APP_SECRET", "FACEBOOK_ACCESS_TOKEN"], id="worker"),
    ],
)
def test_a_process_with_a_facebook_source_stops_at_start_naming_the_meta_settings_it_needs_left_unset(
    environment, tmp_path, capsys, command, required
):
    # Started anyway, the web tier refused every notification (and the handshake), and workers retrieved no lead:
    # Meta retries for 36 hours, then drops them.
    use_sources_file(environment, tmp_path, '[sources.fb-acme]\nkind = "facebook"\npage_ids = ["123"]')
    environment.setenv("CARECYCLE_API_KEY", "cc_x")
    environment.setenv("LEADRELAY_ENCRYPTION_KEY", generate_key())
    _start_nothing(environment)

    assert main(command) == 2

    said = problem_lines(capsys.readouterr().err)
    assert said == [f"  - {variable}: required by the facebook sources (fb-acme)" for variable in required]


@pytest.mark.parametrize(
    ("command", "given"),
    [
        pytest.param(["web"], {"FACEBOOK_APP_SECRET": "app-secret", "FACEBOOK_VERIFY_TOKEN": "verify"}, id="web"),
        pytest.param(
            ["worker", "--burst"], {"FACEBOOK_APP_SECRET": "app-secret", "FACEBOOK_ACCESS_TOKEN": "token"}, id="worker"
        ),
    ],
)
def test_a_process_with_a_facebook_source_starts_with_the_meta_settings_it_uses(environment, tmp_path, command, given):
    # The web tier never calls the Graph API, and a worker never answers Meta's webhooks.
    use_sources_file(environment, tmp_path, '[sources.fb-acme]\nkind = "facebook"\npage_ids = ["123"]')
    environment.setenv("CARECYCLE_API_KEY", "cc_x")
    environment.setenv("LEADRELAY_ENCRYPTION_KEY", generate_key())
    for variable, value in given.items():
        environment.setenv(variable, value)
    _start_nothing(environment)

    with pytest.raises(Started):
        main(command)


def test_web_and_worker_need_no_meta_setting_without_a_facebook_source(environment, tmp_path):
    use_sources_file(environment, tmp_path, '[sources.google-aca]\nkind = "google"\nsecret_env = "GOOGLE_KEY"')
    environment.setenv("GOOGLE_KEY", "google-key-0123456789")
    environment.setenv("CARECYCLE_API_KEY", "cc_x")
    environment.setenv("LEADRELAY_ENCRYPTION_KEY", generate_key())
    _start_nothing(environment)

    for command in (["web"], ["worker", "--burst"]):
        with pytest.raises(Started):
            main(command)


def test_check_config_refuses_meta_ids_on_a_source_that_is_not_facebook(environment, tmp_path, capsys):
    use_sources_file(
        environment, tmp_path, '[sources.acme]\nkind = "api"\nsecret_env = "ACME_KEY"\nform_ids = ["123456"]'
    )
    environment.setenv("ACME_KEY", "acme-secret-0123456789")
    environment.setenv("CARECYCLE_API_KEY", "cc_x")
    environment.setenv("LEADRELAY_ENCRYPTION_KEY", generate_key())

    assert main(["check-config"]) == 2

    err = capsys.readouterr().err
    assert problem_variables(err) == ["sources.acme.form_ids"]
    assert "only facebook sources take form_ids" in err


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WEB_CONCURRENCY", "abc"),
        ("WEB_CONCURRENCY", "0"),
        ("GUNICORN_THREADS", "two"),
        ("GUNICORN_WORKER_CONNECTIONS", "-5"),
        ("PORT", "99999"),
        ("PORT", "http"),
        # More digits than Python converts to a number.
        pytest.param("WEB_CONCURRENCY", "9" * 5000, id="WEB_CONCURRENCY-of-5000-digits"),
        pytest.param("PORT", "9" * 5000, id="PORT-of-5000-digits"),
        ("PROMETHEUS_MULTIPROC_DIR", "/nonexistent-parent/metrics"),
        ("PROMETHEUS_MULTIPROC_DIR", "/etc/hostname"),
        ("FORWARDED_ALLOW_IPS", "load-balancer.internal"),
        ("FORWARDED_ALLOW_IPS", "10.0.0.0/8, 192.168.1.1/24"),
        ("FORWARDED_ALLOW_IPS", "10.0.0.1, , 10.0.0.2"),
        ("GUNICORN_LOG_LEVEL", "warn"),  # gunicorn would log at info instead, without a word
    ],
)
def test_check_config_and_web_refuse_a_web_tier_count_gunicorn_cannot_use(environment, capsys, variable, value):
    environment.setenv("CARECYCLE_API_KEY", "cc_x")
    environment.setenv("LEADRELAY_ENCRYPTION_KEY", generate_key())
    environment.setenv(variable, value)

    assert main(["check-config"]) == 2
    assert main(["web"]) == 2  # before gunicorn is started

    assert problem_variables(capsys.readouterr().err) == [variable, variable]


@pytest.mark.parametrize("variable", ["LEADRELAY_OPS_TOKENS", "LEADRELAY_SOURCE_KEYS"])
def test_a_secret_listed_under_two_names_is_refused_naming_the_pairs_by_place_not_the_secret(variable):
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({variable: "alice=sh4red-0123456789, carol=own-0123456789ab, bob=sh4red-0123456789"})

    [problem] = raised.value.problems
    assert problem == f"{variable}: expected each secret under one name, got one secret in pairs 1 and 3"
    assert "sh4red" not in str(raised.value)


@pytest.mark.parametrize("variable", ["LEADRELAY_OPS_TOKENS", "LEADRELAY_SOURCE_KEYS"])
def test_pairs_written_the_wrong_way_round_are_refused_without_showing_their_secrets(variable):
    # secret=name instead of name=secret: the two secrets stand where the names go, and one name where the secret.
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({variable: "sk_live_0ld5ecret=partner,sk_live_n3w5ecret=partner"})

    assert raised.value.problems == [
        f"{variable}: expected each secret under one name, got one secret in pairs 1 and 2",
        f"{variable}: expected each secret to be a long random one, at least 16 characters, got a shorter one in "
        "pairs 1 and 2",
    ]
    assert "5ecret" not in str(raised.value)


@pytest.mark.parametrize("variable", ["LEADRELAY_OPS_TOKENS", "LEADRELAY_SOURCE_KEYS"])
@pytest.mark.parametrize(
    "secret",
    [
        pytest.param("k\u00e9y-0123456789abcdef", id="a-letter-outside-ascii"),
        pytest.param("\u201ckey-0123456789abcdef\u201d", id="pasted-with-typographic-quotes"),
        pytest.param("key 0123456789abcdef", id="a-space-inside"),
    ],
)
def test_a_secret_no_request_header_can_carry_is_refused_by_its_place_never_shown(variable, secret):
    # A client's header is read as Latin-1 text of its bytes: such a secret would never match, every request 401.
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({variable: f"alice=fine-secret-0123456789, bob={secret}"})

    [problem] = raised.value.problems
    assert problem.startswith(f"{variable}: expected each secret in visible ASCII characters")
    assert "pair 2" in problem
    assert secret not in problem and "fine-secret" not in problem


@pytest.mark.parametrize("variable", ["LEADRELAY_OPS_TOKENS", "LEADRELAY_SOURCE_KEYS"])
@pytest.mark.parametrize(
    "secret",
    [pytest.param("admin", id="a-word"), pytest.param("x" * 15, id="one-short-of-16")],
)
def test_a_secret_shorter_than_16_characters_is_refused_by_its_place_never_shown(variable, secret):
    # Nothing limits how often a wrong token or key may be tried: only its length keeps it from being guessed.
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({variable: f"alice=fine-secret-0123456789, bob={secret}"})

    [problem] = raised.value.problems
    assert problem == (
        f"{variable}: expected each secret to be a long random one, at least 16 characters, got a shorter one in pair 2"
    )
    assert secret not in problem


@pytest.mark.parametrize("variable", ["LEADRELAY_OPS_TOKENS", "LEADRELAY_SOURCE_KEYS"])
def test_a_secret_of_16_characters_is_taken(variable):
    settings = Settings.from_env({variable: f"alice={'x' * 16}"})

    assert getattr(settings, variable.lower()) == {"x" * 16: "alice"}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("Alice", id="a-capital"),
        pytest.param("ops team", id="a-space-inside"),
        pytest.param("ops\x1b[2Jteam", id="a-control-character"),
        pytest.param("cli:root", id="read-as-the-cli-actor"),
        pytest.param("-alice", id="not-starting-with-a-letter-or-digit"),
        pytest.param("a" * 64, id="longer-than-63"),
    ],
)
def test_an_ops_token_name_that_is_not_a_slug_is_refused_by_its_place_never_shown(name):
    # The name is the actor of the audit trail: it must read as one name, never as the CLI's `cli:<user>`.
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"LEADRELAY_OPS_TOKENS": f"alice=alice-token-0123456789, {name}=other-token-0123456789"})

    assert raised.value.problems == [
        "LEADRELAY_OPS_TOKENS: the name of pair 2 of 2 is not a slug: expected lowercase letters, digits, - and _ "
        "(at most 63, starting with a letter or digit)"
    ]
    assert "other-token" not in str(raised.value)


@pytest.mark.parametrize("name", ["alice", "ops-team", "on_call2", "a" * 63])
def test_an_ops_token_named_by_a_slug_is_taken(name):
    settings = Settings.from_env({"LEADRELAY_OPS_TOKENS": f"{name}=ops-token-0123456789"})

    assert settings.leadrelay_ops_tokens == {"ops-token-0123456789": name}


@pytest.mark.parametrize("name", ["-partner", "Partner", "partner one"])
def test_a_source_key_name_that_is_not_a_slug_is_refused_saying_what_a_slug_is_as_the_sources_file_does(name):
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"LEADRELAY_SOURCE_KEYS": f"{name}=partner-key-0123456789"})

    assert raised.value.problems == [
        "LEADRELAY_SOURCE_KEYS: the name of source 1 of 1 is not a slug: expected lowercase letters, digits, - and _ "
        "(at most 63, starting with a letter or digit)"
    ]


@pytest.mark.parametrize("variable", ["LEADRELAY_OPS_TOKENS", "LEADRELAY_SOURCE_KEYS"])
def test_every_problem_of_a_list_of_secrets_is_named_each_by_its_pairs(variable):
    raw = "alice, bob=b\u00e9b-s3cr-0123456789, carol=s3cr, dan, erin=erin-s3cr-0123456789, fay=\u201cfay-s3cr\u201d"

    with pytest.raises(ConfigError) as raised:
        Settings.from_env({variable: raw})

    assert raised.value.problems == [
        f"{variable}: expected comma-separated name=secret pairs, got something else as pairs 1 and 4",
        f"{variable}: expected each secret in visible ASCII characters (a request header carries no other), got "
        "another character in the secrets of pairs 2 and 6",
        f"{variable}: expected each secret to be a long random one, at least 16 characters, got a shorter one in "
        "pairs 3 and 6",
    ]
    assert "s3cr" not in str(raised.value)


def test_check_config_names_a_source_key_name_that_is_no_slug_beside_the_other_problems_of_the_value(
    environment, capsys
):
    environment.setenv("CARECYCLE_API_KEY", "cc_x")
    environment.setenv("LEADRELAY_ENCRYPTION_KEY", generate_key())
    environment.setenv("LEADRELAY_SOURCE_KEYS", "Partner One=partner-s3cr-0123456789, partner-s3cr-9876543210")

    assert main(["check-config"]) == 2

    err = capsys.readouterr().err
    assert problem_lines(err) == [
        "  - LEADRELAY_SOURCE_KEYS: expected comma-separated name=secret pairs, got something else as pair 2",
        "  - LEADRELAY_SOURCE_KEYS: the name of source 1 of 1 is not a slug: expected lowercase letters, digits, - "
        "and _ (at most 63, starting with a letter or digit)",
    ]
    assert "s3cr" not in err


def test_check_config_and_every_process_refuse_ops_tokens_naming_each_problem(environment, capsys, tmp_path):
    environment.setenv("CARECYCLE_API_KEY", "cc_x")
    environment.setenv("LEADRELAY_ENCRYPTION_KEY", generate_key())
    environment.setenv("LEADRELAY_OPS_TOKENS", "Ops Team=ops-token-0123456789, cli:root=root-token-0123456789, x")
    _start_nothing(environment)

    assert main(["check-config"]) == 2
    assert main(["web"]) == 2  # before gunicorn is started
    assert main(["worker", "--burst"]) == 2  # before it connects to Redis
    assert main(["dev", "--port", str(free_port()), "--data-dir", str(tmp_path)]) == 2  # before anything starts

    err = capsys.readouterr().err
    said = problem_lines(err)
    assert said == 4 * [
        "  - LEADRELAY_OPS_TOKENS: expected comma-separated name=secret pairs, got something else as pair 3",
        "  - LEADRELAY_OPS_TOKENS: the name of pair 1 of 3 is not a slug: expected lowercase letters, digits, - and _ "
        "(at most 63, starting with a letter or digit)",
        "  - LEADRELAY_OPS_TOKENS: the name of pair 2 of 3 is not a slug: expected lowercase letters, digits, - and _ "
        "(at most 63, starting with a letter or digit)",
    ]
    assert "token-0123456789" not in err


def test_every_secret_shared_between_names_is_named_by_its_pairs():
    with pytest.raises(ValueError, match="pairs 1 and 2; pairs 3, 4 and 5"):
        parse_ops_tokens("alice=t1,bob=t1,carol=t2,dan=t2,erin=t2")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            "partner=old-key-0123456789,partner=new-key-0123456789",
            {"old-key-0123456789": "partner", "new-key-0123456789": "partner"},
            id="rotation",
        ),
        pytest.param(
            "alice=token-0123456789, alice=token-0123456789", {"token-0123456789": "alice"}, id="same-pair-twice"
        ),
    ],
)
@pytest.mark.parametrize("parse", [parse_ops_tokens, parse_source_keys])
def test_one_name_may_hold_several_secrets(parse, raw, expected):
    assert parse(raw) == expected


def test_a_blank_web_tier_count_counts_as_unset_for_gunicorn_too(environment, monkeypatch):
    environment.setenv("LEADRELAY_ENCRYPTION_KEY", generate_key())
    environment.setenv("WEB_CONCURRENCY", " ")
    started = []

    def exec_gunicorn(path: str, argv: list[str]) -> None:
        started.append(dict(os.environ))
        raise SystemExit(0)  # execv does not return

    monkeypatch.setattr("os.execv", exec_gunicorn)

    with pytest.raises(SystemExit):
        main(["web"])

    assert "WEB_CONCURRENCY" not in started[0]  # gunicorn reads it at import, and an empty one fails there


def test_web_refuses_a_gunicorn_config_named_by_the_environment_that_is_not_there(environment, tmp_path, capsys):
    environment.setenv("LEADRELAY_ENCRYPTION_KEY", generate_key())
    environment.setenv("LEADRELAY_GUNICORN_CONFIG", str(tmp_path / "gunicorn.conf.py"))
    _start_nothing(environment)

    assert main(["web"]) == 2

    assert problem_variables(capsys.readouterr().err) == ["LEADRELAY_GUNICORN_CONFIG"]


def test_a_command_whose_redis_fails_says_so_in_one_line_without_the_password(environment, capsys):
    environment.setenv("REDIS_URL", "redis://:s3cret@127.0.0.1:1/0")  # nothing listens on port 1

    assert main(["stats"]) == 1

    err = capsys.readouterr().err
    assert err.startswith("leadrelay: Redis (redis://***@127.0.0.1:1/0) failed: ConnectionError: ")
    assert len(err.strip().splitlines()) == 1 and "s3cret" not in err


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["dev", "--port", "99999"], id="dev-port-out-of-range"),
        pytest.param(["sandbox", "--port", "-1"], id="sandbox-port-negative"),
        pytest.param(["sandbox", "--rate-limit-per-min", "0"], id="sandbox-no-rate"),
        pytest.param(["bench", "--connections", "0"], id="bench-no-connections"),
        pytest.param(["bench", "--intake-rounds", "0"], id="bench-no-rounds"),
        pytest.param(["dev", "--port", "\u0668\u0660\u0660\u0660"], id="dev-port-in-arabic-indic-digits"),
        pytest.param(["sandbox", "--port", "\uff18\uff10\uff10\uff11"], id="sandbox-port-in-fullwidth-digits"),
        pytest.param(["sandbox", "--rate-limit-per-min", "\u00b2"], id="sandbox-rate-a-superscript"),
    ],
)
def test_a_number_argument_out_of_its_range_is_refused_naming_the_argument(capsys, argv):
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert exited.value.code == 2
    assert f"argument {argv[1]}: expected a whole number from" in capsys.readouterr().err


def test_bench_runs_with_the_sizes_its_flags_give(monkeypatch):
    asked = []
    monkeypatch.setattr(bench, "run_bench", lambda options, json_path: asked.append((options, json_path)) or 0)

    argv = ["bench", "--intake-seconds", "12", "--intake-rounds", "3", "--connections", "16", "--json", "out.json"]
    assert main(argv) == 0

    [(options, json_path)] = asked
    assert (options.intake_seconds, options.intake_rounds, options.intake_connections) == (12, 3, 16)
    assert json_path == "out.json"


def test_bench_takes_turns_in_five_intake_rounds_unless_told(monkeypatch):
    asked = []
    monkeypatch.setattr(bench, "run_bench", lambda options, json_path: asked.append(options) or 0)

    assert main(["bench"]) == 0
    assert asked[0].intake_rounds == bench.BenchOptions().intake_rounds == 5


@pytest.mark.parametrize("name", ["", "night shift", "café-1", "n" * 101])
def test_a_worker_name_redis_cannot_take_as_a_client_name_is_refused_naming_the_flag(capsys, name):
    with pytest.raises(SystemExit) as exited:
        main(["worker", "--name", name, "--burst"])

    assert exited.value.code == 2
    assert "argument --name: expected a name of 1 to 100 ASCII letters, digits or punctuation" in (
        capsys.readouterr().err
    )


def test_a_sandbox_host_it_cannot_listen_on_is_refused_naming_the_flag(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["sandbox", "--host", "no-such-host.invalid"])

    assert exited.value.code == 2
    assert "argument --host: expected an address to listen on" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:S3cretPW@host:6379/0", "redis://***@host:6379/0"),
        ("unix:///tmp/redis.sock?db=1&password=S3cretPW", "unix:///tmp/redis.sock?..."),
        ("rediss://user:S3cretPW@host:6380/2?ssl_cert_reqs=none", "rediss://***@host:6380/2?..."),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ],
)
def test_a_redis_url_is_shown_without_its_password_nor_its_options(url, shown):
    assert shown_url(url) == shown


@pytest.mark.parametrize("variable", ["CARECYCLE_BASE_URL", "FACEBOOK_GRAPH_URL", "LEADRELAY_PUBLIC_URL", "REDIS_URL"])
@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param("user:S3cret#PW", id="hash-in-password"),
        pytest.param("user:S3cret?PW", id="question-mark-in-password"),
        pytest.param("user:S3cret/?#PW", id="slash-question-mark-and-hash-in-password"),
    ],
)
def test_a_url_setting_whose_password_holds_a_query_or_fragment_mark_is_refused_without_showing_it(
    variable, credentials
):
    # Unescaped, "?" or "#" ends the address where a parser reads it: the password before it is no less one.
    scheme = "redis" if variable == "REDIS_URL" else "https"
    _, problems = Settings.read_env({variable: f"{scheme}://{credentials}@host.example.com:6379/0"})

    [problem] = [p for p in problems if p.startswith(f"{variable}:")]
    assert "S3cret" not in problem and "PW" not in problem and "user" not in problem
    assert f"{scheme}://***@host.example.com" in problem


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        pytest.param("https://api.example.com/#access_token=S3cretPW", "https://api.example.com/#...", id="fragment"),
        pytest.param("ftp://api.example.com/#S3cretPW", "ftp://api.example.com/#...", id="fragment-of-a-wrong-scheme"),
        pytest.param(
            "https://api.example.com/?email=jane@example.com&key=S3cretPW",
            "https://***@example.com...",
            id="at-sign-in-the-query",
        ),
    ],
)
def test_a_url_is_shown_without_its_fragment_nor_what_follows_an_at_sign_in_its_query(url, shown):
    assert shown_url(url) == shown


def test_a_blank_port_and_a_metrics_folder_still_to_be_made_are_fine(environment, tmp_path):
    environment.setenv("CARECYCLE_API_KEY", "cc_x")
    environment.setenv("LEADRELAY_ENCRYPTION_KEY", generate_key())
    environment.setenv("PORT", " ")
    environment.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))  # gunicorn makes it at start

    assert main(["check-config"]) == 0


@pytest.mark.parametrize("value", ["debug", "WARNING", " error ", ""])
def test_gunicorn_log_levels_pass_as_gunicorn_takes_them(environment, value):
    environment.setenv("CARECYCLE_API_KEY", "cc_x")
    environment.setenv("LEADRELAY_ENCRYPTION_KEY", generate_key())
    environment.setenv("GUNICORN_LOG_LEVEL", value)

    assert main(["check-config"]) == 0


@pytest.mark.parametrize("value", ["*", "10.0.0.0/8, 192.168.1.1", "127.0.0.1,::1", "fd00::/8,", ""])
def test_proxies_trusted_for_forwarded_headers_pass_as_gunicorn_takes_them(environment, value):
    environment.setenv("CARECYCLE_API_KEY", "cc_x")
    environment.setenv("LEADRELAY_ENCRYPTION_KEY", generate_key())
    environment.setenv("FORWARDED_ALLOW_IPS", value)

    assert main(["check-config"]) == 0
