"""HTTP transports (streamable HTTP and SSE) with loopback default, bearer token, host and body checks."""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import math
import socket
import time
from collections.abc import Iterable
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Config
from ..errors import AccessDenied
from ._limits import MessageLimits, Rejection, check_message, too_large

_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
_WILDCARDS = {"", "0.0.0.0", "::"}


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


class BodyLimits:
    """Reads a request body under a size cap and a deadline, and checks its JSON bounds before the app parses it.

    Over ``max_request_bytes`` (declared or counted): 413. Not all there within
    ``max_body_seconds``: 408. Nested deeper than ``max_request_depth`` or holding more
    than ``max_request_items`` values: 400 with a JSON-RPC error naming the limit. Without
    the deadline a client that sends one byte a minute holds a connection and its buffer
    forever; without the JSON bounds a 30 MiB body of ``[],[],…`` costs ~1 GiB to parse.
    The body that passes is replayed to the app as one chunk (one copy, not a second buffer).
    """

    def __init__(self, app: ASGIApp, limits: MessageLimits, seconds: float) -> None:
        self._app = app
        self._limits = limits
        self._seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self._app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._limits.max_bytes:
            await _answer(send, 413, too_large(int(declared), self._limits))
            return
        chunks: list[bytes] = []
        size = 0
        trailing: Message | None = None
        with anyio.move_on_after(self._seconds) as deadline:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    trailing = message  # the client went away; let the app see it
                    break
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self._limits.max_bytes:
                    await _answer(send, 413, too_large(None, self._limits, b"".join(chunks)[:4096]))
                    return
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        if deadline.cancelled_caught:
            await _answer(send, 408, Rejection(-32600, (
                f"the request body did not arrive within {self._seconds:g} s (max_body_seconds); "
                "send the whole body promptly")))  # fmt: skip
            return
        body = b"".join(chunks)
        del chunks
        rejection = check_message(body, self._limits) if trailing is None else None
        if rejection is not None:
            await _answer(send, 400, rejection)
            return
        pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
        if trailing is not None:
            pending.append(trailing)
        del body

        async def replay() -> Message:
            return pending.pop(0) if pending else await receive()

        await self._app(scope, replay, send)


class NoStatelessStreams:
    """Answers a GET (the standalone SSE stream) on a stateless server with 405, as the spec allows.

    Without a session nothing can ever be sent on that stream, yet the SDK keeps each one
    open with a transport of its own, forever: a client holding a few thousand of them used
    up the server's descriptors (measured: 300 held GETs, +300 fds and +22 MiB).
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") == "GET":
            body = Rejection(-32600, "this server is stateless (--stateless): it has no event stream to GET; "
                                     "POST each request, its answer streams in the response").body()  # fmt: skip
            headers = [(b"content-type", b"application/json"), (b"allow", b"POST"),
                       (b"content-length", str(len(body)).encode())]  # fmt: skip
            await send({"type": "http.response.start", "status": 405, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self._app(scope, receive, send)


async def _answer(send: Send, status: int, rejection: Rejection) -> None:
    body = rejection.body()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _bracketed(name: str) -> str:
    """An IPv6 literal as a Host header writes it (``[::1]``); anything else unchanged."""
    try:
        return f"[{name}]" if ipaddress.ip_address(name).version == 6 else name
    except ValueError:
        return name


def machine_names() -> set[str]:
    """This machine's host name, FQDN and interface addresses (best effort; what a wildcard bind answers on)."""
    names: set[str] = set()
    with contextlib.suppress(OSError):
        names.update(n for n in (socket.gethostname(), socket.getfqdn()) if n)
    for name in list(names):
        with contextlib.suppress(OSError, UnicodeError):
            names.update(str(info[4][0]).split("%")[0] for info in socket.getaddrinfo(name, None))
    names.update(_interface_addresses())
    return names


def _interface_addresses() -> set[str]:
    """Every address configured on a local interface: IPv4 through a UDP socket's routing, IPv6 from /proc (Linux)."""
    found: set[str] = set()
    # /proc/net/if_inet6 lines: hex address, index, prefix, scope, flags, name.
    with contextlib.suppress(OSError), open("/proc/net/if_inet6") as table:
        for line in table:
            raw = line.split()[0]
            if len(raw) == 32:
                found.add(str(ipaddress.IPv6Address(bytes.fromhex(raw))))
    with contextlib.suppress(OSError):
        import fcntl
        import struct

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            for _index, ifname in socket.if_nameindex():
                with contextlib.suppress(OSError):
                    request = struct.pack("256s", ifname.encode()[:15])
                    answer = fcntl.ioctl(probe.fileno(), 0x8915, request)  # SIOCGIFADDR
                    found.add(socket.inet_ntoa(answer[20:24]))
    return found


def allowed_host_names(host: str, config: Config) -> list[str]:
    """The names a client may put in ``Host`` (before ports are added): loopback, the bind, the machine, the operator's."""
    names = {"localhost", "127.0.0.1", "::1"}
    if host in _WILDCARDS:
        names |= machine_names()
    else:
        names.add(host)
    return sorted(_bracketed(n) for n in names) + [h for h in config.allowed_hosts if h not in names]


