"""Words on SQLite: an FTS5 external-content index over ``search_docs``, ranked by BM25.

The index (``search_fts``, see ``schema/search.py``) is filled pull-style: before a search,
documents committed since it last caught up (by any process) are added in one statement
(:meth:`SqliteFullText.catch_up`). A trigger per record made bulk writes four times slower:
FTS5 flushes its pending terms at the end of every trigger step. Deletes are applied by a
trigger on ``search_docs`` for documents the index already holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..engine import Database

__all__ = ["COLUMN_WEIGHTS", "SqliteFullText", "match_expression"]

# BM25 column weights: the document's own text, its metadata, the preceding record's text.
COLUMN_WEIGHTS = (1.0, 0.5, 0.5)
_WEIGHTS = ", ".join(str(w) for w in COLUMN_WEIGHTS)


def match_expression(terms: Sequence[str]) -> str:
    """An FTS5 query matching any of ``terms``, each quoted (so no operator or syntax in a term is obeyed).

    A word joined by underscores (``deploy_v2``) stays one quoted term, which FTS5 matches as a phrase.
    """
    return " OR ".join(f'"{term}"' for term in terms)


class SqliteFullText:
    """FTS5 over ``search_docs`` (``search_fts``), caught up before each search."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def catch_up(self) -> int:
        upto = self._db.query("SELECT value FROM search_state WHERE key = 'fts_upto'")[0][0]
        top = self._db.query("SELECT MAX(doc_id) FROM search_docs")[0][0] or 0
        if top <= upto:
            return 0
        with self._db.write() as conn:
            upto = conn.execute("SELECT value FROM search_state WHERE key = 'fts_upto'").fetchone()[0]
            top = conn.execute("SELECT MAX(doc_id) FROM search_docs").fetchone()[0] or 0
            if top <= upto:
                return 0
            added = conn.execute(
                "INSERT INTO search_fts (rowid, doc_text, doc_meta, doc_context)"
                " SELECT doc_id, doc_text, doc_meta, doc_context FROM search_docs WHERE doc_id > ? AND doc_id <= ?",
                (upto, top),
            ).rowcount
            conn.execute("UPDATE search_state SET value = ? WHERE key = 'fts_upto'", (top,))
        return int(added)

    def rebuild(self) -> None:
        with self._db.write() as conn:
            conn.execute("INSERT INTO search_fts (search_fts) VALUES ('rebuild')")
            conn.execute(
                "UPDATE search_state SET value = (SELECT coalesce(MAX(doc_id), 0) FROM search_docs)"
                " WHERE key = 'fts_upto'"
            )

    def top(self, terms: Sequence[str], limit: int) -> list[tuple[int, float]]:
        if not terms:
            return []
        rows = self._db.query(
            f"SELECT rowid, bm25(search_fts, {_WEIGHTS}) AS lex FROM search_fts WHERE search_fts MATCH ?"
            " ORDER BY lex LIMIT ?",
            (match_expression(terms), limit),
        )
        return [(row[0], -row[1]) for row in rows]  # FTS5's bm25 is negative: lower is better

    def top_within(
        self, terms: Sequence[str], limit: int, source: str, join: str = "", where: str = "", params: Sequence[Any] = ()
    ) -> list[tuple[int, str, float]]:
        if not terms:
            return []
        rows = self._db.query(
            f"SELECT d.doc_id, d.item_id, bm25(search_fts, {_WEIGHTS}) AS lex"
            f" FROM search_fts JOIN search_docs AS d ON d.doc_id = search_fts.rowid{join}"
            f" WHERE search_fts MATCH ? AND d.source = ?{where} ORDER BY lex LIMIT ?",
            (match_expression(terms), source, *params, limit),
        )
        return [(row[0], row[1], -row[2]) for row in rows]

    def doc_frequency(self, terms: Sequence[str], cap: int) -> dict[str, int]:
        return {
            term: self._db.query(
                "SELECT COUNT(*) FROM (SELECT 1 FROM search_fts WHERE search_fts MATCH ? LIMIT ?)",
                (match_expression([term]), cap),
            )[0][0]
            for term in terms
        }
