"""The ``files`` tool group and the ``memfile://`` resource: thin adapters over :class:`~mcp_memory_server.core.files.Files`."""

from __future__ import annotations

import json as jsonlib
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from pydantic import Field

from ..core._paths import RESERVED
from ..errors import MemoryServerError, NotFound
from ..models import FileAuditEntry, FileContent, FileHistory, FileList, FileMeta
from ..store import MemoryStore
from ._params import Cursor, Limit, SearchMode
from ._search import progress_reporter
from ._tools import exactly_one, register

TRANSCRIPT_PATH = f"{RESERVED}/transcript.jsonl"

Namespace = Annotated[str, Field(description="a user or project")]
FilePath = Annotated[str, Field(description="relative path, e.g. notes/plan.md")]
ExpectedSha = Annotated[
    str | None,
    Field(description="write only if still this sha256; '': create only"),
]
Actor = Annotated[str, Field(description="who changes it (audit log)")]
Reason = Annotated[str, Field(description="why (audit log)")]


def register_tools(server: MCPServer, store: MemoryStore) -> None:
    files = store.files
    config = store.config

    @register(server, destructive=True, idempotent=True, title="Write a memory file")
    def file_write(
        path: FilePath,
        text: Annotated[str | None, Field(description="the new text")] = None,
        json: Annotated[Any, Field(description="a JSON value, stored as JSON text")] = None,
        restore_version: Annotated[int | None, Field(description="bring this old version back")] = None,
        namespace: Namespace = "default",
        expected_sha: ExpectedSha = None,
        actor: Actor = "agent",
        reason: Reason = "",
    ) -> FileMeta:
        """Write a note, plan or profile you will reread; one of text, json, restore_version. Versions are kept.

        To edit safely pass file_read's sha256 as expected_sha.
        """
        source = exactly_one(text=text, json=json, restore_version=restore_version)
        common: dict[str, Any] = {"expected_sha": expected_sha, "actor": actor, "reason": reason,
                                  "namespace": namespace}  # fmt: skip
        if source == "restore_version":
            return files.restore(path, restore_version or 0, **common)
        if source == "text":
            return files.write(path, text, **common)
        return files.write(path, json=json, **common)

    @register(server, read_only=True, idempotent=True, title="Read a memory file")
    def file_read(
        path: FilePath,
        namespace: Namespace = "default",
        version: Annotated[int | None, Field(description="an old version (default latest)")] = None,
        offset: Annotated[int, Field(description="byte offset (see next_offset)")] = 0,
        length: Annotated[int | None, Field(description="most bytes to return")] = None,
    ) -> FileContent:
        """Read a memory file's text, sha256 and version; long files come in chunks (offset=next_offset)."""
        limit = config.max_response_bytes
        # length=0 is refused by the core, like artifact_read's; only an absent length means "all that fits".
        size = limit if length is None else min(length, limit)
        return files.read(path, version, offset=offset, length=size, namespace=namespace)

    @register(server, read_only=True, idempotent=True, title="List memory files")
    def file_list(
        ctx: Context,
        prefix: Annotated[str, Field(description="only paths starting with this, e.g. notes/")] = "",
        namespace: Namespace = "default",
        recursive: Annotated[bool, Field(description="false: this folder only")] = True,
        limit: Limit = 50,
        cursor: Cursor = None,
        query: Annotated[str | None, Field(description="rank by relevance (content, path)")] = None,
        mode: SearchMode = "hybrid",
    ) -> FileList:
        """List memory files by path; with a query, most relevant first."""
        return files.list(prefix, recursive=recursive, limit=limit, cursor=cursor, namespace=namespace, query=query,
                          mode=mode, progress=None if query is None else progress_reporter(ctx))  # fmt: skip

    @register(server, destructive=True, title="Delete a memory file")
    def file_delete(
        path: FilePath,
        namespace: Namespace = "default",
        expected_sha: Annotated[str | None, Field(description="delete only if this is still its sha256")] = None,
        actor: Actor = "agent",
        reason: Reason = "",
    ) -> FileAuditEntry:
        """Delete a memory file; its history stays, so old versions can be read and restored."""
        return files.delete(path, expected_sha=expected_sha, actor=actor, reason=reason, namespace=namespace)

    @register(server, read_only=True, idempotent=True, title="Memory file history and audit log")
    def file_history(
        path: Annotated[str | None, Field(description="a file; omit for the namespace's audit log")] = None,
        namespace: Namespace = "default",
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> FileHistory:
        """A memory file's versions (newest first), or without path the audit log: who changed what and why."""
        if path is None:
            return files.audit_tail(limit, namespace=namespace, cursor=cursor)
        return files.history(path, limit=limit, cursor=cursor, namespace=namespace)

    @server.resource(
        "memfile://{namespace}/{+path}",
        name="memory file",
        description=f"the latest text of a memory file; memfile://<namespace>/{TRANSCRIPT_PATH} is its transcript",
        mime_type="text/plain",
    )
    def memory_file(namespace: str, path: str) -> str:
        try:
            if path == TRANSCRIPT_PATH:
                messages = files.transcript(namespace).messages
                return "".join(jsonlib.dumps(m, ensure_ascii=False) + "\n" for m in messages)
            return str(files.read(path, namespace=namespace).content)
        except NotFound as exc:
            raise ResourceNotFoundError(str(exc)) from None
        except MemoryServerError as exc:
            raise ResourceError(str(exc)) from None
