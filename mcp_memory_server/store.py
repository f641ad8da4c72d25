"""``MemoryStore``: one data directory opened as a library — the real product behind the tools and CLI."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .config import Config
from .core._context import StoreContext
from .core._paths import LiveTree
from .errors import InvalidInput, NotFound, StorageError
from .ids import new_id
from .storage import open_database
from .storage.blobs import remove_orphaned_temps
from .storage.engine import Connection
from .storage.open_blobs import open_blob_store
from .storage.staging import StagingLedger

# The capabilities, their models and the embedder are imported where they are first used, not
# here: a server opens its store before answering ``initialize``, and loads them after (README,
# "Start-up").
if TYPE_CHECKING:
    from .core.artifacts import Artifacts
    from .core.events import EventLog
    from .core.files import Files
    from .core.graph import GraphMemory
    from .core.keyed import KeyedMemories
    from .core.lab import Lab
    from .core.search import SearchIndex
    from .embeddings import Embedder
    from .models import GcReport, Stats

__all__ = ["MemoryStore", "blob_references"]


# What stats() counts, in its answer's order: the counters named so in store_counters.
_COUNTED = ("artifacts", "events", "files", "file_versions", "graph_nodes", "graph_edges", "lab_runs", "blobs")

# A blob younger than this is left alone. Not what keeps referenced blobs safe (that is the
# check under the write lock, see gc), but it spares a writer the work of restoring a blob it
# just stored, and protects writes by an older version of this program during an upgrade.
_GC_GRACE = timedelta(hours=1)
# Blobs judged and deleted per write transaction, and the time one may take: bounded so
# that writers wait milliseconds, not the length of the whole sweep.
_GC_BATCH = 200
_GC_BATCH_SECONDS = 0.05


def blob_references() -> list[str]:
    """Each capability names the blobs its records reference (its tables live in storage/<engine>/schema)."""
    from .core import artifacts, files

    return [artifacts.BLOB_REFERENCES, files.BLOB_REFERENCES]


def _referenced(conn: Connection, digests: Sequence[str] | None) -> set[str]:
    """Which of ``digests`` (all, if None) some record references, as seen by ``conn``'s transaction."""
    if digests is None:
        return {row[0] for sql in blob_references() for row in conn.execute(sql)}
    if not digests:
        return set()
    marks = ",".join("?" * len(digests))
    return {
        row[0]
        for sql in blob_references()
        for row in conn.execute(f"SELECT sha256 FROM ({sql}) AS r WHERE sha256 IN ({marks})", list(digests))
    }


