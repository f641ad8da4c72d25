"""The vector index: exact top-k against brute-force numpy, chunks, filters, cross-instance freshness (either engine)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from _out_of_order import Write, commit_lower_after_higher

from mcp_memory_server.storage import Database
from mcp_memory_server.storage import vectors as vectors_module
from mcp_memory_server.storage.engine import Connection
from mcp_memory_server.storage.sqlite import SqliteDatabase
from mcp_memory_server.storage.vectors import TableVectorIndex

DIM = 32


def open_db(tmp_path: Path, url: str | None) -> Database:
    """The test's database on the run's engine: a file in ``tmp_path``, or the PostgreSQL schema at ``url``."""
    if url is None:
        return SqliteDatabase(tmp_path / "v.db")
    from mcp_memory_server.storage.postgres import PostgresDatabase

    return PostgresDatabase(url)


@pytest.fixture
def db(tmp_path: Path, database_url: str | None) -> Iterator[Database]:
    database = open_db(tmp_path, database_url)
    database.migrate(database.migrations)
    yield database
    database.close()


def unit(rows: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def fill(index: TableVectorIndex, vectors: np.ndarray, *, collection: str = "c", first: int = 1) -> None:
    for start in range(0, len(vectors), 500):  # several transactions, as a running server makes them
        batch = vectors[start : start + 500]
        with index.db.write() as conn:
            index.add(conn, collection, [(first + start + i, 0) for i in range(len(batch))], batch)
    index.sync()


def test_top_k_equals_brute_force_numpy_on_random_vectors(db: Database) -> None:
    """On 3,000 random unit vectors, every query's top-10 equals numpy's argsort of the dot products."""
    index = TableVectorIndex(db, "random", DIM)
    vectors = unit(3000, seed=1)
    fill(index, vectors)
    for query in unit(25, seed=2):
        expected = (np.argsort(-(vectors @ query))[:10] + 1).tolist()
        hits = index.search("c", query, 10)
        assert [h.item for h in hits] == expected
        assert [h.score for h in hits] == pytest.approx(np.sort(vectors @ query)[::-1][:10].tolist(), abs=1e-5)


def test_a_table_loaded_in_pages_is_held_whole(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading 100 rows 7 at a time (the page size is 20,000) holds all 100, each once."""
    monkeypatch.setattr(vectors_module, "_PAGE", 7)
    writer = TableVectorIndex(db, "random", DIM)
    vectors = unit(100, seed=11)
    fill(writer, vectors)
    reader = TableVectorIndex(db, "random", DIM)
    reader.sync()
    assert reader.count("c") == 100
    assert [h.item for h in reader.search("c", vectors[41], 1)] == [42]


def test_a_filter_gives_the_exact_top_k_among_allowed_items(db: Database) -> None:
    """With a filter allowing one item in 97, the answer is brute force over the allowed items only."""
    index = TableVectorIndex(db, "random", DIM)
    vectors = unit(3000, seed=3)
    fill(index, vectors)
    allowed = np.arange(1, 3001)[np.arange(1, 3001) % 97 == 0]
    query = unit(1, seed=4)[0]
    expected = allowed[np.argsort(-(vectors[allowed - 1] @ query))][:5].tolist()
    hits = index.search("c", query, 5, accept=lambda items: {i for i in items if i % 97 == 0})
    assert [h.item for h in hits] == expected


def test_an_item_scores_by_its_best_chunk_and_appears_once(db: Database) -> None:
    """Several chunks of one item count once, with the best chunk's similarity."""
    index = TableVectorIndex(db, "random", DIM)
    vectors = unit(4, seed=5)
    with db.write() as conn:
        index.add(conn, "c", [(1, 0), (1, 1), (1, 2), (2, 0)], vectors)
    index.sync()
    hits = index.search("c", vectors[2], 5)
    assert [h.item for h in hits] == [1, 2]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert index.scores("c", vectors[1], [1, 2])[1] == pytest.approx(1.0, abs=1e-5)


def test_another_instance_sees_added_and_deleted_vectors(
    db: Database, tmp_path: Path, database_url: str | None
) -> None:
    """A second index on the same store loads rows the first wrote and drops rows it deleted."""
    writer = TableVectorIndex(db, "random", DIM)
    other_db = open_db(tmp_path, database_url)
    reader = TableVectorIndex(other_db, "random", DIM)
    try:
        vectors = unit(50, seed=6)
        fill(writer, vectors)
        reader.sync()
        assert reader.count("c") == 50
        with db.write() as conn:
            conn.execute("DELETE FROM vectors WHERE item <= 10")
        assert sorted(reader.sync()) == list(range(1, 11))
        assert reader.count("c") == 40
        assert 5 not in {h.item for h in reader.search("c", vectors[4], 50)}
    finally:
        other_db.close()


