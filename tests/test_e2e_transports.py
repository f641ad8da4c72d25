"""The server as a real process: stdio, streamable HTTP and SSE on 127.0.0.1, and HTTP's guards."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from _engine import own_records_env, records_created
from _mcp import call
from _procs import SERVER, HttpServer, clean_env, free_port, http_server, port_open, stdio_params
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

pytestmark = pytest.mark.anyio

TOKEN = "s3cret-token-for-tests"
SMALL_BODY_LIMIT = 4096  # fits every ordinary request these tests send


async def exercise(client: Client) -> None:
    """Save and read an artifact, record and recall an event: the round trip every transport must carry."""
    tools = {tool.name for tool in (await client.list_tools()).tools}
    assert {"artifact_save", "artifact_read", "memory_record", "memory_recent", "memory_stats"} <= tools

    saved = await call(client, "artifact_save", text="transport round trip", kind="note", labels={"via": "e2e"})
    assert saved["uri"].startswith("cas://sha256/")
    content = await call(client, "artifact_read", uri=saved["uri"])
    assert content["encoding"] == "text"
    assert content["content"] == "transport round trip"

    event = await call(client, "memory_record", kind="decision", data={"choice": "sqlite"}, tags=["e2e"])
    recent = await call(client, "memory_recent", tags=["e2e"], limit=5)
    assert [e["event_id"] for e in recent["events"]] == [event["event_id"]]
    assert recent["events"][0]["data"] == {"choice": "sqlite"}


# -- the three transports ------------------------------------------------------------------------


async def test_a_stdio_subprocess_saves_reads_records_and_recalls(data_dir: Path) -> None:
    """A real ``python -m mcp_memory_server`` over stdio serves the artifact and memory tools."""
    async with Client(stdio_params(data_dir)) as client:
        await exercise(client)
        stats = await call(client, "memory_stats")
    assert stats["data_dir"] == str(data_dir.resolve())
    assert stats["counts"]["events"] == 1
    assert records_created(data_dir)


@pytest.fixture(scope="module")
def http_plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    """A streamable-HTTP server with a small request-body limit, shared by this module's tests."""
    root = tmp_path_factory.mktemp("http")
    with http_server(
        root / "store", "http", "--max-request-bytes", str(SMALL_BODY_LIMIT), env=own_records_env()
    ) as server:
        yield server


@pytest.fixture(scope="module")
def sse_plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    """An SSE server with a small request-body limit, shared by this module's tests."""
    root = tmp_path_factory.mktemp("sse")
    with http_server(
        root / "store", "sse", "--max-request-bytes", str(SMALL_BODY_LIMIT), env=own_records_env()
    ) as server:
        yield server


@pytest.fixture(params=["http", "sse"])
def plain(request: pytest.FixtureRequest) -> HttpServer:
    """Each HTTP transport in turn."""
    server: HttpServer = request.getfixturevalue(f"{request.param}_plain")
    return server


async def test_a_streamable_http_server_on_loopback_serves_the_tools(http_plain: HttpServer) -> None:
    """``serve --transport http`` answers MCP at http://127.0.0.1:<port>/mcp."""
    async with Client(http_plain.url) as client:
        await exercise(client)


async def test_an_sse_server_on_loopback_serves_the_tools(sse_plain: HttpServer) -> None:
    """``serve --transport sse`` answers MCP through the SDK's SSE client at /sse."""
    async with Client(sse_client(sse_plain.url)) as client:
        await exercise(client)


# -- HTTP security ---------------------------------------------------------------------------------


def initialize_body(size: int = 0) -> bytes:
    """A JSON-RPC initialize request, padded with a long client name to ``size`` bytes if asked."""
    message: dict[str, Any] = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "raw-http", "version": "0"},
        },
    }
    body = json.dumps(message).encode()
    if size > len(body):
        message["params"]["clientInfo"]["name"] = "x" * (size - len(body))
        body = json.dumps(message).encode()
    return body


MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def probe(server: HttpServer, headers: dict[str, str], body: bytes | None = None) -> tuple[int, bytes]:
    """The request a client makes first: POST initialize to /mcp, or open the /sse stream."""
    if server.transport == "sse":
        return server.request("GET", "/sse", headers={"Accept": "text/event-stream", **headers})
    return server.request("POST", "/mcp", body if body is not None else initialize_body(), {**MCP_HEADERS, **headers})


