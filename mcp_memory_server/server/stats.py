"""``memory_stats``: served whichever tool groups are enabled."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from ..models import Stats
from ..store import MemoryStore
from ._tools import register


def register_tools(server: MCPServer, store: MemoryStore) -> None:
    @register(server, read_only=True, idempotent=True, title="Memory statistics")
    def memory_stats() -> Stats:
        """Counts, sizes, model status: what the store holds."""
        return store.stats()
