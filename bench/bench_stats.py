"""What ``MemoryStore.stats()`` costs as a store grows, and what event inserts cost beside it.

stats() reads counters the engine keeps inside each writing transaction; this prints its
median time at each blob count (it should not grow), and the batched event insert rate
(the counters' triggers run on that hot path). Numbers only: nothing here is asserted.

    python bench/bench_stats.py [--blobs 1000,4000] [--events 20000] [--database-url postgresql://…]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import add_database_url_option, drop_schemas, engine, print_table, store_settings, use_database_url


def stats_ms(store: Any, calls: int = 50) -> float:
    store.stats()  # warm: the first call may still size blobs a legacy store never recorded
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        store.stats()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blobs", default="1000,4000", help="comma-separated blob counts")
    parser.add_argument("--events", type=int, default=20_000, help="events inserted in batches of 1,000")
    add_database_url_option(parser)
    args = parser.parse_args()
    use_database_url(args.database_url)
    from mcp_memory_server import MemoryStore

    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            for blobs in [int(n) for n in args.blobs.split(",")]:
                folder = work / f"stats-{blobs}"
                with MemoryStore.open(folder, **store_settings(folder)) as store:
                    with store.db.write():  # one transaction: filling is not what is measured
                        for i in range(blobs):
                            store.artifacts.save_text(f"blob number {i} " + "x" * (i % 500), kind="note")
                    rows.append([f"stats() at {blobs:,} blobs", f"{stats_ms(store):.2f} ms"])
            folder = work / "events"
            with MemoryStore.open(folder, **store_settings(folder)) as store:
                items = [{"kind": "observation", "data": {"step": i, "loss": 1 / (i + 1)}, "topic": "training"}
                         for i in range(args.events)]  # fmt: skip
                store.events.record_many(items[:1000])  # warm-up
                started = time.perf_counter()
                for start in range(0, len(items), 1000):
                    store.events.record_many(items[start : start + 1000])
                rate = len(items) / (time.perf_counter() - started)
                rows.append([f"record_many, {args.events:,} events in batches of 1,000", f"{rate:,.0f} events/s"])
    finally:
        drop_schemas()
    print_table(f"stats cost and event inserts on {engine()}", ["case", "result"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
