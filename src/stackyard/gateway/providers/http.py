"""The pooled upstream HTTP client: one aiohttp session per worker process, opened lazily."""

from __future__ import annotations

import aiohttp


class HttpClient:
    """Owns the worker's ``aiohttp.ClientSession``; providers share it."""

    def __init__(self, *, limit: int = 0, limit_per_host: int = 0) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._limit = limit
        self._limit_per_host = limit_per_host

    @property
    def session(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._limit,
                limit_per_host=self._limit_per_host,
                ttl_dns_cache=300,
                keepalive_timeout=30,
            )
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None),
                skip_auto_headers=("User-Agent",),
                read_bufsize=1 << 16,
            )
            self._session = session
        return session

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
