"""gc never deletes the content of an acknowledged write, even when the write reuses an old orphan blob.

The race itself lives in ``_gc_race`` (the slow concurrency campaign runs it for hundreds of
rounds); here a short run of it, plus the single-process orderings it relies on, forced
deterministically so that each one is exercised on every run.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from _gc_race import race

from mcp_memory_server import MemoryStore
from mcp_memory_server.errors import StorageError
from mcp_memory_server.storage.blobs import LocalBlobStore


def _age(store: MemoryStore, digest: str) -> None:
    old = time.time() - 3 * 3600
    os.utime(store.blobs.local_path(digest), (old, old))


def test_saves_raced_against_gc_in_several_processes_lose_no_acknowledged_write(tmp_path: Path) -> None:
    """Text, directory, file_write and files import of old-orphan bytes vs two gc --apply loops: all read back."""
    figures = race(tmp_path, rounds=12)
    assert figures["acknowledged"] == 12 * 4
    assert figures["blobs_removed"] > 0  # gc really ran and deleted orphans meanwhile


def test_a_blob_gc_deletes_after_the_save_staged_it_is_restored_inside_the_saves_transaction(
    store: MemoryStore,
) -> None:
    """The interleaving that lost data: the save finds the old blob, gc deletes it, the save commits."""
    orphan = store.artifacts.save_text("reused bytes " * 100)
    store.artifacts.delete(orphan.artifact_id)
    _age(store, orphan.sha256)
    with store.blobs.pending() as pending:
        info = pending.put_bytes(("reused bytes " * 100).encode())  # finds the orphan and reuses it
        assert info.sha256 == orphan.sha256
        assert store.gc(dry_run=False).blobs_removed == 1  # gc gets in between
        assert not store.blobs.exists(orphan.sha256)
        with store.db.write() as conn:
            pending.confirm(conn, [info.sha256])
            assert store.blobs.exists(info.sha256)
    again = store.artifacts.save_text("reused bytes " * 100)
    assert store.gc(dry_run=False).blobs_removed == 0
    assert store.artifacts.read(again.artifact_id).content == "reused bytes " * 100


def test_a_streamed_blob_removed_before_its_reference_commits_comes_back_from_the_staged_copy(
    store: MemoryStore,
) -> None:
    """A staged stream keeps a hard-linked copy until the reference commits, so gc cannot take its bytes."""
    with store.blobs.pending() as pending:
        temp = pending.temp()
        temp.write(b"streamed " * 1000)
        staged = temp.finish()
        _age(store, staged.sha256)
        assert store.gc(dry_run=False).blobs_removed == 1
        with store.db.write() as conn:
            pending.confirm(conn, [staged.sha256])
        assert store.blobs.read(staged.sha256) == b"streamed " * 1000
    assert not staged.path.exists()  # the staged copy goes once the write is done


def test_a_blob_gc_deletes_right_after_the_save_published_it_is_no_error_and_comes_back(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gc's delete landing between the save's hard link and its chmod (CI caught it: "the staged
    copy of blob … is gone") is a race the save wins: the staged copy is intact, and the
    save's transaction publishes the blob again."""
    assert isinstance(store.blobs, LocalBlobStore)  # a bucket publishes by upload-if-absent: no such window
    real_link = os.link
    collected: list[str] = []

    def link_then_collect(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        real_link(source, target)
        if Path(target).parent.parent.parent.name == "sha256" and not collected:
            collected.append(Path(target).name)
            store.blobs.delete(Path(target).name)  # what gc does at that instant

    monkeypatch.setattr(os, "link", link_then_collect)
    saved = store.artifacts.save_text("collected at the worst moment " * 100)
    monkeypatch.undo()
    assert collected == [saved.sha256]
    assert store.artifacts.read(saved.artifact_id).content == "collected at the worst moment " * 100
    assert store.gc(dry_run=False).blobs_removed == 0


def test_confirm_refuses_a_digest_that_is_neither_stored_nor_staged(store: MemoryStore) -> None:
    """A reference to bytes nobody holds is refused inside the transaction instead of committed."""
    with (
        store.blobs.pending() as pending,
        pytest.raises(StorageError, match="missing from the blob folder"),
        store.db.write() as conn,
    ):
        pending.confirm(conn, ["0" * 64])
    assert store.artifacts.count() == 0


def test_gc_still_removes_old_orphans_and_keeps_young_ones(store: MemoryStore) -> None:
    """Batched gc: every unreferenced blob past the grace goes, young and referenced ones stay."""
    kept = store.artifacts.save_text("kept")
    orphans = [store.artifacts.save_text(f"orphan {i}") for i in range(450)]  # more than one batch
    young = store.artifacts.save_text("young orphan")
    for record in [*orphans, young]:
        store.artifacts.delete(record.artifact_id)
    for record in [kept, *orphans]:
        _age(store, record.sha256)
    dry = store.gc()
    assert (dry.dry_run, dry.blobs_removed) == (True, 450)
    report = store.gc(dry_run=False)
    assert report.blobs_removed == 450
    assert report.bytes_freed == sum(r.bytes for r in orphans)
    assert sorted(store.blobs.digests()) == sorted([kept.sha256, young.sha256])


def test_a_missing_blob_degrades_one_search_hit_and_breaks_no_listing(store: MemoryStore) -> None:
    """file_list(query=…) still answers, in that namespace and every other, when one file's blob is gone."""
    store.files.write("lost.md", "the lost kingdom of blobs", namespace="a")
    store.files.write("kept.md", "the kingdom that stayed", namespace="a")
    store.files.write("other.md", "another kingdom", namespace="b")
    lost = store.files.read("lost.md", namespace="a").meta.sha256
    store.blobs.delete(lost)  # as if removed by hand
    found = store.files.list(query="kingdom", mode="lexical", namespace="a")
    assert [item.path for item in found.items] == ["kept.md"]  # the lost content is not indexed
    assert [item.path for item in store.files.list(query="lost", mode="lexical", namespace="a").items] == [
        "lost.md"
    ]  # but the file is still findable by its path
    assert [item.path for item in store.files.list(query="kingdom", mode="lexical", namespace="b").items] == [
        "other.md"
    ]