@pytest.fixture(scope="module", params=["http", "sse"])
def guarded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    """An HTTP or SSE server that requires ``Authorization: Bearer <TOKEN>`` (set through MCP_MEMORY_TOKEN)."""
    root = tmp_path_factory.mktemp(f"guarded-{request.param}")
    with http_server(root / "store", request.param, env={"MCP_MEMORY_TOKEN": TOKEN, **own_records_env()}) as server:
        yield server


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["missing", "wrong", "no-scheme", "basic"],
)
def test_a_request_without_the_right_bearer_token_gets_a_bare_401(guarded: HttpServer, headers: dict[str, str]) -> None:
    """With a token set, a missing or wrong token is answered 401 with an empty body that reveals nothing."""
    status, body = probe(guarded, headers)
    assert status == 401
    assert body == b""
    assert TOKEN not in guarded.stderr()


async def test_a_client_with_the_right_bearer_token_is_served(guarded: HttpServer) -> None:
    """The right ``Authorization: Bearer`` header gets the full tool round trip."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    if guarded.transport == "sse":
        async with Client(sse_client(guarded.url, headers=auth)) as client:
            await exercise(client)
    else:
        async with (
            httpx2.AsyncClient(headers=auth) as http,
            Client(streamable_http_client(guarded.url, http_client=http)) as client,
        ):
            await exercise(client)


def test_binding_a_non_loopback_address_without_a_token_is_refused(tmp_path: Path) -> None:
    """``serve --host 0.0.0.0`` with no token exits non-zero, says to set MCP_MEMORY_TOKEN, never listens."""
    port = free_port()
    command = [*SERVER, "serve", "--transport", "http", "--host", "0.0.0.0", "--port", str(port),
               "--data-dir", str(tmp_path / "store")]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=60, env=clean_env(), stdin=subprocess.DEVNULL
    )
    assert done.returncode != 0
    assert "MCP_MEMORY_TOKEN" in done.stderr
    assert "0.0.0.0" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert not port_open(port)
    assert not (tmp_path / "store").exists()  # refused before anything was opened


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"Host": "evil.example"}, 421), ({"Host": "evil.example:80"}, 421), ({"Origin": "http://evil.example"}, 403)],
    ids=["host", "host-port", "origin"],
)
def test_a_request_naming_a_foreign_host_or_origin_is_refused(
    plain: HttpServer, headers: dict[str, str], expected: int
) -> None:
    """DNS-rebinding protection: a Host (421) or Origin (403) that is not this loopback server is refused."""
    status, _ = probe(plain, headers)
    assert status == expected


def test_a_request_naming_this_server_is_accepted(plain: HttpServer) -> None:
    """The guard is not a blanket refusal: Host 127.0.0.1:<port> and localhost:<port> both get through."""
    for host in (f"127.0.0.1:{plain.port}", f"localhost:{plain.port}"):
        status, _ = probe(plain, {"Host": host, "Origin": f"http://{host}"})
        assert status == 200, host


def test_an_oversize_request_body_is_refused_with_413(http_plain: HttpServer) -> None:
    """A body over --max-request-bytes is answered 413 before it is handled; one under the limit is served."""
    status, _ = probe(http_plain, {}, initialize_body(SMALL_BODY_LIMIT * 4))
    assert status == 413
    status, _ = probe(http_plain, {}, initialize_body(SMALL_BODY_LIMIT // 2))
    assert status == 200


def test_an_oversize_body_without_content_length_is_refused_with_413(http_plain: HttpServer) -> None:
    """A chunked body that grows past the limit is cut off with 413 too (no Content-Length to trust)."""
    body = initialize_body(SMALL_BODY_LIMIT * 4)
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    status, _ = http_plain.request("POST", "/mcp", chunked, {**MCP_HEADERS, "Transfer-Encoding": "chunked"})
    assert status == 413


async def test_an_oversize_sse_message_is_refused_with_413(sse_plain: HttpServer) -> None:
    """SSE's message endpoint has the same body limit as streamable HTTP."""
    status, _ = sse_plain.request(
        "POST", "/messages/?session_id=00000000000000000000000000000000", initialize_body(SMALL_BODY_LIMIT * 4),
        {"Content-Type": "application/json"},
    )  # fmt: skip
    assert status == 413
