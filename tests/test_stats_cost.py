"""memory_stats costs the same filesystem work at 10 blobs as at 200: counts and sizes come from the database.

Filesystem calls are counted, not timed: an audit hook sees every directory listing in
any thread (the in-process MCP client serves tools on worker threads), and a profile hook
counts ``os`` calls (stat included) made by a direct ``MemoryStore.stats()``.
"""

from __future__ import annotations

import itertools
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from _mcp import call
from mcp import Client

from mcp_memory_server.server import build_server
from mcp_memory_server.store import MemoryStore, blob_references

pytestmark = pytest.mark.anyio

_LISTINGS: Counter[str] = Counter()
_LISTING_EVENTS = ("os.scandir", "os.listdir", "os.walk", "glob.glob")
_listening = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _listening and event in _LISTING_EVENTS:
        _LISTINGS[event] += 1


sys.addaudithook(_audit)  # cannot be removed; idle unless _listening


def os_calls(action: Callable[[], object]) -> Counter[str]:
    """The ``os`` functions (stat, scandir, …) ``action`` called on this thread, by name."""
    seen: Counter[str] = Counter()

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "c_call" and getattr(arg, "__module__", None) in ("posix", "nt", "os"):
            seen[arg.__name__] += 1

    sys.setprofile(profile)
    try:
        action()
    finally:
        sys.setprofile(None)
    return seen


def fill(store: MemoryStore, blobs: int) -> None:
    for i in range(blobs):
        store.artifacts.save_text(f"blob number {i} " + "x" * i, kind="note")


@pytest.mark.parametrize("blobs", [10, 200])
def test_warm_stats_makes_no_more_os_calls_at_200_blobs_than_at_10(tmp_path: Path, blobs: int) -> None:
    with MemoryStore.open(tmp_path / "s") as store:
        fill(store, blobs)
        first = store.stats()
        assert first.counts["blobs"] == blobs
        on_disk = sum(p.stat().st_size for p in (tmp_path / "s" / "blobs").rglob("*") if p.is_file())
        assert first.sizes["blob_bytes"] == on_disk  # the cached sizes are the real ones
        calls = os_calls(store.stats)
    assert not {"scandir", "listdir", "stat", "lstat"} & set(calls), calls


@pytest.mark.sqlite_only  # page_count and page_size are SQLite's PRAGMAs over its one file
def test_the_database_size_is_its_page_count_times_page_size(tmp_path: Path) -> None:
    with MemoryStore.open(tmp_path / "s") as store:
        fill(store, 3)
        pages = store.db.query("PRAGMA page_count")[0][0] * store.db.query("PRAGMA page_size")[0][0]
        assert store.stats().sizes["database_bytes"] == pages > 0


async def test_memory_stats_over_mcp_lists_no_directory_at_any_blob_count(
    tmp_path: Path, fresh_database_url: Callable[[], str | None]
) -> None:
    global _listening
    counts = {}
    for blobs in (10, 200):
        with MemoryStore.open(tmp_path / f"s{blobs}", database_url=fresh_database_url()) as store:
            fill(store, blobs)
            async with Client(build_server(store)) as client:
                assert (await call(client, "memory_stats"))["counts"]["blobs"] == blobs  # warms the size cache
                _LISTINGS.clear()
                _listening = True
                try:
                    stats = await call(client, "memory_stats")
                finally:
                    _listening = False
            assert stats["counts"]["blobs"] == blobs
            counts[blobs] = sum(_LISTINGS.values())
    assert counts == {10: 0, 200: 0}


def test_blobs_count_what_records_reference_not_what_waits_for_gc(tmp_path: Path) -> None:
    """After gc removes the records, their blobs (kept on disk for gc's grace hour) are no longer counted."""
    with MemoryStore.open(tmp_path / "s") as store:
        fill(store, 4)
        assert store.stats().counts["blobs"] == 4
        assert store.gc(older_than_days=0, dry_run=False).records_removed == 4
        stats = store.stats()
        assert stats.counts["blobs"] == 0 and stats.sizes["blob_bytes"] == 0
        assert sum(1 for _ in store.blobs.digests()) == 4  # still on disk, young: gc's to remove later


