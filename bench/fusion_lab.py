"""Fusion variants measured on the same candidates: what each idea for hybrid ranking gains.

For one query, :func:`candidates` asks a real store for exactly what the shipped hybrid
search starts from (the BM25 list, the cosine list, the cosine of every lexical hit, the
share of query terms each hit matches); each variant in :data:`VARIANTS` then ranks those
candidates its own way. ``bench_agent_memory.py --ablation`` and
``bench_locomo.py --variants`` print the table (README, Search: the fusion ablation).
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mcp_memory_server import MemoryStore
from mcp_memory_server.core import search as S


@dataclass
class Candidates:
    lexical: list[tuple[int, float]]  # (doc id, BM25 score, higher is better), best first
    semantic: list[tuple[int, float]]  # (doc id, cosine), best first
    similarity: dict[int, float]  # cosine of every candidate
    coverage: dict[int, float]  # share of the query's terms each lexical hit matches (IDF-weighted)
    plain_coverage: dict[int, float]  # the same, unweighted
    strict: list[int]  # BM25 over the query's terms AND-ed (doc ids, best first)
    items: dict[int, str]


def candidates(store: MemoryStore, query: str, source: str = "events", depth: int = 50) -> Candidates:
    index = store.search
    index.sync_lexical()
    index.refresh()
    vector = index._query_vector(query)
    lexical = index._lexical(source, query, depth, None)
    semantic = index._semantic(source, vector, depth, None)
    similarity = {doc: score for doc, _, score in semantic}
    missing = [doc for doc, _, _ in lexical if doc not in similarity]
    assert index._vectors is not None
    similarity.update(index._vectors.scores(source, vector, missing))
    items = {doc: item for doc, item, _ in (*lexical, *semantic)}
    terms = S.query_terms(query)
    weights = S.term_weights(store.db, terms)
    docs = list(items)
    texts = S.document_terms(store.db, docs)
    coverage = {d: S.coverage(terms, weights, texts.get(d, ({}, {}))) for d in docs}
    plain = {d: S.coverage(terms, dict.fromkeys(terms, 1.0), texts.get(d, ({}, {}))) for d in docs}
    strict: list[int] = []
    if len(terms) > 1:
        rows = store.db.query(
            "SELECT rowid FROM search_fts WHERE search_fts MATCH ? ORDER BY bm25(search_fts, 1.0, 0.5, 0.5) LIMIT ?",
            (" AND ".join(f'"{t}"' for t in terms), depth),
        )
        strict = [r[0] for r in rows]
        similarity.update(index._vectors.scores(source, vector, [d for d in strict if d not in similarity]))
    return Candidates(
        lexical=[(d, s) for d, _, s in lexical],
        semantic=[(d, s) for d, _, s in semantic],
        similarity=similarity,
        coverage=coverage,
        plain_coverage=plain,
        strict=strict,
        items=items,
    )


Variant = Callable[[Candidates], list[int]]


def _rank(scores: dict[int, float]) -> list[int]:
    return sorted(scores, key=lambda d: -scores[d])


def rrf(lex_w: float, sem_w: float, k: float, cover: str | None = None, power: float = 1.0) -> Variant:
    """Weighted RRF; ``cover``: scale each lexical hit's weight by its coverage ("doc"), or all by the best ("query")."""

    def run(c: Candidates) -> list[int]:
        scores: dict[int, float] = {}
        best = max((c.coverage.get(d, 0.0) for d, _ in c.lexical), default=0.0)
        for rank, (doc, _) in enumerate(c.lexical, 1):
            w = lex_w
            if cover == "doc":
                w *= c.coverage.get(doc, 0.0) ** power
            elif cover == "query":
                w *= best**power
            scores[doc] = scores.get(doc, 0.0) + w / (k + rank)
        for rank, (doc, _) in enumerate(c.semantic, 1):
            scores[doc] = scores.get(doc, 0.0) + sem_w / (k + rank)
        return _rank(scores)

    return run


