"""The web tier's wiring, built by `create_app` and reached by views through `services()`."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from redis import Redis

from app.clock import Clock
from app.config import Settings
from app.crypto import RecordCipher
from app.intake import Intake
from app.meta import MetaIntake, UnsetSettingAlarm
from app.sources import SourceRegistry
from app.store import Store

EXTENSION_NAME = "leadrelay"


@dataclass(frozen=True)
class Services:
    """What views need: settings, store, the record cipher, intake, sources, clock, the Meta webhook's alarm."""

    settings: Settings
    redis: Redis
    store: Store
    cipher: RecordCipher
    intake: Intake
    sources: SourceRegistry
    clock: Clock
    meta: MetaIntake
    meta_unset_alarm: UnsetSettingAlarm


def services() -> Services:
    """The running app's services."""
    found: Services = current_app.extensions[EXTENSION_NAME]
    return found
