"""Resources: artifact content by content address or id."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

from ..errors import MemoryServerError, NotFound
from ..store import MemoryStore


def _content(store: MemoryStore, ref: str) -> str | bytes:
    try:
        record = store.artifacts.get(ref)
        data = store.artifacts.read_bytes(record)
    except NotFound as exc:
        raise ResourceNotFoundError(str(exc)) from None
    except MemoryServerError as exc:
        raise ResourceError(str(exc)) from None
    if record.is_dir or record.mime.startswith("text/") or record.mime == "application/json":
        return data.decode("utf-8", errors="replace")
    return data


def register_resources(server: MCPServer, store: MemoryStore) -> None:
    @server.resource("cas://sha256/{digest}", name="content", description="artifact bytes by sha256")
    def cas_content(digest: str) -> str | bytes:
        return _content(store, f"cas://sha256/{digest}")

    @server.resource("artifact://{artifact_id}", name="artifact", description="artifact content by id")
    def artifact_content(artifact_id: str) -> str | bytes:
        return _content(store, artifact_id)
