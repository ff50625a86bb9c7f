"""The fingerprint secret: one per Redis, kept sealed with the record cipher, the same whatever key seals it.

Fingerprints key the duplicate, double-submit and per-IP windows and idempotency keys. Their secret lives in
Redis rather than in `LEADRELAY_ENCRYPTION_KEY`, so that putting a new key in front keeps every window: a
partner's Idempotency-Key or a repeated Google lead_id from before a rotation still finds its lead. The secret
is created once (SET NX), as the one earlier versions derived from the first key, so an upgrade keeps their
windows too. Its plaintext never changes after; a process that opens it only with a key that is not the first
seals it again under the first key, so that the old key can be dropped as the README's rotation says.
"""

from __future__ import annotations

import base64
import binascii

from redis import Redis

from app.crypto import FingerprintSecretError, RecordCipher, RecordDecryptionError
from app.store import keys

_UNOPENABLE = (
    "the fingerprint secret in Redis ({key}) cannot be decrypted with the configured LEADRELAY_ENCRYPTION_KEY keys:"
    " put back the key that sealed it (the old key, dropped before the secret was sealed again under the new one);"
    " only if that key is lost for good, delete {key}: the duplicate, double-submit and idempotency windows then"
    " start afresh"
)


class FingerprintSecrets:
    """Reads the fingerprint secret, creating it on a Redis that holds none."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def secret(self, cipher: RecordCipher) -> bytes:
        """The secret, sealed again under the first key if another sealed it; raises `FingerprintSecretError`
        when no configured key opens it (never a fresh secret: that would start every window afresh)."""
        key = keys.fingerprint_secret_key()
        sealed = self._redis.get(key)
        if sealed is None:
            initial = cipher.initial_fingerprint_secret()
            if self._redis.set(key, cipher.seal(_record_of(initial)), nx=True):
                return initial
            sealed = self._redis.get(key)  # another process created it first: theirs is the secret
            if sealed is None:  # and it was deleted since (by hand): create it as on a fresh Redis
                return self.secret(cipher)
        try:
            secret = _secret_in(cipher.open(sealed))
        except RecordDecryptionError:
            raise FingerprintSecretError(_UNOPENABLE.format(key=key)) from None
        if not cipher.is_sealed_by_first_key(sealed):
            # Any process may do this at the same time: each writes the same plaintext, and XX never creates it.
            self._redis.set(key, cipher.seal(_record_of(secret)), xx=True)
        return secret


def _record_of(secret: bytes) -> dict[str, str]:
    return {"secret": base64.b64encode(secret).decode()}


def _secret_in(record: dict[str, object]) -> bytes:
    try:
        return base64.b64decode(str(record["secret"]), validate=True)
    except (KeyError, binascii.Error, ValueError):
        raise RecordDecryptionError("not a fingerprint secret") from None
