"""Typed graph memory through the Python API: writes, integrity, every query op, runtime state."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mcp_memory_server import Conflict, InvalidInput, MemoryStore, NotFound
from mcp_memory_server.core.graph import GraphNode, GraphQueryResult, runtime_state_id

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def nid(name: str) -> str:
    """A stable UUID node id for a fixture name."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fixture:{name}"))


NAMES: dict[str, str] = {}


def node(name: str, node_type: str, payload: dict[str, Any], minutes: float, agent: str = "alice",
         **extra: Any) -> dict[str, Any]:  # fmt: skip
    NAMES[nid(name)] = name
    return {"id": nid(name), "agent_id": agent, "node_type": node_type, "payload": payload,
            "timestamp": at(minutes), **extra}  # fmt: skip


def edge(source: str, target: str, label: str, weight: float = 1.0) -> dict[str, Any]:
    return {"from_id": nid(source), "to_id": nid(target), "label": label, "weight": weight}


def fixture_graph() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Alice's graph (every node type), a little of Bob's, one global fact, and one cross-agent edge."""
    nodes = [
        node("ep1", "episode", {"user_message": "How do I install Rust?", "tools_invoked": ["search"],
                                "outcome": "success", "tags": ["onboarding"]}, 1),
        node("ep2", "episode", {"user_message": "Run the tests", "tool_calls": ["bash"], "outcome": "failure"}, 2),
        node("ep3", "episode", {"user_message": "Look it up and run it", "tools_invoked": ["search", "bash"],
                                "outcome": "success", "persona_signals_emitted": ["curious"]}, 3),
        node("f1", "semantic", {"fact": "User prefers Rust over Go", "topic_cluster": "languages/systems",
                                "tags": ["preference"]}, 4),
        node("f2", "semantic", {"fact": "The test suite needs Python 3.11", "topic_cluster": "tooling",
                                "tags": ["onboarding"]}, 5),
        node("p1", "procedural", {"pattern_name": "run_tests", "label": "patch-run-tests"}, 6),
        node("p2", "procedural", {"pattern_name": "old_deploy", "retired": True}, 7),
        node("p3", "procedural", {"pattern_name": "deploy", "label": "deploy_v2"}, 8),
        node("s1", "persona", {"trait_name": "curiosity", "strength": 0.8}, 9),
        node("s2", "persona", {"trait_name": "axis_evolution_snapshot", "strength": 1.0}, 10),
        node("s3", "persona", {"trait_name": "axis_evolution_snapshot", "strength": 0.9}, 11),
        node("bob_ep", "episode", {"user_message": "Bob runs bash", "tools_invoked": ["bash"], "outcome": "success",
                                   "tags": ["onboarding"]}, 2.5, agent="bob"),
        node("bob_f", "semantic", {"fact": "Bob likes Go", "topic_cluster": "languages"}, 4.5, agent="bob"),
        node("bob_p", "procedural", {"pattern_name": "run_tests"}, 6.5, agent="bob"),
        node("bob_s", "persona", {"trait_name": "axis_evolution_snapshot", "strength": 0.1}, 11.5, agent="bob"),
        node("global_f", "semantic", {"fact": "Water boils at 100 C", "topic_cluster": "languages"}, 0, agent=""),
    ]  # fmt: skip
    edges = [
        edge("f1", "ep1", "DERIVED_FROM"),
        edge("f2", "ep2", "DERIVED_FROM", 0.5),
        edge("f2", "ep1", "DERIVED_FROM", 2.0),
        edge("p1", "f2", "CAUSED_PATCH"),
        edge("p3", "p1", "DERIVED_FROM"),
        edge("ep3", "ep2", "FOLLOWS"),
        edge("ep2", "ep1", "FOLLOWS"),
        edge("s1", "ep3", "LEARNED_FROM"),
        edge("bob_f", "bob_ep", "DERIVED_FROM"),
        edge("bob_ep", "ep1", "MENTIONS"),
    ]
    return nodes, edges


def write_fixture(store: MemoryStore) -> None:
    """Write the fixture graph: the nodes, each agent's edges as that agent, and the cross-agent edge.

    Edges are scoped to the agent writing them, so no write can make bob_ep -> ep1; it is put
    in with SQL, as a store written before that rule (or by hand) may hold one.
    """
    nodes, edges = fixture_graph()
    agent_of = {n["id"]: n["agent_id"] for n in nodes}
    store.graph.write(nodes)
    for agent in ("alice", "bob"):
        mine = [e for e in edges if agent_of[e["from_id"]] == agent == agent_of[e["to_id"]]]
        store.graph.write(edges=mine, agent_id=agent)
    with store.db.write() as conn:
        for e in edges:
            if agent_of[e["from_id"]] != agent_of[e["to_id"]]:
                conn.execute(
                    "INSERT INTO graph_edges (from_id, to_id, label, weight, agent_id) VALUES (?, ?, ?, ?, ?)",
                    (e["from_id"], e["to_id"], e["label"], e["weight"], agent_of[e["from_id"]]),
                )


@pytest.fixture
def graph_store(store: MemoryStore) -> MemoryStore:
    """The fixture graph written into a fresh store, plus runtime state for alice and bob."""
    write_fixture(store)
    store.graph.write_runtime_state("alice", turn_count=12, last_extraction_at_turn=10)
    store.graph.write_runtime_state("bob", turn_count=1)
    return store


def names(result: GraphQueryResult | list[GraphNode]) -> list[str]:
    nodes = result.nodes if isinstance(result, GraphQueryResult) else result
    return [NAMES.get(n.id, "runtime_state" if n.node_type == "runtime_state" else n.id) for n in nodes]


def table_counts(store: MemoryStore) -> tuple[int, int]:
    counts = store.graph.count()
    return counts["graph_nodes"], counts["graph_edges"]


# -- writing --------------------------------------------------------------------------------------


def test_a_node_is_stored_with_its_type_defaults_filled_in(store: MemoryStore) -> None:
    """Upserting a semantic node returns it as stored, with ainl-memory's defaults (confidence 0.7, …)."""
    stored = store.graph.upsert_node({"node_type": "semantic", "payload": {"fact": "Paris is in France"}},
                                     agent_id="alice")  # fmt: skip
    assert stored.id.startswith("node_") and stored.agent_id == "alice" and stored.importance == 0.5
    assert stored.payload["fact"] == "Paris is in France"
    assert stored.payload["confidence"] == 0.7 and stored.payload["decay_eligible"] is True
    assert store.graph.get(stored.id) == stored


