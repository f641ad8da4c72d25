"""The vector index: exact cosine top-k over an in-memory float32 matrix, persisted in the store's table.

Vectors are rows of ``vectors``, keyed by ``(collection, item, chunk, model)`` and tagged
with the model that made them (``vector_models``: model id and dimension), so vectors of
two models are never compared. The matrix in memory is a cache of that table for one
model, on either engine: it loads rows it has not seen (``vseq`` above the newest it
holds, or in a hole below it that a transaction still in flight may fill, see
``storage/catchup.py``) and drops rows listed in ``vector_tombstones`` (filled by a
trigger on delete, followed the same way), so it follows other processes' writes. The
engine's data version, asked on a dedicated connection, says when anything changed.

On a PostgreSQL database with the pgvector extension the same table also holds each
vector as a ``vector`` column searched by the engine (``storage/postgres/pgvector.py``);
both follow the models and tombstones through :class:`VectorTable`. Which one a store gets
is the engine's choice (``Database.vector_index``).

Nothing here knows what an item is; the search layer maps items to records.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import StorageError
from ..ids import utc_now
from .catchup import IdFollower
from .engine import Connection, Database

__all__ = ["SqliteVectorIndex", "TableVectorIndex", "VectorHit", "VectorIndex", "VectorTable", "top_allowed"]

if TYPE_CHECKING:
    import numpy as np
else:

    class _Numpy:
        """numpy on first use: a server that never searches by meaning should not pay its import at start-up."""

        def __getattr__(self, name: str) -> Any:
            import numpy

            return getattr(numpy, name)

    np = _Numpy()


# Tombstones older than this many are pruned; a cache that fell further behind reloads.
_TOMBSTONES_KEPT = 100_000
# On a (re)load, the newest tombstone ids read to find holes a delete still in flight may fill.
_TOMBSTONE_TAIL = 1000
# Rows loaded per query.
_PAGE = 20_000


@dataclass(frozen=True, slots=True)
class VectorHit:
    item: int
    score: float


Accept = Callable[[list[int]], set[int]]
"""Given candidate items (best first), return those a query's filters allow."""


def top_allowed(
    k: int, accept: Accept | None, ranked: Callable[[int], tuple[list[tuple[int, float]], bool]]
) -> list[VectorHit]:
    """The first ``k`` items ``accept`` allows, in the order ``ranked`` gives them.

    ``ranked(depth)`` returns the best ``depth`` rows as ``(item, score)``, best first (an item
    may come more than once: its chunks; the first counts), and whether that was every row.
    Candidates go to ``accept`` in batches; the depth grows fourfold while too few pass.
    """
    seen: set[int] = set()
    hits: list[VectorHit] = []
    depth = max(4 * k, 64)
    while True:
        rows, complete = ranked(depth)
        fresh: list[tuple[int, float]] = []
        for item, score in rows:
            if item not in seen:
                seen.add(item)
                fresh.append((item, score))
        allowed = None if accept is None else accept([item for item, _ in fresh])
        for item, score in fresh:
            if allowed is None or item in allowed:
                hits.append(VectorHit(item, score))
                if len(hits) == k:
                    return hits
        if complete:
            return hits
        depth *= 4


class VectorIndex(Protocol):
    """What search needs from a vector store: the in-memory matrix here, pgvector on PostgreSQL."""

    model_id: str
    dim: int
    model: int
    """The row of ``vector_models`` naming (model_id, dim): the ``model`` column of this index's vectors."""

    def sync(self) -> list[int]: ...

    def add(self, conn: Connection, collection: str, keys: Sequence[tuple[int, int]], vectors: np.ndarray) -> None: ...

    def search(self, collection: str, query: np.ndarray, k: int, accept: Accept | None = None) -> list[VectorHit]: ...

    def scores(self, collection: str, query: np.ndarray, items: Iterable[int]) -> dict[int, float]: ...

    def count(self, collection: str | None = None) -> int: ...

    def delete_other_models(self) -> int: ...

    def delete_all(self) -> int: ...

    def other_model_count(self) -> int: ...

    def close(self) -> None: ...


