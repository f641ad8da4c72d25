"""The vector index: exact top-k against brute-force numpy, chunks, filters, cross-instance freshness."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mcp_memory_server.storage import Database
from mcp_memory_server.storage.sqlite import SqliteDatabase
from mcp_memory_server.storage.vectors import SqliteVectorIndex

DIM = 32


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = SqliteDatabase(tmp_path / "v.db")
    database.migrate(database.migrations)
    yield database
    database.close()


def unit(rows: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def fill(index: SqliteVectorIndex, vectors: np.ndarray, *, collection: str = "c", first: int = 1) -> None:
    for start in range(0, len(vectors), 500):  # several transactions, as a running server makes them
        batch = vectors[start : start + 500]
        with index.db.write() as conn:
            index.add(conn, collection, [(first + start + i, 0) for i in range(len(batch))], batch)
    index.sync()


def test_top_k_equals_brute_force_numpy_on_random_vectors(db: Database) -> None:
    """On 3,000 random unit vectors, every query's top-10 equals numpy's argsort of the dot products."""
    index = SqliteVectorIndex(db, "random", DIM)
    vectors = unit(3000, seed=1)
    fill(index, vectors)
    for query in unit(25, seed=2):
        expected = (np.argsort(-(vectors @ query))[:10] + 1).tolist()
        hits = index.search("c", query, 10)
        assert [h.item for h in hits] == expected
        assert [h.score for h in hits] == pytest.approx(np.sort(vectors @ query)[::-1][:10].tolist(), abs=1e-5)


def test_a_filter_gives_the_exact_top_k_among_allowed_items(db: Database) -> None:
    """With a filter allowing one item in 97, the answer is brute force over the allowed items only."""
    index = SqliteVectorIndex(db, "random", DIM)
    vectors = unit(3000, seed=3)
    fill(index, vectors)
    allowed = np.arange(1, 3001)[np.arange(1, 3001) % 97 == 0]
    query = unit(1, seed=4)[0]
    expected = allowed[np.argsort(-(vectors[allowed - 1] @ query))][:5].tolist()
    hits = index.search("c", query, 5, accept=lambda items: {i for i in items if i % 97 == 0})
    assert [h.item for h in hits] == expected


def test_an_item_scores_by_its_best_chunk_and_appears_once(db: Database) -> None:
    """Several chunks of one item count once, with the best chunk's similarity."""
    index = SqliteVectorIndex(db, "random", DIM)
    vectors = unit(4, seed=5)
    with db.write() as conn:
        index.add(conn, "c", [(1, 0), (1, 1), (1, 2), (2, 0)], vectors)
    index.sync()
    hits = index.search("c", vectors[2], 5)
    assert [h.item for h in hits] == [1, 2]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert index.scores("c", vectors[1], [1, 2])[1] == pytest.approx(1.0, abs=1e-5)


def test_another_instance_sees_added_and_deleted_vectors(db: Database, tmp_path: Path) -> None:
    """A second index on the same file loads rows the first wrote and drops rows it deleted."""
    writer = SqliteVectorIndex(db, "random", DIM)
    other_db = SqliteDatabase(tmp_path / "v.db")
    reader = SqliteVectorIndex(other_db, "random", DIM)
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
    index = SqliteVectorIndex(db, "random", DIM)
    vectors = unit(20, seed=7)
    fill(index, vectors[:10], collection="events")
    fill(index, vectors[10:], collection="files", first=11)
    assert {h.item for h in index.search("events", vectors[12], 20)} == set(range(1, 11))


def test_a_model_of_another_dimension_replaces_the_old_vectors(db: Database) -> None:
    """Opening the index for another dimension removes the old vectors instead of mixing them."""
    old = SqliteVectorIndex(db, "model-a", DIM)
    fill(old, unit(10, seed=8))
    new = SqliteVectorIndex(db, "model-a", 2 * DIM)
    assert new.other_model_count() == 10
    assert new.delete_other_models() == 10
    new.sync()
    assert new.count() == 0
    assert [tuple(r) for r in db.query("SELECT model_id, dim FROM vector_models")] == [("model-a", 2 * DIM)]


def test_vectors_of_the_wrong_shape_are_refused(db: Database) -> None:
    """add() checks that there is one vector of the index's dimension per key."""
    index = SqliteVectorIndex(db, "random", DIM)
    with db.write() as conn, pytest.raises(ValueError, match="dimension"):
        index.add(conn, "c", [(1, 0)], np.zeros((1, DIM + 1), dtype=np.float32))
