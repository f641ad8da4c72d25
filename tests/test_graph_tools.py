"""The graph tool group and snapshot resource through the SDK's in-process client, and the graph CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _mcp import call, error
from mcp import Client
from test_graph import fixture_graph, nid, node, write_fixture

from mcp_memory_server import MemoryStore
from mcp_memory_server.cli import main
from mcp_memory_server.server import build_server

pytestmark = pytest.mark.anyio


async def test_graph_tools_are_listed_with_hints_and_output_schemas(client: Client) -> None:
    """The five graph tools exist with the annotations their behaviour implies."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert {"graph_write", "graph_query", "graph_export", "graph_import", "graph_validate"} <= tools.keys()
    hints = {name: tools[name].annotations for name in ("graph_query", "graph_validate", "graph_export")}
    assert all(h is not None and h.read_only_hint for h in hints.values())
    assert tools["graph_import"].annotations.destructive_hint  # type: ignore[union-attr]
    assert not tools["graph_write"].annotations.read_only_hint  # type: ignore[union-attr]
    for name in ("graph_write", "graph_query", "graph_export", "graph_import", "graph_validate"):
        assert tools[name].output_schema and tools[name].output_schema.get("type") == "object", name
    op_schema = tools["graph_query"].input_schema["properties"]["op"]
    assert "lineage" in json.dumps(op_schema) and "runtime_state" in json.dumps(op_schema)


async def test_write_then_query_through_the_tools(client: Client) -> None:
    """graph_write stores a small graph; graph_query answers recent_episodes, lineage, runtime_state, search."""
    written = await call(client, "graph_write", agent_id="alice", nodes=[
        node("ep1", "episode", {"user_message": "hello", "outcome": "success"}, 1),
        node("f1", "semantic", {"fact": "greets people"}, 2,
             edges=[{"to_id": nid("ep1"), "label": "DERIVED_FROM", "weight": 0.7}]),
        {"node_type": "runtime_state", "payload": {"turn_count": 1}},
    ])  # fmt: skip
    assert written["created"] == 3 and written["edges_written"] == 1
    recent = await call(client, "graph_query", op="recent_episodes", agent_id="alice")
    assert [n["id"] for n in recent["nodes"]] == [nid("ep1")]
    lineage = await call(client, "graph_query", op="lineage", agent_id="alice", node_id=nid("f1"))
    assert [n["id"] for n in lineage["nodes"]] == [nid("ep1")] and lineage["edges"][0]["weight"] == 0.7
    state = await call(client, "graph_query", op="runtime_state", agent_id="alice")
    assert state["nodes"][0]["payload"]["turn_count"] == 1
    assert (await call(client, "graph_query", op="recent_episodes", agent_id="bob"))["count"] == 0
    found = await call(client, "graph_query", op="search", agent_id="alice", query="greets", mode="lexical")
    assert [n["id"] for n in found["nodes"]] == [nid("f1")] and found["mode"] == "lexical"


async def edges_of(client: Client, agent: str) -> list[tuple[str, str, str, float, Any]]:
    snapshot = (await call(client, "graph_export", agent_id=agent))["snapshot"]
    return sorted((e["source_id"], e["target_id"], e["edge_type"], e["weight"], e["metadata"])
                  for e in snapshot["edges"])  # fmt: skip