class _Segment:
    """One collection's rows: item ids and a matrix, grown by doubling, replaced on removal."""

    def __init__(self, dim: int) -> None:
        self.items = np.zeros(0, dtype=np.int64)
        self.matrix = np.zeros((0, dim), dtype=np.float32)
        self.n = 0

    def append(self, items: np.ndarray, matrix: np.ndarray) -> None:
        need = self.n + len(items)
        if need > len(self.items):
            capacity = max(need, 2 * len(self.items), 1024)
            grown_items = np.zeros(capacity, dtype=np.int64)
            grown = np.zeros((capacity, self.matrix.shape[1]), dtype=np.float32)
            grown_items[: self.n] = self.items[: self.n]
            grown[: self.n] = self.matrix[: self.n]
            self.items, self.matrix = grown_items, grown
        self.items[self.n : need] = items
        self.matrix[self.n : need] = matrix
        self.n = need

    def remove(self, items: np.ndarray) -> None:
        # New arrays, not in-place compaction: searches may hold views of the old ones.
        keep = ~np.isin(self.items[: self.n], items)
        self.items = self.items[: self.n][keep].copy()
        self.matrix = self.matrix[: self.n][keep].copy()
        self.n = len(self.items)

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        return self.items[: self.n], self.matrix[: self.n]


