"""Every request and every answer bounded, and HTTP usable beyond 127.0.0.1 (issue 10, classes 5 and 7).

Real servers only: ``python -m mcp_memory_server`` over stdio (spoken to line by line, or
through the SDK client) and ``serve --transport http|sse`` on a loopback address.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import select
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from _mcp import call, error
from _procs import READY_TIMEOUT_S, SERVER, HttpServer, clean_env, http_server, read_line, stdio_params, stop
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_memory_server import MemoryStore
from mcp_memory_server.config import Config
from mcp_memory_server.errors import InvalidInput
from mcp_memory_server.server import build_server

pytestmark = pytest.mark.anyio

TOKEN = "bounds-test-token"
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
}


def tool_call(request_id: int, arguments: str) -> bytes:
    """A tools/call of memory_record whose ``arguments`` JSON is given raw (so it can be absurd)."""
    return (
        f'{{"jsonrpc":"2.0","id":{request_id},"method":"tools/call",'
        f'"params":{{"name":"memory_record","arguments":{arguments}}}}}'
    ).encode()


def nested(depth: int) -> str:
    return '{"kind":"x","data":' + "[" * depth + "]" * depth + "}"


def wide(items: int) -> str:
    return '{"kind":"x","data":[' + ",".join(["[]"] * items) + "]}"


# -- stdio, line by line ---------------------------------------------------------------------------


class RawStdio:
    """A stdio server spoken to in raw JSON-RPC lines, so malformed ones can be sent."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        self._stderr = open(data_dir.parent / "stdio-stderr.log", "wb")  # noqa: SIM115 - closed in close()
        command = [*SERVER, "--data-dir", str(data_dir), *args]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=clean_env()
        )
        self.send(json.dumps(INITIALIZE).encode())
        assert self.receive(READY_TIMEOUT_S)["id"] == 1
        self.send(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')

    def send(self, line: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + b"\n")
        self.process.stdin.flush()

    def receive(self, timeout: float = 60.0) -> dict[str, Any]:
        """The next answer; fails if none comes in ``timeout`` s (the silence this module is about)."""
        try:
            line = read_line(self.process, timeout)
        except TimeoutError:
            pytest.fail(f"no answer within {timeout} s")
        assert line, "the server closed stdout"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def still_serves(self, request_id: int) -> None:
        """A plain tools/call right after is answered: the bad line did not wedge the connection."""
        self.send(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                              "params": {"name": "memory_stats", "arguments": {}}}).encode())  # fmt: skip
        answer = self.receive()
        assert answer["id"] == request_id and "result" in answer, answer

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(30)
        finally:
            stop(self.process)
            assert self.process.stdout is not None
            self.process.stdout.close()
            self._stderr.close()


@pytest.fixture(scope="module")
def stdio_raw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RawStdio]:
    """One raw stdio server with a 64 KiB message limit, shared by this module's line-level tests."""
    server = RawStdio(tmp_path_factory.mktemp("raw") / "store", "--max-request-bytes", "65536")
    yield server
    server.close()


def assert_rejected(answer: dict[str, Any], code: int, request_id: int | None, *words: str) -> None:
    assert answer.get("id") == request_id, answer
    assert answer["error"]["code"] == code, answer
    for word in words:
        assert word in answer["error"]["message"], answer


def test_a_request_nested_200_deep_over_stdio_gets_a_json_rpc_error_with_its_id(stdio_raw: RawStdio) -> None:
    """Nested past max_request_depth (64): -32600 naming the limit, for the request's id, not silence."""
    for depth in (200, 20_000):
        stdio_raw.send(tool_call(depth, nested(depth)))
        assert_rejected(stdio_raw.receive(), -32600, depth, "nested more than 64 levels", "max_request_depth")
    stdio_raw.still_serves(7)


REPEATED_NAME = (
    b'{"jsonrpc":"2.0","id":31,"method":"tools/call","params":{"name":"memory_stats","name":"memory_record",'
    b'"arguments":{"kind":"x","text":"y"}}}'
)