# -- counters: stats reads what the engine keeps, exactly ---------------------------------------------


def fill_everything(store: MemoryStore, n: int) -> None:
    """``n`` artifacts, events and graph nodes (each linked to the previous), ``n // 10`` files."""
    with store.db.write():  # one transaction: the filling is not what these tests are about
        for i in range(n):
            store.artifacts.save_text(f"record {i}", kind="note")
    store.events.record_many([{"kind": "observation", "data": {"i": i}} for i in range(n)])
    for i in range(n // 10):
        store.files.write(f"notes/{i}.md", f"file {i}")
    ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"stats:{i}")) for i in range(n)]
    nodes = [
        {"id": node_id, "node_type": "semantic", "payload": {"fact": f"fact {i}"}} for i, node_id in enumerate(ids)
    ]
    store.graph.write(nodes, [{"from_id": a, "to_id": b, "label": "NEXT"} for a, b in itertools.pairwise(ids)])


def work_of(store: MemoryStore, action: Callable[[], object], *, plans: bool = True) -> int:
    """How much the engine did for ``action``'s statements on this thread, deterministically.

    SQLite: virtual-machine steps, and (``plans``) each SELECT's plan must scan no table but
    the fixed ones (a COUNT(*) is a single step, so the plans catch what the steps cannot).
    PostgreSQL: rows the transaction read from tables and indexes.
    """
    if store.db.dialect.name == "sqlite":
        steps = 0
        statements: list[str] = []

        def step() -> int:
            nonlocal steps
            steps += 1
            return 0  # go on

        conn: Any = store.db.conn
        conn.set_progress_handler(step, 1)
        conn.set_trace_callback(statements.append)
        try:
            action()
        finally:
            conn.set_progress_handler(None, 1)
            conn.set_trace_callback(None)
        for sql in statements if plans else ():
            if sql.lstrip().upper().startswith("SELECT"):
                plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
                scans = [line for line in plan if line.startswith("SCAN") and not line.startswith(_FIXED_SCANS)]
                assert not scans, (sql, plan)
        return steps
    # The backend's counts not yet sent to the statistics collector (they include earlier
    # transactions', and nothing is sent while a transaction is open): the difference across
    # the action, inside one transaction, is the action's own.
    read = (
        "SELECT coalesce(sum(seq_tup_read), 0) + coalesce(sum(idx_tup_fetch), 0)"
        " FROM pg_stat_xact_user_tables WHERE schemaname = current_schema()"
    )
    with store.db.snapshot():
        before = int(store.db.query(read)[0][0])
        action()
        return int(store.db.query(read)[0][0]) - before


# Tables of a fixed size whatever the store holds: the counters, the schema versions.
_FIXED_SCANS = ("SCAN store_counters", "SCAN schema_migrations")

# A control that must read every event (no index serves it).
_SCAN = "SELECT max(data) FROM events"


def test_stats_does_the_same_database_work_at_500_records_as_at_10(
    tmp_path: Path, fresh_database_url: Callable[[], str | None]
) -> None:
    """Counted as engine work (deterministic), not time; a scan of the events, the control, does grow."""
    work, control = {}, {}
    for n in (10, 500):
        with MemoryStore.open(tmp_path / f"s{n}", database_url=fresh_database_url()) as store:
            fill_everything(store, n)
            stats = store.stats()
            assert stats.counts["events"] == stats.counts["artifacts"] == stats.counts["graph_nodes"] == n
            assert stats.counts["graph_edges"] == n - 1 and stats.counts["files"] == n // 10
            work[n] = work_of(store, store.stats)
            control[n] = work_of(store, lambda: store.db.query(_SCAN), plans=False)
    assert work[10] == work[500], work
    assert control[500] > control[10] * 10, control  # the meter does see a scan grow


