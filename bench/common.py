"""Shared pieces of the benchmarks: the machine, percentiles, process memory, results on disk, the trivial floor."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sqlite3
import statistics
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"

# -- the engine: SQLite in each store's folder (default), or one PostgreSQL database ----------------

_database_url: str | None = None
_schemas_made: list[str] = []


def add_database_url_option(parser: argparse.ArgumentParser) -> None:
    """``--database-url`` (default ``$MCP_MEMORY_DATABASE_URL``): run every store of the benchmark on PostgreSQL."""
    parser.add_argument(
        "--database-url",
        default=os.environ.get("MCP_MEMORY_DATABASE_URL") or None,
        help="run every store on this PostgreSQL database, each in a schema of its own named bench_<hash of its "
        "folder> [MCP_MEMORY_DATABASE_URL]; default: SQLite (memory.db) in each store's folder",
    )


def use_database_url(url: str | None) -> None:
    """Send the stores this benchmark opens (in-process and in server subprocesses) to ``url``'s database."""
    global _database_url
    _database_url = url or None
    # Every store is given its own URL below; nothing may fall back to the bare one from the environment.
    os.environ.pop("MCP_MEMORY_DATABASE_URL", None)


def engine() -> str:
    return "postgresql" if _database_url else "sqlite"


def store_url(folder: Path) -> str | None:
    """The URL of the store in ``folder``: a schema of its own on PostgreSQL (the same for the same folder, so
    a benchmark that reuses its stores reuses their schemas), None on SQLite."""
    if _database_url is None:
        return None
    schema = "bench_" + hashlib.blake2b(str(folder.resolve()).encode(), digest_size=6).hexdigest()
    if schema not in _schemas_made:
        _schemas_made.append(schema)
    separator = "&" if "?" in _database_url else "?"
    return f"{_database_url}{separator}options=-csearch_path%3D{schema}"


def store_settings(folder: Path) -> dict[str, Any]:
    """``MemoryStore.open(folder, **store_settings(folder))``."""
    url = store_url(folder)
    return {"database_url": url} if url else {}


def server_args(folder: Path) -> list[str]:
    """The command-line settings of a server on the store in ``folder``."""
    url = store_url(folder)
    return ["--data-dir", str(folder), *(["--database-url", url] if url else [])]


def drop_schemas() -> None:
    """Remove the PostgreSQL schemas this run created (for benchmarks whose stores are throwaway)."""
    if _database_url is None or not _schemas_made:
        return
    import psycopg

    with psycopg.connect(_database_url, autocommit=True) as conn:
        for schema in _schemas_made:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    _schemas_made.clear()


def machine() -> dict[str, Any]:
    """What the numbers were measured on, including how busy the machine was."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "os": platform.platform(),
        "python": platform.python_version(),
        "mcp": metadata.version("mcp"),
        "sqlite": sqlite3.sqlite_version,
        "engine": engine(),
        **({"postgresql": _postgres_version()} if _database_url else {}),
    }


def _postgres_version() -> str:
    import psycopg

    assert _database_url is not None
    with psycopg.connect(_database_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def summary(samples_s: Sequence[float]) -> dict[str, float]:
    """p50/p99/mean in milliseconds of samples in seconds."""
    ordered = sorted(samples_s)
    p99_index = min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[p99_index] * 1000, 3),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 3),
    }


def child_pids() -> list[int]:
    """Direct children of this process (Linux ``/proc``)."""
    pids: list[int] = []
    for task in Path("/proc/self/task").iterdir():
        try:
            pids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return pids


def find_child(marker: str) -> int:
    """The pid of the child process whose command line contains ``marker``."""
    for pid in child_pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            return pid
    raise LookupError(f"no child process running {marker!r}")


def memory_kib(pid: int) -> dict[str, int]:
    """Resident set now (VmRSS) and at its peak (VmHWM), in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(line.split()[1])
    return values


def write_results(name: str, results: dict[str, Any]) -> Path:
    """Save to ``bench/results/<name>-<UTC time>.json`` and ``<name>-latest.json``; return the first."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(results, indent=2)
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(text + "\n")
    (RESULTS / f"{name}-latest.json").write_text(text + "\n")
    return path


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    print(f"\n{title}", file=sys.stderr)
    for index, row in enumerate(cells):
        padded = [c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        print("  " + "  ".join(padded), file=sys.stderr)
        if index == 0:
            print("  " + "  ".join("-" * w for w in widths), file=sys.stderr)


def trivial_server() -> StdioServerParameters:
    """The floor: a one-tool server on the same SDK (``bench/trivial_server.py``)."""
    return StdioServerParameters(command=sys.executable, args=[str(BENCH / "trivial_server.py")])


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A tool call that must succeed; its structured result."""
    result = await client.call_tool(tool, arguments)
    if result.is_error or result.structured_content is None:
        raise RuntimeError(f"{tool} failed: {result.content}")
    return result.structured_content


def open_bench_store(folder: Path, *, fresh: bool = False, **settings: Any) -> Any:
    """A store for one benchmark corpus: ``folder`` on SQLite, or, with ``MCP_MEMORY_DATABASE_URL``
    set, a PostgreSQL schema of its own named after ``folder`` (``fresh`` empties it first)."""
    import re
    import shutil

    from mcp_memory_server import MemoryStore

    base = os.environ.get("MCP_MEMORY_DATABASE_URL")
    if fresh and folder.exists():
        shutil.rmtree(folder)
    if not base:
        return MemoryStore.open(folder, **settings)
    schema = "bench_" + re.sub(r"\W", "_", folder.name.lower())
    if fresh:
        import psycopg

        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    separator = "&" if "?" in base else "?"
    return MemoryStore.open(folder, database_url=f"{base}{separator}options=-csearch_path%3D{schema}", **settings)
