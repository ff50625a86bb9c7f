"""The database at REDIS_URL is the tests' own while they run (marked), and one holding keys the tests did not write
is refused untouched: `tests/unit/test_test_database_guard.py` says each case; these run it on the real Redis."""

import pytest

from tests.realredis import TEST_DATABASE_MARK, ForeignDatabaseError, empty_test_database, redis_url_for_tests


def test_the_database_a_test_runs_on_holds_the_mark_and_nothing_else(redis):
    assert redis.keys() == [TEST_DATABASE_MARK.encode()]


def test_keys_beside_no_mark_are_refused_and_left_as_they_were(redis):
    redis.delete(TEST_DATABASE_MARK)
    redis.set("leadrelay:lead:01DEV", "a lead of another relay")

    with pytest.raises(ForeignDatabaseError, match="REDIS_URL="):
        empty_test_database(redis, redis_url_for_tests())

    assert redis.keys() == [b"leadrelay:lead:01DEV"]
