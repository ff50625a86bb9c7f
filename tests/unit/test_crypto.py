"""Personal data at rest: records sealed with rotatable keys; key names carry fingerprints, not values."""

from __future__ import annotations

import pytest

from app.crypto import RecordCipher, RecordDecryptionError, fingerprint_of, generate_key

RECORD = {"phoneNumber": "+12125550142", "firstName": "José", "dateOfBirth": "07-04-1952"}


def test_a_sealed_record_opens_to_the_same_record_and_does_not_show_it():
    cipher = RecordCipher(generate_key())

    token = cipher.seal(RECORD)

    assert cipher.open(token) == RECORD
    assert "2125550142" not in token and "1952" not in token


def test_records_sealed_under_an_old_key_open_after_a_new_key_is_put_first():
    old, new = generate_key(), generate_key()
    token = RecordCipher(old).seal(RECORD)

    rotated = RecordCipher(f"{new},{old}")

    assert rotated.open(token) == RECORD
    resealed = rotated.reseal(token)
    assert RecordCipher(new).open(resealed) == RECORD


def test_a_record_sealed_under_an_unknown_key_is_refused_with_a_typed_error():
    with pytest.raises(RecordDecryptionError):
        RecordCipher(generate_key()).open(RecordCipher(generate_key()).seal(RECORD))


def test_fingerprints_match_for_equal_values_and_reveal_nothing():
    secret = RecordCipher(generate_key()).initial_fingerprint_secret()

    first, again, other = (
        fingerprint_of(secret, "+12125550142"),
        fingerprint_of(secret, "+12125550142"),
        fingerprint_of(secret, "+12125550143"),
    )

    assert first == again != other
    assert "2125550142" not in first and len(first) == 32
    other_secret = RecordCipher(generate_key()).initial_fingerprint_secret()
    assert fingerprint_of(other_secret, "+12125550142") != first  # keyed: not a plain hash


def test_a_tampered_record_is_refused_not_opened_to_something_else():
    cipher = RecordCipher(generate_key())
    token = cipher.seal(RECORD)
    flipped = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]

    with pytest.raises(RecordDecryptionError):
        cipher.open(flipped)


def test_a_sealed_record_cut_short_anywhere_is_refused_with_a_typed_error():
    cipher = RecordCipher(generate_key())
    token = cipher.seal(RECORD)

    for length in range(len(token)):
        with pytest.raises(RecordDecryptionError):
            cipher.open(token[:length])


@pytest.mark.parametrize("token", ["", "gAAAAABnot-ours", "v1.", "v1.%%%", "v1.AAAA"])
def test_what_is_not_a_sealed_record_is_refused_with_a_typed_error(token):
    with pytest.raises(RecordDecryptionError):
        RecordCipher(generate_key()).open(token)


@pytest.mark.parametrize("keys", ["short", "not base64!", "QUJDREVGR0hJSktMTU5PUA=="])  # the last: 16 bytes
def test_keys_that_are_not_32_random_bytes_are_refused_at_start(keys):
    with pytest.raises(ValueError, match="32 url-safe base64 bytes"):
        RecordCipher(keys)


def test_each_seal_differs_so_equal_records_cannot_be_matched_in_redis():
    cipher = RecordCipher(generate_key())

    assert cipher.seal(RECORD) != cipher.seal(RECORD)


def test_a_record_sealed_by_an_earlier_version_opens_and_reseals_into_the_current_format():
    from cryptography.fernet import Fernet

    old, new = generate_key(), generate_key()
    earlier = Fernet(old).encrypt(b'{"phoneNumber":"+12125550142","firstName":"Jos\\u00e9","dateOfBirth":"07-04-1952"}')
    cipher = RecordCipher(f"{new},{old}")

    assert cipher.open(earlier) == RECORD
    resealed = cipher.reseal(earlier)
    assert resealed.startswith("v1.") and RecordCipher(new).open(resealed) == RECORD