async def test_an_agent_cannot_rewrite_or_add_edges_in_another_agents_graph(client: Client, store: MemoryStore) -> None:
    """graph_write and graph_import as bob (or the global graph) cannot touch alice's edges or link her nodes."""
    await call(client, "graph_write", agent_id="alice", nodes=[
        node("a1", "semantic", {"fact": "one"}, 1), node("a2", "semantic", {"fact": "two"}, 2),
        node("a3", "semantic", {"fact": "three"}, 3),
    ], edges=[{"from_id": nid("a1"), "to_id": nid("a2"), "label": "L", "weight": 0.5, "metadata": {"v": 1}}])  # fmt: skip
    await call(client, "graph_write", agent_id="bob", nodes=[node("b1", "semantic", {"fact": "bob's"}, 4, agent="bob")])
    before = (await edges_of(client, "alice"), store.graph.count())
    rewrite = {"from_id": nid("a1"), "to_id": nid("a2"), "label": "L", "weight": 9.0, "metadata": {"v": "bob"}}
    attempts = [
        ("graph_write", {"agent_id": "bob", "edges": [rewrite]}, "is a node of agent 'alice', and this edge is "
                                                                  "written as agent 'bob'"),
        ("graph_write", {"agent_id": "bob", "edges": [{**rewrite, "to_id": nid("a3"), "label": "NEW"}]},
         "agent 'alice'"),
        ("graph_write", {"agent_id": "bob", "edges": [{"from_id": nid("b1"), "to_id": nid("a1"), "label": "X"}]},
         f"to_id {nid('a1')} is a node of agent 'alice'"),
        ("graph_write", {"edges": [rewrite]}, "written as agent ''"),
        ("graph_write", {"agent_id": "bob", "nodes": [node("b2", "semantic", {"fact": "new"}, 5, agent="bob",
                                                           edges=[{"to_id": nid("a1"), "label": "X"}])]},
         "agent 'alice'"),
        ("graph_import", {"snapshot": {"agent_id": "bob", "schema_version": "1.0", "nodes": [], "edges": [
            {"source_id": nid("a1"), "target_id": nid("a2"), "edge_type": "L", "weight": 9.0}]}}, "agent 'alice'"),
        ("graph_import", {"allow_dangling_edges": True, "snapshot": {"agent_id": "bob", "schema_version": "1.0",
                          "nodes": [], "edges": [{"source_id": nid("a1"), "target_id": nid("ghost"),
                                                  "edge_type": "L"}]}}, "agent 'alice'"),
    ]  # fmt: skip
    for tool, arguments, message in attempts:
        text = await error(client, tool, **arguments)
        assert message in text and "Nothing was written" in text, (tool, arguments, text)
    assert (await edges_of(client, "alice"), store.graph.count()) == before
    assert await edges_of(client, "bob") == []
    # alice herself rewrites her edge
    await call(client, "graph_write", agent_id="alice", edges=[{**rewrite, "metadata": {"v": 2}}])
    assert await edges_of(client, "alice") == [(nid("a1"), nid("a2"), "L", 9.0, {"v": 2})]


@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        ("graph_write", {"nodes": [{"node_type": "dream"}]}, "nodes[0].node_type='dream' is not a node type"),
        ("graph_write", {"nodes": [{"node_type": "persona", "payload": {"trait_name": "x"}}]},
         "nodes[0].payload.strength: required for persona nodes"),
        ("graph_write", {"edges": [{"from_id": nid("a"), "to_id": nid("b"), "label": "L"}]},
         f"from_id {nid('a')} is not a node in this store"),
        ("graph_query", {"op": "by_tag"}, "op=by_tag needs tag"),
        ("graph_query", {"op": "lineage", "node_id": nid("a")}, "is not in the graph of agent ''"),
        ("graph_import", {"snapshot": {"agent_id": "a", "schema_version": "0.9", "nodes": [], "edges": []}},
         "schema_version '0.9' is not supported"),
        ("graph_import", {}, "give exactly one of snapshot, path"),
        ("graph_export", {"path": "/proc/definitely/not/allowed.json"}, "outside the allowed roots"),
    ],
)  # fmt: skip
async def test_bad_graph_calls_are_tool_errors_that_say_what_to_fix(
    client: Client, store: MemoryStore, tool: str, arguments: dict[str, Any], message: str
) -> None:
    """Anticipated errors reach the client as isError with the core's message; nothing is written."""
    assert message in await error(client, tool, **arguments)
    assert store.graph.count() == {"graph_nodes": 0, "graph_edges": 0}


async def test_export_import_and_validate_through_the_tools(
    client: Client, store: MemoryStore, tmp_path: Path, fresh_database_url: Callable[[], str | None]
) -> None:
    """A snapshot exported inline imports strictly elsewhere; a dangling one needs allow_dangling_edges."""
    write_fixture(store)
    exported = await call(client, "graph_export", agent_id="alice")
    snapshot = exported["snapshot"]
    assert (exported["node_count"], exported["edge_count"], snapshot["schema_version"]) == (11, 8, "1.0")
    with MemoryStore.open(tmp_path / "copy", database_url=fresh_database_url()) as copy:
        async with Client(build_server(copy)) as other:
            report = await call(other, "graph_import", snapshot=snapshot)
            assert report["validation"]["is_valid"] and report["nodes_imported"] == 11
            broken = {**snapshot, "agent_id": "zed", "nodes": [],
                      "edges": [{"source_id": nid("x"), "target_id": nid("y"), "edge_type": "L"}]}  # fmt: skip
            assert "allow_dangling_edges=true" in await error(other, "graph_import", snapshot=broken)
            loaded = await call(other, "graph_import", snapshot=broken, allow_dangling_edges=True)
            assert not loaded["validation"]["is_valid"]
            whole = await call(other, "graph_validate")
            assert whole["dangling_edge_count"] == 1 and whole["node_count"] == 11
            assert (await call(other, "graph_validate", agent_id="alice"))["is_valid"]


