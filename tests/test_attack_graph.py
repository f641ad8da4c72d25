"""Hostile graph input: ainl-memory databases and snapshots built to crash or half-apply an import."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from _mcp import error
from mcp import Client
from test_graph_ainl_db import EDGES, NODES, build, fact

from mcp_memory_server import Conflict, InvalidInput, MemoryStore
from mcp_memory_server.cli import main

DEEP = "[" * 100_000 + "]" * 100_000


def _with_row(path: Path, row: tuple[object, ...]) -> None:
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO ainl_graph_nodes VALUES (?, ?, ?, ?)", row)
    conn.commit()
    conn.close()


def test_a_node_payload_nested_100000_deep_is_refused_naming_the_node(store: MemoryStore, tmp_path: Path) -> None:
    """It was a RecursionError out of json.loads; now InvalidInput, and nothing is imported."""
    db = tmp_path / "deep.db"
    good = fact("alice", "kept out")
    build(db, [good], [])
    _with_row(db, ("deep-node", "semantic", DEEP, 1767229999))
    with pytest.raises(InvalidInput, match="node 'deep-node' has a payload nested too deeply"):
        store.graph.import_database(db)
    assert store.graph.get(str(good["id"])) is None


def test_edge_metadata_nested_too_deeply_to_parse_is_kept_as_text(store: MemoryStore, tmp_path: Path) -> None:
    """Free-text metadata stays text; metadata past the parser's depth is treated the same, not a crash."""
    a, b = fact("alice", "a"), fact("alice", "b")
    db = tmp_path / "meta.db"
    conn = sqlite3.connect(db)
    conn.execute(NODES)
    conn.execute(EDGES)
    for i, node in enumerate((a, b)):
        conn.execute("INSERT INTO ainl_graph_nodes VALUES (?, ?, ?, ?)", (node["id"], "semantic", json.dumps(node), i))
    deep_text = "[" * 2000 + "]" * 2000
    conn.execute("INSERT INTO ainl_graph_edges VALUES (?, ?, ?, 1.0, ?)", (a["id"], b["id"], "X", "[" * 100_000))
    conn.execute("INSERT INTO ainl_graph_edges VALUES (?, ?, ?, 1.0, ?)", (b["id"], a["id"], "Y", deep_text))
    conn.commit()
    conn.close()
    report = store.graph.import_database(db)
    assert [(r.agent_id, r.edges_imported) for r in report.agents] == [("alice", 2)]
    edges = {e.edge_type: e.metadata for e in store.graph.export("alice").edges}
    assert edges == {"X": "[" * 100_000, "Y": deep_text}


def test_a_bad_node_in_one_agents_graph_leaves_every_agent_unimported(store: MemoryStore, tmp_path: Path) -> None:
    """One transaction for the whole database: alice's good graph is not written when bob's is refused."""
    db = tmp_path / "two.db"
    alice, bob = fact("alice", "good"), fact("bob", "bad")
    bob["node_type"] = {"type": "no-such-type"}
    build(db, [alice], [])
    _with_row(db, (bob["id"], "semantic", json.dumps(bob), 1767229999))
    with pytest.raises(InvalidInput, match="no-such-type"):
        store.graph.import_database(db)
    assert store.graph.get(str(alice["id"])) is None
    assert store.graph.export("alice").nodes == []


def test_a_conflict_in_a_later_agent_rolls_back_the_earlier_ones(store: MemoryStore, tmp_path: Path) -> None:
    """bob's node id already belongs to carol in the store: nothing of alice's database graph is written either."""
    carol = store.graph.write([{"node_type": "semantic", "payload": {"fact": "mine"}}], agent_id="carol").node_ids[0]
    db = tmp_path / "clash.db"
    alice, bob = fact("alice", "good"), fact("bob", "clash")
    bob["id"] = carol
    build(db, [alice, bob], [])
    with pytest.raises(Conflict, match=carol):
        store.graph.import_database(db)
    assert store.graph.get(str(alice["id"])) is None
    assert store.graph.get(carol).payload["fact"] == "mine"  # type: ignore[union-attr]


def test_the_cli_refuses_a_snapshot_nested_too_deeply_on_stdin(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`graph import -` with a 100,000-deep document exits with a message (it was a RecursionError traceback)."""
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(DEEP))
    code = main(["graph", "import", "-", "--data-dir", str(data_dir)])
    assert code != 0
    assert "nests JSON too deeply" in capsys.readouterr().err


@pytest.mark.anyio
async def test_an_edge_weight_too_large_for_a_float_is_refused_over_mcp(client: Client, store: MemoryStore) -> None:
    """graph_write with weight=10**400 names the weight (math.isfinite raised OverflowError: 'Error executing tool')."""
    message = await error(client, "graph_write", nodes=[
        {"id": "123e4567-e89b-12d3-a456-426614174000", "node_type": "semantic", "payload": {"fact": "a"}},
        {"id": "123e4567-e89b-12d3-a456-426614174001", "node_type": "semantic", "payload": {"fact": "b"}},
    ], edges=[{"from_id": "123e4567-e89b-12d3-a456-426614174000", "to_id": "123e4567-e89b-12d3-a456-426614174001",
               "label": "X", "weight": 10**400}])  # fmt: skip
    assert "weight must be a finite number" in message
    assert store.graph.get("123e4567-e89b-12d3-a456-426614174000") is None