@pytest.mark.parametrize(
    ("node_type", "payload", "expected"),
    [
        ("episode", {"turn_id": "t-1", "timestamp": 1767225600, "tool_calls": ["bash"], "user_message": "hi",
                     "assistant_response": "hello", "outcome": "success", "conversation_id": "c1"},
         {"tools_invoked": [], "flagged": False, "turn_index": 0}),
        ("semantic", {"fact": "f", "confidence": 0.9, "topic_cluster": "t", "reference_count": 3},
         {"recurrence_count": 0, "contradiction_ids": []}),
        ("procedural", {"pattern_name": "p", "tool_sequence": ["a", "b"], "success_count": 3, "failure_count": 1},
         {"success_rate": 0.75, "retired": False, "procedure_type": "tool_sequence"}),
        ("procedural", {"pattern_name": "fresh"}, {"success_rate": 0.5}),
        ("persona", {"trait_name": "warmth", "strength": 0.4, "axis_scores": {"openness": 0.7},
                     "evolution_log": [{"delta": 0.1, "reason": "praise"}]},
         {"layer": "base", "source": "user_configured", "agent_id": "alice"}),
        ("runtime_state", {"turn_count": 4, "last_extraction_at_turn": 2, "persona_snapshot": "kind"},
         {"agent_id": "alice"}),
    ],
)  # fmt: skip
def test_each_node_type_keeps_its_fields_and_fills_the_rest(
    store: MemoryStore, node_type: str, payload: dict[str, Any], expected: dict[str, Any]
) -> None:
    """Given type fields come back unchanged; missing ones get ainl-memory's defaults."""
    stored = store.graph.upsert_node({"node_type": node_type, "payload": payload}, agent_id="alice")
    for key, value in payload.items():
        if key != "evolution_log":
            assert stored.payload[key] == value, key
    for key, value in expected.items():
        assert stored.payload[key] == value, key
    assert store.graph.get(stored.id) == stored


def test_unknown_payload_fields_are_kept_for_ainl_compatibility(store: MemoryStore) -> None:
    """Fields this server does not know (e.g. ainl's compiled_graph) survive a write unchanged."""
    stored = store.graph.upsert_node(
        {"node_type": "procedural", "payload": {"pattern_name": "p", "compiled_graph": [1, 2], "_extra": {"a": 1}}}
    )
    assert stored.payload["compiled_graph"] == [1, 2] and stored.payload["_extra"] == {"a": 1}


