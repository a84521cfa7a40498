"""Change notifications for the key snapshot: Redis pub/sub when Redis is configured.

Whoever changes teams, users or keys (the admin API, the CLI) publishes on one channel; every
instance listening reloads its snapshot at once instead of at its next poll.
"""

from __future__ import annotations

import logging

CHANNEL = "stackyard:governance-changed"
log = logging.getLogger("stackyard.auth")


def publish_change(redis_url: str | None) -> None:
    """Tell every instance to reload (best effort: polling catches up regardless)."""
    if not redis_url:
        return
    import redis

    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=2)
        try:
            client.publish(CHANNEL, "changed")
        finally:
            client.close()
    except Exception:
        log.warning("could not publish a governance change to Redis; instances will poll")
