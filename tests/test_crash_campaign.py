"""kill -9 campaign over every write path: acknowledged writes survive, nothing half-written shows, temps go.

A worker process runs one write path in a loop through the Python API (the same core the
MCP tools call) and prints one JSON line per write *after* the call returned: that line is
the acknowledgement. The test SIGKILLs the worker at a random moment, reopens the store
and checks that every acknowledged write is there with its exact content, that no
record points at a missing or corrupt blob, that the live memory files match their
latest versions (no spurious ``external_edit``), that the engine's integrity check is ok,
and that no temp file survives the reopen.

The default run kills each write path twice; ``python -m pytest -m slow tests/test_crash_campaign.py``
runs ``MCP_CRASH_KILLS`` kills per path (default 25).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _engine import integrity
from _procs import clean_env, read_line

from mcp_memory_server import MemoryStore
from mcp_memory_server.store import blob_references

PATHS = ["artifact", "event", "file", "lab", "graph", "gc_reuse"]

# One write path in a loop; each line on stdout acknowledges a write that returned.
WORKER = r"""
import json, os, random, sys, uuid
from pathlib import Path
from mcp_memory_server import MemoryStore

data_dir, path, seed, tree = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
rng = random.Random(seed)
store = MemoryStore.open(data_dir, allow_path=[str(tree)])

def ack(**fields):
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()

def payload():
    # Mostly small, sometimes megabytes, so a kill can land inside a blob write.
    size = rng.choice([10, 200, 5000, 100_000, 1_500_000])
    return os.urandom(size)

if path == "gc_reuse":
    import threading, time

    def collect():  # gc --apply in a loop beside the saves, killed with them
        while True:
            store.gc(dry_run=False)

    threading.Thread(target=collect, daemon=True).start()

def make_old_orphan(save):
    # A record saved and deleted, its blobs aged past gc's grace: the bytes the next save reuses.
    store.artifacts.delete(save().artifact_id)
    old = time.time() - 3 * 3600
    for digest in list(store.blobs.digests()):
        try:
            os.utime(store.blobs.local_path(digest), (old, old))
        except Exception:
            pass  # gc took it meanwhile

