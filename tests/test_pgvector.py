"""pgvector: chosen when the database has the extension, the same answers as the exact matrix, HNSW past a size.

Tests marked ``pgvector`` need a server with the extension (``MCP_MEMORY_TEST_PG_BIN=pgserver``,
see ``tests/_postgres.py``); on one without it they are skipped, unless
``$MCP_MEMORY_TEST_REQUIRE_PGVECTOR`` is set (``.ci/run``'s pgvector step), when they fail.
The first test runs on every PostgreSQL server and checks that the choice follows the server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest

from mcp_memory_server import MemoryStore
from mcp_memory_server.storage.postgres import PostgresDatabase
from mcp_memory_server.storage.postgres import pgvector as pgvector_module
from mcp_memory_server.storage.postgres.pgvector import PgvectorIndex
from mcp_memory_server.storage.vectors import TableVectorIndex

pytestmark = pytest.mark.postgres_only

DIM = 32


def server_has_pgvector(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone() is not None


@pytest.fixture
def db(database_url: str) -> Iterator[PostgresDatabase]:
    database = PostgresDatabase(database_url)
    database.migrate(database.migrations)
    yield database
    database.close()


@pytest.fixture
def pg(db: PostgresDatabase, database_url: str) -> PostgresDatabase:
    """The test's store on a server with pgvector (else skipped, or failed where CI requires it)."""
    if not server_has_pgvector(database_url):
        if os.environ.get("MCP_MEMORY_TEST_REQUIRE_PGVECTOR"):
            pytest.fail("this PostgreSQL server has no pgvector, and $MCP_MEMORY_TEST_REQUIRE_PGVECTOR says it must")
        pytest.skip("this PostgreSQL server has no pgvector (MCP_MEMORY_TEST_PG_BIN=pgserver starts one that has)")
    return db


def unit(rows: int, seed: int, dim: int = DIM) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def fill(index: TableVectorIndex | PgvectorIndex, vectors: np.ndarray, collection: str = "c", first: int = 1) -> None:
    for start in range(0, len(vectors), 500):
        batch = vectors[start : start + 500]
        with index.db.write() as conn:
            index.add(conn, collection, [(first + start + i, 0) for i in range(len(batch))], batch)
    index.sync()


