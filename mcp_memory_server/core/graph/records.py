"""Records the graph returns to Python callers and, unchanged, to MCP clients (output schemas)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "SNAPSHOT_SCHEMA_VERSION",
    "GraphEdge",
    "GraphExportResult",
    "GraphImportReport",
    "GraphNode",
    "GraphQueryResult",
    "GraphSnapshot",
    "GraphValidationReport",
    "GraphWriteResult",
    "NodeType",
    "RuntimeState",
    "SnapshotEdge",
]

SNAPSHOT_SCHEMA_VERSION = "1.0"

NodeType = Literal["episode", "semantic", "procedural", "persona", "runtime_state"]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class GraphNode(_Record):
    """One typed memory node; ``payload`` holds the type's fields (ainl-memory names)."""

    id: str = Field(description="node_<ULID> or a UUID (ainl-memory ids)")
    agent_id: str = Field(description='owning agent; "" is the global graph')
    node_type: NodeType
    importance: float = 0.5
    payload: dict[str, Any] = Field(description="the node type's fields, validated and with defaults filled in")
    timestamp: str = Field(description="RFC 3339 UTC; for episodes, when the turn happened")


class GraphEdge(_Record):
    """A directed, labelled edge; ``(from_id, to_id, label)`` is unique."""

    from_id: str
    to_id: str
    label: str
    weight: float = 1.0
    metadata: Any = None


class SnapshotEdge(_Record):
    """An edge in a snapshot, named the way ainl-memory exports it."""

    source_id: str
    target_id: str
    edge_type: str
    weight: float = 1.0
    metadata: Any = None


class GraphSnapshot(_Record):
    """One agent's subgraph: its nodes and the edges between them."""

    agent_id: str
    exported_at: str
    schema_version: str = SNAPSHOT_SCHEMA_VERSION
    nodes: list[GraphNode]
    edges: list[SnapshotEdge]


class GraphWriteResult(_Record):
    node_ids: list[str] = Field(description="ids of the written nodes, in input order (generated where omitted)")
    created: int = Field(description="nodes that did not exist before")
    updated: int = Field(description="existing nodes replaced")
    edges_written: int = Field(description="edges inserted or updated (embedded and top-level)")


class GraphValidationReport(_Record):
    """Structural health of one agent's graph (or the whole store when ``agent_id`` is null)."""

    agent_id: str | None
    node_count: int
    edge_count: int = Field(description="edges with at least one endpoint in the checked graph, or owned by it")
    dangling_edges: list[SnapshotEdge] = Field(description="edges whose source or target node does not exist")
    dangling_edge_count: int
    cross_agent_edges: int = Field(description="edges joining nodes of two different agents")
    cross_agent_boundary_edges: list[SnapshotEdge] = Field(
        [], description="those edges (ainl-memory's cross_agent_boundary_edges)"
    )
    orphan_nodes: list[str] = Field(description="ids of nodes without any edge")
    orphan_node_count: int
    is_valid: bool = Field(description="true when no edge dangles")
    truncated: bool = Field(default=False, description="true when the id lists were cut to sample_limit entries")

    @property
    def dangling_edge_details(self) -> list[SnapshotEdge]:
        """ainl-memory's name for ``dangling_edges``."""
        return self.dangling_edges


class GraphImportReport(_Record):
    agent_id: str
    nodes_imported: int
    edges_imported: int
    allow_dangling_edges: bool
    validation: GraphValidationReport = Field(description="graph_validate for the agent after the import")


class GraphExportResult(_Record):
    agent_id: str
    node_count: int
    edge_count: int
    snapshot: GraphSnapshot | None = Field(default=None, description="the snapshot, unless it was written to path")
    path: str | None = Field(default=None, description="the server-local file the snapshot was written to")


class RuntimeState(_Record):
    """An agent's persisted session counters (one node per agent, id = UUIDv5 of the agent id)."""

    node_id: str
    agent_id: str
    turn_count: int = 0
    last_extraction_at_turn: int = 0
    persona_snapshot: str | None = None
    updated_at: str


class GraphQueryResult(_Record):
    op: str
    agent_id: str
    nodes: list[GraphNode] = []
    edges: list[GraphEdge] = Field(default=[], description="for neighbors and lineage: the edges that were followed")
    scores: list[float] | None = Field(default=None, description="for search: one relevance score per node")
    count: int
    next_cursor: str | None = Field(default=None, description="pass as cursor for the next page; null on the last page")
    mode: str | None = Field(default=None, description="for search: the mode actually used")
    warning: str | None = None


class AinlEdgeRef(_Record):
    from_id: str
    to_id: str
    label: str


class AinlDatabaseImportReport(_Record):
    """The result of importing an ainl-memory SQLite database (one snapshot import per agent)."""

    source: str
    legacy_edges: bool = Field(description="the edges table had no foreign keys (the crate's old layout)")
    agents: list[GraphImportReport] = Field(description="one import report per agent found")
    dropped_dangling_edges: list[AinlEdgeRef] = Field(
        description="legacy edge rows whose node is missing, dropped as the crate's own migration does"
    )
    cross_agent_boundary_edges: list[AinlEdgeRef] = Field(
        description="edges between two agents' nodes, not imported: graph writes are scoped to one agent"
    )