@pytest.mark.parametrize(
    ("bad_node", "message"),
    [
        ({"node_type": "dream", "payload": {}}, "nodes[1].node_type='dream' is not a node type"),
        ({"node_type": "semantic", "payload": {"confidence": 0.9}}, "nodes[1].payload.fact: required for semantic"),
        ({"node_type": "procedural", "payload": {}}, "nodes[1].payload.pattern_name: required for procedural"),
        ({"node_type": "persona", "payload": {"trait_name": "x"}}, "nodes[1].payload.strength: required for persona"),
        ({"node_type": "semantic", "payload": {"fact": "x", "confidence": 2}}, "nodes[1].payload.confidence"),
        ({"node_type": "episode", "payload": {"tool_calls": "bash"}}, "nodes[1].payload.tool_calls"),
        ({"node_type": "episode", "payload": {}, "id": "node-1"}, "nodes[1].id='node-1' is not a node id"),
        ({"node_type": "episode", "payload": {}, "id": "12345678-1234-1234-1234-12345678"}, "is not a node id"),
        ({"node_type": "episode", "payload": {"follows_episode_id": "ep-7"}},
         "nodes[1].payload.follows_episode_id='ep-7' is not a node id"),
        ({"node_type": "episode", "payload": {}, "agent_id": "bad agent"}, "nodes[1].agent_id='bad agent'"),
        ({"node_type": "episode", "payload": {}, "importance": 1.5}, "nodes[1].importance must be a number from 0"),
        ({"node_type": "episode", "payload": {}, "timestamp": "yesterday"}, "is not an RFC 3339 timestamp"),
        ({"node_type": "episode", "payload": {}, "colour": "red"}, "nodes[1] has unknown field(s) ['colour']"),
        ({"node_type": "runtime_state", "agent_id": "", "payload": {}}, "give a non-empty agent_id"),
        ({"node_type": "runtime_state", "agent_id": "a", "id": str(uuid.uuid4()), "payload": {}},
         "runtime_state ids are UUIDv5(NAMESPACE_OID, agent_id)"),
        ({"node_type": "semantic", "payload": {"fact": "x"}, "edges": [{"to_id": "nowhere", "label": "L"}]},
         "nodes[1].edges[0].to_id='nowhere' is not a node id"),
        ({"node_type": "semantic", "payload": {"fact": "x"}, "edges": [{"to_id": nid("ep1"), "label": ""}]},
         "nodes[1].edges[0].label must be 1-128 printable characters"),
    ],
)  # fmt: skip
def test_bad_nodes_are_refused_with_a_message_naming_the_field_and_nothing_is_written(
    store: MemoryStore, bad_node: dict[str, Any], message: str
) -> None:
    """One bad node in a batch fails the whole write with a precise message; the good node is not stored."""
    good = {"node_type": "semantic", "payload": {"fact": "fine"}, "id": nid("good")}
    with pytest.raises(InvalidInput) as caught:
        store.graph.write([good, bad_node], agent_id="alice")
    assert message in str(caught.value)
    assert table_counts(store) == (0, 0)


def test_a_batch_with_an_edge_to_a_missing_node_fails_whole(store: MemoryStore) -> None:
    """Nodes and edges of one write are one transaction: a missing edge target stores nothing."""
    nodes = [node("a", "semantic", {"fact": "a"}, 1), node("b", "semantic", {"fact": "b"}, 2)]
    missing = str(uuid.uuid4())
    with pytest.raises(NotFound) as caught:
        store.graph.write(nodes, [edge("a", "b", "RELATES"), {"from_id": nid("a"), "to_id": missing, "label": "X"}])
    assert f"edges[1] ({nid('a')} -[X]-> {missing}): to_id {missing} is not a node in this store" in str(caught.value)
    assert "Nothing was written" in str(caught.value)
    assert table_counts(store) == (0, 0)


def test_embedded_edges_are_written_with_their_node_and_may_point_into_the_same_batch(store: MemoryStore) -> None:
    """A node's edges[] become edges from that node, checked against the batch and the store."""
    episode = node("e", "episode", {}, 1)
    fact = node("f", "semantic", {"fact": "x"}, 2, edges=[{"to_id": nid("e"), "label": "DERIVED_FROM",
                                                          "weight": 0.3, "metadata": {"why": "said so"}}])  # fmt: skip
    result = store.graph.write([fact, episode])
    assert (result.created, result.updated, result.edges_written) == (2, 0, 1)
    found = store.graph.query("neighbors", "alice", node_id=nid("f"))
    assert names(found) == ["e"]
    assert found.edges[0].weight == 0.3 and found.edges[0].metadata == {"why": "said so"}


def test_checked_edge_insert_names_the_missing_endpoint_and_updates_existing_edges(store: MemoryStore) -> None:
    """add_edge refuses a missing source or target clearly; re-adding an edge updates weight and metadata."""
    store.graph.write([node("a", "semantic", {"fact": "a"}, 1), node("b", "semantic", {"fact": "b"}, 2)])
    ghost = str(uuid.uuid4())
    with pytest.raises(NotFound, match=f"from_id {ghost} is not a node in this store"):
        store.graph.add_edge(ghost, nid("b"), "L")
    with pytest.raises(NotFound, match=f"to_id {ghost} is not a node in this store"):
        store.graph.add_edge(nid("a"), ghost, "L")
    store.graph.add_edge(nid("a"), nid("b"), "L", weight=0.5, metadata={"v": 1})
    updated = store.graph.add_edge(nid("a"), nid("b"), "L", weight=0.9, metadata=[1, 2])
    assert (updated.weight, updated.metadata) == (0.9, [1, 2])
    assert store.graph.query("neighbors", "alice", node_id=nid("a")).edges == [updated]
    assert table_counts(store) == (2, 1)


