"""Memory files under concurrency and crashes: real threads, real processes, real SIGKILL."""

from __future__ import annotations

import hashlib
import random
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from mcp_memory_server import Conflict, MemoryStore

THREADS = 12

_CAS_WORKER = r"""
import sys
from mcp_memory_server import Conflict, MemoryStore

data_dir, expected, label = sys.argv[1:4]
store = MemoryStore.open(data_dir)
files = store.files
print("ready", flush=True)
sys.stdin.readline()
try:
    files.write("race.md", f"written by {label}", expected_sha=expected, actor=label)
    print("won", flush=True)
except Conflict:
    print("lost", flush=True)
"""

_WRITE_LOOP = r"""
import sys
from mcp_memory_server import MemoryStore

store = MemoryStore.open(sys.argv[1])
files = store.files
i = int(sys.argv[2])
while True:
    path = f"docs/doc{i % 3}.md"
    meta = files.write(path, f"content {i} " + "x" * (i % 97), actor="loop", reason=f"step {i}")
    print(path, meta.version, meta.sha256, flush=True)
    i += 1
"""


def test_compare_and_swap_has_exactly_one_winner_among_threads_and_processes(tmp_path: Path) -> None:
    """Twelve threads and two processes write with the same expected_sha: one wins, history gains one version."""
    data_dir = tmp_path / "store"
    with MemoryStore.open(data_dir) as store:
        base = store.files.write("race.md", "base")
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", _CAS_WORKER, str(data_dir), base.sha256, f"process{i}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(2)
        ]
        try:
            for worker in workers:
                assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
            start = threading.Barrier(THREADS + 1)
            outcomes: list[str] = []

            def attempt(i: int) -> None:
                start.wait(timeout=60)
                try:
                    store.files.write("race.md", f"written by thread{i}", expected_sha=base.sha256, actor=f"thread{i}")
                    outcomes.append("won")
                except Conflict:
                    outcomes.append("lost")

            threads = [threading.Thread(target=attempt, args=(i,)) for i in range(THREADS)]
            for thread in threads:
                thread.start()
            for worker in workers:
                assert worker.stdin is not None
                worker.stdin.write("go\n")
                worker.stdin.flush()
            start.wait(timeout=60)
            for thread in threads:
                thread.join(timeout=60)
            for worker in workers:
                out, _ = worker.communicate(timeout=60)
                assert worker.returncode == 0
                outcomes.append(out.split()[-1])
        finally:
            for worker in workers:
                worker.kill()
        assert len(outcomes) == THREADS + 2
        assert outcomes.count("won") == 1
        versions = store.files.history("race.md").versions
        assert [v.version for v in versions] == [2, 1]
        winner = versions[0].actor
        assert store.files.read("race.md").content == f"written by {winner}"
        assert (data_dir / "files" / "default" / "race.md").read_text() == f"written by {winner}"


def test_sigkill_during_a_write_loop_loses_no_acknowledged_version_and_live_files_match(
    tmp_path: Path, engine: str
) -> None:
    """Kill -9 a writer three times at random moments; every acknowledged version survives, live files match."""
    data_dir = tmp_path / "store"
    acknowledged: list[tuple[str, int, str]] = []
    rng = random.Random(7)
    step = 0
    for _ in range(3):
        writer = subprocess.Popen(
            [sys.executable, "-c", _WRITE_LOOP, str(data_dir), str(step)], stdout=subprocess.PIPE, text=True
        )
        assert writer.stdout is not None
        target = rng.randint(5, 40)
        for _ in range(target):
            line = writer.stdout.readline()
            assert line.endswith("\n"), f"the writer stopped early: {line!r}"
            path, version, digest = line.split()
            acknowledged.append((path, int(version), digest))
        writer.send_signal(signal.SIGKILL)
        rest, _ = writer.communicate(timeout=60)
        # Lines printed before the kill landed were acknowledged too; a torn last line was not.
        for line in rest.splitlines(keepends=True):
            if line.endswith("\n") and len(line.split()) == 3:
                path, version, digest = line.split()
                acknowledged.append((path, int(version), digest))
        assert writer.returncode == -signal.SIGKILL
        step += 1000

    if engine == "sqlite":
        with sqlite3.connect(data_dir / "memory.db") as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    else:
        # The records went to the server (which rolls a killed client's transaction back), not a file.
        assert not (data_dir / "memory.db").exists()
    with MemoryStore.open(data_dir) as store:
        files = store.files
        for path, version, digest in acknowledged:
            assert files.read(path, version=version).meta.sha256 == digest
        for meta in files.list().items:
            disk = (data_dir / "files" / "default" / meta.path).read_bytes()
            assert hashlib.sha256(disk).hexdigest() == meta.sha256
            assert files.read(meta.path).meta.version == meta.version, "no spurious external edit"
        assert not any(files.root.glob("*/.memory/tmp/*.tmp"))
        assert all(v.op in ("create", "update") for v in files.audit_tail(500).audit)
