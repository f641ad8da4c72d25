"""memory_stats costs the same filesystem work at 10 blobs as at 200: counts and sizes come from the database.

Filesystem calls are counted, not timed: an audit hook sees every directory listing in
any thread (the in-process MCP client serves tools on worker threads), and a profile hook
counts ``os`` calls (stat included) made by a direct ``MemoryStore.stats()``.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _mcp import call
from mcp import Client

from mcp_memory_server.server import build_server
from mcp_memory_server.store import MemoryStore

pytestmark = pytest.mark.anyio

_LISTINGS: Counter[str] = Counter()
_LISTING_EVENTS = ("os.scandir", "os.listdir", "os.walk", "glob.glob")
_listening = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _listening and event in _LISTING_EVENTS:
        _LISTINGS[event] += 1


sys.addaudithook(_audit)  # cannot be removed; idle unless _listening


def os_calls(action: Callable[[], object]) -> Counter[str]:
    """The ``os`` functions (stat, scandir, …) ``action`` called on this thread, by name."""
    seen: Counter[str] = Counter()

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "c_call" and getattr(arg, "__module__", None) in ("posix", "nt", "os"):
            seen[arg.__name__] += 1

    sys.setprofile(profile)
    try:
        action()
    finally:
        sys.setprofile(None)
    return seen


def fill(store: MemoryStore, blobs: int) -> None:
    for i in range(blobs):
        store.artifacts.save_text(f"blob number {i} " + "x" * i, kind="note")


@pytest.mark.parametrize("blobs", [10, 200])
def test_warm_stats_makes_no_more_os_calls_at_200_blobs_than_at_10(tmp_path: Path, blobs: int) -> None:
    with MemoryStore.open(tmp_path / "s") as store:
        fill(store, blobs)
        first = store.stats()
        assert first.counts["blobs"] == blobs
        on_disk = sum(p.stat().st_size for p in (tmp_path / "s" / "blobs").rglob("*") if p.is_file())
        assert first.sizes["blob_bytes"] == on_disk  # the cached sizes are the real ones
        calls = os_calls(store.stats)
    assert not {"scandir", "listdir", "stat", "lstat"} & set(calls), calls


@pytest.mark.sqlite_only  # page_count and page_size are SQLite's PRAGMAs over its one file
def test_the_database_size_is_its_page_count_times_page_size(tmp_path: Path) -> None:
    with MemoryStore.open(tmp_path / "s") as store:
        fill(store, 3)
        pages = store.db.query("PRAGMA page_count")[0][0] * store.db.query("PRAGMA page_size")[0][0]
        assert store.stats().sizes["database_bytes"] == pages > 0


async def test_memory_stats_over_mcp_lists_no_directory_at_any_blob_count(
    tmp_path: Path, fresh_database_url: Callable[[], str | None]
) -> None:
    global _listening
    counts = {}
    for blobs in (10, 200):
        with MemoryStore.open(tmp_path / f"s{blobs}", database_url=fresh_database_url()) as store:
            fill(store, blobs)
            async with Client(build_server(store)) as client:
                assert (await call(client, "memory_stats"))["counts"]["blobs"] == blobs  # warms the size cache
                _LISTINGS.clear()
                _listening = True
                try:
                    stats = await call(client, "memory_stats")
                finally:
                    _listening = False
            assert stats["counts"]["blobs"] == blobs
            counts[blobs] = sum(_LISTINGS.values())
    assert counts == {10: 0, 200: 0}


def test_blobs_count_what_records_reference_not_what_waits_for_gc(tmp_path: Path) -> None:
    """After gc removes the records, their blobs (kept on disk for gc's grace hour) are no longer counted."""
    with MemoryStore.open(tmp_path / "s") as store:
        fill(store, 4)
        assert store.stats().counts["blobs"] == 4
        assert store.gc(older_than_days=0, dry_run=False).records_removed == 4
        stats = store.stats()
        assert stats.counts["blobs"] == 0 and stats.sizes["blob_bytes"] == 0
        assert sum(1 for _ in store.blobs.digests()) == 4  # still on disk, young: gc's to remove later