def test_upserting_a_node_replaces_its_fields_and_keeps_its_edges(store: MemoryStore) -> None:
    """An upsert is an update in place, not delete-and-insert: edges in and out survive."""
    store.graph.write([node("a", "semantic", {"fact": "old"}, 1), node("b", "semantic", {"fact": "b"}, 2)],
                      [edge("a", "b", "OUT"), edge("b", "a", "IN")])  # fmt: skip
    result = store.graph.write([node("a", "semantic", {"fact": "new"}, 3)])
    assert (result.created, result.updated) == (0, 1)
    assert store.graph.get(nid("a")).payload["fact"] == "new"  # type: ignore[union-attr]
    assert table_counts(store) == (2, 2)


def test_a_node_cannot_move_to_another_agent_or_change_type(store: MemoryStore) -> None:
    """Reusing an id for another agent or node type is a conflict that changes nothing."""
    store.graph.write([node("a", "semantic", {"fact": "a"}, 1)])
    with pytest.raises(Conflict, match="belongs to agent 'alice', not 'bob'"):
        store.graph.write([node("a", "semantic", {"fact": "a"}, 1, agent="bob")])
    with pytest.raises(Conflict, match="is a semantic node and cannot become a episode node"):
        store.graph.write([node("a", "episode", {}, 1)])
    assert store.graph.get(nid("a")).payload["fact"] == "a"  # type: ignore[union-attr]


def test_the_same_id_twice_in_one_batch_is_refused(store: MemoryStore) -> None:
    """A batch names each node once."""
    twice = node("a", "semantic", {"fact": "a"}, 1)
    with pytest.raises(InvalidInput, match=r"nodes\[1\] repeats the id .* of nodes\[0\]"):
        store.graph.write([twice, twice])


# -- integrity ------------------------------------------------------------------------------------


@pytest.mark.sqlite_only  # PRAGMA foreign_keys is SQLite's per-connection switch; PostgreSQL has none
def test_every_connection_enforces_foreign_keys(store: MemoryStore) -> None:
    """Connections on any thread have foreign_keys on, so a raw dangling insert is refused by SQLite."""
    seen: list[int] = []
    worker = threading.Thread(target=lambda: seen.append(store.db.conn.execute("PRAGMA foreign_keys").fetchone()[0]))
    worker.start()
    worker.join()
    assert seen == [1]
    assert store.db.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    with pytest.raises(sqlite3.IntegrityError), store.db.write() as conn:
        conn.execute("INSERT INTO graph_edges (from_id, to_id, label, agent_id) VALUES ('x', 'y', 'L', '')")


def test_a_raw_dangling_edge_is_refused_by_the_engine_on_every_thread(store: MemoryStore) -> None:
    """Below the capability's own check, the engine refuses an edge to a missing node, on any thread's connection."""
    store.graph.write([node("a", "semantic", {"fact": "a"}, 1)], agent_id="alice")
    refused: list[bool] = []

    def dangling(from_id: str, to_id: str) -> bool:
        try:
            with store.db.write() as conn:
                conn.execute("INSERT INTO graph_edges (from_id, to_id, label, agent_id) VALUES (?, ?, 'L', '')",
                             (from_id, to_id))  # fmt: skip
        except store.db.IntegrityError:
            return True
        return False

    worker = threading.Thread(target=lambda: refused.append(dangling(nid("a"), nid("ghost"))))
    worker.start()
    worker.join()
    refused += [dangling(nid("ghost"), nid("a")), dangling("x", "y")]
    assert refused == [True, True, True]
    assert table_counts(store) == (1, 0)


def test_deleting_a_node_cascades_to_its_edges_in_both_directions(graph_store: MemoryStore) -> None:
    """Removing f2 removes its DERIVED_FROM edges and p1's CAUSED_PATCH edge into it."""
    before_nodes, before_edges = table_counts(graph_store)
    assert graph_store.graph.delete_nodes([nid("f2")]) == 1
    assert table_counts(graph_store) == (before_nodes - 1, before_edges - 3)
    assert names(graph_store.graph.query("lineage", "alice", node_id=nid("p3"))) == ["p1"]
    assert graph_store.graph.validate().is_valid


