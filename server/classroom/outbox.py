"""Room messages to one connection, sent in order by at most one task at a time.

The room posts without waiting, so one slow student never holds up a teacher's command. A
posted message replaces an unsent one of the same type (a newer prompt makes the older one
moot), so what waits for a slow reader stays a handful of messages.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from server.stream import Send

logger = logging.getLogger(__name__)


class Outbox:
    def __init__(self, send: Send) -> None:
        self._send = send
        self._pending: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    def post(self, message: dict[str, Any]) -> None:
        self._pending = [waiting for waiting in self._pending if waiting["type"] != message["type"]]
        self._pending.append(message)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush(), name="digitstream-outbox")

    async def _flush(self) -> None:
        while self._pending:
            message = self._pending.pop(0)
            try:
                await self._send(json.dumps(message))
            except Exception:
                # The connection is gone or was dropped for not reading; its own loop ends it.
                logger.debug("a room message could not be sent", exc_info=True)
                self._pending.clear()
                return
