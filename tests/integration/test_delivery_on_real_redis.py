"""The delivery specification of tests/unit/test_delivery.py, run again on a real Redis.

fakeredis runs Lua in another interpreter than Redis does: every store script is exercised here
by the same scenarios, with the `redis` fixture swapped for a real server.
"""

from tests.unit.test_delivery import *  # noqa: F403 - the same tests, collected again with a real Redis