ack(ready=True)
i = 0
while True:
    i += 1
    tag = f"{seed}-{i}"
    if path == "artifact":
        roll = i % 4
        if roll == 0:
            rec = store.artifacts.save_bytes(payload(), kind="blob", labels={"tag": tag})
        elif roll == 1:
            rec = store.artifacts.save_text(f"report {tag} " + "x" * rng.randrange(50_000), kind="report")
        elif roll == 2:
            rec = store.artifacts.save_file(tree / f"dir{i % 3}", kind="dir", labels={"tag": tag})
        else:
            with store.artifacts.writer(kind="stream", planned_ext=".bin") as w:
                for _ in range(rng.randrange(1, 4)):
                    w.write(payload())
            rec = w.record
        ack(op="artifact", id=rec.artifact_id, sha=rec.sha256)
    elif path == "event":
        if i % 3 == 0:
            events = store.events.record_many([{"kind": "batch", "data": {"tag": tag, "j": j}} for j in range(20)])
            for event in events:
                ack(op="event", id=event.event_id, data=event.data)
        elif i % 3 == 1:
            event = store.events.record_tool_result("train", outputs=[{"name": "loss", "value": i}], message=tag)
            ack(op="event", id=event.event_id, data=None)
        else:
            event = store.events.record("note", data={"tag": tag, "blob": "y" * rng.randrange(20_000)})
            ack(op="event", id=event.event_id, data=event.data)
    elif path == "file":
        name = f"notes/f{i % 4}.md"
        roll = rng.random()
        try:
            if roll < 0.6:
                meta = store.files.write(name, f"content {tag} " + "z" * rng.randrange(300_000), actor="crash")
                ack(op="file", path=name, version=meta.version, sha=meta.sha256)
            elif roll < 0.8:
                entry = store.files.delete(name, actor="crash")
                ack(op="file", path=name, version=None, sha=None, deleted=True)
            else:
                history = store.files.history(name).versions
                old = next((v for v in history if v.sha256), None)
                if old is not None:
                    meta = store.files.restore(name, old.version, actor="crash")
                    ack(op="file", path=name, version=meta.version, sha=meta.sha256)
        except Exception as exc:  # a delete of a deleted file, a restore of nothing: anticipated
            from mcp_memory_server.errors import MemoryServerError
            if not isinstance(exc, MemoryServerError):
                raise
    elif path == "lab":
        status = rng.choice(["keep", "discard", "crash"])
        metrics = {"val_bpb": 1.0 + rng.random()} if status == "keep" else {}
        run = store.lab.log(f"try {tag}: lr {rng.random():.4f}", status, metrics, family="sweep",
                            notes="n" * rng.randrange(5000), log_text="log line\n" * rng.randrange(1, 3000),
                            error="boom" if status == "crash" else None)
        ack(op="lab", id=run.run_id, status=status)
    elif path == "graph":
        if i % 5 == 0:
            nodes = [{"id": str(uuid.UUID(int=rng.getrandbits(128))), "node_type": "semantic",
                      "payload": {"fact": f"imported {tag} {k}"}} for k in range(30)]
            snapshot = {"schema_version": "1.0", "agent_id": "crash", "nodes": nodes, "edges": [
                {"source_id": nodes[k]["id"], "target_id": nodes[k + 1]["id"], "edge_type": "next"} for k in range(29)]}
            store.graph.import_snapshot(snapshot)
            for node in nodes:
                ack(op="graph", id=node["id"])
        else:
            result = store.graph.write(
                [{"node_type": "episode", "payload": {"tool_calls": ["train"], "note": tag}},
                 {"node_type": "semantic", "payload": {"fact": f"fact {tag} " + "f" * rng.randrange(3000)}}],
                agent_id="crash",
            )
            store.graph.write(edges=[{"from_id": result.node_ids[0], "to_id": result.node_ids[1], "label": "about"}],
                              agent_id="crash")
            for node_id in result.node_ids:
                ack(op="graph", id=node_id)
    elif path == "gc_reuse":
        roll = i % 3
        if roll == 0:
            text = f"reused text {i % 7} " + "r" * (i % 7) * 1000
            make_old_orphan(lambda: store.artifacts.save_text(text, kind="orphan"))
            rec = store.artifacts.save_text(text, kind="reuse", labels={"tag": tag})
            ack(op="artifact", id=rec.artifact_id, sha=rec.sha256)
        elif roll == 1:
            folder = tree / f"dir{i % 3}"
            make_old_orphan(lambda: store.artifacts.save_file(folder, kind="orphan"))
            rec = store.artifacts.save_file(folder, kind="reuse", labels={"tag": tag})
            ack(op="artifact", id=rec.artifact_id, sha=rec.sha256)
        else:
            text = f"reused note {i % 5}"
            make_old_orphan(lambda: store.artifacts.save_text(text, kind="orphan"))
            meta = store.files.write(f"reuse/{i}.md", text, actor="crash")
            ack(op="file", path=meta.path, version=meta.version, sha=meta.sha256)
