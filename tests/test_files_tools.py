"""The files tool group and the memfile:// resource over MCP: in-process, and once through a real stdio server."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from mcp_memory_server import MemoryStore
from mcp_memory_server.server import build_server

pytestmark = pytest.mark.anyio

FILE_TOOLS = {"file_write", "file_read", "file_list", "file_delete", "file_history"}


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text  # type: ignore[union-attr]
    assert result.structured_content is not None
    return result.structured_content


async def refused(client: Client, tool: str, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error
    text: str = result.content[0].text  # type: ignore[union-attr]
    return text


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def test_the_files_tools_are_listed_with_annotations_and_output_schemas(client: Client) -> None:
    """Each files tool has a description, an output schema and honest hints."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) >= FILE_TOOLS
    for name in FILE_TOOLS:
        assert tools[name].description and tools[name].output_schema
    assert tools["file_read"].annotations.read_only_hint is True  # type: ignore[union-attr]
    assert tools["file_delete"].annotations.destructive_hint is True  # type: ignore[union-attr]
    assert "expected_sha" in tools["file_write"].input_schema["properties"]


async def test_write_then_read_round_trips_text_with_its_metadata(client: Client) -> None:
    """file_write returns FileMeta; file_read returns the content and the same sha/version."""
    meta = await call(client, "file_write", path="notes/plan.md", text="step 1", actor="alice", reason="start")
    assert (meta["path"], meta["version"], meta["sha256"]) == ("notes/plan.md", 1, sha("step 1"))
    read = await call(client, "file_read", path="notes/plan.md")
    assert read["content"] == "step 1"
    assert read["meta"] == meta


async def test_json_written_through_the_tool_reads_back_as_indented_json(client: Client, store: MemoryStore) -> None:
    """json= stores a JSON value the Python API parses back."""
    await call(client, "file_write", path="profile.json", json={"name": "Ada", "tags": [1, 2]})
    assert store.files.read_json("profile.json") == {"name": "Ada", "tags": [1, 2]}


async def test_a_stale_expected_sha_is_a_tool_error_naming_the_current_sha(client: Client) -> None:
    """The conflict message carries the current sha so the agent can re-read and retry."""
    first = await call(client, "file_write", path="a.md", text="one")
    second = await call(client, "file_write", path="a.md", text="two", expected_sha=first["sha256"])
    message = await refused(client, "file_write", path="a.md", text="three", expected_sha=first["sha256"])
    assert second["sha256"] in message and "expected_sha" in message
    assert (await call(client, "file_read", path="a.md"))["content"] == "two"


async def test_create_only_through_the_tool_refuses_an_existing_path(client: Client) -> None:
    """expected_sha='' creates once, then conflicts naming the current sha."""
    created = await call(client, "file_write", path="a.md", text="one", expected_sha="")
    message = await refused(client, "file_write", path="a.md", text="two", expected_sha="")
    assert created["sha256"] in message


async def test_file_write_needs_exactly_one_content_source(client: Client) -> None:
    """text, json and restore_version are mutually exclusive, and one is required."""
    assert "exactly one" in await refused(client, "file_write", path="a.md")
    assert "exactly one" in await refused(client, "file_write", path="a.md", text="x", json={"x": 1})


async def test_a_path_attack_through_the_tool_is_a_clear_error(client: Client, store: MemoryStore) -> None:
    """Traversal via the tool is refused with a message saying why; nothing is stored."""
    assert "'..'" in await refused(client, "file_write", path="../../etc/passwd", text="x")
    assert "absolute" in await refused(client, "file_read", path="/etc/passwd")
    assert store.files.counts()["file_versions"] == 0


async def test_history_restore_and_delete_through_the_tools(client: Client) -> None:
    """file_history lists versions; file_write restore_version brings one back; file_delete keeps history."""
    await call(client, "file_write", path="p.md", text="good", reason="first")
    await call(client, "file_write", path="p.md", text="bad")
    restored = await call(client, "file_write", path="p.md", restore_version=1, reason="revert")
    assert (restored["version"], restored["sha256"]) == (3, sha("good"))
    old = await call(client, "file_read", path="p.md", version=2)
    assert old["content"] == "bad"
    deleted = await call(client, "file_delete", path="p.md", reason="cleanup")
    assert (deleted["op"], deleted["version"], deleted["old_sha"]) == ("delete", 4, sha("good"))
    history = await call(client, "file_history", path="p.md")
    assert [(v["version"], v["op"]) for v in history["versions"]] == [
        (4, "delete"), (3, "restore"), (2, "update"), (1, "create"),
    ]  # fmt: skip
    assert "was deleted" in await refused(client, "file_read", path="p.md")


