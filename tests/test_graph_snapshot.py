"""Graph snapshots: export/import round trips, strict vs permissive import, and validation."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_graph import at, edge, nid, node, table_counts, write_fixture

from mcp_memory_server import Conflict, InvalidInput, MemoryStore, NotFound
from mcp_memory_server.core.graph import GraphSnapshot, runtime_state_id


def comparable(snapshot: GraphSnapshot) -> dict[str, Any]:
    return snapshot.model_dump(exclude={"exported_at"})


@pytest.fixture
def other_store(tmp_path: Path, fresh_database_url: Callable[[], str | None]) -> Any:
    """A second, empty store (the destination of an import)."""
    with MemoryStore.open(tmp_path / "other", database_url=fresh_database_url()) as opened:
        yield opened


# -- round trips ----------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False,
    allow_infinity=False) | st.text(max_size=20)  # fmt: skip
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)  # fmt: skip
words = st.text(min_size=1, max_size=30)
word_lists = st.lists(st.text(max_size=12), max_size=4)
unit = st.floats(0, 1)
counts = st.integers(0, 10**6)
labels = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=12).filter(str.strip)
extras = st.dictionaries(st.text(min_size=1, max_size=8).map(lambda k: "x_" + k), json_values, max_size=2)

PAYLOADS: dict[str, Any] = {
    "episode": st.fixed_dictionaries({}, optional={
        "user_message": st.text(max_size=60), "assistant_response": st.text(max_size=60), "tool_calls": word_lists,
        "tools_invoked": word_lists, "outcome": st.sampled_from(["success", "failure", "partial"]), "tags": word_lists,
        "turn_index": counts, "flagged": st.booleans(), "sentiment": st.sampled_from(["positive", "mixed"]),
        "timestamp": st.integers(0, 4_000_000_000)}),
    "semantic": st.fixed_dictionaries({"fact": words}, optional={
        "confidence": unit, "topic_cluster": st.text(max_size=20), "tags": word_lists, "reference_count": counts,
        "decay_eligible": st.booleans()}),
    "procedural": st.fixed_dictionaries({"pattern_name": words}, optional={
        "label": st.text(max_size=20), "tool_sequence": word_lists, "success_count": counts,
        "failure_count": counts, "retired": st.booleans(), "patch_version": counts, "fitness": unit}),
    "persona": st.fixed_dictionaries({"trait_name": words, "strength": st.floats(-10, 10)}, optional={
        "layer": st.sampled_from(["base", "delta", "injection"]), "axis_scores": st.dictionaries(
            st.text(max_size=8), st.floats(-1, 1), max_size=3), "dominant_axes": word_lists,
        "evolution_log": st.lists(st.fixed_dictionaries({"delta": st.floats(-1, 1), "reason": st.text(max_size=10)}),
                                  max_size=2)}),
    "runtime_state": st.fixed_dictionaries({}, optional={
        "turn_count": counts, "last_extraction_turn": counts, "persona_snapshot": st.text(max_size=30)}),
}  # fmt: skip


@st.composite
def graphs(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """One agent's random graph: typed nodes with random fields and extras, and edges among them."""
    agent = draw(st.sampled_from(["", "agent-1", "a.b@c"]))
    kinds = draw(st.lists(st.sampled_from(["episode", "semantic", "procedural", "persona"]), max_size=8))
    if agent and draw(st.booleans()):
        kinds.append("runtime_state")
    nodes = []
    for kind in kinds:
        payload = {**draw(PAYLOADS[kind]), **draw(extras)}
        item: dict[str, Any] = {"node_type": kind, "agent_id": agent, "payload": payload,
                                "importance": draw(unit)}  # fmt: skip
        if kind != "runtime_state":
            item["id"] = str(draw(st.uuids())) if draw(st.booleans()) else None
            if item["id"] is None:
                del item["id"]
            if draw(st.booleans()):
                item["timestamp"] = at(draw(st.integers(0, 10**6)))
        nodes.append(item)
    edges: list[dict[str, Any]] = []
    return agent, nodes, edges


