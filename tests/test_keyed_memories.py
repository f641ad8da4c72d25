"""Keyed memories, Flyte-style: create / get_or_create / save / exists under ``memory_root``.

Each "host" is its own data directory (and, on PostgreSQL, its own database), so what one
saves reaches another only through the root: a real directory, or a real S3 bucket (moto).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _s3 import BUCKET, client_env

from mcp_memory_server import AsyncMemoryStore, MemoryStore
from mcp_memory_server.errors import Conflict, InvalidInput

Opener = Callable[[str], MemoryStore]


@pytest.fixture(params=["directory", "bucket"])
def root(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "directory":
        return str(tmp_path / "memories")
    for name, value in client_env(request.getfixturevalue("s3_endpoint")).items():
        monkeypatch.setenv(name, value)
    return f"s3://{BUCKET}/keyed-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def host(tmp_path: Path, root: str, fresh_database_url: Callable[[], str | None]) -> Iterator[Opener]:
    """Opens a store as a separate host would: its own data directory and database, one memory_root."""
    opened: list[MemoryStore] = []

    def open_host(name: str) -> MemoryStore:
        store = MemoryStore.open(tmp_path / name, memory_root=root, database_url=fresh_database_url())
        opened.append(store)
        return store

    yield open_host
    for store in opened:
        store.close()


def test_a_saved_memory_is_loaded_whole_by_another_host(host: Opener) -> None:
    first = host("a")
    memory = first.memories.get_or_create("agent-42")
    assert memory.version == 0 and not first.memories.exists("agent-42")
    memory.write_text("notes/plan.md", "ship the parser")
    memory.write_json("profile.json", {"tone": "terse"})
    memory.write_text("notes/plan.md", "ship the parser, then the docs")
    memory.append({"role": "user", "content": "hello"})
    assert memory.save() == 1
    assert first.memories.exists("agent-42")

    second = host("b")
    loaded = second.memories.get_or_create("agent-42")
    assert loaded.version == 1
    assert loaded.read_text("notes/plan.md") == "ship the parser, then the docs"
    assert loaded.read_json("profile.json") == {"tone": "terse"}
    assert loaded.list_paths() == ["notes/plan.md", "profile.json"]
    history = second.files.history("notes/plan.md", namespace="agent-42")
    assert [v.version for v in history.versions] == [2, 1]
    assert list(second.files.transcript("agent-42")) == [{"role": "user", "content": "hello"}]


def test_saving_twice_adds_versions_and_the_newest_is_what_loads(host: Opener) -> None:
    first = host("a")
    memory = first.memories.create("k")
    memory.write_text("a.txt", "one")
    assert memory.save() == 1
    memory.write_text("a.txt", "two")
    assert memory.save() == 2
    again = first.memories.get_or_create("k")  # this host's copy, not a reload
    assert again.version == 2 and again.read_text("a.txt") == "two"
    assert host("b").memories.get_or_create("k").read_text("a.txt") == "two"


def test_of_two_hosts_saving_the_same_version_exactly_one_wins(host: Opener) -> None:
    origin = host("origin")
    memory = origin.memories.get_or_create("shared")
    memory.write_text("doc.md", "base")
    memory.save()
    stores = [host(f"h{i}") for i in range(4)]
    copies = [store.memories.get_or_create("shared") for store in stores]
    for i, copy in enumerate(copies):
        copy.write_text("doc.md", f"edit by {i}")
    outcomes: list[object] = [None] * len(copies)
    barrier = threading.Barrier(len(copies))

    def save(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = copies[i].save()
        except Conflict as lost:
            outcomes[i] = lost

    threads = [threading.Thread(target=save, args=(i,)) for i in range(len(copies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [i for i, o in enumerate(outcomes) if o == 2]
    assert len(winners) == 1, outcomes
    losers = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(losers) == len(copies) - 1
    assert "version 2" in str(losers[0]) and "get_or_create" in str(losers[0])
    fresh = host("reader").memories.get_or_create("shared")
    assert fresh.version == 2 and fresh.read_text("doc.md") == f"edit by {winners[0]}"
    # A loser merges by loading the winner beside its own copy, then saves version 3.
    lost = (winners[0] + 1) % len(copies)
    loser = copies[lost]
    merged = stores[lost].memories.get_or_create("shared", namespace="shared-merge")
    assert merged.version == 2
    merged.write_text("doc.md", merged.read_text("doc.md") + "\n" + loser.read_text("doc.md"))
    assert merged.save() == 3


def test_refusals_say_what_to_do_and_change_nothing(host: Opener, tmp_path: Path) -> None:
    store = host("a")
    with pytest.raises(InvalidInput, match="memory key"):
        store.memories.get_or_create("../escape")
    with pytest.raises(InvalidInput, match="empty"):
        store.memories.create("empty").save()
    memory = store.memories.get_or_create("taken")
    memory.write_text("x.txt", "x")
    memory.save()
    with pytest.raises(Conflict, match="get_or_create"):
        host("b").memories.create("taken")
    store.files.write("loose.txt", "not a memory", namespace="busy")
    with pytest.raises(Conflict, match="not loaded from memory"):
        store.memories.get_or_create("busy")
    url = os.environ.get("MCP_MEMORY_DATABASE_URL")
    with (
        MemoryStore.open(tmp_path / "no-root", database_url=url) as bare,
        pytest.raises(InvalidInput, match="memory_root"),
    ):
        bare.memories.get_or_create("k")


@pytest.mark.anyio
async def test_the_async_api_has_the_same_names(tmp_path: Path, root: str) -> None:
    async with await AsyncMemoryStore.open(tmp_path / "async", memory_root=root) as store:
        memory = await store.memories.get_or_create("async-key")
        await memory.write_text("a.txt", "from async")
        assert await memory.save() == 1
        assert await store.memories.exists("async-key")
        assert memory.version == 1
