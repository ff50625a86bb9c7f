"""The specification of tests/unit/test_delivery_isolation.py, run again on a real Redis (its fault groups are
claimed, settled and passed over by Lua scripts, which fakeredis runs in another interpreter)."""

from tests.unit.test_delivery_isolation import *  # noqa: F403 - the same tests, collected again with a real Redis