def convex(alpha: float, lex: str = "max", sim_floor: float = 0.0) -> Variant:
    """alpha * normalised BM25 + (1 - alpha) * cosine over the union of both lists.

    ``lex``: "max" (BM25 / the query's best BM25), "cover" (the hit's coverage),
    "max*cover" (both multiplied), "sat" (BM25 / (BM25 + median BM25)).
    """

    def run(c: Candidates) -> list[int]:
        top = max((s for _, s in c.lexical), default=0.0) or 1.0
        mid = sorted(s for _, s in c.lexical)[len(c.lexical) // 2] if c.lexical else 1.0
        lexical = dict(c.lexical)
        scores = {}
        for doc in {*lexical, *(d for d, _ in c.semantic)}:
            bm = lexical.get(doc, 0.0)
            if lex == "max":
                ln = bm / top
            elif lex == "cover":
                ln = c.coverage.get(doc, 0.0) if doc in lexical else 0.0
            elif lex == "plaincover":
                ln = c.plain_coverage.get(doc, 0.0) if doc in lexical else 0.0
            elif lex == "max*cover":
                ln = bm / top * c.coverage.get(doc, 0.0)
            elif lex == "sat":
                ln = bm / (bm + mid) if bm else 0.0
            else:
                raise ValueError(lex)
            scores[doc] = alpha * ln + (1 - alpha) * (c.similarity.get(doc, 0.0) - sim_floor)
        return _rank(scores)

    return run


def strict_then(base: Variant, weight: float = 2.0, k: float = 10) -> Variant:
    """RRF of ``base``'s ranking with the AND-ed BM25 list (when the query has one)."""

    def run(c: Candidates) -> list[int]:
        ranked = base(c)
        scores: dict[int, float] = {}
        for rank, doc in enumerate(ranked, 1):
            scores[doc] = 1.0 / (k + rank)
        for rank, doc in enumerate(c.strict, 1):
            scores[doc] = scores.get(doc, 0.0) + weight / (k + rank)
        return _rank(scores)

    return run


def rerank_cosine(base: Variant, top: int = 20, boost: float = 0.3) -> Variant:
    """Re-order ``base``'s first ``top`` by cosine + boost * coverage."""

    def run(c: Candidates) -> list[int]:
        ranked = base(c)
        head = ranked[:top]
        head.sort(key=lambda d: -(c.similarity.get(d, 0.0) + boost * c.coverage.get(d, 0.0)))
        return head + ranked[top:]

    return run


def boosted(lam: float, power: float, mu: float = 0.0, k: float = 10, gate: float = 0.0) -> Variant:
    """cosine + lam * coverage^power (+ mu / (k + BM25 rank)): meaning first, words as a confidence-weighted boost.

    ``gate``: coverage below it earns no boost.
    """

    def run(c: Candidates) -> list[int]:
        lexical_rank = {doc: rank for rank, (doc, _) in enumerate(c.lexical, 1)}
        scores = {}
        for doc in {*lexical_rank, *(d for d, _ in c.semantic)}:
            cov = c.coverage.get(doc, 0.0) if doc in lexical_rank else 0.0
            cov = cov if cov >= gate else 0.0
            score = c.similarity.get(doc, 0.0) + lam * cov**power
            if doc in lexical_rank:
                score += mu * cov**power / (k + lexical_rank[doc])
            scores[doc] = score
        return _rank(scores)

    return run


def pools(path: Path, compute: Callable[[], list[Candidates]]) -> list[Candidates]:
    """Candidates cached in ``path`` (delete it after changing how they are computed)."""
    if path.exists():
        cached: list[Candidates] = pickle.loads(path.read_bytes())
        return cached
    found = compute()
    path.write_bytes(pickle.dumps(found))
    return found


def shipped(c: Candidates) -> list[int]:
    """What ``SearchIndex`` ranks for these candidates."""
    hits = S.fuse(
        [(d, str(d), s) for d, s in c.lexical],
        [(d, str(d), s) for d, s in c.semantic],
        c.similarity,
        c.coverage,
    )
    return [int(h.item_id) for h in hits]


def semantic_only(c: Candidates) -> list[int]:
    return [d for d, _ in c.semantic]


def lexical_only(c: Candidates) -> list[int]:
    return [d for d, _ in c.lexical]


VARIANTS: dict[str, Variant] = {
    "lexical (BM25, OR of terms)": lexical_only,
    "semantic (cosine)": semantic_only,
    "RRF 2:1 k=10 (before)": rrf(2, 1, 10),
    "RRF 1:1 k=60": rrf(1, 1, 60),
    "RRF 1:1 k=10": rrf(1, 1, 10),
    "RRF 2:1 k=60": rrf(2, 1, 60),
    "RRF 2:1 k=10, lexical weight x hit coverage": rrf(2, 1, 10, "doc"),
    "RRF 2:1 k=10, lexical weight x hit coverage^2": rrf(2, 1, 10, "doc", 2),
    "RRF 2:1 k=10, lexical weight x best coverage^2": rrf(2, 1, 10, "query", 2),
    "RRF 2:1 k=30, lexical weight x hit coverage^2": rrf(2, 1, 30, "doc", 2),
    "convex 0.5 BM25/max + 0.5 cos": convex(0.5, "max"),
    "convex 0.3 BM25/max + 0.7 cos": convex(0.3, "max"),
    "convex 0.5 coverage + 0.5 cos": convex(0.5, "cover"),
    "convex 0.3 coverage + 0.7 cos": convex(0.3, "cover"),
    "convex 0.4 coverage + 0.6 cos": convex(0.4, "cover"),
    "convex 0.4 unweighted coverage + 0.6 cos": convex(0.4, "plaincover"),
    "convex 0.5 BM25/max x coverage + 0.5 cos": convex(0.5, "max*cover"),
    "convex 0.5 BM25/(BM25+median) + 0.5 cos": convex(0.5, "sat"),
    "RRF 2:1 k=10 + AND-ed BM25 list": strict_then(rrf(2, 1, 10)),
    "RRF 2:1 k=10, then top 20 re-ranked by cos + 0.3 coverage": rerank_cosine(rrf(2, 1, 10)),
    "cos + 0.3 coverage^2": boosted(0.3, 2),
    "cos + 0.2 coverage^2": boosted(0.2, 2),
    "cos + 0.4 coverage^2": boosted(0.4, 2),
    "cos + 0.3 coverage^3": boosted(0.3, 3),
    "cos + 0.5 coverage^3": boosted(0.5, 3),
    "cos + 0.3 coverage^2 + 2 coverage^2/(10 + BM25 rank)": boosted(0.3, 2, 2.0),
    "cos + 0.2 coverage^2 + 4 coverage^2/(10 + BM25 rank)": boosted(0.2, 2, 4.0),
    "cos + 0.3 coverage^3 + 2 coverage^3/(10 + BM25 rank)": boosted(0.3, 3, 2.0),
    "RRF 2:1 k=10, lexical weight x hit coverage^3": rrf(2, 1, 10, "doc", 3),
    "shipped (= gated 0.55, ramp 0.2-0.45, floor 0.2, semantic-confidence 0.22-0.4 keep 0.5)": shipped,
}


def recall(ranked: list[str], relevant: set[str], k: int) -> float:
    return min(1.0, len(set(ranked[:k]) & relevant) / len(relevant)) if relevant else math.nan


def mixed(alpha: float, lex: str = "cover", by_best: float = 0.0, eps: float = 0.0, k: float = 10) -> Variant:
    """(1 - a) * cosine + a * lexical evidence, a = alpha, or alpha * best coverage^by_best when by_best > 0.

    ``lex``: "cover" (the hit's coverage) or "max*cover" (coverage * BM25 / the best BM25);
    ``eps`` adds eps / (k + BM25 rank) so BM25's order breaks near-ties.
    """

    def run(c: Candidates) -> list[int]:
        top = max((s for _, s in c.lexical), default=0.0) or 1.0
        best = max((c.coverage.get(d, 0.0) for d, _ in c.lexical), default=0.0)
        a = alpha * best**by_best if by_best else alpha
        lexical = dict(c.lexical)
        rank = {d: r for r, (d, _) in enumerate(c.lexical, 1)}
        scores = {}
        for doc in {*lexical, *(d for d, _ in c.semantic)}:
            cov = c.coverage.get(doc, 0.0) if doc in lexical else 0.0
            ln = cov * lexical[doc] / top if lex == "max*cover" and doc in lexical else cov
            score = a * ln + (1 - a) * c.similarity.get(doc, 0.0)
            if doc in rank:
                score += eps / (k + rank[doc])
            scores[doc] = score
        return _rank(scores)

    return run


VARIANTS.update(
    {
        "convex 0.35 coverage + 0.65 cos": mixed(0.35),
        "convex 0.45 coverage + 0.55 cos": mixed(0.45),
        "convex 0.4 coverage + 0.6 cos + 0.2/(10 + BM25 rank)": mixed(0.4, eps=0.2),
        "convex 0.4 coverage + 0.6 cos + 0.5/(10 + BM25 rank)": mixed(0.4, eps=0.5),
        "convex 0.45 BM25/max x coverage + 0.55 cos": mixed(0.45, "max*cover"),
        "convex a coverage + (1-a) cos, a = 0.6 x best coverage": mixed(0.6, by_best=1),
        "convex a coverage + (1-a) cos, a = 0.7 x best coverage^2": mixed(0.7, by_best=2),
        "convex a coverage + (1-a) cos, a = 0.6 x best coverage^2": mixed(0.6, by_best=2),
        "convex a BM25/max x coverage + (1-a) cos, a = 0.7 x best coverage": mixed(0.7, "max*cover", by_best=1),
    }
)


def gated(alpha: float, lo: float, hi: float, lex: str = "max*cover") -> Variant:
    """(1 - a) * cosine + a * coverage * BM25 / best BM25, with a = alpha * ramp(best coverage; lo → 0, hi → 1).

    A query none of whose lexical hits matches much of it (a paraphrase) is ranked by meaning.
    """

    def run(c: Candidates) -> list[int]:
        top = max((s for _, s in c.lexical), default=0.0) or 1.0
        best = max((c.coverage.get(d, 0.0) for d, _ in c.lexical), default=0.0)
        a = alpha * min(1.0, max(0.0, (best - lo) / (hi - lo)))
        lexical = dict(c.lexical)
        scores = {}
        for doc in {*lexical, *(d for d, _ in c.semantic)}:
            cov = c.coverage.get(doc, 0.0) if doc in lexical else 0.0
            ln = cov * lexical[doc] / top if doc in lexical else 0.0
            if lex == "cover":
                ln = cov
            scores[doc] = a * ln + (1 - a) * c.similarity.get(doc, 0.0)
        return _rank(scores)

    return run


VARIANTS.update(
    {
        "gated 0.45, ramp 0.25-0.5": gated(0.45, 0.25, 0.5),
        "gated 0.45, ramp 0.3-0.6": gated(0.45, 0.3, 0.6),
        "gated 0.45, ramp 0.35-0.65": gated(0.45, 0.35, 0.65),
        "gated 0.5, ramp 0.3-0.6": gated(0.5, 0.3, 0.6),
        "gated 0.5, ramp 0.3-0.5": gated(0.5, 0.3, 0.5),
        "gated 0.55, ramp 0.3-0.5": gated(0.55, 0.3, 0.5),
        "gated 0.5 (coverage only), ramp 0.3-0.5": gated(0.5, 0.3, 0.5, "cover"),
    }
)


def gated_rrf(lo: float, hi: float, power: float, lex_w: float = 2.0, k: float = 10) -> Variant:
    """RRF lex_w:1, k; each BM25 hit weighs lex_w * ramp(best coverage; lo → 0, hi → 1) * its coverage^power."""

    def run(c: Candidates) -> list[int]:
        best = max((c.coverage.get(d, 0.0) for d, _ in c.lexical), default=0.0)
        ramp = min(1.0, max(0.0, (best - lo) / (hi - lo)))
        scores: dict[int, float] = {}
        for rank, (doc, _) in enumerate(c.lexical, 1):
            scores[doc] = lex_w * ramp * c.coverage.get(doc, 0.0) ** power / (k + rank)
        for rank, (doc, _) in enumerate(c.semantic, 1):
            scores[doc] = scores.get(doc, 0.0) + 1.0 / (k + rank)
        return _rank(scores)

    return run


VARIANTS.update(
    {
        "gated 0.6, ramp 0.25-0.45": gated(0.6, 0.25, 0.45),
        "gated 0.7, ramp 0.25-0.45": gated(0.7, 0.25, 0.45),
        "gated 0.6, ramp 0.3-0.45": gated(0.6, 0.3, 0.45),
        "gated RRF 2:1 k=10, ramp 0.3-0.5, x hit coverage": gated_rrf(0.3, 0.5, 1),
        "gated RRF 2:1 k=10, ramp 0.25-0.45, x hit coverage": gated_rrf(0.25, 0.45, 1),
        "gated RRF 2:1 k=10, ramp 0.25-0.45, x hit coverage^0.5": gated_rrf(0.25, 0.45, 0.5),
        "gated RRF 3:1 k=10, ramp 0.25-0.45, x hit coverage": gated_rrf(0.25, 0.45, 1, 3.0),
    }
)


def gated_floor(alpha: float, lo: float, hi: float, floor: float, agreement: float = 0.0) -> Variant:
    """As :func:`gated`, but the lexical share never falls below ``floor`` of ``alpha``.

    ``agreement`` > 0 scales each hit's lexical credit by (its cosine / the best cosine)^agreement.
    """

    def run(c: Candidates) -> list[int]:
        top = max((s for _, s in c.lexical), default=0.0) or 1.0
        top_sim = max((s for _, s in c.semantic), default=1.0) or 1.0
        best = max((c.coverage.get(d, 0.0) for d, _ in c.lexical), default=0.0)
        a = alpha * (floor + (1 - floor) * min(1.0, max(0.0, (best - lo) / (hi - lo))))
        lexical = dict(c.lexical)
        scores = {}
        for doc in {*lexical, *(d for d, _ in c.semantic)}:
            sim = c.similarity.get(doc, 0.0)
            ln = c.coverage.get(doc, 0.0) * lexical[doc] / top if doc in lexical else 0.0
            if agreement:
                ln *= max(0.0, sim / top_sim) ** agreement
            scores[doc] = a * ln + (1 - a) * sim
        return _rank(scores)

    return run


VARIANTS.update(
    {
        "gated 0.55, ramp 0.25-0.45, floor 0.3": gated_floor(0.55, 0.25, 0.45, 0.3),
        "gated 0.6, ramp 0.2-0.45, floor 0.3": gated_floor(0.6, 0.2, 0.45, 0.3),
        "gated 0.55, ramp 0.25-0.45, floor 0.5": gated_floor(0.55, 0.25, 0.45, 0.5),
        "gated 0.6, ramp 0.3-0.5, floor 0.5": gated_floor(0.6, 0.3, 0.5, 0.5),
        "convex 0.5 BM25/max x coverage + 0.5 cos (as above)": mixed(0.5, "max*cover"),
    }
)


VARIANTS.update(
    {
        "gated 0.6, ramp 0.25-0.45, floor 0.2": gated_floor(0.6, 0.25, 0.45, 0.2),
        "gated 0.65, ramp 0.25-0.45, floor 0.2": gated_floor(0.65, 0.25, 0.45, 0.2),
        "gated 0.6, ramp 0.25-0.5, floor 0.25": gated_floor(0.6, 0.25, 0.5, 0.25),
        "gated 0.55, ramp 0.2-0.45, floor 0.2": gated_floor(0.55, 0.2, 0.45, 0.2),
        "gated 0.5, ramp 0.2-0.4, floor 0.2": gated_floor(0.5, 0.2, 0.4, 0.2),
    }
)


def reserve(base: Variant, sem_top: int, at: int = 5) -> Variant:
    """``base``'s ranking, except that the first ``sem_top`` of the cosine list are moved up to
    rank ``at`` when ``base`` puts them below: the best hits by meaning are never crowded out
    of the first ``at`` by hits that only share words."""

    def run(c: Candidates) -> list[int]:
        ranked = base(c)
        for doc, _ in c.semantic[:sem_top]:
            if doc in ranked[:at]:
                continue
            ranked.remove(doc)
            ranked.insert(at - 1, doc)
        return ranked

    return run


def _shipped_gate(scale: float, agreement: float) -> Variant:
    """:func:`gated_floor` with the shipped constants, its lexical share times ``scale``."""
    return gated_floor(S.LEXICAL_SHARE * scale, S.COVERAGE_NONE, S.COVERAGE_FULL, S.LEXICAL_FLOOR, agreement)


VARIANTS.update({
    "shipped, cosine top 1 kept in the first 5": reserve(shipped, 1),
    "shipped, cosine top 2 kept in the first 5": reserve(shipped, 2),
    "shipped, cosine top 3 kept in the first 5": reserve(shipped, 3),
    "shipped, lexical credit x (cos/best cos)": _shipped_gate(1.0, agreement=1.0),
    "shipped, lexical credit x (cos/best cos)^0.5": _shipped_gate(1.0, agreement=0.5),
    "shipped x1.2, lexical credit x (cos/best cos)": _shipped_gate(1.2, agreement=1.0),
})  # fmt: skip


def weak_hits_uncredited(c: Candidates) -> list[int]:
    """The shipped fusion, except that a hit matching under COVERAGE_NONE of the query gets no lexical credit."""
    weak = {d for d, _ in c.lexical if c.coverage.get(d, 0.0) < S.COVERAGE_NONE}
    hits = S.fuse(
        [(d, str(d), s) for d, s in c.lexical if d not in weak],
        [(d, str(d), s) for d, s in c.semantic],
        c.similarity,
        c.coverage,
    )
    ranked = [int(h.item_id) for h in hits]
    seen = set(ranked)
    return ranked + [d for d, _ in c.lexical if d in weak and d not in seen]


VARIANTS.update(
    {
        "shipped, hits under COVERAGE_NONE get no lexical credit": weak_hits_uncredited,
        "the same, cosine top 2 kept in the first 5": reserve(weak_hits_uncredited, 2),
    }
)


def confident(g0: float, g1: float, keep: float) -> Variant:
    """The shipped fusion at other settings of its semantic-confidence scaling: the lexical share of
    :func:`gated_floor` (shipped ramp and floor) scaled down to ``keep`` of itself as the cosine list's
    lead (best cosine minus the tenth) goes from ``g0`` to ``g1``."""

    def run(c: Candidates) -> list[int]:
        scale = 1 - (1 - keep) * S.ramp(S.lead([s for _, s in c.semantic]), g0, g1)
        return _shipped_gate(scale, agreement=0.0)(c)

    return run


def reserve_when_confident(sem_top: int, lead: float, at: int = 5) -> Variant:
    """The stop 21 fusion, with the cosine list's first ``sem_top`` moved up to rank ``at`` when its lead is ``lead``+."""
    before = gated_floor(0.55, 0.2, 0.45, 0.2)
    kept = reserve(before, sem_top, at)

    def run(c: Candidates) -> list[int]:
        return kept(c) if S.lead([s for _, s in c.semantic]) >= lead else before(c)

    return run


VARIANTS.update(
    {
        "stop 21 shipped (no semantic-confidence scaling)": gated_floor(0.55, 0.2, 0.45, 0.2),
        "shipped; semantic-confidence 0.15-0.3 keep 0.5": confident(0.15, 0.3, 0.5),
        "shipped; semantic-confidence 0.2-0.35 keep 0.5": confident(0.2, 0.35, 0.5),
        "shipped; semantic-confidence 0.25-0.35 keep 0.5": confident(0.25, 0.35, 0.5),
        "shipped; semantic-confidence 0.2-0.4 keep 0.6": confident(0.2, 0.4, 0.6),
        "shipped; semantic-confidence 0.2-0.35 keep 0.3": confident(0.2, 0.35, 0.3),
        "shipped; semantic-confidence 0.2-0.35 keep 0": confident(0.2, 0.35, 0.0),
        "shipped; semantic-confidence 0.25-0.4 keep 0": confident(0.25, 0.4, 0.0),
        "shipped, cosine top 2 kept in the first 5 when its lead is 0.2 or more": reserve_when_confident(2, 0.2),
    }
)
