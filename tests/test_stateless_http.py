"""``serve --transport http --stateless``: replicas without sessions, any request to any of them.

Two real server processes share one store; raw JSON-RPC POSTs of the 2025 protocol (the
one that has sessions) go to either replica with no ``Mcp-Session-Id``, as a load balancer
would spread them, and a long call's progress notifications still reach its client.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from _procs import HttpServer, http_server

LEGACY = "2025-06-18"
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def engine_env() -> dict[str, str]:
    """The test's engine for the servers (clean_env drops MCP_MEMORY_* settings from the shell)."""
    url = os.environ.get("MCP_MEMORY_DATABASE_URL")
    return {"MCP_MEMORY_DATABASE_URL": url} if url else {}


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str | None
) -> Iterator[tuple[HttpServer, HttpServer, Path]]:
    """Two replicas on one store, shared by this module's tests (each test uses new records)."""
    root = tmp_path_factory.mktemp("replicas")
    inbox = root / "inbox"
    inbox.mkdir()
    env: dict[str, str] = {}
    if postgres_url is not None:
        from _postgres import fresh_schema_url

        env["MCP_MEMORY_DATABASE_URL"] = fresh_schema_url(postgres_url)
    args = ("--stateless", "--allow-path", str(inbox))
    with (
        http_server(root / "store", "http", *args, env=env, log_dir=root) as first,
        http_server(root / "store", "http", *args, env=env, log_dir=root) as second,
    ):
        yield first, second, inbox


def post(server: HttpServer, message: dict[str, Any], session: str | None = None) -> httpx2.Response:
    headers = {**HEADERS, "Mcp-Protocol-Version": LEGACY}
    if session:
        headers["Mcp-Session-Id"] = session
    return httpx2.post(f"http://127.0.0.1:{server.port}/mcp", json=message, headers=headers, timeout=60)


def messages(response: httpx2.Response) -> list[dict[str, Any]]:
    """The JSON-RPC messages of a response, whether it came as JSON or as an SSE stream."""
    if response.headers.get("content-type", "").startswith("application/json"):
        return [response.json()]
    return [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]


def call(server: HttpServer, name: str, request_id: int, **arguments: Any) -> list[dict[str, Any]]:
    response = post(server, {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                             "params": {"name": name, "arguments": arguments}})  # fmt: skip
    assert response.status_code == 200, response.text
    return messages(response)


def result(answer: list[dict[str, Any]]) -> dict[str, Any]:
    final = [m for m in answer if "result" in m or "error" in m]
    assert len(final) == 1, answer
    assert "result" in final[0], final[0]
    structured: dict[str, Any] = final[0]["result"]["structuredContent"]
    return structured


def test_initialize_on_a_stateless_replica_issues_no_session(replicas: tuple[HttpServer, HttpServer, Path]) -> None:
    first, _, _ = replicas
    response = post(first, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "lb-test", "version": "1"}}})  # fmt: skip
    assert response.status_code == 200, response.text
    assert "mcp-session-id" not in response.headers
    assert result_of_initialize(messages(response))["serverInfo"]["name"]


def result_of_initialize(answer: list[dict[str, Any]]) -> dict[str, Any]:
    (final,) = [m for m in answer if "result" in m]
    value: dict[str, Any] = final["result"]
    return value


def test_a_write_sent_to_one_replica_is_read_back_from_the_other(
    replicas: tuple[HttpServer, HttpServer, Path],
) -> None:
    first, second, _ = replicas
    recorded = [result(call(first if i % 2 else second, "memory_record", i, kind="note", text=f"step {i}",
                            tags=["spread"])) for i in range(6)]  # fmt: skip
    recent = result(call(first, "memory_recent", 100, limit=10, tags=["spread"]))
    assert sorted(e["event_id"] for e in recent["events"]) == sorted(r["event_id"] for r in recorded)
    again = result(call(second, "memory_recent", 101, limit=10, tags=["spread"]))
    assert [e["event_id"] for e in again["events"]] == [e["event_id"] for e in recent["events"]]