def fresh_counts(store: MemoryStore) -> dict[str, Any]:
    """What stats must say, counted from scratch: COUNT(*) per table, the union of blob references, stat per blob."""

    def count(sql: str) -> int:
        return int(store.db.query(sql)[0][0])

    referenced = {row[0] for sql in blob_references() for row in store.db.query(sql)}
    model = store.db.query("SELECT model FROM vector_models WHERE model_id = ?", (store.embedder.model_id,))
    embedded = model and count(f"SELECT COUNT(*) FROM vectors WHERE model = {int(model[0][0])} AND chunk = 0")
    return {
        "counts": {
            "artifacts": count("SELECT COUNT(*) FROM artifacts"),
            "events": count("SELECT COUNT(*) FROM events"),
            "files": count("SELECT COUNT(*) FROM files WHERE sha256 IS NOT NULL"),
            "file_versions": count("SELECT COUNT(*) FROM file_versions"),
            "graph_nodes": count("SELECT COUNT(*) FROM graph_nodes"),
            "graph_edges": count("SELECT COUNT(*) FROM graph_edges"),
            "lab_runs": count("SELECT COUNT(*) FROM lab_runs"),
            "blobs": len(referenced),
        },
        "blob_bytes": sum(store.blobs.size(digest) for digest in referenced),
        "documents": count("SELECT COUNT(*) FROM search_docs"),
        "embedded_documents": embedded or 0,
    }


def said(store: MemoryStore) -> dict[str, Any]:
    stats = store.stats()
    return {"counts": stats.counts, "blob_bytes": stats.sizes["blob_bytes"],
            "documents": stats.model["documents"], "embedded_documents": stats.model["embedded_documents"]}  # fmt: skip


def node(name: str, **fields: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"stats:{name}")), "node_type": "semantic",
            "payload": {"fact": name}, **fields}  # fmt: skip


def test_the_counters_stay_exact_through_every_kind_of_write(
    tmp_path: Path, fresh_database_url: Callable[[], str | None], embedding_model: Any
) -> None:
    """Saves, dedup, shared blobs, directories, deletes, gc, forget, file history, archives, graph
    cascades and dangling imports, lab runs, vectors: after each step stats equals a fresh count."""
    with MemoryStore.open(tmp_path / "s", database_url=fresh_database_url()) as store:
        checks = 0

        def check() -> None:
            nonlocal checks
            assert said(store) == fresh_counts(store), f"after step {checks}"
            checks += 1

        check()
        first = store.artifacts.save_text("same words", kind="note")
        store.artifacts.save_text("same words", kind="note")  # dedup: the same record
        store.artifacts.save_text("same words", kind="other")  # a second record of one blob
        store.artifacts.save_text("pinned words", kind="note", pin=True)
        tree = tmp_path / "tree"
        (tree / "sub").mkdir(parents=True)
        (tree / "a.txt").write_text("same words")  # a blob a text artifact has too
        (tree / "sub" / "b.txt").write_text("bee")
        (tree / "sub" / "c.txt").write_text("bee")  # the same blob twice in one directory
        store.artifacts.save_file(tree, kind="dataset")
        check()
        store.artifacts.delete(first.artifact_id)
        check()
        store.events.record(kind="keep", data={"x": 1})
        store.events.record_many([{"kind": "drop", "data": {"i": i}} for i in range(20)])
        check()
        store.events.forget(kinds=["drop"], dry_run=False)
        check()
        store.files.write("a.md", "one")
        store.files.write("a.md", "two")
        store.files.write("b.md", "one")  # a blob two paths share
        store.files.delete("a.md")
        check()
        store.files.restore("a.md", 1)
        store.files.export("default", tmp_path / "archive")
        store.files.import_(tmp_path / "archive", "copy")
        check()
        a, b, c = node("a"), node("b"), node("c")
        store.graph.write([a, b, c], [{"from_id": a["id"], "to_id": b["id"], "label": "R"},
                                      {"from_id": c["id"], "to_id": a["id"], "label": "R"}])  # fmt: skip
        check()
        assert store.graph.delete_nodes([a["id"]]) == 1  # its two edges go by cascade
        check()
        dangling = {"agent_id": "", "exported_at": "2025-01-01T00:00:00Z", "schema_version": "1.0",
                    "nodes": [node("d")], "edges": [{"source_id": node("d")["id"], "target_id": node("ghost")["id"],
                                                     "edge_type": "DERIVED_FROM"}]}  # fmt: skip
        store.graph.import_snapshot(dangling, allow_dangling_edges=True)
        check()
        store.lab.log("baseline", "keep", {"val_bpb": 1.0}, commit="c0")
        store.lab.log("wider", "discard", {"val_bpb": 1.1}, commit="c1")
        check()
        assert store.search.refresh() > 0  # vectors for every document
        check()
        store.search.reindex()  # every vector deleted and made again
        check()
        report = store.gc(older_than_days=0, dry_run=False)
        assert report.records_removed > 0
        check()
        # gc kept the pinned note and the two runs' summaries (a run's artifacts live as long as it does)
        assert said(store)["counts"]["artifacts"] == 3