async def test_file_history_without_a_path_is_the_audit_tail(client: Client) -> None:
    """No path: the namespace's audit entries, oldest first, paged with a cursor."""
    for i in range(5):
        await call(client, "file_write", path=f"f{i}.md", text="x", actor=f"a{i}")
    page = await call(client, "file_history", limit=3)
    assert [e["path"] for e in page["audit"]] == ["f2.md", "f3.md", "f4.md"]
    older = await call(client, "file_history", limit=3, cursor=page["next_cursor"])
    assert [e["actor"] for e in older["audit"]] == ["a0", "a1"] and "next_cursor" not in older


async def test_file_list_pages_and_shows_folders(client: Client) -> None:
    """file_list sorts, pages with a cursor, and names sub-folders when not recursive."""
    for path in ["b.md", "a.md", "dir/x.md", "dir/sub/y.md"]:
        await call(client, "file_write", path=path, text=path)
    first = await call(client, "file_list", limit=2)
    second = await call(client, "file_list", limit=2, cursor=first["next_cursor"])
    assert [m["path"] for m in first["items"] + second["items"]] == ["a.md", "b.md", "dir/sub/y.md", "dir/x.md"]
    flat = await call(client, "file_list", prefix="dir/", recursive=False)
    assert ([m["path"] for m in flat["items"]], flat["folders"]) == (["dir/x.md"], ["dir/sub/"])


async def test_a_long_file_is_read_in_bounded_chunks(tmp_path: Path) -> None:
    """file_read never returns more than max_response_bytes; next_offset continues."""
    with MemoryStore.open(tmp_path / "s", max_response_bytes=1000) as store:
        text = "".join(f"line {i}\n" for i in range(600))
        store.files.write("big.md", text)
        async with Client(build_server(store)) as client:
            parts, offset = [], 0
            while offset is not None:
                chunk = await call(client, "file_read", path="big.md", offset=offset)
                assert chunk["length"] <= 1000
                parts.append(chunk["content"])
                offset = chunk.get("next_offset")  # omitted on the last chunk
    assert "".join(parts) == text and len(parts) > 1


async def test_read_only_prefixes_refuse_tool_writes(tmp_path: Path) -> None:
    """A tool write under an operator's read-only prefix is refused with the reason."""
    with MemoryStore.open(tmp_path / "s", read_only_prefixes=["default/policies/"]) as store:
        async with Client(build_server(store)) as client:
            assert "read-only" in await refused(client, "file_write", path="policies/x.md", text="x")
            assert "read-only" in await refused(client, "file_delete", path="policies/x.md")


async def test_the_memfile_resource_serves_the_latest_text(client: Client, store: MemoryStore) -> None:
    """memfile://{namespace}/{path} reads a file, nested paths included."""
    store.files.write("notes/deep/plan.md", "resource text", namespace="proj")
    result = await client.read_resource("memfile://proj/notes/deep/plan.md")
    assert result.contents[0].text == "resource text"  # type: ignore[union-attr]
    templates = (await client.list_resource_templates()).resource_templates
    assert any(t.uri_template.startswith("memfile://") for t in templates)


async def test_the_memfile_resource_serves_the_transcript(client: Client, store: MemoryStore) -> None:
    """memfile://{namespace}/.memory/transcript.jsonl is the flushed transcript, one JSON message per line."""
    with store.files.transcript() as transcript:
        transcript.extend([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}])
    result = await client.read_resource("memfile://default/.memory/transcript.jsonl")
    assert result.contents[0].text.splitlines() == [  # type: ignore[union-attr]
        '{"role": "user", "content": "hi"}',
        '{"role": "assistant", "content": "hello"}',
    ]


async def test_a_missing_memfile_resource_is_an_error(client: Client) -> None:
    """Reading a path that does not exist fails instead of returning empty text."""
    with pytest.raises(MCPError, match="no file"):
        await client.read_resource("memfile://default/missing.md")


@pytest.fixture
async def stdio_client(data_dir: Path) -> AsyncIterator[Client]:
    """A client talking to a real ``python -m mcp_memory_server`` subprocess over stdio."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_memory_server", "--data-dir", str(data_dir), "--tools", "files"]
    )
    async with Client(params) as connected:
        yield connected


async def test_a_stdio_server_writes_and_reads_memory_files(stdio_client: Client, data_dir: Path) -> None:
    """Over real stdio: write, conditional write, read, and the live file on disk."""
    first = await call(stdio_client, "file_write", path="notes/e2e.md", text="over stdio")
    await call(stdio_client, "file_write", path="notes/e2e.md", text="again", expected_sha=first["sha256"])
    read = await call(stdio_client, "file_read", path="notes/e2e.md")
    assert (read["content"], read["meta"]["version"]) == ("again", 2)
    assert (data_dir / "files" / "default" / "notes" / "e2e.md").read_text() == "again"
