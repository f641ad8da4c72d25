"""Staging debris of a killed export, snapshot or materialisation is swept when a store next opens.

Writers that build a destination atomically stage it beside the destination as
``.<name>.tmp-<pid>-<token>`` and record that path in ``<data_dir>/staging/<pid>-<token>``
first; start-up removes what a dead process recorded (and nothing else).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from _procs import clean_env

from mcp_memory_server import MemoryStore

EXPORTER = r"""
import sys
from mcp_memory_server import MemoryStore
store = MemoryStore.open(sys.argv[1], allow_path=[sys.argv[3]])
store.files.export("big", sys.argv[2])
"""


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_an_export_killed_midway_leaves_staging_that_the_next_start_up_removes(tmp_path: Path) -> None:
    """SIGKILL an exporter while its .backup.tmp-* tree exists; reopening removes the tree and its record."""
    data_dir = tmp_path / "store"
    with MemoryStore.open(data_dir) as store:
        for i in range(150):
            store.files.write(f"notes/{i}.md", f"note {i} " + "x" * 30_000, namespace="big")
    out = tmp_path / "out"
    out.mkdir()
    caught: list[Path] = []
    for attempt in range(8):  # the export may finish before the poll sees its staging: try again
        dest = out / f"backup{attempt}"
        process = subprocess.Popen(
            [sys.executable, "-c", EXPORTER, str(data_dir), str(dest), str(tmp_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=clean_env(),
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            caught = list(out.glob(f".backup{attempt}.tmp-{process.pid}-*"))
            if caught and any(caught[0].rglob("*")):
                os.kill(process.pid, signal.SIGKILL)
                break
            time.sleep(0.001)
        process.wait()
        assert process.stderr is not None
        process.stderr.close()
        if process.returncode == -signal.SIGKILL and caught and caught[0].is_dir() and not dest.exists():
            break  # killed with its staging in place (not just after the rename)
        caught = []
    assert caught, "the exporter was never caught with its staging tree in place"
    assert len(list((data_dir / "staging").iterdir())) == 1
    with MemoryStore.open(data_dir):
        pass
    assert not caught[0].exists()
    assert [p.name for p in out.iterdir() if ".tmp-" in p.name] == []  # no debris left
    assert list((data_dir / "staging").iterdir()) == []


def test_dead_writers_staging_is_swept_and_live_or_foreign_paths_are_kept(tmp_path: Path) -> None:
    """Dead-pid snapshot temps, export trees and materialisations go; a live writer's and a user's file stay."""
    data_dir = tmp_path / "store"
    outside = tmp_path / "outside"
    outside.mkdir()
    with MemoryStore.open(data_dir):
        pass
    records = data_dir / "staging"
    records.mkdir(exist_ok=True)
    pid = dead_pid()
    snapshot_temp = outside / f".snap.json.tmp-{pid}-aaaa"
    snapshot_temp.write_text("{half a snapshot")
    (records / f"{pid}-aaaa").write_text(str(snapshot_temp))
    export_tree = outside / f".backup.tmp-{pid}-bbbb"
    (export_tree / "blobs").mkdir(parents=True)
    (export_tree / "blobs" / "x").write_text("partial")
    (records / f"{pid}-bbbb").write_text(str(export_tree))
    materialized = data_dir / "materialized" / f".{'a' * 64}.tmp-{pid}-cccc"  # an older version kept no record
    (materialized / "sub").mkdir(parents=True)
    (materialized / "sub" / "f.txt").write_text("partial")
    live_temp = outside / f".live.json.tmp-{os.getpid()}-dddd"  # this process is alive: its staging stays
    live_temp.write_text("in progress")
    (records / f"{os.getpid()}-dddd").write_text(str(live_temp))
    precious = outside / "precious.txt"  # a record naming a path it did not stage: never removed
    precious.write_text("mine")
    (records / f"{pid}-eeee").write_text(str(precious))

    with MemoryStore.open(data_dir):
        pass

    assert not snapshot_temp.exists() and not export_tree.exists() and not materialized.exists()
    assert live_temp.read_text() == "in progress"
    assert precious.read_text() == "mine"
    assert sorted(p.name for p in records.iterdir()) == [f"{os.getpid()}-dddd"]


def test_finished_exports_snapshots_and_materialisations_leave_no_staging_record(tmp_path: Path) -> None:
    """The normal path: each writer's staging is renamed into place and its record removed."""
    data_dir = tmp_path / "store"
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "a.txt").write_text("a")
    with MemoryStore.open(data_dir, allow_path=[str(tmp_path)]) as store:
        store.files.write("a.md", "a")
        store.files.export("default", tmp_path / "backup")
        store.files.export("default", tmp_path / "backup.tar.gz")
        store.graph.write([{"node_type": "semantic", "payload": {"fact": "f"}}], agent_id="agent")
        store.graph.export_to_file("agent", tmp_path / "snap.json")
        record = store.artifacts.save_file(tree)
        store.artifacts.materialize(record, tmp_path / "copy")
        store.artifacts.as_local_file(record)
        assert (tmp_path / "copy" / "sub" / "a.txt").read_text() == "a"
    assert list((data_dir / "staging").iterdir()) == []
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []
    assert [p.name for p in (data_dir / "materialized").iterdir()] == [record.sha256]


def test_a_stray_folder_in_staging_does_not_stop_the_store_from_opening(
    tmp_path: Path, database_url: str | None
) -> None:
    """The start-up sweep treated it as a record and crashed with IsADirectoryError; it is left alone."""
    data_dir = tmp_path / "store"
    MemoryStore.open(data_dir, database_url=database_url).close()
    (data_dir / "staging" / "somebody-elses").mkdir(parents=True)
    with MemoryStore.open(data_dir, database_url=database_url) as store:
        assert store.files.list_paths() == []
    assert (data_dir / "staging" / "somebody-elses").is_dir()
