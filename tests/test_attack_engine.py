"""Values that no engine can bind must come back as InvalidInput from the engine layer, on both engines."""

from __future__ import annotations

import pytest

from mcp_memory_server import InvalidInput, MemoryStore


def test_a_lone_surrogate_reaching_a_query_is_invalid_input(store: MemoryStore) -> None:
    """Lookups pass ids straight to SQL; a lone surrogate was a bare UnicodeEncodeError from the driver."""
    with pytest.raises(InvalidInput, match="lone surrogate"):
        store.artifacts.get("art_\ud800")


def test_a_lone_surrogate_reaching_a_write_is_invalid_input_and_writes_nothing(store: MemoryStore) -> None:
    """Inside a write transaction too: the transaction is rolled back and the error is ours."""
    count = "SELECT COUNT(*) FROM event_log_state"
    before = store.db.query(count)[0][0]
    with pytest.raises(InvalidInput, match="lone surrogate"), store.db.write() as conn:
        conn.execute("INSERT INTO event_log_state (key, value) VALUES (?, ?)", ("ok", 1))
        conn.execute("INSERT INTO event_log_state (key, value) VALUES (?, ?)", ("\udc80", 1))
    assert store.db.query(count)[0][0] == before
