"""The SQLite metadata store: one WAL database shared by threads and processes.

Each thread gets its own connection (SQLite connections must stay on the thread that
made them, and MCP runs plain tools on worker threads). Writes go through
:meth:`Database.write`, which takes the write lock up front (``BEGIN IMMEDIATE``) so a
read-check-write sequence is atomic across processes.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..errors import InvalidInput, StorageError
from ..ids import utc_now

__all__ = ["Database", "Migration"]

Migration = tuple[str, int, str]
"""``(component, version, sql_script)``; versions of one component start at 1 and rise by 1."""

_BUSY_TIMEOUT_MS = 60_000


class Database:
    """Thread-safe access to ``memory.db``.

    Args:
        path: the database file; created if absent.
        synchronous: ``"full"`` fsyncs the WAL on every commit (survives power loss);
            ``"normal"`` survives a killed process but may lose the last commits on power loss.
    """

    def __init__(self, path: Path, *, synchronous: str = "full") -> None:
        self.path = path
        self._synchronous = synchronous.upper()
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._closed = False

    # -- connections ---------------------------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (autocommit mode; use :meth:`write` for transactions)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise StorageError("the store is closed; open it again")
            conn = self._connect()
            self._local.conn = conn
            self._local.depth = 0
        return conn

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            hint = ""
            if not os.access(self.path.parent, os.W_OK):
                # WAL needs memory.db-shm beside the database, even just to read it.
                hint = (
                    " (the data directory is read-only: a store needs to create memory.db-shm there; make it writable)"
                )
            raise StorageError(f"cannot open the database at {self.path}: {exc}{hint}") from exc
        with self._all_lock:
            self._all.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection this object opened, on any thread."""
        self._closed = True
        with self._all_lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
        self._local = threading.local()

    # -- transactions --------------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the database write lock; nested calls join the outer one.

        Raises:
            StorageError: the disk is full, the file is read-only, or SQLite failed otherwise.
        """
        conn = self.conn
        if self._local.depth:
            self._local.depth += 1
            try:
                yield conn
            finally:
                self._local.depth -= 1
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise _storage_error(exc) from exc
        self._local.depth = 1
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError):
                raise _storage_error(exc) from exc
            if isinstance(exc, OverflowError):
                raise _too_large() from exc
            raise
        finally:
            self._local.depth = 0

    def query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        """Run a read query on this thread's connection and return every row."""
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            raise _storage_error(exc) from exc
        except OverflowError as exc:
            raise _too_large() from exc

    def data_version(self) -> int:
        """A number that changes whenever another connection commits (``PRAGMA data_version``)."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    # -- schema --------------------------------------------------------------------------------

    def migrate(self, migrations: Sequence[Migration]) -> None:
        """Apply the migrations this store has not seen yet, in one transaction.

        Raises:
            StorageError: the store was written by a newer version of this program.
        """
        known: dict[str, int] = {}
        for component, version, _ in migrations:
            known[component] = max(known.get(component, 0), version)
        with self.write() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " component TEXT NOT NULL, version INTEGER NOT NULL, applied_at TEXT NOT NULL,"
                " PRIMARY KEY (component, version))"
            )
            applied = {(row[0], row[1]) for row in conn.execute("SELECT component, version FROM schema_migrations")}
            for component, version in applied:
                if version > known.get(component, 0):
                    raise StorageError(
                        f"{self.path} was written by a newer mcp-memory-server (schema {component} "
                        f"v{version}, this version knows up to v{known.get(component, 0)}); "
                        "upgrade mcp-memory-server to open it"
                    )
            for component, version, script in sorted(migrations, key=lambda m: (m[0], m[1])):
                if (component, version) in applied:
                    continue
                for statement in _statements(script):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (component, version, applied_at) VALUES (?, ?, ?)",
                    (component, version, utc_now()),
                )

    def schema_versions(self) -> dict[str, int]:
        rows = self.query("SELECT component, MAX(version) FROM schema_migrations GROUP BY component")
        return {row[0]: row[1] for row in rows}


def _statements(script: str) -> Iterator[str]:
    """Split a script into statements without ``executescript`` (which commits on its own)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    if buffer.strip():
        yield buffer.strip()


def _too_large() -> InvalidInput:
    """A Python int beyond SQLite's 64-bit range reached a query: always the caller's number."""
    return InvalidInput("a number is too large: integers must fit in 64 bits (-2**63 .. 2**63-1); use a smaller value")


def _storage_error(exc: sqlite3.OperationalError) -> StorageError:
    message = str(exc)
    if "full" in message:
        return StorageError("the disk holding the store is full; free space and retry")
    if "readonly" in message or "read-only" in message:
        return StorageError("the store is read-only; check the data directory's permissions")
    if "locked" in message or "busy" in message:
        return StorageError("the store stayed locked by another process for 60 s; retry")
    return StorageError(f"database error: {message}")
