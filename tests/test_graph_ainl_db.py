"""`graph import-db`: an ainl-memory SQLite database (the crate's schema, built here) imported under snapshot rules."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

import pytest

from mcp_memory_server import MemoryStore, NotFound
from mcp_memory_server.cli import main

NODES = """CREATE TABLE ainl_graph_nodes (
    id TEXT PRIMARY KEY, node_type TEXT NOT NULL, payload TEXT NOT NULL, timestamp INTEGER NOT NULL)"""
EDGES = """CREATE TABLE ainl_graph_edges (
    from_id TEXT NOT NULL, to_id TEXT NOT NULL, label TEXT NOT NULL, weight REAL NOT NULL DEFAULT 1.0,
    metadata TEXT, PRIMARY KEY (from_id, to_id, label),
    FOREIGN KEY (from_id) REFERENCES ainl_graph_nodes(id) ON DELETE CASCADE,
    FOREIGN KEY (to_id) REFERENCES ainl_graph_nodes(id) ON DELETE CASCADE)"""
LEGACY_EDGES = """CREATE TABLE ainl_graph_edges (
    from_id TEXT NOT NULL, to_id TEXT NOT NULL, label TEXT NOT NULL, PRIMARY KEY (from_id, to_id, label))"""


def episode(agent: str, ts: int = 1767225600) -> dict[str, object]:
    return {"id": str(uuid.uuid4()), "memory_category": "episodic", "importance_score": 0.7, "agent_id": agent,
            "node_type": {"type": "episode", "turn_id": str(uuid.uuid4()), "timestamp": ts, "tool_calls": ["shell"]},
            "edges": []}  # fmt: skip


def fact(agent: str, text: str) -> dict[str, object]:
    return {"id": str(uuid.uuid4()), "memory_category": "semantic", "agent_id": agent,
            "node_type": {"type": "semantic", "fact": text, "confidence": 0.9}, "edges": []}  # fmt: skip


def build(
    path: Path, nodes: list[dict[str, object]], edges: list[tuple[str, str, str]], *, legacy: bool = False
) -> None:
    """An ainl-memory database as the crate writes it (payload = the node's serde JSON)."""
    conn = sqlite3.connect(path)
    conn.execute(NODES)
    conn.execute(LEGACY_EDGES if legacy else EDGES)
    for i, node in enumerate(nodes):
        kind = node["node_type"]["type"]  # type: ignore[index]
        conn.execute(
            "INSERT INTO ainl_graph_nodes VALUES (?, ?, ?, ?)", (node["id"], kind, json.dumps(node), 1767225600 + i)
        )
    for from_id, to_id, label in edges:
        if legacy:
            conn.execute("INSERT INTO ainl_graph_edges VALUES (?, ?, ?)", (from_id, to_id, label))
        else:
            conn.execute(
                "INSERT INTO ainl_graph_edges VALUES (?, ?, ?, 0.5, ?)", (from_id, to_id, label, '{"why": "x"}')
            )
    conn.commit()
    conn.close()


def test_a_crate_database_imports_every_agent_with_its_edges(store: MemoryStore, tmp_path: Path) -> None:
    """Nodes, weights and metadata come across per agent; the database file is left unchanged."""
    a_ep, a_fact, b_fact = episode("alice"), fact("alice", "prefers tabs"), fact("bob", "uses vim")
    db = tmp_path / "ainl.db"
    build(db, [a_ep, a_fact, b_fact], [(str(a_fact["id"]), str(a_ep["id"]), "DERIVED_FROM")])
    before = db.read_bytes()
    report = store.graph.import_database(db)
    assert [(r.agent_id, r.nodes_imported, r.edges_imported) for r in report.agents] == [("alice", 2, 1), ("bob", 1, 0)]
    assert not report.legacy_edges and report.dropped_dangling_edges == [] and report.cross_agent_boundary_edges == []
    assert store.graph.get(str(a_fact["id"])).payload["fact"] == "prefers tabs"  # type: ignore[union-attr]
    assert [n.id for n in store.graph.lineage(str(a_fact["id"]), "alice")] == [a_ep["id"]]
    assert store.graph.validate("alice").is_valid
    assert db.read_bytes() == before


def test_legacy_edges_lose_their_dangling_rows_as_the_crate_migration_does(store: MemoryStore, tmp_path: Path) -> None:
    """A legacy edges table (no foreign keys) with a dangling row: the row is dropped and reported, the rest imports."""
    ep, f = episode("alice"), fact("alice", "x")
    ghost = str(uuid.uuid4())
    db = tmp_path / "legacy.db"
    build(db, [ep, f], [(str(f["id"]), str(ep["id"]), "DERIVED_FROM"), (str(f["id"]), ghost, "MENTIONS")], legacy=True)
    report = store.graph.import_database(db)
    assert report.legacy_edges
    assert [(e.to_id, e.label) for e in report.dropped_dangling_edges] == [(ghost, "MENTIONS")]
    assert report.agents[0].edges_imported == 1 and store.graph.validate("alice").is_valid


def test_cross_agent_edges_are_reported_not_imported(store: MemoryStore, tmp_path: Path) -> None:
    """An edge from alice's node to bob's is listed as a cross-agent boundary edge and not written."""
    a, b = fact("alice", "a"), fact("bob", "b")
    db = tmp_path / "cross.db"
    build(db, [a, b], [(str(a["id"]), str(b["id"]), "RELATED_TO")])
    report = store.graph.import_database(db)
    assert [(e.from_id, e.to_id) for e in report.cross_agent_boundary_edges] == [(a["id"], b["id"])]
    assert sum(r.edges_imported for r in report.agents) == 0


def test_strict_import_with_a_dangling_edge_writes_nothing(store: MemoryStore, tmp_path: Path) -> None:
    """A foreign-key table holding a dangling row (written with checks off): strict refuses, forensic loads it."""
    f = fact("alice", "x")
    ghost = str(uuid.uuid4())
    db = tmp_path / "dangling.db"
    build(db, [f], [])
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO ainl_graph_edges VALUES (?, ?, 'MENTIONS', 1.0, NULL)", (f["id"], ghost))
    conn.commit()
    conn.close()
    with pytest.raises(NotFound, match="nothing was imported"):
        store.graph.import_database(db)
    assert store.graph.get(str(f["id"])) is None
    report = store.graph.import_database(db, allow_dangling_edges=True)
    assert report.agents[0].validation.dangling_edge_count == 1


def test_cli_import_db_one_agent(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """`mcp-memory-server graph import-db PATH --agent-id bob` imports only bob's graph; a non-ainl file is refused."""
    monkeypatch.setenv("MCP_MEMORY_EMBED_MODEL", str(tmp_path / "no-model"))
    db = tmp_path / "ainl.db"
    build(db, [fact("alice", "a"), fact("bob", "b")], [])
    assert main(["graph", "import-db", str(db), "--agent-id", "bob", "--data-dir", str(data_dir)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [a["agent_id"] for a in out["agents"]] == ["bob"]
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    assert main(["graph", "import-db", str(other), "--data-dir", str(data_dir)]) != 0
    assert "not an ainl-memory database" in capsys.readouterr().err


def test_family_ops_subgraph_edges_and_crate_validation_names(store: MemoryStore, tmp_path: Path) -> None:
    """episodes/semantic_nodes/… list one family each; subgraph_edges returns the edges among given nodes."""
    ep, f1, f2, other = episode("alice"), fact("alice", "a"), fact("alice", "b"), fact("bob", "c")
    db = tmp_path / "ainl.db"
    build(db, [ep, f1, f2, other], [(str(f1["id"]), str(ep["id"]), "DERIVED_FROM"),
                                    (str(f2["id"]), str(ep["id"]), "DERIVED_FROM"),
                                    (str(f1["id"]), str(other["id"]), "RELATED_TO")])  # fmt: skip
    store.graph.import_database(db)
    graph = store.graph
    assert [n.id for n in graph.query("episodes", "alice").nodes] == [ep["id"]]
    assert {n.id for n in graph.query("semantic_nodes", "alice").nodes} == {f1["id"], f2["id"]}
    assert graph.query("procedural_nodes", "alice").nodes == [] and graph.query("persona_nodes", "alice").nodes == []
    sub = graph.query("subgraph_edges", "alice", node_ids=[str(f1["id"]), str(ep["id"]), str(other["id"])])
    assert {n.id for n in sub.nodes} == {f1["id"], ep["id"]}
    assert [(e.from_id, e.to_id, e.label) for e in sub.edges] == [(f1["id"], ep["id"], "DERIVED_FROM")]
    # The cross-agent edge was not imported; write one (as the crate would allow) to see it reported by name.
    report = graph.validate("alice")
    assert report.dangling_edge_details == report.dangling_edges == []
    assert report.cross_agent_boundary_edges == [] and report.cross_agent_edges == 0
