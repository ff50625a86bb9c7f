"""Lead sources: who may send leads, how their fields map, and the careCycle settings their leads carry.

Sources come from the TOML file named by `LEADRELAY_SOURCES` (see deploy/sources.example.toml), plus
plain API sources named in `LEADRELAY_SOURCE_KEYS`. Secrets are never in the file: each source names
the environment variable that holds its key.

`source` defines a `LeadSource`, `registry` looks sources up, `loading` reads and checks them (`checks`:
the problems found across sources); the rest of the relay imports from here. Errors:

    ConfigError (app.config)   the process cannot start
    └── SourcesError           the sources cannot be used: `problems` lists every reason, each naming where
    LookupError
    └── UnknownSourceError     no configured source matches a slug or credential (404 in the API)
"""

from __future__ import annotations

from app.sources.loading import SourcesError, check_configured_sources, load_configured_sources, load_sources
from app.sources.registry import SourceRegistry, UnknownSourceError
from app.sources.source import ConsentKeys, LeadSource, SourceKind

__all__ = [
    "ConsentKeys",
    "LeadSource",
    "SourceKind",
    "SourceRegistry",
    "SourcesError",
    "UnknownSourceError",
    "check_configured_sources",
    "load_configured_sources",
    "load_sources",
]