"""


def make_tree(root: Path) -> Path:
    """Three small directories for directory artifacts."""
    for d in range(3):
        folder = root / f"dir{d}"
        (folder / "sub").mkdir(parents=True, exist_ok=True)
        for f in range(4):
            (folder / f"file{f}.txt").write_text(f"dir {d} file {f}\n" * (f + 1) * 100)
        (folder / "sub" / "deep.bin").write_bytes(os.urandom(50_000))
    return root


def kill_once(data_dir: Path, tree: Path, path: str, seed: int) -> list[dict[str, Any]]:
    """Start a worker on ``path``, SIGKILL it at a random moment; return every acknowledgement it printed."""
    rng = random.Random(seed)
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(data_dir), path, str(seed), str(tree)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
    )  # fmt: skip
    acks: list[dict[str, Any]] = []
    try:
        first = read_line(process)
        if not first:
            raise AssertionError(f"worker died: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        assert json.loads(first) == {"ready": True}
        acks_wanted = rng.choice([1, 2, 5, 10, 30])
        while len(acks) < acks_wanted:
            line = read_line(process)
            if not line:
                raise AssertionError(f"worker died: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            acks.append(json.loads(line))
        time.sleep(rng.uniform(0, 0.25))  # land anywhere: between writes, mid-transaction, mid-blob
        os.kill(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        rest, _ = process.communicate()
    # Every complete line was printed after its write returned; a kill mid-print leaves a
    # fragment without its newline, which acknowledges nothing.
    *complete, _fragment = rest.decode().split("\n")
    acks += [json.loads(line) for line in complete if line.strip()]
    return acks


def verify(data_dir: Path, acks: list[dict[str, Any]]) -> int:
    """Reopen and check every acknowledged write and the store's soundness; return how many writes were checked."""
    checked = 0
    with MemoryStore.open(data_dir) as store:
        db = store.db
        # No temp file survives a start-up.
        assert list((data_dir / "blobs").glob(".tmp-*")) == []
        assert list((data_dir / "files").glob("*/.*/tmp/*.tmp")) == []
        assert [p for p in data_dir.rglob("*") if ".tmp-" in p.name or p.name.endswith(".tmp")] == []

        artifacts = {r["artifact_id"]: r["sha256"] for r in db.query("SELECT artifact_id, sha256 FROM artifacts")}
        events = {r["event_id"]: r["data"] for r in db.query("SELECT event_id, data FROM events")}
        runs = {r["run_id"] for r in db.query("SELECT run_id FROM lab_runs")}
        nodes = {r["id"] for r in db.query("SELECT id FROM graph_nodes")}
        versions = {
            (r["path"], r["version"]): r["sha256"]
            for r in db.query("SELECT path, version, sha256 FROM file_versions WHERE namespace = 'default'")
        }
        for ack in acks:
            op = ack["op"]
            if op == "artifact":
                assert artifacts.get(ack["id"]) == ack["sha"], ack
            elif op == "event":
                assert ack["id"] in events, ack
                if ack["data"] is not None:
                    assert json.loads(events[ack["id"]]) == ack["data"]
            elif op == "lab":
                assert ack["id"] in runs, ack
            elif op == "graph":
                assert ack["id"] in nodes, ack
            elif op == "file" and ack["version"] is not None:
                assert versions.get((ack["path"], ack["version"])) == ack["sha"], ack
            checked += 1

        # Every record's blobs exist and hold exactly the bytes their names promise.
        referenced = {row[0] for sql in blob_references() for row in db.query(sql)}
        for digest in referenced:
            assert store.blobs.exists(digest), f"a record points at a missing blob {digest}"
        for digest in store.blobs.digests():
            with store.blobs.open(digest) as handle:
                assert hashlib.sha256(handle.read()).hexdigest() == digest, f"partial blob {digest}"

        # The live files are the latest versions: a kill between commit and rename is repaired, not
        # mistaken for an edit made on disk.
        assert db.query("SELECT COUNT(*) FROM file_versions WHERE op = 'external_edit'")[0][0] == 0
        for row in db.query("SELECT path, sha256 FROM files WHERE namespace = 'default'"):
            live = store.files.root / "default" / row["path"]
            if row["sha256"] is None:
                assert not live.exists(), row["path"]
            else:
                assert hashlib.sha256(live.read_bytes()).hexdigest() == row["sha256"], row["path"]
                assert store.files.read(row["path"]).meta.sha256 == row["sha256"]
        # The graph has no edge to a missing node.
        assert (
            db.query(
                "SELECT COUNT(*) FROM graph_edges WHERE from_id NOT IN (SELECT id FROM graph_nodes)"
                " OR to_id NOT IN (SELECT id FROM graph_nodes)"
            )[0][0]
            == 0
        )
    assert integrity(data_dir) == [("ok",)]
    return checked


def campaign(tmp_path: Path, path: str, kills: int, base_seed: int) -> dict[str, int]:
    """``kills`` SIGKILLs of a worker on ``path`` against one store, verified after each."""
    data_dir = tmp_path / "store"
    tree = make_tree(tmp_path / "tree")
    all_acks: list[dict[str, Any]] = []
    checked = 0
    for k in range(kills):
        all_acks += kill_once(data_dir, tree, path, base_seed * 1000 + k)
        checked += verify(data_dir, all_acks)  # everything acknowledged so far, across all kills
    figures = {"kills": kills, "acks": len(all_acks), "checks": checked}
    print(f"crash {path}: {figures}")
    return figures


@pytest.mark.parametrize("path", PATHS)
def test_a_writer_killed_at_random_moments_loses_no_acknowledged_write(tmp_path: Path, path: str) -> None:
    """Two SIGKILLs of a worker on each write path: acknowledged writes present, no partial object, no temp left."""
    figures = campaign(tmp_path, path, kills=2, base_seed=PATHS.index(path) + 1)
    assert figures["acks"] >= 2


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS)
def test_a_long_kill_campaign_on_each_write_path(tmp_path: Path, path: str) -> None:
    """MCP_CRASH_KILLS (default 25) SIGKILLs per write path, every acknowledgement rechecked after each."""
    kills = int(os.environ.get("MCP_CRASH_KILLS", "25"))
    campaign(tmp_path, path, kills=kills, base_seed=int(os.environ.get("MCP_CRASH_SEED", "100")) + PATHS.index(path))