async def test_export_to_a_path_and_import_from_it(client: Client, store: MemoryStore, tmp_path: Path) -> None:
    """path= writes the snapshot to a server-local file, and graph_import path= reads it back."""
    write_fixture(store)
    target = tmp_path / "alice.json"
    result = await call(client, "graph_export", agent_id="alice", path=str(target))
    assert result["path"] == str(target) and "snapshot" not in result
    assert json.loads(target.read_text())["agent_id"] == "alice"
    store.graph.delete_nodes([nid("ep1")])
    report = await call(client, "graph_import", path=str(target))
    assert store.graph.get(nid("ep1")) is not None
    # bob's edge into ep1 went with the deleted node and is not part of alice's snapshot
    assert (report["validation"]["edge_count"], report["validation"]["cross_agent_edges"]) == (8, 0)


async def test_a_too_large_inline_export_points_to_path_and_the_resource(tmp_path: Path) -> None:
    """Over max_response_bytes, graph_export refuses inline output and names the alternatives."""
    with MemoryStore.open(tmp_path / "s", max_response_bytes=2000) as small:
        small.graph.write(fixture_graph()[0])
        async with Client(build_server(small)) as client:
            message = await error(client, "graph_export", agent_id="alice")
            assert "pass path=" in message and "graph://alice/snapshot" in message
            contents = (await client.read_resource("graph://alice/snapshot")).contents
            assert len(json.loads(contents[0].text)["nodes"]) == 11  # type: ignore[union-attr]


async def test_the_snapshot_resource_serves_an_agents_graph(client: Client, store: MemoryStore) -> None:
    """graph://{agent_id}/snapshot is the JSON of graph_export for that agent."""
    write_fixture(store)
    templates = (await client.list_resource_templates()).resource_templates
    assert any(t.uri_template == "graph://{agent_id}/snapshot" for t in templates)
    contents = (await client.read_resource("graph://bob/snapshot")).contents
    assert contents[0].mime_type == "application/json"
    snapshot = json.loads(contents[0].text)  # type: ignore[union-attr]
    assert snapshot["agent_id"] == "bob" and len(snapshot["nodes"]) == 4 and len(snapshot["edges"]) == 1


async def test_the_graph_group_can_be_disabled(data_dir: Path) -> None:
    """--tools artifacts leaves out the graph tools and the snapshot resource."""
    with MemoryStore.open(data_dir, tools="artifacts") as store:
        async with Client(build_server(store)) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            templates = (await client.list_resource_templates()).resource_templates
    assert not any(name.startswith("graph_") for name in names)
    assert not any(t.uri_template.startswith("graph://") for t in templates)


# -- CLI ------------------------------------------------------------------------------------------


def test_cli_exports_imports_and_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fresh_database_url: Callable[[], str | None]
) -> None:
    """graph export → import into another store → validate; validate exits 2 on a dangling edge."""
    source = tmp_path / "source"
    copy_url = fresh_database_url()
    copy = [str(tmp_path / "copy"), *(["--database-url", copy_url] if copy_url else [])]
    with MemoryStore.open(source) as store:
        write_fixture(store)
    assert main(["graph", "export", "--agent-id", "alice", "--data-dir", str(source)]) == 0
    printed = capsys.readouterr().out
    assert len(json.loads(printed)["nodes"]) == 11
    snapshot_file = tmp_path / "alice.json"
    assert main(["graph", "export", "--agent-id", "alice", "-o", str(snapshot_file), "--data-dir", str(source)]) == 0
    assert json.loads(capsys.readouterr().out)["path"] == str(snapshot_file)
    assert main(["graph", "import", str(snapshot_file), "--data-dir", *copy]) == 0
    assert json.loads(capsys.readouterr().out)["validation"]["is_valid"]
    assert main(["graph", "validate", "--data-dir", *copy]) == 0
    capsys.readouterr()

    dangling = {"agent_id": "zed", "schema_version": "1.0", "nodes": [],
                "edges": [{"source_id": nid("x"), "target_id": nid("y"), "edge_type": "L"}]}  # fmt: skip
    (tmp_path / "dangling.json").write_text(json.dumps(dangling))
    assert main(["graph", "import", str(tmp_path / "dangling.json"), "--data-dir", *copy]) == 1
    error = capsys.readouterr().err  # the CLI names its flag, not the tool argument
    assert "--allow-dangling-edges" in error and "allow_dangling_edges=true" not in error
    assert main(["graph", "import", str(tmp_path / "dangling.json"), "--allow-dangling-edges",
                 "--data-dir", *copy]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["graph", "validate", "--agent-id", "zed", "--data-dir", *copy]) == 2
    assert json.loads(capsys.readouterr().out)["dangling_edge_count"] == 1
