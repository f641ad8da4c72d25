"""The rows of an ainl-memory database: a foreign SQLite file, read-only, whatever engine the store runs on.

The ainl-memory crate keeps its graph in a SQLite file of its own (``ainl_graph_nodes``,
``ainl_graph_edges``). Reading that file is a SQLite matter, so it lives here; what the
rows mean (agents, snapshots, dangling legacy rows) is ``core/graph/ainl_db.py``'s.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import InvalidInput, StorageError

__all__ = ["AinlTables", "read_ainl_tables"]


@dataclass(frozen=True)
class AinlTables:
    """The graph rows of an ainl-memory database, as stored."""

    nodes: list[tuple[Any, Any, Any]]
    """``(id, node_type, payload)`` per node, oldest first (then by id)."""
    edges: list[dict[str, Any]]
    """``from_id``, ``to_id``, ``label`` and, where the table has them and they are not NULL, ``weight``
    and ``metadata`` (as stored: text), ordered by ``(from_id, to_id, label)``; empty without an edges table."""
    legacy_edges: bool
    """The edges table has no foreign keys (the crate's pre-migration layout)."""


def read_ainl_tables(source: Path) -> AinlTables:
    """Every node and edge row of the ainl-memory database at ``source``; the file is opened read-only.

    Raises:
        StorageError: the file cannot be opened.
        InvalidInput: it is not a SQLite database, or has no ``ainl_graph_nodes`` table.
    """
    try:
        conn = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open {source} read-only: {exc}") from None
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "ainl_graph_nodes" not in tables:
            raise InvalidInput(
                f"{source} has no ainl_graph_nodes table; it is not an ainl-memory database (tables: {sorted(tables)})"
            )
        nodes = [
            (row[0], row[1], row[2])
            for row in conn.execute("SELECT id, node_type, payload FROM ainl_graph_nodes ORDER BY timestamp, id")
        ]
        has_edges = "ainl_graph_edges" in tables
        legacy = has_edges and not conn.execute("PRAGMA foreign_key_list(ainl_graph_edges)").fetchall()
        edges = _edges(conn) if has_edges else []
    except sqlite3.DatabaseError as exc:
        raise InvalidInput(f"{source} is not a readable SQLite database: {exc}") from None
    finally:
        conn.close()
    return AinlTables(nodes=nodes, edges=edges, legacy_edges=legacy)


def _edges(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    columns = {r[1] for r in conn.execute("PRAGMA table_info(ainl_graph_edges)")}
    extra = [c for c in ("weight", "metadata") if c in columns]
    select = ", ".join(["from_id", "to_id", "label", *extra])
    edges = []
    for row in conn.execute(f"SELECT {select} FROM ainl_graph_edges ORDER BY from_id, to_id, label"):
        edge: dict[str, Any] = {"from_id": row[0], "to_id": row[1], "label": row[2]}
        edge.update({name: value for name, value in zip(extra, row[3:], strict=True) if value is not None})
        edges.append(edge)
    return edges
