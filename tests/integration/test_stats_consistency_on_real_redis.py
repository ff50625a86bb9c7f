"""The walk of tests/unit/test_stats_consistency.py, run again on a real Redis.

The counts and indexes it checks are kept by Lua scripts, which fakeredis runs in another interpreter than
Redis does.
"""

from tests.unit.test_stats_consistency import *  # noqa: F403 - the same walk, collected again with a real Redis