def security_settings(host: str, port: int, config: Config | None = None) -> TransportSecuritySettings:
    """DNS-rebinding protection: only Host/Origin headers naming this server are accepted.

    Accepted hosts are loopback names, the bound address (for a wildcard bind, this
    machine's names and addresses) and ``--allowed-hosts``, each with and without
    ``:port``; an operator entry that names a port (``name:8443``, ``name:*``) is kept
    as given. Origins are ``http://`` and ``https://`` of each accepted host, plus
    ``--allowed-origins``. Anything else, such as a rebinding page's own name, gets 421
    (Host) or 403 (Origin).
    """
    config = config or Config()
    hosts = _with_ports(allowed_host_names(host, config), port)
    origins = [f"{scheme}://{h}" for h in hosts for scheme in ("http", "https")]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=list(dict.fromkeys([*origins, *config.allowed_origins])),
    )


def _with_ports(names: Iterable[str], port: int) -> list[str]:
    forms: list[str] = []
    for name in names:
        tail = name.rsplit("]", 1)[-1] if name.startswith("[") else name
        if ":" in tail:  # already has a port (or :* for any)
            forms.append(name)
        else:
            forms += [f"{name}:{port}", name]
    return list(dict.fromkeys(forms))


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
    settings = security_settings(host, port, config)
    app: ASGIApp
    if transport == "sse":
        app = server.sse_app(max_request_body_size=config.max_request_bytes, transport_security=settings, host=host)
    else:
        # Stateless: every POST is served on a transport of its own and no Mcp-Session-Id is
        # issued, so a load balancer may send each request to a different replica.
        app = server.streamable_http_app(
            max_request_body_size=config.max_request_bytes,
            transport_security=settings,
            host=host,
            stateless_http=config.stateless_http,
            max_sessions=config.max_sessions,
            session_idle_timeout=config.max_session_idle_seconds,
        )
        if config.stateless_http:
            app = NoStatelessStreams(app)
    # The token first: an unauthenticated client gets 401 before any of its body is read.
    app = BodyLimits(app, MessageLimits.from_config(config), config.max_body_seconds)
    return BearerToken(app, config.token) if config.token else app


def endpoint_url(transport: str, host: str, port: int) -> str:
    """Where a client connects: ``/sse`` for SSE, ``/mcp`` for streamable HTTP."""
    return f"http://{_bracketed(host)}:{port}/{'sse' if transport == 'sse' else 'mcp'}"


def serve_http(server: MCPServer, config: Config, transport: str, host: str, port: int, store: str) -> None:
    """Serve until interrupted; one line on stderr once the port is bound, giving the URL."""
    import sys

    import uvicorn

    app = build_app(server, config, transport, host, port)
    name = "SSE" if transport == "sse" else "streamable HTTP" + (", stateless" if config.stateless_http else "")

    class _Announcing(uvicorn.Server):
        # After startup, not before: a port already in use must not be announced as served.
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                print(f"mcp-memory-server: serving MCP ({name}) at {endpoint_url(transport, host, port)} "
                      f"(store: {store}); Ctrl-C to stop", file=sys.stderr, flush=True)  # fmt: skip

    _spare_descriptors()
    protocol = _headers_in_time(config.max_body_seconds)
    _Announcing(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", http=protocol)).run()


def _headers_in_time(seconds: float) -> type:
    """uvicorn's HTTP/1.1 protocol, closing a connection whose request line and headers are not in after ``seconds``.

    uvicorn times nothing before a request is complete (its keep-alive timer starts after the first answer,
    and every byte resets it), and the body deadline above runs only once the headers are parsed: a client
    opening connections and never finishing their headers held one descriptor each until the process ran
    out, and the server died (an attack, stop 30).
    """
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadersInTime(H11Protocol):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._headers_due = self.loop.call_later(seconds, self._headers_late)

        def _headers_late(self) -> None:
            if self.cycle is None and not self.transport.is_closing():  # no request has begun on it
                self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            self._headers_due.cancel()
            super().connection_lost(exc)

    return HeadersInTime


class _OncePerMinute:
    """A log filter passing a message holding ``marker`` at most once a minute, and every other message.

    asyncio logs a failed ``accept()`` once for each connection waiting in the backlog (2,048), every
    second, until descriptors are free again: 57,000 lines in 25 s under the attack.
    """

    def __init__(self, marker: str) -> None:
        self._marker = marker
        self._last = -math.inf

    def filter(self, record: Any) -> bool:
        if self._marker not in str(record.msg):
            return True
        now = time.monotonic()
        if now - self._last < 60:
            return False
        self._last = now
        return True


def _spare_descriptors() -> None:
    """Room to answer many connections, and a logger that still works when descriptors run out.

    asyncio survives an ``accept()`` that fails with EMFILE: it logs it and pauses accepting. The SDK's log
    handler imports ``rich.traceback`` the first time it prints one, and that import failed the same way,
    escaping the event loop. Importing it now, logging asyncio's messages plainly, and raising the soft
    descriptor limit to the hard one (as servers commonly do) keep the loop alive.
    """
    import logging
    import resource

    with contextlib.suppress(ImportError):
        import rich.traceback  # noqa: F401
    # ... and asyncio's own messages go to a plain handler, which opens no file to print one
    # (rich's handler imports more of itself lazily, such as its emoji table)
    plain = logging.StreamHandler()
    plain.setFormatter(logging.Formatter("mcp-memory-server: %(name)s: %(message)s"))
    plain.addFilter(_OncePerMinute("out of system resource"))
    asyncio_log = logging.getLogger("asyncio")
    asyncio_log.addHandler(plain)
    asyncio_log.propagate = False
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = 65536 if hard == resource.RLIM_INFINITY else hard
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
