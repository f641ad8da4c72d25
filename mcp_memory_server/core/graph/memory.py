"""Typed graph memory: what an agent did, learned, how it behaves and who it is, as one graph.

An edge references its two nodes, checked by the engine (foreign keys with ``ON DELETE
CASCADE`` on SQLite, their trigger equivalent on PostgreSQL), so an edge cannot point at a
missing node except after a permissive import, which switches the checks off for that one
transaction; :meth:`GraphMemory.validate` then reports what dangles.
Every query is scoped to one agent (``""`` is the global graph) and never crosses into
another agent's nodes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from ...config import home_dir
from ...errors import AccessDenied, Conflict, InvalidInput, NotFound, StorageError
from ...ids import parse_timestamp, utc_now
from ...storage.engine import Connection
from ...storage.staging import StagingLedger
from .. import _validate as check
from .._context import StoreContext
from ..local_paths import FileWriter, LocalAccess
from ..search import ProgressFn as SearchProgressFn
from ..search import SearchIndex, SourceFilter
from .ainl_db import read_ainl_database
from .nodes import (
    NODE_TYPES,
    EdgeRow,
    NodeRow,
    RuntimeStatePayload,
    check_agent_id,
    check_label,
    check_node_id,
    parse_edge,
    parse_node,
    runtime_state_id,
)
from .records import (
    SNAPSHOT_SCHEMA_VERSION,
    AinlDatabaseImportReport,
    AinlEdgeRef,
    GraphEdge,
    GraphExportResult,
    GraphImportReport,
    GraphNode,
    GraphQueryResult,
    GraphSnapshot,
    GraphValidationReport,
    GraphWriteResult,
    RuntimeState,
    SnapshotEdge,
)

__all__ = ["LINEAGE_LABELS", "MAX_LINEAGE_DEPTH", "QUERY_OPS", "GraphMemory", "ProgressFn"]

ProgressFn = Callable[[int, int | None], None]
"""Called with (items done, items total)."""

LINEAGE_LABELS = ("DERIVED_FROM", "CAUSED_PATCH")
MAX_LINEAGE_DEPTH = 20
_CHUNK = 500  # ids per IN (…) list, well under every engine's limit on parameters

_NODE_COLUMNS = "n.id, n.agent_id, n.node_type, n.importance, n.payload, n.timestamp"
_NEWEST_FIRST = " ORDER BY n.timestamp DESC, n.id DESC"
_UPSERT_NODE = (
    "INSERT INTO graph_nodes (id, agent_id, node_type, importance, payload, timestamp, text)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET importance = excluded.importance, payload = excluded.payload,"
    " timestamp = excluded.timestamp"
)
# Separate, and only when the text changed: an update of text re-indexes (and re-embeds) the node.
_UPDATE_TEXT = "UPDATE graph_nodes SET text = ? WHERE id = ? AND text != ?"
_UPSERT_EDGE = (
    "INSERT INTO graph_edges (from_id, to_id, label, weight, metadata, agent_id) VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (from_id, to_id, label) DO UPDATE SET weight = excluded.weight, metadata = excluded.metadata"
)

# op → (required arguments, optional arguments); every op also takes limit and cursor.
QUERY_OPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "recent_episodes": ((), ()),
    "since": (("since",), ("node_type",)),
    "neighbors": (("node_id",), ("label", "direction")),
    "lineage": (("node_id",), ("depth",)),
    "by_tag": (("tag",), ()),
    "by_topic_cluster": (("cluster",), ()),
    "pattern_by_name": (("name",), ()),
    "active_patches": ((), ()),
    "successful_episodes": ((), ()),
    "episodes_with_tool": (("tool",), ()),
    "evolved_persona": ((), ()),
    "runtime_state": ((), ()),
    "search": (("query",), ("mode", "node_type")),
    # ainl-memory's per-family listings and its subgraph query.
    "episodes": ((), ()),
    "semantic_nodes": ((), ()),
    "procedural_nodes": ((), ()),
    "persona_nodes": ((), ()),
    "subgraph_edges": (("node_ids",), ("label",)),
}
_FAMILY_OPS = {"episodes": "episode", "semantic_nodes": "semantic", "procedural_nodes": "procedural",
               "persona_nodes": "persona"}  # fmt: skip


# Rows were validated on the way in, so reading them back skips validation (it dominated export time).


def _node(row: Sequence[Any]) -> GraphNode:
    return GraphNode.model_construct(id=row[0], agent_id=row[1], node_type=row[2], importance=row[3],
                                     payload=json.loads(row[4]), timestamp=row[5])  # fmt: skip


def _edge(from_id: str, to_id: str, label: str, weight: float, metadata: str | None) -> GraphEdge:
    return GraphEdge.model_construct(from_id=from_id, to_id=to_id, label=label, weight=weight,
                                     metadata=None if metadata is None else json.loads(metadata))  # fmt: skip


def _snapshot_edge(row: Sequence[Any]) -> SnapshotEdge:
    return SnapshotEdge.model_construct(source_id=row[0], target_id=row[1], edge_type=row[2], weight=row[3],
                                        metadata=None if row[4] is None else json.loads(row[4]))  # fmt: skip


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _marks(items: Sequence[str]) -> str:
    return ",".join("?" * len(items))


def _agent_end(end: str) -> str:
    """Edge ``e``'s ``end`` column names a node of the agent given as the one parameter.

    A correlated EXISTS keeps the edges the outer loop on both engines; as a join, SQLite
    (which has no statistics here) may scan all the agent's nodes instead.
    """
    return f"EXISTS (SELECT 1 FROM graph_nodes n WHERE n.id = e.{end} AND n.agent_id = ?)"


class GraphMemory:
    """The typed graph of one data directory. Get it as ``MemoryStore.graph``."""

    def __init__(self, ctx: StoreContext, *, search: SearchIndex | None = None) -> None:
        self._ctx = ctx
        self._db = ctx.db
        self._config = ctx.config
        self._search = search

    # -- writing ---------------------------------------------------------------------------------

    def write(
        self,
        nodes: Sequence[Mapping[str, Any] | GraphNode] | None = None,
        edges: Sequence[Mapping[str, Any] | GraphEdge] | None = None,
        *,
        agent_id: str = "",
    ) -> GraphWriteResult:
        """Upsert nodes (with their embedded ``edges``) and edges in one transaction.

        The whole write fails, and nothing is stored, if any edge's source or target is
        neither in this batch nor already in the store. ``agent_id`` is the default for
        nodes that do not name one. Existing edges of an upserted node are kept.

        Edges are written as an agent: one embedded in a node, or in ``edges`` from a node
        of this batch, as that node's agent; any other as ``agent_id``. Both ends must be
        that agent's nodes, so one agent cannot rewrite or add edges in another's graph.

        Raises:
            InvalidInput / LimitExceeded: a node or edge is malformed (the message names which).
            NotFound: an edge endpoint does not exist.
            Conflict: an id belongs to another agent or to a node of another type, or an
                edge touches a node of an agent other than the one writing it.
        """
        node_rows, edge_rows, writers = self._parse_batch(nodes, edges, check_agent_id(agent_id), where="")
        with self._db.write() as conn:
            created = self._apply(conn, node_rows, edge_rows, writers, check_endpoints=True)
        return GraphWriteResult(node_ids=[row.id for row in node_rows], created=created,
                                updated=len(node_rows) - created, edges_written=len(edge_rows))  # fmt: skip

    def upsert_node(self, node: Mapping[str, Any] | GraphNode, *, agent_id: str = "") -> GraphNode:
        """Insert or replace one node (and its embedded edges); returns the node as stored.

        Raises:
            InvalidInput / NotFound / Conflict: as :meth:`write`.
        """
        (row,), edge_rows, writers = self._parse_batch([node], None, check_agent_id(agent_id), where="")
        with self._db.write() as conn:
            self._apply(conn, [row], edge_rows, writers, check_endpoints=True)
        return row.record()

    def add_edge(self, from_id: str, to_id: str, label: str, *, weight: float = 1.0, metadata: Any = None) -> GraphEdge:
        """Insert (or update the weight and metadata of) one edge after checking both nodes exist.

        The edge is written as the source node's agent, so the target must be that agent's too.

        Raises:
            InvalidInput: an id or the label is malformed.
            NotFound: the source or target node does not exist.
            Conflict: the target belongs to another agent than the source.
        """
        edge = parse_edge({"from_id": from_id, "to_id": to_id, "label": label, "weight": weight,
                           "metadata": metadata}, where="edge", config=self._config)  # fmt: skip
        with self._db.write() as conn:
            self._apply(conn, [], [edge], [None], check_endpoints=True)
        return edge.record()

    def delete_nodes(self, node_ids: Sequence[str], *, agent_id: str | None = None) -> int:
        """Delete nodes (their edges go with them); returns how many existed.

        With ``agent_id`` only that agent's nodes are deleted.
        """
        ids = [check_node_id(node_id, field="node_ids entry") for node_id in node_ids]
        scope, params = ("", []) if agent_id is None else (" AND agent_id = ?", [check_agent_id(agent_id)])
        deleted = 0
        with self._db.write() as conn:
            for chunk in _chunks(ids):
                deleted += conn.execute(f"DELETE FROM graph_nodes WHERE id IN ({_marks(chunk)}){scope}",
                                        [*chunk, *params]).rowcount  # fmt: skip
        return deleted

    def _parse_batch(
        self,
        nodes: Sequence[Any] | None,
        edges: Sequence[Any] | None,
        default_agent: str,
        *,
        where: str,
    ) -> tuple[list[NodeRow], list[EdgeRow], list[str | None]]:
        """The checked nodes, edges, and for each edge the agent writing it."""
        for name, items in (("nodes", nodes), ("edges", edges)):
            if items is not None and (isinstance(items, str | bytes | Mapping) or not isinstance(items, Sequence)):
                raise InvalidInput(f"{where}{name} must be a list of objects")
        node_rows: list[NodeRow] = []
        edge_rows: list[EdgeRow] = []
        writers: list[str | None] = []
        first_index: dict[str, int] = {}
        for index, raw in enumerate(nodes or ()):
            row, embedded = parse_node(raw, where=f"{where}nodes[{index}]", default_agent=default_agent,
                                       config=self._config)  # fmt: skip
            if row.id in first_index:
                raise InvalidInput(
                    f"{where}nodes[{index}] repeats the id {row.id} of {where}nodes[{first_index[row.id]}]; "
                    "give each node once per write"
                )
            first_index[row.id] = index
            node_rows.append(row)
            edge_rows.extend(embedded)
            writers.extend([row.agent_id] * len(embedded))
        # A call speaks for its agent_id, and for the agent a node it writes names: an edge from
        # such a node is written as that node's agent.
        batch_agent = {row.id: row.agent_id for row in node_rows}
        for index, raw in enumerate(edges or ()):
            edge = parse_edge(raw, where=f"{where}edges[{index}]", config=self._config)
            edge_rows.append(edge)
            writers.append(batch_agent.get(edge.from_id, default_agent))
        return node_rows, edge_rows, writers

    def _apply(
        self,
        conn: Connection,
        nodes: Sequence[NodeRow],
        edges: Sequence[EdgeRow],
        writers: Sequence[str | None],
        *,
        check_endpoints: bool,
        missing_hint: str = "write that node first, or in the same call",
        progress: ProgressFn | None = None,
    ) -> int:
        """Write checked rows inside the caller's transaction; returns how many nodes are new."""
        existing = self._owners(conn, [row.id for row in nodes])
        for row in nodes:
            old = existing.get(row.id)
            if old is None:
                continue
            if old[0] != row.agent_id:
                raise Conflict(
                    f"node {row.id} belongs to agent {old[0]!r}, not {row.agent_id!r}; nodes do not move between "
                    "agents, write a new node instead"
                )
            if old[1] != row.node_type:
                raise Conflict(
                    f"node {row.id} is a {old[1]} node and cannot become a {row.node_type} node; "
                    "use a new id (or delete the old node first)"
                )
        owner = {row.id: row.agent_id for row in nodes}
        endpoints = sorted({end for edge in edges for end in (edge.from_id, edge.to_id)} - owner.keys())
        owner.update({node_id: found[0] for node_id, found in self._owners(conn, endpoints).items()})
        if check_endpoints:
            for edge in edges:
                for role, end in (("from_id", edge.from_id), ("to_id", edge.to_id)):
                    if end not in owner:
                        raise NotFound(
                            f"{edge.where} ({edge.from_id} -[{edge.label}]-> {edge.to_id}): {role} {end} is not a "
                            f"node in this store; {missing_hint}. Nothing was written"
                        )
        # None: written as the source node's agent (add_edge); a missing source leaves the target's.
        agents = [
            w if w is not None else owner.get(e.from_id, owner.get(e.to_id, ""))
            for e, w in zip(edges, writers, strict=True)
        ]
        self._check_edge_scope(conn, edges, agents, owner)
        total = len(nodes) + len(edges)
        done = 0
        node_params = [(r.id, r.agent_id, r.node_type, r.importance, r.payload_json, r.timestamp, r.text)
                       for r in nodes]  # fmt: skip
        edge_params = [(e.from_id, e.to_id, e.label, e.weight, e.metadata_json, writer)
                       for e, writer in zip(edges, agents, strict=True)]  # fmt: skip
        try:
            for sql, params in ((_UPSERT_NODE, node_params), (_UPSERT_EDGE, edge_params)):
                for start in range(0, len(params), 5000):
                    batch = params[start : start + 5000]
                    conn.executemany(sql, batch)
                    done += len(batch)
                    if progress is not None:
                        progress(done, total)
            conn.executemany(_UPDATE_TEXT, [(r.text, r.id, r.text) for r in nodes if r.id in existing])
        except self._db.IntegrityError as exc:  # the foreign keys caught what the check above did not
            raise NotFound(f"an edge points at a node that does not exist ({exc}); nothing was written") from None
        return sum(1 for row in nodes if row.id not in existing)

    @staticmethod
    def _check_edge_scope(
        conn: Connection, edges: Sequence[EdgeRow], writers: Sequence[str], owner: Mapping[str, str]
    ) -> None:
        """Raises: Conflict: an edge touches a node, or replaces an edge, of another agent than its writer.

        Queries never cross agents (SPEC §8), so an edge belongs to one agent's graph: the
        agent writing it must own both ends. Refusing (rather than quietly filing the edge
        under the writer) keeps the other agent's weights and metadata exactly as they were.
        """
        for edge, writer in zip(edges, writers, strict=True):
            for role, end in (("from_id", edge.from_id), ("to_id", edge.to_id)):
                found = owner.get(end)
                if found is not None and found != writer:
                    raise Conflict(
                        f"{edge.where} ({edge.from_id} -[{edge.label}]-> {edge.to_id}): {role} {end} is a node of "
                        f"agent {found!r}, and this edge is written as agent {writer!r}; an agent's edges join its "
                        "own nodes. Write it as that agent (agent_id) or link nodes of this agent. Nothing was written"
                    )
            if edge.from_id not in owner or edge.to_id not in owner:
                # A dangling (forensic) edge: the one it replaces must be the writer's too.
                stored = conn.execute(
                    "SELECT agent_id FROM graph_edges WHERE from_id = ? AND to_id = ? AND label = ?",
                    (edge.from_id, edge.to_id, edge.label),
                ).fetchone()
                if stored is not None and stored[0] != writer:
                    raise Conflict(
                        f"{edge.where} ({edge.from_id} -[{edge.label}]-> {edge.to_id}) is an edge of agent "
                        f"{stored[0]!r}, not {writer!r}; it cannot be rewritten as another agent. Nothing was written"
                    )

    def _owners(self, conn: Connection, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """``id → (agent_id, node_type)`` of the given ids that exist."""
        found: dict[str, tuple[str, str]] = {}
        for chunk in _chunks(ids):
            for row in conn.execute(
                f"SELECT id, agent_id, node_type FROM graph_nodes WHERE id IN ({_marks(chunk)})", chunk
            ):
                found[row[0]] = (row[1], row[2])
        return found

    # -- reading ---------------------------------------------------------------------------------

    def _reading(self) -> AbstractContextManager[Connection]:
        """One consistent read snapshot across several statements."""
        return self._db.snapshot()

    def get(self, node_id: str, *, agent_id: str | None = None) -> GraphNode | None:
        """The node with this id (optionally only if it belongs to ``agent_id``), or None."""
        node_id = check_node_id(node_id, field="node_id")
        sql = f"SELECT {_NODE_COLUMNS} FROM graph_nodes n WHERE n.id = ?"
        params = [node_id]
        if agent_id is not None:
            sql += " AND n.agent_id = ?"
            params.append(check_agent_id(agent_id))
        rows = self._db.query(sql, params)
        return _node(rows[0]) if rows else None

    def count(self) -> dict[str, int]:
        row = self._db.query("SELECT (SELECT COUNT(*) FROM graph_nodes), (SELECT COUNT(*) FROM graph_edges)")[0]
        return {"graph_nodes": int(row[0]), "graph_edges": int(row[1])}

    # -- queries ---------------------------------------------------------------------------------

    def query(
        self, op: str, agent_id: str = "", *, progress: SearchProgressFn | None = None, **arguments: Any
    ) -> GraphQueryResult:
        """Run one named query over ``agent_id``'s graph (see :data:`QUERY_OPS` for each op's arguments).

        Lists are newest first (``since`` is oldest first; ``neighbors``, ``lineage`` and
        ``search`` are in their own order) and paginated with ``limit`` and ``cursor``.

        Raises:
            InvalidInput: unknown op, a missing or foreign argument, or a malformed value.
            NotFound: ``node_id`` is not a node of this agent.
        """
        if op not in QUERY_OPS:
            raise InvalidInput(f"op={op!r} is not a graph query; use one of {', '.join(QUERY_OPS)}")
        agent_id = check_agent_id(agent_id)
        required, optional = QUERY_OPS[op]
        given = {name: value for name, value in arguments.items() if value is not None}
        foreign = set(given) - set(required) - set(optional) - {"limit", "cursor"}
        if foreign:
            takes = ", ".join((*required, *optional, "limit", "cursor"))
            raise InvalidInput(f"op={op} does not take {', '.join(sorted(foreign))}; it takes {takes}")
        missing = [name for name in required if name not in given]
        if missing:
            raise InvalidInput(f"op={op} needs {', '.join(missing)}")
        limit = check.limit(given.pop("limit", 50), config=self._config)
        offset = check.decode_cursor(given.pop("cursor", None)) or 0
        if op == "search":
            given["progress"] = progress
        run: Callable[..., GraphQueryResult] = getattr(self, f"_op_{op}")
        return run(agent_id, limit=limit, offset=offset, **given)

    def _page(
        self,
        op: str,
        agent_id: str,
        nodes: list[GraphNode],
        *,
        limit: int,
        offset: int,
        edges: Iterable[GraphEdge] = (),
        **extra: Any,
    ) -> GraphQueryResult:
        """Nodes ``[offset, offset + limit)`` of a list fetched up to one past the page."""
        more = len(nodes) > offset + limit
        page = nodes[offset : offset + limit]
        kept = {node.id for node in page}
        edges = (
            [e for e in edges if e.to_id in kept or e.from_id in kept] if extra.pop("filter_edges", False) else edges
        )
        scores = extra.pop("scores", None)
        if scores is not None:
            scores = scores[offset : offset + limit]
        return GraphQueryResult(
            op=op, agent_id=agent_id, nodes=page, edges=list(edges), scores=scores, count=len(page),
            next_cursor=check.encode_cursor(offset + limit) if more else None, **extra,
        )  # fmt: skip

    def _select(self, where: str, params: Sequence[Any], *, order: str, limit: int, offset: int) -> list[GraphNode]:
        rows = self._db.query(
            f"SELECT {_NODE_COLUMNS} FROM graph_nodes n WHERE {where}{order} LIMIT ? OFFSET 0",
            (*params, offset + limit + 1),
        )
        return [_node(row) for row in rows]

    def _listing(self, op: str, agent_id: str, where: str, params: Sequence[Any], *, limit: int, offset: int,
                 order: str = _NEWEST_FIRST) -> GraphQueryResult:  # fmt: skip
        nodes = self._select(f"n.agent_id = ? AND {where}", (agent_id, *params), order=order, limit=limit,
                             offset=offset)  # fmt: skip
        return self._page(op, agent_id, nodes, limit=limit, offset=offset)

    def _family(self, op: str, agent_id: str, *, limit: int, offset: int) -> GraphQueryResult:
        return self._listing(op, agent_id, "n.node_type = ?", (_FAMILY_OPS[op],), limit=limit, offset=offset)

    def _op_episodes(self, agent_id: str, *, limit: int, offset: int) -> GraphQueryResult:
        return self._family("episodes", agent_id, limit=limit, offset=offset)

    def _op_semantic_nodes(self, agent_id: str, *, limit: int, offset: int) -> GraphQueryResult:
        return self._family("semantic_nodes", agent_id, limit=limit, offset=offset)

    def _op_procedural_nodes(self, agent_id: str, *, limit: int, offset: int) -> GraphQueryResult:
        return self._family("procedural_nodes", agent_id, limit=limit, offset=offset)

    def _op_persona_nodes(self, agent_id: str, *, limit: int, offset: int) -> GraphQueryResult:
        return self._family("persona_nodes", agent_id, limit=limit, offset=offset)

    def _op_subgraph_edges(self, agent_id: str, *, node_ids: Sequence[str], limit: int, offset: int,
                           label: str | None = None) -> GraphQueryResult:  # fmt: skip
        """The agent's nodes among ``node_ids`` and the edges with both ends among them (ainl's subgraph_edges)."""
        if isinstance(node_ids, str) or not isinstance(node_ids, Sequence) or not node_ids:
            raise InvalidInput("node_ids must be a non-empty list of node ids")
        if len(node_ids) > self._config.max_page_size:
            raise InvalidInput(f"node_ids has {len(node_ids)} ids; ask for at most {self._config.max_page_size}")
        ids = sorted({check_node_id(n, field="node_ids entry") for n in node_ids})
        marks = ",".join("?" * len(ids))
        nodes = self._select(f"n.agent_id = ? AND n.id IN ({marks})", (agent_id, *ids), order=" ORDER BY n.id",
                             limit=len(ids), offset=0)  # fmt: skip
        kept = [n.id for n in nodes]
        label_sql, label_params = ("", []) if label is None else (" AND label = ?", [check_label(label, field="label")])
        edges = []
        if kept:
            inner = ",".join("?" * len(kept))
            edges = [
                _edge(*row)
                for row in self._db.query(
                    f"SELECT from_id, to_id, label, weight, metadata FROM graph_edges WHERE from_id IN ({inner})"
                    f" AND to_id IN ({inner}){label_sql} ORDER BY from_id, to_id, label",
                    (*kept, *kept, *label_params),
                )
            ]
        page = edges[offset : offset + limit]
        more = len(edges) > offset + limit
        return GraphQueryResult(op="subgraph_edges", agent_id=agent_id, nodes=nodes, edges=page, count=len(page),
                                next_cursor=check.encode_cursor(offset + limit) if more else None)  # fmt: skip

    def _op_recent_episodes(self, agent_id: str, *, limit: int, offset: int) -> GraphQueryResult:
        return self._listing("recent_episodes", agent_id, "n.node_type = 'episode'", (), limit=limit, offset=offset)

    def _op_since(self, agent_id: str, *, since: str, limit: int, offset: int,
                  node_type: str | None = None) -> GraphQueryResult:  # fmt: skip
        since = parse_timestamp(since, field="since")
        where, params = "n.timestamp >= ?", [since]
        if node_type is not None:
            where += " AND n.node_type = ?"
            params.append(self._node_type(node_type))
        return self._listing("since", agent_id, where, params, limit=limit, offset=offset,
                             order=" ORDER BY n.timestamp, n.id")  # fmt: skip

    def _op_by_tag(self, agent_id: str, *, tag: str, limit: int, offset: int) -> GraphQueryResult:
        check.short(tag, field="tag", max_chars=256)
        tags, tags_params = self._db.dialect.json_array_contains("n.payload", tag, "tags")
        signals, signals_params = self._db.dialect.json_array_contains("n.payload", tag, "persona_signals_emitted")
        return self._listing("by_tag", agent_id, f"({tags} OR {signals})", (*tags_params, *signals_params),
                             limit=limit, offset=offset)  # fmt: skip

    def _op_by_topic_cluster(self, agent_id: str, *, cluster: str, limit: int, offset: int) -> GraphQueryResult:
        check.short(cluster, field="cluster", max_chars=256)
        pattern = "%" + cluster.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        topic, topic_params = self._db.dialect.json_text("n.payload", "topic_cluster")
        # lower() on both sides: SQLite's LIKE ignores ASCII case, PostgreSQL's does not.
        where = f"n.node_type = 'semantic' AND lower({topic}) LIKE lower(?) ESCAPE '\\'"
        return self._listing("by_topic_cluster", agent_id, where, (*topic_params, pattern), limit=limit,
                             offset=offset)  # fmt: skip

    def _op_pattern_by_name(self, agent_id: str, *, name: str, limit: int, offset: int) -> GraphQueryResult:
        check.short(name, field="name", max_chars=512)
        pattern, pattern_params = self._db.dialect.json_text("n.payload", "pattern_name")
        label, label_params = self._db.dialect.json_text("n.payload", "label")
        where = f"n.node_type = 'procedural' AND ({pattern} = ? OR {label} = ?)"
        return self._listing("pattern_by_name", agent_id, where, (*pattern_params, name, *label_params, name),
                             limit=1, offset=0)  # fmt: skip

    def _op_active_patches(self, agent_id: str, *, limit: int, offset: int) -> GraphQueryResult:
        retired, params = self._db.dialect.json_bool("n.payload", "retired")
        where = f"n.node_type = 'procedural' AND COALESCE({retired}, 0) = 0"
        return self._listing("active_patches", agent_id, where, params, limit=limit, offset=offset)

    def _op_successful_episodes(self, agent_id: str, *, limit: int, offset: int) -> GraphQueryResult:
        outcome, params = self._db.dialect.json_text("n.payload", "outcome")
        where = f"n.node_type = 'episode' AND {outcome} = 'success'"
        return self._listing("successful_episodes", agent_id, where, params, limit=limit, offset=offset)

    def _op_episodes_with_tool(self, agent_id: str, *, tool: str, limit: int, offset: int) -> GraphQueryResult:
        check.short(tool, field="tool", max_chars=256)
        invoked, invoked_params = self._db.dialect.json_array_contains("n.payload", tool, "tools_invoked")
        calls, calls_params = self._db.dialect.json_array_contains("n.payload", tool, "tool_calls")
        return self._listing("episodes_with_tool", agent_id, f"n.node_type = 'episode' AND ({invoked} OR {calls})",
                             (*invoked_params, *calls_params), limit=limit, offset=offset)  # fmt: skip

    def _op_evolved_persona(self, agent_id: str, *, limit: int, offset: int) -> GraphQueryResult:
        trait, params = self._db.dialect.json_text("n.payload", "trait_name")
        where = f"n.node_type = 'persona' AND {trait} = 'axis_evolution_snapshot'"
        return self._listing("evolved_persona", agent_id, where, params, limit=1, offset=0)

    def _op_runtime_state(self, agent_id: str, *, limit: int, offset: int) -> GraphQueryResult:
        where = "n.node_type = 'runtime_state' AND n.id = ?"
        return self._listing("runtime_state", agent_id, where, (runtime_state_id(agent_id),), limit=1, offset=0)

    def _start_node(self, agent_id: str, node_id: str) -> str:
        node_id = check_node_id(node_id, field="node_id")
        if self.get(node_id, agent_id=agent_id) is None:
            raise NotFound(f"node {node_id} is not in the graph of agent {agent_id!r}; check node_id and agent_id")
        return node_id

    def _op_neighbors(self, agent_id: str, *, node_id: str, limit: int, offset: int, label: str | None = None,
                      direction: str = "out") -> GraphQueryResult:  # fmt: skip
        node_id = self._start_node(agent_id, node_id)
        if direction not in ("out", "in", "both"):
            raise InvalidInput(f"direction={direction!r} is not valid; use out, in or both")
        label_sql, label_params = (
            ("", []) if label is None else (" AND e.label = ?", [check_label(label, field="label")])
        )
        pairs: list[tuple[GraphEdge, str]] = []
        with self._reading() as conn:
            for near, far in (("from_id", "to_id"), ("to_id", "from_id")):
                if direction == ("in" if near == "from_id" else "out"):
                    continue
                rows = conn.execute(
                    "SELECT e.from_id, e.to_id, e.label, e.weight, e.metadata FROM graph_edges e"
                    f" WHERE e.{near} = ?{label_sql} AND {_agent_end(far)}",
                    (node_id, *label_params, agent_id),
                )
                pairs += [(_edge(*row), row[1] if far == "to_id" else row[0]) for row in rows]
            by_id = {node.id: node for node in self._nodes_by_id(sorted({far_id for _, far_id in pairs}))}
        found = [(edge, by_id[far_id]) for edge, far_id in pairs if far_id in by_id]
        found.sort(key=lambda pair: (-pair[0].weight, pair[0].label, pair[1].id))
        nodes: dict[str, GraphNode] = {}
        for _, node in found:
            nodes.setdefault(node.id, node)
        return self._page("neighbors", agent_id, list(nodes.values()), limit=limit, offset=offset,
                          edges=[edge for edge, _ in found], filter_edges=True)  # fmt: skip

    def _op_lineage(self, agent_id: str, *, node_id: str, limit: int, offset: int,
                    depth: int = MAX_LINEAGE_DEPTH) -> GraphQueryResult:  # fmt: skip
        start = self._start_node(agent_id, node_id)
        if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_LINEAGE_DEPTH:
            raise InvalidInput(f"depth must be an integer from 1 to {MAX_LINEAGE_DEPTH}, got {depth!r}")
        order, edges = self.lineage_ids(agent_id, start, depth=depth)
        nodes = self._nodes_by_id(order[: offset + limit + 1])
        return self._page("lineage", agent_id, nodes, limit=limit, offset=offset, edges=edges, filter_edges=True)

    def lineage_ids(
        self, agent_id: str, start: str, *, depth: int = MAX_LINEAGE_DEPTH
    ) -> tuple[list[str], list[GraphEdge]]:
        """Breadth-first ids reachable from ``start`` over DERIVED_FROM/CAUSED_PATCH, start excluded.

        Within one level, a node's edges are followed by weight (highest first), then label,
        then target id. Each node appears once, so cycles end; at most ``depth`` levels.
        """
        visited = {start}
        order: list[str] = []
        followed: list[GraphEdge] = []
        frontier = [start]
        with self._reading() as conn:
            for _ in range(depth):
                if not frontier:
                    break
                children: dict[str, list[tuple[float, str, str, str | None]]] = {}
                for chunk in _chunks(frontier):
                    rows = conn.execute(
                        "SELECT e.from_id, e.to_id, e.label, e.weight, e.metadata FROM graph_edges e"
                        f" WHERE e.from_id IN ({_marks(chunk)}) AND e.label IN ('DERIVED_FROM', 'CAUSED_PATCH')"
                        f" AND {_agent_end('to_id')}",
                        (*chunk, agent_id),
                    )
                    for row in rows:
                        children.setdefault(row[0], []).append((row[3], row[2], row[1], row[4]))
                next_frontier: list[str] = []
                for parent in frontier:
                    for weight, label, child, metadata in sorted(children.get(parent, ()),
                                                                 key=lambda c: (-c[0], c[1], c[2])):  # fmt: skip
                        if child in visited:
                            continue
                        visited.add(child)
                        order.append(child)
                        next_frontier.append(child)
                        followed.append(_edge(parent, child, label, weight, metadata))
                frontier = next_frontier
        return order, followed

    def _nodes_by_id(self, ids: Sequence[str]) -> list[GraphNode]:
        by_id: dict[str, GraphNode] = {}
        with self._reading() as conn:
            for chunk in _chunks(ids):
                for row in conn.execute(f"SELECT {_NODE_COLUMNS} FROM graph_nodes n WHERE n.id IN ({_marks(chunk)})",
                                        chunk):  # fmt: skip
                    by_id[row[0]] = _node(row)
        return [by_id[i] for i in ids if i in by_id]

    def _op_search(self, agent_id: str, *, query: str, limit: int, offset: int, mode: str = "hybrid",
                   node_type: str | None = None, progress: SearchProgressFn | None = None) -> GraphQueryResult:  # fmt: skip
        if self._search is None:
            raise InvalidInput("this graph was opened without a search index; use MemoryStore.graph")
        where, params = "graph_nodes.agent_id = ?", [agent_id]
        if node_type is not None:
            where += " AND graph_nodes.node_type = ?"
            params.append(self._node_type(node_type))
        ranking = self._search.rank("graph", query, mode=mode, limit=limit, offset=offset, progress=progress,
                                    filter=SourceFilter(table="graph_nodes", on="graph_nodes.id = d.item_id",
                                                       where=where, params=params))  # fmt: skip
        nodes = self._nodes_by_id([item.item_id for item in ranking.items])
        score_of = {item.item_id: item.score for item in ranking.items}
        return GraphQueryResult(
            op="search", agent_id=agent_id, nodes=nodes, scores=[score_of[n.id] for n in nodes], count=len(nodes),
            next_cursor=None if ranking.next_offset is None else check.encode_cursor(ranking.next_offset),
            mode=ranking.mode, warning=ranking.warning,
        )  # fmt: skip

    @staticmethod
    def _node_type(value: str) -> str:
        if value not in NODE_TYPES:
            raise InvalidInput(f"node_type={value!r} is not a node type; use one of {', '.join(NODE_TYPES)}")
        return value

    # Named queries for Python callers: the same ops, returning the nodes.

    def recent_episodes(self, agent_id: str = "", *, limit: int = 50) -> list[GraphNode]:
        return self.query("recent_episodes", agent_id, limit=limit).nodes

    def since(
        self, since: str, agent_id: str = "", *, node_type: str | None = None, limit: int = 50
    ) -> list[GraphNode]:
        return self.query("since", agent_id, since=since, node_type=node_type, limit=limit).nodes

    def neighbors(self, node_id: str, agent_id: str = "", *, label: str | None = None, direction: str = "out",
                  limit: int = 50) -> list[GraphNode]:  # fmt: skip
        return self.query("neighbors", agent_id, node_id=node_id, label=label, direction=direction, limit=limit).nodes

    def lineage(self, node_id: str, agent_id: str = "", *, depth: int = MAX_LINEAGE_DEPTH,
                limit: int = 500) -> list[GraphNode]:  # fmt: skip
        return self.query("lineage", agent_id, node_id=node_id, depth=depth, limit=limit).nodes

    def search(self, query: str, agent_id: str = "", *, mode: str = "hybrid", limit: int = 10,
               node_type: str | None = None, progress: SearchProgressFn | None = None) -> GraphQueryResult:  # fmt: skip
        """Nodes whose text matches ``query`` by words and meaning (the store's search index), best first."""
        return self.query("search", agent_id, query=query, mode=mode, limit=limit, node_type=node_type,
                          progress=progress)  # fmt: skip

    # -- snapshots -------------------------------------------------------------------------------

    def export(self, agent_id: str = "") -> GraphSnapshot:
        """``agent_id``'s nodes (oldest first) and the edges whose both ends are among them."""
        agent_id = check_agent_id(agent_id)
        with self._reading() as conn:
            nodes = [_node(row) for row in conn.execute(
                f"SELECT {_NODE_COLUMNS} FROM graph_nodes n WHERE n.agent_id = ? ORDER BY n.timestamp, n.id",
                (agent_id,),
            )]  # fmt: skip
            edges = [
                _snapshot_edge(row)
                for row in conn.execute(
                    "SELECT e.from_id, e.to_id, e.label, e.weight, e.metadata FROM graph_edges e"
                    " JOIN graph_nodes f ON f.id = e.from_id JOIN graph_nodes t ON t.id = e.to_id"
                    " WHERE f.agent_id = ? AND t.agent_id = ? ORDER BY e.from_id, e.to_id, e.label",
                    (agent_id, agent_id),
                )
            ]  # fmt: skip
        return GraphSnapshot(agent_id=agent_id, exported_at=utc_now(), schema_version=SNAPSHOT_SCHEMA_VERSION,
                             nodes=nodes, edges=edges)  # fmt: skip

    def _prepare_snapshot(
        self, snapshot: Mapping[str, Any] | GraphSnapshot | str
    ) -> tuple[str, list[NodeRow], list[EdgeRow], list[str]]:
        """A snapshot checked and parsed into the rows :meth:`_apply` writes (nothing is written).

        Raises:
            InvalidInput: as :meth:`import_snapshot`.
        """
        if isinstance(snapshot, GraphSnapshot):
            snapshot = snapshot.model_dump()
        elif isinstance(snapshot, str):
            try:
                snapshot = json.loads(snapshot)
            except ValueError as exc:
                raise InvalidInput(f"snapshot is not valid JSON: {exc}") from None
            except RecursionError:
                raise InvalidInput("snapshot nests JSON too deeply to be a graph snapshot") from None
        if not isinstance(snapshot, Mapping):
            raise InvalidInput("snapshot must be an object {agent_id, exported_at, schema_version, nodes, edges}")
        unknown = set(snapshot) - {"agent_id", "exported_at", "schema_version", "nodes", "edges"}
        if unknown:
            raise InvalidInput(f"snapshot has unknown field(s) {sorted(unknown)}; a snapshot has agent_id, "
                               "exported_at, schema_version, nodes and edges")  # fmt: skip
        version = snapshot.get("schema_version")
        if "schema_version" not in snapshot:
            raise InvalidInput(f"snapshot.schema_version is required ({SNAPSHOT_SCHEMA_VERSION!r}); graph_export "
                               "writes it, with agent_id, exported_at, nodes and edges")  # fmt: skip
        if version != SNAPSHOT_SCHEMA_VERSION:
            raise InvalidInput(f"snapshot schema_version {version!r} is not supported; this server reads "
                               f"{SNAPSHOT_SCHEMA_VERSION!r} (export the graph again with a matching version)")  # fmt: skip
        if "agent_id" not in snapshot:
            raise InvalidInput('snapshot.agent_id is required ("" for the global graph)')
        agent_id = check_agent_id(snapshot["agent_id"], field="snapshot.agent_id")
        if snapshot.get("exported_at") is not None:
            if not isinstance(snapshot["exported_at"], str):
                raise InvalidInput("snapshot.exported_at must be an RFC 3339 string")
            parse_timestamp(snapshot["exported_at"], field="snapshot.exported_at")
        nodes, edges, _ = self._parse_batch(snapshot.get("nodes") or [], snapshot.get("edges") or [], agent_id,
                                            where="snapshot.")  # fmt: skip
        writers = [agent_id] * len(edges)  # every edge of a snapshot is written into the snapshot's agent
        for index, row in enumerate(nodes):
            if row.agent_id != agent_id:
                raise InvalidInput(
                    f"snapshot.nodes[{index}].agent_id={row.agent_id!r} differs from snapshot.agent_id="
                    f"{agent_id!r}; a snapshot holds one agent's graph"
                )
        return agent_id, nodes, edges, writers

    def import_snapshot(
        self,
        snapshot: Mapping[str, Any] | GraphSnapshot | str,
        *,
        allow_dangling_edges: bool = False,
        progress: ProgressFn | None = None,
    ) -> GraphImportReport:
        """Load a snapshot (ours or ainl-memory's) in one transaction; nodes in it replace stored ones.

        Strict by default: if any edge's source or target is neither in the snapshot nor in
        the store, nothing is written. ``allow_dangling_edges`` loads such edges anyway
        (foreign-key checks are off for this one transaction) for forensic work; the report's
        ``validation`` then lists them.

        Raises:
            InvalidInput: malformed snapshot, unknown schema_version, or a node of another agent.
            NotFound: strict import with a dangling edge.
            Conflict: a node id belongs to another agent or type in this store.
        """
        agent_id, nodes, edges, writers = self._prepare_snapshot(snapshot)
        if progress is not None:
            progress(0, len(nodes) + len(edges))
        hint = "fix the snapshot, or import it with allow_dangling_edges=true for a forensic load"
        if allow_dangling_edges:
            with self._db.foreign_keys_off() as conn:
                self._apply(conn, nodes, edges, writers, check_endpoints=False, progress=progress)
        else:
            with self._db.write() as conn:
                self._apply(conn, nodes, edges, writers, check_endpoints=True, missing_hint=hint,
                            progress=progress)  # fmt: skip
        return GraphImportReport(agent_id=agent_id, nodes_imported=len(nodes), edges_imported=len(edges),
                                 allow_dangling_edges=allow_dangling_edges,
                                 validation=self.validate(agent_id))  # fmt: skip

    def import_database(
        self, path: str | os.PathLike[str], *, agent_id: str | None = None, allow_dangling_edges: bool = False
    ) -> AinlDatabaseImportReport:
        """Import an ainl-memory SQLite database: every agent's graph (or ``agent_id``'s), same rules as snapshots.

        Strict by default: before anything is written, every edge's ends must be in the
        database or the store, else nothing is imported. Legacy edge tables (no foreign keys)
        lose their dangling rows first, as the crate's migration does; cross-agent edges are
        reported, not imported. The database is only read.

        Raises:
            NotFound: no database at ``path``, or (strict) an edge whose node exists nowhere.
            InvalidInput: not an ainl-memory database, or a node is malformed.
        """
        db = read_ainl_database(path, agent_id=agent_id)
        if not allow_dangling_edges:
            known = {n["id"] for snap in db.snapshots.values() for n in snap["nodes"]}
            for snap in db.snapshots.values():
                for edge in snap["edges"]:
                    for end in (edge["from_id"], edge["to_id"]):
                        if end not in known and self.get(str(end)) is None:
                            raise NotFound(
                                f"edge {edge['from_id']} -[{edge['label']}]-> {edge['to_id']} points at node {end}, "
                                "which is neither in the database nor in this store; nothing was imported "
                                "(import with allow_dangling_edges for a forensic load)"
                            )
        # Every agent's snapshot is checked before anything is written, then all are written in
        # one transaction: a bad node in the last agent's graph must not leave the first ones imported.
        prepared = [self._prepare_snapshot(snap) for _, snap in sorted(db.snapshots.items())]
        hint = "fix the database, or import it with allow_dangling_edges for a forensic load"
        with self._db.foreign_keys_off() if allow_dangling_edges else self._db.write() as conn:
            for _, nodes, edges, writers in prepared:
                self._apply(conn, nodes, edges, writers, check_endpoints=not allow_dangling_edges, missing_hint=hint)
        reports = [
            GraphImportReport(agent_id=agent, nodes_imported=len(nodes), edges_imported=len(edges),
                              allow_dangling_edges=allow_dangling_edges, validation=self.validate(agent))
            for agent, nodes, edges, _ in prepared
        ]  # fmt: skip
        return AinlDatabaseImportReport(
            source=str(path), legacy_edges=db.legacy_edges, agents=reports,
            dropped_dangling_edges=[AinlEdgeRef(**e) for e in db.dropped_dangling_edges],
            cross_agent_boundary_edges=[AinlEdgeRef(**e) for e in db.cross_agent_boundary_edges],
        )  # fmt: skip

    def export_to_file(
        self, agent_id: str, path: str | os.PathLike[str], *, roots: Sequence[Path] | None = None,
        overwrite: bool = False,
    ) -> GraphExportResult:  # fmt: skip
        """Write ``agent_id``'s snapshot as JSON to ``path`` (atomically; under ``roots`` when given).

        An existing file at ``path`` is replaced only with ``overwrite``: a mistyped path must
        not silently destroy a user's file (artifact and files exports refuse one too).

        The file is written as a temp entry of the target's directory, opened without
        following symlinks, and renamed onto the target there: a symlink swapped in at the
        target is replaced, never written through. Never into the data directory.

        Raises:
            AccessDenied: ``path`` is outside ``roots``, in the data directory, or is a directory.
            InvalidInput: a file exists at ``path`` and ``overwrite`` is False.
            StorageError: the file cannot be written (name too long, disk full, read-only).
        """
        access = self._access(roots)
        snapshot = self.export(agent_id)
        target = access.check(path, must_exist=False)
        try:
            if target.is_dir():
                raise AccessDenied(f"{target} is a directory; give a file path such as {target / 'snapshot.json'}")
            parent, name = access.open_parent(path)
            # The ledger records the temp first: a killed export's is swept at the next start-up.
            with FileWriter(parent, name, replace=overwrite, ledger=StagingLedger(self._ctx.data_dir)) as out:
                out.write(snapshot.model_dump_json(indent=1).encode("utf-8"))
        except OSError as exc:
            raise StorageError(f"cannot write the snapshot to {str(target)[:200]!r}: {exc.strerror or exc}") from None
        return GraphExportResult(agent_id=snapshot.agent_id, node_count=len(snapshot.nodes),
                                 edge_count=len(snapshot.edges), path=str(target))  # fmt: skip

    def _access(self, roots: Sequence[Path] | None) -> LocalAccess:
        # roots=None is the operator at the CLI: any path, but still never the data directory.
        if roots is None:
            return LocalAccess.create((Path("/"),), self._ctx.data_dir)
        return LocalAccess.create(tuple(roots), self._ctx.data_dir, home_dir())

    def read_snapshot_file(self, path: str | os.PathLike[str], *, roots: Sequence[Path] | None = None) -> Any:
        """The parsed JSON of a snapshot file (under ``roots`` when given), read through a descriptor.

        Raises:
            NotFound / AccessDenied: the file is missing or outside ``roots``.
            InvalidInput: it is not JSON.
        """
        with self._access(roots).open_file(path) as opened:
            source = opened.path
            try:
                raw = opened.read()
            except OSError as exc:
                raise StorageError(f"cannot read the snapshot file {source}: {exc.strerror or exc}") from None
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidInput(f"{source} is not a JSON snapshot: {exc}") from None
        except RecursionError:
            raise InvalidInput(f"{source} nests JSON too deeply to be a snapshot") from None

    def validate(self, agent_id: str | None = None, *, sample_limit: int = 100) -> GraphValidationReport:
        """Structural report for ``agent_id``'s graph, or the whole store when None.

        An edge counts for the agent when either end is one of its nodes or it was written
        into the agent's graph. It dangles when its source or target node does not exist,
        and crosses agents when both exist but belong to different agents.
        """
        scope = None if agent_id is None else check_agent_id(agent_id)
        edge_from = (
            "FROM graph_edges e LEFT JOIN graph_nodes f ON f.id = e.from_id LEFT JOIN graph_nodes t ON t.id = e.to_id"
        )
        if scope is None:
            edge_where, edge_params, node_where, node_params = "", [], "", []
        else:
            edge_where = " WHERE (e.agent_id = ? OR f.agent_id = ? OR t.agent_id = ?)"
            edge_params, node_where, node_params = [scope] * 3, " AND n.agent_id = ?", [scope]
        dangling_sql = "(f.id IS NULL OR t.id IS NULL)"
        crossing_sql = "(f.id IS NOT NULL AND t.id IS NOT NULL AND f.agent_id != t.agent_id)"
        orphan_sql = (
            "NOT EXISTS (SELECT 1 FROM graph_edges WHERE from_id = n.id)"
            " AND NOT EXISTS (SELECT 1 FROM graph_edges WHERE to_id = n.id)"
        )
        with self._reading() as conn:
            node_count = conn.execute(
                f"SELECT COUNT(*) FROM graph_nodes n WHERE TRUE{node_where}", node_params
            ).fetchone()[0]
            edge_count, dangling_count, cross = conn.execute(
                f"SELECT COUNT(*), COALESCE(SUM(CASE WHEN {dangling_sql} THEN 1 ELSE 0 END), 0),"
                f" COALESCE(SUM(CASE WHEN {crossing_sql} THEN 1 ELSE 0 END), 0) {edge_from}{edge_where}",
                edge_params,
            ).fetchone()

            def sample(condition: str, count: int) -> list[SnapshotEdge]:
                """Up to ``sample_limit`` of the checked graph's edges that meet ``condition``."""
                if not count:
                    return []
                rows = conn.execute(
                    f"SELECT e.from_id, e.to_id, e.label, e.weight, e.metadata {edge_from}"
                    f"{edge_where or ' WHERE TRUE'} AND {condition} ORDER BY e.from_id, e.to_id, e.label LIMIT ?",
                    (*edge_params, sample_limit),
                )
                return [_snapshot_edge(row) for row in rows]

            dangling = sample(dangling_sql, dangling_count)
            crossing = sample(crossing_sql, cross)
            orphan_ids = [row[0] for row in conn.execute(
                f"SELECT n.id FROM graph_nodes n WHERE {orphan_sql}{node_where} ORDER BY n.timestamp, n.id",
                node_params,
            )]  # fmt: skip
        orphan_count, orphans = len(orphan_ids), orphan_ids[:sample_limit]
        return GraphValidationReport(
            agent_id=scope, node_count=node_count, edge_count=edge_count, dangling_edges=dangling,
            dangling_edge_count=dangling_count, cross_agent_edges=cross,
            cross_agent_boundary_edges=crossing, orphan_nodes=orphans, orphan_node_count=orphan_count,
            is_valid=dangling_count == 0,
            truncated=dangling_count > len(dangling) or cross > len(crossing) or orphan_count > len(orphans),
        )  # fmt: skip

    # -- runtime state ---------------------------------------------------------------------------

    def runtime_state_id(self, agent_id: str) -> str:
        """The deterministic id of ``agent_id``'s runtime-state node (UUIDv5, as ainl-memory)."""
        return runtime_state_id(self._runtime_agent(agent_id))

    @staticmethod
    def _runtime_agent(agent_id: str) -> str:
        agent_id = check_agent_id(agent_id)
        if not agent_id:
            raise InvalidInput("runtime state belongs to one agent; give a non-empty agent_id")
        return agent_id

    def read_runtime_state(self, agent_id: str) -> RuntimeState | None:
        """The agent's runtime state, or None before the first write. Legacy field names are read too."""
        agent_id = self._runtime_agent(agent_id)
        node_id = runtime_state_id(agent_id)
        rows = self._db.query("SELECT payload FROM graph_nodes WHERE id = ? AND agent_id = ?", (node_id, agent_id))
        return self._runtime_record(node_id, json.loads(rows[0][0])) if rows else None

    @staticmethod
    def _runtime_record(node_id: str, payload: Mapping[str, Any]) -> RuntimeState:
        state = RuntimeStatePayload.model_validate(payload)
        return RuntimeState(node_id=node_id, agent_id=state.agent_id, turn_count=state.turn_count,
                            last_extraction_at_turn=state.last_extraction_at_turn,
                            persona_snapshot=state.persona_snapshot, updated_at=state.updated_at)  # fmt: skip

    def write_runtime_state(
        self,
        agent_id: str,
        *,
        turn_count: int | None = None,
        last_extraction_at_turn: int | None = None,
        persona_snapshot: str | None = None,
    ) -> RuntimeState:
        """Update the agent's runtime state (fields left None keep their stored value); stamps ``updated_at``.

        The read and the write are one transaction, so concurrent updates are not lost.

        Raises:
            InvalidInput: a count is negative or the agent id is malformed.
        """
        agent_id = self._runtime_agent(agent_id)
        node_id = runtime_state_id(agent_id)
        with self._db.write() as conn:
            row = conn.execute("SELECT payload FROM graph_nodes WHERE id = ?", (node_id,)).fetchone()
            payload: dict[str, Any] = (
                dict(RuntimeStatePayload.model_validate(json.loads(row[0])).model_dump()) if row else {}
            )
            changes = {"turn_count": turn_count, "last_extraction_at_turn": last_extraction_at_turn,
                       "persona_snapshot": persona_snapshot}  # fmt: skip
            payload.update({name: value for name, value in changes.items() if value is not None})
            payload.update(agent_id=agent_id, updated_at=utc_now())
            node, _ = parse_node({"node_type": "runtime_state", "agent_id": agent_id, "payload": payload},
                                 where="runtime_state", default_agent=agent_id, config=self._config)  # fmt: skip
            self._apply(conn, [node], [], [], check_endpoints=True)
        return self._runtime_record(node_id, node.payload)
