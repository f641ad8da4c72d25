"""The artifacts and memory tool groups through the SDK's in-process client."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from _mcp import call, error
from mcp import Client
from mcp.shared.exceptions import MCPError

from mcp_memory_server import MemoryStore
from mcp_memory_server.server import build_server
from mcp_memory_server.server._tools import ToolServer

pytestmark = pytest.mark.anyio


async def test_every_tool_has_annotations_an_output_schema_and_a_description(client: Client) -> None:
    """Each listed tool declares hints, an object output schema and when to use it."""
    tools = (await client.list_tools()).tools
    names = {t.name for t in tools}
    assert {"artifact_save", "artifact_read", "artifact_search", "artifact_best", "artifact_pin",
            "artifact_delete", "memory_record", "memory_record_tool_result", "memory_recent",
            "memory_last", "memory_forget", "memory_stats"} <= names  # fmt: skip
    for tool in tools:
        assert tool.annotations is not None, tool.name
        assert tool.annotations.read_only_hint is not None, tool.name
        assert tool.annotations.destructive_hint is not None, tool.name
        assert tool.output_schema and tool.output_schema.get("type") == "object", tool.name
        assert tool.description and len(tool.description) > 30, tool.name
    by_name = {t.name: t for t in tools}
    assert by_name["memory_recent"].annotations.read_only_hint  # type: ignore[union-attr]
    assert by_name["memory_forget"].annotations.destructive_hint  # type: ignore[union-attr]


async def test_tools_group_flag_enables_a_subset(data_dir: Path) -> None:
    """--tools memory exposes only the memory group plus memory_stats."""
    with MemoryStore.open(data_dir, tools="memory") as store:
        async with Client(build_server(store)) as client:
            names = {t.name for t in (await client.list_tools()).tools}
    assert "memory_record" in names and "memory_stats" in names
    assert not any(name.startswith("artifact_") for name in names)


async def test_a_group_named_twice_is_served_once(data_dir: Path) -> None:
    """--tools graph,graph is --tools graph: the second mention registers nothing again."""
    with MemoryStore.open(data_dir, tools="graph,graph") as store:
        assert store.config.groups == ("graph",)
        async with Client(build_server(store)) as client:
            names = [t.name for t in (await client.list_tools()).tools]
    assert names == sorted(set(names), key=names.index) and "graph_write" in names and "memory_stats" in names


async def test_code_that_calls_the_server_directly_sees_every_prompt_and_resource(store: MemoryStore) -> None:
    """Registration is deferred to the first client message; a direct call completes it too."""
    server = build_server(store)
    assert {p.name for p in await server.list_prompts()} >= {"recall_context", "save_session_notes"}
    assert await server.list_resource_templates()
    rendered = await server.get_prompt("recall_context", {"task": "tune the optimiser"})
    assert "tune the optimiser" in rendered.messages[0].content.text  # type: ignore[union-attr]


async def test_a_registration_that_fails_is_the_answer_to_every_later_request() -> None:
    """Never a half-registered server: the error names the cause, for the first request and every one after."""
    server = ToolServer("broken")

    def register_twice() -> None:
        raise ValueError("tool graph_write is registered twice")

    server.defer(register_twice)
    async with Client(server) as client:
        for _ in range(2):
            with pytest.raises(MCPError, match=r"could not register its tools \(ValueError: tool graph_write is regi"):
                await client.list_tools()
        with pytest.raises(MCPError, match="could not register its tools"):
            await client.list_prompts()


async def test_save_text_json_and_base64_then_read_back(client: Client) -> None:
    """Each content form saves and reads back as it went in."""
    text = await call(client, "artifact_save", text="hello", kind="note", name="greeting.txt")
    assert text["uri"].startswith("cas://sha256/") and text["mime"] == "text/plain"
    assert (await call(client, "artifact_read", artifact_id=text["artifact_id"]))["content"] == "hello"

    doc = await call(client, "artifact_save", json={"b": [1, 2], "a": None}, kind="config")
    read = await call(client, "artifact_read", uri=doc["uri"])
    assert read["content"] == '{"a":null,"b":[1,2]}'

    raw = bytes(range(256))
    blob = await call(client, "artifact_save", base64=base64.b64encode(raw).decode(), kind="bin")
    read = await call(client, "artifact_read", artifact_id=blob["artifact_id"])
    assert read["encoding"] == "base64" and base64.b64decode(read["content"]) == raw


async def test_save_a_server_local_directory_and_read_its_manifest(client: Client, tmp_path: Path) -> None:
    """path= ingests a directory under the allowed roots (the temp dir is one)."""
    root = tmp_path / "run1"
    root.mkdir()
    (root / "log.txt").write_text("epoch 1")
    saved = await call(client, "artifact_save", path=str(root), kind="run")
    assert saved["is_dir"] and saved["bytes"] == 7
    read = await call(client, "artifact_read", artifact_id=saved["artifact_id"])
    assert read["encoding"] == "manifest" and '"path":"log.txt"' in read["content"]


async def test_search_best_pin_and_delete_work_through_the_tools(client: Client) -> None:
    """The ranking and lifecycle tools act on the same records."""
    low = await call(client, "artifact_save", text="a", kind="ckpt", metrics={"acc": 0.2}, labels={"m": "x"})
    high = await call(client, "artifact_save", text="b", kind="ckpt", metrics={"acc": 0.9}, labels={"m": "x"})
    page = await call(client, "artifact_search", kind="ckpt", metrics={"acc": {">": 0.5}})
    assert [r["artifact_id"] for r in page["items"]] == [high["artifact_id"]]
    best = await call(client, "artifact_best", metric="acc", mode="min", labels={"m": "x"})
    assert best == {"found": True, "artifact": low}
    assert (await call(client, "artifact_best", metric="nope"))["found"] is False
    assert (await call(client, "artifact_pin", artifact_id=low["artifact_id"]))["pinned"] is True
    assert "pinned" in await error(client, "artifact_delete", artifact_id=low["artifact_id"])
    assert (await call(client, "artifact_delete", uri=high["uri"]))["deleted"] is True


async def test_memory_tools_record_recall_and_forget(client: Client) -> None:
    """Events and tool results round-trip through recent, last and forget."""
    await call(client, "memory_record", kind="decision", text="use adamw", tags=["opt"])
    await call(client, "memory_record", kind="note", data={"lr": 0.01})
    result = await call(client, "memory_record_tool_result", tool="train",
                        inputs=[{"name": "lr", "value": 0.01}], outputs=[{"name": "loss", "value": 1.25}],
                        message="epoch 1 done")  # fmt: skip
    assert set(result) == {"event_id", "ts"}
    recent = await call(client, "memory_recent", limit=2)
    assert [e["kind"] for e in recent["events"]] == ["note", "tool_result"]
    assert (await call(client, "memory_recent", kinds=["note"], data_only=True))["data"] == [{"lr": 0.01}]
    last = await call(client, "memory_last", name="loss")
    assert last["found"] and last["value"]["value"] == 1.25 and last["value"]["tool"] == "train"
    forget = await call(client, "memory_forget", tags=["opt"])
    assert (forget["dry_run"], forget["matched"], forget["deleted"]) == (True, 1, 0)
    assert (await call(client, "memory_forget", tags=["opt"], dry_run=False))["deleted"] == 1
    stats = await call(client, "memory_stats")
    assert stats["counts"]["events"] == 2 and stats["version"]


@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        ("artifact_save", {"kind": "k"}, "give exactly one of text, json, base64, path"),
        ("artifact_save", {"text": "a", "base64": "YQ==", "kind": "k"}, "got text, base64"),
        ("artifact_save", {"json": None, "kind": "k"}, "a null value counts as not given"),
        ("artifact_save", {"base64": "not base64!!", "kind": "k"}, "not valid base64"),
        ("artifact_save", {"text": 5, "kind": "k"}, "text"),
        ("artifact_save", {"text": "x", "kind": "k", "labels": {"a": {"b": 1}}}, "labels"),
        ("artifact_save", {"text": "x" * 1_100_000, "kind": "k"}, "max_text_bytes"),
        (
            "artifact_save",
            {"json": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]], "kind": "k"},
            "max_json_depth",
        ),
        ("artifact_save", {"path": "/etc/passwd", "kind": "k"}, "outside the allowed roots"),
        ("artifact_read", {"artifact_id": "art_nope"}, "no artifact 'art_nope'"),
        ("artifact_read", {"uri": "cas://md5/abc"}, "not a content address"),
        ("artifact_read", {}, "give exactly one of artifact_id, uri"),
        ("artifact_search", {"cursor": "garbage"}, "not a cursor this server issued"),
        ("artifact_search", {"limit": 100000}, "page size limit"),
        ("memory_record", {"kind": "k", "severity": 7}, "severity must be 1, 2 or 3"),
        ("memory_record", {"kind": ["list"]}, "kind"),
        ("memory_recent", {"since": "last tuesday"}, "not an RFC 3339 timestamp"),
        ("memory_recent", {"limit": "ten"}, "limit"),
        ("memory_forget", {"dry_run": False}, "give before, kinds or tags"),
        ("memory_last", {}, "name"),
    ],
)
async def test_bad_input_is_a_clean_tool_error_that_changes_nothing(
    client: Client, store: MemoryStore, tool: str, arguments: dict[str, Any], message: str
) -> None:
    """Wrong types, oversize fields, bad base64, deep JSON, unknown ids and bad cursors give isError."""
    await call(client, "memory_record", kind="baseline")
    before = (store.artifacts.count(), store.events.count())
    assert message in await error(client, tool, **arguments)
    assert (store.artifacts.count(), store.events.count()) == before


async def test_resources_serve_artifact_content_by_uri_and_id(client: Client) -> None:
    """cas://sha256/{digest} and artifact://{id} return the stored content."""
    saved = await call(client, "artifact_save", text="resource body", kind="note")
    by_uri = await client.read_resource(saved["uri"])
    assert by_uri.contents[0].text == "resource body"  # type: ignore[union-attr]
    by_id = await client.read_resource(f"artifact://{saved['artifact_id']}")
    assert by_id.contents[0].text == "resource body"  # type: ignore[union-attr]


