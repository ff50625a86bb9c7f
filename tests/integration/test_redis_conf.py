"""deploy/redis.conf, run by a real redis-server as the operations guide says to run it."""

from __future__ import annotations

from pathlib import Path

from redis import Redis

from tests.realredis import redis_server_process

REDIS_CONF = Path(__file__).resolve().parents[2] / "deploy" / "redis.conf"


def test_redis_conf_runs_with_its_data_in_the_folder_given_on_the_command_line(tmp_path):
    # `redis-server deploy/redis.conf --dir <a persistent folder>` on a host, as the compose file runs it in /data.
    data = tmp_path / "redis-data"
    data.mkdir()

    with redis_server_process(data, config=REDIS_CONF) as server:
        client = Redis.from_url(server.url)
        settings = {name: client.config_get(name)[name] for name in ("dir", "appendonly", "appendfsync")}
        client.set("leadrelay:probe", "1")
        client.close()

    assert settings == {"dir": str(data), "appendonly": "yes", "appendfsync": "everysec"}
    assert (data / "appendonlydir").is_dir()