def brute_force(vectors: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    return (np.argsort(-(vectors @ query), kind="stable")[:k] + 1).tolist()


def test_the_index_is_pgvector_exactly_when_the_server_has_the_extension(
    db: PostgresDatabase, database_url: str
) -> None:
    """With pgvector on the server the store's index is pgvector's; without it (Debian's PostgreSQL) the exact matrix."""
    index = db.vector_index("random", DIM)
    try:
        columns = {row[0] for row in db.query("SELECT attname FROM pg_attribute WHERE attrelid = 'vectors'::regclass")}
        if server_has_pgvector(database_url):
            assert type(index) is PgvectorIndex
            assert "embedding" in columns
        else:
            assert type(index) is TableVectorIndex
            assert "embedding" not in columns
            vectors = unit(50, seed=1)
            fill(index, vectors)
            assert [h.item for h in index.search("c", vectors[9], 1)] == [10]
    finally:
        index.close()


@pytest.mark.pgvector
def test_a_role_that_cannot_create_the_extension_gets_the_matrix(pg: PostgresDatabase, database_url: str) -> None:
    """pgvector on the server but not in a new database, and a role without the right to create it: the matrix serves."""
    name = "novector_" + uuid.uuid4().hex[:12]
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {name} LOGIN")
        admin.execute(f"CREATE DATABASE {name} OWNER {name}")
    url = database_url.split("?")[0].replace("postgresql://postgres@", f"postgresql://{name}@").rsplit("/", 1)[0]
    other = PostgresDatabase(f"{url}/{name}")
    try:
        other.migrate(other.migrations)
        index = other.vector_index("random", DIM)
        assert type(index) is TableVectorIndex
        index.close()
    finally:
        other.close()
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
            admin.execute(f"DROP ROLE {name}")


@pytest.mark.pgvector
def test_a_small_collection_answers_exactly_what_the_matrix_answers(pg: PostgresDatabase) -> None:
    """3,000 vectors (under EXACT_ROWS): each query's top-10 is the matrix's, items and scores (within 1e-5)."""
    index = pg.vector_index("random", DIM)
    assert isinstance(index, PgvectorIndex)
    vectors = unit(3000, seed=2)
    fill(index, vectors)
    matrix = TableVectorIndex(pg, "random", DIM)  # the same rows, read from their bytes
    matrix.sync()
    for query in unit(25, seed=3):
        hits = index.search("c", query, 10)
        exact = matrix.search("c", query, 10)
        assert [h.item for h in hits] == [h.item for h in exact] == brute_force(vectors, query, 10)
        assert [h.score for h in hits] == pytest.approx([h.score for h in exact], abs=1e-5)
        items = [h.item for h in exact]
        assert index.scores("c", query, items) == pytest.approx(matrix.scores("c", query, items), abs=1e-5)
    matrix.close()
    index.close()


@pytest.mark.pgvector
def test_a_large_collection_is_searched_through_its_hnsw_index(
    pg: PostgresDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past EXACT_ROWS a search is an HNSW index scan (cosine ops, one partial index per collection), recall >= 0.95."""
    monkeypatch.setattr(pgvector_module, "EXACT_ROWS", 100)
    index = pg.vector_index("random", DIM)
    assert isinstance(index, PgvectorIndex)
    vectors = unit(3000, seed=4)
    fill(index, vectors)
    definition = pg.query(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ?",
        (f"vectors_hnsw_{index.model}_c",),
    )
    assert "USING hnsw" in definition[0][0] and "vector_cosine_ops" in definition[0][0]
    assert "collection = 'c'" in definition[0][0]
    text = pgvector_module._vector_text(unit(1, seed=5)[0])
    with pg.snapshot() as conn:
        conn.execute("SET LOCAL enable_seqscan = off")  # as the search sets it
        plan = [r[0] for r in conn.execute("EXPLAIN " + index._ranking_sql("c", exact=False), (text, text, 64))]
    assert any(f"Index Scan using vectors_hnsw_{index.model}_c" in line for line in plan), plan
    found = 0
    for query in unit(25, seed=6):
        hits = index.search("c", query, 10)
        found += len({h.item for h in hits} & set(brute_force(vectors, query, 10)))
        # Every score is the item's own cosine, as the matrix's.
        assert [h.score for h in hits] == pytest.approx([float(vectors[h.item - 1] @ query) for h in hits], abs=1e-5)
    assert found / 250 >= 0.95


@pytest.mark.pgvector
def test_a_selective_filter_gets_the_best_allowed_items_past_the_index(
    pg: PostgresDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a filter allowing 3 items in 3,000, candidates go past ef_search's ceiling to an exact ranking: all 3, in order."""
    monkeypatch.setattr(pgvector_module, "EXACT_ROWS", 100)
    index = pg.vector_index("random", DIM)
    vectors = unit(3000, seed=7)
    fill(index, vectors)
    query = unit(1, seed=8)[0]
    allowed = np.arange(1, 3001)[np.arange(1, 3001) % 997 == 0]
    asked: list[int] = []

    def accept(items: list[int]) -> set[int]:
        asked.append(len(items))
        return {i for i in items if i % 997 == 0}

    hits = index.search("c", query, 5, accept=accept)
    assert [h.item for h in hits] == allowed[np.argsort(-(vectors[allowed - 1] @ query))].tolist()
    assert len(asked) > 3  # 64, 256 and 1000 through the index, then exact rankings


@pytest.mark.pgvector
def test_collections_and_chunks_are_kept_apart(pg: PostgresDatabase) -> None:
    """Items of one collection never show up in another's results; an item counts once, by its best chunk."""
    index = pg.vector_index("random", DIM)
    vectors = unit(24, seed=9)
    fill(index, vectors[:10], collection="events")
    fill(index, vectors[10:20], collection="files", first=11)
    with pg.write() as conn:
        index.add(conn, "files", [(21, 0), (21, 1), (21, 2)], vectors[20:23])
    assert {h.item for h in index.search("events", vectors[12], 20)} == set(range(1, 11))
    hits = index.search("files", vectors[21], 20)
    assert hits[0].item == 21 and len(hits) == 11
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert index.scores("files", vectors[22], [21, 11])[21] == pytest.approx(1.0, abs=1e-5)
    names = {
        r[0]
        for r in pg.query(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND indexname LIKE 'vectors_hnsw_%'"
        )
    }
    assert names == {f"vectors_hnsw_{index.model}_events", f"vectors_hnsw_{index.model}_files"}


@pytest.mark.pgvector
def test_a_second_replica_sees_vectors_the_moment_they_commit(pg: PostgresDatabase, database_url: str) -> None:
    """Another process's index finds a committed vector without loading anything, and stops finding a deleted one."""
    writer = pg.vector_index("random", DIM)
    other = PostgresDatabase(database_url)
    reader = other.vector_index("random", DIM)
    try:
        reader.sync()  # from here the reader follows deletes
        vectors = unit(40, seed=10)
        with pg.write() as conn:
            writer.add(conn, "c", [(i + 1, 0) for i in range(40)], vectors)
        assert [h.item for h in reader.search("c", vectors[6], 1)] == [7]  # no sync in between
        with pg.write() as conn:
            conn.execute("DELETE FROM vectors WHERE item <= 10")
        assert 7 not in {h.item for h in reader.search("c", vectors[6], 40)}
        assert sorted(reader.sync()) == list(range(1, 11))  # what the indexer needs to re-embed after a reindex
        assert reader.count("c") == 30
    finally:
        reader.close()
        other.close()


@pytest.mark.pgvector
def test_vectors_written_without_an_embedding_are_filled_in(pg: PostgresDatabase, database_url: str) -> None:
    """Rows from before the extension, and from an older process after it, get their embedding and are found."""
    vectors = unit(30, seed=11)
    old = TableVectorIndex(pg, "random", DIM)  # the table as a version without pgvector wrote it
    fill(old, vectors[:20])
    index = pg.vector_index("random", DIM)
    assert index.count("c") == 20
    fill(old, vectors[20:], first=21)  # the bytes only, no embedding
    assert pg.query("SELECT COUNT(*) FROM vectors WHERE embedding IS NULL")[0][0] == 10
    index.sync()
    assert pg.query("SELECT COUNT(*) FROM vectors WHERE embedding IS NULL")[0][0] == 0
    assert [h.item for h in index.search("c", vectors[24], 1)] == [25]
    assert [h.score for h in index.search("c", vectors[3], 1)] == pytest.approx([1.0], abs=1e-5)
    old.close()


@pytest.mark.pgvector
def test_a_model_of_another_dimension_replaces_the_old_vectors_and_their_index(pg: PostgresDatabase) -> None:
    """A new model's index drops the old model's rows and HNSW indexes and builds its own, of its own dimension."""
    old = pg.vector_index("model-a", DIM)
    fill(old, unit(10, seed=12))
    new = pg.vector_index("model-a", 2 * DIM)
    assert new.delete_other_models() == 10
    vectors = unit(10, seed=13, dim=2 * DIM)
    fill(new, vectors)
    assert [h.item for h in new.search("c", vectors[4], 1)] == [5]
    names = [
        r[0]
        for r in pg.query(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND indexname LIKE 'vectors_hnsw_%'"
        )
    ]
    assert names == [f"vectors_hnsw_{new.model}_c"]
    definition = pg.query(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ?", (names[0],)
    )[0][0]
    assert f"vector({2 * DIM})" in definition


@pytest.mark.pgvector
@pytest.mark.usefixtures("embedding_model")
def test_a_store_searches_by_meaning_through_pgvector(pg: PostgresDatabase, tmp_path: Path) -> None:
    """A store on a database with pgvector embeds into the engine and finds a paraphrase, from another store too."""
    with MemoryStore.open(tmp_path / "a") as first, MemoryStore.open(tmp_path / "b") as second:
        first.events.record("note", text="the learning rate was far too high, so training diverged")
        first.events.record("note", text="lunch was a sandwich by the river")
        page = first.events.search("why did the optimisation blow up", mode="semantic", limit=1)
        assert [hit.event.text for hit in page.hits] == ["the learning rate was far too high, so training diverged"]
        assert isinstance(first.search.vectors(), PgvectorIndex)
        assert first.db.query("SELECT COUNT(*) FROM vectors WHERE embedding IS NULL")[0][0] == 0
        assert second.search.refresh() == 0  # the first store's vectors serve the second as they are
        again = second.events.search("why did the optimisation blow up", mode="semantic", limit=1)
        assert [hit.event.text for hit in again.hits] == [hit.event.text for hit in page.hits]
