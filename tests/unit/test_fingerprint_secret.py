"""The fingerprint secret: kept sealed in Redis, so rotating the encryption key keeps every window keyed by it."""

from __future__ import annotations

import hashlib
import hmac
import logging

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from app import create_app
from app.crypto import FingerprintSecretError, RecordCipher, RecordDecryptionError, generate_key
from app.sources import SourceKind, SourceRegistry
from app.store import keys
from app.store.fingerprints import FingerprintSecrets
from tests.conftest import SOURCE_KEY
from tests.factories import make_source, make_submission
from tests.intake_support import PRODUCTION_LEAD, google_source
from workers.context import build_context
from workers.runner import DeliveryTicker

OLD, NEW = generate_key(), generate_key()
# A rotation as the README does it: append the new key, move it to the front, drop the old one.
ROTATION = [f"{OLD},{NEW}", f"{NEW},{OLD}", NEW]
DAY = 86400


@pytest.fixture
def relay(settings, redis, clock):
    """A web process of the relay started with `keys` as LEADRELAY_ENCRYPTION_KEY, on the shared Redis."""

    def start(encryption_keys):
        sources = [
            make_source(slug="partner", kind=SourceKind.API, secret=SOURCE_KEY, duplicate_window_seconds=DAY),
            google_source(),
        ]
        configured = settings.replace(leadrelay_encryption_key=encryption_keys)
        return create_app(configured, redis=redis, clock=clock, sources=SourceRegistry(sources)).test_client()

    return start


def old_fingerprint_of(first_key: str, value: str) -> str:
    """The fingerprint earlier versions computed: an HMAC under a secret derived from the first key."""
    secret = hashlib.sha256(b"leadrelay fingerprint\0" + first_key.encode()).digest()
    return hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()[:32]


def post_lead(client, submission, **headers):
    return client.post("/v1/leads", json=submission, headers={"X-Api-Key": SOURCE_KEY, **headers})


def test_a_repeated_idempotency_key_returns_the_original_lead_through_a_key_rotation(relay, clock):
    headers, submission = {"Idempotency-Key": "order-17"}, make_submission()
    first = post_lead(relay(OLD), submission, **headers).json

    answers = []
    for encryption_keys in ROTATION:
        clock.advance(3600)
        answers.append(post_lead(relay(encryption_keys), submission, **headers).json)

    assert [answer["id"] for answer in answers] == [first["id"]] * 3


def test_the_same_person_within_the_duplicate_window_is_a_duplicate_through_a_key_rotation(relay, clock):
    submission = make_submission(phoneNumber="(312) 555-0199")
    first = post_lead(relay(OLD), submission).json

    statuses = []
    for encryption_keys in ROTATION:
        clock.advance(3600)
        statuses.append(post_lead(relay(encryption_keys), submission).json["status"])

    assert first["status"] == "queued"
    assert statuses == ["duplicate"] * 3


def test_a_repeated_google_lead_id_returns_the_original_lead_through_a_key_rotation(relay, clock):
    first = relay(OLD).post("/v1/webhooks/google/gads", json=PRODUCTION_LEAD).json

    ids = []
    for encryption_keys in ROTATION:
        clock.advance(3600)
        ids.append(relay(encryption_keys).post("/v1/webhooks/google/gads", json=PRODUCTION_LEAD).json["id"])

    assert ids == [first["id"]] * 3


def test_an_upgrade_keeps_the_windows_the_earlier_version_keyed(relay, redis):
    """A Redis that holds no secret yet (one the earlier version ran on) gets the secret it derived."""
    key_then = keys.idempotency_key("partner", f"key:{old_fingerprint_of(OLD, 'order-17')}")
    lead_then = post_lead(relay(OLD), make_submission(), **{"Idempotency-Key": "order-17"}).json["id"]

    assert redis.get(key_then).decode() == lead_then


def test_the_secret_is_created_once_when_two_processes_race_to_create_it(redis):
    """Two processes read no secret; the other one stores its own before this one does: both use the stored one."""
    one, other = RecordCipher(f"{OLD},{NEW}"), RecordCipher(f"{NEW},{OLD}")

    class OvertakenRedis:
        """The Redis as this process sees it: its first read comes just before the other process's creation."""

        def __init__(self):
            self.overtaken = False

        def get(self, name):
            if not self.overtaken:
                self.overtaken = True
                FingerprintSecrets(redis).secret(other)
                return None
            return redis.get(name)

        def set(self, *args, **kwargs):
            return redis.set(*args, **kwargs)

    theirs_first = FingerprintSecrets(OvertakenRedis()).secret(one)  # type: ignore[arg-type]

    assert theirs_first == FingerprintSecrets(redis).secret(other) == FingerprintSecrets(redis).secret(one)


def test_the_secret_is_resealed_under_the_first_key_so_the_old_key_can_be_dropped(redis):
    created = FingerprintSecrets(redis).secret(RecordCipher(OLD))

    FingerprintSecrets(redis).secret(RecordCipher(f"{NEW},{OLD}"))

    assert RecordCipher(NEW).open(redis.get(keys.fingerprint_secret_key()))  # sealed under the new key now
    assert FingerprintSecrets(redis).secret(RecordCipher(NEW)) == created


