"""Resources: artifact content by content address or id, in bounded chunks.

One read returns at most ``max_resource_bytes`` of content (a directory: one page of its
manifest), read from the blob at ``?offset=``, never the whole blob. Each read's
``_meta`` says where it stands: ``offset``, ``length``, ``total_bytes`` and, while more
remains, ``next_offset``, ``next_uri`` (the same resource at the next offset) and a hint
naming ``artifact_read``, so a client that only looks at the text still learns it has
a first chunk, not the whole.
"""

from __future__ import annotations

import functools
from typing import Any

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.server.mcpserver.resources import Resource, ResourceTemplate
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from ..core.artifacts import DIR_MIME, Chunk
from ..errors import InvalidInput, MemoryServerError, NotFound
from ..store import MemoryStore


class _ChunkResource(Resource):
    """A resource whose content, media type and ``_meta`` were settled by the read that made it."""

    content: str | bytes

    async def read(self) -> str | bytes:
        return self.content


class _ChunkTemplate(ResourceTemplate):
    """A template whose function returns a whole :class:`_ChunkResource` (the SDK's own keeps only the content).

    The SDK wraps a template function's result in a resource carrying the template's
    static media type and ``_meta``; a chunk needs its own (where to continue, the
    artifact's real media type), so the resource the function builds is served as is.
    """

    async def create_resource(self, uri: str, params: dict[str, Any], context: Context[Any, Any]) -> Any:
        try:
            return await anyio.to_thread.run_sync(functools.partial(self.fn, **params))
        except (ResourceError, MCPError):
            raise
        except Exception as exc:
            raise ResourceError(f"could not read {uri}: {exc}") from exc


def _offset(raw: str | None) -> int:
    if raw is None or raw == "":
        return 0
    if not raw.isascii() or not raw.isdigit():
        raise MCPError(code=INVALID_PARAMS, message=f"offset={raw!r} must be a non-negative integer (a next_offset)")
    return int(raw)


def _resource(store: MemoryStore, uri: str, base: str, ref: str, raw_offset: str | None) -> _ChunkResource:
    offset = _offset(raw_offset)
    try:
        chunk = store.artifacts.read_chunk(ref, offset=offset, limit=store.config.max_resource_bytes)
    except NotFound as exc:
        raise ResourceNotFoundError(str(exc)) from None
    except InvalidInput as exc:
        raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None
    except MemoryServerError as exc:
        raise ResourceError(str(exc)) from None
    record = chunk.artifact
    mime = "application/json" if record.is_dir else record.mime
    return _ChunkResource(uri=uri, name=record.name or record.artifact_id, mime_type=mime,
                          meta=_meta(chunk, base), content=chunk.content)  # fmt: skip


def _meta(chunk: Chunk, base: str) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "artifact_id": chunk.artifact.artifact_id,
        "offset": chunk.offset,
        "length": chunk.end - chunk.offset,
        "total_bytes": chunk.total_bytes,
        "next_offset": chunk.next_offset,
    }
    if chunk.next_offset is not None:
        what = "manifest page" if chunk.artifact.mime == DIR_MIME else "chunk"
        meta["next_uri"] = f"{base}?offset={chunk.next_offset}"
        meta["hint"] = (
            f"this is one {what} ({meta['length']} of {chunk.total_bytes} bytes); read next_uri, or call "
            f"artifact_read(artifact_id={chunk.artifact.artifact_id!r}, offset={chunk.next_offset}), for the rest"
        )
    return meta


def _add(server: MCPServer, fn: Any, uri_template: str, name: str, description: str) -> None:
    template = _ChunkTemplate.from_function(fn, uri_template=uri_template, name=name, description=description)
    # MCPServer.resource() would build a plain ResourceTemplate; the manager's table is the one place to put ours.
    server._resource_manager._templates[template.uri_template] = template


def register_resources(server: MCPServer, store: MemoryStore) -> None:
    limit = store.config.max_resource_bytes
    paging = f"at most {limit} bytes per read; _meta.next_uri (…?offset=N) continues"

    def cas_content(digest: str, offset: str | None = None) -> _ChunkResource:
        base = f"cas://sha256/{digest}"
        uri = base if offset is None else f"{base}?offset={offset}"
        return _resource(store, uri, base, base, offset)

    def artifact_content(artifact_id: str, offset: str | None = None) -> _ChunkResource:
        base = f"artifact://{artifact_id}"
        uri = base if offset is None else f"{base}?offset={offset}"
        return _resource(store, uri, base, artifact_id, offset)

    _add(server, cas_content, "cas://sha256/{digest}{?offset}", "content", f"artifact bytes by sha256; {paging}")
    _add(server, artifact_content, "artifact://{artifact_id}{?offset}", "artifact",
         f"artifact content by id; {paging}")  # fmt: skip
