"""Encryption of personal data at rest: lead records are sealed with AES-256-GCM before Redis sees them.

`LEADRELAY_ENCRYPTION_KEY` holds one or more comma-separated keys (32 random bytes in url-safe base64,
the format `Fernet.generate_key` makes and `leadrelay dev` generates). The first seals; all open, so a
new key can be put in front of the old one and stored records re-sealed at leisure.

A sealed record is `v1.` + url-safe base64 of `key id (8 bytes) | nonce (12 bytes) | ciphertext+tag`.
The key id (a hash of the key, never the key) picks the key that opens it; the AES key itself is
derived from the configured key with HKDF, so that key serves no other purpose. AES-GCM from
`cryptography` authenticates as well as encrypts, in one call: sealing is on the path of every
intake request, where Fernet's CBC + HMAC cost ten times as much. Nonces are random (96 bits): a
key is good for billions of records, far beyond what a relay seals before its key is rotated.
Records sealed by earlier versions (Fernet tokens under the same keys) still open, and `reseal` turns
them into this format: leads queued across an upgrade are delivered.

Fingerprints (keyed hashes that Redis key names carry instead of a phone or an IP) use a secret of their own,
kept sealed in Redis by `app.store.fingerprints`, so a rotation of these keys does not change them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TOKEN_PREFIX = b"v1."
_KEY_ID_BYTES = 8
_NONCE_BYTES = 12
# A record's JSON, compact; one encoder for every record (`json.dumps` with `separators` builds one per call).
_RECORD_JSON = json.JSONEncoder(separators=(",", ":"))


class RecordDecryptionError(Exception):
    """A stored record could not be decrypted with any configured key."""


class FingerprintSecretError(Exception):
    """The stored fingerprint secret opens with none of the configured keys (the key sealing it was dropped); the
    message names LEADRELAY_ENCRYPTION_KEY and the way out, never a key."""


class RecordCipher:
    """Seals and opens lead records with the configured keys."""

    def __init__(self, keys: str) -> None:
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise ValueError("at least one encryption key is required")
        secrets = [_key_bytes(part) for part in parts]
        self._sealing_id = _key_id(secrets[0])
        self._sealing = AESGCM(_record_key(secrets[0]))
        self._opening = {_key_id(secret): AESGCM(_record_key(secret)) for secret in reversed(secrets)}
        self._earlier_format = MultiFernet([Fernet(part) for part in parts])
        self._initial_fingerprint_secret = hashlib.sha256(b"leadrelay fingerprint\0" + parts[0].encode()).digest()

    def initial_fingerprint_secret(self) -> bytes:
        """The fingerprint secret a Redis holding none is given: derived from the first key, as earlier versions
        used it for every fingerprint, so that an upgrade keeps the windows they keyed."""
        return self._initial_fingerprint_secret

    def is_sealed_by_first_key(self, token: str | bytes) -> bool:
        """True when `token` is in this format and sealed by the first key (`reseal` would change nothing)."""
        raw = token.encode() if isinstance(token, str) else token
        if not raw.startswith(TOKEN_PREFIX):
            return False
        try:
            body = base64.urlsafe_b64decode(raw[len(TOKEN_PREFIX) :])
        except (binascii.Error, ValueError):
            return False
        return body[:_KEY_ID_BYTES] == self._sealing_id

    def seal(self, record: dict[str, Any]) -> str:
        """Encrypt a record into an opaque token."""
        plain = _RECORD_JSON.encode(record).encode()
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._sealing.encrypt(nonce, plain, TOKEN_PREFIX + self._sealing_id)
        return (TOKEN_PREFIX + base64.urlsafe_b64encode(self._sealing_id + nonce + sealed)).decode()

    def open(self, token: str | bytes) -> dict[str, Any]:
        """Decrypt a token made by `seal` with any configured key."""
        record: dict[str, Any] = json.loads(self._decrypt(token))
        return record

    def reseal(self, token: str | bytes) -> str:
        """Re-encrypt a token under the first (newest) key."""
        return self.seal(self.open(token))

    def _decrypt(self, token: str | bytes) -> bytes:
        raw = token.encode() if isinstance(token, str) else token
        if not raw.startswith(TOKEN_PREFIX):
            return self._decrypt_earlier_format(raw)
        try:
            body = base64.urlsafe_b64decode(raw[len(TOKEN_PREFIX) :])
        except (binascii.Error, ValueError):
            raise RecordDecryptionError("not a sealed record") from None
        nonce_end = _KEY_ID_BYTES + _NONCE_BYTES
        key_id, nonce, sealed = body[:_KEY_ID_BYTES], body[_KEY_ID_BYTES:nonce_end], body[nonce_end:]
        aead = self._opening.get(key_id)
        if aead is None or len(nonce) != _NONCE_BYTES:
            raise RecordDecryptionError("record cannot be decrypted with the configured keys")
        try:
            return aead.decrypt(nonce, sealed, TOKEN_PREFIX + key_id)
        except InvalidTag:
            raise RecordDecryptionError("record cannot be decrypted with the configured keys") from None

    def _decrypt_earlier_format(self, raw: bytes) -> bytes:
        try:
            return self._earlier_format.decrypt(raw)
        except InvalidToken:
            raise RecordDecryptionError("record cannot be decrypted with the configured keys") from None


def fingerprint_of(secret: bytes, value: str) -> str:
    """A keyed hash of a personal value (a phone, an IP) for Redis key names: equal values give equal
    fingerprints, and the value cannot be read back from one."""
    return hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()[:32]


def generate_key() -> str:
    """A fresh key, for `leadrelay dev` and key rotation."""
    return Fernet.generate_key().decode()


def _key_bytes(key: str) -> bytes:
    try:
        secret = base64.urlsafe_b64decode(key.encode())
    except (binascii.Error, ValueError):
        raise ValueError("expected encryption keys of 32 url-safe base64 bytes") from None
    if len(secret) != 32:
        raise ValueError("expected encryption keys of 32 url-safe base64 bytes")
    return secret


def _key_id(secret: bytes) -> bytes:
    return hashlib.sha256(b"leadrelay key id\0" + secret).digest()[:_KEY_ID_BYTES]


def _record_key(secret: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"leadrelay record sealing v1").derive(secret)