def holds_nul(value: Any) -> bool:
    """A NUL character in any string or key of a JSON-like value."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(holds_nul(item) for item in value)
    return False


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(graph=graphs(), data=st.data())
def test_export_import_export_is_identical_over_generated_graphs(
    tmp_path_factory: pytest.TempPathFactory, graph: tuple[str, list[dict[str, Any]], list[dict[str, Any]]],
    data: st.DataObject, engine: str, fresh_database_url: Callable[[], str | None],
) -> None:  # fmt: skip
    """Any valid graph exported, imported into a fresh store and exported again gives the same snapshot.

    PostgreSQL text cannot hold NUL: there a node with one anywhere is refused whole, with a
    message that says so, and nothing is written.
    """
    agent, nodes, _ = graph
    root = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))
    with MemoryStore.open(root / "source", database_url=fresh_database_url()) as source, \
            MemoryStore.open(root / "copy", database_url=fresh_database_url()) as copy:  # fmt: skip
        if engine == "postgres" and holds_nul(nodes):
            with pytest.raises(InvalidInput, match="NUL"):
                source.graph.write(nodes, agent_id=agent)
            assert table_counts(source) == (0, 0)
            return
        ids = source.graph.write(nodes, agent_id=agent).node_ids
        if ids:
            pairs = data.draw(st.lists(st.tuples(st.sampled_from(ids), st.sampled_from(ids)), max_size=10))
            edges = [{"from_id": a, "to_id": b, "label": data.draw(labels), "weight": data.draw(st.floats(-1e6, 1e6)),
                      "metadata": data.draw(json_values)} for a, b in pairs]  # fmt: skip
            source.graph.write(edges=edges, agent_id=agent)
        first = source.graph.export(agent)
        report = copy.graph.import_snapshot(first.model_dump(mode="json"))
        second = copy.graph.export(agent)
    assert comparable(second) == comparable(first)
    assert report.validation.is_valid and report.nodes_imported == len(nodes)


def test_the_fixture_graph_round_trips_through_a_file_and_is_valid(
    store: MemoryStore, other_store: MemoryStore, tmp_path: Path
) -> None:
    """export_to_file → read_snapshot_file → import → export gives alice's graph back, edges included."""
    write_fixture(store)
    store.graph.write_runtime_state("alice", turn_count=2)
    written = store.graph.export_to_file("alice", tmp_path / "out" / "alice.json")
    assert (written.node_count, written.edge_count) == (12, 8)
    report = other_store.graph.import_snapshot(other_store.graph.read_snapshot_file(written.path or ""))
    assert report.validation.is_valid and report.validation.node_count == 12
    assert comparable(other_store.graph.export("alice")) == comparable(store.graph.export("alice"))


def test_export_holds_only_the_agents_nodes_and_edges_among_them(store: MemoryStore) -> None:
    """Bob's snapshot leaves out alice's nodes and bob's edge into alice's graph."""
    write_fixture(store)
    snapshot = store.graph.export("bob")
    assert snapshot.schema_version == "1.0" and snapshot.agent_id == "bob"
    assert {n.id for n in snapshot.nodes} == {nid("bob_ep"), nid("bob_f"), nid("bob_p"), nid("bob_s")}
    assert [(e.source_id, e.target_id, e.edge_type) for e in snapshot.edges] == [
        (nid("bob_f"), nid("bob_ep"), "DERIVED_FROM")
    ]
    assert [n.timestamp for n in snapshot.nodes] == sorted(n.timestamp for n in snapshot.nodes)


# -- strict and permissive import -----------------------------------------------------------------


def dangling_snapshot() -> dict[str, Any]:
    """Two nodes, one good edge and one edge to a node that is nowhere."""
    return {
        "agent_id": "alice", "exported_at": at(0), "schema_version": "1.0",
        "nodes": [node("a", "semantic", {"fact": "a"}, 1), node("b", "episode", {}, 2)],
        "edges": [{"source_id": nid("a"), "target_id": nid("b"), "edge_type": "DERIVED_FROM"},
                  {"source_id": nid("a"), "target_id": nid("ghost"), "edge_type": "DERIVED_FROM", "weight": 0.5}],
    }  # fmt: skip


def test_a_strict_import_with_a_dangling_edge_writes_nothing(store: MemoryStore) -> None:
    """The default import refuses the snapshot whole, naming the edge, and the store is unchanged."""
    store.graph.write([node("keep", "semantic", {"fact": "already here"}, 0)])
    with pytest.raises(NotFound) as caught:
        store.graph.import_snapshot(dangling_snapshot())
    message = str(caught.value)
    assert f"snapshot.edges[1] ({nid('a')} -[DERIVED_FROM]-> {nid('ghost')})" in message
    assert "allow_dangling_edges=true" in message and "Nothing was written" in message
    assert table_counts(store) == (1, 0)
    assert store.graph.get(nid("a")) is None


