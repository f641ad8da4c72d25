"""Many processes and threads on one data directory: nothing lost, nothing stored twice, one CAS winner per round.

Each worker process opens the same store and runs several threads of mixed writes
(events, artifacts with shared identical content, files chained by compare-and-swap on
their own paths) plus one thread that contends in compare-and-swap rounds on a shared
file: in round ``r`` every contender writes ``cas.md`` with ``expected_sha`` = the sha of
version ``r``, so exactly one may win and the file's history gains exactly one version.

Default: 4 processes x 3 threads; ``python -m pytest -m slow tests/test_concurrency_campaign.py``
runs ``MCP_CONC_PROCS`` (default 8) processes with ``MCP_CONC_OPS`` (default 300) writes per thread,
and ``MCP_GC_ROUNDS`` (default 200) rounds of the gc-vs-save-reuse race (``_gc_race``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _engine import integrity
from _gc_race import race
from _procs import clean_env

from mcp_memory_server import MemoryStore

RUN_ID = "run_concurrency_campaign"

WORKER = r"""
import json, os, random, sys, threading, time
from mcp_memory_server import Conflict, MemoryStore

data_dir, worker, threads, ops, rounds, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
store = MemoryStore.open(data_dir, run_id=sys.argv[7])
barrier, procs = sys.argv[8], int(sys.argv[9])
acks = {"events": [], "artifacts": [], "shared": {}, "files": {}, "cas": {}}
lock = threading.Lock()
start = threading.Event()

def mixed(t):
    rng = random.Random(f"{worker}-{t}")
    path = f"{worker}/t{t}.md"
    sha = None
    writes = 0
    start.wait()
    for i in range(ops):
        roll = rng.random()
        if roll < 0.45:
            event = store.events.record("conc", data={"worker": worker, "thread": t, "i": i})
            with lock:
                acks["events"].append([event.event_id, worker, t, i])
        elif roll < 0.65:
            rec = store.artifacts.save_text(f"{worker} {t} {i} " + "a" * rng.randrange(10_000), kind="conc")
            with lock:
                acks["artifacts"].append([rec.artifact_id, rec.sha256])
        elif roll < 0.75:
            k = rng.randrange(5)
            rec = store.artifacts.save_text(f"shared content {k}", kind="shared", name=f"shared{k}")
            with lock:
                acks["shared"].setdefault(str(k), set()).add(rec.artifact_id)
        else:
            meta = store.files.write(path, f"{worker} {t} write {writes}", expected_sha=sha, actor=worker)
            sha = meta.sha256
            writes += 1
    with lock:
        acks["files"][path] = [writes, sha]

def contend():
    start.wait()
    for r in range(1, rounds + 1):
        deadline = time.monotonic() + 60
        while True:  # the round opens when version r exists
            meta = store.files.read("cas.md").meta
            if meta.version >= r or time.monotonic() > deadline:
                break
            time.sleep(0.002)
        if meta.version != r:
            acks["cas"][str(r)] = "late"  # the round closed before this worker saw it open
            continue
        # A barrier across processes: nobody writes until every contender has seen round r open.
        open(os.path.join(barrier, f"{r}-{worker}"), "w").close()
        while sum(1 for n in os.listdir(barrier) if n.startswith(f"{r}-")) < procs and time.monotonic() < deadline:
            time.sleep(0.002)
        try:
            store.files.write("cas.md", f"round {r} won by {worker}", expected_sha=meta.sha256, actor=worker)
            acks["cas"][str(r)] = "won"
        except Conflict:
            acks["cas"][str(r)] = "lost"

workers = [threading.Thread(target=mixed, args=(t,)) for t in range(threads)]
workers.append(threading.Thread(target=contend))
for w in workers:
    w.start()
print("ready", flush=True)
sys.stdin.readline()
start.set()
for w in workers:
    w.join()
acks["shared"] = {k: sorted(v) for k, v in acks["shared"].items()}
with open(out, "w") as handle:
    json.dump(acks, handle)
