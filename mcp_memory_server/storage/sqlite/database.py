"""The embedded engine: one SQLite file in WAL mode, shared by threads and processes.

Each thread gets its own connection (SQLite connections must stay on the thread that
made them, and MCP runs plain tools on worker threads). Writes go through
:meth:`Database.write`, which takes the write lock up front (``BEGIN IMMEDIATE``) so a
read-check-write sequence is atomic across processes.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import InvalidInput, StorageError
from ...ids import utc_now
from ..engine import MIGRATIONS_TABLE, Connection, Migration, pending_migrations, unencodable_text
from .fulltext import SqliteFullText
from .schema import MIGRATIONS

if TYPE_CHECKING:
    from ..vectors import TableVectorIndex

__all__ = ["SqliteDatabase", "SqliteDialect"]

_BUSY_TIMEOUT_MS = 60_000
# Rows per multi-row INSERT in bulk writes: larger statements gain nothing measurable, and cost compile time.
_ROWS_PER_INSERT = 500


class SqliteDialect:
    """SQLite's JSON1 functions; a key is quoted into a JSON path (``$."key"``)."""

    name = "sqlite"

    def json_number(self, column: str, key: str) -> tuple[str, list[Any]]:
        path = _json_path(key)
        return (f"(CASE WHEN json_type({column}, ?) IN ('integer', 'real') THEN json_extract({column}, ?) END)",
                [path, path])  # fmt: skip

    def json_text(self, column: str, key: str) -> tuple[str, list[Any]]:
        path = _json_path(key)
        return f"(CASE WHEN json_type({column}, ?) = 'text' THEN json_extract({column}, ?) END)", [path, path]

    def json_bool(self, column: str, key: str) -> tuple[str, list[Any]]:
        path = _json_path(key)
        return (f"(CASE json_type({column}, ?) WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)", [path])

    def json_array_contains(self, column: str, value: str, key: str | None = None) -> tuple[str, list[Any]]:
        if key is None:
            return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE value = ?)", [value]
        return f"EXISTS (SELECT 1 FROM json_each({column}, ?) WHERE value = ?)", [_json_path(key), value]

    def begin_snapshot(self) -> str:
        """A deferred transaction: its snapshot starts at the first read and holds to the end."""
        return "BEGIN"

    def insert_rows(self, conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Multi-row INSERTs of up to ``_ROWS_PER_INSERT`` rows each.

        Not executemany: each of its rows is a statement of its own, and a statement that writes
        more than one row (an event's search document, written by a trigger) keeps a statement
        journal of every page it touches, so a row cost its pages twice. One statement per chunk
        journals each page once: about half the time per event, measured (bench_foundation).
        """
        if not rows:
            return
        assert isinstance(conn, sqlite3.Connection)
        width = len(columns)
        per_insert = max(1, min(_ROWS_PER_INSERT, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width))
        head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
        one = "(" + ", ".join("?" * width) + ")"
        for start in range(0, len(rows), per_insert):
            chunk = rows[start : start + per_insert]
            # Full chunks share one SQL text, so the connection's statement cache compiles it once.
            conn.execute(head + ", ".join([one] * len(chunk)), list(itertools.chain.from_iterable(chunk)))


def _json_path(key: str) -> str:
    # SQLite's JSON path has no escape for a quote inside a quoted key; callers refuse such keys.
    return f'$."{key}"'


class SqliteDatabase:
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

    dialect = SqliteDialect()
    IntegrityError = sqlite3.IntegrityError
    migrations: Sequence[Migration] = MIGRATIONS

    @property
    def location(self) -> str:
        return str(self.path)

    @functools.cached_property
    def fulltext(self) -> SqliteFullText:
        return SqliteFullText(self)

    # -- connections ---------------------------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (autocommit mode; use :meth:`write` for transactions)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            self._local.depth = 0
        return conn

    def _connect(self) -> sqlite3.Connection:
        """A new connection, remembered for close(); none once the store is closed (it would outlive close())."""
        if self._closed:
            raise StorageError("the store is closed; open it again")
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            _enable_wal(conn)
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
            if isinstance(exc, UnicodeEncodeError):
                raise unencodable_text() from exc
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
        except UnicodeEncodeError as exc:
            raise unencodable_text() from exc

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """One consistent read snapshot across several statements (a deferred transaction)."""
        conn = self.conn
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def watcher(self) -> sqlite3.Connection:
        """A connection of the caller's own (not this thread's), closed with the database."""
        return self._connect()

    def vector_index(self, model_id: str, dim: int) -> TableVectorIndex:
        """The exact in-memory matrix over the ``vectors`` table."""
        from ..vectors import TableVectorIndex

        return TableVectorIndex(self, model_id, dim)

    def data_version(self, conn: Connection) -> int:
        """``PRAGMA data_version``: changes whenever another connection commits."""
        return int(conn.execute("PRAGMA data_version").fetchone()[0])

    def reserve_ids(self, conn: Connection, table: str, count: int) -> int:
        # AUTOINCREMENT's counter never reuses a number, even after a delete; the caller's
        # explicit ids advance it, and the write lock keeps anyone else from taking them.
        counter = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
        return (counter[0] if counter else 0) + 1

    @contextmanager
    def foreign_keys_off(self) -> Iterator[sqlite3.Connection]:
        conn = self.conn
        if conn.in_transaction:
            # SQLite ignores the pragma inside a transaction.
            raise StorageError("an unchecked import cannot run inside another transaction; run it on its own")
        conn.execute("PRAGMA foreign_keys = OFF")
        try:
            with self.write() as inner:
                yield inner
        finally:
            conn.execute("PRAGMA foreign_keys = ON")

    def size_bytes(self) -> int:
        page_count = self.query("PRAGMA page_count")[0][0]
        page_size = self.query("PRAGMA page_size")[0][0]
        return int(page_count) * int(page_size)

    # -- schema --------------------------------------------------------------------------------

    def migrate(self, migrations: Sequence[Migration]) -> None:
        """Apply the migrations this store has not seen yet, in one transaction.

        Raises:
            StorageError: the store was written by a newer version of this program.
        """
        with self.write() as conn:
            conn.execute(MIGRATIONS_TABLE)
            applied = {(row[0], row[1]) for row in conn.execute("SELECT component, version FROM schema_migrations")}
            for component, version, script in pending_migrations(migrations, applied, str(self.path)):
                for statement in _statements(script):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (component, version, applied_at) VALUES (?, ?, ?)",
                    (component, version, utc_now()),
                )

    def schema_versions(self) -> dict[str, int]:
        rows = self.query("SELECT component, MAX(version) FROM schema_migrations GROUP BY component")
        return {row[0]: row[1] for row in rows}


def _enable_wal(conn: sqlite3.Connection) -> None:
    """``journal_mode = WAL``, retried: on a new file, processes switching it at once get SQLITE_BUSY
    straight away (the switch does not wait in the busy handler), though each would succeed a moment later."""
    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


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
