"""Memory-file benchmarks: file_write/file_read latency over stdio, storage used by many edits,
and importing an exported namespace.

    python bench/bench_files.py                         # every section, about a minute
    python bench/bench_files.py --calls 1000 --edits 5000 --sync normal
    python bench/bench_files.py --only archive --archive-files 5000

Prints a short table per section (stderr) and the JSON (stdout), and writes the JSON to
``bench/results/files-<time>.json``. Latency sits next to its floor, a trivial tool on the
same SDK; storage sits next to the size of the document and of all its versions unshared;
a ``.tar.gz`` import sits next to importing the same export as a folder (its floor: the same
checks and writes, no decompression).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from common import call, machine, print_table, summary, trivial_server, write_results
from mcp import Client, StdioServerParameters

BENCH = Path(__file__).resolve().parent
SECTIONS = ("latency", "storage", "archive")


def memory_server(data_dir: Path, sync: str) -> StdioServerParameters:
    args = ["-m", "mcp_memory_server", "--data-dir", str(data_dir), "--sync", sync]
    return StdioServerParameters(command=sys.executable, args=args)


async def time_paired(
    floor: Client, client: Client, tool: str, make_args: Callable[[int], dict[str, Any]], calls: int
) -> tuple[list[float], list[float]]:
    """Alternate a trivial call and a ``tool`` call, so both see the same machine load; return both timings."""
    for i in range(min(20, calls)):  # warm-up: first-call costs are start-up, not latency
        await call(floor, "noop", {})
        await call(client, tool, make_args(-1 - i))
    floor_samples, samples = [], []
    for i in range(calls):
        started = time.perf_counter()
        await call(floor, "noop", {})
        floor_samples.append(time.perf_counter() - started)
        arguments = make_args(i)
        started = time.perf_counter()
        await call(client, tool, arguments)
        samples.append(time.perf_counter() - started)
    return floor_samples, samples


def document(kib: int, seed: int) -> str:
    """A Markdown-like document of about ``kib`` KiB."""
    rng = random.Random(seed)
    words = ["memory", "agent", "plan", "note", "result", "step", "idea", "check", "done", "next"]
    lines = []
    while sum(len(line) + 1 for line in lines) < kib * 1024:
        lines.append(f"- {' '.join(rng.choice(words) for _ in range(10))}")
    return "\n".join(lines) + "\n"


# -- latency ---------------------------------------------------------------------------------------


async def bench_latency_async(work: Path, calls: int, sync: str, doc_kib: int) -> dict[str, Any]:
    body = document(doc_kib, 1)
    rows: dict[str, Any] = {}
    floors: list[float] = []
    async with Client(trivial_server()) as floor, Client(memory_server(work / "latency", sync)) as client:
        for i in range(100):  # a namespace that is not empty
            await call(client, "file_write", {"path": f"seed/{i:03d}.md", "text": f"seed {i}\n" + body})
        state = {"sha": (await call(client, "file_write", {"path": "doc.md", "text": body}))["sha256"]}

        def conditional_edit(i: int) -> dict[str, Any]:
            return {"path": "doc.md", "text": f"edit {i}\n" + body, "expected_sha": state["sha"]}

        cases: dict[str, tuple[str, Callable[[int], dict[str, Any]]]] = {
            "file_read (small)": ("file_read", lambda i: {"path": "seed/001.md"}),
            f"file_read ({doc_kib} KiB)": ("file_read", lambda i: {"path": "doc.md"}),
            "file_write (small, new content)": ("file_write", lambda i: {"path": "small.md", "text": f"note {i}"}),
            "file_write (small, alternating)": ("file_write", lambda i: {"path": "flip.md", "text": f"side {i % 2}"}),
            f"file_write ({doc_kib} KiB, new content)": (
                "file_write",
                lambda i: {"path": "big.md", "text": f"{i}" + body},
            ),
            "file_list (limit 10)": ("file_list", lambda i: {"limit": 10}),
            "file_list (default, 50)": ("file_list", lambda i: {}),
            "file_history (one path)": ("file_history", lambda i: {"path": "seed/001.md"}),
            "memory_stats": ("memory_stats", lambda i: {}),
        }
        for name, (tool, make_args) in cases.items():
            floor_samples, samples = await time_paired(floor, client, tool, make_args, calls)
            floors += floor_samples
            rows[name] = summary(samples)
            rows[name]["paired_trivial_p50_ms"] = summary(floor_samples)["p50_ms"]
            rows[name]["ratio_p50_to_trivial"] = round(rows[name]["p50_ms"] / rows[name]["paired_trivial_p50_ms"], 2)
        # A compare-and-swap edit loop: each write names the sha the previous one returned.
        cas_floor, cas = [], []
        for i in range(-20, calls):
            started = time.perf_counter()
            await call(floor, "noop", {})
            elapsed_floor = time.perf_counter() - started
            arguments = conditional_edit(i)
            started = time.perf_counter()
            state["sha"] = (await call(client, "file_write", arguments))["sha256"]
            if i >= 0:
                cas.append(time.perf_counter() - started)
                cas_floor.append(elapsed_floor)
        name = f"file_write ({doc_kib} KiB, expected_sha)"
        rows[name] = summary(cas)
        rows[name]["paired_trivial_p50_ms"] = summary(cas_floor)["p50_ms"]
        rows[name]["ratio_p50_to_trivial"] = round(rows[name]["p50_ms"] / rows[name]["paired_trivial_p50_ms"], 2)
    floor_summary = summary(floors)

    print_table(
        f"files tool latency over stdio (sync={sync}, {calls} calls each, alternating with a trivial call)",
        ["tool", "p50 ms", "p99 ms", "trivial p50 ms", "p50 / trivial"],
        [["trivial noop (all pairs)", floor_summary["p50_ms"], floor_summary["p99_ms"], "", 1.0]]
        + [
            [name, r["p50_ms"], r["p99_ms"], r["paired_trivial_p50_ms"], r["ratio_p50_to_trivial"]]
            for name, r in rows.items()
        ],
    )
    return {"sync": sync, "trivial_noop": floor_summary, "tools": rows, "target_ratio": 1.5}


# -- storage ---------------------------------------------------------------------------------------


def bench_storage(work: Path, edits: int, doc_kib: int, sync: str) -> dict[str, Any]:
    """Storage used by ``edits`` small edits (one line rewritten in place each) of one document."""
    from mcp_memory_server import MemoryStore

    lines = document(doc_kib, 2).splitlines(keepends=True)
    rng = random.Random(3)
    data_dir = work / "storage"
    with MemoryStore.open(data_dir, sync=sync) as store:
        empty_db = store.stats().sizes["database_bytes"]
        started = time.perf_counter()
        for i in range(edits):
            k = rng.randrange(len(lines))
            lines[k] = f"- edited in step {i} ".ljust(len(lines[k]) - 1, "~") + "\n"  # same length
            store.files.write("doc.md", "".join(lines), reason=f"edit {i}")
        elapsed = time.perf_counter() - started
        store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        stats = store.stats()
        doc_bytes = store.files.read("doc.md").meta.bytes
    blob_bytes = stats.sizes["blob_bytes"]
    db_bytes = stats.sizes["database_bytes"] - empty_db
    live_bytes = sum(p.stat().st_size for p in (data_dir / "files").rglob("*") if p.is_file())
    total = blob_bytes + db_bytes + live_bytes
    result = {
        "edits": edits,
        "document_bytes": doc_bytes,
        "versions": stats.counts["file_versions"],
        "blobs": stats.counts["blobs"],
        "blob_bytes": blob_bytes,
        "database_bytes_added": db_bytes,
        "live_file_bytes": live_bytes,
        "total_bytes": total,
        "bytes_per_edit": round(total / edits),
        "ratio_to_all_versions_unshared": round(total / (doc_bytes * edits), 3),
        "edits_per_s_python_api": round(edits / elapsed),
        "sync": sync,
    }
    print_table(
        f"storage used by {edits:,} edits of a {doc_kib} KiB document (one line changed per edit)",
        ["measure", "value"],
        [
            ["document", f"{doc_bytes:,} B"],
            ["blobs (one per version)", f"{blob_bytes:,} B in {stats.counts['blobs']:,} blobs"],
            ["database (versions, audit, index)", f"{db_bytes:,} B"],
            ["live file", f"{live_bytes:,} B"],
            ["total", f"{total / 2**20:.1f} MiB ({result['bytes_per_edit']:,} B per edit)"],
            ["edits/s (Python API)", f"{result['edits_per_s_python_api']:,}"],
        ],
    )
    return result


def bench_archive(work: Path, files: int, sync: str) -> dict[str, Any]:
    """Import ``files`` notes exported as a ``.tar.gz`` and as a folder, each into a fresh store."""
    from mcp_memory_server import MemoryStore

    source = work / "archive-source"
    with MemoryStore.open(source, sync=sync) as store:
        for i in range(files):  # written in path order, exported in digest order: the two differ
            store.files.write(f"notes/{i:05}.md", document(1, i))
        for kind in ("folder", "tar.gz"):
            store.files.export("default", work / f"export.{kind}")
    seconds: dict[str, float] = {}
    for kind in ("folder", "tar.gz"):
        with MemoryStore.open(work / f"archive-{kind}", sync=sync) as target:
            started = time.perf_counter()
            report = target.files.import_(work / f"export.{kind}")
            seconds[kind] = time.perf_counter() - started
            assert report.files == files, report
    result = {
        "files": files,
        "folder_seconds": round(seconds["folder"], 2),
        "tar_gz_seconds": round(seconds["tar.gz"], 2),
        "tar_gz_to_folder": round(seconds["tar.gz"] / seconds["folder"], 2),
        "sync": sync,
    }
    print_table(
        f"importing an export of {files:,} notes of 1 KiB",
        ["export", "seconds", "ratio to the folder"],
        [["folder (floor)", result["folder_seconds"], 1.0],
         [".tar.gz", result["tar_gz_seconds"], result["tar_gz_to_folder"]]],
    )  # fmt: skip
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections: {', '.join(SECTIONS)}")
    parser.add_argument("--calls", type=int, default=300, help="sequential calls per tool (latency)")
    parser.add_argument("--edits", type=int, default=1000, help="edits of the document (storage)")
    parser.add_argument("--doc-kib", type=int, default=10, help="document size in KiB")
    parser.add_argument("--archive-files", type=int, default=2000, help="notes in the exported namespace (archive)")
    parser.add_argument("--sync", choices=["full", "normal"], default="full", help="the store's sync setting")
    args = parser.parse_args()
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    work = Path(tempfile.mkdtemp(prefix="bench-files-"))
    results: dict[str, Any] = {"machine": machine()}
    try:
        if "latency" in chosen:
            results["latency"] = anyio.run(bench_latency_async, work, args.calls, args.sync, args.doc_kib)
        if "storage" in chosen:
            results["storage"] = bench_storage(work, args.edits, args.doc_kib, args.sync)
        if "archive" in chosen:
            results["archive"] = bench_archive(work, args.archive_files, args.sync)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    path = write_results("files", results)
    print(json.dumps(results, indent=2))
    print(f"\nwritten to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
