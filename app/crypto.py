"""Encryption of personal data at rest: lead records are sealed with MultiFernet before Redis sees them.

`LEADRELAY_ENCRYPTION_KEY` holds one or more comma-separated Fernet keys. The first encrypts; all
decrypt, so a new key can be put in front of the old one and stored records re-sealed at leisure.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class RecordDecryptionError(Exception):
    """A stored record could not be decrypted with any configured key."""


class RecordCipher:
    """Seals and opens lead records with the configured keys."""

    def __init__(self, keys: str) -> None:
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise ValueError("at least one encryption key is required")
        self._fernet = MultiFernet([Fernet(k) for k in parts])
        # Fingerprints use the newest key: after a rotation, windows keyed by them start afresh.
        self._fingerprint_key = hashlib.sha256(b"leadrelay fingerprint\0" + parts[0].encode()).digest()

    def fingerprint_of(self, value: str) -> str:
        """A keyed hash of a personal value (a phone, an IP) for Redis key names: equal values give equal
        fingerprints, and the value cannot be read back from one."""
        return hmac.new(self._fingerprint_key, value.encode(), hashlib.sha256).hexdigest()[:32]

    def seal(self, record: dict[str, Any]) -> str:
        """Encrypt a record into an opaque token."""
        return self._fernet.encrypt(json.dumps(record, separators=(",", ":")).encode()).decode()

    def open(self, token: str | bytes) -> dict[str, Any]:
        """Decrypt a token made by `seal` with any configured key."""
        raw = token.encode() if isinstance(token, str) else token
        try:
            record: dict[str, Any] = json.loads(self._fernet.decrypt(raw))
        except InvalidToken as exc:
            raise RecordDecryptionError("record cannot be decrypted with the configured keys") from exc
        return record

    def reseal(self, token: str | bytes) -> str:
        """Re-encrypt a token under the first (newest) key."""
        raw = token.encode() if isinstance(token, str) else token
        try:
            return self._fernet.rotate(raw).decode()
        except InvalidToken as exc:
            raise RecordDecryptionError("record cannot be decrypted with the configured keys") from exc


def generate_key() -> str:
    """A fresh Fernet key, for `leadrelay dev` and key rotation."""
    return Fernet.generate_key().decode()
