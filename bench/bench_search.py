"""Search benchmarks: latency at 10k/100k events, indexing throughput, torch threads, time to first search.

    python bench/bench_search.py                              # 10k events; about 2 minutes on a quiet machine
    python bench/bench_search.py --sizes 10000,100000         # the README numbers
    python bench/bench_search.py --only startup,threads
    python bench/bench_search.py --sizes 10000,100000 --database-url postgresql://user@host:5432/db

Sections:

- ``latency``: ``events.search`` p50/p99 per mode (query embedding included: every query is
  new), next to the floor on the same data: ``model.encode`` of the query + numpy top-k on
  the same matrix + the engine's own full-text query on the same index. Event texts are LoCoMo turns
  (cycled, numbered); their vectors are random unit vectors written through the vector
  index (embedding 100k texts would take the benchmark's whole budget, and exact search
  costs the same whatever the vectors are). numpy's BLAS runs on ``--blas-threads`` (1, as
  in a server).
- ``indexing``: documents embedded per second by the store (read, chunk, encode, write)
  next to ``model.encode`` alone on the same texts.
- ``threads``: one-query latency and batch throughput of the model with 1 and 2 torch threads.
- ``startup``: a real stdio server: spawn → ``initialize`` answered → first semantic
  ``memory_search`` answered (model load and embedding 200 waiting events included), and
  ``memory_record`` latency while the model loads.

Prints tables (stderr) and the JSON (stdout); writes ``bench/results/search-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from common import (
    add_database_url_option,
    engine,
    machine,
    print_table,
    server_args,
    store_settings,
    summary,
    use_database_url,
    write_results,
)
from mcp import Client, StdioServerParameters

from mcp_memory_server import MemoryStore
from mcp_memory_server._cpu import limit_blas_threads
from mcp_memory_server.core.search import query_terms
from mcp_memory_server.embeddings import Embedder
from mcp_memory_server.storage.sqlite.fulltext import match_expression

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo"
SECTIONS = ("latency", "indexing", "threads", "startup")


def fts_query(query: str) -> str:
    """The FTS5 query SQLite's search runs for ``query`` (this benchmark reads search_fts directly)."""
    return match_expression(query_terms(query))


def corpus() -> tuple[list[str], list[str]]:
    """LoCoMo turn texts (with speaker) and questions: realistic words for BM25 and the model."""
    turns: list[str] = []
    questions: list[str] = []
    for path in sorted(DATA.glob("*.json")):
        raw = json.loads(path.read_text())
        for key, value in raw.items():
            if re.fullmatch(r"session_\d+", key):
                turns += [f"{t['speaker']}: {t['text']}" for t in value]
        questions += [qa["question"] for qa in raw["qa"]]
    return turns, questions


# -- latency -------------------------------------------------------------------------------------


