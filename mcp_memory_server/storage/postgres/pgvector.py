"""Vectors searched inside PostgreSQL by the pgvector extension, when the database has it.

The ``vectors`` table stays what it is on both engines (float32 bytes in ``vector``, the
model, the tombstones); a store on a database with pgvector also gets a ``embedding
vector`` column, written in the same row, and one HNSW index (cosine) per model and
collection: a partial index on ``embedding::vector(dim)`` for ``model = m AND collection
= c``, so a search of one source never loses recall to rows of another. The bytes are kept
too: the table then still reads without the extension (a dump restored elsewhere, the
exact matrix of a process of an older version, a model change back), for ~1.5 KB a chunk.

A search reads the database itself, so every replica sees a vector the moment its write
commits; nothing is loaded into memory. Scores are cosine similarities (1 - pgvector's
cosine distance), as the matrix's, so hybrid fusion does not change.

Approximate recall (HNSW) and filters:

- A collection of at most :data:`EXACT_ROWS` chunks is ranked exactly (``ORDER BY`` a
  distance the index does not serve: a scan of a few thousand rows takes milliseconds), so
  small stores answer what the matrix answers, to the last item.
- Larger ones go through the index with ``hnsw.ef_search`` set to the depth asked for
  (``max(4 k, 64)`` candidates, as the matrix looks at first), so the ``k`` kept are the
  best of a candidate list four times longer. pgvector 0.6 has no iterative index scan, so
  when the query's filters (``accept``) reject too many, the depth grows fourfold up to
  ``ef_search``'s ceiling of 1000; past it the ranking is exact, so a selective filter still
  gets the best of the items it allows, not an empty page.

The extension is created (in schema ``public``, where every store's schema can reach it)
when the role may; otherwise, or when the server has no pgvector, stores use the exact
in-memory matrix (``storage/vectors.py``). Columns and indexes are added at run time, once
per store, under the store's write lock, not by a migration: the extension may arrive after
the store was created, and a database without it must keep the same schema versions.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from contextlib import suppress
from typing import TYPE_CHECKING

import numpy as np

from ..engine import Connection
from ..vectors import Accept, TableVectorIndex, VectorHit, VectorTable, top_allowed

if TYPE_CHECKING:
    from .database import PostgresDatabase

__all__ = ["EXACT_ROWS", "PgvectorIndex", "open_vector_index", "vector_schema"]

logger = logging.getLogger(__name__)

EXACT_ROWS = 5000
"""Collections of at most this many chunks are ranked exactly (a scan), larger ones through HNSW."""
# pgvector's ceiling for hnsw.ef_search: candidate lists beyond it are ranked exactly.
_EF_SEARCH_MAX = 1000
# Rows written without an embedding (before the extension, or by an older process) filled per round.
_BACKFILL = 1000
# Serialises CREATE EXTENSION across every store of the database (IF NOT EXISTS is not safe against a racer).
_EXTENSION_LOCK = 7160802


def vector_schema(db: PostgresDatabase) -> str | None:
    """The schema of the database's pgvector extension, creating it when the server has it and the role may.

    None when the server has no pgvector or the role cannot create it: then the matrix serves.
    """
    conn = db.watcher()
    try:
        found = conn.execute("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'vector'")
        row = found.fetchone()
        if row is not None:
            return str(row[0])
        if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone() is None:
            return None
        try:
            conn.execute("BEGIN")
            conn.execute("SELECT pg_advisory_xact_lock(?)", (_EXTENSION_LOCK,))
            # public, not the store's own schema: dropping one store's schema must not take the type from the others.
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public")
            conn.execute("COMMIT")
        except Exception as exc:  # no privilege, no schema public: the exact matrix serves
            with suppress(Exception):
                conn.execute("ROLLBACK")
            logger.info("pgvector is available but cannot be created here (%s); using the in-memory matrix", exc)
            return None
        created = conn.execute("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'vector'")
        row = created.fetchone()
        return None if row is None else str(row[0])
    finally:
        conn.close()


def open_vector_index(db: PostgresDatabase, model_id: str, dim: int) -> TableVectorIndex | PgvectorIndex:
    """pgvector's index when the database has the extension (or may create it), else the exact matrix."""
    schema = vector_schema(db)
    if schema is None:
        return TableVectorIndex(db, model_id, dim)
    return PgvectorIndex(db, model_id, dim, schema)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _vector_text(vector: np.ndarray) -> str:
    # Python's repr of a float32's value parses back (strtof) to the same float32: nothing is rounded.
    return "[" + ",".join(map(repr, vector.tolist())) + "]"


