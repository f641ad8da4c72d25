"""A full disk and a read-only data directory: every write tool says so clearly, and the store stays intact.

The store lives on a real size-limited tmpfs (``mount -t tmpfs -o size=…``), filled with a
ballast file, or remounted read-only. Root bypasses file permissions, so a chmod would
prove nothing here; a read-only mount does. Mounting needs root (or CAP_SYS_ADMIN): where
it is not permitted the tests skip and say why.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _engine import integrity
from mcp import Client

from mcp_memory_server import MemoryStore, StorageError
from mcp_memory_server.server import build_server

pytestmark = pytest.mark.anyio


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted at a temp folder, unmounted afterwards."""
    mount_point = tmp_path / "mnt"
    mount_point.mkdir()
    done = _run("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here (needs root/CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        _run("umount", "-l", str(mount_point))


def fill(folder: Path) -> Path:
    """Write a ballast file until the filesystem has no space left; return it."""
    ballast = folder / "ballast.bin"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for size in (64 << 10, 512):  # big steps, then small ones for the last few KiB
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return ballast


async def call(client: Client, tool: str, /, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def error(client: Client, tool: str, /, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, f"{tool} succeeded: {result.structured_content}"
    text: str = result.content[0].text  # type: ignore[union-attr]
    assert "Traceback" not in text and text.strip() != f"Error executing tool {tool}", text
    return text


BIG = "the quick brown fox " * 5000  # 100 KB: more than any free page SQLite or the WAL could reuse


def big_writes() -> list[tuple[str, dict[str, Any]]]:
    """One large write per write tool (each needs fresh space on disk)."""
    return [
        ("artifact_save", {"base64": base64.b64encode(os.urandom(200_000)).decode(), "kind": "blob"}),
        ("artifact_save", {"text": BIG + "artifact", "kind": "report"}),
        ("memory_record", {"kind": "note", "text": BIG + "event"}),
        ("file_write", {"path": "notes/big.md", "text": BIG + "file"}),
        ("experiment_log", {"description": "big run", "status": "discard", "log_text": BIG + "log"}),
        ("graph_write", {"nodes": [{"node_type": "semantic", "payload": {"fact": BIG + "fact"}}]}),
    ]


def assert_sound(data_dir: Path) -> None:
    """The engine's integrity check ok, every blob's bytes match its name, no temp file left in the blob folder."""
    assert integrity(data_dir) == [("ok",)]
    for path in (data_dir / "blobs" / "sha256").glob("*/*/*"):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name, f"corrupt blob {path}"
    assert list((data_dir / "blobs").glob(".tmp-*")) == []


async def seed(client: Client) -> dict[str, str]:
    """A few acknowledged writes of each kind, to check they survive."""
    return {
        "artifact": (await call(client, "artifact_save", text="kept report", kind="report"))["artifact_id"],
        "event": (await call(client, "memory_record", kind="note", text="kept note"))["event_id"],
        "file": (await call(client, "file_write", path="notes/kept.md", text="kept file"))["sha256"],
    }


async def check_seed(client: Client, acks: dict[str, str]) -> None:
    read = await call(client, "artifact_read", artifact_id=acks["artifact"])
    assert read["content"] == "kept report"
    recent = await call(client, "memory_recent", limit=50)
    assert acks["event"] in {e["event_id"] for e in recent["events"]}
    assert (await call(client, "file_read", path="notes/kept.md"))["meta"]["sha256"] == acks["file"]


async def test_a_full_disk_gives_every_write_tool_a_clear_error_and_the_store_recovers_intact(
    small_fs: Path, engine: str
) -> None:
    """On a full tmpfs each large write is isError 'disk … full'; after freeing space they succeed, nothing corrupt.

    On PostgreSQL the records live on the database server, not on the full disk: the writes
    that need no blob (an event, a graph node) succeed, every other one fails as on SQLite.
    """
    data_dir = small_fs / "store"
    with MemoryStore.open(data_dir) as store:
        async with Client(build_server(store)) as client:
            acks = await seed(client)
            ballast = fill(small_fs)
            failures = 0
            for tool, arguments in big_writes():
                if engine == "postgres" and tool in ("memory_record", "graph_write"):
                    await call(client, tool, **arguments)
                    continue
                message = await error(client, tool, **arguments)
                assert "full" in message.lower() and "free space" in message, (tool, message)
                failures += 1
            await check_seed(client, acks)  # reads still work on a full disk
            stats = await call(client, "memory_stats")
            assert stats["counts"]["artifacts"] == 1  # the failed saves left no record

            ballast.unlink()
            for tool, arguments in big_writes():
                await call(client, tool, **arguments)
            await check_seed(client, acks)
    assert failures == len(big_writes()) - (2 if engine == "postgres" else 0)
    assert_sound(data_dir)


async def test_a_blob_folder_made_read_only_under_a_running_server_refuses_saves_clearly_and_loses_nothing(
    small_fs: Path,
) -> None:
    """blobs/ bind-mounted read-only mid-run: content writes are isError 'not writable'; reads and events go on."""
    data_dir = small_fs / "store"
    blobs = data_dir / "blobs"
    with MemoryStore.open(data_dir) as store:
        async with Client(build_server(store)) as client:
            acks = await seed(client)
            done = _run("mount", "--bind", str(blobs), str(blobs))
            if done.returncode != 0:
                pytest.skip(f"cannot bind-mount the blob folder: {done.stderr.strip()}")
            try:
                done = _run("mount", "-o", "remount,bind,ro", str(blobs))
                assert done.returncode == 0, done.stderr
                await check_seed(client, acks)
                for tool, arguments in big_writes():
                    if tool in ("memory_record", "graph_write"):
                        await call(client, tool, **arguments)  # no blob: the database is still writable
                        continue
                    message = await error(client, tool, **arguments)
                    assert "not writable" in message and "permissions" in message, (tool, message)
                await check_seed(client, acks)
                stats = await call(client, "memory_stats")
                assert stats["counts"]["artifacts"] == 1  # the refused saves left no record
            finally:
                _run("umount", "-l", str(blobs))
            await call(client, "artifact_save", text="writable again", kind="report")
            await check_seed(client, acks)
    assert_sound(data_dir)


@pytest.mark.sqlite_only  # the records are in the read-only directory only when they are memory.db
def test_opening_a_store_in_a_read_only_directory_fails_with_a_message_that_says_so(small_fs: Path) -> None:
    """A cleanly closed WAL store on a read-only mount cannot be opened: StorageError naming the read-only directory."""
    data_dir = small_fs / "store"
    with MemoryStore.open(data_dir) as store:
        store.events.record("note", text="before the remount")
    done = _run("mount", "-o", "remount,ro", str(small_fs))
    if done.returncode != 0:
        pytest.skip(f"cannot remount the tmpfs read-only: {done.stderr.strip()}")
    try:
        with pytest.raises(StorageError, match=r"read-only.*make it writable"):
            MemoryStore.open(data_dir)
    finally:
        _run("mount", "-o", "remount,rw", str(small_fs))
    with MemoryStore.open(data_dir) as store:
        assert store.events.recent(limit=1)[0].text == "before the remount"
    assert_sound(data_dir)