def build(folder: Path, size: int, turns: list[str], dim: int) -> MemoryStore:
    store = MemoryStore.open(folder, sync="normal", **store_settings(folder))
    if store.events.count() != size:
        started = time.perf_counter()
        for start in range(0, size, 5000):
            store.events.record_many(
                [
                    {"kind": "note", "text": f"{turns[i % len(turns)]} (#{i})"}
                    for i in range(start, min(size, start + 5000))
                ]
            )
        index = store.search.vectors()
        doc_ids = [row[0] for row in store.db.query("SELECT doc_id FROM search_docs ORDER BY doc_id")]
        rng = np.random.default_rng(0)
        for start in range(0, len(doc_ids), 5000):
            batch = doc_ids[start : start + 5000]
            vectors = rng.standard_normal((len(batch), dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            with store.db.write() as conn:
                index.add(conn, "events", [(d, 0) for d in batch], vectors)
        print(f"built {size} events in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    store.search.refresh()
    return store


def bench_latency(work: Path, sizes: list[int], queries: int) -> dict[str, Any]:
    turns, questions = corpus()
    embedder = Embedder()
    embedder.wait()
    results: dict[str, Any] = {}
    for size in sizes:
        store = build(work / f"latency-{size}", size, turns, embedder.dim or 384)
        try:
            store.events.search("warm up", mode="hybrid")
            index = store.search.vectors()
            # The matrix's floor is numpy over its rows; pgvector's (no matrix in memory) its own top-k query.
            snapshot = getattr(index, "_snapshot", None)
            items, matrix = snapshot("events") if snapshot is not None else (None, None)
            modes = ("lexical", "semantic", "hybrid")
            samples: dict[str, list[float]] = {mode: [] for mode in modes}
            floor: dict[str, list[float]] = {"encode": [], "numpy_topk": [], "full_text": [], "raw_hybrid": []}
            # Interleaved, so a busy machine slows every series alike; every query is new (no cache).
            for i in range(queries):
                for slot, mode in enumerate(modes):
                    started = time.perf_counter()
                    store.events.search(questions[4 * i + slot], mode=mode, limit=10)
                    samples[mode].append(time.perf_counter() - started)
                question = questions[4 * i + 3]
                t0 = time.perf_counter()
                query = embedder.encode([question])[0]
                t1 = time.perf_counter()
                if matrix is not None:
                    scores = matrix @ query
                    top = np.argpartition(-scores, 10)[:10]
                    items[top[np.argsort(-scores[top])]]
                else:
                    index.search("events", query, 10)
                t2 = time.perf_counter()
                # The engine's own word index alone (FTS5 BM25, or PostgreSQL's tsvector ranking).
                store.db.fulltext.top(query_terms(question), 50)
                t3 = time.perf_counter()
                floor["encode"].append(t1 - t0)
                floor["numpy_topk"].append(t2 - t1)
                floor["full_text"].append(t3 - t2)
                floor["raw_hybrid"].append(t3 - t0)
            per_mode: dict[str, Any] = {mode: summary(samples[mode]) for mode in modes}
            per_mode["floor"] = {name: summary(samples) for name, samples in floor.items()}
            per_mode["ratio_hybrid_p50_to_raw"] = round(
                per_mode["hybrid"]["p50_ms"] / per_mode["floor"]["raw_hybrid"]["p50_ms"], 2
            )
            results[str(size)] = per_mode
            rows = [[m, per_mode[m]["p50_ms"], per_mode[m]["p99_ms"]] for m in ("lexical", "semantic", "hybrid")]
            rows += [[f"floor: {n}", s["p50_ms"], s["p99_ms"]] for n, s in per_mode["floor"].items()]
            print_table(
                f"search latency on {engine()} at {size} events ({queries} new queries each)",
                ["", "p50 ms", "p99 ms"],
                rows,
            )
        finally:
            store.close()
    return results


# -- indexing and threads ----------------------------------------------------------------------------


def bench_indexing(work: Path, count: int) -> dict[str, Any]:
    turns, _ = corpus()
    texts = turns[:count]
    embedder = Embedder()
    embedder.wait()
    embedder.encode(texts[:64])  # warm
    started = time.perf_counter()
    embedder.encode(texts)
    raw = time.perf_counter() - started
    with MemoryStore.open(work / "indexing", sync="normal", **store_settings(work / "indexing")) as store:
        store.events.record_many([{"kind": "note", "text": t} for t in texts])
        store.search.vectors()
        started = time.perf_counter()
        store.search.refresh()
        ours = time.perf_counter() - started
    result = {"documents": count, "store_docs_per_s": round(count / ours, 1), "raw_encode_per_s": round(count / raw, 1),
              "ratio_to_raw": round(raw / ours, 2)}  # fmt: skip
    print_table("indexing throughput", ["", "docs/s"],
                [["store (read, encode, write)", result["store_docs_per_s"]], ["model.encode", result["raw_encode_per_s"]]])  # fmt: skip
    return result


def bench_threads(queries: int) -> dict[str, Any]:
    import torch

    turns, questions = corpus()
    embedder = Embedder()
    embedder.wait()
    result: dict[str, Any] = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        embedder.encode(questions[:5])
        samples = []
        for question in questions[:queries]:
            started = time.perf_counter()
            embedder.encode([question])
            samples.append(time.perf_counter() - started)
        started = time.perf_counter()
        embedder.encode(turns[:512])
        result[str(threads)] = {
            "query": summary(samples),
            "batch_per_s": round(512 / (time.perf_counter() - started), 1),
        }
    torch.set_num_threads(1)
    print_table("torch threads", ["threads", "query p50 ms", "query p99 ms", "batch texts/s"],
                [[t, r["query"]["p50_ms"], r["query"]["p99_ms"], r["batch_per_s"]] for t, r in result.items()])  # fmt: skip
    return result


# -- start-up --------------------------------------------------------------------------------------


async def first_search(data_dir: Path) -> dict[str, Any]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_memory_server", *server_args(data_dir)])
    started = time.perf_counter()
    async with Client(params, mode="legacy") as client:
        initialized = time.perf_counter() - started
        record_samples: list[float] = []
        done = anyio.Event()
        answer: dict[str, float] = {}

        async def search() -> None:
            result = await client.call_tool(
                "memory_search", {"query": "increase the learning rate", "mode": "semantic"}
            )
            assert not result.is_error and result.structured_content["hits"], result.content
            answer["s"] = time.perf_counter() - started
            done.set()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(search)
            while not done.is_set():
                t0 = time.perf_counter()
                await client.call_tool("memory_record", {"kind": "note", "text": "heartbeat while the model loads"})
                record_samples.append(time.perf_counter() - t0)
                with anyio.move_on_after(0.05):
                    await done.wait()
    return {"initialize_s": round(initialized, 3), "first_semantic_search_s": round(answer["s"], 3),
            "record_while_loading": summary(record_samples)}  # fmt: skip


def bench_startup(work: Path) -> dict[str, Any]:
    data_dir = work / "startup"
    turns, _ = corpus()
    with MemoryStore.open(data_dir, **store_settings(data_dir)) as store:
        store.events.record_many([{"kind": "note", "text": t} for t in turns[:200]])
    result = anyio.run(first_search, data_dir)
    result["waiting_events_embedded"] = 200
    print_table("start-up over stdio", ["", "value"], [
        ["initialize answered (s)", result["initialize_s"]],
        ["first semantic search answered (s)", result["first_semantic_search_s"]],
        ["memory_record while loading p50 ms", result["record_while_loading"]["p50_ms"]],
        ["memory_record while loading p99 ms", result["record_while_loading"]["p99_ms"]],
    ])  # fmt: skip
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"sections: {', '.join(SECTIONS)}")
    parser.add_argument("--sizes", default="10000", help="event counts for latency, e.g. 10000,100000")
    parser.add_argument("--queries", type=int, default=200, help="queries per mode")
    parser.add_argument("--index-docs", type=int, default=1000, help="documents for the indexing section")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bench-search",
                        help="stores are kept here and reused by later runs")  # fmt: skip
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="numpy BLAS threads, as a server sets them (embed_threads, default 1); 0: numpy's default")  # fmt: skip
    add_database_url_option(parser)
    args = parser.parse_args()
    use_database_url(args.database_url)
    args.work.mkdir(parents=True, exist_ok=True)
    sections = args.only.split(",")
    if args.blas_threads > 0:
        limit_blas_threads(args.blas_threads)
    results: dict[str, Any] = {"machine": {**machine(), "blas_threads": args.blas_threads or "numpy default"}}
    if "latency" in sections:
        results["latency"] = bench_latency(args.work, [int(s) for s in args.sizes.split(",")], args.queries)
    if "indexing" in sections:
        results["indexing"] = bench_indexing(Path(tempfile.mkdtemp(dir=args.work)), args.index_docs)
    if "threads" in sections:
        results["threads"] = bench_threads(min(args.queries, 100))
    if "startup" in sections:
        results["startup"] = bench_startup(Path(tempfile.mkdtemp(dir=args.work)))
    results["machine"]["load_average_end"] = machine()["load_average"]
    path = write_results("search", results)
    print(json.dumps(results, indent=2))
    print(f"\nwritten to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
