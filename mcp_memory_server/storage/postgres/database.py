"""The shared engine: one PostgreSQL database (or one schema in it) for many processes on many hosts.

Statements arrive in the capabilities' portable SQL with ``?`` placeholders and are
rewritten once (cached) to psycopg's ``%s``. Each thread has its own connection, in
autocommit mode; :meth:`PostgresDatabase.write` opens a transaction and takes one advisory
lock per store first, which gives every write the same guarantee as SQLite's
``BEGIN IMMEDIATE``: a read-check-write sequence (compare-and-swap, dedup, the lab's
parent check) is atomic across every process on every host, and ids are drawn in commit
order. Writes by different stores (schemas) in one database do not wait for each other.

Freshness: every write bumps ``store_version`` in its own transaction. Caches ask
:meth:`data_version` (one indexed read) before they answer, so a write acknowledged by any
process is seen by the next read on any other (a NOTIFY would not do: it is delivered
asynchronously and could arrive after that read).
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.adapt import Loader
from psycopg.pq import TransactionStatus

from ...errors import InvalidInput, StorageError
from ...ids import utc_now
from ..engine import MIGRATIONS_TABLE, Migration, pending_migrations, unencodable_text
from .dialect import PostgresDialect
from .fulltext import PostgresFullText
from .schema import MIGRATIONS

if TYPE_CHECKING:
    from ..vectors import VectorIndex

__all__ = ["PostgresConnection", "PostgresDatabase"]

_LOCK_TIMEOUT = "60s"


class PostgresDatabase:
    """Thread-safe access to one store in a PostgreSQL database.

    Args:
        url: a libpq URL, ``postgresql://user:password@host:5432/db``; a store in its own
            schema adds ``?options=-csearch_path%3Dname`` (the schema is created if absent).
    """

    dialect = PostgresDialect()
    IntegrityError: type[Exception] = pg_errors.IntegrityError
    migrations: Sequence[Migration] = MIGRATIONS

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()
        self._all: list[psycopg.Connection[Any]] = []
        self._all_lock = threading.Lock()
        self._closed = False
        self._schema: str | None = None
        self._lock_key = 0

    @functools.cached_property
    def fulltext(self) -> PostgresFullText:
        return PostgresFullText(self)

    @property
    def location(self) -> str:
        parts = psycopg.conninfo.conninfo_to_dict(self.url)
        parts.pop("password", None)
        return f"postgresql database {parts.get('dbname', '')!s} on {parts.get('host', 'localhost')!s}" + (
            f" (schema {self._schema})" if self._schema and self._schema != "public" else ""
        )

    # -- connections ---------------------------------------------------------------------------

    @property
    def conn(self) -> PostgresConnection:
        conn: PostgresConnection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._connect()
            self._local.conn = conn
            self._local.depth = 0
        return conn

    def _connect(self) -> PostgresConnection:
        """A new connection, remembered for close(); none once the store is closed (it would outlive close())."""
        if self._closed:
            raise StorageError("the store is closed; open it again")
        try:
            raw = psycopg.connect(self.url, autocommit=True)
        except psycopg.Error as exc:
            raise StorageError(f"cannot connect to the PostgreSQL database at {self.location}: {exc}") from exc
        raw.adapters.register_loader("numeric", _NumberLoader)
        raw.row_factory = _row_factory
        if self._schema is None:
            self._schema = _first(raw.execute("SELECT current_schema()").fetchone()) or _search_path_schema(raw)
            digest = hashlib.blake2b(f"mcp-memory-server:{self._schema}".encode(), digest_size=8).digest()
            self._lock_key = int.from_bytes(digest, "big", signed=True)
        with self._all_lock:
            self._all.append(raw)
        return PostgresConnection(raw)

    def close(self) -> None:
        self._closed = True
        with self._all_lock:
            for raw in self._all:
                with suppress(psycopg.Error):
                    raw.close()
            self._all.clear()
        self._local = threading.local()

    # -- transactions --------------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[PostgresConnection]:
        """A write transaction holding this store's advisory lock; nested calls join the outer one."""
        conn = self.conn
        if self._local.depth:
            self._local.depth += 1
            try:
                yield conn
            finally:
                self._local.depth -= 1
            return
        raw = conn.raw
        try:
            raw.execute("BEGIN")
            raw.execute(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'")
            raw.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
        except psycopg.Error as exc:
            _rollback(raw)
            raise _storage_error(exc) from exc
        self._local.depth = 1
        try:
            yield conn
            raw.execute("UPDATE store_version SET version = version + 1")
            raw.execute("COMMIT")
        except BaseException as exc:
            _rollback(raw)
            if isinstance(exc, psycopg.Error) and not isinstance(exc, pg_errors.IntegrityError):
                raise _error(exc) from exc
            raise
        finally:
            self._local.depth = 0

    @contextmanager
    def snapshot(self) -> Iterator[PostgresConnection]:
        conn = self.conn
        if conn.in_transaction:
            yield conn
            return
        conn.raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            yield conn
        finally:
            _rollback(conn.raw)

    @contextmanager
    def foreign_keys_off(self) -> Iterator[PostgresConnection]:
        """A write in which references between records are not checked (a forensic graph import).

        PostgreSQL cannot switch a foreign key off for one transaction without superuser
        rights, so references that an import may leave dangling are checked by triggers
        (``storage/postgres/schema``) that stand aside while ``mcp_memory.unchecked`` is on,
        a setting local to this transaction.
        """
        with self.write() as conn:
            conn.raw.execute("SET LOCAL mcp_memory.unchecked = 'on'")
            yield conn

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        return self.conn.execute(sql, params).fetchall()

    def watcher(self) -> PostgresConnection:
        return self._connect()

    def data_version(self, conn: Any) -> int:
        return int(conn.execute("SELECT version FROM store_version").fetchone()[0])

    def vector_index(self, model_id: str, dim: int) -> VectorIndex:
        """pgvector's HNSW index when the database has the extension (or the role may create it), else the exact matrix."""
        from .pgvector import open_vector_index

        return open_vector_index(self, model_id, dim)

    def reserve_ids(self, conn: Any, table: str, count: int) -> int:
        # The table's key is an identity column named seq; the write lock makes the block consecutive.
        # One round trip: take the next id and move the sequence past the block in the same statement.
        row = conn.execute(
            "SELECT setval(s, nextval(s) + ? - 1) - ? + 1 FROM pg_get_serial_sequence(?, 'seq') AS s",
            (count, count, table),
        ).fetchone()
        return int(row[0])

    # -- schema --------------------------------------------------------------------------------

    def migrate(self, migrations: Sequence[Migration]) -> None:
        """Apply the migrations this store has not seen yet, in one transaction under the store's lock.

        Several processes opening a new database at once queue on the lock; the first
        creates the tables and the others find them applied.

        Raises:
            StorageError: the store was written by a newer version of this program.
        """
        conn = self.conn
        raw = conn.raw
        schema = self._schema or "public"
        try:
            raw.execute("BEGIN")
            raw.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
            raw.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            raw.execute(MIGRATIONS_TABLE)
            raw.execute("CREATE TABLE IF NOT EXISTS store_version (version BIGINT NOT NULL)")
            raw.execute("INSERT INTO store_version SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM store_version)")
            applied = {(r[0], r[1]) for r in raw.execute("SELECT component, version FROM schema_migrations")}
            for component, version, script in pending_migrations(migrations, applied, self.location):
                raw.execute(script.encode())  # bytes: no placeholder parsing, several statements at once
                raw.execute(
                    "INSERT INTO schema_migrations (component, version, applied_at) VALUES (%s, %s, %s)",
                    (component, version, utc_now()),
                )
            raw.execute("UPDATE store_version SET version = version + 1")
            raw.execute("COMMIT")
        except BaseException as exc:
            _rollback(raw)
            if isinstance(exc, psycopg.Error):
                raise _storage_error(exc) from exc
            raise

    def schema_versions(self) -> dict[str, int]:
        rows = self.query("SELECT component, MAX(version) FROM schema_migrations GROUP BY component")
        return {row[0]: int(row[1]) for row in rows}

    def size_bytes(self) -> int:
        row = self.query(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class AS c"
            " JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'"
        )
        return int(row[0][0])


class PostgresConnection:
    """A psycopg connection that speaks the capabilities' ``?`` SQL and our errors."""

    __slots__ = ("raw",)

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != TransactionStatus.IDLE

    @property
    def closed(self) -> bool:
        return self.raw.closed

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        try:
            if parameters:
                _check_int64(parameters)
                return self.raw.execute(_translate(sql), parameters)
            return self.raw.execute(sql.encode())
        except psycopg.Error as exc:
            raise _error(exc) from exc
        except OverflowError as exc:
            raise _too_large() from exc
        except UnicodeEncodeError as exc:
            raise unencodable_text() from exc

    def executemany(self, sql: str, seq_of_parameters: Iterable[Sequence[Any]]) -> psycopg.Cursor[Any]:
        cursor = self.raw.cursor()
        try:
            cursor.executemany(_translate(sql), seq_of_parameters)
        except psycopg.Error as exc:
            raise _error(exc) from exc
        except OverflowError as exc:
            raise _too_large() from exc
        except UnicodeEncodeError as exc:
            raise unencodable_text() from exc
        return cursor

    def close(self) -> None:
        self.raw.close()


@functools.lru_cache(maxsize=4096)
def _translate(sql: str) -> str:
    """``?`` placeholders to ``%s``, and literal ``%`` to ``%%``, leaving quoted text alone."""
    out: list[str] = []
    quote: str | None = None
    for char in sql:
        if quote:
            if char == quote:
                quote = None
            out.append("%%" if char == "%" else char)
        elif char in ("'", '"'):
            quote = char
            out.append(char)
        elif char == "?":
            out.append("%s")
        elif char == "%":
            out.append("%%")
        else:
            out.append(char)
    return "".join(out)


@functools.lru_cache(maxsize=512)
def _row_class(names: tuple[str, ...]) -> type[tuple[Any, ...]]:
    index = {name: i for i, name in enumerate(names)}

    class Row(tuple[Any, ...]):
        """A row readable by position or by column name, like ``sqlite3.Row``."""

        __slots__ = ()

        def __getitem__(self, key: Any) -> Any:
            if isinstance(key, str):
                return tuple.__getitem__(self, index[key])
            return tuple.__getitem__(self, key)

        def keys(self) -> list[str]:
            return list(names)

    return Row


def _row_factory(cursor: psycopg.Cursor[Any]) -> Any:
    description = cursor.description
    if description is None:
        return tuple
    row = _row_class(tuple(column.name for column in description))
    return lambda values: row(values)


class _NumberLoader(Loader):
    """``numeric`` (what SUM and AVG of integers return) as int when whole, else float, like SQLite."""

    def load(self, data: Any) -> int | float:
        text = bytes(data).decode()
        if "." in text or "e" in text.lower() or text in ("NaN", "Infinity", "-Infinity"):
            return float(text)
        return int(text)


def _first(row: Any) -> Any:
    return None if row is None else row[0]


def _search_path_schema(raw: psycopg.Connection[Any]) -> str:
    """The first schema of the search path, when it does not exist yet (migrate creates it)."""
    path = _first(raw.execute("SHOW search_path").fetchone()) or "public"
    first = str(path).split(",")[0].strip().strip('"')
    return "public" if first in ("", "$user") else first


def _rollback(raw: psycopg.Connection[Any]) -> None:
    if raw.closed:
        return
    with suppress(psycopg.Error):
        if raw.info.transaction_status != TransactionStatus.IDLE:
            raw.execute("ROLLBACK")


_INT64 = range(-(2**63), 2**63)


def _check_int64(parameters: Sequence[Any]) -> None:
    """Refuse an integer SQLite could not bind, so both engines answer it alike.

    psycopg sends a larger one as ``numeric``; a comparison with a BIGINT column then
    simply matches nothing (a huge version is "not found", a huge cursor an empty page)
    where SQLite says the number is too large.
    """
    for value in parameters:
        if type(value) is int and value not in _INT64:
            raise OverflowError(value)


def _too_large() -> InvalidInput:
    return InvalidInput("a number is too large: integers must fit in 64 bits (-2**63 .. 2**63-1); use a smaller value")


def _error(exc: psycopg.Error) -> Exception:
    """Our error for what the caller sent; integrity errors stay as they are for the capability to explain."""
    if isinstance(exc, pg_errors.IntegrityError):
        return exc
    if isinstance(exc, pg_errors.NumericValueOutOfRange):
        return _too_large()
    # psycopg refuses a NUL in a text parameter itself, before sending: a DataError without a SQLSTATE.
    nul_parameter = isinstance(exc, psycopg.DataError) and exc.sqlstate is None and "NUL" in str(exc)
    if nul_parameter or isinstance(exc, pg_errors.UntranslatableCharacter | pg_errors.CharacterNotInRepertoire):
        return InvalidInput(f"text holds a character PostgreSQL cannot store (a NUL, \\u0000): remove it ({exc})")
    if isinstance(exc, pg_errors.ProgramLimitExceeded):
        return InvalidInput(f"a value is too large for the database: {exc}")
    return _storage_error(exc)


def _storage_error(exc: psycopg.Error) -> StorageError:
    if isinstance(exc, pg_errors.DiskFull):
        return StorageError("the disk holding the PostgreSQL database is full; free space and retry")
    if isinstance(exc, pg_errors.LockNotAvailable):
        return StorageError(f"the store stayed locked by another process for {_LOCK_TIMEOUT}; retry")
    if isinstance(exc, pg_errors.ReadOnlySqlTransaction | pg_errors.InsufficientPrivilege):
        return StorageError(f"the database refused the write: {exc}; check the role's privileges")
    if isinstance(exc, psycopg.OperationalError):
        return StorageError(f"the PostgreSQL connection failed: {exc}; check that the server is up and retry")
    return StorageError(f"database error: {exc}")
