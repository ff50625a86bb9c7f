"""What the web tier needs checked before gunicorn starts it (`leadrelay web`, `leadrelay dev`)."""

from __future__ import annotations

from collections.abc import MutableMapping

from app.config import ConfigError, Settings, drop_blank_web_tier_counts, web_tier_problems
from app.sources import load_configured_sources


def checked_web_settings(environ: MutableMapping[str, str]) -> Settings:
    """The settings gunicorn's processes will read from `environ`, checked first.

    A bad variable, web-tier count or sources file is named here (exit 2) instead of failing each
    process's boot with a traceback. Blank web-tier counts are removed from `environ`: they count as
    unset, and gunicorn reads WEB_CONCURRENCY itself, where an empty one fails.
    """
    settings = Settings.from_env(environ)
    settings.require("leadrelay_encryption_key")
    drop_blank_web_tier_counts(environ)
    if problems := web_tier_problems(environ):
        raise ConfigError(problems)
    load_configured_sources(settings)
    return settings
