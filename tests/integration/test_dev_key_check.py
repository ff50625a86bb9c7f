"""`leadrelay dev` stops at start, saying the way out, when its Redis holds data sealed with another key."""

import pytest

from app.crypto import RecordCipher, generate_key
from app.devserver import check_key_opens_the_store
from app.devstack import DevError
from app.store.fingerprints import FingerprintSecrets
from tests.realredis import redis_url_for_tests

URL = redis_url_for_tests()


def test_a_redis_holding_another_keys_data_stops_dev_saying_what_to_do(redis, tmp_path):
    FingerprintSecrets(redis).secret(RecordCipher(generate_key()))  # an earlier run, with a key since lost
    new_key = generate_key()

    with pytest.raises(DevError) as given_url:
        check_key_opens_the_store(URL, new_key, str(tmp_path / "encryption.key"), own_redis_dir=None)
    with pytest.raises(DevError) as own:
        check_key_opens_the_store(URL, new_key, str(tmp_path / "encryption.key"), own_redis_dir=tmp_path / "redis")

    assert "unset REDIS_URL" in str(given_url.value)
    assert f"delete {tmp_path / 'redis'}" in str(own.value)
    assert new_key not in str(given_url.value) + str(own.value)


def test_a_redis_of_this_key_or_an_empty_one_lets_dev_start(redis, tmp_path):
    key = generate_key()

    check_key_opens_the_store(URL, key, "LEADRELAY_ENCRYPTION_KEY", own_redis_dir=None)  # empty: made here
    check_key_opens_the_store(URL, key, "LEADRELAY_ENCRYPTION_KEY", own_redis_dir=None)  # its own: opens

    assert FingerprintSecrets(redis).secret(RecordCipher(key)) == RecordCipher(key).initial_fingerprint_secret()
