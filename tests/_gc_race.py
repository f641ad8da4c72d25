"""The gc-vs-save-reuse race: saves of bytes whose blob is an old orphan, raced against ``gc --apply``.

Each round the parent makes orphans — it saves a text, a directory and the content of a
memory file and of an export as artifacts, deletes those records and ages every blob past
gc's grace — then releases saver processes that store exactly those bytes again (a text
artifact, a directory artifact, a ``file_write``, a ``files import``) while gc processes
run ``gc(dry_run=False)`` in a loop. A saver acknowledges a write by printing it after the
call returned; the parent then checks that every acknowledged record reads back whole.

Before the fix a save reused the old blob without telling gc, gc deleted it between the
save's blob check and its commit, and the acknowledged record pointed at nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _procs import clean_env, read_line

from mcp_memory_server import MemoryStore
from mcp_memory_server.store import blob_references

KINDS = ("text", "dir", "write", "import")

SAVER = r"""
import json, logging, random, sys, time
from pathlib import Path
from mcp_memory_server import MemoryStore

logging.basicConfig(level=logging.INFO, format="%(message)s")  # counts the restores on stderr

data_dir, kind, work, seed = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
store = MemoryStore.open(data_dir, allow_path=[str(work)])
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    r = int(line)
    time.sleep(rng.uniform(0, 0.004))  # spread the saves over gc's passes
    if kind == "text":
        rec = store.artifacts.save_text((work / f"text-{r}.txt").read_text(), kind="race", name=f"text {seed} {r}")
        ack = {"kind": kind, "round": r, "id": rec.artifact_id, "sha": rec.sha256}
    elif kind == "dir":
        rec = store.artifacts.save_file(work / f"dir-{r}", kind="race", name=f"dir {seed} {r}")
        ack = {"kind": kind, "round": r, "id": rec.artifact_id, "sha": rec.sha256}
    elif kind == "write":
        meta = store.files.write(f"race/{seed}/{r}.md", (work / f"note-{r}.md").read_text(), namespace="race")
        ack = {"kind": kind, "round": r, "path": meta.path, "version": meta.version, "sha": meta.sha256}
    else:
        report = store.files.import_(work / f"export-{r}", namespace=f"imp-{seed}-{r}")
        ack = {"kind": kind, "round": r, "namespace": report.namespace, "files": report.files}
    print(json.dumps(ack), flush=True)
store.close()
"""

COLLECTOR = r"""
import json, sys
from mcp_memory_server import MemoryStore

store = MemoryStore.open(sys.argv[1])
print(json.dumps({"ready": True}), flush=True)
passes = removed = 0
stop = sys.stdin
import select
while True:
    report = store.gc(dry_run=False)
    passes += 1
    removed += report.blobs_removed
    if select.select([stop], [], [], 0)[0]:
        line = stop.readline()
        if not line:
            break
        print(json.dumps({"passes": passes, "removed": removed}), flush=True)
store.close()
"""


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(),
    )  # fmt: skip
    return process


def _line(process: subprocess.Popen[str]) -> dict[str, Any]:
    line = read_line(process, timeout=120)  # type: ignore[arg-type]
    if not line:
        assert process.stderr is not None
        raise AssertionError(f"a race process died: {process.stderr.read()[-3000:]}")
    parsed: dict[str, Any] = json.loads(line)
    return parsed


def _age(store: MemoryStore, digests: set[str]) -> None:
    old = time.time() - 3 * 3600  # well past gc's one-hour grace
    for digest in digests:
        os.utime(store.blobs.local_path(digest), (old, old))


def _make_orphans(store: MemoryStore, scratch: MemoryStore, work: Path, r: int) -> None:
    """Round ``r``'s inputs on disk, with every blob they will need stored as an old orphan."""
    text = f"round {r} text " + "t" * 3000
    (work / f"text-{r}.txt").write_text(text)
    folder = work / f"dir-{r}"
    (folder / "sub").mkdir(parents=True)
    for f in range(3):
        (folder / f"f{f}.txt").write_text(f"round {r} dir file {f}\n" * (f + 5))
    (folder / "sub" / "deep.txt").write_text(f"round {r} deep\n")
    note = f"round {r} note " + "n" * 500
    (work / f"note-{r}.md").write_text(note)
    exported = f"round {r} exported " + "e" * 200
    scratch.files.write(f"r{r}/doc.md", exported, namespace=f"src{r}")
    scratch.files.export(f"src{r}", work / f"export-{r}")
    made = [
        store.artifacts.save_text(text, kind="orphan"),
        store.artifacts.save_file(folder, kind="orphan"),
        store.artifacts.save_text(note, kind="orphan"),
        store.artifacts.save_text(exported, kind="orphan"),
    ]
    orphans: set[str] = set()
    for record in made:
        rows = store.db.query("SELECT sha256 FROM artifact_blobs WHERE artifact_id = ?", (record.artifact_id,))
        orphans.update(row[0] for row in rows)
        store.artifacts.delete(record.artifact_id)
    _age(store, orphans)