def test_a_key_named_twice_in_one_object_is_refused_over_stdio(stdio_raw: RawStdio) -> None:
    """{"name": "memory_stats", "name": "memory_record"} ran the second tool (an attack): a proxy reading the
    first would allow one tool and see another run. Refused, for its id, and the line after is served."""
    stdio_raw.send(REPEATED_NAME)
    assert_rejected(stdio_raw.receive(), -32600, 31, "names the key 'name' twice")
    stdio_raw.send(tool_call(32, '{"kind":"x","kind":"y","text":"z"}'))
    assert_rejected(stdio_raw.receive(), -32600, 32, "names the key 'kind' twice")
    stdio_raw.still_serves(33)


def test_a_message_of_too_many_values_over_stdio_is_refused_before_parsing(tmp_path: Path) -> None:
    """Within the byte limit but over max_request_items values: -32600 naming that limit, then served on."""
    server = RawStdio(tmp_path / "store", "--max-request-items", "1000")
    try:
        server.send(tool_call(12, wide(5_000)))
        assert_rejected(server.receive(), -32600, 12, "over the limit of 1000", "max_request_items")
        server.send(tool_call(13, wide(100)))  # under the limit: parsed and served
        assert "result" in server.receive()
        server.still_serves(14)
    finally:
        server.close()


def test_a_line_over_the_message_limit_is_discarded_and_answered(stdio_raw: RawStdio) -> None:
    """A 1 MiB line against a 64 KiB limit: -32600 with the id read from its start; the next line is served."""
    stdio_raw.send(tool_call(21, '{"kind":"x","text":"' + "y" * (1 << 20) + '"}'))
    assert_rejected(stdio_raw.receive(), -32600, 21, "the limit of 65536 bytes", "max_request_bytes")
    stdio_raw.still_serves(22)


@pytest.mark.parametrize(
    ("line", "code", "request_id", "words"),
    [
        (b'{"jsonrpc":"2.0","id":31,"method":', -32700, None, ("not valid JSON",)),
        (b"this is not json", -32700, None, ("not valid UTF-8 JSON",)),
        (b'{"jsonrpc":"2.0","id":32,"method":"ping","params":{"x":"\xff\xfe"}}', -32700, None, ("UTF-8",)),
        (b'{"jsonrpc":"2.0","id":33,"method":5}', -32600, 33, ("not a valid JSON-RPC",)),
        (
            b'{"jsonrpc":"2.0","id":35,"method":"tools/call","params":{"name":"memory_record",'
            b'"arguments":{"kind":"\\ud800"}}}',
            -32600,
            35,
            ("not a valid JSON-RPC",),
        ),
    ],
    ids=["truncated", "not-json", "not-utf8", "bad-envelope", "lone-surrogate"],
)
def test_a_malformed_stdio_line_gets_a_parse_or_invalid_request_error(
    stdio_raw: RawStdio, line: bytes, code: int, request_id: int | None, words: tuple[str, ...]
) -> None:
    """The SDK's reader dropped these with a debug log; every one is answered now, and the next is served."""
    stdio_raw.send(line)
    assert_rejected(stdio_raw.receive(), code, request_id, *words)
    stdio_raw.still_serves(34)


# -- HTTP: depth, values, size, slowness -------------------------------------------------------------


