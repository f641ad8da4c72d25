"""One stored record must not be able to break search for everyone (a poisoned search document)."""

from __future__ import annotations

import pytest
from _mcp import call
from mcp import Client

from mcp_memory_server import MemoryStore

pytestmark = pytest.mark.anyio


async def test_a_file_holding_a_nul_byte_does_not_break_search(client: Client, store: MemoryStore) -> None:
    """On PostgreSQL the file's indexed text (with its NUL) could not be stored, and every later search of
    every source failed with "text holds a character PostgreSQL cannot store"; now the NUL is a word break."""
    await call(client, "file_write", path="notes/binaryish.md", text="zebra\x00quokka marsupial notes")
    await call(client, "memory_record", kind="note", text="a plain note about otters")
    found = await call(client, "file_list", query="quokka", mode="lexical")
    assert [f["path"] for f in found["items"]] == ["notes/binaryish.md"]
    hits = await call(client, "memory_search", query="otters", mode="lexical")
    assert len(hits["hits"]) == 1
    assert store.files.read("notes/binaryish.md").content == "zebra\x00quokka marsupial notes"
