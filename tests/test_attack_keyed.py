"""Hostile keyed-memory roots: version names no store can track, and a root inside the store itself."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from mcp_memory_server import MemoryStore
from mcp_memory_server.errors import AccessDenied, InvalidInput

INT64_MAX = 2**63 - 1


def _saved(root: Path, data_dir: Path, database_url: str | None) -> None:
    with MemoryStore.open(data_dir, memory_root=str(root), database_url=database_url) as writer:
        memory = writer.memories.get_or_create("agent-1")
        memory.write_text("notes.md", "v1")
        assert memory.save() == 1


@pytest.mark.parametrize("version", [INT64_MAX + 1, 10**30], ids=["int64-max+1", "30-digits"])
def test_a_planted_version_past_64_bits_is_refused_before_anything_is_loaded(
    tmp_path: Path, fresh_database_url: Callable[[], str | None], version: int
) -> None:
    """It was imported into the namespace and then refused by the tracking row, leaving files no save
    could ever claim ('namespace holds files not loaded from memory'); now nothing is loaded."""
    root = tmp_path / "memories"
    _saved(root, tmp_path / "writer", fresh_database_url())
    shutil.copy(root / "agent-1" / "v000001.tar.gz", root / "agent-1" / f"v{version}.tar.gz")
    with MemoryStore.open(tmp_path / "reader", memory_root=str(root), database_url=fresh_database_url()) as reader:
        with pytest.raises(InvalidInput, match=f"v{version}.tar.gz.*remove or rename it"):
            reader.memories.get_or_create("agent-1")
        assert reader.files.list_paths(namespace="agent-1") == []
        (root / "agent-1" / f"v{version}.tar.gz").unlink()
        assert reader.memories.get_or_create("agent-1").read_text("notes.md") == "v1"


def test_a_save_past_the_largest_version_is_refused_and_publishes_nothing(
    tmp_path: Path, fresh_database_url: Callable[[], str | None]
) -> None:
    """Saving after version 2**63-1 used to publish v2**63 and then fail: the save said no, the root said yes."""
    root = tmp_path / "memories"
    _saved(root, tmp_path / "writer", fresh_database_url())
    (root / "agent-1" / "v000001.tar.gz").rename(root / "agent-1" / f"v{INT64_MAX}.tar.gz")
    with MemoryStore.open(tmp_path / "reader", memory_root=str(root), database_url=fresh_database_url()) as reader:
        memory = reader.memories.get_or_create("agent-1")
        memory.write_text("more.md", "v2")
        with pytest.raises(InvalidInput, match="largest version"):
            memory.save()
    assert sorted(p.name for p in (root / "agent-1").iterdir()) == [f"v{INT64_MAX}.tar.gz"]


@pytest.mark.parametrize("inside", ["", "blobs", "files/default", "staging", "memories"])
def test_a_memory_root_inside_the_data_directory_is_refused(
    tmp_path: Path, database_url: str | None, inside: str
) -> None:
    """Archives written among the store's own files (staging/ bricked the next open) are refused, naming the fix."""
    data_dir = tmp_path / "store"
    with MemoryStore.open(data_dir, memory_root=str(data_dir / inside), database_url=database_url) as store:
        with pytest.raises(AccessDenied, match="inside the data directory"):
            store.memories.get_or_create("agent-1")
        assert store.files.list_paths(namespace="agent-1") == []
    assert not (data_dir / inside / "agent-1").exists()
    with MemoryStore.open(data_dir, database_url=database_url) as reopened:
        assert reopened.files.list_paths() == []