def test_a_long_call_on_a_stateless_replica_still_sends_progress(
    replicas: tuple[HttpServer, HttpServer, Path],
) -> None:
    _, second, inbox = replicas
    big = inbox / "weights.bin"
    big.write_bytes(os.urandom(6 * 1024 * 1024))
    response = post(second, {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "artifact_save", "arguments": {"path": str(big), "kind": "checkpoint"},
        "_meta": {"progressToken": "upload-1"}}})  # fmt: skip
    assert response.status_code == 200, response.text
    answer = messages(response)
    progress = [m for m in answer if m.get("method") == "notifications/progress"]
    assert progress, answer
    assert {m["params"]["progressToken"] for m in progress} == {"upload-1"}
    assert result(answer)["bytes"] == 6 * 1024 * 1024


def test_without_stateless_a_request_without_its_session_is_refused(tmp_path: Path) -> None:
    """The control: the default server keeps sessions, so a balancer could not spread requests."""
    with http_server(tmp_path / "store", "http", env=engine_env(), log_dir=tmp_path) as server:
        response = post(server, {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                 "params": {"name": "memory_stats", "arguments": {}}})  # fmt: skip
    assert response.status_code in (400, 404), response.text


def test_stateless_applies_to_streamable_http_only(tmp_path: Path) -> None:
    import subprocess

    from _procs import SERVER, clean_env

    done = subprocess.run([*SERVER, "--data-dir", str(tmp_path / "s"), "serve", "--transport", "sse", "--stateless"],
                          capture_output=True, text=True, timeout=60, env=clean_env(engine_env()))  # fmt: skip
    assert done.returncode != 0
    assert "--stateless" in done.stderr and "--transport http" in done.stderr
    assert not (tmp_path / "s").exists()


def test_a_get_stream_on_a_stateless_replica_is_refused_at_once(replicas: tuple[HttpServer, HttpServer, Path]) -> None:
    """405 with Allow: POST: a stateless server has no session to stream to, and each held GET kept a
    transport and a descriptor forever (300 of them: +22 MiB, +300 fds); POSTs are served as before."""
    first, _, _ = replicas
    status, body = first.request("GET", "/mcp", headers={"Accept": "text/event-stream", "Mcp-Protocol-Version": LEGACY})
    assert status == 405
    assert b"stateless" in body and b"POST" in body
    assert result(call(first, "memory_stats", 300))


@pytest.mark.anyio
async def test_the_sdk_client_works_against_a_stateless_replica(replicas: tuple[HttpServer, HttpServer, Path]) -> None:
    """The SDK's streamable-HTTP client, which may open a GET stream, still completes calls."""
    from mcp import Client

    first, _, _ = replicas
    async with Client(first.url) as client:
        answer = await client.call_tool("memory_record", {"kind": "note", "text": "via sdk"})
        assert not answer.is_error, answer.content


def test_sessions_beyond_max_sessions_are_refused_until_one_closes(tmp_path: Path) -> None:
    """A session-ful server opens at most --max-sessions sessions; the next initialize gets 503, and a DELETE frees one."""
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}  # fmt: skip
    with http_server(tmp_path / "store", "http", "--max-sessions", "2", env=engine_env(), log_dir=tmp_path) as server:
        sessions = [post(server, init).headers.get("mcp-session-id") for _ in range(2)]
        assert all(sessions) and len(set(sessions)) == 2
        refused = post(server, init)
        assert refused.status_code == 503, refused.text
        assert "mcp-session-id" not in refused.headers
        headers = {**HEADERS, "Mcp-Protocol-Version": LEGACY, "Mcp-Session-Id": str(sessions[0])}
        assert httpx2.delete(f"http://127.0.0.1:{server.port}/mcp", headers=headers, timeout=30).status_code == 200
        again = post(server, init)
        assert again.status_code == 200 and again.headers.get("mcp-session-id")
