"""Foundation benchmarks: start-up, tool latency over stdio, event ingest, CAS ingest, idle memory.

    python bench/bench_foundation.py                      # everything, about 1-2 minutes
    python bench/bench_foundation.py --only latency,events --calls 1000
    python bench/bench_foundation.py --database-url postgresql://user@host:5432/db   # the same on PostgreSQL

Prints a short table per section (stderr) and the JSON (stdout), and writes the JSON to
``bench/results/foundation-<time>.json``. Every number sits next to its floor where one
exists: a trivial tool on the same SDK, ``sha256sum`` of the same file, the SDK import.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from common import (
    add_database_url_option,
    call,
    drop_schemas,
    engine,
    find_child,
    machine,
    memory_kib,
    print_table,
    server_args,
    store_settings,
    store_url,
    summary,
    trivial_server,
    use_database_url,
    write_results,
)
from mcp import Client, StdioServerParameters

BENCH = Path(__file__).resolve().parent
SECTIONS = ("cold_start", "latency", "events", "ingest", "idle_rss")


def memory_server(data_dir: Path) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "mcp_memory_server", *server_args(data_dir)])


# -- cold start ------------------------------------------------------------------------------------


async def time_to_initialize(params: StdioServerParameters) -> tuple[float, float]:
    """Seconds from spawning the server to its answer to ``initialize``, and to its first ``tools/list``.

    Tool schemas are built on the first ``tools/list`` (not before ``initialize``), so the
    second number shows that cost honestly: it is what a client waits for before its first call.
    """
    started = time.perf_counter()
    async with Client(params, mode="legacy") as client:
        elapsed = time.perf_counter() - started
        await client.list_tools()  # the session works
        listed = time.perf_counter() - started
    return elapsed, listed


def sdk_import_seconds() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import mcp.server.mcpserver"], check=True)
    return time.perf_counter() - started


def bench_cold_start(work: Path, runs: int) -> dict[str, Any]:
    ours, trivial, sdk, ours_listed, trivial_listed = [], [], [], [], []
    for run in range(runs):
        initialized, listed = anyio.run(time_to_initialize, memory_server(work / f"cold-{run}"))
        ours.append(initialized)
        ours_listed.append(listed)
        initialized, listed = anyio.run(time_to_initialize, trivial_server())
        trivial.append(initialized)
        trivial_listed.append(listed)
        sdk.append(sdk_import_seconds())
    result = {
        "memory_server": summary(ours),
        "trivial_server": summary(trivial),
        "sdk_import_only": summary(sdk),
        "memory_server_to_tools_list": summary(ours_listed),
        "trivial_server_to_tools_list": summary(trivial_listed),
        "target_s": 1.0,
    }
    result["ratio_p50_to_trivial"] = round(result["memory_server"]["p50_ms"] / result["trivial_server"]["p50_ms"], 2)
    result["tools_list_ratio_p50_to_trivial"] = round(
        result["memory_server_to_tools_list"]["p50_ms"] / result["trivial_server_to_tools_list"]["p50_ms"], 2
    )
    print_table(
        f"cold start to answered initialize over stdio ({runs} runs)",
        ["server", "p50 s", "max s"],
        [[name, result[name]["p50_ms"] / 1000, round(max(samples), 3)]
         for name, samples in (("memory_server", ours), ("trivial_server", trivial), ("sdk_import_only", sdk))],
    )  # fmt: skip
    return result


# -- tool latency ----------------------------------------------------------------------------------


class ValidationClock:
    """Times the SDK client's own check of each result against the tool's output schema.

    ``Client.call_tool`` validates structured content with jsonschema on the client side;
    for results with many records that costs more than the server's work, so the tables
    show latency with and without it.
    """

    def __init__(self, client: Client) -> None:
        self.last = 0.0
        session = client.session
        validate = session.validate_tool_result

        async def timed(name: str, result: Any) -> None:
            started = time.perf_counter()
            await validate(name, result)
            self.last = time.perf_counter() - started

        session.validate_tool_result = timed  # type: ignore[method-assign]


async def time_pairs(
    client: Client, tool: str, make_args: Callable[[int], dict[str, Any]], floor: Client, calls: int
) -> dict[str, list[float]]:
    """Time ``tool`` and the trivial ``noop`` call by call, alternating, so both see the same machine load."""
    for i in range(min(20, calls)):  # warm-up: first-call costs (imports, caches) are start-up, not latency
        await call(client, tool, make_args(-1 - i))
        await call(floor, "noop", {})
    ours_clock, floor_clock = ValidationClock(client), ValidationClock(floor)
    samples: dict[str, list[float]] = {"ours": [], "ours_server": [], "trivial": [], "trivial_server": []}
    for i in range(calls):
        arguments = make_args(i)
        started = time.perf_counter()
        await call(floor, "noop", {})
        middle = time.perf_counter()
        await call(client, tool, arguments)
        done = time.perf_counter()
        samples["trivial"].append(middle - started)
        samples["trivial_server"].append(middle - started - floor_clock.last)
        samples["ours"].append(done - middle)
        samples["ours_server"].append(done - middle - ours_clock.last)
    return samples


def fsync_seconds(folder: Path, count: int) -> list[float]:
    """Writing 100 bytes and fsyncing them: the floor under every acknowledged (durable) write."""
    samples = []
    path = folder / "fsync-probe"
    with open(path, "wb") as handle:
        for _ in range(count):
            started = time.perf_counter()
            handle.write(b"x" * 100)
            handle.flush()
            os.fsync(handle.fileno())
            samples.append(time.perf_counter() - started)
    path.unlink()
    return samples


async def mcp_events_per_second(client: Client, total: int, in_flight: int) -> float:
    limiter = anyio.Semaphore(in_flight)

    async def one(i: int) -> None:
        async with limiter:
            await call(client, "memory_record", {"kind": "load", "data": {"i": i}})

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for i in range(total):
            group.start_soon(one, i)
    return total / (time.perf_counter() - started)


async def wait_until_indexed(client: Client, limit_s: float = 300) -> float:
    """Wait for the background model load and the embedding of the seed records: steady state, not start-up."""
    started = time.perf_counter()
    with anyio.move_on_after(limit_s):
        while True:
            model = (await call(client, "memory_stats", {}))["model"]
            if model.get("state") != "loading" and not model.get("pending_documents"):
                break
            await anyio.sleep(0.5)
    return time.perf_counter() - started


async def bench_latency_async(work: Path, calls: int) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    all_trivial: list[float] = []
    async with Client(trivial_server()) as floor, Client(memory_server(work / "latency")) as client:
        # A store that is not empty: 2,000 events and 200 artifacts before measuring.
        for i in range(200):
            await call(client, "artifact_save", {"text": f"seed report {i}", "kind": "report",
                                                 "labels": {"seed": i % 7}, "metrics": {"score": i / 200}})  # fmt: skip
        await call(client, "memory_record_tool_result", {"tool": "train", "outputs": [{"name": "loss", "value": 0.1}]})
        for i in range(2000):
            await call(client, "memory_record", {"kind": "seed", "data": {"i": i, "note": "seed event"}})
        uri = (await call(client, "artifact_save", {"text": "read me " * 100, "kind": "report"}))["uri"]
        settle_s = await wait_until_indexed(client)
        tag = f"{os.getpid()}"
        cases: dict[str, tuple[str, Callable[[int], dict[str, Any]]]] = {
            "memory_record": ("memory_record",
                              lambda i: {"kind": "observation", "data": {"step": i, "loss": 0.5}, "tags": ["bench"]}),
            "memory_recent (limit 10)": ("memory_recent", lambda i: {"limit": 10}),
            "memory_recent (default, 50)": ("memory_recent", lambda i: {}),
            "memory_last": ("memory_last", lambda i: {"name": "loss"}),
            "artifact_save (text)": ("artifact_save",
                                     lambda i: {"text": f"bench note {tag} {i}", "kind": "note", "tags": ["bench"]}),
            "artifact_read (text)": ("artifact_read", lambda i: {"uri": uri}),
            "artifact_search (limit 10)": ("artifact_search", lambda i: {"kind": "report", "limit": 10}),
            "artifact_search (default, 50)": ("artifact_search", lambda i: {}),
        }  # fmt: skip
        for name, (tool, make_args) in cases.items():
            samples = await time_pairs(client, tool, make_args, floor, calls)
            all_trivial += samples["trivial"]
            row = summary(samples["ours"])
            row["trivial_p50_ms"] = summary(samples["trivial"])["p50_ms"]
            row["ratio_p50_to_trivial"] = round(row["p50_ms"] / row["trivial_p50_ms"], 2)
            # The same, less the client-side output-schema check (server + transport only).
            row["server_p50_ms"] = summary(samples["ours_server"])["p50_ms"]
            row["trivial_server_p50_ms"] = summary(samples["trivial_server"])["p50_ms"]
            row["server_ratio_p50_to_trivial"] = round(row["server_p50_ms"] / row["trivial_server_p50_ms"], 2)
            rows[name] = row
        events_per_s = await mcp_events_per_second(client, total=max(calls, 500), in_flight=16)
    fsync = summary(fsync_seconds(work, 200))

    print_table(
        f"tool latency over stdio on {engine()} ({calls} calls each, alternating with a trivial no-op tool; target p50 <= 1.5x)",
        ["tool", "p50 ms", "p99 ms", "trivial p50", "ratio", "without client schema check: p50", "ratio"],
        [[name, r["p50_ms"], r["p99_ms"], r["trivial_p50_ms"], r["ratio_p50_to_trivial"], r["server_p50_ms"],
          r["server_ratio_p50_to_trivial"]] for name, r in rows.items()],
    )  # fmt: skip
    print(f"  fsync of 100 bytes (floor of a durable write): p50 {fsync['p50_ms']} ms, p99 {fsync['p99_ms']} ms\n"
          f"  memory_record through MCP, 16 in flight: {events_per_s:,.0f} events/s", file=sys.stderr)  # fmt: skip
    return {
        "trivial_noop": summary(all_trivial),
        "tools": rows,
        "fsync_100_bytes": fsync,
        "mcp_memory_record_events_per_s": round(events_per_s),
        "seconds_waited_for_model_and_seed_indexing": round(settle_s, 1),
        "target_ratio": 1.5,
    }


def bench_latency(work: Path, calls: int) -> dict[str, Any]:
    return anyio.run(bench_latency_async, work, calls)


# -- events through the Python API ----------------------------------------------------------------


_EVENT_COLUMNS = ("seq", "event_id", "ts", "kind", "topic", "tool", "text", "data", "tags", "metrics", "inputs",
                  "outputs", "severity", "run_id", "graph_id", "node_id")  # fmt: skip


def raw_event_rows(items: list[dict[str, Any]], first_seq: int) -> list[tuple[Any, ...]]:
    """The rows ``record_many`` stores for ``items``, made without its checks or models (the floor's input)."""
    from mcp_memory_server.ids import new_id, utc_now

    rows = []
    for i, item in enumerate(items):
        data = json.dumps(item["data"], sort_keys=True, separators=(",", ":"))
        tags = json.dumps(sorted(set(item["tags"])), separators=(",", ":"))
        rows.append((first_seq + i, new_id("evt"), utc_now(), item["kind"], item["topic"], None, data, data, tags, "{}", "[]",
                     "[]", 2, "run_floor", None, None))  # fmt: skip
    return rows


class RawEventInsert:
    """The floor: prebuilt rows into a store's ``events`` (same schema, indexes and search trigger) through the
    driver alone, one transaction per batch. SQLite: ``executemany`` and a multi-row INSERT; PostgreSQL: COPY."""

    def __init__(self, folder: Path, how: str) -> None:
        self.how = how
        self.url = store_url(folder)
        self.sql = f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) VALUES "
        self.one = "(" + ", ".join("?" * len(_EVENT_COLUMNS)) + ")"
        if self.url is None:
            self.conn: Any = sqlite3.connect(folder / "memory.db", isolation_level=None)
            self.conn.execute("PRAGMA synchronous = FULL")  # the store's default
        else:
            import psycopg

            self.conn = psycopg.connect(self.url, autocommit=True)

    def insert(self, rows: list[tuple[Any, ...]]) -> None:
        conn = self.conn
        if self.url is not None:
            conn.execute("BEGIN")
            with conn.cursor().copy(f"COPY events ({', '.join(_EVENT_COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            conn.execute("COMMIT")
            return
        conn.execute("BEGIN IMMEDIATE")
        if self.how == "executemany":
            conn.executemany(self.sql + self.one, rows)
        else:
            for start in range(0, len(rows), 500):
                chunk = rows[start : start + 500]
                conn.execute(self.sql + ", ".join([self.one] * len(chunk)), [v for row in chunk for v in row])
        conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


def bench_events(work: Path, total: int) -> dict[str, Any]:
    from mcp_memory_server import MemoryStore

    def item(i: int) -> dict[str, Any]:
        return {"kind": "observation", "data": {"step": i, "loss": 1 / (i + 1), "note": "epoch done"},
                "tags": ["train", "bench"], "topic": "training"}  # fmt: skip

    batch = 1000
    results: dict[str, Any] = {"batch_size": batch}
    floors = ["copy"] if engine() == "postgresql" else ["executemany", "multi_row_insert"]
    items = [item(i) for i in range(total)]
    floor_rows = raw_event_rows(items, 1)
    floor_s = dict.fromkeys(floors, 0.0)
    floor_cpu = dict.fromkeys(floors, 0.0)
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(
            MemoryStore.open(work / "events-batched", **store_settings(work / "events-batched"))
        )
        raw = {}
        for how in floors:
            folder = work / f"events-floor-{how}"
            MemoryStore.open(folder, **store_settings(folder)).close()  # the same schema, empty
            raw[how] = RawEventInsert(folder, how)
            stack.callback(raw[how].close)
        store.events.record_many([item(i) for i in range(batch)])  # warm-up
        ours_s = ours_cpu = 0.0
        # Ours and each floor take turns batch by batch, so that all see the same load.
        for start in range(0, total, batch):
            started, cpu_started = time.perf_counter(), time.process_time()
            store.events.record_many(items[start : start + batch])
            ours_s += time.perf_counter() - started
            ours_cpu += time.process_time() - cpu_started
            for how in floors:
                started, cpu_started = time.perf_counter(), time.process_time()
                raw[how].insert(floor_rows[start : start + batch])
                floor_s[how] += time.perf_counter() - started
                floor_cpu[how] += time.process_time() - cpu_started
        results["batched_events_per_s"] = round(total / ours_s)
        results["batched_events_per_cpu_s"] = round(total / ours_cpu)
        for how in floors:
            results[f"floor_raw_{how}_events_per_s"] = round(total / floor_s[how])
            results[f"floor_raw_{how}_events_per_cpu_s"] = round(total / floor_cpu[how])
        best = min(floor_s.values())
        results["batched_vs_best_floor"] = round(best / ours_s, 2)  # 1.0: as fast as the bare driver
        # On SQLite the engine runs in this process, so CPU time is the load-proof comparison; on
        # PostgreSQL the server's work is not in it (the client's share only).
        results["batched_vs_best_floor_cpu"] = round(min(floor_cpu.values()) / ours_cpu, 2)

    one_by_one = max(total // 25, 500)
    # sync is SQLite's setting; on PostgreSQL both runs are the same commit path (the server's own durability).
    for sync in ("full", "normal"):
        folder = work / f"events-single-{sync}"
        with MemoryStore.open(folder, sync=sync, **store_settings(folder)) as store:
            started = time.perf_counter()
            for i in range(one_by_one):
                store.events.record(**item(i))
            results[f"one_by_one_sync_{sync}_events_per_s"] = round(one_by_one / (time.perf_counter() - started))
    results["events_batched"] = total
    results["events_one_by_one"] = one_by_one
    results["target_batched_events_per_s"] = 50_000
    # The floors' CPU seconds are comparable on SQLite only: PostgreSQL's share runs in the server.
    in_process = engine() == "sqlite"
    floor_lines = [
        [f"floor: raw {how} of the same rows, same schema" + (" (wall / per CPU s)" if in_process else " (wall)"),
         f"{results[f'floor_raw_{how}_events_per_s']:,}"
         + (f" / {results[f'floor_raw_{how}_events_per_cpu_s']:,}" if in_process else "")]
        for how in floors
    ] + [
        ["record_many / fastest floor, events/s" + (" (wall / per CPU s)" if in_process else " (wall)"),
         f"{results['batched_vs_best_floor']:.2f}" + (f" / {results['batched_vs_best_floor_cpu']:.2f}" if in_process else "")]
    ]  # fmt: skip
    print_table(
        f"events through the Python API on {engine()} (target >= 50,000/s batched)",
        ["mode", "events/s"],
        [
            [f"record_many, batches of {batch} (wall)", f"{results['batched_events_per_s']:,}"],
            [f"record_many, batches of {batch} (per CPU second)", f"{results['batched_events_per_cpu_s']:,}"],
            *floor_lines,
            ["record, one by one, sync=full (default)", f"{results['one_by_one_sync_full_events_per_s']:,}"],
            ["record, one by one, sync=normal", f"{results['one_by_one_sync_normal_events_per_s']:,}"],
        ],
    )
    return results


# -- CAS ingest ------------------------------------------------------------------------------------

INGEST_CHILD = """\
import hashlib, json, resource, sys, time
from mcp_memory_server import MemoryStore
path, data_dir, url = sys.argv[1], sys.argv[2], sys.argv[3]
store = MemoryStore.open(data_dir, **({"database_url": url} if url else {}))
started = time.perf_counter()
digest = hashlib.sha256()
with open(path, "rb") as handle:
    for chunk in iter(lambda: handle.read(1 << 20), b""):
        digest.update(chunk)
hashlib_s = time.perf_counter() - started
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
record = store.artifacts.save_file(path, kind="dataset")
ingest_s = time.perf_counter() - started
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert record.sha256 == digest.hexdigest()
print(json.dumps({"ingest_s": ingest_s, "hashlib_s": hashlib_s, "peak_rss_before_kib": before,
                  "peak_rss_after_kib": after}))
"""


def bench_ingest(work: Path, size_mb: int) -> dict[str, Any]:
    path = work / "ingest.bin"
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as handle:
        for i in range(size_mb):  # distinct 1 MiB blocks, cheaply
            handle.write(i.to_bytes(8, "big") + chunk[8:])
    size = path.stat().st_size

    sha256sum_s = []
    for _ in range(2):  # the second run reads from a warm page cache, like the ingest below
        started = time.perf_counter()
        subprocess.run(["sha256sum", str(path)], check=True, capture_output=True)
        sha256sum_s.append(time.perf_counter() - started)
    child = subprocess.run(
        [sys.executable, "-c", INGEST_CHILD, str(path), str(work / "ingest-store"),
         store_settings(work / "ingest-store").get("database_url", "")],
        check=True, capture_output=True, text=True, cwd=work,
    )  # fmt: skip
    measured = json.loads(child.stdout)
    mb = size / 1e6
    results = {
        "file_mb": round(mb),
        "sha256sum_mb_per_s": round(mb / min(sha256sum_s)),
        "python_hashlib_mb_per_s": round(mb / measured["hashlib_s"]),
        "save_file_mb_per_s": round(mb / measured["ingest_s"]),
        "peak_rss_before_ingest_mib": round(measured["peak_rss_before_kib"] / 1024, 1),
        "peak_rss_after_ingest_mib": round(measured["peak_rss_after_kib"] / 1024, 1),
        "target_ratio_to_sha256sum": 0.5,
    }
    results["ratio_to_sha256sum"] = round(results["save_file_mb_per_s"] / results["sha256sum_mb_per_s"], 2)
    print_table(
        f"CAS ingest of a {round(mb)} MB file (save_file: hash + copy + fsync; target >= 0.5x sha256sum)",
        ["what", "MB/s"],
        [
            ["sha256sum (floor)", results["sha256sum_mb_per_s"]],
            ["python hashlib only", results["python_hashlib_mb_per_s"]],
            ["artifacts.save_file", f"{results['save_file_mb_per_s']} ({results['ratio_to_sha256sum']}x)"],
        ],
    )
    print(f"  peak RSS {results['peak_rss_before_ingest_mib']} MiB before, {results['peak_rss_after_ingest_mib']} MiB "
          "after the ingest", file=sys.stderr)  # fmt: skip
    path.unlink()
    return results


# -- idle memory -----------------------------------------------------------------------------------


async def idle_rss_async(params: StdioServerParameters, marker: str, tool: str) -> dict[str, Any]:
    """RSS one second after the handshake and a call, then (for our server) once the model is loaded."""
    async with Client(params) as client:
        await client.call_tool(tool, {})
        await anyio.sleep(1.0)
        pid = find_child(marker)
        measured: dict[str, Any] = {"after_handshake": memory_kib(pid)}
        if tool == "memory_stats":
            started = time.perf_counter()
            with anyio.move_on_after(180):
                while True:
                    model = (await call(client, "memory_stats", {}))["model"]
                    if model["state"] in ("ready", "failed", "idle"):
                        break
                    await anyio.sleep(0.25)
            await anyio.sleep(1.0)
            measured["model"] = {k: model.get(k) for k in ("state", "model_id", "load_seconds")}
            measured["model_wait_s"] = round(time.perf_counter() - started, 2)
            measured["after_model"] = memory_kib(pid)
        return measured


def bench_idle_rss(work: Path) -> dict[str, Any]:
    ours = anyio.run(idle_rss_async, memory_server(work / "idle"), "mcp_memory_server", "memory_stats")
    trivial = anyio.run(idle_rss_async, trivial_server(), "trivial_server.py", "noop")
    results = {
        "memory_server_rss_after_handshake_mib": round(ours["after_handshake"]["VmRSS"] / 1024, 1),
        "memory_server_rss_with_model_mib": round(ours["after_model"]["VmRSS"] / 1024, 1),
        "memory_server_peak_rss_mib": round(ours["after_model"]["VmHWM"] / 1024, 1),
        "model": ours["model"],
        "trivial_server_rss_mib": round(trivial["after_handshake"]["VmRSS"] / 1024, 1),
    }
    print_table(
        "resident memory of an idle server",
        ["server", "RSS MiB"],
        [
            ["mcp-memory-server, 1 s after the handshake", results["memory_server_rss_after_handshake_mib"]],
            [f"mcp-memory-server, model {ours['model']['state']}", results["memory_server_rss_with_model_mib"]],
            ["trivial server on the same SDK", results["trivial_server_rss_mib"]],
        ],
    )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections: {', '.join(SECTIONS)}")
    parser.add_argument("--runs", type=int, default=5, help="cold starts per server")
    parser.add_argument("--calls", type=int, default=200, help="timed calls per tool")
    parser.add_argument("--events", type=int, default=50_000, help="events for the batched API run")
    parser.add_argument("--ingest-mb", type=int, default=512, help="size of the CAS ingest file in MiB")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch directory (default: a temp dir)")
    add_database_url_option(parser)
    args = parser.parse_args()
    use_database_url(args.database_url)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}")

    work = Path(tempfile.mkdtemp(prefix="bench-foundation-", dir=args.workdir))
    results: dict[str, Any] = {"benchmark": "foundation", "machine": machine()}
    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "cold_start": lambda: bench_cold_start(work, args.runs),
        "latency": lambda: bench_latency(work, args.calls),
        "events": lambda: bench_events(work, args.events),
        "ingest": lambda: bench_ingest(work, args.ingest_mb),
        "idle_rss": lambda: bench_idle_rss(work),
    }
    try:
        for section in sections:
            results[section] = runners[section]()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        drop_schemas()
    results["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    path = write_results("foundation", results)
    print(json.dumps(results, indent=2))
    print(f"\nwritten to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
