"""Records returned by the core and, unchanged, by the MCP tools (they are the output schemas)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ArtifactContent",
    "ArtifactPage",
    "ArtifactRecord",
    "DeleteReport",
    "Event",
    "EventPage",
    "ForgetReport",
    "GcReport",
    "LastValue",
    "Stats",
    "Value",
]

LabelValue = str | int | float | bool


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class ArtifactRecord(_Record):
    """One saved artifact: metadata plus the content address of its bytes."""

    artifact_id: str
    uri: str = Field(description="content address, cas://sha256/<hex>")
    kind: str
    name: str
    mime: str
    sha256: str
    bytes: int
    labels: dict[str, LabelValue] = {}
    metrics: dict[str, float] = {}
    tags: list[str] = []
    run_id: str
    graph_id: str | None = None
    node_id: str | None = None
    created_at: str
    pinned: bool = False
    preview: str = Field(description="start of text content, or a short description of binary/directory content")
    is_dir: bool = False


class ArtifactPage(_Record):
    items: list[ArtifactRecord]
    next_cursor: str | None = Field(None, description="pass as cursor for the next page; null on the last page")
    warning: str | None = None


class ArtifactContent(_Record):
    """Content read back from an artifact, inline or by local path."""

    artifact: ArtifactRecord
    encoding: Literal["text", "base64", "path", "manifest"]
    content: str | None = Field(None, description="text, base64 chunk, or directory manifest JSON")
    path: str | None = Field(None, description="local file or directory holding the content (encoding=path)")
    offset: int = 0
    length: int = Field(0, description="bytes of content in this chunk")
    total_bytes: int = 0
    next_offset: int | None = Field(None, description="pass as offset to read the rest; null when complete")


class DeleteReport(_Record):
    deleted: bool
    artifact_id: str
    message: str


class GcReport(_Record):
    dry_run: bool
    records_removed: int
    blobs_removed: int
    bytes_freed: int
    record_ids: list[str] = []


class Value(_Record):
    """A named input or output of a tool call."""

    name: str
    kind: Literal["number", "string", "boolean", "object", "array", "null", "uri", "ref"] | None = None
    value: Any = None


class Event(_Record):
    event_id: str
    ts: str
    kind: str
    topic: str | None = None
    tool: str | None = None
    text: str | None = None
    data: Any = None
    tags: list[str] = []
    metrics: dict[str, float] = {}
    inputs: list[Value] = []
    outputs: list[Value] = []
    severity: int = 2
    run_id: str
    graph_id: str | None = None
    node_id: str | None = None
    truncated: bool = Field(False, description="text/data were cut to keep the response bounded")


class EventPage(_Record):
    events: list[Event] = []
    data: list[Any] | None = Field(None, description="decoded payloads, when data_only was asked")
    count: int


class LastValue(_Record):
    name: str
    value: Any
    kind: str
    ts: str
    event_id: str
    tool: str | None = None


class ForgetReport(_Record):
    dry_run: bool
    matched: int
    deleted: int
    event_ids: list[str] = Field([], description="up to 100 of the matching ids")


class Stats(_Record):
    version: str
    data_dir: str
    run_id: str
    counts: dict[str, int]
    sizes: dict[str, int]
    schema_versions: dict[str, int]
    model: dict[str, Any]
    groups: list[str] = []
