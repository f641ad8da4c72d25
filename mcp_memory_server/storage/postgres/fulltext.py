"""Words on PostgreSQL: a generated, weighted ``tsvector`` column of ``search_docs`` with a GIN index.

The column (``doc_tsv``, see ``schema/search.py``) is computed by the engine in the same
statement that writes the document, so a committed document is searchable by its words at
once: there is nothing to catch up. Text, metadata and context are weighted A, B and C.

Ranking is BM25-shaped, so hybrid fusion reads the same scale on both engines: each query
term contributes its inverse document frequency times ``ts_rank`` of the document for that
term alone (a saturating, weighted term frequency, divided by the log of the document's
length). ``ts_rank`` of the whole OR query would average the terms and ignore how rare each is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..engine import Database

__all__ = ["PostgresFullText"]

# ts_rank's weights for labels {D, C, B, A}: the text (A) counts 1, metadata (B) 0.5 as on
# SQLite, the preceding record's text (C) 0.7: ts_rank saturates a term's frequency sooner
# than BM25 does, and 0.6-0.8 all gave the best LoCoMo turn recall (0.5: 1.4 points lower
# on 4 conversations). D is unused.
_WEIGHTS = "'{0.1, 0.7, 0.5, 1.0}'"
# ts_rank normalisation 1: the rank divided by 1 + log(document length).
_NORMALISATION = 1
_QUERY = "phraseto_tsquery('english', ?)"
_RANK = "ts_rank"


def _term(term: str) -> str:
    # "deploy_v2" is matched as the phrase "deploy v2", as FTS5 matches a quoted term.
    return term.replace("_", " ")


class PostgresFullText:
    """Full-text search by the engine itself over ``search_docs.doc_tsv``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def catch_up(self) -> int:
        return 0  # the tsvector is written with the document, in its transaction

    def rebuild(self) -> None:
        pass  # the generated column cannot drift from the text it is computed from

    def _match(self, terms: Sequence[str]) -> tuple[str, str, list[Any], list[Any]]:
        """The ranking expression, the match condition and their parameters."""
        weights = self._weights(terms)
        rank = " + ".join(f"? * {_RANK}({_WEIGHTS}, d.doc_tsv, {_QUERY}, {_NORMALISATION})" for _ in terms)
        rank_params: list[Any] = []
        for term in terms:
            rank_params += [weights[term], _term(term)]
        match = "d.doc_tsv @@ (" + " || ".join(_QUERY for _ in terms) + ")"
        return rank, match, rank_params, [_term(t) for t in terms]

    def _weights(self, terms: Sequence[str]) -> dict[str, float]:
        total = self._db.query("SELECT MAX(doc_id) FROM search_docs")[0][0] or 1
        found = self.doc_frequency(terms, 10_000)
        return {t: math.log(1.0 + (total - found[t] + 0.5) / (found[t] + 0.5)) for t in terms}

    def top(self, terms: Sequence[str], limit: int) -> list[tuple[int, float]]:
        if not terms:
            return []
        rank, match, rank_params, match_params = self._match(terms)
        rows = self._db.query(
            f"SELECT d.doc_id, {rank} AS lex FROM search_docs AS d WHERE {match} ORDER BY lex DESC, d.doc_id LIMIT ?",
            (*rank_params, *match_params, limit),
        )
        return [(row[0], float(row[1])) for row in rows]

    def top_within(
        self, terms: Sequence[str], limit: int, source: str, join: str = "", where: str = "", params: Sequence[Any] = ()
    ) -> list[tuple[int, str, float]]:
        if not terms:
            return []
        rank, match, rank_params, match_params = self._match(terms)
        rows = self._db.query(
            f"SELECT d.doc_id, d.item_id, {rank} AS lex FROM search_docs AS d{join}"
            f" WHERE {match} AND d.source = ?{where} ORDER BY lex DESC, d.doc_id LIMIT ?",
            (*rank_params, *match_params, source, *params, limit),
        )
        return [(row[0], row[1], float(row[2])) for row in rows]

    def doc_frequency(self, terms: Sequence[str], cap: int) -> dict[str, int]:
        if not terms:
            return {}
        counts = ", ".join(
            f"(SELECT COUNT(*) FROM (SELECT 1 FROM search_docs WHERE doc_tsv @@ {_QUERY} LIMIT ?) AS m)" for _ in terms
        )
        params: list[Any] = []
        for term in terms:
            params += [_term(term), cap]
        row = self._db.query(f"SELECT {counts}", params)[0]
        return {term: int(row[i]) for i, term in enumerate(terms)}
