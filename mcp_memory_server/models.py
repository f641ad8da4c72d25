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
    "EventHit",
    "EventPage",
    "EventSearchPage",
    "FileArchiveReport",
    "FileAuditEntry",
    "FileContent",
    "FileHistory",
    "FileList",
    "FileMeta",
    "FileVersion",
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
    preview_uri: str | None = Field(None, description="content address of an artifact that previews this one")
    is_dir: bool = False


class ArtifactPage(_Record):
    items: list[ArtifactRecord]
    next_cursor: str | None = Field(None, description="pass as cursor for the next page; null on the last page")
    warning: str | None = None
    scores: list[float] | None = Field(None, description="relevance of each item, when a query ranked them")
    mode: Literal["hybrid", "semantic", "lexical"] | None = Field(
        None, description="how a query was matched (lexical when the model is unavailable)"
    )


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

    @property
    def version(self) -> int:
        """The event record's format version (AetherGraph's ``Event.version``)."""
        return 1


class EventPage(_Record):
    events: list[Event] = []
    data: list[Any] | None = Field(None, description="decoded payloads, when data_only was asked")
    count: int


class EventHit(_Record):
    """One search result: the event (from another source: its id and text) and why it matched."""

    source: str | None = Field(None, description="events, artifacts, files, graph or lab; set when sources were given")
    event: Event | None = None
    id: str | None = Field(None, description="the record's id: artifact_id, namespace/path, node id or run_id")
    text: str | None = Field(None, description="the start of the record's searchable text")
    score: float = Field(description="relevance; higher is better (fused rank score in hybrid mode)")
    similarity: float | None = Field(None, description="cosine similarity to the query (semantic/hybrid)")
    lexical_rank: int | None = Field(None, description="position in the keyword (BM25) ranking, 1 = best")
    semantic_rank: int | None = Field(None, description="position in the meaning (cosine) ranking, 1 = best")


class EventSearchPage(_Record):
    hits: list[EventHit]
    mode: Literal["hybrid", "semantic", "lexical"] = Field(
        description="how the query was matched (lexical when the model is unavailable)"
    )
    warning: str | None = Field(None, description="set when results are degraded, e.g. the model failed to load")
    next_cursor: str | None = Field(None, description="pass as cursor for the next page; null on the last page")


class LastValue(_Record):
    name: str
    value: Any = None  # not required: answers omit nulls, and a recorded null (kind "null") is a value
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


FileOp = Literal["create", "update", "delete", "restore", "external_edit"]


class FileMeta(_Record):
    """The state of one memory file at one version."""

    namespace: str
    path: str
    sha256: str = Field(description="content hash; pass it as expected_sha to write only if nobody changed the file")
    bytes: int
    version: int
    updated_at: str
    updated_by: str = Field(description="actor of this version ('external' for an edit made on disk)")
    reason: str = ""


class FileContent(_Record):
    """A memory file's text (one chunk of it when long) and the metadata of that version."""

    meta: FileMeta
    content: str
    offset: int = 0
    length: int = Field(0, description="bytes of content in this chunk")
    total_bytes: int = 0
    next_offset: int | None = Field(None, description="pass as offset to read the rest; null when complete")


class FileList(_Record):
    namespace: str
    items: list[FileMeta] = []
    folders: list[str] = Field([], description="sub-folders directly under the prefix (recursive=false only)")
    next_cursor: str | None = Field(None, description="pass as cursor for the next page; null on the last page")
    scores: list[float] | None = Field(None, description="relevance of each item, when a query ranked them")
    mode: Literal["hybrid", "semantic", "lexical"] | None = Field(
        None, description="how a query was matched (lexical when the model is unavailable)"
    )
    warning: str | None = None


class FileVersion(_Record):
    """One entry of a path's history; a version whose ``content_kept`` is true can be read back and restored."""

    version: int
    op: FileOp
    sha256: str | None = Field(None, description="content hash; null for a deletion")
    bytes: int = 0
    ts: str
    actor: str  # empty for a version written with audit=False
    reason: str = ""
    content_kept: bool = Field(True, description="false: cannot be read (a deletion, or replaced, keep_versions off)")


class FileAuditEntry(_Record):
    """One change in the append-only audit log."""

    ts: str
    op: FileOp
    namespace: str
    path: str
    old_sha: str | None = None
    new_sha: str | None = None
    actor: str
    reason: str = ""
    version: int


class FileHistory(_Record):
    namespace: str
    path: str | None = Field(None, description="the path whose versions these are; null for the audit tail")
    versions: list[FileVersion] = Field([], description="newest first")
    audit: list[FileAuditEntry] = Field([], description="oldest first (the tail of the log)")
    next_cursor: str | None = Field(None, description="pass as cursor for older entries; null when there are none")


class FileArchiveReport(_Record):
    """What an export wrote or an import restored."""

    namespace: str
    location: str
    files: int
    versions: int
    blobs: int
    transcript_messages: int
