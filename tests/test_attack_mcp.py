"""Answers that must stay within the tools' own published output schemas, whatever an agent stored."""

from __future__ import annotations

import pytest
from _mcp import call
from mcp import Client

from mcp_memory_server import MemoryStore

pytestmark = pytest.mark.anyio


async def test_memory_last_of_an_output_whose_value_is_null_answers_within_its_schema(
    client: Client, store: MemoryStore
) -> None:
    """A null output used to make memory_last's answer omit its required 'value': the SDK client raised."""
    await call(client, "memory_record_tool_result", tool="probe", outputs=[{"name": "x", "value": None}])
    answer = await call(client, "memory_last", name="x")
    assert answer["found"] is True
    assert answer["value"]["name"] == "x" and answer["value"]["kind"] == "null"
    assert answer["value"].get("value") is None
    assert store.events.last_by_name("x").value is None  # type: ignore[union-attr]
