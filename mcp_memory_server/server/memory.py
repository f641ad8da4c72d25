"""The ``memory`` tool group: thin adapters over :class:`~mcp_memory_server.core.events.EventLog`."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from ..models import Event, EventPage, EventSearchPage, ForgetReport, LastValue, Value
from ..store import MemoryStore
from ._params import (
    Cursor,
    GraphId,
    Kinds,
    Limit,
    Metrics,
    NodeId,
    Scope,
    SearchMode,
    Sources,
    Tags,
    Timestamp,
    Topic,
)
from ._search import progress_reporter
from ._tools import register


class LastValueResult(BaseModel):
    found: bool
    value: LastValue | None = None


class Recorded(BaseModel):
    """What a write stored: the new event's id and time (the rest is what you sent)."""

    event_id: str
    ts: str
    truncated: bool = Field(False, description="text/data were cut to the configured size")


def _recorded(event: Event) -> Recorded:
    return Recorded(event_id=event.event_id, ts=event.ts, truncated=event.truncated)


def register_tools(server: MCPServer, store: MemoryStore) -> None:
    events = store.events

    @register(server, title="Record an event")
    def memory_record(
        kind: Annotated[str, Field(description="note, decision, observation, error, …")],
        data: Annotated[Any, Field(description="any JSON payload, kept as given")] = None,
        text: Annotated[str | None, Field(description="readable text; default: data as JSON")] = None,
        topic: Topic = None,
        tags: Tags = None,
        metrics: Metrics = None,
        severity: Annotated[int, Field(description="1 low, 2 normal, 3 high")] = 2,
        graph_id: GraphId = None,
        node_id: NodeId = None,
    ) -> Recorded:
        """Log what a later turn or session should recall (decision, error, preference…)."""
        event = events.record(kind, data, text, topic=topic, tags=tags, metrics=metrics, severity=severity,
                              graph_id=graph_id, node_id=node_id)  # fmt: skip
        return _recorded(event)

    @register(server, title="Record a tool result")
    def memory_record_tool_result(
        tool: Annotated[str, Field(description="the tool or command that ran")],
        inputs: Annotated[list[Value] | None, Field(description="named inputs [{name, value, kind?}]")] = None,
        outputs: Annotated[list[Value] | None, Field(description="named outputs (see memory_last)")] = None,
        message: Annotated[str | None, Field(description="a short summary of the result")] = None,
        tags: Tags = None,
        metrics: Metrics = None,
        topic: Topic = None,
    ) -> Recorded:
        """Log a tool call's result; each named output can then be fetched with memory_last."""
        return _recorded(events.record_tool_result(tool, inputs, outputs, message, tags=tags, metrics=metrics,
                                                   topic=topic))  # fmt: skip

    @register(server, read_only=True, idempotent=True, title="Recent events")
    def memory_recent(
        kinds: Kinds = None,
        tags: Tags = None,
        tool: Annotated[str | None, Field(description="only results of this tool")] = None,
        topic: Topic = None,
        since: Timestamp = None,
        until: Timestamp = None,
        scope: Scope = "all",
        graph_id: GraphId = None,
        node_id: NodeId = None,
        limit: Annotated[int, Field(description="how many of the newest")] = 50,
        data_only: Annotated[bool, Field(description="only the decoded payloads")] = False,
    ) -> EventPage:
        """The newest events matching the filters, oldest first: "what happened last?"."""
        return events.page(kinds=kinds, tags=tags, tool=tool, topic=topic, since=since, until=until, scope=scope,
                           graph_id=graph_id, node_id=node_id, limit=limit, data_only=data_only)  # fmt: skip

    @register(server, read_only=True, idempotent=True, title="Last value by name")
    def memory_last(
        name: Annotated[str, Field(description="an output name, e.g. loss")],
        tool: Annotated[str | None, Field(description="only outputs of this tool")] = None,
    ) -> LastValueResult:
        """The latest value of an output name (e.g. "loss"), with when and which tool."""
        value = events.last_by_name(name, tool)
        return LastValueResult(found=value is not None, value=value)

    @register(server, read_only=True, idempotent=True, title="Search memory")
    async def memory_search(
        ctx: Context,
        query: Annotated[str, Field(description="what to look for")],  # "by words and meaning": the tool says it
        kinds: Kinds = None,
        tags: Tags = None,
        scope: Scope = "all",
        since: Timestamp = None,
        until: Timestamp = None,
        graph_id: GraphId = None,
        node_id: NodeId = None,
        limit: Limit = 10,
        cursor: Cursor = None,
        mode: SearchMode = "hybrid",
        sources: Sources = None,
    ) -> EventSearchPage:
        """Find past events by words and meaning, best first."""
        search = partial(
            events.search, query, mode=mode, limit=limit, cursor=cursor, kinds=kinds, tags=tags, scope=scope,
            since=since, until=until, graph_id=graph_id, node_id=node_id, sources=sources,
            progress=progress_reporter(ctx),
        )  # fmt: skip
        return await anyio.to_thread.run_sync(search)

    @register(server, destructive=True, title="Forget events")
    def memory_forget(
        before: Annotated[str | None, Field(description="older than this RFC 3339 time")] = None,
        kinds: Kinds = None,
        tags: Tags = None,
        dry_run: Annotated[bool, Field(description="only count what would be deleted")] = True,
    ) -> ForgetReport:
        """Delete events by age, kind or tag; the default dry run only counts."""
        return events.forget(before=before, kinds=kinds, tags=tags, dry_run=dry_run)
