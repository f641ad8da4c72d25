"""Agent-memory retrieval: recall@5 per query style for lexical, semantic and hybrid, on dev and held-out.

    python bench/bench_agent_memory.py              # every split, the shipped modes (about a minute)
    python bench/bench_agent_memory.py --ablation   # also every fusion variant of bench/fusion_lab.py

Data (``bench/data/``): 250 memories of one fictional team over eight weeks, in several
styles (decisions, incidents, results, configs, notes, chat turns, run logs, key=value
lines, markdown runbooks; some restate real public issue threads), and two query files
of 120 queries each, 30 per style:

- ``paraphrase`` — the memory's meaning in other words ("what step size did we pick");
- ``keyword`` — a few words or identifiers taken from the memory ("PyYAML pin CI");
- ``question`` — a natural question that may reuse some of its words;
- ``abstract`` — a vague request that several memories answer ("what went wrong with
  the last deploy that failed?").

``agent_queries_dev.json`` is where fusion settings were chosen; ``agent_queries_heldout.json``
was written before any tuning, asks about other memories, and was never used to choose
anything.

Two more held-out corpora were written by other hands: separate helper sessions that saw
neither the product nor these files, after every fusion setting was chosen (stop 21), each
200 memories of another team and 120 queries, 30 per style: ``delivery`` (a food-delivery
app: Go, Kafka, React Native, an ETA model) and ``recsys`` (a recommender: Spark, Airflow,
A/B tests, a two-tower model). They are recorded as ``memory_record`` calls to one server
record them: one run, no topic, so each memory's preceding one is its search context.

Two more, by two more helper sessions on 3 Dec (stop 23), measured once with the shipped
fusion and never used to choose anything: ``water`` (a municipal-water IoT platform) and
``pretrain`` (an autonomous research agent's small-LM pretraining runs), recorded the same way.

Protocol: one store per corpus, one event per memory (kind = the memory's kind); recall@k =
share of the query's relevant memories among the top k, averaged per style. The stores
(and so their vectors) are kept in ``--work`` (default ``bench/results/agent-memory-store``)
so reruns skip the embedding; ``--fresh`` starts over. Prints tables (stderr) and the
JSON (stdout), and writes ``bench/results/agent-memory-<time>.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from common import RESULTS, add_database_url_option, machine, open_bench_store, print_table, write_results

from mcp_memory_server import MemoryStore

DATA = Path(__file__).resolve().parent / "data"
STYLES = ("paraphrase", "keyword", "question", "abstract")
MODES = ("lexical", "semantic", "hybrid")
SPLITS = ("dev", "heldout", "delivery", "recsys", "water", "pretrain")
# Each split's memories: (corpus file, a topic per memory?).
CORPUS = {
    "dev": ("agent_memories.json", True),
    "heldout": ("agent_memories.json", True),
    "delivery": ("agent_memories_delivery.json", False),
    "recsys": ("agent_memories_recsys.json", False),
    "water": ("agent_memories_water.json", False),
    "pretrain": ("agent_memories_pretrain.json", False),
}
K = 5


def load_queries(split: str) -> list[dict[str, Any]]:
    queries: list[dict[str, Any]] = json.loads((DATA / f"agent_queries_{split}.json").read_text())["queries"]
    return queries


def open_store(folder: Path, threads: int, corpus: str = "agent_memories.json",
               topics: bool = True) -> tuple[MemoryStore, dict[str, str]]:  # fmt: skip
    """The store holding every memory of ``corpus`` (reused when ``folder`` has them all), and event id → memory id."""
    memories = json.loads((DATA / corpus).read_text())["memories"]
    store = open_bench_store(folder, sync="normal", embed_threads=threads)
    if store.events.count() != len(memories):
        store.close()
        store = open_bench_store(folder, fresh=True, sync="normal", embed_threads=threads)
        # topics: a topic per memory, so the context column (the preceding event in the same
        # run and topic) stays empty, as for independent notes. Without: as memory_record
        # calls through one server record them.
        store.events.record_many(
            [{"kind": m["kind"], "text": m["text"], **({"topic": m["id"]} if topics else {})} for m in memories]
        )
    ids = [row[0] for row in store.db.query("SELECT event_id FROM events ORDER BY seq")]
    store.search.refresh()
    return store, {event_id: memory["id"] for event_id, memory in zip(ids, memories, strict=True)}


def store_folder(work: Path, split: str) -> Path:
    """dev and heldout share the first corpus's store; every other corpus has its own."""
    return work if CORPUS[split][0] == CORPUS["dev"][0] else work.with_name(f"{work.name}-{split}")


