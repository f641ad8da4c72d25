"""The ``graph`` tool group and the ``graph://{agent_id}/snapshot`` resource.

Thin adapters over :class:`~mcp_memory_server.core.graph.GraphMemory`.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Literal

import anyio
import anyio.from_thread
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from pydantic import Field

from ..core.graph import (
    GraphExportResult,
    GraphImportReport,
    GraphQueryResult,
    GraphValidationReport,
    GraphWriteResult,
)
from ..errors import LimitExceeded, MemoryServerError, NotFound
from ..store import MemoryStore
from ._search import progress_reporter
from ._tools import exactly_one, register

AgentId = Annotated[str, Field(description='the agent whose graph this is; "" is the global graph')]
QueryOp = Literal[
    "recent_episodes", "since", "neighbors", "lineage", "by_tag", "by_topic_cluster", "pattern_by_name",
    "active_patches", "successful_episodes", "episodes_with_tool", "evolved_persona", "runtime_state", "search",
    "episodes", "semantic_nodes", "procedural_nodes", "persona_nodes", "subgraph_edges",
]  # fmt: skip
NodeTypeName = Literal["episode", "semantic", "procedural", "persona", "runtime_state"]

_NODES_HELP = (
    "nodes to upsert: {id?, agent_id?, node_type: episode|semantic|procedural|persona|runtime_state, "
    "importance? (0-1, default 0.5), payload: {type fields}, timestamp?, edges?: [{to_id, label, weight?, "
    "metadata?}]}. Required payload fields: semantic.fact, procedural.pattern_name, persona.trait_name and "
    "strength. ids are node_<ULID> or UUIDs; omit id to have one generated"
)


def register_tools(server: MCPServer, store: MemoryStore) -> None:
    graph = store.graph
    config = store.config

    @register(server, title="Write graph nodes and edges")
    def graph_write(
        nodes: Annotated[list[dict[str, Any]] | None, Field(description=_NODES_HELP)] = None,
        edges: Annotated[
            list[dict[str, Any]] | None,
            Field(description="edges to add or update: {from_id, to_id, label, weight? (1.0), metadata?}"),
        ] = None,
        agent_id: Annotated[str, Field(description='default agent_id for nodes that name none ("" = global)')] = "",
    ) -> GraphWriteResult:
        """Upsert typed memory nodes (episode, semantic fact, procedural pattern, persona trait, runtime state) and edges.

        Everything in one call is one transaction: if any edge's source or target node exists
        neither in this call nor in the store, nothing is written and the error names the edge.
        Use it to record a turn (episode), a learned fact with DERIVED_FROM to its episode, a
        pattern and its CAUSED_PATCH lineage, or a single checked edge (edges only).
        """
        return graph.write(nodes, edges, agent_id=agent_id)

    @register(server, read_only=True, idempotent=True, title="Query the graph")
    async def graph_query(
        ctx: Context,
        op: Annotated[QueryOp, Field(description="which query to run; see the tool description")],
        agent_id: AgentId = "",
        node_id: Annotated[str | None, Field(description="neighbors, lineage: the start node")] = None,
        label: Annotated[str | None, Field(description="neighbors: only edges with this label")] = None,
        direction: Annotated[
            Literal["out", "in", "both"] | None, Field(description="neighbors: edge direction (default out)")
        ] = None,
        depth: Annotated[int | None, Field(description="lineage: most levels, 1-20 (default 20)")] = None,
        tag: Annotated[str | None, Field(description="by_tag: a tag or persona signal")] = None,
        cluster: Annotated[str | None, Field(description="by_topic_cluster: text the topic_cluster contains")] = None,
        name: Annotated[str | None, Field(description="pattern_by_name: pattern_name or label")] = None,
        tool: Annotated[str | None, Field(description="episodes_with_tool: a tool name")] = None,
        since: Annotated[str | None, Field(description="since: RFC 3339 time, e.g. 2026-01-31T12:00:00Z")] = None,
        node_type: Annotated[NodeTypeName | None, Field(description="since, search: only this node type")] = None,
        query: Annotated[str | None, Field(description="search: what to look for")] = None,
        node_ids: Annotated[list[str] | None, Field(description="subgraph_edges: the nodes of the subgraph")] = None,
        mode: Annotated[
            Literal["hybrid", "semantic", "lexical"] | None, Field(description="search: ranking (default hybrid)")
        ] = None,
        limit: Annotated[int, Field(description="page size")] = 50,
        cursor: Annotated[str | None, Field(description="next_cursor of the previous page")] = None,
    ) -> GraphQueryResult:
        """Ask the agent's graph memory a question; `op` picks the query, each takes only its own arguments.

        recent_episodes: newest turns. since(since, node_type?): nodes from a time on, oldest first.
        neighbors(node_id, label?, direction?): linked nodes by edge weight. lineage(node_id, depth?):
        breadth-first over DERIVED_FROM/CAUSED_PATCH, start excluded, at most 20 levels.
        by_tag(tag), by_topic_cluster(cluster), pattern_by_name(name), active_patches (not retired),
        successful_episodes (outcome=success), episodes_with_tool(tool), evolved_persona,
        runtime_state, search(query, mode?) over node text; ainl-memory's episodes, semantic_nodes,
        procedural_nodes, persona_nodes (one node family each) and subgraph_edges(node_ids, label?): the
        edges among those nodes. Lists are newest first and paginated.
        """
        run = partial(graph.query, op, agent_id, node_id=node_id, label=label, direction=direction, depth=depth,
                      tag=tag, cluster=cluster, name=name, tool=tool, since=since, node_type=node_type, query=query,
                      node_ids=node_ids, mode=mode, limit=limit, cursor=cursor,
                      progress=progress_reporter(ctx) if op == "search" else None)  # fmt: skip
        return await anyio.to_thread.run_sync(run)

    @register(server, read_only=True, idempotent=True, title="Export an agent's graph")
    def graph_export(
        agent_id: AgentId = "",
        path: Annotated[
            str | None, Field(description="write the snapshot JSON to this server-local file instead of returning it")
        ] = None,
    ) -> GraphExportResult:
        """Export one agent's graph as a schema-versioned snapshot {agent_id, exported_at, schema_version, nodes, edges}.

        Use to back up an agent's memory or move it to another store (graph_import). Large
        graphs: pass path (under the server's allowed roots) or read graph://{agent_id}/snapshot.
        """
        if path is not None:
            return graph.export_to_file(agent_id, path, roots=config.allowed_roots)
        snapshot = graph.export(agent_id)
        size = len(snapshot.model_dump_json())
        if size > config.max_response_bytes:
            raise LimitExceeded(
                f"the snapshot is {size} bytes, over the response limit of {config.max_response_bytes} "
                "(max_response_bytes); pass path= to write it to a file, or read the resource "
                f"graph://{agent_id or '<agent_id>'}/snapshot"
            )
        return GraphExportResult(agent_id=snapshot.agent_id, node_count=len(snapshot.nodes),
                                 edge_count=len(snapshot.edges), snapshot=snapshot)  # fmt: skip

    @register(server, destructive=True, idempotent=True, title="Import a graph snapshot")
    async def graph_import(
        ctx: Context,
        snapshot: Annotated[
            dict[str, Any] | None, Field(description="a snapshot from graph_export (or ainl-memory's export_graph)")
        ] = None,
        path: Annotated[str | None, Field(description="a server-local snapshot JSON file instead")] = None,
        allow_dangling_edges: Annotated[
            bool, Field(description="forensic load: keep edges whose nodes are missing (graph_validate lists them)")
        ] = False,
    ) -> GraphImportReport:
        """Load a graph snapshot into this store in one transaction; its nodes replace stored nodes with the same id.

        Strict by default: if any edge points at a node that is neither in the snapshot nor in
        the store, nothing is imported. allow_dangling_edges=true loads it anyway for repair
        work; the returned validation report then lists the dangling edges.
        """
        source = exactly_one(snapshot=snapshot, path=path)

        def progress(done: int, total: int | None) -> None:
            anyio.from_thread.run(ctx.report_progress, done, total, "graph rows written")

        def run() -> GraphImportReport:
            data: Any = snapshot
            if source == "path":
                data = graph.read_snapshot_file(path or "", roots=config.allowed_roots)
            return graph.import_snapshot(data, allow_dangling_edges=allow_dangling_edges, progress=progress)

        return await anyio.to_thread.run_sync(run)

    @register(server, read_only=True, idempotent=True, title="Validate the graph")
    def graph_validate(
        agent_id: Annotated[str | None, Field(description="one agent's graph; omit to check the whole store")] = None,
    ) -> GraphValidationReport:
        """Check graph integrity: node and edge counts, dangling edges, cross-agent edges and orphan nodes.

        is_valid is false when an edge points at a missing node (possible only after an
        import with allow_dangling_edges). Run it after a forensic import, before relying on the graph.
        """
        return graph.validate(agent_id)

    @server.resource(
        "graph://{agent_id}/snapshot",
        name="graph_snapshot",
        description="an agent's graph snapshot as JSON (what graph_export returns)",
        mime_type="application/json",
    )
    async def graph_snapshot(agent_id: str) -> str:
        try:
            snapshot = await anyio.to_thread.run_sync(partial(graph.export, agent_id))
        except NotFound as exc:
            raise ResourceNotFoundError(str(exc)) from None
        except MemoryServerError as exc:
            raise ResourceError(str(exc)) from None
        return snapshot.model_dump_json(indent=1)
