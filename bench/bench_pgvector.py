"""pgvector's HNSW against the exact ranking of the same stored vectors (PostgreSQL with pgvector).

    python bench/bench_pgvector.py --database-url postgresql://user@host:5432/db [--questions 300]

All LoCoMo turns (5,882, above the 5,000 chunks under which a source is ranked exactly) go
into one store as events and are embedded; then each question's top-10 is taken through the
HNSW index and again exactly (the same rows ordered by distance). Prints recall@10 of HNSW
relative to exact, how many top-10 lists are identical, and the p50 of each; writes
``bench/results/pgvector-<time>.json``. A server without pgvector is refused.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_embed import corpus
from common import add_database_url_option, machine, open_bench_store, print_table, write_results

from mcp_memory_server.storage.postgres import pgvector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=300, help="LoCoMo questions to rank (default 300)")
    add_database_url_option(parser)
    args = parser.parse_args()
    if not args.database_url:
        parser.error("give --database-url (or MCP_MEMORY_DATABASE_URL) of a PostgreSQL database with pgvector")
    os.environ["MCP_MEMORY_DATABASE_URL"] = args.database_url
    turns, questions = corpus()
    folder = Path(tempfile.gettempdir()) / "bench-pgvector"
    with open_bench_store(folder, fresh=True) as store:
        store.events.record_many([{"kind": "note", "text": t} for t in turns])
        started = time.perf_counter()
        store.search.refresh()
        embed_s = time.perf_counter() - started
        index = store.search.vectors()
        if not isinstance(index, pgvector.PgvectorIndex):
            raise SystemExit(f"this database has no pgvector (the store uses {type(index).__name__})")
        vectors = store.search.embedder.encode(questions[: args.questions])

        def rank() -> tuple[list[list[int]], list[float]]:
            lists, latencies = [], []
            for vector in vectors:
                t0 = time.perf_counter()
                hits = index.search("events", vector, 10)
                latencies.append(time.perf_counter() - t0)
                lists.append([hit.item for hit in hits])
            return lists, latencies

        approximate, hnsw_s = rank()
        exact_rows = pgvector.EXACT_ROWS
        pgvector.EXACT_ROWS = 10**9  # every source "small": the same query ranked by a scan
        try:
            exact, exact_s = rank()
        finally:
            pgvector.EXACT_ROWS = exact_rows
    recall = float(np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approximate, exact, strict=True) if e]))
    identical = sum(a == e for a, e in zip(approximate, exact, strict=True))
    results: dict[str, Any] = {
        "machine": machine(),
        "turns": len(turns),
        "questions": len(vectors),
        "embed_s": round(embed_s, 1),
        "hnsw_recall_at_10_vs_exact": round(recall, 4),
        "identical_top10": identical,
        "p50_ms": {
            "hnsw": round(1000 * statistics.median(hnsw_s), 2),
            "exact": round(1000 * statistics.median(exact_s), 2),
        },
    }
    print_table(
        f"pgvector on {len(turns)} LoCoMo turns, {len(vectors)} questions, top-10",
        ["", "p50 ms", "recall@10 vs exact", "identical top-10"],
        [["HNSW", results["p50_ms"]["hnsw"], round(recall, 4), f"{identical}/{len(vectors)}"],
         ["exact (floor of quality)", results["p50_ms"]["exact"], 1.0, "-"]],
    )  # fmt: skip
    print(f"written to {write_results('pgvector', results)}")


if __name__ == "__main__":
    main()
