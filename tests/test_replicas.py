"""Three stateless replicas over one PostgreSQL database and one S3 bucket behave as one server.

Each replica is a real ``serve --transport http --stateless`` process with its own empty
data directory. Clients spread a few hundred mixed writes (events, artifacts, file writes,
lab runs, graph nodes) over the replicas, several in flight, SIGKILL one replica in the
middle of the burst, then read every acknowledged write back from a different replica
and count them in the database: nothing lost, nothing duplicated. Compare-and-swap rounds
across replicas have exactly one winner. Content lands in the bucket, not in the data dirs.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import pytest
from _procs import HttpServer, http_server

pytestmark = pytest.mark.postgres_only

HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
           "Mcp-Protocol-Version": "2025-06-18"}  # fmt: skip
WRITES = 200
KILL_AFTER = 90  # acknowledged writes before the third replica is killed
KINDS = ("event", "artifact", "file", "run", "node")  # write i is of type KINDS[i % 5]


class Refused(Exception):
    """The tool answered with an error (the request reached a replica and was refused)."""


def call(server: HttpServer, tool: str, /, **arguments: Any) -> dict[str, Any]:
    """One tools/call as its own POST, as a load balancer would send it; raises httpx2 errors if the replica is gone."""
    response = httpx2.post(f"http://127.0.0.1:{server.port}/mcp", headers=HEADERS, timeout=120, json={
        "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}})  # fmt: skip
    assert response.status_code == 200, response.text
    if response.headers.get("content-type", "").startswith("application/json"):
        messages = [response.json()]
    else:
        messages = [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
    (final,) = [m for m in messages if "result" in m or "error" in m]
    if "error" in final or final["result"].get("isError"):
        raise Refused(json.dumps(final)[:500])
    result: dict[str, Any] = final["result"]["structuredContent"]
    return result


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str | None, s3_endpoint: str
) -> Iterator[tuple[list[HttpServer], dict[str, str], list[Path]]]:
    from _postgres import fresh_schema_url
    from _s3 import BUCKET, client_env

    assert postgres_url is not None
    root = tmp_path_factory.mktemp("fleet")
    env = {"MCP_MEMORY_DATABASE_URL": fresh_schema_url(postgres_url),
           "MCP_MEMORY_BLOB_URL": f"s3://{BUCKET}/replicas-{os.urandom(4).hex()}", **client_env(s3_endpoint)}  # fmt: skip
    dirs = [root / f"replica-{i}" for i in range(3)]
    with (
        http_server(dirs[0], "http", "--stateless", env=env, log_dir=root) as first,
        http_server(dirs[1], "http", "--stateless", env=env, log_dir=root) as second,
        http_server(dirs[2], "http", "--stateless", env=env, log_dir=root) as third,
    ):
        yield [first, second, third], env, dirs


def write(server: HttpServer, i: int) -> tuple[str, str]:
    """Write number ``i`` (its type ``KINDS[i % 5]``); returns (type, the id to read it back by)."""
    kind = i % 5
    if kind == 0:
        return "event", call(server, "memory_record", kind="note", text=f"burst note {i}", tags=["burst"])["event_id"]
    if kind == 1:
        saved = call(server, "artifact_save", text=f"burst artifact {i}", kind="burst", name=f"a{i}.txt")
        return "artifact", saved["artifact_id"]
    if kind == 2:
        call(server, "file_write", path=f"burst/{i}.txt", text=f"burst file {i}")
        return "file", f"burst/{i}.txt"
    if kind == 3:
        logged = call(server, "experiment_log", description=f"burst run {i}: lr {i / 1000}", status="discard",
                      metrics={"val_bpb": 1.5 + i / 10_000}, commit=f"{i:07x}")  # fmt: skip
        return "run", logged["run_id"]
    node = {"node_type": "semantic", "payload": {"fact": f"burst fact {i}"}}
    (node_id,) = call(server, "graph_write", nodes=[node], agent_id="burst")["node_ids"]
    return "node", node_id


def test_acknowledged_writes_spread_over_replicas_survive_a_killed_one_exactly_once(
    fleet: tuple[list[HttpServer], dict[str, str], list[Path]],
) -> None:
    replicas, env, dirs = fleet
    alive = [True, True, True]
    acked: list[tuple[int, str, str, int]] = []  # (i, type, id, replica that acknowledged it)
    unacknowledged: list[int] = []  # in flight to the killed replica: each may or may not have committed
    lock = threading.Lock()
    killed = threading.Event()

    def one(i: int) -> None:
        target = i % 3
        if not alive[target]:
            target = (target + 1) % 3 if alive[(target + 1) % 3] else (target + 2) % 3
        try:
            kind, ident = write(replicas[target], i)
        except (httpx2.TransportError, AssertionError):
            assert not alive[2] or killed.is_set(), f"write {i} failed while every replica was up"
            with lock:
                unacknowledged.append(i)
            return  # in flight when its replica died: committed or not, the client cannot know
        with lock:
            acked.append((i, kind, ident, target))
            if len(acked) == KILL_AFTER and not killed.is_set():
                killed.set()
                replicas[2].process.send_signal(signal.SIGKILL)
                alive[2] = False

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(one, range(WRITES)))
    assert killed.is_set()
    assert replicas[2].process.wait(10) == -signal.SIGKILL
    after_kill = [a for a in acked if a[0] > max(i for i, *_ in acked[:KILL_AFTER])]
    assert len(after_kill) >= 50, "the surviving replicas must keep acknowledging writes"

    # Every acknowledged write, read back from a live replica that did not acknowledge it.
    survivors = [0, 1]
    by_kind: dict[str, list[tuple[int, str, int]]] = {}
    for i, kind, ident, target in acked:
        by_kind.setdefault(kind, []).append((i, ident, target))
    in_flight = {kind: sum(1 for i in unacknowledged if KINDS[i % 5] == kind) for kind in KINDS}

    def exactly_once(found: list[str], kind: str) -> None:
        """Each acknowledged write of ``kind`` once; beyond them, at most the writes in flight at the kill."""
        wanted = {ident for _, ident, _ in by_kind[kind]}
        assert len(found) == len(set(found)), f"a {kind} is stored twice"
        assert wanted <= set(found), f"acknowledged {kind}s are missing: {sorted(wanted - set(found))[:5]}"
        assert len(found) - len(wanted) <= in_flight[kind], f"more {kind}s than writes: {len(found)} vs {len(wanted)}"

    for i, ident, target in by_kind["artifact"]:
        reader = replicas[1 if target == 0 else 0]
        assert call(reader, "artifact_read", artifact_id=ident)["content"] == f"burst artifact {i}"
    for i, path, target in by_kind["file"]:
        reader = replicas[1 if target == 0 else 0]
        assert call(reader, "file_read", path=path)["content"] == f"burst file {i}"
    recent = call(replicas[survivors[0]], "memory_recent", tags=["burst"], limit=500)["events"]
    exactly_once([e["event_id"] for e in recent], "event")
    nodes = call(replicas[survivors[1]], "graph_query", op="semantic_nodes", agent_id="burst", limit=500)
    exactly_once([n["id"] for n in nodes["nodes"]], "node")
    report = call(replicas[survivors[1]], "experiment_report", since_hours=1)
    assert len(by_kind["run"]) <= report["counts"]["discard"] <= len(by_kind["run"]) + in_flight["run"]

    # Counted in the shared database itself: each acknowledged write once; the only other rows
    # are writes in flight at the kill (committed before their answer was lost), never a copy.
    from mcp_memory_server import MemoryStore

    with MemoryStore.open(dirs[0].parent / "auditor", database_url=env["MCP_MEMORY_DATABASE_URL"]) as auditor:
        exactly_once([r[0] for r in auditor.db.query("SELECT event_id FROM events WHERE kind = 'note'")], "event")
        exactly_once(
            [r[0] for r in auditor.db.query("SELECT artifact_id FROM artifacts WHERE kind = 'burst'")], "artifact"
        )
        exactly_once([r[0] for r in auditor.db.query("SELECT run_id FROM lab_runs")], "run")
        rows = auditor.db.query("SELECT path, COUNT(*) FROM file_versions WHERE path LIKE 'burst/%' GROUP BY path")
        exactly_once([r[0] for r in rows], "file")
        assert {r[0] for r in rows} <= {f"burst/{i}.txt" for i, *_ in acked} | {
            f"burst/{i}.txt" for i in unacknowledged
        }
        assert all(r[1] == 1 for r in rows)

    # Content went to the bucket; the replicas' data directories hold no blobs.
    for directory in dirs:
        local_blobs = directory / "blobs"
        assert not local_blobs.exists() or not any(local_blobs.rglob("*")), directory
    import boto3
    from _s3 import BUCKET

    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                      aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])  # fmt: skip
    prefix = env["MCP_MEMORY_BLOB_URL"].split(f"s3://{BUCKET}/", 1)[1]
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix + "/")
    assert listed.get("KeyCount", 0) >= len(by_kind["artifact"]) + len(by_kind["file"])


def test_compare_and_swap_across_replicas_has_exactly_one_winner_per_round(
    fleet: tuple[list[HttpServer], dict[str, str], list[Path]],
) -> None:
    replicas = [r for r in fleet[0] if r.process.poll() is None]
    assert len(replicas) >= 2
    sha = call(replicas[0], "file_write", path="cas/doc.txt", text="round 0")["sha256"]
    for round_ in range(1, 9):
        barrier = threading.Barrier(len(replicas) * 2)

        def attempt(n: int, expected: str = sha, round_: int = round_, barrier: threading.Barrier = barrier) -> Any:
            barrier.wait()
            try:
                return call(replicas[n % len(replicas)], "file_write", path="cas/doc.txt",
                            text=f"round {round_} by {n}", expected_sha=expected)  # fmt: skip
            except Refused as refused:
                assert "expected_sha" in str(refused) or "conflict" in str(refused).lower(), refused
                return None

        with ThreadPoolExecutor(len(replicas) * 2) as pool:
            outcomes = list(pool.map(attempt, range(len(replicas) * 2)))
        winners = [o for o in outcomes if o is not None]
        assert len(winners) == 1, outcomes
        sha = winners[0]["sha256"]
        assert call(replicas[-1], "file_read", path="cas/doc.txt")["meta"]["sha256"] == sha
