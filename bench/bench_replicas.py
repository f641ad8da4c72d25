"""1 vs 3 stateless replicas on one PostgreSQL database and one S3 bucket: calls/s, p50/p99, correctness.

Each replica is a real ``serve --transport http --stateless`` process with its own empty data
directory. Client threads send mixed writes (memory_record, artifact_save, file_write), each as
its own POST, round-robin over the replicas, then every acknowledged event is counted in the
database (lost and duplicated must both be 0). The floor is ``tools/list`` on one replica, the
protocol's own cost, measured in the same run; results are given as ratios to it.

On a 2-core machine three replicas show correctness, not speed-up: they share the same two
cores with the database and the clients.

    python bench/bench_replicas.py [--calls 300] [--threads 6] [--database-url URL]

Without ``--database-url`` a throwaway PostgreSQL cluster is started (tests/_postgres.py), and
moto serves the bucket (tests/_s3.py).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import machine, print_table, summary, write_results
from tests._postgres import fresh_schema_url
from tests._postgres import start as start_postgres
from tests._postgres import stop as stop_postgres
from tests._s3 import BUCKET, client_env
from tests._s3 import start as start_s3
from tests._s3 import stop as stop_s3

HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
           "Mcp-Protocol-Version": "2025-06-18"}  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn(data_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mcp_memory_server", "--data-dir", str(data_dir), "serve", "--transport", "http",
         "--stateless", "--port", str(port)],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("MCP_MEMORY_")}, **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("a replica did not start within 120 s")


def post(port: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
    response = httpx2.post(f"http://127.0.0.1:{port}/mcp", headers=HEADERS, timeout=120,
                           json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})  # fmt: skip
    response.raise_for_status()
    import json

    if response.headers.get("content-type", "").startswith("application/json"):
        messages = [response.json()]
    else:
        messages = [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
    (final,) = [m for m in messages if "result" in m or "error" in m]
    if "error" in final or final["result"].get("isError"):
        raise RuntimeError(str(final)[:300])
    result: dict[str, Any] = final["result"]
    return result


def run(ports: list[int], calls: int, threads: int, tag: str) -> tuple[list[float], list[str], float]:
    latencies: list[float] = []
    acked: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        port = ports[i % len(ports)]
        kind = i % 3
        started = time.perf_counter()
        if kind == 0:
            answer = post(port, "tools/call", {"name": "memory_record",
                                               "arguments": {"kind": "bench", "text": f"{tag} {i}", "tags": [tag]}})  # fmt: skip
            event_id = answer["structuredContent"]["event_id"]
        elif kind == 1:
            post(port, "tools/call", {"name": "artifact_save", "arguments": {"text": f"{tag} artifact {i}"}})
            event_id = None
        else:
            post(port, "tools/call", {"name": "file_write", "arguments": {"path": f"{tag}/{i}.txt", "text": str(i)}})
            event_id = None
        elapsed = time.perf_counter() - started
        with lock:
            latencies.append(elapsed)
            if event_id:
                acked.append(event_id)

    began = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(calls)))
    return latencies, acked, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--threads", type=int, default=6)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    pg_dir = Path(tempfile.mkdtemp(prefix="bench-replicas-pg-"))  # its own: initdb runs as the postgres user
    base = args.database_url or start_postgres(pg_dir)
    endpoint = start_s3(scratch / "s3")
    processes: list[subprocess.Popen[bytes]] = []
    results: dict[str, Any] = {"machine": machine(), "calls": args.calls, "threads": args.threads}
    rows = []
    try:
        from mcp_memory_server import MemoryStore

        for replicas in (1, 3):
            url = fresh_schema_url(base)
            env = {"MCP_MEMORY_DATABASE_URL": url, "MCP_MEMORY_BLOB_URL": f"s3://{BUCKET}/bench-{uuid.uuid4().hex[:8]}",
                   **client_env(endpoint)}  # fmt: skip
            started = [spawn(scratch / f"r{replicas}-{i}", env) for i in range(replicas)]
            processes += [p for p, _ in started]
            ports = [port for _, port in started]
            floor = []
            for _ in range(50):
                began = time.perf_counter()
                post(ports[0], "tools/list", {})
                floor.append(time.perf_counter() - began)
            latencies, acked, wall = run(ports, args.calls, args.threads, f"r{replicas}")
            with MemoryStore.open(scratch / f"audit-{replicas}", database_url=url) as audit:
                stored = [r[0] for r in audit.db.query("SELECT event_id FROM events WHERE kind = 'bench'")]
            lost = len(set(acked) - set(stored))
            duplicated = len(stored) - len(set(stored))
            stats = summary(latencies)
            floor_p50 = summary(floor)["p50_ms"]
            results[f"{replicas}_replicas"] = {"calls_per_s": args.calls / wall, **stats, "floor_p50_ms": floor_p50,
                                               "lost": lost, "duplicated": duplicated}  # fmt: skip
            rows.append((replicas, f"{args.calls / wall:.1f}", f"{stats['p50_ms']:.1f}", f"{stats['p99_ms']:.1f}",
                         f"{floor_p50:.1f}", f"{stats['p50_ms'] / floor_p50:.1f}", lost, duplicated))  # fmt: skip
            for process, _ in started:
                process.terminate()
                process.wait(30)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        stop_s3(scratch / "s3")
        if not args.database_url:
            stop_postgres(pg_dir)
    one, three = results["1_replicas"], results["3_replicas"]
    results["three_over_one_calls_per_s"] = three["calls_per_s"] / one["calls_per_s"]
    print_table(
        f"stateless replicas, {args.calls} mixed writes from {args.threads} threads (load {os.getloadavg()[0]:.1f})",
        ["replicas", "calls/s", "p50 ms", "p99 ms", "floor p50 ms", "p50/floor", "lost", "duplicated"],
        rows,
    )
    print(f"3 replicas / 1 replica, calls/s: {results['three_over_one_calls_per_s']:.2f}")
    write_results("replicas", results)


if __name__ == "__main__":
    main()