def test_a_secret_no_configured_key_opens_is_an_error_naming_the_variable_not_a_fresh_secret(redis):
    FingerprintSecrets(redis).secret(RecordCipher(OLD))
    sealed = redis.get(keys.fingerprint_secret_key())

    with pytest.raises(FingerprintSecretError) as raised:
        FingerprintSecrets(redis).secret(RecordCipher(NEW))

    assert "LEADRELAY_ENCRYPTION_KEY" in str(raised.value)
    assert f"only if that key is lost for good, delete {keys.fingerprint_secret_key()}" in str(raised.value)
    assert OLD not in str(raised.value) and NEW not in str(raised.value)
    assert redis.get(keys.fingerprint_secret_key()) == sealed


def test_intake_admits_nothing_when_no_configured_key_opens_the_secret(relay, store, caplog):
    post_lead(relay(OLD), make_submission())

    with caplog.at_level(logging.ERROR):
        response = post_lead(relay(NEW), make_submission(), **{"Idempotency-Key": "order-18"})

    assert response.status_code == 503
    assert "LEADRELAY_ENCRYPTION_KEY" in caplog.text and NEW not in caplog.text
    assert store.batches.depth() == 1  # the first lead only


def test_a_secret_no_configured_key_opens_is_logged_once_per_change_not_once_per_request(relay, clock, caplog):
    post_lead(relay(OLD), make_submission())
    client = relay(NEW)

    with caplog.at_level(logging.INFO):
        answers = [post_lead(client, make_submission()).status_code for _ in range(5)]
        clock.advance(60)
        answers.append(post_lead(client, make_submission()).status_code)

    assert answers == [503] * 6
    [first, reminder] = [r.getMessage() for r in caplog.records if r.name == "app.errors"]
    assert first.startswith(f"the fingerprint secret in Redis ({keys.fingerprint_secret_key()}) cannot be decrypted")
    assert reminder == f"{first} (still so: 5 more requests answered 503 in 60 s)"
    assert len([r for r in caplog.records if r.name == "app.requests"]) == 6  # each request keeps its own line


def test_a_process_reads_the_secret_once_and_keeps_it(relay, redis):
    client, submission = relay(OLD), make_submission()
    first = post_lead(client, submission, **{"Idempotency-Key": "order-17"}).json["id"]
    redis.delete(keys.fingerprint_secret_key())  # only a process starting afresh would read it again

    again = post_lead(client, submission, **{"Idempotency-Key": "order-17"}).json["id"]

    assert again == first
    assert not redis.exists(keys.fingerprint_secret_key())


def test_no_secret_is_created_when_the_app_is_created(relay, redis):
    relay(OLD)

    assert not redis.exists(keys.fingerprint_secret_key())


def test_a_worker_seals_the_secret_again_under_its_first_key_after_a_process_with_the_old_key_first_did(
    settings, redis, clock
):
    """Mid-rollout, a process still running with `<old>,<new>` may read the secret for the first time and seal it
    under the old key; once the rollout is done, the workers seal it under the new key within a minute."""
    FingerprintSecrets(redis).secret(RecordCipher(OLD))
    worker_settings = settings.replace(leadrelay_encryption_key=f"{NEW},{OLD}")
    ticker = DeliveryTicker(build_context(worker_settings, redis=redis, clock=clock))
    ticker.tick_fingerprint_secret()
    FingerprintSecrets(redis).secret(RecordCipher(f"{OLD},{NEW}"))  # the late process of the earlier rollout

    ticker.tick_fingerprint_secret()  # within the minute: no read
    sealed_within_the_minute = redis.get(keys.fingerprint_secret_key())
    clock.advance(60)
    ticker.tick_fingerprint_secret()

    with pytest.raises(RecordDecryptionError):
        RecordCipher(NEW).open(sealed_within_the_minute)
    assert RecordCipher(NEW).open(redis.get(keys.fingerprint_secret_key()))


def test_a_worker_logs_an_error_naming_the_variable_when_no_configured_key_opens_the_secret(settings, redis, caplog):
    FingerprintSecrets(redis).secret(RecordCipher(OLD))
    ticker = DeliveryTicker(build_context(settings.replace(leadrelay_encryption_key=NEW), redis=redis))

    with caplog.at_level(logging.ERROR):
        ticker.tick_fingerprint_secret()

    assert "LEADRELAY_ENCRYPTION_KEY" in caplog.text and NEW not in caplog.text


def test_intake_answers_503_when_redis_is_unavailable_as_the_secret_is_first_needed(relay, redis, monkeypatch):
    def reset(*args, **kwargs):
        raise RedisConnectionError("Connection reset by peer")

    client = relay(OLD)
    monkeypatch.setattr(redis, "get", reset)

    response = post_lead(client, make_submission(), **{"Idempotency-Key": "order-17"})
    monkeypatch.undo()
    later = post_lead(client, make_submission(), **{"Idempotency-Key": "order-17"})

    assert response.status_code == 503 and response.json["error"]["code"] == "UNAVAILABLE"
    assert later.status_code == 202  # read once Redis answers, not kept as missing
    assert redis.get(keys.idempotency_key("partner", f"key:{old_fingerprint_of(OLD, 'order-17')}"))
