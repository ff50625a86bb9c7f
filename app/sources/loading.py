"""Loading sources: the TOML file named by `LEADRELAY_SOURCES` and the API keys of `LEADRELAY_SOURCE_KEYS`, each
table checked on its own and the sources against each other, every problem listed."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Collection, Mapping
from typing import Any

from marshmallow import ValidationError

from app.config import ConfigError, Settings
from app.credentials import source_name_problems
from app.schemas.sources import SourceSchema, SourcesFileSchema, validate_slug
from app.sources.checks import custom_fields_without_room, routing_clashes, short_keys, windows_past_retention
from app.sources.registry import SourceRegistry
from app.sources.source import (
    DEFAULT_DOUBLE_SUBMIT_SECONDS,
    DEFAULT_FORM_RATE_LIMIT_PER_IP_PER_MIN,
    DEFAULT_FORM_RATE_LIMIT_PER_MIN,
    DEFAULT_HONEYPOT_FIELD,
    ConsentKeys,
    LeadSource,
    SourceKind,
)

SECONDS_PER_DAY = 86400


class SourcesError(ConfigError):
    """The sources file cannot be used; `problems` lists every reason, each naming where."""


def load_configured_sources(settings: Settings) -> SourceRegistry:
    """The sources the settings name: the sources file, the API keys, none holding an ops token, and no
    duplicate window longer than leads are kept; raises `SourcesError` listing every problem."""
    sources, problems = check_configured_sources(settings)
    if problems:
        raise SourcesError(problems)
    return SourceRegistry(sources)


def check_configured_sources(
    settings: Settings, *, ops_tokens: Collection[str] | None = None
) -> tuple[list[LeadSource], list[str]]:
    """The sources the settings name and every problem `load_configured_sources` refuses them for. With problems,
    the sources (those of a readable kind) are only for more checks, such as the settings their kinds need.

    `ops_tokens` stand in for the settings' (the tokens as written in a LEADRELAY_OPS_TOKENS with problems of its
    own, of which the settings hold none), so that a source secret reused as one is refused beside those problems.
    """
    sources, problems = _read_sources(
        settings.leadrelay_sources,
        settings.environ,
        settings.leadrelay_source_keys,
        ops_tokens=settings.leadrelay_ops_tokens if ops_tokens is None else ops_tokens,
    )
    return sources, problems + windows_past_retention(sources, settings)


def load_sources(
    path: str | None,
    environ: Mapping[str, str],
    api_keys: Mapping[str, str],
    *,
    ops_tokens: Collection[str] = (),
) -> SourceRegistry:
    """Sources from the file at `path` (if any) plus `api_keys` (secret -> slug); raises `SourcesError`
    listing every problem."""
    sources, problems = _read_sources(path, environ, api_keys, ops_tokens=ops_tokens)
    if problems:
        raise SourcesError(problems)
    return SourceRegistry(sources)


def _read_sources(
    path: str | None,
    environ: Mapping[str, str],
    api_keys: Mapping[str, str],
    *,
    ops_tokens: Collection[str] = (),
) -> tuple[list[LeadSource], list[str]]:
    """The sources of `api_keys` (secret -> slug) and of the file at `path` (if any), and every problem found:
    each table's in file order, then those between sources. With problems, the sources are only for more checks.

    A source secret that is also one of `ops_tokens` is refused: whoever holds the source's key could
    then read every lead's status and re-queue leads.
    """
    # Several keys may name one source (a new key beside the old one while clients move over).
    keys_by_slug: dict[str, list[str]] = {}
    for secret, slug in api_keys.items():
        keys_by_slug.setdefault(slug, []).append(secret)
    sources = [LeadSource(slug=slug, secret=",".join(secrets)) for slug, secrets in keys_by_slug.items()]
    # Settings read from the environment hold none that is no slug (`parse_source_keys`); others might.
    problems = [f"LEADRELAY_SOURCE_KEYS: {problem}" for problem in source_name_problems(list(keys_by_slug))]
    if path:
        from_file, file_problems = _read_sources_file(path, environ)
        sources += from_file
        problems += file_problems
    slugs = [s.slug for s in sources]
    repeated = sorted({slug for slug in slugs if slugs.count(slug) > 1})
    problems += [f"sources.{slug}: defined twice (file and LEADRELAY_SOURCE_KEYS)" for slug in repeated]
    problems += routing_clashes(sources)  # across the file and LEADRELAY_SOURCE_KEYS
    shared = [source.slug for source in sources if any(secret in ops_tokens for secret in source.secrets)]
    problems += [f"sources.{slug}: a secret of this source is also an ops token" for slug in shared]
    return sources, problems


def _read_sources_file(path: str, environ: Mapping[str, str]) -> tuple[list[LeadSource], list[str]]:
    """The sources of one TOML file, and every problem of the file and its tables.

    Each `[sources.<slug>]` table is checked on its own, so one bad table does not hide another's problems.
    A table with problems still yields a source of its valid keys (with a readable kind), so that the checks
    between sources (a secret or Meta id used twice, windows past retention) see it too; such a source is
    never used, as the problems stop the process.
    """
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except OSError as exc:
        return [], [f"LEADRELAY_SOURCES: cannot read {path}: {exc.strerror}"]
    except tomllib.TOMLDecodeError as exc:
        return [], [f"LEADRELAY_SOURCES: {path} is not valid TOML: {exc}"]
    except UnicodeDecodeError:
        return [], [f"LEADRELAY_SOURCES: {path} is not UTF-8 text (TOML files are)"]
    problems: list[str] = []
    try:
        tables: dict[str, Any] = SourcesFileSchema().load(raw)["sources"]
    except ValidationError as exc:
        problems += _flatten(exc.normalized_messages())  # type: ignore[no-untyped-call]
        tables = exc.valid_data.get("sources", {}) if isinstance(exc.valid_data, dict) else {}
    sources = []
    for slug, table in tables.items():
        loaded, found = _load_table(slug, table)
        problems += found
        if loaded is not None:
            sources.append(_source(slug, loaded, environ, problems))
    problems += short_keys(sources)
    problems += custom_fields_without_room(sources)
    return sources, problems


def _load_table(slug: str, table: Any) -> tuple[dict[str, Any] | None, list[str]]:
    """One `[sources.<slug>]` table's valid keys (None without a valid kind) and its problems: its slug's,
    then its keys'."""
    where = f"sources.{_toml_key(slug)}"
    found: list[str] = []
    try:
        validate_slug(slug)
    except ValidationError as exc:
        found += _flatten(exc.messages, where)
    if not isinstance(table, dict):
        return None, [*found, f"{where}: expected a table of the source's keys, written [{where}]"]
    try:
        return SourceSchema().load(table), found
    except ValidationError as exc:
        found += _flatten(exc.normalized_messages(), where)  # type: ignore[no-untyped-call]
        valid = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        return (valid if "kind" in valid else None), found