async def test_prompts_are_served_from_the_prompts_folder(client: Client) -> None:
    """recall_context and save_session_notes render with their arguments filled in."""
    names = {p.name for p in (await client.list_prompts()).prompts}
    assert {"recall_context", "save_session_notes"} <= names
    prompt = await client.get_prompt("recall_context", {"task": "tune the optimiser"})
    text = prompt.messages[0].content.text  # type: ignore[union-attr]
    assert "tune the optimiser" in text and "memory_recent" in text


async def test_save_by_path_records_the_file_name_unless_one_is_given(client: Client, tmp_path: Path) -> None:
    """artifact_save(path=…) names the record after the file (AetherGraph shows it); an explicit name wins."""
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.4 x")
    saved = await call(client, "artifact_save", path=str(report), kind="report")
    assert saved["name"] == "report.pdf" and saved["mime"] == "application/pdf"
    named = await call(client, "artifact_save", path=str(report), kind="report", name="q3.pdf")
    assert named["name"] == "q3.pdf"


async def test_artifact_records_carry_preview_uri_only_when_a_preview_exists(
    client: Client, store: MemoryStore
) -> None:
    """artifact_search/read/best show preview_uri for a previewed record and drop it for others."""
    thumb = store.artifacts.save_bytes(b"\x89PNG thumb", "thumbnail", mime="image/png")
    plot = store.artifacts.save_text("loss curve data", "plot", metrics={"loss": 0.1}, preview_uri=thumb.uri)
    page = await call(client, "artifact_search", kind="plot")
    assert [item["preview_uri"] for item in page["items"]] == [thumb.uri]
    read = await call(client, "artifact_read", artifact_id=plot.artifact_id)
    assert read["artifact"]["preview_uri"] == thumb.uri
    best = await call(client, "artifact_best", metric="loss", mode="min")
    assert best["artifact"]["preview_uri"] == thumb.uri
    (listed,) = (await call(client, "artifact_search", kind="thumbnail"))["items"]
    assert "preview_uri" not in listed
    preview = await client.read_resource(thumb.uri)  # the preview itself is readable by that address
    assert preview.contents[0].mime_type == "image/png"


async def test_artifact_save_takes_a_preview_and_refuses_one_that_names_no_artifact(
    client: Client, store: MemoryStore
) -> None:
    """artifact_save(preview_uri=) links the preview; an address of nothing is refused and nothing is saved."""
    thumb = await call(client, "artifact_save", base64=base64.b64encode(b"\x89PNG t").decode(), kind="thumbnail")
    saved = await call(client, "artifact_save", text="curve", kind="plot", preview_uri=thumb["uri"])
    assert saved["preview_uri"] == thumb["uri"]
    assert store.artifacts.get(saved["artifact_id"]).preview_uri == thumb["uri"]
    message = await error(client, "artifact_save", text="other", kind="plot", preview_uri="cas://sha256/" + "0" * 64)
    assert "preview" in message.lower()
    assert [a.artifact_id for a in store.artifacts.search(kind="plot").items] == [saved["artifact_id"]]
