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
from ._params import ArtifactId, Cursor, GraphId, Limit, NodeId, Scope, SearchMode, Tags, Uri
from ._search import progress_reporter
from ._tools import exactly_one, register

LabelValue = str | int | float | bool
Labels = Annotated[dict[str, LabelValue] | None, Field(description="exact-match labels")]
KindFilter = Annotated[str | None, Field(description="only this kind, e.g. report")]


class ArtifactBest(BaseModel):
    found: bool
    artifact: ArtifactRecord | None = None


class PinResult(BaseModel):
    artifact_id: str
    pinned: bool


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
        path: Annotated[str | None, Field(description="server-local file or directory")] = None,
        kind: Annotated[str, Field(description="report, checkpoint, plot, dataset, …")] = "artifact",
        name: Annotated[str | None, Field(description="a human name, e.g. a file name")] = None,
        labels: Labels = None,
        metrics: Annotated[dict[str, float] | None, Field(description="numbers to rank by, e.g. val_acc")] = None,
        tags: Tags = None,
        pin: Annotated[bool, Field(description="protect from gc and delete")] = False,
        mime: Annotated[str | None, Field(description="media type; guessed when omitted")] = None,
        graph_id: GraphId = None,
        node_id: NodeId = None,
        preview_uri: Annotated[str | None, Field(description="cas:// uri of an artifact previewing it")] = None,
    ) -> ArtifactRecord:
        """Keep an output to find and rank later: one of text, json, base64, path."""
        source = exactly_one(text=text, json=json, base64=base64, path=path)
        meta: dict[str, Any] = {"name": name, "labels": labels, "metrics": metrics, "tags": tags, "pin": pin,
                                "mime": mime, "graph_id": graph_id, "node_id": node_id, "preview_uri": preview_uri}  # fmt: skip
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
        artifact_id: ArtifactId = None,
        uri: Uri = None,
        offset: Annotated[int, Field(description="byte offset (see next_offset)")] = 0,
        length: Annotated[int | None, Field(description="most bytes to return")] = None,
        encoding: Annotated[
            Literal["auto", "text", "base64", "path"],
            Field(description="auto: text or base64; path: a local path"),
        ] = "auto",
    ) -> ArtifactContent:
        """Read an artifact (text, base64, manifest or local path); long ones come in chunks."""
        return artifacts.read(ref(artifact_id, uri), offset=offset, length=length, encoding=encoding)

    @register(server, read_only=True, idempotent=True, title="Search artifacts")
    def artifact_search(
        ctx: Context,
        query: Annotated[str | None, Field(description="rank by relevance (name, kind, labels, text)")] = None,
        kind: KindFilter = None,
        labels: Labels = None,
        tags: Tags = None,
        metrics: Annotated[
            dict[str, dict[str, float]] | None,
            Field(description='conditions, e.g. {"val_acc": {">=": 0.9}}; ops > >= < <= == !='),
        ] = None,
        scope: Scope = "all",
        graph_id: GraphId = None,
        node_id: NodeId = None,
        limit: Limit = 50,
        cursor: Cursor = None,
        mode: SearchMode = "hybrid",
    ) -> ArtifactPage:
        """Find saved artifacts by kind, labels, tags, metrics and scope, newest first (with a query: best first)."""
        return artifacts.search(kind=kind, labels=labels, tags=tags, metrics=metrics, scope=scope,
                                graph_id=graph_id, node_id=node_id, limit=limit, cursor=cursor, query=query,
                                mode=mode, progress=None if query is None else progress_reporter(ctx))  # fmt: skip

    @register(server, read_only=True, idempotent=True, title="Best artifact by a metric")
    def artifact_best(
        metric: Annotated[str, Field(description="metrics key, e.g. val_acc")],
        kind: KindFilter = None,
        mode: Annotated[Literal["max", "min"], Field(description="max: highest wins; min: lowest wins")] = "max",
        scope: Scope = "all",
        labels: Labels = None,
        graph_id: GraphId = None,
        node_id: NodeId = None,
    ) -> ArtifactBest:
        """Which artifact scored best on one metric (ties: earliest)?"""
        best = artifacts.best(metric, kind=kind, mode=mode, scope=scope, labels=labels,
                              graph_id=graph_id, node_id=node_id)  # fmt: skip
        return ArtifactBest(found=best is not None, artifact=best)

    @register(server, idempotent=True, title="Pin or unpin an artifact")
    def artifact_pin(
        artifact_id: ArtifactId = None,
        uri: Uri = None,
        pinned: Annotated[bool, Field(description="false unpins")] = True,
    ) -> PinResult:
        """Pin an artifact so gc and delete never remove it."""
        record = artifacts.pin(ref(artifact_id, uri), pinned)
        return PinResult(artifact_id=record.artifact_id, pinned=record.pinned)

    @register(server, destructive=True, idempotent=True, title="Delete an artifact")
    def artifact_delete(artifact_id: ArtifactId = None, uri: Uri = None) -> DeleteReport:
        """Delete an artifact record (not a pinned one); gc frees unused bytes."""
        return artifacts.delete(ref(artifact_id, uri))