def test_deleting_a_node_removes_a_forensic_edge_dangling_at_its_other_end(store: MemoryStore) -> None:
    """An edge loaded with checks off still goes with the node it does reference, and checks are on again after."""
    snapshot = {"agent_id": "alice", "schema_version": "1.0", "nodes": [node("a", "semantic", {"fact": "a"}, 1)],
                "edges": [{"source_id": nid("a"), "target_id": nid("ghost"), "edge_type": "L"},
                          {"source_id": nid("ghost"), "target_id": nid("a"), "edge_type": "L"}]}  # fmt: skip
    assert store.graph.import_snapshot(snapshot, allow_dangling_edges=True).validation.dangling_edge_count == 2
    with pytest.raises(NotFound, match="Nothing was written"):
        store.graph.write([node("b", "semantic", {"fact": "b"}, 2, edges=[{"to_id": nid("ghost"), "label": "L"}])])
    assert table_counts(store) == (1, 2)
    assert store.graph.delete_nodes([nid("a")]) == 1
    assert table_counts(store) == (0, 0)


def test_a_nul_character_round_trips_on_sqlite_and_is_refused_whole_on_postgres(
    store: MemoryStore, engine: str
) -> None:
    """PostgreSQL text cannot hold NUL: there the write is InvalidInput naming it, and nothing is stored."""
    keep = node("keep", "semantic", {"fact": "kept"}, 0)
    store.graph.write([keep])
    batches = [
        [node("a", "semantic", {"fact": "nul\x00here"}, 1)],  # in the searchable text and the payload
        [node("b", "semantic", {"fact": "b", "x_note": "nul\x00"}, 2)],  # in an extra field, the payload only
        [node("c", "semantic", {"fact": "c", "x_\x00": 1}, 3)],  # in a key
    ]
    for batch in batches:
        if engine == "postgres":
            with pytest.raises(InvalidInput, match="NUL"):
                store.graph.write([*batch, node("d", "semantic", {"fact": "d"}, 4)])
            assert table_counts(store) == (1, 0) and store.graph.get(nid("d")) is None
        else:
            stored = store.graph.get(store.graph.write(batch).node_ids[0])
            assert stored is not None
            assert {key: stored.payload.get(key) for key in batch[0]["payload"]} == batch[0]["payload"]
    assert [n.id for n in store.graph.query("semantic_nodes", "alice").nodes][-1] == nid("keep")


def test_delete_scoped_to_an_agent_leaves_other_agents_nodes(graph_store: MemoryStore) -> None:
    """delete_nodes(agent_id=…) only removes that agent's nodes."""
    assert graph_store.graph.delete_nodes([nid("ep1"), nid("bob_ep")], agent_id="bob") == 1
    assert graph_store.graph.get(nid("ep1")) is not None and graph_store.graph.get(nid("bob_ep")) is None


# -- queries --------------------------------------------------------------------------------------


QUERIES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("recent_episodes", {}, ["ep3", "ep2", "ep1"]),
    ("recent_episodes", {"limit": 2}, ["ep3", "ep2"]),
    ("since", {"since": at(2)}, ["ep2", "ep3", "f1", "f2", "p1", "p2", "p3", "s1", "s2", "s3", "runtime_state"]),
    ("since", {"since": at(2), "node_type": "episode"}, ["ep2", "ep3"]),
    ("neighbors", {"node_id": nid("f2")}, ["ep1", "ep2"]),
    ("neighbors", {"node_id": nid("ep1"), "direction": "in"}, ["f2", "f1", "ep2"]),
    ("neighbors", {"node_id": nid("ep1"), "direction": "in", "label": "FOLLOWS"}, ["ep2"]),
    ("neighbors", {"node_id": nid("ep2"), "direction": "both"}, ["ep1", "ep3", "f2"]),
    ("lineage", {"node_id": nid("p3")}, ["p1", "f2", "ep1", "ep2"]),
    ("lineage", {"node_id": nid("p3"), "depth": 2}, ["p1", "f2"]),
    ("lineage", {"node_id": nid("ep3")}, []),
    ("by_tag", {"tag": "onboarding"}, ["f2", "ep1"]),
    ("by_tag", {"tag": "curious"}, ["ep3"]),
    ("by_topic_cluster", {"cluster": "languages"}, ["f1"]),
    ("by_topic_cluster", {"cluster": "TOOL"}, ["f2"]),
    ("by_topic_cluster", {"cluster": "%"}, []),
    ("pattern_by_name", {"name": "run_tests"}, ["p1"]),
    ("pattern_by_name", {"name": "deploy_v2"}, ["p3"]),
    ("pattern_by_name", {"name": "nope"}, []),
    ("active_patches", {}, ["p3", "p1"]),
    ("successful_episodes", {}, ["ep3", "ep1"]),
    ("episodes_with_tool", {"tool": "bash"}, ["ep3", "ep2"]),
    ("episodes_with_tool", {"tool": "search"}, ["ep3", "ep1"]),
    ("evolved_persona", {}, ["s3"]),
    ("runtime_state", {}, ["runtime_state"]),
    ("search", {"query": "python", "mode": "lexical"}, ["f2"]),
    ("search", {"query": "deploy_v2", "mode": "lexical"}, ["p3"]),
]


