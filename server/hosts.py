"""The `Host` allow-list: a page on another site that rebinds its DNS name to this server's
address still sends its own name as `Host`, and is refused here before any route (or the
WebSocket `Origin` check, which compares `Origin` with `Host`) sees it.

An IP address and `localhost` are always allowed: a rebinding attack needs a name of the
attacker's, and students reach a classroom server by its address. Other names are allowed
when listed (`--allowed-hosts`).
"""

from __future__ import annotations

import ipaddress

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send


def host_name(host: str) -> str:
    """`Host` without its port, brackets or trailing dot, lower-cased: "[::1]:8000" → "::1"."""
    if host.startswith("["):
        return host[1:].partition("]")[0].lower()
    return host.rpartition(":")[0].lower().rstrip(".") if ":" in host else host.lower().rstrip(".")


def is_ip_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class AllowedHosts:
    def __init__(self, app: ASGIApp, names: tuple[str, ...]) -> None:
        self.app = app
        self.any = "*" in names
        self.names = frozenset(name.lower().rstrip(".") for name in ("localhost", *names))

    def allows(self, host: str) -> bool:
        name = host_name(host)
        return self.any or name in self.names or is_ip_address(name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.allows(Headers(scope=scope).get("host", "")):
            await self.app(scope, receive, send)
        else:  # a WebSocket handshake gets the same 400, as an HTTP denial response
            await PlainTextResponse("This server does not answer to that host name.", 400)(scope, receive, send)
