"""A trivial MCP server on the same SDK: the floor that tool-call latency is compared against.

One no-op tool with a structured (pydantic) result, served over stdio exactly like
mcp-memory-server, so the difference between the two is our own work per call.
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel


class Ok(BaseModel):
    ok: bool


server = MCPServer("trivial", log_level="WARNING")


@server.tool(structured_output=True)
def noop() -> Ok:
    """Do nothing and say so."""
    return Ok(ok=True)


if __name__ == "__main__":
    server.run("stdio")