@pytest.fixture(scope="module", params=["http", "sse"])
def web(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    """An HTTP or SSE server with a 1 s body deadline and a 256 KiB body limit."""
    root = tmp_path_factory.mktemp(f"web-{request.param}")
    with http_server(root / "store", request.param, "--max-body-seconds", "1",
                     "--max-request-bytes", str(256 * 1024)) as server:  # fmt: skip
        yield server


def post_path(server: HttpServer) -> str:
    # SSE's message endpoint; the body checks run before the session id is even looked at.
    return "/mcp" if server.transport == "http" else "/messages/?session_id=" + "0" * 32


def post(server: HttpServer, body: bytes) -> tuple[int, bytes]:
    return server.request("POST", post_path(server), body, MCP_HEADERS)


def test_a_deeply_nested_http_body_gets_400_with_a_json_rpc_error(web: HttpServer) -> None:
    """Over HTTP too: -32600 naming max_request_depth, for the request's id; a normal body is still served."""
    status, body = post(web, tool_call(42, nested(200)))
    assert status == 400
    assert_rejected(json.loads(body), -32600, 42, "max_request_depth")
    if web.transport == "http":
        assert post(web, json.dumps(INITIALIZE).encode())[0] == 200


def test_a_key_named_twice_in_one_object_is_refused_over_http(web: HttpServer) -> None:
    status, body = post(web, REPEATED_NAME)
    assert status == 400
    assert_rejected(json.loads(body), -32600, 31, "names the key 'name' twice")


def test_an_http_body_of_too_many_values_gets_400_naming_the_limit(web: HttpServer) -> None:
    """200 KiB of ``[],`` (~68,000 values) under a 1,000-value limit is refused unparsed."""
    with http_server(web.stderr_path.parent / f"store-{os.urandom(4).hex()}", web.transport,
                     "--max-request-items", "1000") as small:  # fmt: skip
        status, body = post(small, tool_call(43, wide(68_000)))
    assert status == 400
    assert_rejected(json.loads(body), -32600, 43, "over the limit of 1000", "max_request_items")


def test_an_oversize_http_body_gets_413_with_a_clear_message(web: HttpServer) -> None:
    """Over max_request_bytes: 413, and the body says which limit and what to do."""
    status, body = post(web, tool_call(44, '{"kind":"x","text":"' + "z" * (300 * 1024) + '"}'))
    assert status == 413
    assert_rejected(json.loads(body), -32600, None, "the limit of 262144 bytes", "max_request_bytes")


def test_a_body_that_trickles_in_gets_408_after_the_deadline(web: HttpServer) -> None:
    """Content-Length 4096, one byte every 0.2 s: the 1 s deadline answers 408 long before the body could end."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", web.port), timeout=30) as sock:
        sock.sendall(
            f"POST {post_path(web)} HTTP/1.1\r\nHost: 127.0.0.1:{web.port}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json, text/event-stream\r\nContent-Length: 4096\r\n\r\n{{".encode()
        )
        answer = b""
        for _ in range(150):  # 30 s at most; a body of 4096 bytes at this pace would take 13 minutes
            ready, _, _ = select.select([sock], [], [], 0.2)
            if ready:
                # The server closes the connection after its answer. Bytes of ours it never read
                # make that close a reset, which can arrive after the answer instead of an end of
                # stream (CI, once): the answer read before it is what the asserts check.
                with contextlib.suppress(ConnectionResetError):
                    while chunk := sock.recv(4096):
                        answer += chunk
                break
            sock.sendall(b" ")
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"max_body_seconds" in answer
    assert time.monotonic() - started < 30


def test_a_connection_that_never_finishes_its_headers_is_closed_after_the_deadline(web: HttpServer) -> None:
    """uvicorn times nothing before a request is parsed: 50 connections with half-sent headers are closed by the
    1 s deadline (an attack held one descriptor each until the server died), and the server still answers."""
    started = time.monotonic()
    sockets = [socket.create_connection(("127.0.0.1", web.port), timeout=30) for _ in range(50)]
    try:
        for sock in sockets:
            sock.sendall(f"POST {post_path(web)} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode())
        for sock in sockets:
            ready, _, _ = select.select([sock], [], [], 20)
            assert ready, "the server kept a connection whose headers never came"
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(4096) == b""  # closed, without an answer
    finally:
        for sock in sockets:
            sock.close()
    assert time.monotonic() - started < 20
    status, _ = post(web, json.dumps(INITIALIZE).encode())
    assert web.process.poll() is None and (web.transport != "http" or status == 200)


# -- resources and manifests ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """An 8,000-file directory (identical tiny files: cheap to store) and 5 MiB of random bytes."""
    root = tmp_path_factory.mktemp("big")
    tree = root / "tree"
    tree.mkdir()
    for i in range(8000):
        (tree / f"run-{i:05d}-résumé.log").write_bytes(b"x")
    blob = os.urandom(5 * 1024 * 1024)
    (root / "weights.bin").write_bytes(blob)
    return root, blob


async def test_a_5_mib_resource_comes_in_bounded_chunks_that_point_to_the_rest(
    big_tree: tuple[Path, bytes], tmp_path: Path
) -> None:
    """cas:// and artifact:// reads return ≤ 1 MiB with _meta next_uri/next_offset; following them rebuilds the blob."""
    root, blob = big_tree
    async with Client(stdio_params(tmp_path / "store")) as client:
        saved = await call(client, "artifact_save", path=str(root / "weights.bin"))
        for base in (saved["uri"], f"artifact://{saved['artifact_id']}"):
            first = (await client.read_resource(base)).contents[0]
            meta = first.meta or {}
            assert len(base64.b64decode(first.blob)) == 1024 * 1024  # type: ignore[union-attr]
            assert meta["total_bytes"] == len(blob) and meta["next_offset"] == 1024 * 1024
            assert meta["next_uri"] == f"{base}?offset={1024 * 1024}"
            assert "artifact_read" in meta["hint"]
            assert first.mime_type == "application/octet-stream"
            got = bytearray(base64.b64decode(first.blob))  # type: ignore[union-attr]
            uri: str | None = meta["next_uri"]
            while uri is not None:
                part = (await client.read_resource(uri)).contents[0]
                chunk = base64.b64decode(part.blob)  # type: ignore[union-attr]
                assert len(chunk) <= 1024 * 1024
                got += chunk
                uri = (part.meta or {}).get("next_uri")
            assert hashlib.sha256(got).hexdigest() == saved["sha256"]
        with pytest.raises(Exception, match="past the end"):
            await client.read_resource(f"{saved['uri']}?offset={len(blob) + 1}")


@pytest.fixture
def fast_data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data directory on tmpfs where there is one: saving 8,000 files costs 8,000 fsyncs, which tmpfs makes free.

    What is under test is the paging, not the disk; the store is as real on tmpfs as anywhere.
    """
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path / "store"
        return
    folder = shm / f"mcp-bounds-{os.getpid()}-{os.urandom(4).hex()}"
    folder.mkdir()  # a data directory's parent must exist (or --create-data-dir be given)
    try:
        yield folder / "store"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def test_an_8000_entry_manifest_comes_in_pages_that_honour_offset(
    big_tree: tuple[Path, bytes], fast_data_dir: Path
) -> None:
    """artifact_read pages a directory's manifest by whole entries within max_response_bytes; so do resources."""
    root, _ = big_tree
    async with Client(stdio_params(fast_data_dir)) as client:
        saved = await call(client, "artifact_save", path=str(root / "tree"))
        paths: list[str] = []
        offset: int | None = 0
        pages = 0
        while offset is not None:
            page = await call(client, "artifact_read", artifact_id=saved["artifact_id"], offset=offset)
            assert page["encoding"] == "manifest" and page.get("offset", 0) == offset  # 0 is the default, omitted
            assert len(page["content"].encode()) <= 256 * 1024 + 64
            manifest = json.loads(page["content"])
            assert manifest["type"] == "directory" and manifest["entries"]
            paths += [e["path"] for e in manifest["entries"]]
            offset = page.get("next_offset")  # omitted on the last page
            pages += 1
        assert pages >= 4
        assert paths == sorted(f"run-{i:05d}-résumé.log" for i in range(8000))

        short = await call(client, "artifact_read", artifact_id=saved["artifact_id"], length=1000)
        assert 1 <= len(json.loads(short["content"])["entries"]) <= 10
        message = await error(client, "artifact_read", artifact_id=saved["artifact_id"], offset=17)
        assert "not the start of an entry" in message and "next_offset" in message

        listed: list[str] = []
        uri: str | None = f"artifact://{saved['artifact_id']}"
        while uri is not None:
            part = (await client.read_resource(uri)).contents[0]
            listed += [e["path"] for e in json.loads(part.text)["entries"]]  # type: ignore[union-attr]
            assert part.mime_type == "application/json"
            uri = (part.meta or {}).get("next_uri")
        assert listed == paths


async def test_a_text_resource_is_cut_at_character_boundaries(tmp_path: Path) -> None:
    """With a 5-byte cap, "aé…" comes in chunks that never split a character and join back exactly."""
    text = "aé€😀" * 7
    with MemoryStore.open(tmp_path / "store", max_resource_bytes=5) as store:
        async with Client(build_server(store)) as client:
            saved = await call(client, "artifact_save", text=text)
            pieces: list[str] = []
            uri: str | None = saved["uri"]
            while uri is not None:
                part = (await client.read_resource(uri)).contents[0]
                pieces.append(part.text)  # type: ignore[union-attr]
                assert len(part.text.encode()) <= 5 or len(part.text) == 1  # type: ignore[union-attr]
                uri = (part.meta or {}).get("next_uri")
    assert "".join(pieces) == text
    assert "\ufffd" not in "".join(pieces)


# -- hosts and origins beyond 127.0.0.1 -------------------------------------------------------------------


def initialize(server: HttpServer, host: str, extra: dict[str, str] | None = None) -> int:
    headers = {**MCP_HEADERS, "Host": host, **(extra or {})}
    return server.request("POST", "/mcp", json.dumps(INITIALIZE).encode(), headers)[0]


def test_a_server_bound_to_127_0_0_2_accepts_requests_naming_it(tmp_path: Path) -> None:
    """--host 127.0.0.2 (loopback, no token needed) serves Host 127.0.0.2:<port>; a foreign Host is still 421."""
    with http_server(tmp_path / "store", "http", bind="127.0.0.2") as server:
        assert server.host == "127.0.0.2"
        assert initialize(server, f"127.0.0.2:{server.port}") == 200
        assert initialize(server, f"localhost:{server.port}") == 200
        assert initialize(server, f"evil.example:{server.port}") == 421
        assert initialize(server, f"127.0.0.2:{server.port}", {"Origin": "http://evil.example"}) == 403


def test_a_wildcard_bind_accepts_this_machines_name_and_the_operators_hosts(tmp_path: Path) -> None:
    """--host 0.0.0.0 with a token: Host <hostname>:<port> and --allowed-hosts names are served; rebinding is not."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    env = {"MCP_MEMORY_TOKEN": TOKEN, "MCP_MEMORY_ALLOWED_ORIGINS": "https://app.example, http://tool.example:3000"}
    with http_server(tmp_path / "store", "http", "--allowed-hosts", "mcp.test", env=env, bind="0.0.0.0") as server:
        port = server.port
        assert initialize(server, f"{socket.gethostname()}:{port}", auth) == 200
        assert initialize(server, f"mcp.test:{port}", auth) == 200
        assert initialize(server, f"127.0.0.1:{port}", auth) == 200
        assert initialize(server, f"mcp.test:{port}", {**auth, "Origin": "https://app.example"}) == 200
        assert initialize(server, f"mcp.test:{port}", {**auth, "Origin": "http://tool.example:3000"}) == 200
        assert initialize(server, f"mcp.test:{port}", {**auth, "Origin": f"http://mcp.test:{port}"}) == 200
        assert initialize(server, f"evil.example:{port}", auth) == 421
        assert initialize(server, f"0.0.0.1:{port}", auth) == 421
        assert initialize(server, f"mcp.test:{port}", {**auth, "Origin": "http://evil.example"}) == 403
        assert initialize(server, f"{socket.gethostname()}:{port}") == 401  # the name never replaces the token


async def test_an_sdk_client_reaches_a_wildcard_bind_by_host_name(tmp_path: Path) -> None:
    """The whole tool round trip through http://<hostname>:<port>/mcp resolved to 127.0.0.1, with the token."""
    with http_server(tmp_path / "store", "http", env={"MCP_MEMORY_TOKEN": TOKEN}, bind="0.0.0.0") as server:
        url = f"http://127.0.0.1:{server.port}/mcp"
        headers = {"Authorization": f"Bearer {TOKEN}", "Host": f"{socket.gethostname()}:{server.port}"}
        async with (
            httpx2.AsyncClient(headers=headers) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            saved = await call(client, "artifact_save", text="over the network name")
            assert (await call(client, "artifact_read", uri=saved["uri"]))["content"] == "over the network name"


@pytest.mark.parametrize("entry", ["evil/x", "a b", "user@host", "*", ""])
def test_a_malformed_allowed_host_is_refused_at_start(entry: str) -> None:
    with pytest.raises(InvalidInput, match="allowed_hosts entry"):
        Config.load({"allowed_hosts": [entry, "ok.lan"]}, environ={})


def test_allowed_hosts_and_origins_come_from_comma_separated_variables() -> None:
    """Comma, not os.pathsep: an entry may carry a port (``name:8765``)."""
    config = Config.load(environ={"MCP_MEMORY_ALLOWED_HOSTS": "a.lan:8765, b.lan",
                                  "MCP_MEMORY_ALLOWED_ORIGINS": "https://x.example:8443"})  # fmt: skip
    assert config.allowed_hosts == ["a.lan:8765", "b.lan"]
    assert config.allowed_origins == ["https://x.example:8443"]
    with pytest.raises(InvalidInput, match="allowed_origins entry"):
        Config.load({"allowed_origins": ["app.example"]}, environ={})
