"""Holes an outside attack pass on the tool surface found (stop 21): each is refused with a clear
error that names the parameter, and nothing is written or destroyed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _mcp import call, error
from mcp import Client

from mcp_memory_server import MemoryStore
from mcp_memory_server.cli import main
from mcp_memory_server.errors import InvalidInput

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_graph_payload_with_a_non_finite_number_is_refused_not_stored_as_null(store: MemoryStore, bad: float) -> None:
    """pydantic's JSON mode writes NaN as null; the write must refuse it as every other tool does."""
    with pytest.raises(InvalidInput, match=r"nodes\[0\]\.payload contains .*JSON cannot represent"):
        store.graph.write([{"node_type": "episode", "payload": {"user_message": "hi", "x": bad}}], agent_id="a")
    snapshot = {"agent_id": "b", "schema_version": "1.0", "edges": [],
                "nodes": [{"node_type": "semantic", "payload": {"fact": "f", "extra": [1, {"k": bad}]}}]}  # fmt: skip
    with pytest.raises(InvalidInput, match=r"snapshot\.nodes\[0\]\.payload contains"):
        store.graph.import_snapshot(snapshot)
    assert store.graph.export("a").nodes == [] and store.graph.export("b").nodes == []


async def test_graph_export_never_replaces_an_existing_file_unless_told_to(client: Client, tmp_path: Path) -> None:
    """A mistyped path must not destroy a user's file; overwrite=true replaces it on purpose."""
    await call(client, "graph_write", agent_id="alice", nodes=[{"node_type": "semantic", "payload": {"fact": "a"}}])
    notes = tmp_path / "notes.txt"
    notes.write_text("the user's notes\n")
    message = await error(client, "graph_export", agent_id="alice", path=str(notes))
    assert "already exists" in message and "choose a new path" in message
    assert notes.read_text() == "the user's notes\n"
    assert [p.name for p in tmp_path.iterdir() if p.name != "store"] == ["notes.txt"]  # no temp entry left
    written = await call(client, "graph_export", agent_id="alice", path=str(notes), overwrite=True)
    assert written["node_count"] == 1 and json.loads(notes.read_text())["agent_id"] == "alice"


def test_cli_graph_export_refuses_an_existing_output_without_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "snap.json"
    out.write_text("keep me")
    store = ["--data-dir", str(tmp_path / "store")]
    assert main(["graph", "export", "-o", str(out), *store]) == 1
    assert "already exists" in capsys.readouterr().err and out.read_text() == "keep me"
    assert main(["graph", "export", "-o", str(out), "--overwrite", *store]) == 0
    assert json.loads(out.read_text())["schema_version"] == "1.0"


@pytest.mark.parametrize("ts", ["not a time", "", "2026-13-45T99:99:99Z"])
def test_a_files_archive_with_a_timestamp_that_is_not_rfc3339_imports_nothing(
    store: MemoryStore, tmp_path: Path, ts: str
) -> None:
    store.files.write("a.md", "one")
    store.files.write("a.md", "two")
    store.files.export("default", tmp_path / "x")
    versions = tmp_path / "x" / "versions.jsonl"
    lines = [json.loads(line) for line in versions.read_text().splitlines()]
    lines[1]["ts"] = ts
    versions.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(InvalidInput, match=r"versions.jsonl line 2: ts=.* is not an RFC 3339 timestamp"):
        store.files.import_(tmp_path / "x", namespace="imported")
    assert store.files.list(namespace="imported").items == []


async def test_bad_arguments_are_named_as_the_caller_gave_them(client: Client, store: MemoryStore) -> None:
    """memory_forget's before, a file_list prefix that climbs out, forged cursors, a snapshot
    without its schema_version, a kept run whose primary metric is not a number."""
    assert (await error(client, "memory_forget", before="nope")).startswith("before='nope' is not an RFC 3339")
    await call(client, "file_write", path="notes/a.md", text="hello")
    for prefix in ("..", "../", "./.."):
        assert "climbs out of the namespace" in await error(client, "file_list", prefix=prefix)
    assert [f["path"] for f in (await call(client, "file_list", prefix="./"))["items"]] == ["notes/a.md"]
    for length in (0, -3):  # 0 returned the whole file while artifact_read refused it
        assert "length must be a positive integer" in await error(client, "file_read", path="notes/a.md",
                                                                  length=length)  # fmt: skip
    assert (await call(client, "file_read", path="notes/a.md", length=2))["content"] == "he"
    for cursor in ("cC0x", "cDk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5"):  # "p-1", "p999…" (over 2**62)
        assert "is not a cursor this server issued" in await error(client, "file_history", path="notes/a.md",
                                                                     cursor=cursor)  # fmt: skip
        assert "is not a cursor this server issued" in await error(client, "artifact_search", cursor=cursor)
    assert "snapshot.schema_version is required" in await error(client, "graph_import", snapshot={})
    for value in ("NaN", "inf"):
        message = await error(client, "experiment_log", description="lr 1", status="keep", summary={"val_bpb": value})
        assert f"needs metrics['val_bpb'] as a finite number; summary['val_bpb']={value!r} is not one" in message
    assert store.lab.count() == 0


async def test_true_or_false_where_a_number_is_asked_for_is_refused(client: Client, store: MemoryStore) -> None:
    """pydantic reads true as 1: limit=true meant one hit, {"loss": true} a metric of 1.0."""
    await call(client, "memory_record", kind="note", text="first note")
    await call(client, "memory_record", kind="note", text="second note")
    message = await error(client, "memory_recent", limit=True)
    assert message == "invalid arguments for memory_recent: limit must be a number, got true"
    message = await error(client, "memory_record", kind="note", text="a run", metrics={"loss": 0.3, "ok": False})
    assert message == "invalid arguments for memory_record: metrics.ok must be a number, got false"
    assert "summary['val_bpb']=True is not one" in await error(  # summary is free-form: the lab says it
        client, "experiment_log", description="lr 1", status="keep", summary={"val_bpb": True}
    )
    assert store.events.count() == 2 and store.lab.count() == 0
    assert len((await call(client, "memory_recent", limit=2))["events"]) == 2  # numbers still pass
    assert (await call(client, "memory_record", kind="note", text="ok", metrics={"loss": 1}))["event_id"]


async def test_a_cursor_continues_only_the_call_that_issued_it(client: Client) -> None:
    """Reused with another namespace, query or tool, a cursor silently skipped hits or listed nothing."""
    for namespace in ("default", "other"):
        for name in ("a.md", "b.md", "c.md"):
            await call(client, "file_write", path=name, text=f"{name} alpha beta", namespace=namespace)
    first = await call(client, "file_list", limit=1)
    cursor = first["next_cursor"]
    rest = await call(client, "file_list", cursor=cursor, limit=5)  # only limit may change
    assert [f["path"] for f in (*first["items"], *rest["items"])] == ["a.md", "b.md", "c.md"]
    assert "another file_list call" in await error(client, "file_list", cursor=cursor, namespace="other")
    assert "another file_history call or another tool" in await error(client, "file_history", cursor=cursor)
    for text in ("alpha one", "alpha two", "beta three"):
        await call(client, "memory_record", kind="note", text=text)
    page = await call(client, "memory_search", query="alpha", mode="lexical", limit=1)
    assert "another memory_search call" in await error(client, "memory_search", query="beta", mode="lexical",
                                                       cursor=page["next_cursor"])  # fmt: skip
    assert (await call(client, "memory_search", query="alpha", mode="lexical", cursor=page["next_cursor"]))["hits"]