def test_a_dangling_edge_exists_only_after_a_permissive_import_and_validate_reports_it(store: MemoryStore) -> None:
    """allow_dangling_edges loads the edge; validate lists it and is_valid turns true once the node exists."""
    report = store.graph.import_snapshot(dangling_snapshot(), allow_dangling_edges=True)
    assert (report.nodes_imported, report.edges_imported) == (2, 2)
    validation = report.validation
    assert not validation.is_valid and validation.dangling_edge_count == 1
    assert [(e.source_id, e.target_id, e.edge_type, e.weight) for e in validation.dangling_edges] == [
        (nid("a"), nid("ghost"), "DERIVED_FROM", 0.5)
    ]
    assert store.graph.validate().dangling_edge_count == 1
    with pytest.raises(store.db.IntegrityError), store.db.write() as conn:  # the engine's checks are back on
        conn.execute("INSERT INTO graph_edges (from_id, to_id, label, agent_id) VALUES (?, ?, 'L', 'alice')",
                     (nid("b"), nid("ghost")))  # fmt: skip
    with pytest.raises(NotFound):
        store.graph.add_edge(nid("b"), nid("ghost"), "L")
    store.graph.write([node("ghost", "semantic", {"fact": "found"}, 3)])
    assert store.graph.validate("alice").is_valid


def test_an_edge_whose_source_is_missing_is_still_reported_for_the_importing_agent(store: MemoryStore) -> None:
    """Dangling edges are attributed to the snapshot's agent even when neither end exists."""
    snapshot = {"agent_id": "carol", "schema_version": "1.0", "nodes": [],
                "edges": [{"source_id": nid("x"), "target_id": nid("y"), "edge_type": "L"}]}  # fmt: skip
    store.graph.import_snapshot(snapshot, allow_dangling_edges=True)
    assert store.graph.validate("carol").dangling_edge_count == 1
    assert store.graph.validate("alice").dangling_edge_count == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema_version": "2.0"}, "snapshot schema_version '2.0' is not supported; this server reads '1.0'"),
        ({"schema_version": None}, "snapshot schema_version None is not supported"),
        ({"agent_id": "no spaces please"}, "snapshot.agent_id='no spaces please' is not an agent id"),
        ({"exported_at": "last week"}, "snapshot.exported_at='last week' is not an RFC 3339 timestamp"),
        ({"extra": 1}, "snapshot has unknown field(s) ['extra']"),
        ({"nodes": [node("a", "semantic", {"fact": "a"}, 1, agent="bob")]},
         "snapshot.nodes[0].agent_id='bob' differs from snapshot.agent_id='alice'"),
        ({"nodes": [{"node_type": "semantic", "payload": {}}]}, "snapshot.nodes[0].payload.fact: required"),
        ({"edges": [{"source_id": "bad", "target_id": nid("b"), "edge_type": "L"}]},
         "snapshot.edges[0].from_id='bad' is not a node id"),
        ({"edges": [{"source_id": nid("a"), "from_id": nid("a"), "target_id": nid("b"), "edge_type": "L"}]},
         "gives both from_id and source_id"),
    ],
)  # fmt: skip
def test_malformed_snapshots_are_refused_and_nothing_is_written(
    store: MemoryStore, change: dict[str, Any], message: str
) -> None:
    """Bad versions, agents, nodes and edges fail the import before anything is stored."""
    snapshot = {**dangling_snapshot(), "edges": [], **change}
    with pytest.raises(InvalidInput) as caught:
        store.graph.import_snapshot(snapshot, allow_dangling_edges=True)
    assert message in str(caught.value)
    assert table_counts(store) == (0, 0)


def test_import_refuses_to_take_over_another_agents_node(store: MemoryStore) -> None:
    """A snapshot node whose id is bob's in this store is a conflict; nothing is imported."""
    store.graph.write([node("a", "semantic", {"fact": "bob's"}, 0, agent="bob")])
    with pytest.raises(Conflict, match="belongs to agent 'bob', not 'alice'"):
        store.graph.import_snapshot({**dangling_snapshot(), "edges": []})
    assert table_counts(store) == (1, 0)