@pytest.mark.parametrize(("op", "arguments", "expected"), QUERIES, ids=[f"{q[0]}-{i}" for i, q in enumerate(QUERIES)])
def test_each_query_op_returns_exactly_the_expected_nodes_in_order(
    graph_store: MemoryStore, op: str, arguments: dict[str, Any], expected: list[str]
) -> None:
    """Every op over alice's fixture graph returns these nodes, in this order, and nothing of bob's."""
    assert names(graph_store.graph.query(op, "alice", **arguments)) == expected


@pytest.mark.parametrize(
    ("op", "arguments", "expected"),
    [
        ("recent_episodes", {}, ["bob_ep"]),
        ("by_tag", {"tag": "onboarding"}, ["bob_ep"]),
        ("by_topic_cluster", {"cluster": "languages"}, ["bob_f"]),
        ("pattern_by_name", {"name": "run_tests"}, ["bob_p"]),
        ("episodes_with_tool", {"tool": "bash"}, ["bob_ep"]),
        ("evolved_persona", {}, ["bob_s"]),
        ("neighbors", {"node_id": nid("bob_ep"), "direction": "both"}, ["bob_f"]),
        ("search", {"query": "go", "mode": "lexical"}, ["bob_f"]),
    ],
)
def test_agent_scoping_keeps_agents_apart(
    graph_store: MemoryStore, op: str, arguments: dict[str, Any], expected: list[str]
) -> None:
    """Bob's queries see only bob's nodes, even across bob's edge into alice's graph."""
    assert names(graph_store.graph.query(op, "bob", **arguments)) == expected


def test_the_global_graph_is_agent_id_empty(graph_store: MemoryStore) -> None:
    """Nodes written without an agent live in the "" graph and only there."""
    assert names(graph_store.graph.query("by_topic_cluster", "", cluster="languages")) == ["global_f"]
    assert names(graph_store.graph.query("runtime_state", "")) == []


def test_traversal_from_another_agents_node_is_not_found(graph_store: MemoryStore) -> None:
    """neighbors/lineage refuse a start node that is not in the asking agent's graph."""
    for op in ("neighbors", "lineage"):
        with pytest.raises(NotFound, match=f"node {nid('ep1')} is not in the graph of agent 'bob'"):
            graph_store.graph.query(op, "bob", node_id=nid("ep1"))


def test_query_edges_are_the_ones_followed(graph_store: MemoryStore) -> None:
    """lineage reports each followed edge, parent before child, in BFS order."""
    result = graph_store.graph.query("lineage", "alice", node_id=nid("p3"))
    assert [(NAMES[e.from_id], NAMES[e.to_id], e.label) for e in result.edges] == [
        ("p3", "p1", "DERIVED_FROM"), ("p1", "f2", "CAUSED_PATCH"), ("f2", "ep1", "DERIVED_FROM"),
        ("f2", "ep2", "DERIVED_FROM"),
    ]  # fmt: skip