class MemoryStore:
    """A data directory: ``memory.db`` (SQLite, WAL) plus ``blobs/``.

    Open it with :meth:`open`; capabilities are attributes (``artifacts``, ``events``, …).
    Several processes may open the same directory at once.

    Raises:
        StorageError: the directory cannot be created or the store is from a newer version.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.data_dir = config.resolved_data_dir
        parent = self.data_dir.parent
        if not (config.create_data_dir or config.data_dir_is_default or parent.is_dir()):
            # A typo such as /tmp/memroy/store would otherwise start a new, empty store silently.
            raise StorageError(
                f"the data directory {self.data_dir} cannot be created: its parent {parent} does not exist; "
                "check the path, or pass create_data_dir=true to create the missing folders"
            )
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the data directory {self.data_dir}: {exc.strerror}") from exc
        self.run_id = config.run_id or new_id("run")
        self.db = open_database(config, self.data_dir)
        self.blobs = open_blob_store(config, self.data_dir)
        self.blobs.remove_stale_temps()
        # The live files' temps too, even if this run never touches files (a killed writer's leftovers).
        LiveTree(self.data_dir / "files", durable=False).remove_stale_temps()
        # And what killed exports, snapshots and materialisations staged, wherever they wrote it.
        StagingLedger(self.data_dir).sweep()
        remove_orphaned_temps(  # materialisations by versions that kept no staging records
            (self.data_dir / "materialized").glob(".*.tmp-*"), lambda name: name.rsplit(".tmp-", 1)[1]
        )
        try:
            self.db.migrate(self.db.migrations)
        except BaseException:
            self.db.close()  # a refused store (newer schema, unreachable server) leaves no connection open
            raise
        self.ctx = StoreContext(config, self.db, self.blobs, self.data_dir, self.run_id)

    @property
    def description(self) -> str:
        """Where this store keeps things, for start-up lines: the data directory, and the database if elsewhere."""
        if self.config.database_url:
            return f"{self.data_dir}, records in {self.db.location}"
        return str(self.data_dir)

    @classmethod
    def open(cls, data_dir: str | os.PathLike[str] | None = None, **settings: Any) -> MemoryStore:
        """Open (creating if needed) the store in ``data_dir``; ``settings`` are :class:`Config` fields."""
        return cls(Config.load({"data_dir": Path(data_dir) if data_dir else None, **settings}))

    def close(self) -> None:
        if "search" in self.__dict__:
            self.search.close()
        self.db.close()

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @cached_property
    def artifacts(self) -> Artifacts:
        from .core.artifacts import Artifacts

        return Artifacts(self.ctx, search=self.search)

    @cached_property
    def events(self) -> EventLog:
        from .core.events import EventLog

        return EventLog(self.ctx, search=self.search)

    @cached_property
    def graph(self) -> GraphMemory:
        from .core.graph import GraphMemory

        return GraphMemory(self.ctx, search=self.search)

    @cached_property
    def files(self) -> Files:
        from .core.files import Files

        return Files(self.ctx, search=self.search)

    @cached_property
    def memories(self) -> KeyedMemories:
        """Flyte-style keyed memories saved under ``memory_root``: ``memories.get_or_create(key)``, ``save()``."""
        from .core.keyed import KeyedMemories

        return KeyedMemories(self.ctx, self.files)

    @cached_property
    def lab(self) -> Lab:
        """The experiment ledger: novelty checks, decision packets, champion board, morning report."""
        from .core.lab import Lab

        return Lab(self.ctx, self.embedder, self.artifacts)

    @cached_property
    def embedder(self) -> Embedder:
        """The embedding model; created idle, loaded on first need or by ``embedder.start()``."""
        from .embeddings import Embedder

        return Embedder(self.config.embed_model, threads=self.config.embed_threads)

    @cached_property
    def search(self) -> SearchIndex:
        """Lexical, semantic and hybrid search over events, artifacts and files."""
        from .core.search import SearchIndex

        return SearchIndex(self.ctx, self.embedder)

    # -- maintenance -----------------------------------------------------------------------------

    def gc(self, *, older_than_days: float | None = None, dry_run: bool = True) -> GcReport:
        """Delete unpinned artifact records older than the retention, then unreferenced blobs.

        With ``older_than_days=None`` no record is removed; only unreferenced blobs are.
        Pinned records, and the artifacts a lab run references, are never removed.
        ``dry_run`` (the default) only reports.
        """
        from .core.lab.ledger import run_artifact_ids
        from .models import GcReport

        if older_than_days is not None and (
            isinstance(older_than_days, bool) or not isinstance(older_than_days, int | float) or older_than_days < 0
        ):
            raise InvalidInput(f"older_than_days must be a non-negative number, got {older_than_days!r}")
        expired: list[str] = []
        if older_than_days is not None:
            cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
            expired = self.artifacts.expired(cutoff.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        with self.db.write() as conn:
            if expired:
                held = run_artifact_ids(conn)
                expired = [artifact_id for artifact_id in expired if artifact_id not in held]
            # A dry run deletes inside a savepoint and rolls back, so it sees exactly what a real run would.
            conn.execute("SAVEPOINT gc")
            self.artifacts.delete_many(conn, expired)
            referenced = _referenced(conn, None) if dry_run else set()
            conn.execute("ROLLBACK TO gc" if dry_run else "RELEASE gc")
            if dry_run:
                conn.execute("RELEASE gc")
        grace_start = (datetime.now(UTC) - _GC_GRACE).timestamp()
        candidates = [d for d in self.blobs.digests() if d not in referenced and self._older(d, grace_start)]
        removed = freed = 0
        if dry_run:
            for digest in candidates:
                removed += 1
                freed += self._size(digest)
            candidates = []
        # The decision and the deletion happen under the write lock, a bounded batch at a time: a
        # writer confirms its blobs exist inside the transaction that references them
        # (PendingBlobs.confirm), so it either sees the blob gone and restores it, or commits its
        # reference first and this batch sees it. A batch never holds the lock for long.
        while candidates:
            batch, candidates = candidates[:_GC_BATCH], candidates[_GC_BATCH:]
            with self.db.write() as conn:
                held = _referenced(conn, batch)
                deadline = time.monotonic() + _GC_BATCH_SECONDS
                for n, digest in enumerate(batch):
                    if time.monotonic() > deadline:  # slow deletes (a busy disk): yield the lock, go on after
                        candidates = batch[n:] + candidates
                        break
                    if digest in held or not self._older(digest, grace_start):
                        continue
                    size = self._size(digest)
                    self.blobs.delete(digest)
                    conn.execute("DELETE FROM blob_sizes WHERE sha256 = ?", (digest,))  # keep it to blobs that exist
                    removed += 1
                    freed += size
        return GcReport(
            dry_run=dry_run, records_removed=len(expired), blobs_removed=removed, bytes_freed=freed,
            record_ids=expired[:100],
        )  # fmt: skip

    def _older(self, digest: str, grace_start: float) -> bool:
        try:
            return self.blobs.modified_at(digest) <= grace_start
        except NotFound:
            return False  # gone already (another gc)

    def _size(self, digest: str) -> int:
        try:
            return self.blobs.size(digest)
        except NotFound:
            return 0

    def stats(self) -> Stats:
        """Counts, sizes, schema versions and model status of this store.

        Counts and sizes are counters the engine keeps inside every writing transaction
        (``storage/<engine>/schema/stats.py``): one read of a table of a dozen rows, the same
        at ten records as at a million, and no filesystem call.
        """
        from .models import Stats

        counters = self._counters()
        return Stats(
            version=__version__,
            data_dir=str(self.data_dir),
            run_id=self.run_id,
            counts={name: counters.get(name, 0) for name in _COUNTED},
            sizes={"database_bytes": self.db.size_bytes(), "blob_bytes": counters.get("blob_bytes", 0)},
            schema_versions=dict(sorted(self.db.schema_versions().items())),  # one order on every engine
            model=self.search.status(counters),
            groups=list(self.config.groups),
        )

    def _counters(self) -> dict[str, int]:
        """Every counter, read in one statement (so one consistent moment of the store).

        A referenced blob whose size no writer recorded (referenced by an older version of
        this program, before the counters) is stat'ed here once and its size stored; after
        that, and for every blob written since, nothing is stat'ed.
        """
        counters = {row[0]: int(row[1]) for row in self.db.query("SELECT name, value FROM store_counters")}
        if counters.get("blobs_unsized", 0) > 0:
            counters["blob_bytes"] = counters.get("blob_bytes", 0) + self._size_unsized()
        return counters

    def _size_unsized(self) -> int:
        """Stat the referenced blobs of unknown size, record the sizes; returns the bytes found."""
        sizes = []
        for (digest,) in self.db.query("SELECT sha256 FROM blob_refs WHERE size IS NULL"):
            try:
                sizes.append((digest, self.blobs.size(digest)))
            except (NotFound, StorageError):  # a referenced blob missing on disk: counted, no size to add
                continue
        try:
            with self.db.write() as conn:
                conn.executemany("INSERT INTO blob_sizes (sha256, size) VALUES (?, ?) ON CONFLICT DO NOTHING", sizes)
                conn.executemany("UPDATE blob_refs SET size = ? WHERE sha256 = ? AND size IS NULL",
                                 [(size, digest) for digest, size in sizes])  # fmt: skip
        except StorageError:
            pass  # stats must still answer on a full or read-only disk (the sizes are added below)
        return sum(size for _, size in sizes)