def test_ainl_memory_snapshots_with_legacy_names_are_accepted(store: MemoryStore) -> None:
    """ainl's node shape (tagged node_type, importance_score, embedded edges, last_extraction_turn) imports."""
    agent = "ainl-agent"
    episode_id, fact_id = str(uuid.uuid4()), str(uuid.uuid4())
    snapshot = {
        "agent_id": agent, "exported_at": "2026-01-01T00:00:00+00:00", "schema_version": "1.0",
        "nodes": [
            {"id": episode_id, "memory_category": "episodic", "importance_score": 0.9, "agent_id": agent,
             "node_type": {"type": "episode", "turn_id": str(uuid.uuid4()), "timestamp": 1767225600,
                           "tool_calls": ["shell"], "trace_event": {"k": "v"}}, "edges": []},
            {"id": fact_id, "memory_category": "semantic", "agent_id": agent,
             "node_type": {"type": "semantic", "fact": "x", "source_turn_id": str(uuid.uuid4()),
                           "_last_ref_snapshot": 2},
             "edges": [{"target_id": episode_id, "label": "DERIVED_FROM"}]},
            {"id": runtime_state_id(agent), "memory_category": "runtime_state", "agent_id": agent,
             "node_type": {"type": "runtime_state", "runtime_state": {
                 "agent_id": agent, "turn_count": 9, "last_extraction_turn": 6,
                 "last_persona_prompt": None, "updated_at": "2026-01-01T00:00:00Z"}}},
        ],
        "edges": [{"source_id": fact_id, "target_id": episode_id, "edge_type": "DERIVED_FROM", "weight": 1.0,
                   "metadata": None}],
    }  # fmt: skip
    report = store.graph.import_snapshot(snapshot)
    assert report.validation.is_valid and report.validation.edge_count == 1
    episode = store.graph.get(episode_id)
    assert episode is not None and episode.importance == 0.9
    assert episode.timestamp == "2026-01-01T00:00:00.000000Z" and episode.payload["trace_event"] == {"k": "v"}
    assert store.graph.get(fact_id).payload["_last_ref_snapshot"] == 2  # type: ignore[union-attr]
    state = store.graph.read_runtime_state(agent)
    assert state is not None and (state.turn_count, state.last_extraction_at_turn) == (9, 6)
    assert [n.id for n in store.graph.lineage(fact_id, agent)] == [episode_id]


# -- validation -----------------------------------------------------------------------------------


def test_validate_counts_nodes_edges_cross_agent_edges_and_orphans(store: MemoryStore) -> None:
    """The report of the fixture graph, per agent and for the whole store."""
    write_fixture(store)
    alice = store.graph.validate("alice")
    assert (alice.node_count, alice.edge_count, alice.cross_agent_edges, alice.dangling_edge_count) == (11, 9, 1, 0)
    assert alice.orphan_nodes == [nid("p2"), nid("s2"), nid("s3")] and alice.is_valid
    assert len(alice.cross_agent_boundary_edges) == 1 and alice.dangling_edge_details == alice.dangling_edges
    bob = store.graph.validate("bob")
    assert (bob.node_count, bob.edge_count, bob.cross_agent_edges) == (4, 2, 1)
    assert bob.orphan_nodes == [nid("bob_p"), nid("bob_s")]
    whole = store.graph.validate()
    assert (whole.agent_id, whole.node_count, whole.edge_count, whole.cross_agent_edges) == (None, 16, 10, 1)
    assert whole.orphan_node_count == 6 and not whole.truncated
    sample = store.graph.validate(sample_limit=2)
    assert sample.orphan_nodes == [nid("global_f"), nid("bob_p")] and sample.truncated


def test_an_edge_between_two_nodes_of_the_batch_and_the_store_is_valid(store: MemoryStore) -> None:
    """Edges may join a new node to a stored one in the same write."""
    store.graph.write([node("old", "semantic", {"fact": "old"}, 0)])
    store.graph.write([node("new", "semantic", {"fact": "new"}, 1)], [edge("new", "old", "DERIVED_FROM")])
    assert store.graph.validate("alice").is_valid and store.graph.validate("alice").orphan_node_count == 0
