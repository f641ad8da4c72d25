"""SQLite tables of graph: the migrations that create and upgrade them."""

from __future__ import annotations

from ...engine import Migration
from .search import index_source

MIGRATIONS: list[Migration] = [
    (
        "graph",
        1,
        """
        CREATE TABLE graph_nodes (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            agent_id TEXT NOT NULL,
            node_type TEXT NOT NULL,
            importance REAL NOT NULL DEFAULT 0.5,
            payload TEXT NOT NULL,
            timestamp TEXT NOT NULL,
            text TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX graph_nodes_agent_type ON graph_nodes (agent_id, node_type, timestamp);
        CREATE INDEX graph_nodes_agent_time ON graph_nodes (agent_id, timestamp);
        -- agent_id: the graph an edge was written into (its source's agent, or the importing snapshot's),
        -- so an edge whose source is missing still belongs somewhere for graph_validate.
        CREATE TABLE graph_edges (
            from_id TEXT NOT NULL REFERENCES graph_nodes (id) ON DELETE CASCADE,
            to_id TEXT NOT NULL REFERENCES graph_nodes (id) ON DELETE CASCADE,
            label TEXT NOT NULL,
            weight REAL NOT NULL DEFAULT 1.0,
            metadata TEXT,
            agent_id TEXT NOT NULL,
            PRIMARY KEY (from_id, to_id, label)
        ) WITHOUT ROWID;
        CREATE INDEX graph_edges_to ON graph_edges (to_id, label);
        CREATE INDEX graph_edges_agent ON graph_edges (agent_id);
        """,
    ),
    # A node's searchable text (its type fields, see nodes.node_text) in the store-wide search index.
    index_source(
        "search_graph",
        source="graph",
        table="graph_nodes",
        key="id",
        text="{row}.text",
        meta="{row}.node_type",
        columns=("text",),
    ),
]
