"""What each retrieval idea gains on LoCoMo turns (recall@5/@10), measured on raw FTS5 + numpy.

    python bench/bench_locomo_ablation.py                     # 3 conversations
    python bench/bench_locomo_ablation.py --conversations 10  # the README table

``bench_locomo.py`` measures the shipped search; this script rebuilds each variant from
raw parts (an in-memory FTS5 table, MiniLM vectors, numpy) so every idea can be switched
on alone: speaker/date prefixes, stopword removal, weighted and small-k fusion, and the
preceding turn as low-weight BM25 context. Vectors are cached in ``--work``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sqlite3
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from bench_locomo import DATA, short_date
from common import machine, print_table, write_results

from mcp_memory_server.core.search import query_terms
from mcp_memory_server.embeddings import Embedder
from mcp_memory_server.storage.sqlite.fulltext import match_expression

Turn = dict[str, Any]


def fts_query(query: str) -> str:
    """The FTS5 query SQLite's search runs for ``query`` (this benchmark reads search_fts directly)."""
    return match_expression(query_terms(query))


def load(path: Path) -> tuple[list[Turn], list[dict[str, Any]]]:
    raw = json.loads(path.read_text())
    turns: list[Turn] = []
    session = 1
    while f"session_{session}_date_time" in raw:
        date = short_date(raw[f"session_{session}_date_time"])
        turns += [dict(t, date=date) for t in raw.get(f"session_{session}") or []]
        session += 1
    valid = {t["dia_id"] for t in turns}
    questions = []
    for qa in raw["qa"]:
        evidence = {part for entry in qa.get("evidence", []) for part in re.split(r"[;,\s]+", str(entry))} & valid
        if evidence:
            questions.append({"question": qa["question"], "evidence": evidence, "category": qa["category"]})
    return turns, questions


def all_words(query: str) -> str:
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(re.findall(r"[^\W_]+", query.lower())))


def bm25(texts: list[str], contexts: list[str], queries: list[str], to_match: Callable[[str], str]) -> list[list[int]]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE f USING fts5(body, ctx, tokenize='porter unicode61 remove_diacritics 2')")
    rows = [(i, text, context) for i, (text, context) in enumerate(zip(texts, contexts, strict=True))]
    conn.executemany("INSERT INTO f (rowid, body, ctx) VALUES (?, ?, ?)", rows)
    sql = "SELECT rowid FROM f WHERE f MATCH ? ORDER BY bm25(f, 1.0, 0.5) LIMIT 100"
    return [[r[0] for r in conn.execute(sql, (to_match(q),))] if to_match(q) else [] for q in queries]


def rrf(lexical: list[list[int]], semantic: list[list[int]], weights: tuple[float, float], k: int) -> list[list[int]]:
    fused = []
    for lex, sem in zip(lexical, semantic, strict=True):
        scores: dict[int, float] = {}
        for weight, ranking in zip(weights, (lex, sem), strict=True):
            for rank, doc in enumerate(ranking, 1):
                scores[doc] = scores.get(doc, 0.0) + weight / (k + rank)
        fused.append(sorted(scores, key=lambda d: -scores[d])[:100])
    return fused


class Encoder:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.model = Embedder()

    def __call__(self, texts: list[str]) -> np.ndarray:
        key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:20]
        path = self.work / f"vectors-{key}.npy"
        if not path.exists():
            np.save(path, self.model.encode(texts))
        return np.load(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bench-locomo-ablation")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    encode = Encoder(args.work)
    convs = [load(p) for p in sorted(DATA.glob("*.json"))[: args.conversations]]
    formats: dict[str, Callable[[Turn], str]] = {
        "plain": lambda t: t["text"],
        "speaker": lambda t: f"{t['speaker']}: {t['text']}",
        "date+speaker": lambda t: f"[{t['date']}] {t['speaker']}: {t['text']}",
    }
    no_context = [[""] * len(turns) for turns, _ in convs]
    previous = [[""] + [t["text"][:500] for t in turns[:-1]] for turns, _ in convs]
    questions = [[q["question"] for q in qs] for _, qs in convs]
    q_vectors = [encode(qs) for qs in questions]

    def semantic(fmt: str) -> list[list[list[int]]]:
        out = []
        for (turns, _), qv in zip(convs, q_vectors, strict=True):
            scores = qv @ encode([formats[fmt](t) for t in turns]).T
            out.append([list(np.argsort(-row)[:100]) for row in scores])
        return out

    def lexical(fmt: str, to_match: Callable[[str], str], contexts: list[list[str]]) -> list[list[list[int]]]:
        return [
            bm25([formats[fmt](t) for t in turns], ctx, qs, to_match)
            for (turns, _), ctx, qs in zip(convs, contexts, questions, strict=True)
        ]

    lex_base = lexical("date+speaker", all_words, no_context)
    lex_stop = lexical("date+speaker", fts_query, no_context)
    lex_ctx = lexical("date+speaker", fts_query, previous)
    sem = semantic("date+speaker")
    variants = {
        "cosine, plain turn text": semantic("plain"),
        "cosine, 'Speaker: text'": semantic("speaker"),
        "cosine, '[date] Speaker: text'": sem,
        "BM25, all query words": lex_base,
        "BM25, stopwords and single letters dropped": lex_stop,
        "BM25, + preceding turn as context (weight 0.5)": lex_ctx,
        "RRF 1:1 k=60 (naive fusion, no context)": [
            rrf(lx, s, (1, 1), 60) for lx, s in zip(lex_stop, sem, strict=True)
        ],
        "RRF 2:1 k=10 (no context)": [rrf(lx, s, (2, 1), 10) for lx, s in zip(lex_stop, sem, strict=True)],
        "RRF 2:1 k=10 + context (shipped)": [rrf(lx, s, (2, 1), 10) for lx, s in zip(lex_ctx, sem, strict=True)],
    }
    results: dict[str, Any] = {"machine": machine(), "conversations": len(convs), "variants": {}}
    rows = []
    for name, ranked in variants.items():
        recall: dict[str, list[float]] = {"5": [], "10": []}
        for (turns, qs), per_question in zip(convs, ranked, strict=True):
            for qa, docs in zip(qs, per_question, strict=True):
                for k in (5, 10):
                    got = {turns[d]["dia_id"] for d in docs[:k]} & qa["evidence"]
                    recall[str(k)].append(min(1.0, len(got) / len(qa["evidence"])))
        r5, r10 = (round(100 * sum(v) / len(v), 1) for v in recall.values())
        results["variants"][name] = {"recall@5": r5, "recall@10": r10}
        rows.append([name, r5, r10])
    print_table(f"LoCoMo turns, {len(convs)} conversations: recall %", ["variant", "R@5", "R@10"], rows)
    path = write_results("locomo-ablation", results)
    print(json.dumps(results, indent=2))
    print(f"\nwritten to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
