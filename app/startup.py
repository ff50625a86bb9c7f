"""What stops a process at start: malformed settings, the secrets it needs left unset and the sources file's
problems, every one listed at once (`leadrelay web`, `worker`, `dev` and `check-config` alike)."""

from __future__ import annotations

from collections.abc import Mapping

from app.config import ConfigError, Settings
from app.sources import LeadSource, check_configured_sources

# The settings each kind of process cannot run without (the others have defaults, or are needed by some sources).
WEB_REQUIRED_SETTINGS = ("leadrelay_encryption_key",)
WORKER_REQUIRED_SETTINGS = ("carecycle_api_key", "leadrelay_encryption_key")


def configuration_problems(
    environ: Mapping[str, str], required: tuple[str, ...]
) -> tuple[Settings, list[LeadSource], list[str]]:
    """The settings `environ` gives (defaults in place of malformed values), the sources they name, and every
    problem: each malformed value, each `required` setting unset, each problem of the sources."""
    settings, problems = Settings.read_env(environ)
    malformed = {_variable(problem) for problem in problems}  # held as unset: not "required" as well
    problems += [line for line in settings.missing(*required) if _variable(line) not in malformed]
    sources, found = check_configured_sources(settings)
    return settings, sources, problems + found


def checked_settings(environ: Mapping[str, str], required: tuple[str, ...]) -> Settings:
    """The settings `environ` gives; raises `ConfigError` listing every problem `configuration_problems` finds."""
    settings, _, problems = configuration_problems(environ, required)
    if problems:
        raise ConfigError(problems)
    return settings


def _variable(problem: str) -> str:
    """The variable a `VARIABLE: what is wrong` line names."""
    return problem.split(":", 1)[0]
