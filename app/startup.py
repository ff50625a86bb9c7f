"""What stops a process at start: malformed settings, the secrets it needs left unset (Meta's among them once a
facebook source is configured) and the sources file's problems, every one listed at once (`leadrelay web`, `worker`,
`dev` and `check-config` alike)."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from app.config import ConfigError, Settings
from app.credentials import ops_token_reuse_problems, written_secrets
from app.sources import LeadSource, SourceKind, check_configured_sources

# Meta's settings a facebook source needs: the web tier checks each webhook's signature with the app secret and
# answers Meta's subscription handshake with the verify token; workers retrieve the leads from the Graph API with the
# access token, each call signed with the app secret. Without them Meta's notifications are refused, or the leads
# they announce never retrieved, until Meta gives up on them.
WEB_FACEBOOK_SETTINGS = ("facebook_app_secret", "facebook_verify_token")
WORKER_FACEBOOK_SETTINGS = ("facebook_app_secret", "facebook_access_token")


def _in_settings_order(names: tuple[str, ...]) -> tuple[str, ...]:
    """`names` once each, in the order `Settings` declares them: the order problems are listed in."""
    order = [field.name for field in dataclasses.fields(Settings)]
    return tuple(sorted(set(names), key=order.index))


@dataclass(frozen=True)
class Requirements:
    """The settings a kind of process cannot start without: `always`, and `by_facebook_sources` once the sources
    include a facebook one."""

    always: tuple[str, ...]
    by_facebook_sources: tuple[str, ...] = ()

    def __or__(self, other: Requirements) -> Requirements:
        """What two kinds of process need together (`EVERY_TIER_REQUIREMENTS`)."""
        return Requirements(
            _in_settings_order(self.always + other.always),
            _in_settings_order(self.by_facebook_sources + other.by_facebook_sources),
        )

    def missing_by_sources(self, settings: Settings, sources: list[LeadSource]) -> list[str]:
        """A `VARIABLE: required by the facebook sources (<slugs>)` line for each setting `sources` need left unset."""
        facebook = [source.slug for source in sources if source.kind is SourceKind.FACEBOOK]
        if not facebook:
            return []
        return [
            f"{line} by the facebook sources ({', '.join(facebook)})"
            for line in settings.missing(*self.by_facebook_sources)
        ]


# The settings each kind of process cannot run without (the others have defaults, or are needed by some sources).
WEB_REQUIREMENTS = Requirements(("leadrelay_encryption_key",), WEB_FACEBOOK_SETTINGS)
WORKER_REQUIREMENTS = Requirements(("carecycle_api_key", "leadrelay_encryption_key"), WORKER_FACEBOOK_SETTINGS)
# What either tier needs: what `check-config` checks, and `leadrelay dev`, which runs both, requires.
EVERY_TIER_REQUIREMENTS = WEB_REQUIREMENTS | WORKER_REQUIREMENTS


def configuration_problems(
    environ: Mapping[str, str], required: Requirements
) -> tuple[Settings, list[LeadSource], list[str]]:
    """The settings `environ` gives (defaults in place of malformed values), the sources they name, and every
    problem: each malformed value, each `required` setting unset, each problem of the sources, and each setting
    their kinds need left unset."""
    settings, problems = Settings.read_env(environ)
    malformed = {_variable(problem) for problem in problems}  # held as unset: not "required" as well
    problems += [line for line in settings.missing(*required.always) if _variable(line) not in malformed]
    # Malformed ops tokens or source keys are held as unset too, yet a source key may still be an ops token: say so
    # now, not once their other problems are fixed.
    ops_tokens: Collection[str] = settings.leadrelay_ops_tokens
    if "LEADRELAY_OPS_TOKENS" in malformed:
        ops_tokens = written_secrets(environ.get("LEADRELAY_OPS_TOKENS", ""))
    sources, found = check_configured_sources(settings, ops_tokens=ops_tokens)
    if "LEADRELAY_SOURCE_KEYS" in malformed:
        reused = ops_token_reuse_problems(environ.get("LEADRELAY_SOURCE_KEYS", ""), ops_tokens)
        problems += [f"LEADRELAY_SOURCE_KEYS: {problem}" for problem in reused]
    return settings, sources, problems + found + required.missing_by_sources(settings, sources)


def checked_settings(environ: Mapping[str, str], required: Requirements) -> Settings:
    """The settings `environ` gives; raises `ConfigError` listing every problem `configuration_problems` finds."""
    settings, _, problems = configuration_problems(environ, required)
    if problems:
        raise ConfigError(problems)
    return settings


def _variable(problem: str) -> str:
    """The variable a `VARIABLE: what is wrong` line names."""
    return problem.split(":", 1)[0]
