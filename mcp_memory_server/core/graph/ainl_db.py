"""Reading an ainl-memory SQLite database (``ainl_graph_nodes``, ``ainl_graph_edges``) as snapshots.

The crate keeps each node as the serde JSON of ``AinlMemoryNode`` in ``payload``, and edges
as ``(from_id, to_id, label[, weight, metadata])`` rows. Older databases have an edges table
without foreign keys; the crate drops its dangling rows when it migrates such a table, and
so does this reader (they are counted in the report). The database is opened read-only and
never changed; reading its rows is SQLite's part (``storage/sqlite/ainl_reader.py``), what
they mean is this module's.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import InvalidInput, NotFound
from ...storage.sqlite.ainl_reader import read_ainl_tables
from .nodes import check_agent_id
from .records import SNAPSHOT_SCHEMA_VERSION

__all__ = ["AinlDatabase", "read_ainl_database"]


@dataclass
class AinlDatabase:
    """What an ainl-memory database holds, grouped into one snapshot per agent."""

    snapshots: dict[str, dict[str, Any]]
    legacy_edges: bool
    """The edges table has no foreign keys (the crate's pre-migration layout)."""
    dropped_dangling_edges: list[dict[str, str]] = field(default_factory=list)
    """Legacy rows whose source or target node does not exist, dropped as the crate's migration does."""
    cross_agent_boundary_edges: list[dict[str, str]] = field(default_factory=list)
    """Edges between two agents' nodes: not imported, since every graph write is scoped to one agent."""


def read_ainl_database(path: str | os.PathLike[str], *, agent_id: str | None = None) -> AinlDatabase:
    """Every node and edge of the database at ``path`` (only ``agent_id``'s when given).

    A node without an ``agent_id`` in its payload belongs to ``agent_id`` when given, else
    to the global graph (``""``).

    Raises:
        NotFound: no file at ``path``. InvalidInput: it is not an ainl-memory database or a payload is not JSON.
    """
    source = Path(path).expanduser()
    if not source.is_file():
        raise NotFound(f"no ainl-memory database at {source}; give the path of its SQLite file")
    wanted = check_agent_id(agent_id, field="agent_id") if agent_id is not None else None
    tables = read_ainl_tables(source)
    nodes = _nodes(tables.nodes, source, wanted)
    legacy = tables.legacy_edges
    rows = [_edge(edge) for edge in tables.edges]

    owner = {node["id"]: node["agent_id"] for node in nodes}
    result = AinlDatabase(snapshots={}, legacy_edges=legacy)
    for node in nodes:
        _snapshot(result, node["agent_id"])["nodes"].append(node)
    for edge in rows:
        ends = (owner.get(edge["from_id"]), owner.get(edge["to_id"]))
        brief = {k: edge[k] for k in ("from_id", "to_id", "label")}
        if legacy and None in ends and wanted is None:
            result.dropped_dangling_edges.append(brief)
        elif None not in ends and ends[0] != ends[1]:
            result.cross_agent_boundary_edges.append(brief)
        elif ends[0] is not None or ends[1] is not None:
            # An edge of this agent's graph; a missing end is judged by the import's dangling-edge rules.
            _snapshot(result, ends[0] if ends[0] is not None else str(ends[1]))["edges"].append(edge)
        elif not legacy:
            # Both ends missing in a table with foreign keys: only a forced write makes this; keep it visible.
            _snapshot(result, wanted or "")["edges"].append(edge)
    return result


def _nodes(rows: list[tuple[Any, Any, Any]], source: Path, wanted: str | None) -> list[dict[str, Any]]:
    nodes = []
    for row_id, node_type, payload in rows:
        try:
            node = json.loads(payload)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"{source}: node {row_id!r} has a payload that is not JSON ({exc})") from None
        except RecursionError:
            raise InvalidInput(f"{source}: node {row_id!r} has a payload nested too deeply to be a node") from None
        if not isinstance(node, dict):
            raise InvalidInput(f"{source}: node {row_id!r} has a payload that is not a JSON object")
        node.setdefault("id", row_id)
        node.setdefault("node_type", {"type": node_type})
        node_agent = node.get("agent_id") or (wanted if wanted is not None else "")
        if wanted is not None and node_agent != wanted:
            continue
        node["agent_id"] = node_agent
        # Embedded edges are the same edges as the table's rows; the table is the one source here.
        node.pop("edges", None)
        nodes.append(node)
    return nodes


def _edge(row: dict[str, Any]) -> dict[str, Any]:
    edge = dict(row)
    metadata = edge.get("metadata")
    if isinstance(metadata, str):
        # Free-text metadata is kept as written, and so is text nested too deeply to parse.
        with contextlib.suppress(ValueError, RecursionError):
            metadata = json.loads(metadata)
        if metadata is None:  # the text "null": no metadata, as a NULL column is
            del edge["metadata"]
        else:
            edge["metadata"] = metadata
    return edge


def _snapshot(result: AinlDatabase, agent: str) -> dict[str, Any]:
    if agent not in result.snapshots:
        result.snapshots[agent] = {
            "agent_id": agent, "exported_at": None, "schema_version": SNAPSHOT_SCHEMA_VERSION, "nodes": [], "edges": [],
        }  # fmt: skip
    return result.snapshots[agent]