def test_pages_of_a_query_concatenate_to_the_whole_list(graph_store: MemoryStore) -> None:
    """limit + next_cursor walk the list without gaps or repeats; the last page has no cursor."""
    whole = names(graph_store.graph.query("since", "alice", since=at(0)))
    collected: list[str] = []
    cursor = None
    for _ in range(20):
        page = graph_store.graph.query("since", "alice", since=at(0), limit=3, cursor=cursor)
        collected += names(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert collected == whole and len(whole) == 12


def chain(store: MemoryStore, length: int, *, label: str = "DERIVED_FROM") -> list[str]:
    ids = [f"c{i}" for i in range(length)]
    store.graph.write([node(name, "semantic", {"fact": name}, i) for i, name in enumerate(ids)],
                      [edge(ids[i], ids[i + 1], label) for i in range(length - 1)])  # fmt: skip
    return ids


def test_lineage_stops_at_depth_twenty_and_excludes_the_start(store: MemoryStore) -> None:
    """On a 30-node DERIVED_FROM chain, lineage returns the next 20 nodes only."""
    ids = chain(store, 30)
    assert names(store.graph.lineage(nid("c0"), "alice")) == ids[1:21]
    assert names(store.graph.lineage(nid("c0"), "alice", depth=3)) == ids[1:4]
    with pytest.raises(InvalidInput, match="depth must be an integer from 1 to 20"):
        store.graph.lineage(nid("c0"), "alice", depth=21)


def test_lineage_terminates_on_cycles_and_ignores_other_labels(store: MemoryStore) -> None:
    """A CAUSED_PATCH cycle is walked once; FOLLOWS edges are not lineage."""
    ids = chain(store, 4, label="CAUSED_PATCH")
    store.graph.add_edge(nid("c3"), nid("c0"), "CAUSED_PATCH")
    store.graph.add_edge(nid("c1"), nid("c1"), "DERIVED_FROM")
    store.graph.write([node("side", "semantic", {"fact": "side"}, 9)], [edge("c0", "side", "FOLLOWS")],
                      agent_id="alice")  # fmt: skip
    assert names(store.graph.lineage(nid("c0"), "alice")) == ids[1:]
    assert names(store.graph.lineage(nid("c2"), "alice")) == ["c3", "c0", "c1"]


def test_lineage_is_breadth_first_with_heavier_edges_first(store: MemoryStore) -> None:
    """Level by level; within a parent, higher weight, then label, then id."""
    store.graph.write(
        [node(n, "semantic", {"fact": n}, i) for i, n in enumerate(["r", "a", "b", "c", "a1", "b1"])],
        [edge("r", "a", "DERIVED_FROM", 0.2), edge("r", "b", "DERIVED_FROM", 0.9), edge("r", "c", "CAUSED_PATCH", 0.9),
         edge("a", "a1", "DERIVED_FROM"), edge("b", "b1", "DERIVED_FROM")],
    )  # fmt: skip
    assert names(store.graph.lineage(nid("r"), "alice")) == ["c", "b", "a", "b1", "a1"]


@pytest.mark.parametrize(
    ("op", "arguments", "message"),
    [
        ("everything", {}, "op='everything' is not a graph query"),
        ("by_tag", {}, "op=by_tag needs tag"),
        ("by_tag", {"tag": "x", "cluster": "y"}, "op=by_tag does not take cluster; it takes tag, limit, cursor"),
        ("since", {"since": "soon"}, "since='soon' is not an RFC 3339 timestamp"),
        ("since", {"since": at(0), "node_type": "dream"}, "node_type='dream' is not a node type"),
        ("neighbors", {"node_id": "x"}, "node_id='x' is not a node id"),
        ("neighbors", {"node_id": nid("ep1"), "direction": "up"}, "direction='up' is not valid"),
        ("search", {"query": "x", "mode": "fuzzy"}, "mode='fuzzy' is not valid"),
        ("recent_episodes", {"limit": 0}, "limit must be a positive integer"),
        ("recent_episodes", {"cursor": "garbage"}, "is not a cursor this server issued"),
    ],
)
def test_bad_query_arguments_get_clear_errors(
    graph_store: MemoryStore, op: str, arguments: dict[str, Any], message: str
) -> None:
    """Unknown ops, missing or foreign arguments and malformed values are refused with the fix."""
    with pytest.raises(InvalidInput) as caught:
        graph_store.graph.query(op, "alice", **arguments)
    assert message in str(caught.value)


# -- runtime state --------------------------------------------------------------------------------


def test_runtime_state_id_is_uuid5_of_the_agent_in_the_oid_namespace(store: MemoryStore) -> None:
    """The id is deterministic and the one ainl-memory derives (Uuid::new_v5(NAMESPACE_OID, agent))."""
    assert store.graph.runtime_state_id("agent-1") == str(uuid.uuid5(uuid.NAMESPACE_OID, "agent-1"))
    assert runtime_state_id("agent-1") == "8de2cea5-95b0-5ee2-a75a-c4d168aff6a7"
    assert store.graph.write_runtime_state("agent-1").node_id == runtime_state_id("agent-1")


def test_runtime_state_is_one_node_per_agent_updated_in_place(store: MemoryStore) -> None:
    """Writes merge into the single node; unspecified fields keep their value; updated_at moves on."""
    assert store.graph.read_runtime_state("alice") is None
    first = store.graph.write_runtime_state("alice", turn_count=3, persona_snapshot="calm")
    second = store.graph.write_runtime_state("alice", last_extraction_at_turn=3)
    assert (second.turn_count, second.last_extraction_at_turn, second.persona_snapshot) == (3, 3, "calm")
    assert second.updated_at >= first.updated_at
    assert store.graph.read_runtime_state("alice") == second
    assert table_counts(store) == (1, 0)
    with pytest.raises(InvalidInput, match="non-empty agent_id"):
        store.graph.read_runtime_state("")
    with pytest.raises(InvalidInput, match="turn_count"):
        store.graph.write_runtime_state("alice", turn_count=-1)


def test_runtime_state_writes_from_many_threads_lose_nothing(store: MemoryStore) -> None:
    """Read-modify-write happens in one transaction, so concurrent increments all land."""

    def bump() -> None:
        for _ in range(5):
            with store.db.write():
                current = store.graph.read_runtime_state("alice")
                store.graph.write_runtime_state("alice", turn_count=(current.turn_count if current else 0) + 1)

    workers = [threading.Thread(target=bump) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert store.graph.read_runtime_state("alice").turn_count == 20  # type: ignore[union-attr]


def test_legacy_runtime_state_field_names_are_accepted_on_read(store: MemoryStore) -> None:
    """A stored payload with ainl's older names (last_extraction_turn, last_persona_prompt) reads correctly."""
    node_id = runtime_state_id("old-agent")
    with store.db.write() as conn:
        conn.execute(
            "INSERT INTO graph_nodes (id, agent_id, node_type, payload, timestamp) VALUES (?, ?, 'runtime_state', ?, ?)",
            (node_id, "old-agent", '{"agent_id":"old-agent","turn_count":7,"last_extraction_turn":5,'
             '"last_persona_prompt":"terse","updated_at":1767225600}', at(0)),
        )  # fmt: skip
    state = store.graph.read_runtime_state("old-agent")
    assert state is not None
    assert (state.turn_count, state.last_extraction_at_turn, state.persona_snapshot) == (7, 5, "terse")
    assert state.updated_at == "2026-01-01T00:00:00.000000Z"
    assert store.graph.write_runtime_state("old-agent", turn_count=8).last_extraction_at_turn == 5


def test_legacy_field_names_written_are_stored_under_the_current_name(store: MemoryStore) -> None:
    """graph_write with last_extraction_turn / persona_snapshot_json stores last_extraction_at_turn / persona_snapshot."""
    stored = store.graph.upsert_node({"node_type": "runtime_state", "agent_id": "a",
                                      "payload": {"last_extraction_turn": 4, "persona_snapshot_json": "{}"}})  # fmt: skip
    assert stored.payload["last_extraction_at_turn"] == 4 and stored.payload["persona_snapshot"] == "{}"
    assert "last_extraction_turn" not in stored.payload and "persona_snapshot_json" not in stored.payload


# -- search ---------------------------------------------------------------------------------------


def test_lexical_search_ranks_matching_nodes_and_pages(graph_store: MemoryStore) -> None:
    """Lexical search finds every node mentioning a word, best first, and says which mode ran."""
    result = graph_store.graph.query("search", "alice", query="rust", mode="lexical")
    assert sorted(names(result)) == ["ep1", "f1"] and result.mode == "lexical"
    assert result.scores is not None and result.scores == sorted(result.scores, reverse=True)
    assert names(graph_store.graph.query("search", "alice", query="rust", mode="lexical", node_type="semantic")) == [
        "f1"
    ]


def test_search_follows_node_updates_and_deletes(store: MemoryStore) -> None:
    """An edited node is found by its new text only; an unchanged upsert keeps its search document."""
    store.graph.write([node("n", "semantic", {"fact": "alpha particles"}, 1)])

    def found(word: str) -> list[str]:
        return names(store.graph.search(word, "alice", mode="lexical"))

    def doc_ids() -> list[int]:
        return [r[0] for r in store.db.query("SELECT doc_id FROM search_docs WHERE source = 'graph'")]

    assert found("alpha") == ["n"]
    before = doc_ids()
    store.graph.write([node("n", "semantic", {"fact": "alpha particles"}, 2)])
    assert doc_ids() == before
    store.graph.write([node("n", "semantic", {"fact": "beta decay"}, 3)])
    assert (found("alpha"), found("beta")) == ([], ["n"]) and doc_ids() != before
    store.graph.delete_nodes([nid("n")])
    assert found("beta") == [] and doc_ids() == []


def test_search_falls_back_to_lexical_when_the_model_cannot_load(tmp_path: Any) -> None:
    """A broken model path degrades hybrid search to lexical with a warning instead of failing."""
    with MemoryStore.open(tmp_path / "s", embed_model=str(tmp_path / "no-such-model")) as broken:
        write_fixture(broken)
        result = broken.graph.query("search", "alice", query="python")
    assert names(result) == ["f2"] and result.mode == "lexical"
    assert result.warning and "semantic search is unavailable" in result.warning


def test_semantic_search_finds_a_paraphrase(graph_store: MemoryStore) -> None:
    """With the real model, a query sharing no words with the fact still finds it first."""
    result = graph_store.graph.query("search", "alice", query="which programming language does the user like",
                                     mode="semantic", limit=3)  # fmt: skip
    assert result.mode == "semantic" and names(result)[0] == "f1"
    hybrid = graph_store.graph.query("search", "alice", query="favourite language rust", limit=3)
    assert hybrid.mode == "hybrid" and names(hybrid)[0] == "f1"