def test_collections_are_searched_separately(db: Database) -> None:
    """Items of one collection never show up in another's results."""
    index = TableVectorIndex(db, "random", DIM)
    vectors = unit(20, seed=7)
    fill(index, vectors[:10], collection="events")
    fill(index, vectors[10:], collection="files", first=11)
    assert {h.item for h in index.search("events", vectors[12], 20)} == set(range(1, 11))


def test_a_model_of_another_dimension_replaces_the_old_vectors(db: Database) -> None:
    """Opening the index for another dimension removes the old vectors instead of mixing them."""
    old = TableVectorIndex(db, "model-a", DIM)
    fill(old, unit(10, seed=8))
    new = TableVectorIndex(db, "model-a", 2 * DIM)
    assert new.other_model_count() == 10
    assert new.delete_other_models() == 10
    new.sync()
    assert new.count() == 0
    assert [tuple(r) for r in db.query("SELECT model_id, dim FROM vector_models")] == [("model-a", 2 * DIM)]


def test_vectors_of_the_wrong_shape_are_refused(db: Database) -> None:
    """add() checks that there is one vector of the index's dimension per key."""
    index = TableVectorIndex(db, "random", DIM)
    with db.write() as conn, pytest.raises(ValueError, match="dimension"):
        index.add(conn, "c", [(1, 0)], np.zeros((1, DIM + 1), dtype=np.float32))


def test_vectors_committed_out_of_id_order_are_all_loaded(db: Database, engine: str) -> None:
    """Rows with vseq N+2 then N+1 committed in that order (no write lock): a warm index loads both."""
    index = TableVectorIndex(db, "random", DIM)
    vectors = unit(3, seed=9)
    fill(index, vectors[:1])
    top = db.query("SELECT MAX(vseq) FROM vectors")[0][0]

    def insert(vseq: int, item: int) -> Write:
        def write(conn: Connection) -> None:
            conn.execute(
                "INSERT INTO vectors (vseq, collection, item, chunk, model, vector) VALUES (?, 'c', ?, 0, ?, ?)",
                (vseq, item, index.model, vectors[item - 1].tobytes()),
            )

        return write

    between: list[set[int]] = []

    def look() -> None:
        index.sync()
        between.append({h.item for h in index.search("c", vectors[0], 10)})

    commit_lower_after_higher(db, engine, lower=insert(top + 1, 2), higher=insert(top + 2, 3), between=look)
    index.sync()
    assert between == [{1, 3}]
    assert index.count("c") == 3
    assert index.search("c", vectors[1], 1)[0].item == 2


def test_a_delete_committed_after_a_later_delete_is_still_applied(db: Database, engine: str) -> None:
    """Tombstones tseq N+2 then N+1 committed in that order (no write lock): a warm index drops both items."""
    index = TableVectorIndex(db, "random", DIM)
    vectors = unit(4, seed=10)
    fill(index, vectors)
    with db.write() as conn:
        conn.execute("DELETE FROM vectors WHERE item = 4")
    assert index.sync() == [4]  # the index follows tombstones from here
    top = db.query("SELECT MAX(tseq) FROM vector_tombstones")[0][0]

    def delete(item: int, tseq: int) -> Write:
        def write(conn: Connection) -> None:
            conn.execute("DELETE FROM vectors WHERE item = ?", (item,))
            # The trigger's tombstone gets the id this writer would have drawn had it started first
            # (a no-op on PostgreSQL, where the interleaving draws it so).
            conn.execute(
                "UPDATE vector_tombstones SET tseq = ? WHERE tseq = (SELECT MAX(tseq) FROM vector_tombstones)", (tseq,)
            )

        return write

    between: list[list[int]] = []

    def look() -> None:
        between.append(sorted(index.sync()))

    commit_lower_after_higher(db, engine, lower=delete(1, top + 1), higher=delete(3, top + 2), between=look)
    assert between == [[3]]
    assert index.sync() == [1]
    assert index.count("c") == 1
    assert [h.item for h in index.search("c", vectors[0], 10)] == [2]


@pytest.mark.postgres_only  # SQLite has no server to drop a connection
def test_the_index_reconnects_when_the_server_drops_its_connection(db: Database, engine: str) -> None:
    """PostgreSQL ends the index's connection: the next sync reconnects, reloads and holds every row."""
    backends = "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'"
    before = {row[0] for row in db.query(backends)}
    index = TableVectorIndex(db, "random", DIM)
    vectors = unit(20, seed=12)
    fill(index, vectors[:10])
    watcher = {row[0] for row in db.query(backends)} - before
    assert len(watcher) == 1  # the index's own connection, opened by its first sync
    db.query("SELECT pg_terminate_backend(?)", (watcher.pop(),))
    fill(index, vectors[10:], first=11)
    assert index.count("c") == 20
    assert [h.item for h in index.search("c", vectors[14], 1)] == [15]