def _check(store: MemoryStore, work: Path, ack: dict[str, Any]) -> None:
    r = ack["round"]
    kind = ack["kind"]
    if kind == "text":
        assert store.artifacts.read(ack["id"]).content == (work / f"text-{r}.txt").read_text(), ack
    elif kind == "dir":
        manifest = json.loads(store.artifacts.read(ack["id"]).content or "")
        for entry in manifest["entries"]:
            assert store.blobs.read(entry["sha256"]) == (work / f"dir-{r}" / entry["path"]).read_bytes(), ack
    elif kind == "write":
        content = store.files.read(ack["path"], version=ack["version"], namespace="race").content
        assert content == (work / f"note-{r}.md").read_text(), ack
    else:
        assert store.files.read(f"r{r}/doc.md", namespace=ack["namespace"]).content.startswith(f"round {r} exported")


def _separate_records() -> dict[str, str]:
    """Settings that give a second store records of its own: a new schema on the PostgreSQL run (none on SQLite)."""
    url = os.environ.get("MCP_MEMORY_DATABASE_URL")
    if not url:
        return {}
    from _postgres import sibling_schema_url

    return {"database_url": sibling_schema_url(url)}


def race(tmp_path: Path, *, rounds: int, savers_per_kind: int = 1, collectors: int = 2) -> dict[str, int]:
    """Run ``rounds`` rounds of the race; return the figures. Fails on any acknowledged write lost."""
    data_dir = tmp_path / "store"
    work = tmp_path / "work"
    work.mkdir()
    figures = {"rounds": rounds, "acknowledged": 0, "checked": 0, "gc_passes": 0, "blobs_removed": 0, "restored": 0}
    with (
        MemoryStore.open(data_dir, allow_path=[str(tmp_path)]) as store,
        MemoryStore.open(tmp_path / "scratch", allow_path=[str(tmp_path)], **_separate_records()) as scratch,
    ):
        savers = [
            _spawn(SAVER, str(data_dir), kind, str(work), str(k * 100 + n))
            for k, kind in enumerate(KINDS)
            for n in range(savers_per_kind)
        ]
        gcs = [_spawn(COLLECTOR, str(data_dir)) for _ in range(collectors)]
        processes = savers + gcs
        errors: list[str] = []
        try:
            for process in processes:
                assert _line(process) == {"ready": True}
            acks: list[dict[str, Any]] = []
            for r in range(rounds):
                _make_orphans(store, scratch, work, r)
                for saver in savers:
                    assert saver.stdin is not None
                    saver.stdin.write(f"{r}\n")
                    saver.stdin.flush()
                round_acks = [_line(saver) for saver in savers]
                acks += round_acks
                for ack in round_acks:  # read back now, while gc keeps running
                    _check(store, work, ack)
                    figures["checked"] += 1
            figures["acknowledged"] = len(acks)
            for collector in gcs:
                assert collector.stdin is not None
                collector.stdin.write("report\n")
                collector.stdin.flush()
                counts = _line(collector)
                figures["gc_passes"] += counts["passes"]
                figures["blobs_removed"] += counts["removed"]
            # Everything acknowledged is still whole after gc had the last word.
            store.gc(dry_run=False)
            for ack in acks:
                _check(store, work, ack)
            referenced = {row[0] for sql in blob_references() for row in store.db.query(sql)}
            missing = sorted(d for d in referenced if not store.blobs.exists(d))
            assert missing == [], f"records point at missing blobs: {missing[:3]}"
        finally:
            for process in processes:
                if process.stdin is not None and not process.stdin.closed:
                    process.stdin.close()
            for process in processes:
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                assert process.stderr is not None
                err = process.stderr.read()
                process.stderr.close()
                if process.stdout is not None:
                    process.stdout.close()
                if process.returncode != 0:
                    errors.append(err[-3000:])
                figures["restored"] += err.count("was removed by gc after this write")
    assert errors == [], errors
    print(f"gc reuse race: {figures}")
    return figures
