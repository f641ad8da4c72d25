"""Across process boundaries: lazy start-up, shared stores, concurrent writers, kill -9, path safety."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from _mcp import call, error
from _procs import clean_env, launcher_command, read_line, run_python, stdio_params, wait_for_file
from mcp import Client
from mcp.shared.exceptions import MCPError

from mcp_memory_server import MemoryStore

pytestmark = pytest.mark.anyio

HEAVY_MODULES = ("torch", "sentence_transformers", "transformers")


def blob_files(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "blobs" / "sha256").glob("*/*/*") if p.is_file()]


def temp_files(data_dir: Path) -> list[Path]:
    return list((data_dir / "blobs").glob(".tmp-*"))


def assert_store_is_sound(data_dir: Path) -> None:
    """Integrity ok, every blob file holds exactly the bytes its name promises, every record's blobs exist.

    The integrity check is SQLite's, of its file; PostgreSQL guards its own pages (and a killed
    client cannot tear them).
    """
    url = os.environ.get("MCP_MEMORY_DATABASE_URL")
    if url:
        from mcp_memory_server.storage.postgres import PostgresDatabase

        db = PostgresDatabase(url)
        try:
            needed = {row[0] for row in db.query("SELECT sha256 FROM artifact_blobs")}
        finally:
            db.close()
    else:
        with sqlite3.connect(data_dir / "memory.db") as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            needed = {row[0] for row in conn.execute("SELECT sha256 FROM artifact_blobs")}
        conn.close()
    present = set()
    for path in blob_files(data_dir):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name, f"partial or corrupt blob {path}"
        present.add(path.name)
    assert needed <= present, f"records point at missing blobs: {sorted(needed - present)[:3]}"


# -- start-up --------------------------------------------------------------------------------------


def test_initialize_is_answered_before_torch_or_sentence_transformers_is_imported(
    data_dir: Path, tmp_path: Path
) -> None:
    """An import hook in the server marks each watched module's first import; none of the model stack by initialize.

    The client speaks raw JSON-RPC and sends nothing after ``initialize``, so the check
    sees the server exactly as it was when it answered (the model may load once the
    handshake is complete, which needs the client's next message).
    """
    markers = tmp_path / "imports"
    markers.mkdir()
    # The store module is watched too, to show the hook sees imports that do happen.
    watched = ",".join([*HEAVY_MODULES, "mcp_memory_server.store"])
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }
    process = subprocess.Popen(
        launcher_command(data_dir),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env=clean_env({"MCP_TEST_IMPORT_MARKERS": f"{markers}|{watched}"}),
    )  # fmt: skip
    try:
        assert process.stdin is not None
        process.stdin.write(json.dumps(initialize).encode() + b"\n")
        process.stdin.flush()
        answer = json.loads(read_line(process))
        imported_by_initialize = sorted(p.name for p in markers.iterdir())
    finally:
        process.kill()
        process.communicate()
    assert answer["result"]["serverInfo"]["name"] == "mcp-memory-server"
    assert imported_by_initialize == ["mcp_memory_server.store"]


# What registering the tools imports: a tool group, a capability, and the models behind answers.
REGISTRATION_MODULES = (
    "mcp_memory_server.server._params",
    "mcp_memory_server.core.graph.nodes",
    "mcp_memory_server.core.lab.novelty",
    "mcp_memory_server.models",
)


_MODERN = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
_HANDSHAKES = {
    "initialize": {"id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}},
    "server/discover": {"id": 1, "method": "server/discover", "params": {"_meta": _MODERN}},
}  # fmt: skip
_NEXT = {
    "initialize": [{"method": "notifications/initialized"}, {"id": 2, "method": "tools/list"}],
    "server/discover": [{"id": 2, "method": "tools/list", "params": {"_meta": _MODERN}}],
}


@pytest.mark.parametrize("handshake", sorted(_HANDSHAKES))
def test_tools_are_registered_after_the_handshake_is_answered_and_before_the_next_message(
    data_dir: Path, tmp_path: Path, handshake: str
) -> None:
    """The handshake (either protocol's) waits for no tool group: they load on the next message, all of them."""
    markers = tmp_path / "imports"
    markers.mkdir()
    process = subprocess.Popen(
        launcher_command(data_dir),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env=clean_env({"MCP_TEST_IMPORT_MARKERS": f"{markers}|{','.join(REGISTRATION_MODULES)}"}),
    )  # fmt: skip

    def send(message: dict[str, object]) -> None:
        assert process.stdin is not None
        process.stdin.write(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")
        process.stdin.flush()

    try:
        send(_HANDSHAKES[handshake])
        assert "result" in json.loads(read_line(process))
        imported_by_initialize = sorted(p.name for p in markers.iterdir())
        for message in _NEXT[handshake]:
            send(message)
        tools = [tool["name"] for tool in json.loads(read_line(process))["result"]["tools"]]
        imported_by_tools_list = sorted(p.name for p in markers.iterdir())
    finally:
        process.kill()
        process.communicate()
    assert imported_by_initialize == []
    assert imported_by_tools_list == sorted(REGISTRATION_MODULES)
    assert len(tools) == 26 and "novelty_check" in tools and tools[-1] == "memory_stats"


# -- another process's writes ----------------------------------------------------------------------

RECORD_FROM_ANOTHER_PROCESS = """\
import sys
from mcp_memory_server import MemoryStore
with MemoryStore.open(sys.argv[1]) as store:
    event = store.events.record_tool_result(
        "trainer", outputs=[{"name": "loss", "value": float(sys.argv[2])}], message="epoch done"
    )
    print(event.event_id)
"""


def test_another_processes_new_event_is_seen_at_once_by_recent_and_last_by_name(
    store: MemoryStore, data_dir: Path
) -> None:
    """Process B's commits show up in this process's warm hot window: recent, tool results and last_by_name."""
    events = store.events
    mine = events.record_tool_result("trainer", outputs=[{"name": "loss", "value": 0.9}])
    assert events.recent(limit=1)[0].event_id == mine.event_id  # the window is loaded and warm
    assert events.last_by_name("loss").value == 0.9  # type: ignore[union-attr]

    for loss in (0.5, 0.25):
        theirs = run_python(RECORD_FROM_ANOTHER_PROCESS, str(data_dir), str(loss)).strip()
        assert [e.event_id for e in events.recent(limit=1)] == [theirs]
        assert events.recent_tool_results("trainer", limit=1)[0].event_id == theirs
        last = events.last_by_name("loss", tool="trainer")
        assert last is not None
        assert (last.value, last.event_id) == (loss, theirs)

    assert [e.event_id for e in events.recent(scope="run")] == [mine.event_id]  # B had its own run
    assert len(events.recent(limit=10)) == 3


# -- two servers on one store ----------------------------------------------------------------------


async def test_two_stdio_servers_writing_at_once_lose_no_acknowledged_write_and_store_none_twice(
    data_dir: Path,
) -> None:
    """Two server processes, 200 events and 30 artifacts each, all in flight together: all there, once."""
    shared_texts = [f"shared report {i}" for i in range(10)]
    acks: dict[str, dict[str, Any]] = {}

    async def write_all(client: Client, writer: str) -> None:
        done: dict[str, Any] = {"events": {}, "artifacts": {}, "shared": {}}
        acks[writer] = done
        limiter = anyio.Semaphore(8)

        async def event(i: int) -> None:
            async with limiter:
                saved = await call(client, "memory_record", kind="load", data={"writer": writer, "i": i})
                done["events"][i] = saved["event_id"]

        async def artifact(i: int) -> None:
            async with limiter:
                saved = await call(client, "artifact_save", text=f"{writer} artifact {i}", kind="report")
                done["artifacts"][i] = saved["artifact_id"]

        async def shared(i: int) -> None:
            async with limiter:
                saved = await call(client, "artifact_save", text=shared_texts[i], kind="report", name="shared")
                done["shared"][i] = saved["artifact_id"]

        async with anyio.create_task_group() as group:
            for i in range(200):
                group.start_soon(event, i)
            for i in range(20):
                group.start_soon(artifact, i)
            for i in range(10):
                group.start_soon(shared, i)

    # One run id for both: identical saves then have one identity and must yield one record.
    params = stdio_params(data_dir, "--run-id", "run_shared_by_two")
    with anyio.fail_after(240):
        async with Client(params) as first, Client(params) as second, anyio.create_task_group() as group:
            group.start_soon(write_all, first, "A")
            group.start_soon(write_all, second, "B")

    assert_store_is_sound(data_dir)
    with MemoryStore.open(data_dir) as store:
        rows = store.db.query("SELECT event_id, data FROM events")
        artifact_rows = store.db.query("SELECT artifact_id, name, sha256 FROM artifacts")
    stored_events = {row["event_id"]: json.loads(row["data"]) for row in rows}
    assert len(rows) == len(stored_events) == 400
    for writer in ("A", "B"):
        for i, event_id in acks[writer]["events"].items():
            assert stored_events[event_id] == {"writer": writer, "i": i}
    assert sorted((d["writer"], d["i"]) for d in stored_events.values()) == sorted(
        (w, i) for w in "AB" for i in range(200)
    )

    stored_artifacts = {row["artifact_id"]: row for row in artifact_rows}
    assert len(artifact_rows) == 40 + 10
    for writer in ("A", "B"):
        assert set(acks[writer]["artifacts"].values()) <= stored_artifacts.keys()
    shared_ids = {row["artifact_id"] for row in artifact_rows if row["name"] == "shared"}
    assert len(shared_ids) == 10
    for i in range(10):
        assert acks["A"]["shared"][i] == acks["B"]["shared"][i]  # both were told of the one record
    assert set(acks["A"]["shared"].values()) == shared_ids
    assert len(blob_files(data_dir)) == 50


# -- kill -9 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", range(3))
async def test_a_server_killed_mid_write_loop_reopens_clean_with_every_acknowledged_write(
    tmp_path: Path, attempt: int
) -> None:
    """SIGKILL at a random moment of a mixed write loop: integrity ok, acks all present, no partial blob."""
    rng = random.Random(attempt)
    data_dir = tmp_path / "store"
    files = tmp_path / "files"
    files.mkdir()
    big_files = []
    for i in range(8):  # several MB each, so a kill can land while a blob is being written
        path = files / f"big-{i}.bin"
        path.write_bytes(os.urandom(3 << 20))
        big_files.append(path)

    pid_file = tmp_path / "server.pid"
    params = stdio_params(data_dir, env={"MCP_TEST_PID_FILE": str(pid_file)}, cwd=tmp_path, launcher=True)
    events: dict[str, int] = {}
    artifacts: dict[str, str] = {}
    both_acknowledged = anyio.Event()  # the kill comes after at least one event and one artifact

    async def worker(client: Client, number: int) -> None:
        step = 0
        try:
            while True:
                step += 1
                choice = (number + step) % 4
                if choice == 0:
                    saved = await call(client, "artifact_save", path=str(big_files[(number * 31 + step) % 8]),
                                       kind="checkpoint", labels={"step": step, "worker": number})  # fmt: skip
                elif choice == 1:
                    payload = base64.b64encode(os.urandom(rng.randrange(1, 300_000))).decode()
                    saved = await call(client, "artifact_save", base64=payload, kind="blob")
                elif choice == 2:
                    saved = await call(client, "memory_record_tool_result", tool="train",
                                       outputs=[{"name": "loss", "value": step}])  # fmt: skip
                else:
                    saved = await call(client, "memory_record", kind="progress", data={"worker": number, "step": step})
                if "artifact_id" in saved:
                    artifacts[saved["artifact_id"]] = saved["sha256"]
                else:
                    events[saved["event_id"]] = step
                if events and artifacts:
                    both_acknowledged.set()
        except MCPError:
            return  # the connection died with the server: this call was never acknowledged

    with anyio.fail_after(120):
        async with Client(params) as client:
            pid = int(wait_for_file(pid_file))
            async with anyio.create_task_group() as group:
                for number in range(3):
                    group.start_soon(worker, client, number)
                await both_acknowledged.wait()
                await anyio.sleep(rng.uniform(0.2, 1.5))
                os.kill(pid, signal.SIGKILL)

    # A kill mid-blob leaves a temp file behind (seen in about half the runs); opening the store removes it.
    with MemoryStore.open(data_dir) as store:
        assert temp_files(data_dir) == []
        stored_events = {row[0] for row in store.db.query("SELECT event_id FROM events")}
        stored_artifacts = {row[0]: row[1] for row in store.db.query("SELECT artifact_id, sha256 FROM artifacts")}
        assert store.events.recent(limit=1)  # the reopened store serves reads
    assert events.keys() <= stored_events
    for artifact_id, sha256 in artifacts.items():
        assert stored_artifacts[artifact_id] == sha256
    assert_store_is_sound(data_dir)


WRITER_THEN_HANG = """\
import os, sys
from mcp_memory_server import MemoryStore
store = MemoryStore.open(sys.argv[1])
with store.artifacts.writer(kind="checkpoint", planned_ext=".bin") as writer:
    writer.write(os.urandom(1 << 20))
    print("half written", flush=True)
    sys.stdin.read()  # wait here, mid-artifact, until killed
"""


def test_a_process_killed_inside_writer_leaves_no_record_no_blob_and_its_temp_file_goes_on_reopen(
    data_dir: Path,
) -> None:
    """kill -9 while ``writer()`` streams: the half-written temp file is invisible and removed by the next open."""
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER_THEN_HANG, str(data_dir)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == b"half written\n", process.stderr.read() if process.stderr else b""
        assert len(temp_files(data_dir)) == 1
    finally:
        process.kill()
        process.communicate()

    with MemoryStore.open(data_dir) as store:
        assert temp_files(data_dir) == []
        assert store.artifacts.count() == 0
    assert blob_files(data_dir) == []
    assert_store_is_sound(data_dir)


# -- server-local paths ----------------------------------------------------------------------------


async def test_ingesting_paths_outside_the_allowed_roots_or_special_files_is_refused_and_changes_nothing(
    tmp_path: Path,
) -> None:
    """Through a real server whose roots are its cwd and its TMPDIR: links out, FIFOs and devices are refused."""
    cwd, server_tmp, outside = tmp_path / "cwd", tmp_path / "server-tmp", tmp_path / "outside"
    for folder in (cwd, server_tmp, outside):
        folder.mkdir()
    (outside / "secret.txt").write_text("outside the roots")
    (cwd / "inside.txt").write_text("inside the roots")
    (cwd / "link-inside.txt").symlink_to(cwd / "inside.txt")
    (cwd / "link-out.txt").symlink_to(outside / "secret.txt")
    (cwd / "dir-link-out").symlink_to(outside, target_is_directory=True)
    (cwd / "tree-with-link-out").mkdir()
    (cwd / "tree-with-link-out" / "ok.txt").write_text("fine")
    (cwd / "tree-with-link-out" / "leak.txt").symlink_to(outside / "secret.txt")
    (cwd / "tree-with-fifo").mkdir()
    (cwd / "tree-with-fifo" / "ok.txt").write_text("fine")
    os.mkfifo(cwd / "tree-with-fifo" / "pipe")
    os.mkfifo(cwd / "pipe")
    (cwd / "link-to-dev-null").symlink_to("/dev/null")

    # /dev is allowed so that a device is refused for being a device, not for being outside.
    params = stdio_params(tmp_path / "store", "--allow-path", "/dev", env={"TMPDIR": str(server_tmp)}, cwd=cwd)
    with anyio.fail_after(60):  # a FIFO opened for reading would block forever
        async with Client(params) as client:
            assert (await call(client, "artifact_save", path="inside.txt"))["bytes"] == len("inside the roots")
            assert (await call(client, "artifact_save", path=str(cwd / "link-inside.txt"), kind="x"))["bytes"] == 16
            assert (await call(client, "artifact_save", path=str(server_tmp)))["is_dir"]  # the temp root counts

            outside_paths = [
                str(outside / "secret.txt"),
                "../outside/secret.txt",
                str(cwd / "link-out.txt"),
                str(cwd / "dir-link-out" / "secret.txt"),
                str(cwd / "dir-link-out"),
                str(cwd / "tree-with-link-out"),
                "/etc/passwd",
            ]
            for path in outside_paths:
                message = await error(client, "artifact_save", path=path)
                assert "outside the allowed roots" in message, path
                assert "--allow-path" in message

            for path in ("pipe", str(cwd / "tree-with-fifo"), "/dev/null", str(cwd / "link-to-dev-null")):
                message = await error(client, "artifact_save", path=path)
                assert "not a regular file" in message, path

            stats = await call(client, "memory_stats")
            listed = await call(client, "artifact_search")
    assert stats["counts"]["artifacts"] == len(listed["items"]) == 3
    assert stats["counts"]["blobs"] == 2  # inside.txt (twice) and the empty directory's manifest
