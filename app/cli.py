"""The `leadrelay` command: each subcommand parses its flags and calls into the modules that do the work."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import re
import socket
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from app.config import ConfigError, Settings, shown_url
from app.crypto import FingerprintSecretError

if TYPE_CHECKING:
    from marshmallow import ValidationError
    from redis import Redis

    from app.ops import Operator

Command = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `leadrelay` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.run(args))
        sys.stdout.flush()  # now, not at exit: a reader gone (`leadrelay stats | head`) is met below
        return code
    except BrokenPipeError:
        _drop_stdout()
        return 1
    except ConfigError as exc:
        print("leadrelay: configuration error:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    except FingerprintSecretError as exc:
        print(f"leadrelay: configuration error:\n  - {exc}", file=sys.stderr)
        return 2
    except RedisError as exc:
        # redis-py's messages name the host and port, never the URL's password.
        print(f"leadrelay: Redis ({_redis_url_shown()}) failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _drop_stdout() -> None:
    """Send what stdout still holds to /dev/null: Python flushes it again at exit, and that flush into a pipe no one
    reads any more would print a traceback ("Exception ignored ... BrokenPipeError") and exit 120."""
    with contextlib.suppress(OSError, ValueError):  # a stdout with no file descriptor: nothing is flushed to one
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _redis_url_shown() -> str:
    return shown_url(os.environ.get("REDIS_URL") or Settings.redis_url)


def _port(text: str) -> int:
    """A TCP port argument: 1 to 65535."""
    return _whole_number(text, 1, 65535)


def _at_least_one(text: str) -> int:
    return _whole_number(text, 1, 10**9)


def _listen_host(text: str) -> str:
    """An address to listen on, or a host name that resolves to one: checked here, as the server would otherwise stop
    with the resolver's words alone ("Name or service not known"), not saying which flag."""
    try:
        socket.getaddrinfo(text, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise argparse.ArgumentTypeError(
            f"expected an address to listen on (127.0.0.1, 0.0.0.0) or a host name that resolves, got {text[:60]!r}"
        ) from None
    return text


def _lead_id(text: str) -> str:
    """`retry --id`: a lead's id; a blank one is refused here rather than looked up ("no lead : ...")."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a lead's id, as GET /v1/leads and a lead's statusUrl give it")
    return text.strip()


def _worker_name(text: str) -> str:
    """A worker's `--name`: RQ sets it as the worker's Redis client name, which Redis takes of ASCII from ! to ~ only
    (a space or an accent made RQ warn outside the JSON log, and the name went unseen in CLIENT LIST)."""
    if not re.fullmatch(r"[!-~]{1,100}", text):
        raise argparse.ArgumentTypeError(
            "expected a name of 1 to 100 ASCII letters, digits or punctuation, without spaces"
        )
    return text


def _whole_number(text: str, low: int, high: int) -> int:
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit()) or not low <= int(digits) <= high:  # not "٨٠٠٠", "８０００", "²"
        raise argparse.ArgumentTypeError(f"expected a whole number from {low} to {high}, got {text[:20]!r}")
    return int(digits)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leadrelay", description="Relays sales leads to careCycle.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = sub.add_parser("dev", help="run web, worker, sandbox and Redis for a first look (Ctrl-C stops all)")
    dev.add_argument("--port", type=_port, default=8000, help="web port (default 8000)")
    dev.add_argument(
        "--data-dir", default=".leadrelay", help="where dev keeps its key, credentials and Redis (default .leadrelay)"
    )
    dev.set_defaults(run=_dev)

    web = sub.add_parser("web", help="the production web tier (gunicorn with deploy/gunicorn.conf.py)")
    web.set_defaults(run=_web)

    worker = sub.add_parser("worker", help="an RQ worker with scheduler for the relay's queues")
    worker.add_argument("--burst", action="store_true", help="deliver and retrieve what is due now, then exit")
    worker.add_argument(
        "--name",
        type=_worker_name,
        help="worker name (default: generated; ASCII without spaces); refused while a worker of that name runs",
    )
    worker.set_defaults(run=_worker)

    sandbox = sub.add_parser("sandbox", help="the careCycle sandbox alone, for tests and demos")
    sandbox.add_argument(
        "--host", type=_listen_host, default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0: all)"
    )
    sandbox.add_argument("--port", type=_port, default=8001, help="port to listen on (default 8001)")
    sandbox.add_argument("--api-key", action="append", help="accepted x-api-key (repeatable; default cc_sandbox)")
    sandbox.add_argument(
        "--rate-limit-per-min", type=_at_least_one, default=60, help="uploads a minute per key before 429 (default 60)"
    )
    sandbox.set_defaults(run=_sandbox)

    stats = sub.add_parser("stats", help="the numbers of /v1/stats, as JSON")
    stats.add_argument(
        "--source",
        metavar="SLUG",
        help="the counts by status of this source alone: one this environment configures, or one a lead came from "
        "(every other number stays relay-wide)",
    )
    stats.set_defaults(run=_stats)

    retry = sub.add_parser("retry", help="re-queue dead or rejected leads by filter, or one lead by --id (audited)")
    retry.add_argument("--status", choices=["dead", "rejected"], help="which failed leads (required without --id)")
    retry.add_argument("--source", help="only leads of this source")
    retry.add_argument("--since", help="only leads received since: ISO 8601 time or epoch seconds")
    retry.add_argument(
        "--id",
        dest="lead_id",
        type=_lead_id,
        help="re-queue this one lead (dead, rejected or duplicate) instead of a filter",
    )
    retry.set_defaults(run=_retry)

    check = sub.add_parser("check-config", help="validate the environment and the sources file; list every problem")
    check.set_defaults(run=_check_config)

    bench = sub.add_parser("bench", help="the performance benchmark (delivery against the sandbox)")
    bench.add_argument("--leads", type=_at_least_one, default=12000, help="leads posted for the backlog run")
    bench.add_argument(
        "--rate-limit-per-min", type=_at_least_one, default=600, help="sandbox and relay limit for the run"
    )
    bench.add_argument("--low-load-leads", type=_at_least_one, default=30, help="leads posted one by one at low load")
    bench.add_argument("--intake-seconds", type=_at_least_one, default=10, help="seconds of load per intake endpoint")
    bench.add_argument(
        "--connections", type=_at_least_one, default=32, help="concurrent connections for the intake load"
    )
    bench.add_argument(
        "--intake-rounds",
        type=_at_least_one,
        default=5,
        help="rounds the intake endpoints take turns in (their seconds split between them)",
    )
    bench.add_argument("--json", dest="json_path", help="also write the JSON result to this file")
    bench.set_defaults(run=_bench)
    return parser


def _dev(args: argparse.Namespace) -> int:
    from app.devserver import run_dev

    return run_dev(port=args.port, data_dir=args.data_dir)


def _web(args: argparse.Namespace) -> int:
    from app.webtier import checked_web_settings

    checked_web_settings(os.environ)  # gunicorn is exec'd with this environment
    argv = [sys.executable, "-m", "gunicorn", "--config", _gunicorn_config(), "app:create_app()"]
    os.execv(argv[0], argv)


def _gunicorn_config() -> str:
    """LEADRELAY_GUNICORN_CONFIG, else deploy/gunicorn.conf.py in the working directory or beside the code."""
    named = os.environ.get("LEADRELAY_GUNICORN_CONFIG", "").strip()
    if named:
        if not os.path.isfile(named):  # never another file in its place, as if the variable were unset
            raise ConfigError([f"LEADRELAY_GUNICORN_CONFIG: expected the path of a gunicorn.conf.py, got {named!r}"])
        return named
    candidates = [
        os.path.join(os.getcwd(), "deploy", "gunicorn.conf.py"),
        os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "deploy", "gunicorn.conf.py"),
    ]
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise ConfigError(["LEADRELAY_GUNICORN_CONFIG: no gunicorn.conf.py found (set it, or run from the repository)"])


def _worker(args: argparse.Namespace) -> int:
    from app.logs import configure_logging
    from app.startup import WORKER_REQUIREMENTS, checked_settings
    from workers.runner import run_worker

    configure_logging()
    # Every problem named at once, as check-config does: the worker would stop at the first kind it met.
    settings = checked_settings(os.environ, WORKER_REQUIREMENTS)
    run_worker(settings, burst=args.burst, name=args.name)
    return 0


def _sandbox(args: argparse.Namespace) -> int:
    from app.logs import configure_logging
    from app.sandbox import run_sandbox

    configure_logging()  # JSON lines, as the web tier's and the worker's: `leadrelay dev` shows them together
    keys = set(args.api_key or ["cc_sandbox"])
    run_sandbox(args.host, args.port, keys, args.rate_limit_per_min)
    return 0


def _connect(settings: Settings) -> Redis:
    from redis import Redis

    return Redis.from_url(settings.redis_url)


def _stats(args: argparse.Namespace) -> int:
    import time

    from marshmallow import ValidationError

    from app.ops import UNKNOWN_SOURCE_EXPECTED, StatsQuery, UnknownStatsSourceError, collect_stats
    from app.schemas.ops import StatsArgsSchema
    from app.sources import check_configured_sources
    from app.store import Store

    try:
        source = StatsArgsSchema().load({} if args.source is None else {"source": args.source}).get("source")
    except ValidationError as exc:
        return _flags_refused(exc)
    settings = Settings.from_env()
    store = Store.from_settings(settings, _connect(settings))
    # The sources file's slugs even when it holds problems: stats need no more of it than the names.
    configured = frozenset(known.slug for known in check_configured_sources(settings)[0]) if source else frozenset()
    query = StatsQuery(store, settings.carecycle_rate_limit_per_min, time.time(), source, configured)
    try:
        print(json.dumps(collect_stats(query), indent=2))
    except UnknownStatsSourceError:
        return _usage_error(f"--source: {UNKNOWN_SOURCE_EXPECTED}")
    return 0


def _retry(args: argparse.Namespace) -> int:
    from marshmallow import ValidationError

    from app.errors import LEAD_GONE_REASON
    from app.ops import LeadNotRetryableError
    from app.schemas.ops import RetryFilterSchema, requeued_body
    from app.store import LeadNotFoundError

    actor = f"cli:{_os_user()}"  # never an ops token's name: those are slugs, which hold no ":"
    if args.lead_id is not None:
        if args.status or args.source or args.since:
            return _usage_error("--id re-queues one lead; it cannot be combined with --status, --source or --since")
        try:
            _operator().retry_lead(args.lead_id, actor)
        except LeadNotFoundError:
            return _usage_error(f"no lead {args.lead_id}: {LEAD_GONE_REASON}", code=1)
        except LeadNotRetryableError as exc:
            return _usage_error(exc.reason, code=1)
        print(json.dumps({"requeued": 1}))
        return 0
    given = {"status": args.status, "source": args.source, "since": args.since}
    try:
        selection = RetryFilterSchema().load({name: value for name, value in given.items() if value is not None})
    except ValidationError as exc:
        return _flags_refused(exc)
    try:
        result = _operator().retry_matching(selection, actor)
    except BaseException as exc:  # stopped part way (Ctrl-C, a setting a kept lead needs): what it re-queued by then
        print("".join(f"leadrelay: {note}\n" for note in getattr(exc, "__notes__", ())), end="", file=sys.stderr)
        raise
    print(json.dumps(requeued_body(result.requeued, result.skipped_reasons)))
    return 0


def _operator() -> Operator:
    from app.clock import SystemClock
    from app.crypto import RecordCipher
    from app.intake import Intake
    from app.ops import Operator
    from app.queues import wake_delivery
    from app.resubmit import Normalizing, Resubmitter
    from app.sources import load_configured_sources
    from app.store import Store

    settings = Settings.from_env()
    redis = _connect(settings)
    store = Store.from_settings(settings, redis)
    clock = SystemClock()
    wake = lambda: wake_delivery(redis, store.lanes)  # noqa: E731 - named once, used twice

    @functools.cache
    def normalizing() -> Normalizing:
        """Read only once a retried lead holds a kept submission: retrying leads with records needs neither the
        key nor the sources file. Without them such a lead cannot be retried: a configuration error, as a bad
        sources file is, so that a bulk retry does not pass over the leads silently."""
        if not settings.leadrelay_encryption_key:
            raise ConfigError(["LEADRELAY_ENCRYPTION_KEY: required to open a kept submission and normalize it again"])
        if not settings.leadrelay_sources:
            # A kept submission is a Google or Meta lead's, and those sources are declared in the file only.
            raise ConfigError(["LEADRELAY_SOURCES: required to normalize a kept submission again under its source"])
        cipher = RecordCipher(settings.leadrelay_encryption_key)
        sources = load_configured_sources(settings)
        # As the web tier's: the sources' duplicate windows decide whether the lead's person is checked and kept.
        return Normalizing(cipher, sources, Intake.configured(store, cipher, clock, wake, settings, sources))

    return Operator(store, clock, wake, Resubmitter(store, clock, normalizing).resubmit)


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in the environment nor the password database
        return "unknown"


def _usage_error(message: str, code: int = 2) -> int:
    print(f"leadrelay: {message}", file=sys.stderr)
    return code


def _flags_refused(exc: ValidationError) -> int:
    """A usage error naming each flag a schema refused, with what it expected."""
    problems = exc.normalized_messages()  # type: ignore[no-untyped-call]
    return _usage_error("; ".join(f"--{name}: {' '.join(map(str, msgs))}" for name, msgs in problems.items()))


def _check_config(args: argparse.Namespace) -> int:
    from app.startup import EVERY_TIER_REQUIREMENTS, configuration_problems
    from app.webtier import web_tier_problems

    # Malformed values, missing secrets and the sources file are all checked, so one run lists every problem; the
    # secrets are those either tier needs.
    _, sources, problems = configuration_problems(os.environ, EVERY_TIER_REQUIREMENTS)
    problems += web_tier_problems()
    if problems:
        raise ConfigError(problems)
    print(f"configuration OK: {len(sources)} sources")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from app.bench import BenchOptions, run_bench

    options = BenchOptions(
        leads=args.leads,
        rate_limit_per_min=args.rate_limit_per_min,
        low_load_leads=args.low_load_leads,
        intake_seconds=args.intake_seconds,
        intake_connections=args.connections,
        intake_rounds=args.intake_rounds,
    )
    return run_bench(options, json_path=args.json_path)


if __name__ == "__main__":
    raise SystemExit(main())
