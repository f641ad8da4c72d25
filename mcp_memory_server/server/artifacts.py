"""The ``artifacts`` tool group: thin adapters over :class:`~mcp_memory_server.core.artifacts.Artifacts`."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Literal

import anyio
import anyio.from_thread
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from ..core import _validate as check
from ..models import ArtifactContent, ArtifactPage, ArtifactRecord, DeleteReport
from ..store import MemoryStore
from ._search import SEARCH_MODE, progress_reporter
from ._tools import exactly_one, register

LabelValue = str | int | float | bool
Labels = Annotated[dict[str, LabelValue] | None, Field(description="exact-match key → value labels")]
Tags = Annotated[list[str] | None, Field(description="tags; on queries every tag must be present")]
Scope = Annotated[
    Literal["all", "run", "graph", "node"],
    Field(description="all records, this server run's, or one graph_id / node_id's"),
]


class ArtifactBest(BaseModel):
    found: bool
    artifact: ArtifactRecord | None = None


def register_tools(server: MCPServer, store: MemoryStore) -> None:
    artifacts = store.artifacts

    def ref(artifact_id: str | None, uri: str | None) -> str:
        exactly_one(artifact_id=artifact_id, uri=uri)
        return artifact_id or uri or ""

    @register(server, title="Save an artifact")
    async def artifact_save(
        ctx: Context,
        text: Annotated[str | None, Field(description="text content")] = None,
        json: Annotated[Any, Field(description="a JSON value to store")] = None,
        base64: Annotated[str | None, Field(description="bytes, base64-encoded")] = None,
        path: Annotated[str | None, Field(description="server-local file or directory under the allowed roots")] = None,
        kind: Annotated[str, Field(description="what it is: report, checkpoint, plot, dataset, …")] = "artifact",
        name: Annotated[str | None, Field(description="a human name, e.g. a file name")] = None,
        labels: Labels = None,
        metrics: Annotated[dict[str, float] | None, Field(description="numbers to rank by, e.g. val_acc")] = None,
        tags: Tags = None,
        pin: Annotated[bool, Field(description="protect from gc and delete")] = False,
        mime: Annotated[str | None, Field(description="media type; guessed when omitted")] = None,
        graph_id: str | None = None,
        node_id: str | None = None,
    ) -> ArtifactRecord:
        """Save content as a content-addressed artifact and get its record with a cas://sha256/<hex> URI.

        Use for outputs worth keeping and ranking: reports, plots, checkpoints, datasets, code.
        Give exactly one of text, json, base64 or path (a server-local file or directory).
        Identical bytes are stored once; saving the same content and metadata again returns
        the existing record.
        """
        source = exactly_one(text=text, json=json, base64=base64, path=path)
        meta: dict[str, Any] = {"name": name, "labels": labels, "metrics": metrics, "tags": tags, "pin": pin,
                                "mime": mime, "graph_id": graph_id, "node_id": node_id}  # fmt: skip
        if source == "text":
            return artifacts.save_text(text or "", kind, **meta)
        if source == "json":
            return artifacts.save_json(json, kind, **meta)
        if source == "base64":
            return artifacts.save_bytes(check.decode_base64(base64 or "", config=store.config), kind, **meta)

        def progress(done: int, total: int | None) -> None:
            anyio.from_thread.run(ctx.report_progress, done, total, "stored bytes")

        return await anyio.to_thread.run_sync(partial(artifacts.save_file, path or "", kind, progress=progress, **meta))

    @register(server, read_only=True, idempotent=True, title="Read an artifact")
    def artifact_read(
        artifact_id: str | None = None,
        uri: Annotated[str | None, Field(description="cas://sha256/<hex>")] = None,
        offset: Annotated[int, Field(description="byte offset to start from (see next_offset)")] = 0,
        length: Annotated[int | None, Field(description="most bytes to return")] = None,
        encoding: Annotated[
            Literal["auto", "text", "base64", "path"],
            Field(description="auto: text for text types, else base64; path: a server-local path"),
        ] = "auto",
    ) -> ArtifactContent:
        """Read an artifact's content: text inline, binary as base64 chunks, a directory's manifest, or a local path.

        Long content comes in chunks: call again with offset=next_offset until next_offset is null.
        """
        return artifacts.read(ref(artifact_id, uri), offset=offset, length=length, encoding=encoding)

    @register(server, read_only=True, idempotent=True, title="Search artifacts")
    def artifact_search(
        ctx: Context,
        query: Annotated[
            str | None, Field(description="rank by relevance to this text (name, kind, labels, preview)")
        ] = None,
        kind: str | None = None,
        labels: Labels = None,
        tags: Tags = None,
        metrics: Annotated[
            dict[str, dict[str, float]] | None,
            Field(description='metric conditions, e.g. {"val_acc": {">=": 0.9}}; ops > >= < <= == !='),
        ] = None,
        scope: Scope = "all",
        graph_id: str | None = None,
        node_id: str | None = None,
        limit: Annotated[int, Field(description="page size")] = 50,
        cursor: Annotated[str | None, Field(description="next_cursor of the previous page")] = None,
        mode: Annotated[Literal["hybrid", "semantic", "lexical"], SEARCH_MODE] = "hybrid",
    ) -> ArtifactPage:
        """Find artifacts by kind, exact labels, tags, metric conditions and scope, newest first.

        With a query they come most relevant first (words and meaning), with a score each.
        With no filters it lists every artifact. Results are paginated: pass next_cursor as cursor.
        """
        return artifacts.search(kind=kind, labels=labels, tags=tags, metrics=metrics, scope=scope,
                                graph_id=graph_id, node_id=node_id, limit=limit, cursor=cursor, query=query,
                                mode=mode, progress=None if query is None else progress_reporter(ctx))  # fmt: skip

    @register(server, read_only=True, idempotent=True, title="Best artifact by a metric")
    def artifact_best(
        metric: Annotated[str, Field(description="the metrics key to rank by, e.g. val_acc")],
        kind: str | None = None,
        mode: Annotated[Literal["max", "min"], Field(description="max: highest wins; min: lowest wins")] = "max",
        scope: Scope = "all",
        labels: Labels = None,
        graph_id: str | None = None,
        node_id: str | None = None,
    ) -> ArtifactBest:
        """Pick the artifact with the best value of one metric (records without it are ignored; ties go to the earliest).

        Use to answer "which checkpoint/report scored best?".
        """
        best = artifacts.best(metric, kind=kind, mode=mode, scope=scope, labels=labels,
                              graph_id=graph_id, node_id=node_id)  # fmt: skip
        return ArtifactBest(found=best is not None, artifact=best)

    @register(server, idempotent=True, title="Pin or unpin an artifact")
    def artifact_pin(artifact_id: str | None = None, uri: str | None = None, pinned: bool = True) -> ArtifactRecord:
        """Pin an artifact so gc and delete never remove it (pinned=false unpins)."""
        return artifacts.pin(ref(artifact_id, uri), pinned)

    @register(server, destructive=True, idempotent=True, title="Delete an artifact")
    def artifact_delete(artifact_id: str | None = None, uri: str | None = None) -> DeleteReport:
        """Delete one artifact record (pinned ones are refused). Its bytes are freed by gc if unused."""
        return artifacts.delete(ref(artifact_id, uri))
