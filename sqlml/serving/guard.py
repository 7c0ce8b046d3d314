"""What keeps bad clients from taking the endpoint down: connection caps, read time, nesting.

``ConnectionGuard`` watches the HTTP server's connections. Each must deliver a request's
headers and body within ``read_timeout`` seconds of opening or of its previous response
(slow headers, slow bodies and idle keep-alive connections alike are then closed); at most
``max_connections`` are open: a new one beyond that evicts the connection that has waited
longest without delivering a request (connections that never delivered one go before the
idle connections of clients that did), or is closed itself when every connection is busy
being answered. ``json_depth`` bounds a body's nesting before it is parsed (Python's
parser would recurse).
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field

_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)


def json_depth(raw: bytes, limit: int) -> int:
    """The deepest nesting of arrays/objects in ``raw`` (strings skipped), stopping past ``limit``."""
    depth = deepest = 0
    for match in _TOKENS.finditer(raw):
        ch = match.group()[:1]
        if ch in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif ch in (b"]", b"}"):
            depth -= 1
    return deepest


@dataclass
class _Watch:
    deadline: float
    opened: float
    busy: bool = False
    transport: object = None
    answered: int = 0  # requests answered on it: a client's pooled connection, not a stranger


@dataclass
class ConnectionGuard:
    read_timeout: float = 10.0
    max_connections: int = 1024
    closed_slow: int = 0
    refused: int = 0
    _watched: dict = field(default_factory=dict)
    _task: asyncio.Task | None = None

    def attach(self, server) -> None:
        """Hook an aiohttp ``web.Server`` (``AppRunner.server``): see each new connection."""
        made, lost = server.connection_made, server.connection_lost

        def connection_made(handler, transport):
            made(handler, transport)
            self._opened(handler, transport)

        def connection_lost(handler, exc=None):
            self._watched.pop(handler, None)
            lost(handler, exc)

        server.connection_made = connection_made
        server.connection_lost = connection_lost
        self._task = asyncio.get_running_loop().create_task(self._sweep(), name="sqlml-connection-guard")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    @property
    def open_connections(self) -> int:
        return len(self._watched)

    def _opened(self, handler, transport) -> None:
        now = time.monotonic()
        if len(self._watched) >= self.max_connections:
            # evict a connection that never delivered a request first (slow or silent), oldest
            # first; only then an idle one a client keeps in its pool between requests
            idle = [(w.answered > 0, w.deadline, h) for h, w in self._watched.items() if not w.busy]
            if idle:
                _, _, oldest = min(idle, key=lambda item: item[:2])
                self._close(oldest)
            else:
                self.refused += 1
                transport.close()
                return
        self._watched[handler] = _Watch(now + self.read_timeout, now, transport=transport)

    def request_read(self, handler) -> None:
        """The request's body is in: the connection is being answered, not waited on."""
        watch = self._watched.get(handler)
        if watch is not None:
            watch.busy = True

    def answered(self, handler) -> None:
        """The response is out: the next request must arrive within ``read_timeout``."""
        watch = self._watched.get(handler)
        if watch is not None:
            watch.busy = False
            watch.answered += 1
            watch.deadline = time.monotonic() + self.read_timeout

    def _close(self, handler) -> None:
        watch = self._watched.pop(handler, None)
        if watch is not None and watch.transport is not None:
            self.closed_slow += 1
            watch.transport.close()

    async def _sweep(self) -> None:
        interval = min(0.5, max(0.01, self.read_timeout / 4))
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            late = [h for h, w in self._watched.items() if not w.busy and now >= w.deadline]
            for handler in late:
                self._close(handler)
