"""The ``memory`` tool group: thin adapters over :class:`~mcp_memory_server.core.events.EventLog`."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Literal

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from ..models import Event, EventPage, EventSearchPage, ForgetReport, LastValue, Value
from ..store import MemoryStore
from ._search import SEARCH_MODE, progress_reporter
from ._tools import register

Tags = Annotated[list[str] | None, Field(description="tags; on queries every tag must be present")]
Timestamp = Annotated[str | None, Field(description="RFC 3339 time, e.g. 2026-01-31T12:00:00Z")]


class LastValueResult(BaseModel):
    found: bool
    value: LastValue | None = None


def register_tools(server: MCPServer, store: MemoryStore) -> None:
    events = store.events

    @register(server, title="Record an event")
    def memory_record(
        kind: Annotated[str, Field(description="what happened: note, decision, observation, error, …")],
        data: Annotated[Any, Field(description="any JSON payload, kept as given")] = None,
        text: Annotated[str | None, Field(description="human-readable text; defaults to the JSON of data")] = None,
        topic: str | None = None,
        tags: Tags = None,
        metrics: dict[str, float] | None = None,
        severity: Annotated[int, Field(description="1 low, 2 normal, 3 high")] = 2,
        graph_id: str | None = None,
        node_id: str | None = None,
    ) -> Event:
        """Append an event to the durable log: a decision, observation, error, user preference, progress note.

        Record whatever a later turn or session should be able to recall.
        """
        return events.record(kind, data, text, topic=topic, tags=tags, metrics=metrics, severity=severity,
                             graph_id=graph_id, node_id=node_id)  # fmt: skip

    @register(server, title="Record a tool result")
    def memory_record_tool_result(
        tool: Annotated[str, Field(description="the tool or command that ran")],
        inputs: Annotated[list[Value] | None, Field(description="named inputs [{name, value, kind?}]")] = None,
        outputs: Annotated[
            list[Value] | None, Field(description="named outputs; each becomes the latest value of its name")
        ] = None,
        message: Annotated[str | None, Field(description="a short summary of the result")] = None,
        tags: Tags = None,
        metrics: dict[str, float] | None = None,
        topic: str | None = None,
    ) -> Event:
        """Record the result of a tool call; each named output becomes retrievable with memory_last."""
        return events.record_tool_result(tool, inputs, outputs, message, tags=tags, metrics=metrics, topic=topic)

    @register(server, read_only=True, idempotent=True, title="Recent events")
    def memory_recent(
        kinds: list[str] | None = None,
        tags: Tags = None,
        tool: str | None = None,
        topic: str | None = None,
        since: Timestamp = None,
        until: Timestamp = None,
        scope: Literal["all", "run", "graph", "node"] = "all",
        graph_id: str | None = None,
        node_id: str | None = None,
        limit: Annotated[int, Field(description="how many of the newest matches")] = 50,
        data_only: Annotated[bool, Field(description="return only the decoded payloads")] = False,
    ) -> EventPage:
        """The newest events matching the filters, returned oldest → newest: "what happened last?"."""
        return events.page(kinds=kinds, tags=tags, tool=tool, topic=topic, since=since, until=until, scope=scope,
                           graph_id=graph_id, node_id=node_id, limit=limit, data_only=data_only)  # fmt: skip

    @register(server, read_only=True, idempotent=True, title="Last value by name")
    def memory_last(
        name: Annotated[str, Field(description="an output name recorded with memory_record_tool_result")],
        tool: Annotated[str | None, Field(description="only outputs of this tool")] = None,
    ) -> LastValueResult:
        """The latest value recorded under a name (e.g. the last "loss"), with when and which tool."""
        value = events.last_by_name(name, tool)
        return LastValueResult(found=value is not None, value=value)

    @register(server, read_only=True, idempotent=True, title="Search events")
    async def memory_search(
        ctx: Context,
        query: Annotated[str, Field(description="what to look for, in words or by meaning")],
        kinds: list[str] | None = None,
        tags: Tags = None,
        scope: Literal["all", "run", "graph", "node"] = "all",
        since: Timestamp = None,
        until: Timestamp = None,
        graph_id: str | None = None,
        node_id: str | None = None,
        limit: Annotated[int, Field(description="page size")] = 10,
        cursor: Annotated[str | None, Field(description="next_cursor of the previous page")] = None,
        mode: Annotated[Literal["hybrid", "semantic", "lexical"], SEARCH_MODE] = "hybrid",
    ) -> EventSearchPage:
        """Find past events relevant to a question, best first: "what did we decide about the learning rate?".

        Matches words (BM25) and meaning (embeddings), so paraphrases are found. Each hit has a
        score and its keyword/meaning ranks. If the embedding model cannot load, results are
        keyword-only and `warning` says so.
        """
        search = partial(
            events.search, query, mode=mode, limit=limit, cursor=cursor, kinds=kinds, tags=tags, scope=scope,
            since=since, until=until, graph_id=graph_id, node_id=node_id, progress=progress_reporter(ctx),
        )  # fmt: skip
        return await anyio.to_thread.run_sync(search)

    @register(server, destructive=True, title="Forget events")
    def memory_forget(
        before: Timestamp = None,
        kinds: list[str] | None = None,
        tags: Tags = None,
        dry_run: Annotated[bool, Field(description="only count what would be deleted")] = True,
    ) -> ForgetReport:
        """Delete events older than `before` and/or of given kinds/tags. A dry run (the default) only counts."""
        return events.forget(before=before, kinds=kinds, tags=tags, dry_run=dry_run)