store.close()
"""


def campaign(tmp_path: Path, procs: int, threads: int, ops: int, rounds: int) -> dict[str, int]:
    """Run the workers together and check every invariant; return the figures."""
    data_dir = tmp_path / "store"
    with MemoryStore.open(data_dir, run_id=RUN_ID) as store:
        store.files.write("cas.md", "round 0")  # version 1 opens round 1
    outputs = [tmp_path / f"acks-{p}.json" for p in range(procs)]
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                str(data_dir),
                f"w{p}",
                str(threads),
                str(ops),
                str(rounds),
                str(out),
                RUN_ID,
                str(barrier),
                str(procs),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        for p, out in enumerate(outputs)
    ]
    try:
        for worker in workers:  # all stores open and all threads parked before anyone writes
            assert worker.stdout is not None and worker.stdout.readline().strip() == "ready", worker.stderr
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        for worker in workers:
            _, err = worker.communicate(timeout=600)
            assert worker.returncode == 0, err[-3000:]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    acks = [json.loads(out.read_text()) for out in outputs]
    return verify(data_dir, acks, procs, rounds)


def verify(data_dir: Path, acks: list[dict[str, Any]], procs: int, rounds: int) -> dict[str, int]:
    with MemoryStore.open(data_dir) as store:
        db = store.db
        events = db.query("SELECT event_id, data FROM events WHERE kind = 'conc'")
        stored_events = {row["event_id"]: json.loads(row["data"]) for row in events}
        artifacts = {r["artifact_id"]: r["sha256"] for r in db.query("SELECT artifact_id, sha256 FROM artifacts")}
        shared = db.query("SELECT name, artifact_id FROM artifacts WHERE kind = 'shared'")
        cas_history = {v.version: v for v in store.files.history("cas.md", limit=500).versions}
        cas_text = {version: store.files.read("cas.md", version=version).content for version in cas_history}
        file_rows = {
            r["path"]: r for r in db.query("SELECT path, version, sha256 FROM files WHERE namespace = 'default'")
        }

    # Events: every acknowledgement present with its payload, and nothing stored twice.
    acked_events = [e for a in acks for e in a["events"]]
    assert len(stored_events) == len(events) == len(acked_events)
    for event_id, worker, thread, i in acked_events:
        assert stored_events[event_id] == {"worker": worker, "thread": thread, "i": i}
    # Artifacts: every acknowledgement present with its sha.
    acked_artifacts = [x for a in acks for x in a["artifacts"]]
    for artifact_id, sha in acked_artifacts:
        assert artifacts[artifact_id] == sha
    # Identical saves in one run are one record, whoever saved them and however concurrently.
    by_name: dict[str, set[str]] = {}
    for row in shared:
        by_name.setdefault(row["name"], set()).add(row["artifact_id"])
    assert all(len(ids) == 1 for ids in by_name.values()), by_name
    for a in acks:
        for k, ids in a["shared"].items():
            assert set(ids) == by_name[f"shared{k}"]
    # Files chained by CAS on their own path: every write kept, versions contiguous.
    file_writes = 0
    for a in acks:
        for path, (writes, sha) in a["files"].items():
            file_writes += writes
            if writes:
                assert (file_rows[path]["version"], file_rows[path]["sha256"]) == (writes, sha)
    # Shared CAS: exactly one winner per round, and the history holds exactly that winner's write.
    winners = {r: [w for w, a in enumerate(acks) if a["cas"].get(str(r)) == "won"] for r in range(1, rounds + 1)}
    assert all(len(won) == 1 for won in winners.values()), winners
    assert sorted(cas_history) == list(range(1, rounds + 2))
    for r, (w,) in winners.items():
        assert cas_text[r + 1] == f"round {r} won by w{w}"
    contenders = sum(1 for a in acks for outcome in a["cas"].values() if outcome != "late")
    assert integrity(data_dir) == [("ok",)]
    figures = {
        "processes": procs,
        "events": len(acked_events),
        "artifacts": len(acked_artifacts),
        "file_writes": file_writes,
        "cas_rounds": rounds,
        "cas_attempts": contenders,
    }
    print(f"concurrency: {figures}")
    return figures


def test_four_processes_of_mixed_threads_lose_nothing_store_nothing_twice_and_cas_has_one_winner(
    tmp_path: Path,
) -> None:
    """4 processes x (3 mixed threads + 1 CAS contender) on one directory: all writes once, one CAS winner per round."""
    figures = campaign(tmp_path, procs=4, threads=3, ops=60, rounds=25)
    assert figures["cas_attempts"] >= 25 * 3  # rounds were really contended


@pytest.mark.slow
def test_a_long_concurrency_campaign(tmp_path: Path) -> None:
    """MCP_CONC_PROCS (default 8) processes x 4 threads x MCP_CONC_OPS (default 300) writes, 100 CAS rounds."""
    procs = int(os.environ.get("MCP_CONC_PROCS", "8"))
    campaign(tmp_path, procs=procs, threads=4, ops=int(os.environ.get("MCP_CONC_OPS", "300")), rounds=100)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_long_gc_reuse_race(tmp_path: Path) -> None:
    """MCP_GC_ROUNDS (default 200) rounds of saves reusing old orphan blobs vs gc --apply loops: none lost."""
    rounds = int(os.environ.get("MCP_GC_ROUNDS", "200"))
    figures = race(tmp_path, rounds=rounds, savers_per_kind=int(os.environ.get("MCP_GC_SAVERS", "1")), collectors=2)
    assert figures["acknowledged"] == figures["checked"] >= rounds * 4
