"""The ``files`` tool group and the ``memfile://`` resource: thin adapters over :class:`~mcp_memory_server.core.files.Files`."""

from __future__ import annotations

import json as jsonlib
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from pydantic import Field

from ..core._paths import RESERVED
from ..errors import MemoryServerError, NotFound
from ..models import FileAuditEntry, FileContent, FileHistory, FileList, FileMeta
from ..store import MemoryStore
from ._search import SEARCH_MODE, progress_reporter
from ._tools import exactly_one, register

TRANSCRIPT_PATH = f"{RESERVED}/transcript.jsonl"

Namespace = Annotated[str, Field(description="namespace: one segment such as 'default', a user or a project")]
FilePath = Annotated[str, Field(description="relative POSIX path inside the namespace, e.g. 'notes/plan.md'")]
ExpectedSha = Annotated[
    str | None,
    Field(
        description="null: write unconditionally; '': only create (fail if it exists); a sha256: only if that "
        "is still the current content (compare-and-swap; use the sha256 file_read returned)"
    ),
]
Actor = Annotated[str, Field(description="who is making the change, recorded in the audit log")]
Reason = Annotated[str, Field(description="why, recorded in the audit log")]


def register_tools(server: MCPServer, store: MemoryStore) -> None:
    files = store.files
    config = store.config

    @register(server, destructive=True, idempotent=True, title="Write a memory file")
    def file_write(
        path: FilePath,
        text: Annotated[str | None, Field(description="the new text content")] = None,
        json: Annotated[Any, Field(description="a JSON value, stored as indented JSON text")] = None,
        restore_version: Annotated[
            int | None, Field(description="write this old version's content back as a new version")
        ] = None,
        namespace: Namespace = "default",
        expected_sha: ExpectedSha = None,
        actor: Actor = "agent",
        reason: Reason = "",
    ) -> FileMeta:
        """Create or replace a memory file (notes, plans, profiles, scratchpads) as a new version.

        Give exactly one of text, json or restore_version. To edit safely when others may
        write too: read the file, then write with expected_sha set to the sha256 you read; a
        conflict error names the current sha. Every version is kept (see file_history).
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
        version: Annotated[int | None, Field(description="an old version number (default: the latest)")] = None,
        offset: Annotated[int, Field(description="byte offset to start from (see next_offset)")] = 0,
        length: Annotated[int | None, Field(description="most bytes to return")] = None,
    ) -> FileContent:
        """Read a memory file's text and metadata (sha256, version, who changed it and why).

        Pass the returned sha256 as expected_sha to file_write for a safe update. Long files
        come in chunks: call again with offset=next_offset until next_offset is null.
        """
        limit = config.max_response_bytes
        return files.read(path, version, offset=offset, length=min(length or limit, limit), namespace=namespace)

    @register(server, read_only=True, idempotent=True, title="List memory files")
    def file_list(
        ctx: Context,
        prefix: Annotated[str, Field(description="only paths starting with this, e.g. 'notes/'")] = "",
        namespace: Namespace = "default",
        recursive: Annotated[bool, Field(description="false: only this folder's files, plus its sub-folders")] = True,
        limit: Annotated[int, Field(description="page size")] = 50,
        cursor: Annotated[str | None, Field(description="next_cursor of the previous page")] = None,
        query: Annotated[str | None, Field(description="rank files under the prefix by relevance to this")] = None,
        mode: Annotated[Literal["hybrid", "semantic", "lexical"], SEARCH_MODE] = "hybrid",
    ) -> FileList:
        """List memory files in a namespace, sorted by path, with their sha256, size and version.

        With a query they come most relevant first (content and path, by words and meaning), with scores.
        """
        return files.list(prefix, recursive=recursive, limit=limit, cursor=cursor, namespace=namespace, query=query,
                          mode=mode, progress=None if query is None else progress_reporter(ctx))  # fmt: skip

    @register(server, destructive=True, title="Delete a memory file")
    def file_delete(
        path: FilePath,
        namespace: Namespace = "default",
        expected_sha: Annotated[
            str | None, Field(description="delete only if this is still the current sha256 (null: unconditional)")
        ] = None,
        actor: Actor = "agent",
        reason: Reason = "",
    ) -> FileAuditEntry:
        """Delete a memory file. Its history is kept: old versions can still be read and restored."""
        return files.delete(path, expected_sha=expected_sha, actor=actor, reason=reason, namespace=namespace)

    @register(server, read_only=True, idempotent=True, title="Memory file history and audit log")
    def file_history(
        path: Annotated[str | None, Field(description="a file's path; omit for the namespace's audit log")] = None,
        namespace: Namespace = "default",
        limit: Annotated[int, Field(description="page size")] = 50,
        cursor: Annotated[str | None, Field(description="next_cursor of the previous page (older entries)")] = None,
    ) -> FileHistory:
        """See every version of a memory file (newest first), or with no path the audit log of changes.

        Each entry says who changed what, when and why. Read an old version with file_read
        version=N; bring it back with file_write restore_version=N.
        """
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