class PgvectorIndex(VectorTable):
    """Vectors of one model searched by pgvector in the store's ``vectors`` table.

    Args:
        db: the store's database (migrated); its server has the extension.
        model_id: the embedding model's id; with ``dim`` it names the vectors' space.
        dim: vector dimension.
        schema: the extension's schema (its type and operators are named through it).
    """

    def __init__(self, db: PostgresDatabase, model_id: str, dim: int, schema: str) -> None:
        super().__init__(db, model_id, dim)
        self._pg = db
        quoted = '"' + schema.replace('"', '""') + '"'
        self._type = f"{quoted}.vector"
        self._cosine = f"OPERATOR({quoted}.<=>)"
        self._indexed: set[str] = set()
        self._following = False
        with db.write() as conn:
            self._prepare(conn, quoted)
        self._backfill()

    def _prepare(self, conn: Connection, schema: str) -> None:
        has_column = conn.execute(
            "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('vectors') AND attname = 'embedding'"
            " AND NOT attisdropped"
        ).fetchone()
        if has_column is None:
            conn.execute(f"ALTER TABLE vectors ADD COLUMN embedding {self._type}")
            # A row holds both forms (~3 KB at 384 dimensions), past the 2 KB at which PostgreSQL
            # moves values out of line: the embedding stays in the row (a search reads it), the bytes go.
            conn.execute("ALTER TABLE vectors ALTER COLUMN embedding SET STORAGE MAIN")
            conn.execute("ALTER TABLE vectors ALTER COLUMN vector SET STORAGE EXTERNAL")
            conn.execute("CREATE INDEX vectors_unembedded ON vectors (model, vseq) WHERE embedding IS NULL")
        for (collection,) in conn.execute("SELECT DISTINCT collection FROM vectors WHERE model = ?", (self.model,)):
            self._ensure_index(conn, collection)

    def _index_name(self, collection: str) -> str:
        if re.fullmatch(r"[a-z0-9_]{1,30}", collection) is None:
            collection = hashlib.blake2b(collection.encode(), digest_size=8).hexdigest()
        return f"vectors_hnsw_{self.model}_{collection}"

    def _ensure_index(self, conn: Connection, collection: str) -> None:
        if collection in self._indexed:
            return
        name = self._index_name(collection)
        if conn.execute("SELECT to_regclass(?)", (name,)).fetchone()[0] is None:
            logger.info("building the HNSW index of %s vectors (model %s)", collection, self.model_id)
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON vectors USING hnsw"
                f" ((embedding::{self._type}({self.dim})) {self._type.rsplit('.', 1)[0]}.vector_cosine_ops)"
                f" WHERE model = {self.model} AND collection = {_literal(collection)}"
            )
        self._indexed.add(collection)

    # -- following other processes -----------------------------------------------------------------

    def _forget(self) -> None:
        self._following = False

    def _catch_up(self) -> list[int]:
        """Nothing to load (the database is the index): only the deletes, for the indexer, and rows to fill."""
        conn = self._watch()
        version = self.db.data_version(conn)
        if version == self._version:
            return []
        removed = self._take_tombstones(conn, restart=not self._following)
        self._following = True
        self._version = version
        self._backfill()
        return [item for items in (removed or {}).values() for item in items]

    def _backfill(self) -> None:
        """Give an embedding to this model's rows written without one (before the extension, or by an older process)."""
        while True:
            rows = self.db.query(
                "SELECT vseq, collection, vector FROM vectors WHERE model = ? AND embedding IS NULL ORDER BY vseq LIMIT ?",
                (self.model, _BACKFILL),
            )
            if not rows:
                return
            with self.db.write() as conn:
                for collection in {row[1] for row in rows}:
                    self._ensure_index(conn, collection)
                conn.executemany(
                    f"UPDATE vectors SET embedding = ?::{self._type} WHERE vseq = ? AND embedding IS NULL",
                    [(_vector_text(np.frombuffer(row[2], dtype=np.float32)), row[0]) for row in rows],
                )
            if len(rows) < _BACKFILL:
                return

    # -- writing -----------------------------------------------------------------------------------

    def _insert(self, conn: Connection, collection: str, rows: list[tuple[int, int, np.ndarray]]) -> None:
        self._ensure_index(conn, collection)
        conn.executemany(
            "INSERT INTO vectors (collection, item, chunk, model, vector, embedding)"
            f" VALUES (?, ?, ?, ?, ?, ?::{self._type}) ON CONFLICT DO NOTHING",
            [
                (collection, item, chunk, self.model, vector.tobytes(), _vector_text(vector))
                for item, chunk, vector in rows
            ],
        )

    def delete_other_models(self) -> int:
        removed = super().delete_other_models()
        with self.db.write() as conn:
            stale = conn.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'vectors'"
                " AND indexname LIKE 'vectors\\_hnsw\\_%' AND indexname NOT LIKE ?",
                (f"vectors\\_hnsw\\_{self.model}\\_%",),
            ).fetchall()
            for (name,) in stale:
                conn.execute(f'DROP INDEX IF EXISTS "{name}"')
        return removed

    # -- searching ---------------------------------------------------------------------------------

    def _ranking_sql(self, collection: str, exact: bool) -> str:
        """The best ``LIMIT ?`` rows ``(vseq, item, score)`` for the query vector ``?`` (given twice)."""
        typed = f"{self._type}({self.dim})"
        where = f"model = {self.model} AND collection = {_literal(collection)} AND embedding IS NOT NULL"
        # The index serves ORDER BY on exactly its expression (model and collection as literals, so
        # the planner matches the partial index); the bare column's distance it cannot.
        distance = (
            f"embedding {self._cosine} ?::{self._type}" if exact else f"embedding::{typed} {self._cosine} ?::{typed}"
        )
        return f"SELECT vseq, item, 1 - ({distance}) FROM vectors WHERE {where} ORDER BY {distance} LIMIT ?"

    def _ranked(self, collection: str, query: str, exact: bool, depth: int) -> list[tuple[int, int, float]]:
        """The best ``depth`` rows ``(vseq, item, score)``, best first, by the index or by a scan."""
        joined = self._pg.conn.in_transaction
        with self._pg.snapshot() as conn:
            if not exact:
                conn.execute("SELECT set_config('hnsw.ef_search', ?, true)", (str(depth),))
                if not joined:  # a caller's own transaction keeps its plans
                    # Past EXACT_ROWS the index is the plan; stale statistics must not turn it into a scan.
                    conn.execute("SET LOCAL enable_seqscan = off")
            rows = conn.execute(self._ranking_sql(collection, exact), (query, query, depth)).fetchall()
        # Equal scores in the matrix's order (first written first): identical texts rank alike on both.
        return sorted(((int(r[0]), int(r[1]), float(r[2])) for r in rows), key=lambda r: (-r[2], r[0]))

    def _small(self, collection: str) -> bool:
        row = self.db.query(
            "SELECT COUNT(*) FROM (SELECT 1 FROM vectors WHERE model = ? AND collection = ?"
            " AND embedding IS NOT NULL LIMIT ?) AS s",
            (self.model, collection, EXACT_ROWS + 1),
        )
        return int(row[0][0]) <= EXACT_ROWS

    def search(self, collection: str, query: np.ndarray, k: int, accept: Accept | None = None) -> list[VectorHit]:
        """The ``k`` items most similar to ``query`` among those ``accept`` allows (an item's best chunk counts).

        Exact for collections of up to :data:`EXACT_ROWS` chunks and for candidate lists past
        ``ef_search``'s ceiling; through HNSW otherwise. Sees every committed write at once.
        """
        if k <= 0:
            return []
        text = _vector_text(np.asarray(query, dtype=np.float32))
        small = self._small(collection)

        def ranked(depth: int) -> tuple[list[tuple[int, float]], bool]:
            exact = small or depth > _EF_SEARCH_MAX
            rows = self._ranked(collection, text, exact, depth)
            # HNSW returns at most ef_search rows; fewer than asked means the graph is used up,
            # but an approximate list is never "every row": only an exact one ends the search.
            return [(item, score) for _, item, score in rows], exact and len(rows) < depth

        hits = top_allowed(k, accept, ranked)
        # Rounds through the index and then exact ones may find a better item late: best first.
        return sorted(hits, key=lambda hit: -hit.score)

    def scores(self, collection: str, query: np.ndarray, items: Iterable[int]) -> dict[int, float]:
        """Cosine of ``query`` with each given item that has a vector (its best chunk)."""
        wanted = list(dict.fromkeys(int(item) for item in items))
        if not wanted:
            return {}
        text = _vector_text(np.asarray(query, dtype=np.float32))
        rows = self.db.query(
            f"SELECT item, MAX(1 - (embedding {self._cosine} ?::{self._type})) FROM vectors"
            " WHERE model = ? AND collection = ? AND item = ANY(?) AND embedding IS NOT NULL GROUP BY item",
            (text, self.model, collection, wanted),
        )
        return {int(row[0]): float(row[1]) for row in rows}

    def count(self, collection: str | None = None) -> int:
        """Rows (chunks) of this model with an embedding, in one collection or all."""
        where, params = ("", []) if collection is None else (" AND collection = ?", [collection])
        sql = f"SELECT COUNT(*) FROM vectors WHERE model = ? AND embedding IS NOT NULL{where}"
        return int(self.db.query(sql, (self.model, *params))[0][0])
