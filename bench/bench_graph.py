"""Graph-memory benchmarks: graph_write throughput, and lineage/neighbors latency on a large graph.

    python bench/bench_graph.py                        # 100k-node graph, about a minute
    python bench/bench_graph.py --nodes 20000 --queries 200 --sync normal

Write throughput is measured three ways: batches through the Python API, one node per
call through the Python API (one transaction each), and batches through graph_write over
the in-process MCP client. Query latency (p50/p99 over random start nodes, through the
Python API) sits next to its floor: the same traversal as bare SQL on the same tables.

Prints a short table per section (stderr) and the JSON (stdout), and writes the JSON to
``bench/results/graph-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
from common import machine, print_table, summary, write_results
from mcp import Client

from mcp_memory_server import MemoryStore
from mcp_memory_server.server import build_server

AGENT = "bench-agent"


def node_id(i: int) -> str:
    return str(uuid.UUID(int=i + 1))


def make_node(i: int, rng: random.Random, *, edges: bool = True) -> dict[str, Any]:
    """Node i: mostly episodes and facts; each derives from its predecessor, some patch an earlier node."""
    kind = ("episode", "semantic", "semantic", "procedural", "persona")[i % 5]
    payload: dict[str, Any] = {
        "episode": {
            "user_message": f"turn {i}: please run step {rng.randrange(1000)}",
            "tool_calls": ["bash"],
            "outcome": rng.choice(["success", "failure"]),
            "tags": [f"t{i % 17}"],
        },
        "semantic": {"fact": f"fact {i} about topic {i % 97}", "topic_cluster": f"topic-{i % 97}"},
        "procedural": {"pattern_name": f"pattern-{i}", "tool_sequence": ["a", "b"]},
        "persona": {"trait_name": f"trait-{i % 50}", "strength": rng.random()},
    }[kind]
    out: list[dict[str, Any]] = []
    if edges and i > 0:
        if rng.random() < 0.9:
            out.append({"to_id": node_id(i - 1), "label": "DERIVED_FROM"})
        if rng.random() < 0.1:
            out.append({"to_id": node_id(rng.randrange(i)), "label": "CAUSED_PATCH", "weight": 0.5})
        out.append({"to_id": node_id(rng.randrange(i)), "label": "RELATES", "weight": rng.random()})
    return {"id": node_id(i), "agent_id": AGENT, "node_type": kind, "payload": payload, "edges": out}


def build(store: MemoryStore, nodes: int, batch: int, rng: random.Random) -> dict[str, Any]:
    """Write the big graph in batches; returns the throughput of those batched writes."""
    started = time.perf_counter()
    for start in range(0, nodes, batch):
        store.graph.write([make_node(i, rng) for i in range(start, min(nodes, start + batch))])
    elapsed = time.perf_counter() - started
    counts = store.graph.count()
    return {"nodes": counts["graph_nodes"], "edges": counts["graph_edges"], "batch": batch,
            "seconds": round(elapsed, 2), "nodes_per_s": round(counts["graph_nodes"] / elapsed),
            "edges_per_s": round(counts["graph_edges"] / elapsed)}  # fmt: skip


def single_writes(store: MemoryStore, count: int, offset: int, rng: random.Random) -> dict[str, Any]:
    samples = []
    for i in range(offset, offset + count):
        item = make_node(i, rng, edges=False)
        item["agent_id"] = "singles"
        started = time.perf_counter()
        store.graph.upsert_node(item)
        samples.append(time.perf_counter() - started)
    return {**summary(samples), "nodes_per_s": round(count / sum(samples))}


async def mcp_writes(store: MemoryStore, batches: int, batch: int, offset: int) -> dict[str, Any]:
    rng = random.Random(7)
    samples = []
    server = build_server(store)
    # The server starts loading the model and embedding new documents after the handshake; that
    # background work is the search benchmarks' subject and would only add noise to these numbers.
    server.middleware.clear()
    async with Client(server) as client:
        for b in range(batches):
            nodes = [make_node(offset + b * batch + i, rng, edges=False) for i in range(batch)]
            for item in nodes:
                item["agent_id"] = "mcp"
            started = time.perf_counter()
            result = await client.call_tool("graph_write", {"nodes": nodes})
            samples.append(time.perf_counter() - started)
            if result.is_error:
                raise RuntimeError(result.content)
    return {**summary(samples), "batch": batch, "nodes_per_s": round(batches * batch / sum(samples))}


def time_queries(store: MemoryStore, op: str, starts: list[str], **arguments: Any) -> tuple[dict[str, Any], float]:
    samples, returned = [], 0
    for start in starts:
        began = time.perf_counter()
        result = store.graph.query(op, AGENT, node_id=start, limit=500, **arguments)
        samples.append(time.perf_counter() - began)
        returned += result.count
    return summary(samples), returned / len(starts)


def floor_neighbors(conn: sqlite3.Connection, starts: list[str]) -> dict[str, Any]:
    samples = []
    for start in starts:
        began = time.perf_counter()
        conn.execute(
            "SELECT n.id, n.payload FROM graph_edges e JOIN graph_nodes n ON n.id = e.to_id WHERE e.from_id = ?",
            (start,),
        ).fetchall()
        samples.append(time.perf_counter() - began)
    return summary(samples)


def floor_lineage(conn: sqlite3.Connection, starts: list[str]) -> dict[str, Any]:
    """A recursive CTE over the same edges (no per-level ordering, no agent check): the bare traversal."""
    samples = []
    for start in starts:
        began = time.perf_counter()
        conn.execute(
            "WITH RECURSIVE walk(id, depth) AS (SELECT ?, 0 UNION SELECT e.to_id, walk.depth + 1 FROM graph_edges e"
            " JOIN walk ON e.from_id = walk.id WHERE e.label IN ('DERIVED_FROM', 'CAUSED_PATCH') AND walk.depth < 20)"
            " SELECT n.id, n.payload FROM graph_nodes n JOIN (SELECT DISTINCT id FROM walk WHERE id != ?) w"
            " ON n.id = w.id",
            (start, start),
        ).fetchall()
        samples.append(time.perf_counter() - began)
    return summary(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=100_000, help="size of the query graph (default 100000)")
    parser.add_argument("--batch", type=int, default=2000, help="nodes per batched write (default 2000)")
    parser.add_argument("--singles", type=int, default=300, help="one-node writes to time (default 300)")
    parser.add_argument("--mcp-batches", type=int, default=20, help="graph_write calls of 100 nodes (default 20)")
    parser.add_argument("--queries", type=int, default=500, help="start nodes per query op (default 500)")
    parser.add_argument("--sync", choices=["full", "normal"], default="full", help="SQLite synchronous mode")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    args = parser.parse_args()

    rng = random.Random(42)
    data_dir = Path(tempfile.mkdtemp(prefix="bench-graph-"))
    results: dict[str, Any] = {"machine": machine(), "settings": vars(args)}
    try:
        with MemoryStore.open(data_dir, sync=args.sync) as store:
            results["write_batched"] = build(store, args.nodes, args.batch, rng)
            results["write_single"] = single_writes(store, args.singles, args.nodes, rng)
            starts = [node_id(rng.randrange(args.nodes)) for _ in range(args.queries)]
            conn = store.db.conn
            queries: dict[str, Any] = {}
            for name, op, extra, floor in (
                ("neighbors", "neighbors", {}, floor_neighbors),
                ("neighbors_both", "neighbors", {"direction": "both"}, None),
                ("lineage", "lineage", {}, floor_lineage),
            ):
                timing, mean_returned = time_queries(store, op, starts, **extra)
                entry: dict[str, Any] = {**timing, "mean_nodes_returned": round(mean_returned, 1)}
                if floor is not None:
                    entry["floor_sql"] = floor(conn, starts)
                    entry["ratio_p50"] = round(timing["p50_ms"] / max(entry["floor_sql"]["p50_ms"], 1e-6), 2)
                queries[name] = entry
            results["queries"] = queries
            results["validate_ms"] = round(timed(lambda: store.graph.validate(AGENT)) * 1000, 1)
            results["export_ms"] = round(timed(lambda: store.graph.export(AGENT)) * 1000, 1)
        with MemoryStore.open(data_dir / "mcp", sync=args.sync) as store:
            results["write_mcp"] = anyio.run(mcp_writes, store, args.mcp_batches, 100, args.nodes + args.singles)
    finally:
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)

    batched, single, mcp = results["write_batched"], results["write_single"], results["write_mcp"]
    print_table(
        f"graph_write throughput (sync={args.sync})",
        ["how", "nodes/s", "p50 ms/call", "p99 ms/call"],
        [
            [f"Python API, batches of {batched['batch']} (+edges)", batched["nodes_per_s"], "", ""],
            ["Python API, one node per call", single["nodes_per_s"], single["p50_ms"], single["p99_ms"]],
            [f"MCP graph_write, batches of {mcp['batch']}", mcp["nodes_per_s"], mcp["p50_ms"], mcp["p99_ms"]],
        ],
    )
    print_table(
        f"queries on {batched['nodes']} nodes / {batched['edges']} edges",
        ["op", "p50 ms", "p99 ms", "floor p50 ms", "ratio", "nodes returned"],
        [
            [name, q["p50_ms"], q["p99_ms"], q.get("floor_sql", {}).get("p50_ms", ""), q.get("ratio_p50", ""),
             q["mean_nodes_returned"]]
            for name, q in results["queries"].items()
        ],
    )  # fmt: skip
    print(f"\nvalidate: {results['validate_ms']} ms   export: {results['export_ms']} ms", file=sys.stderr)
    path = write_results("graph", results)
    print(json.dumps(results, indent=2))
    print(f"saved {path}", file=sys.stderr)
    return 0


def timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
