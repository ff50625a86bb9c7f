"""The integration and end-to-end suites empty the database at REDIS_URL only when it is theirs: an empty one, or
one they marked (a run that crashed left its keys behind); a database holding keys they did not write is refused
untouched, saying how to go on."""

import fakeredis
import pytest
from redis.connection import parse_url

from tests.realredis import TEST_DATABASE_MARK, ForeignDatabaseError, beside_database_url, empty_test_database

URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def database() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


def test_an_empty_database_is_taken_and_marked_as_the_tests(database):
    empty_test_database(database, URL)

    assert database.keys() == [TEST_DATABASE_MARK.encode()]


def test_a_database_an_earlier_run_left_behind_is_emptied_and_marked_again(database):
    empty_test_database(database, URL)
    database.set("leadrelay:lead:left-by-a-crashed-run", "x")

    empty_test_database(database, URL)

    assert database.keys() == [TEST_DATABASE_MARK.encode()]


def test_a_database_holding_keys_the_tests_did_not_write_is_refused_untouched(database):
    database.set("leadrelay:lead:01DEV", "a lead of leadrelay dev")
    database.set("leadrelay:stats", "1")

    with pytest.raises(ForeignDatabaseError) as refused:
        empty_test_database(database, URL)

    assert sorted(database.keys()) == [b"leadrelay:lead:01DEV", b"leadrelay:stats"]
    message = str(refused.value)
    assert f"REDIS_URL={URL}" in message and "2 keys" in message
    assert "Point REDIS_URL at an empty database" in message and "FLUSHDB" in message


def test_the_refusal_never_shows_the_password_in_redis_url(database):
    database.set("leadrelay:lead:01DEV", "x")

    with pytest.raises(ForeignDatabaseError) as refused:
        empty_test_database(database, "redis://:s3cret-pass@127.0.0.1:6379/2")

    assert "s3cret-pass" not in str(refused.value)
    assert "redis://:***@127.0.0.1:6379/2" in str(refused.value)


def test_the_refusal_never_shows_a_password_given_as_an_option_of_redis_url(database):
    database.set("leadrelay:lead:01DEV", "x")

    with pytest.raises(ForeignDatabaseError) as refused:
        empty_test_database(database, "redis://127.0.0.1:6379/2?password=s3cret-pass&socket_timeout=5")

    assert "s3cret-pass" not in str(refused.value)
    assert "REDIS_URL=redis://127.0.0.1:6379/2?..." in str(refused.value)


@pytest.mark.parametrize(
    ("url", "beside"),
    [
        pytest.param("redis://127.0.0.1:6379/15", "redis://127.0.0.1:6379/14", id="the-default-15-beside-14"),
        pytest.param("redis://127.0.0.1:6379/14", "redis://127.0.0.1:6379/15", id="and-back"),
        pytest.param("redis://:secret@redis.internal:6380/0", "redis://:secret@redis.internal:6380/1", id="password"),
        pytest.param("redis://127.0.0.1:6379", "redis://127.0.0.1:6379/1", id="no-number-is-database-0"),
        pytest.param("rediss://h:6379/3?ssl_cert_reqs=none", "rediss://h:6379/2?ssl_cert_reqs=none", id="options-kept"),
        # redis-py takes a `db` option before the path's number: the beside URL must not keep pointing at it.
        pytest.param("redis://127.0.0.1:6379/?db=15", "redis://127.0.0.1:6379/14", id="db-option"),
        pytest.param("redis://127.0.0.1:6379/3?db=15&x=1", "redis://127.0.0.1:6379/14?x=1", id="db-option-over-path"),
        pytest.param("unix:///run/redis.sock?db=15", "unix:///run/redis.sock?db=14", id="unix-socket-keeps-its-path"),
    ],
)
def test_the_database_beside_the_tests_is_on_the_same_server_its_number_with_the_last_bit_flipped(url, beside):
    assert beside_database_url(url) == beside


@pytest.mark.parametrize(
    "url",
    ["redis://127.0.0.1:6379/15", "redis://127.0.0.1:6379/?db=15", "redis://h:6379/2?db=7", "unix:///run/r.sock?db=4"],
)
def test_the_database_beside_the_tests_is_never_their_own_as_redis_py_reads_both(url):
    own, beside = parse_url(url), parse_url(beside_database_url(url))

    assert beside.get("db", 0) == own.get("db", 0) ^ 1
    server = ("host", "port", "path")
    assert [beside.get(name) for name in server] == [own.get(name) for name in server]
