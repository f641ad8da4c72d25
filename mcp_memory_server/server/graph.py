"""The ``graph`` tool group and the ``graph://{agent_id}/snapshot`` resource.

Thin adapters over :class:`~mcp_memory_server.core.graph.GraphMemory`.
"""

from __future__ import annotations

import functools
from functools import partial
from typing import Annotated, Any, Literal

import anyio
import anyio.from_thread
import anyio.to_thread
import pydantic_core
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from pydantic import Field

from ..core.graph import (
    GraphExportResult,
    GraphImportReport,
    GraphNode,
    GraphQueryResult,
    GraphSnapshot,
    GraphValidationReport,
    GraphWriteResult,
)
from ..core.graph.nodes import PAYLOAD_MODELS
from ..errors import LimitExceeded, MemoryServerError, NotFound
from ..store import MemoryStore
from ._params import Cursor, Limit
from ._search import progress_reporter
from ._tools import exactly_one, keep_defaults, register, register_dict_defaults

AgentId = Annotated[str, Field(description='whose graph; "" is the global one')]
QueryOp = Literal[
    "recent_episodes", "since", "neighbors", "lineage", "by_tag", "by_topic_cluster", "pattern_by_name",
    "active_patches", "successful_episodes", "episodes_with_tool", "evolved_persona", "runtime_state", "search",
    "episodes", "semantic_nodes", "procedural_nodes", "persona_nodes", "subgraph_edges",
]  # fmt: skip
NodeTypeName = Literal["episode", "semantic", "procedural", "persona", "runtime_state"]

_NODES_HELP = (
    "[{id?, agent_id?, node_type, importance?, payload, timestamp?, edges?: [{to_id, label, weight?}]}]; "
    "payload needs semantic.fact, procedural.pattern_name, persona.trait_name+strength"
)


@functools.cache
def _payload_defaults(node_type: str) -> dict[str, Any]:
    """The constant defaults of a node type's payload fields (not generated ones such as a fresh turn_id)."""
    model = PAYLOAD_MODELS.get(node_type)
    if model is None:
        return {}
    return {
        name: pydantic_core.to_jsonable_python(info.default)
        for name, info in model.model_fields.items()
        if info.default is not pydantic_core.PydanticUndefined
    } | {
        name: info.default_factory()
        for name, info in model.model_fields.items()
        if info.default_factory in (list, dict)
    }


# Answers carry only the payload fields that differ from their type's defaults; a snapshot is a file
# format other tools read, so it keeps every field.
register_dict_defaults(GraphNode, "payload", lambda node: _payload_defaults(node.node_type))
keep_defaults(GraphSnapshot)


def register_tools(server: MCPServer, store: MemoryStore) -> None:
    graph = store.graph
    config = store.config

    @register(server, title="Write graph nodes and edges")
    def graph_write(
        nodes: Annotated[list[dict[str, Any]] | None, Field(description=_NODES_HELP)] = None,
        edges: Annotated[
            list[dict[str, Any]] | None,
            Field(description="[{from_id, to_id, label, weight?, metadata?}]"),
        ] = None,
        agent_id: Annotated[str, Field(description="agent_id of nodes that name none")] = "",
    ) -> GraphWriteResult:
        """Record episodes, facts, patterns, persona traits and edges, atomically."""
        return graph.write(nodes, edges, agent_id=agent_id)

    @register(server, read_only=True, idempotent=True, title="Query the graph")
    async def graph_query(
        ctx: Context,
        op: Annotated[QueryOp, Field(description="the query; see the description")],
        agent_id: AgentId = "",
        node_id: Annotated[str | None, Field(description="neighbors, lineage: start node")] = None,
        label: Annotated[str | None, Field(description="neighbors: edge label")] = None,
        direction: Annotated[Literal["out", "in", "both"] | None, Field(description="neighbors (default out)")] = None,
        depth: Annotated[int | None, Field(description="lineage: levels, 1-20")] = None,
        tag: Annotated[str | None, Field(description="by_tag: tag or persona signal")] = None,
        cluster: Annotated[str | None, Field(description="by_topic_cluster: text in it")] = None,
        name: Annotated[str | None, Field(description="pattern_by_name: name or label")] = None,
        tool: Annotated[str | None, Field(description="episodes_with_tool: tool name")] = None,
        since: Annotated[str | None, Field(description="since: RFC 3339 time")] = None,
        node_type: Annotated[NodeTypeName | None, Field(description="since, search: node type")] = None,
        query: Annotated[str | None, Field(description="search: what to look for")] = None,
        node_ids: Annotated[list[str] | None, Field(description="subgraph_edges: nodes")] = None,
        mode: Annotated[Literal["hybrid", "semantic", "lexical"] | None, Field(description="search: ranking")] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> GraphQueryResult:
        """Query an agent's graph; `op` picks the query, which takes only its own arguments (see each).

        lineage follows DERIVED_FROM/CAUSED_PATCH; lists newest first.
        """
        run = partial(graph.query, op, agent_id, node_id=node_id, label=label, direction=direction, depth=depth,
                      tag=tag, cluster=cluster, name=name, tool=tool, since=since, node_type=node_type, query=query,
                      node_ids=node_ids, mode=mode, limit=limit, cursor=cursor,
                      progress=progress_reporter(ctx) if op == "search" else None)  # fmt: skip
        return await anyio.to_thread.run_sync(run)

    @register(server, read_only=True, idempotent=True, title="Export an agent's graph")
    def graph_export(
        agent_id: AgentId = "",
        path: Annotated[str | None, Field(description="write to this server-local file")] = None,
        overwrite: Annotated[bool, Field(description="replace an existing file")] = False,
    ) -> GraphExportResult:
        """Back up or move an agent's graph as a graph_import snapshot."""
        if path is not None:
            return graph.export_to_file(agent_id, path, roots=config.allowed_roots, overwrite=overwrite)
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
        snapshot: Annotated[dict[str, Any] | None, Field(description="from graph_export (or ainl-memory)")] = None,
        path: Annotated[str | None, Field(description="a server-local snapshot file instead")] = None,
        allow_dangling_edges: Annotated[bool, Field(description="keep edges to missing nodes (repair)")] = False,
    ) -> GraphImportReport:
        """Load a graph snapshot atomically; refused if an edge points at a node that is nowhere."""
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
        agent_id: Annotated[str | None, Field(description="one agent's graph; omit for all")] = None,
    ) -> GraphValidationReport:
        """Check graph integrity (counts, dangling and cross-agent edges, orphans)."""
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
