"""The pooled aiohttp session the HTTP-speaking adapters share the shape of."""

from __future__ import annotations

import aiohttp


class LazySession:
    """One aiohttp `ClientSession`, created on first use (inside the running loop) and reopened after a close."""

    def __init__(self, timeout: float, max_connections: int | None = None) -> None:
        self.timeout = timeout
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = None if self.max_connections is None else aiohttp.TCPConnector(limit=self.max_connections)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout)
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
