"""HTTP transports (streamable HTTP and SSE) with loopback default, bearer token and host checks."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import Config
from ..errors import AccessDenied

_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BearerToken:
    """Refuses every request without ``Authorization: Bearer <token>`` with a bare 401."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self._app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self._expected):
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"www-authenticate", b"Bearer"), (b"content-length", b"0")]})  # fmt: skip
                await send({"type": "http.response.body", "body": b""})
                return
        await self._app(scope, receive, send)


def security_settings(host: str, port: int) -> TransportSecuritySettings:
    """DNS-rebinding protection: only Host/Origin headers naming this server are accepted."""
    hosts = {"127.0.0.1", "localhost", "[::1]"} if is_loopback(host) else {host}
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{h}:{port}" for h in sorted(hosts)] + sorted(hosts),
        allowed_origins=[f"http://{h}:{port}" for h in sorted(hosts)],
    )


def check_bind(host: str, config: Config) -> None:
    """Refuse to listen beyond loopback without a bearer token.

    Raises:
        AccessDenied: a non-loopback host was asked for without a token.
    """
    if not is_loopback(host) and not config.token:
        raise AccessDenied(
            f"refusing to serve on {host} without a token: set MCP_MEMORY_TOKEN (or --token) "
            "so clients must send 'Authorization: Bearer <token>', or bind 127.0.0.1"
        )


def build_app(server: MCPServer, config: Config, transport: str, host: str, port: int) -> Any:
    """The ASGI app for ``transport`` (``http`` or ``sse``).

    Raises:
        AccessDenied: a non-loopback host was asked for without a token.
    """
    check_bind(host, config)
    settings = security_settings(host, port)
    if transport == "sse":
        app = server.sse_app(max_request_body_size=config.max_request_bytes, transport_security=settings, host=host)
    else:
        app = server.streamable_http_app(
            max_request_body_size=config.max_request_bytes, transport_security=settings, host=host
        )
    return BearerToken(app, config.token) if config.token else app


def serve_http(server: MCPServer, config: Config, transport: str, host: str, port: int) -> None:
    import uvicorn

    app = build_app(server, config, transport, host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="on")
