"""Search wiring shared by the tool groups: when the model starts loading, and progress while waiting.

The model must never load before the handshake is answered (importing torch takes
seconds of CPU and stalls other threads), so a middleware starts background indexing
after the first message that is neither ``initialize`` nor ``server/discover`` (normally
the ``notifications/initialized`` that follows the handshake), and the model load a little
later, when the burst of calls that opens a session is over. A semantic search before then
starts the load at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio.from_thread
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer

if TYPE_CHECKING:
    from ..core.search import ProgressFn
    from ..store import MemoryStore

__all__ = ["load_model_after_handshake", "progress_reporter"]

MODEL_LOAD_DELAY_S = 2.0


def load_model_after_handshake(server: MCPServer, store: MemoryStore) -> None:
    """Start loading the embedding model (and background indexing) once the handshake is done."""

    async def start_search(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method not in ("initialize", "server/discover"):
            store.search.start_background(model_delay=MODEL_LOAD_DELAY_S)
        return result

    server.middleware.append(start_search)


def progress_reporter(ctx: Context) -> ProgressFn:
    """A progress callback that tool code running on a worker thread can call."""

    def report(done: float, total: float | None, message: str) -> None:
        anyio.from_thread.run(ctx.report_progress, done, total, message)

    return report