class VectorTable:
    """The ``vectors`` table for one model (either engine): the model's row, writes, deletes and tombstones.

    Subclasses search it: :class:`TableVectorIndex` in memory, pgvector in PostgreSQL.

    Args:
        db: the store's database (with its migrations applied).
        model_id: the embedding model's id; with ``dim`` it names the vectors' space.
        dim: vector dimension.
    """

    def __init__(self, db: Database, model_id: str, dim: int) -> None:
        self.db = db
        self.model_id = model_id
        self.dim = dim
        with db.write() as conn:
            conn.execute(
                "INSERT INTO vector_models (model_id, dim, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (model_id, dim, utc_now()),
            )
            row = conn.execute("SELECT model FROM vector_models WHERE model_id = ? AND dim = ?", (model_id, dim))
            self.model: int = row.fetchone()[0]
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._version = -1
        self._tombstones = IdFollower()  # tseq

    # -- following other processes -----------------------------------------------------------------

    def _watch(self) -> Connection:
        if self._conn is None:
            self._conn = self.db.watcher()
        return self._conn

    def sync(self) -> list[int]:
        """Take in what other connections changed since the last call; returns the items whose vectors they deleted."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    return self._catch_up()
                except BaseException as exc:
                    # A failed look (a dropped connection, a restarted server) may have taken in part
                    # of a change: a fresh connection and a full reload; once at once, then the caller's.
                    if self._conn is not None:
                        with suppress(Exception):
                            self._conn.close()
                    self._conn = None
                    self._version = -1
                    self._tombstones.reset()
                    self._forget()
                    if attempt == 2 or not isinstance(exc, StorageError):
                        raise
            raise AssertionError("unreachable")

    def _catch_up(self) -> list[int]:
        raise NotImplementedError

    def _forget(self) -> None:
        """Drop what the subclass holds, so the next catch-up starts from nothing."""

    def _take_tombstones(self, conn: Connection, restart: bool) -> dict[str, list[int]] | None:
        """This model's items deleted since the last look, by collection.

        None when the caller must start over (``restart``, or tombstones it never saw were
        pruned): tombstones are then followed from the newest on, minding holes among them.
        """
        oldest, newest = conn.execute("SELECT MIN(tseq), MAX(tseq) FROM vector_tombstones").fetchone()
        if newest is None:
            return {}
        if restart or oldest > self._tombstones.high + 1:
            self._tombstones.reset(max(0, newest - _TOMBSTONE_TAIL))
            for (tseq,) in conn.execute("SELECT tseq FROM vector_tombstones WHERE tseq > ? ORDER BY tseq",
                                        (self._tombstones.high,)):  # fmt: skip
                self._tombstones.take(tseq)
            return None
        where, params = self._tombstones.condition("tseq")
        rows = conn.execute(
            f"SELECT tseq, model, collection, item FROM vector_tombstones WHERE {where} ORDER BY tseq", params
        ).fetchall()
        removed: dict[str, list[int]] = {}
        for tseq, model, collection, item in rows:
            # Every model's tombstones are taken in, so another model's ids leave no holes.
            if self._tombstones.take(tseq) and model == self.model:
                removed.setdefault(collection, []).append(item)
        return removed

    # -- writing -----------------------------------------------------------------------------------

    def add(self, conn: Connection, collection: str, keys: Sequence[tuple[int, int]], vectors: np.ndarray) -> None:
        """Store vectors for ``(item, chunk)`` keys inside the caller's write transaction.

        A key that already has a vector of this model keeps it (another process got there first).
        """
        if vectors.shape != (len(keys), self.dim):
            raise ValueError(f"expected {len(keys)} vectors of dimension {self.dim}, got {vectors.shape}")
        data = np.ascontiguousarray(vectors, dtype=np.float32)
        self._insert(conn, collection, [(item, chunk, data[i]) for i, (item, chunk) in enumerate(keys)])

    def _insert(self, conn: Connection, collection: str, rows: list[tuple[int, int, np.ndarray]]) -> None:
        conn.executemany(
            "INSERT INTO vectors (collection, item, chunk, model, vector) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [(collection, item, chunk, self.model, vector.tobytes()) for item, chunk, vector in rows],
        )

    def delete_other_models(self) -> int:
        """Remove vectors made by any other model or dimension; returns how many rows went."""
        with self.db.write() as conn:
            removed = conn.execute("DELETE FROM vectors WHERE model != ?", (self.model,)).rowcount
            conn.execute("DELETE FROM vector_models WHERE model != ?", (self.model,))
            self._prune(conn)
        return int(removed)

    def delete_all(self) -> int:
        """Remove every vector (of every model), e.g. before re-embedding everything."""
        with self.db.write() as conn:
            removed = conn.execute("DELETE FROM vectors").rowcount
            self._prune(conn)
        return int(removed)

    @staticmethod
    def _prune(conn: Connection) -> None:
        conn.execute(
            "DELETE FROM vector_tombstones WHERE tseq <= (SELECT MAX(tseq) FROM vector_tombstones) - ?",
            (_TOMBSTONES_KEPT,),
        )

    def other_model_count(self) -> int:
        return int(self.db.query("SELECT COUNT(*) FROM vectors WHERE model != ?", (self.model,))[0][0])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class TableVectorIndex(VectorTable):
    """Vectors of one model in the store's ``vectors`` table (either engine), searched exactly in memory.

    Args:
        db: the store's database (with its migrations applied).
        model_id: the embedding model's id; with ``dim`` it names the vectors' space.
        dim: vector dimension.
    """

    def __init__(self, db: Database, model_id: str, dim: int) -> None:
        super().__init__(db, model_id, dim)
        self._rows = IdFollower()  # vseq
        self._segments: dict[str, _Segment] = {}

    # -- keeping the cache fresh -------------------------------------------------------------------

    def _forget(self) -> None:
        self._segments.clear()
        self._rows.reset()

    def _catch_up(self) -> list[int]:
        conn = self._watch()
        version = self.db.data_version(conn)
        if version == self._version:
            return []
        # One snapshot for tombstones and rows: a row deleted and added again in between
        # must not lose its new vector to the old one's tombstone.
        conn.execute(self.db.dialect.begin_snapshot())
        try:
            removed = self._apply_tombstones(conn)
            self._load_rows(conn)
        finally:
            conn.execute("COMMIT")
        self._version = version
        return removed

    def _apply_tombstones(self, conn: Connection) -> list[int]:
        # Nothing loaded yet, or tombstones we never saw were pruned: (re)load the table.
        removed = self._take_tombstones(conn, restart=self._rows.high == 0)
        if removed is None:
            self._forget()
            return []
        for collection, items in removed.items():
            segment = self._segments.get(collection)
            if segment is not None:
                segment.remove(np.asarray(items, dtype=np.int64))
        return [item for items in removed.values() for item in items]

    def _load_rows(self, conn: Connection) -> None:
        where, params = self._rows.condition("vseq")
        sql = f"SELECT vseq, collection, item, vector FROM vectors WHERE model = ? AND {where} AND vseq > ?"
        after = -1
        while True:
            # Pages by vseq: a PostgreSQL client cursor would hold the whole table's bytes at once.
            rows = conn.execute(sql + " ORDER BY vseq LIMIT ?", (self.model, *params, after, _PAGE)).fetchall()
            if not rows:
                break
            after = rows[-1][0]
            by_collection: dict[str, tuple[list[int], list[bytes]]] = {}
            for vseq, collection, item, blob in rows:
                if not self._rows.take(vseq):
                    continue
                items, blobs = by_collection.setdefault(collection, ([], []))
                items.append(item)
                blobs.append(blob)
            for collection, (items, blobs) in by_collection.items():
                matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(items), self.dim)
                segment = self._segments.setdefault(collection, _Segment(self.dim))
                segment.append(np.asarray(items, dtype=np.int64), matrix)
            if len(rows) < _PAGE:
                break

    # -- searching ---------------------------------------------------------------------------------

    def _snapshot(self, collection: str) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            segment = self._segments.get(collection)
            if segment is None:
                return np.zeros(0, dtype=np.int64), np.zeros((0, self.dim), dtype=np.float32)
            return segment.view()

    def search(self, collection: str, query: np.ndarray, k: int, accept: Accept | None = None) -> list[VectorHit]:
        """The ``k`` items most similar to ``query`` (exact cosine; an item's best chunk counts).

        ``accept`` filters candidates in batches, best first, so the answer is the exact top-k
        among the items it allows. Call :meth:`sync` first to see other processes' writes.
        """
        items, matrix = self._snapshot(collection)
        n = len(items)
        if n == 0 or k <= 0:
            return []
        scores = matrix @ np.asarray(query, dtype=np.float32)

        def ranked(depth: int) -> tuple[list[tuple[int, float]], bool]:
            if depth < n:
                top = np.argpartition(-scores, depth - 1)[:depth]
                order = top[np.argsort(-scores[top], kind="stable")]
            else:
                order = np.argsort(-scores, kind="stable")
            return [(int(items[row]), float(scores[row])) for row in order.tolist()], depth >= n

        return top_allowed(k, accept, ranked)

    def scores(self, collection: str, query: np.ndarray, items: Iterable[int]) -> dict[int, float]:
        """Cosine of ``query`` with each given item that has a vector (its best chunk)."""
        wanted = np.fromiter(items, dtype=np.int64)
        all_items, matrix = self._snapshot(collection)
        if not len(wanted) or not len(all_items):
            return {}
        rows = np.nonzero(np.isin(all_items, wanted, kind="table"))[0]
        found: dict[int, float] = {}
        for item, score in zip(all_items[rows].tolist(), (matrix[rows] @ query).tolist(), strict=True):
            if score > found.get(item, -2.0):
                found[item] = score
        return found

    def count(self, collection: str | None = None) -> int:
        """Rows (chunks) held in memory for one collection or all."""
        with self._lock:
            if collection is not None:
                segment = self._segments.get(collection)
                return 0 if segment is None else segment.n
            return sum(s.n for s in self._segments.values())


SqliteVectorIndex = TableVectorIndex
"""The name before the index ran on PostgreSQL too (its table is the same on both engines)."""