def score(per_query: list[tuple[str, float]]) -> dict[str, float]:
    by_style: dict[str, list[float]] = defaultdict(list)
    for style, value in per_query:
        by_style[style].append(value)
        by_style["all"].append(value)
    return {style: round(100 * sum(v) / len(v), 1) for style, v in by_style.items()}


def recall(ranked: list[str], relevant: list[str], k: int = K) -> float:
    return min(1.0, len(set(ranked[:k]) & set(relevant)) / len(relevant))


def evaluate_modes(store: MemoryStore, memory_of: dict[str, str], queries: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in MODES:
        per_query = []
        for q in queries:
            page = store.events.search(q["query"], mode=mode, limit=10)
            ranked = [memory_of[hit.event.event_id] for hit in page.hits]
            per_query.append((q["style"], recall(ranked, q["relevant"])))
        out[mode] = score(per_query)
    return out


def evaluate_variants(store: MemoryStore, memory_of: dict[str, str], queries: list[dict[str, Any]]) -> dict[str, Any]:
    import fusion_lab

    item_memory = {doc: memory_of[item] for doc, item in store.db.query("SELECT doc_id, item_id FROM search_docs")}
    key = hashlib.sha256("\n".join(q["query"] for q in queries).encode()).hexdigest()[:16]
    pools = fusion_lab.pools(RESULTS / f"agent-memory-pools-{key}.pkl",
                             lambda: [fusion_lab.candidates(store, q["query"]) for q in queries])  # fmt: skip
    out: dict[str, Any] = {}
    for name, variant in fusion_lab.VARIANTS.items():
        per_query = []
        for q, pool in zip(queries, pools, strict=True):
            ranked = [item_memory[doc] for doc in variant(pool)]
            per_query.append((q["style"], recall(ranked, q["relevant"])))
        out[name] = score(per_query)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--splits", default=",".join(SPLITS), help=f"comma-separated, of {', '.join(SPLITS)} (default all)"
    )
    parser.add_argument("--ablation", action="store_true", help="also rank with every fusion variant")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for embedding")
    parser.add_argument("--work", type=Path, default=RESULTS / "agent-memory-store")
    parser.add_argument("--fresh", action="store_true", help="delete the cached store first")
    add_database_url_option(parser)
    args = parser.parse_args()
    if args.database_url:  # open_bench_store puts each corpus in a schema of its own on that database
        os.environ["MCP_MEMORY_DATABASE_URL"] = args.database_url
    if args.fresh:
        for split in SPLITS:
            shutil.rmtree(store_folder(args.work, split), ignore_errors=True)
    args.work.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict[str, Any] = {"machine": machine(), "k": K}
    stores: dict[Path, tuple[MemoryStore, dict[str, str]]] = {}  # dev and heldout share one
    try:
        for split in args.splits.split(","):
            folder = store_folder(args.work, split)
            if folder not in stores:
                stores[folder] = open_store(folder, args.threads, *CORPUS[split])
            store, memory_of = stores[folder]
            queries = load_queries(split)
            results[split] = {"memories": len(memory_of), "queries": len(queries),
                              "modes": evaluate_modes(store, memory_of, queries)}  # fmt: skip
            rows = [[mode, *(r.get(s) for s in (*STYLES, "all"))] for mode, r in results[split]["modes"].items()]
            print_table(f"agent memory, {split} ({len(queries)} queries): recall@{K} %",
                        ["mode", *STYLES, "all"], rows)  # fmt: skip
            if args.ablation:
                variants = evaluate_variants(store, memory_of, queries)
                results[split]["variants"] = variants
                rows = [[name, *(r.get(s) for s in (*STYLES, "all"))] for name, r in variants.items()]
                print_table(f"fusion variants, {split}: recall@{K} %", ["variant", *STYLES, "all"], rows)
    finally:
        for store, _ in stores.values():
            store.close()
    results["seconds"] = round(time.perf_counter() - started, 1)
    path = write_results("agent-memory", results)
    print(json.dumps(results, indent=2))
    print(f"\nwritten to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