def _source(slug: str, table: dict[str, Any], environ: Mapping[str, str], problems: list[str]) -> LeadSource:
    secret = None
    if table.get("secret_env"):
        secret = environ.get(table["secret_env"]) or None
        if secret is None:
            problems.append(f"sources.{slug}.secret_env: environment variable {table['secret_env']} is not set")
    days = table.get("duplicate_window_days", 0)
    defaults = ConsentKeys()
    return LeadSource(
        slug=slug,
        kind=SourceKind(table["kind"]),
        secret=secret,
        secret_env=table.get("secret_env"),
        source_id=table.get("source_id"),
        lead_cost=table.get("lead_cost"),
        field_map=table.get("field_map", {}),
        static_custom_fields=table.get("custom_fields", {}),
        allowed_origins=tuple(table.get("allowed_origins", [])),
        redirect_allowlist=tuple(table.get("redirect_allowlist", [])),
        thank_you_url=table.get("thank_you_url"),
        honeypot_field=table.get("honeypot_field", DEFAULT_HONEYPOT_FIELD),
        double_submit_seconds=table.get("double_submit_seconds", DEFAULT_DOUBLE_SUBMIT_SECONDS),
        duplicate_window_seconds=int(days * SECONDS_PER_DAY),
        rate_limit_per_ip_per_min=table.get("rate_limit_per_ip_per_min", DEFAULT_FORM_RATE_LIMIT_PER_IP_PER_MIN),
        rate_limit_per_min=table.get("rate_limit_per_min", DEFAULT_FORM_RATE_LIMIT_PER_MIN),
        consent_keys=ConsentKeys(**table["consent_keys"]) if "consent_keys" in table else defaults,
        page_ids=tuple(table.get("page_ids", [])),
        form_ids=tuple(table.get("form_ids", [])),
        deliver_test_leads=table.get("deliver_test_leads", False),
        accept_external_id=table.get("accept_external_id", False),
        accept_null_origin=table.get("accept_null_origin", False),
        consent_checkbox=table.get("consent_checkbox", False),
    )


def _flatten(messages: Any, where: str = "") -> list[str]:
    """marshmallow's nested messages as `sources.<slug>.<key>: message` lines, each key as TOML writes it."""
    if isinstance(messages, dict):
        lines = []
        for key, value in messages.items():
            # A Dict field nests its entries' errors under "key" (the slug) and "value" (the table); a schema's own
            # (a table that is none) come under "_schema".
            if key in ("key", "value", "_schema"):
                inner = where
            else:
                inner = f"{where}.{_toml_key(key)}" if where else _toml_key(key)
            lines += _flatten(value, inner)
        return lines
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [f"{where}: {m}" for m in messages]
    if isinstance(messages, list):
        return [line for m in messages for line in _flatten(m, where)]
    return [f"{where}: {messages}"]


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: object) -> str:
    """A key of a problem's path as TOML writes it: bare, or quoted (`field_map."First Name"`); a list's index bare."""
    text = str(key)
    return text if _BARE_KEY.match(text) else json.dumps(text, ensure_ascii=False)
