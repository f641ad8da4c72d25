"""Flyte ``MemoryStore``'s names on ``store.files``, sync and async, against a real store."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_memory_server import AsyncMemoryStore, ConcurrencyError, Conflict, MemoryStore, NotFound


def test_flyte_text_and_json_round_trip(store: MemoryStore) -> None:
    """write_text/read_text and write_json/read_json store new versions and read them back."""
    files = store.files
    files.write_text("notes/plan.md", "step 1")
    files.write_json("state/config.json", {"lr": 0.04, "steps": [1, 2]})
    assert files.read_text("notes/plan.md") == "step 1"
    assert files.read_json("state/config.json") == {"lr": 0.04, "steps": [1, 2]}
    assert files.list_paths() == ["notes/plan.md", "state/config.json"]
    assert files.list_paths("state/") == ["state/config.json"]


def test_read_json_default_on_missing_or_empty(store: MemoryStore) -> None:
    """read_json returns the default for a missing path and for an empty file; read_text too when missing."""
    files = store.files
    assert files.read_json("state/none.json", default={}) == {}
    files.write_text("state/empty.json", "")
    assert files.read_json("state/empty.json", default=[]) == []
    assert files.read_text("nope.md", default="") == ""
    with pytest.raises(NotFound):
        files.read_text("nope.md")


def test_exists_current_sha_and_get_meta(store: MemoryStore) -> None:
    """current_sha is "" when absent and the content hash after a write; a deleted path does not exist."""
    files = store.files
    assert files.current_sha("a.md") == "" and not files.exists("a.md") and files.get_meta("a.md") is None
    meta = files.write_text("a.md", "hello")
    assert files.current_sha("a.md") == meta.sha256 and files.exists("a.md")
    assert files.get_meta("a.md") == meta
    files.delete("a.md")
    assert not files.exists("a.md") and files.current_sha("a.md") == ""


def test_expected_sha_conflict_raises_concurrency_error(store: MemoryStore) -> None:
    """A stale expected_sha raises Conflict, catchable as Flyte's ConcurrencyError, and changes nothing."""
    files = store.files
    first = files.write_text("plan.md", "v1")
    files.write_text("plan.md", "v2", expected_sha=first.sha256)
    assert ConcurrencyError is Conflict
    with pytest.raises(ConcurrencyError):
        files.write_text("plan.md", "v3", expected_sha=first.sha256)
    with pytest.raises(ConcurrencyError):
        files.write_text("plan.md", "again", expected_sha="")
    assert files.read_text("plan.md") == "v2"


def test_transcript_append_extend_flush_messages(data_dir: Path) -> None:
    """append/extend buffer messages; flush_messages persists them; a new store sees them all."""
    with MemoryStore.open(data_dir) as store:
        store.files.append({"role": "user", "content": "hi"})
        store.files.extend([{"role": "assistant", "content": "hello"}, {"role": "user", "content": "bye"}])
        assert store.files.flush_messages() == 3
        assert store.files.flush_messages() == 0
        store.files.append({"role": "user", "content": "unflushed"})
    with MemoryStore.open(data_dir) as again:
        assert [m["content"] for m in again.files.transcript().messages] == ["hi", "hello", "bye"]


def test_audit_tail_lists_flyte_writes(store: MemoryStore) -> None:
    """audit_tail shows each write made through the Flyte names, oldest first."""
    store.files.write_text("a.md", "1")
    store.files.write_text("a.md", "2")
    assert [e.op for e in store.files.audit_tail(10).audit] == ["create", "update"]


@pytest.mark.anyio
async def test_flyte_names_are_coroutines_on_the_async_store(data_dir: Path) -> None:
    """The same names work awaited on AsyncMemoryStore.files."""
    async with await AsyncMemoryStore.open(data_dir) as store:
        files = store.files
        meta = await files.write_json("state.json", {"step": 1})
        assert await files.read_json("state.json") == {"step": 1}
        assert await files.current_sha("state.json") == meta.sha256
        with pytest.raises(ConcurrencyError):
            await files.write_json("state.json", {"step": 2}, expected_sha="0" * 64)
        await files.append({"role": "user", "content": "hi"})
        assert await files.flush_messages() == 1
        assert await files.list_paths() == ["state.json"]