def test_a_store_from_before_the_counters_gets_them_counted_on_open(
    tmp_path: Path, fresh_database_url: Callable[[], str | None]
) -> None:
    """The migration backfills every counter once; blob sizes no table recorded are stat'ed once by stats."""
    url = fresh_database_url()
    with MemoryStore.open(tmp_path / "s", database_url=url) as store:
        fill_everything(store, 30)
        tree = tmp_path / "tree"
        tree.mkdir()
        (tree / "x.bin").write_bytes(b"x" * 100)
        store.artifacts.save_file(tree, kind="dataset")
        expected = fresh_counts(store)
        _forget_counters(store)
    with MemoryStore.open(tmp_path / "s", database_url=url) as store:
        assert store.db.query("SELECT value FROM store_counters WHERE name = 'blobs_unsized'")[0][0] == 2
        assert said(store) == expected  # the directory's manifest and file: stat'ed now, once
        assert store.db.query("SELECT value FROM store_counters WHERE name = 'blobs_unsized'")[0][0] == 0
        assert not {"stat", "lstat"} & set(os_calls(store.stats))
        assert said(store) == expected


def _forget_counters(store: MemoryStore) -> None:
    """Make the store what an older version left: no counters, no triggers, no sizes cached."""
    with store.db.write() as conn:
        if store.db.dialect.name == "sqlite":
            triggers = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]
            for name in triggers:
                if name.startswith(("count_", "blob_refs_")):
                    conn.execute(f"DROP TRIGGER {name}")
        else:
            functions = conn.execute(
                "SELECT p.proname FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace"
                " WHERE n.nspname = current_schema()"
                " AND (p.proname LIKE 'count%' OR p.proname LIKE 'blob_refs%' OR p.proname LIKE 'store_count%')"
            ).fetchall()
            for (name,) in functions:
                conn.execute(f"DROP FUNCTION {name} CASCADE")  # its triggers with it
            conn.execute("DROP TABLE store_counter_deltas")
        conn.execute("DROP TABLE blob_refs")
        conn.execute("DROP TABLE store_counters")
        conn.execute("DELETE FROM blob_sizes")
        conn.execute(
            "DELETE FROM schema_migrations WHERE component = 'stats' OR (component = 'vectors' AND version = 2)"
        )


def test_writers_at_once_on_one_store_leave_the_counters_exact(
    tmp_path: Path, fresh_database_url: Callable[[], str | None]
) -> None:
    """Four stores opened on one database (as replicas or processes are) writing at once."""
    url = fresh_database_url()
    stores = [MemoryStore.open(tmp_path / "s", database_url=url) for _ in range(4)]
    try:

        def write(k: int) -> None:
            store = stores[k]
            for i in range(15):
                store.events.record_many([{"kind": "w", "data": {"k": k, "i": i, "j": j}} for j in range(5)])
                store.artifacts.save_text(f"shared {i}", kind=f"writer{k}")  # the same blobs from every writer
                store.files.write(f"w{k}/{i % 3}.md", f"writer {k} round {i}")
            if k == 0:
                store.events.forget(kinds=["w"], dry_run=False)  # deletes while the others insert

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(write, range(4)))
        assert said(stores[1]) == fresh_counts(stores[1])
    finally:
        for store in stores:
            store.close()
