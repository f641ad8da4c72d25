"""Calling tools in tests: ``call`` expects success, ``error`` expects a clean tool error."""

from __future__ import annotations

from typing import Any

from mcp import Client


async def call(client: Client, tool_name: str, /, **arguments: Any) -> dict[str, Any]:
    """The structured result of a tool call that must succeed."""
    result = await client.call_tool(tool_name, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def error(client: Client, tool_name: str, /, **arguments: Any) -> str:
    """The message of a tool call that must fail cleanly (isError, no traceback)."""
    result = await client.call_tool(tool_name, arguments)
    assert result.is_error, result.structured_content
    text = result.content[0].text  # type: ignore[union-attr]
    assert "Traceback" not in text
    return text
