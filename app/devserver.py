"""`leadrelay dev`: Redis, the careCycle sandbox, a worker and the web tier from one command, for a first run.

What it makes (encryption key, dev credentials, Redis data) lives in one data folder and is reused on the
next run. Starting, watching and stopping the processes is `app.devstack`'s part.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from redis import Redis
from redis.exceptions import RedisError

from app.config import shown_url
from app.credentials import NamedSecretsError, parse_ops_tokens, parse_source_keys
from app.crypto import FingerprintSecretError, RecordCipher, generate_key
from app.devredis import (
    REDIS_LOG_FILE,
    lock_redis_dir,
    note_redis_binary,
    redis_answers,
    redis_binary_for,
    redis_server_argv,
)
from app.devstack import DevError, DevStack, DevStopped, stop_on_signals
from app.ports import LOOPBACK, free_port, is_http_ok, is_port_free, is_port_open
from app.startup import EVERY_TIER_REQUIREMENTS
from app.store.fingerprints import FingerprintSecrets
from app.webtier import checked_web_settings

KEY_FILE = "encryption.key"
CREDENTIALS_FILE = "dev-credentials.json"
REDIS_DIR = "redis"
DEV_NAME = "dev"
SANDBOX_API_KEY = "cc_dev_sandbox"
SANDBOX_RATE_LIMIT_PER_MIN = 60
REDIS_START_TIMEOUT_SECONDS = 10.0
SANDBOX_START_TIMEOUT_SECONDS = 10.0
WEB_START_TIMEOUT_SECONDS = 30.0  # gunicorn imports the app in each worker, and readiness needs the worker up
# What the children's settings are checked with before dev starts its Redis and sandbox (their URLs take this form).
STAND_IN_REDIS_URL = f"redis://{LOOPBACK}:6379/0"
STAND_IN_SANDBOX_URL = f"http://{LOOPBACK}:8001"
SAMPLE_LEAD_JSON = '{"phoneNumber":"+12125550142","firstName":"Jane","postalCode":"10001"}'

Say = Callable[[str], None]


@dataclass(frozen=True)
class DevCredential:
    """A named secret the dev stack accepts, and where it came from."""

    name: str
    secret: str
    env_value: str  # what the children get in the variable: `name=secret[,...]`
    origin: str


@dataclass(frozen=True)
class DevSetup:
    """What the banner tells: where things are and how to call them."""

    web_url: str
    carecycle_url: str
    sandbox_url: str | None
    source: DevCredential
    ops: DevCredential
    data_dir: Path
    key_origin: str
    redis: str


def run_dev(port: int, data_dir: str, *, environ: Mapping[str, str] | None = None, out: TextIO | None = None) -> int:
    """Run everything until Ctrl-C or SIGTERM (exit 0) or until a child dies (exit 1)."""
    stream = out or sys.stdout
    stack = DevStack(stream)
    say = stack.say
    env = dict(os.environ if environ is None else environ)
    if not is_port_free(port):
        say(f"leadrelay dev: port {port} is in use; pick another with --port")
        return 1
    with stop_on_signals(stack.request_stop):
        try:
            setup = _start(stack, env, port, Path(data_dir).resolve(), say)
            say(render_banner(setup))
            stack.supervise()
        except DevStopped:
            pass
        except DevError as exc:
            say(f"leadrelay dev: {exc}; stopping everything")
            return 1
        finally:
            stack.stop()
    say("leadrelay dev: stopped")
    return 0


def _start(stack: DevStack, env: dict[str, str], port: int, data_dir: Path, say: Say) -> DevSetup:
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DevError(f"--data-dir: cannot make the folder {str(data_dir)[:200]!r} ({exc.strerror})") from exc
    key, key_origin = load_or_create_key(data_dir, env, say)
    source, ops = dev_credentials(data_dir, env)
    sandboxed = not env.get("CARECYCLE_API_KEY", "").strip()
    given_redis = _answering_redis_url(env)
    web_url = f"http://{LOOPBACK}:{port}"
    # The Redis and sandbox about to be started stand in as loopback URLs (a REDIS_URL that answers is itself), so
    # that what the worker and the web tier would each stop at is named at once, before anything starts.
    redis_checked = given_redis or STAND_IN_REDIS_URL
    child_env = child_environ(env, redis_checked, key, STAND_IN_SANDBOX_URL if sandboxed else None)
    child_env.update(LEADRELAY_SOURCE_KEYS=source.env_value, LEADRELAY_OPS_TOKENS=ops.env_value)
    child_env.setdefault("LEADRELAY_PUBLIC_URL", web_url)
    settings = checked_web_settings(child_env, EVERY_TIER_REQUIREMENTS)
    redis_url, redis_label = _start_redis(stack, env, given_redis, data_dir, say)
    own_redis_dir = None if given_redis is not None else data_dir / REDIS_DIR
    check_key_opens_the_store(redis_url, key, key_origin, own_redis_dir)
    sandbox_url = _start_sandbox(stack, env) if sandboxed else None
    child_env.update(started_services(redis_url, sandbox_url))
    stack.spawn("worker", [sys.executable, "-m", "app.cli", "worker"], child_env)
    _start_web(stack, child_env, port)
    carecycle_url = sandbox_url or settings.carecycle_base_url
    return DevSetup(web_url, carecycle_url, sandbox_url, source, ops, data_dir, key_origin, redis_label)


def load_or_create_key(data_dir: Path, environ: Mapping[str, str], say: Say) -> tuple[str, str]:
    """The encryption key and where it came from: the environment, `<data_dir>/encryption.key`, or new."""
    from_env = environ.get("LEADRELAY_ENCRYPTION_KEY", "").strip()
    if from_env:
        return from_env, "LEADRELAY_ENCRYPTION_KEY"
    path = data_dir / KEY_FILE
    if path.exists():
        key = read_dev_file(path).strip()
        if not key:
            raise DevError(f"{path} is empty; delete it to make a new key (queued leads are then unreadable)")
        try:
            RecordCipher(key)
        except ValueError as exc:  # the message names what is expected, never the file's text
            raise DevError(
                f"{path} does not hold an encryption key ({exc}); restore it, or delete it to make a new key "
                "(queued leads are then unreadable)"
            ) from None
        return key, str(path)
    key = generate_key()
    write_private_file(path, key + "\n")
    say(f"made a new encryption key: {path} — keep it; queued leads cannot be read without it")
    return key, str(path)


def check_key_opens_the_store(redis_url: str, key: str, key_origin: str, own_redis_dir: Path | None) -> None:
    """Stop dev, saying why, when its Redis (REDIS_URL's, or its own in `own_redis_dir`) holds a relay's data
    sealed with another encryption key (another data folder's, a relay's): the web tier would answer every lead
    503, as a relay does when its key was dropped."""
    redis = Redis.from_url(redis_url, socket_connect_timeout=5, socket_timeout=5)
    try:
        FingerprintSecrets(redis).secret(RecordCipher(key))
    except FingerprintSecretError:
        if own_redis_dir is not None:
            way_out = f"put back the key that sealed it, or delete {own_redis_dir} to start with an empty Redis"
        else:
            way_out = (
                "unset REDIS_URL so that leadrelay dev starts its own Redis, point REDIS_URL at an empty database, "
                "or set LEADRELAY_ENCRYPTION_KEY to the key that sealed its data"
            )
        raise DevError(
            f"the Redis in use holds a relay's data sealed with an encryption key other than {key_origin}: {way_out}"
        ) from None
    except RedisError as exc:
        raise DevError(f"Redis did not answer while checking the encryption key ({type(exc).__name__})") from None
    finally:
        redis.close()


def dev_credentials(data_dir: Path, environ: Mapping[str, str]) -> tuple[DevCredential, DevCredential]:
    """The source API key and ops token: from LEADRELAY_SOURCE_KEYS / _OPS_TOKENS, else the dev file.

    A variable that holds no pair at all (blank, or commas alone) counts as unset, as every process reads it. One that
    cannot be read is handed to the children as it is, with no secret to show: the check of their settings names its
    problems beside every other before anything starts.
    """
    path = data_dir / CREDENTIALS_FILE
    found: list[DevCredential] = []
    for variable, field, parse in (
        ("LEADRELAY_SOURCE_KEYS", "sourceKey", parse_source_keys),
        ("LEADRELAY_OPS_TOKENS", "opsToken", parse_ops_tokens),
    ):
        raw = environ.get(variable, "").strip()
        if raw.replace(",", "").strip():
            found.append(_credential_from_env(raw, variable, parse))
        else:  # the file is made only when some credential is not in the environment
            secret = load_or_create_credentials(path)[field]
            found.append(DevCredential(DEV_NAME, secret, f"{DEV_NAME}={secret}", str(path)))
    return found[0], found[1]


def load_or_create_credentials(path: Path) -> dict[str, str]:
    """`{"sourceKey", "opsToken"}` from `path`, made once with fresh random secrets (mode 0600)."""
    if not path.exists():
        made = {"sourceKey": secrets.token_urlsafe(24), "opsToken": secrets.token_urlsafe(24)}
        write_private_file(path, json.dumps(made, indent=2) + "\n")
        return made
    try:
        stored = json.loads(read_dev_file(path))
        return {"sourceKey": str(stored["sourceKey"]), "opsToken": str(stored["opsToken"])}
    except (ValueError, KeyError, TypeError) as exc:
        raise DevError(f"{path} is not a dev credentials file; delete it to make new credentials") from exc


def write_private_file(path: Path, text: str) -> None:
    """Create `path` readable by its owner only; never overwrites. Raises `DevError` naming it when it cannot."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
    except OSError as exc:
        raise DevError(
            f"{path} cannot be made ({exc.strerror}); move what is there away, or use another --data-dir"
        ) from exc


def read_dev_file(path: Path) -> str:
    """The text of one of dev's files; raises `DevError` naming it when it cannot be read."""
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not text"
        raise DevError(f"{path} cannot be read ({why}); restore it, or delete it to make a new one") from exc


def _credential_from_env(raw: str, variable: str, parse: Callable[[str], dict[str, str]]) -> DevCredential:
    """The first pair of `raw`; none when `raw` cannot be read (its problems are named with the children's)."""
    try:
        pairs = parse(raw)
    except NamedSecretsError:
        pairs = {}
    secret, name = next(iter(pairs.items()), ("", ""))
    return DevCredential(name, secret, raw, variable)


def child_environ(environ: Mapping[str, str], redis_url: str, key: str, sandbox_url: str | None) -> dict[str, str]:
    """The environment of the worker and web children (credentials are added by the caller)."""
    return {
        **environ,
        "LEADRELAY_ENCRYPTION_KEY": key,
        "PYTHONUNBUFFERED": "1",
        **started_services(redis_url, sandbox_url),
    }


def started_services(redis_url: str, sandbox_url: str | None) -> dict[str, str]:
    """The variables that point the children at the Redis in use and at the careCycle sandbox, when dev runs one."""
    env = {"REDIS_URL": redis_url}
    if sandbox_url is not None:
        env.update(CARECYCLE_BASE_URL=sandbox_url, CARECYCLE_API_KEY=SANDBOX_API_KEY)
    return env


def _answering_redis_url(env: Mapping[str, str]) -> str | None:
    """REDIS_URL when it is set and its Redis answers: the Redis dev uses instead of starting its own."""
    url = env.get("REDIS_URL", "").strip()
    return url if url and redis_answers(url) else None


def _start_redis(
    stack: DevStack, env: Mapping[str, str], given: str | None, data_dir: Path, say: Say
) -> tuple[str, str]:
    """The Redis in use and how the banner names it: `given` (REDIS_URL, answering), else one dev starts."""
    url = env.get("REDIS_URL", "").strip()
    shown = shown_url(url)  # never print a password
    if given is not None:
        return given, f"{shown} (REDIS_URL)"
    if url:
        say(f"REDIS_URL {shown} does not answer; starting a local Redis")
    redis_dir = data_dir / REDIS_DIR
    try:
        redis_dir.mkdir(exist_ok=True)
    except OSError as exc:
        raise DevError(f"{redis_dir} cannot be made a folder ({exc.strerror}); move what is there away") from exc
    lock = lock_redis_dir(redis_dir)
    stack.hold(lock)
    binary = redis_binary_for(redis_dir)
    port = free_port()
    own_url = f"redis://{LOOPBACK}:{port}/0"
    # The Redis holds the lock too: killed, this run would leave it running on the folder.
    stack.spawn("redis", redis_server_argv(binary, port, redis_dir), env, redis_url=own_url, pass_fds=(lock,))
    log = redis_dir / REDIS_LOG_FILE
    try:
        stack.wait_for(f"Redis ({binary})", lambda: redis_answers(own_url), REDIS_START_TIMEOUT_SECONDS)
    except DevError as exc:
        raise DevError(f"{exc}; its log: {log}") from exc
    note_redis_binary(redis_dir, binary)
    return own_url, f"{own_url} ({Path(binary).name}, AOF in {redis_dir})"


def _start_sandbox(stack: DevStack, env: Mapping[str, str]) -> str:
    port = free_port()
    argv = [sys.executable, "-m", "app.cli", "sandbox", "--port", str(port)]
    argv += ["--api-key", SANDBOX_API_KEY, "--rate-limit-per-min", str(SANDBOX_RATE_LIMIT_PER_MIN)]
    stack.spawn("sandbox", argv, {**env, "PYTHONUNBUFFERED": "1"})
    stack.wait_for("the careCycle sandbox", lambda: is_port_open(port), SANDBOX_START_TIMEOUT_SECONDS)
    return f"http://{LOOPBACK}:{port}"


def _start_web(stack: DevStack, env: Mapping[str, str], port: int) -> None:
    config = gunicorn_config_path()
    if not config.is_file():
        raise DevError(f"{config} not found: `leadrelay dev` runs from a checkout of the repository")
    argv = [sys.executable, "-m", "gunicorn", "--config", str(config), "--bind", f"{LOOPBACK}:{port}"]
    stack.spawn("web", [*argv, "app:create_app()"], env)
    stack.wait_for("the web tier (/readyz)", lambda: is_http_ok(port, "/readyz"), WEB_START_TIMEOUT_SECONDS)


def gunicorn_config_path() -> Path:
    """`deploy/gunicorn.conf.py` of the repository holding the `app` package."""
    return Path(__file__).resolve().parent.parent / "deploy" / "gunicorn.conf.py"


def render_banner(setup: DevSetup) -> str:
    """What `leadrelay dev` prints once everything answers."""
    web, sandbox = setup.web_url, setup.sandbox_url
    # A real careCycle's URL is shown as any other setting's: a user and password in it are not dev's to print.
    carecycle = (
        f"sandbox {sandbox} (what it received: {sandbox}/_sandbox/stats)" if sandbox else shown_url(setup.carecycle_url)
    )
    lines = [
        "",
        "leadrelay dev is ready — Ctrl-C stops everything.",
        "",
        f"  intake          POST {web}/v1/leads",
        f"  status          GET  {web}/v1/stats  (ops token)",
        f"  dashboard       {web}/dashboard",
        f"  docs            {web}/docs",
        f"  careCycle       {carecycle}",
        "",
        f"  source API key  {setup.source.secret}  (source {setup.source.name!r}, from {setup.source.origin})",
        f"  ops token       {setup.ops.secret}  (name {setup.ops.name!r}, from {setup.ops.origin})",
        f"  data            {setup.data_dir}",
        f"  encryption key  {setup.key_origin}",
        f"  Redis           {setup.redis}",
        "",
        "Post a sample lead:",
        f"  curl -sS {web}/v1/leads {_header('X-Api-Key', setup.source.secret)} \\",
        f"    -H \"Content-Type: application/json\" -d '{SAMPLE_LEAD_JSON}'",
        "Follow it (the statusUrl in the answer) and see the numbers:",
        f"  curl -sS {web}/v1/leads/<id> {_header('Authorization', 'Bearer ' + setup.ops.secret)}",
        f"  curl -sS {web}/v1/stats {_header('Authorization', 'Bearer ' + setup.ops.secret)}",
        "",
    ]
    return "\n".join(lines)


def _header(name: str, value: str) -> str:
    if re.fullmatch(r"[\w.~+/= -]*", value):
        return f'-H "{name}: {value}"'
    escaped = f"{name}: {value}".replace("'", "'\\''")
    return f"-H '{escaped}'"
