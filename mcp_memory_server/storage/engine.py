"""The seam between capabilities and the engine that keeps their records.

A capability speaks to its tables through a :class:`Database`: portable SQL with ``?``
placeholders (the subset SQLite and PostgreSQL share: ``ON CONFLICT``, ``RETURNING``,
``IS DISTINCT FROM``, ``||``, ``COALESCE``), and, for what the engines spell differently
(JSON fields, full-text search, change notification, locks, migrations), a named method on
the database or its :class:`Dialect`. Each engine lives in its own folder
(``storage/sqlite/``, ``storage/postgres/``) and nothing outside ``storage/`` names one.

Why not an ORM or SQLAlchemy Core: the capabilities' SQL is ~95% the shared subset already,
their hot paths (bulk events, search) are tuned statements, and a query builder would
rewrite 150 statements for the 5% that differ. The differing 5% is what this seam names.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .vectors import VectorIndex

from ..errors import InvalidInput

__all__ = [
    "MIGRATIONS_TABLE",
    "Connection",
    "Cursor",
    "Database",
    "Dialect",
    "FullText",
    "Migration",
    "Row",
    "pending_migrations",
    "unencodable_text",
]

Migration = tuple[str, int, str]
"""``(component, version, sql_script)``; versions of one component start at 1 and rise by 1."""

MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " component TEXT NOT NULL, version INTEGER NOT NULL, applied_at TEXT NOT NULL,"
    " PRIMARY KEY (component, version))"
)


def unencodable_text() -> InvalidInput:
    """A str no driver can send (a lone surrogate, which UTF-8 cannot encode) reached a statement.

    The capabilities' validators refuse such text by field; an id or key passed straight to
    a lookup is not checked there, and the driver's UnicodeEncodeError would escape as is.
    """
    return InvalidInput("text contains a lone surrogate (U+D800..U+DFFF alone), which UTF-8 cannot encode; "
                        "send valid UTF-8 text")  # fmt: skip


def pending_migrations(
    migrations: Sequence[Migration], applied: set[tuple[str, int]], location: str
) -> list[Migration]:
    """The migrations not applied yet, in order; the same rule on every engine.

    Raises:
        StorageError: the store was written by a newer version of this program.
    """
    from ..errors import StorageError

    known: dict[str, int] = {}
    for component, version, _ in migrations:
        known[component] = max(known.get(component, 0), version)
    for component, version in applied:
        if version > known.get(component, 0):
            raise StorageError(
                f"{location} was written by a newer mcp-memory-server (schema {component} "
                f"v{version}, this version knows up to v{known.get(component, 0)}); "
                "upgrade mcp-memory-server to open it"
            )
    return [m for m in sorted(migrations, key=lambda m: (m[0], m[1])) if (m[0], m[1]) not in applied]


class Row(Protocol):
    """A result row: by position (``row[0]``) or by column name (``row["seq"]``)."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def keys(self) -> list[str]: ...

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def fetchmany(self, size: int = ..., /) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """One engine connection; statements use ``?`` placeholders on every engine."""

    @property
    def in_transaction(self) -> bool: ...

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any: ...

    def executemany(self, sql: str, seq_of_parameters: Iterable[Sequence[Any]], /) -> Any: ...

    def close(self) -> None: ...


class Dialect(Protocol):
    """SQL fragments the engines spell differently; each returns ``(sql, params)`` to splice in."""

    name: str

    def json_number(self, column: str, key: str) -> tuple[str, list[Any]]:
        """The number stored under top-level ``key`` of a JSON object column; NULL if absent or not a number."""
        ...

    def json_text(self, column: str, key: str) -> tuple[str, list[Any]]:
        """The string stored under ``key``; NULL if absent or not a string."""
        ...

    def json_bool(self, column: str, key: str) -> tuple[str, list[Any]]:
        """1 or 0 for a JSON boolean under ``key``; NULL otherwise."""
        ...

    def json_array_contains(self, column: str, value: str, key: str | None = None) -> tuple[str, list[Any]]:
        """True when the JSON array in ``column`` (or under its ``key``) holds the string ``value``."""
        ...

    def begin_snapshot(self) -> str:
        """The statement that opens one consistent read snapshot on a connection (ended by COMMIT)."""
        ...

    def insert_rows(self, conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert many whole rows at once, the engine's fastest way (constraints and triggers apply as usual)."""
        ...


class FullText(Protocol):
    """The engine's word index over ``search_docs``: matching, ranking and term statistics.

    Callers give query *terms* (lower-case words, see ``core.search.query_terms``); each
    engine spells its own match syntax. A document matches when it holds any of the terms
    (stemmed) in its text, metadata or context, weighted in that order. Scores: higher is better.
    """

    def catch_up(self) -> int:
        """Index documents committed since the last catch-up (by any process); returns how many."""
        ...

    def rebuild(self) -> None:
        """Rebuild the word index from ``search_docs``."""
        ...

    def top(self, terms: Sequence[str], limit: int) -> list[tuple[int, float]]:
        """The ``limit`` best ``(doc_id, score)`` of every source, best first."""
        ...

    def top_within(
        self, terms: Sequence[str], limit: int, source: str, join: str = "", where: str = "", params: Sequence[Any] = ()
    ) -> list[tuple[int, str, float]]:
        """The best ``(doc_id, item_id, score)`` of ``source`` whose documents (``d``) pass ``join``/``where``."""
        ...

    def doc_frequency(self, terms: Sequence[str], cap: int) -> dict[str, int]:
        """How many documents match each term, counted up to ``cap``."""
        ...


class Database(Protocol):
    """What a capability may ask of the engine; see ``storage/sqlite`` and ``storage/postgres``."""

    @property
    def dialect(self) -> Dialect: ...

    @property
    def fulltext(self) -> FullText:
        """The engine's word index over ``search_docs``."""
        ...

    @property
    def migrations(self) -> Sequence[Migration]:
        """This engine's tables, every capability's, applied in order by :meth:`migrate`."""
        ...

    @property
    def IntegrityError(self) -> type[Exception]:
        """Raised by a statement that breaks a constraint (unique, foreign key, check)."""
        ...

    @property
    def location(self) -> str:
        """Where the records live, for messages (a file path, or a URL without its password)."""
        ...

    @property
    def conn(self) -> Connection:
        """This thread's connection, outside any transaction each statement commits on its own."""
        ...

    def write(self) -> AbstractContextManager[Connection]:
        """A write transaction holding the store's write lock; nested calls join the outer one."""
        ...

    def snapshot(self) -> AbstractContextManager[Connection]:
        """One consistent read snapshot across several statements (joins an open transaction)."""
        ...

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        """Run a read statement on this thread's connection and return every row."""
        ...

    def watcher(self) -> Connection:
        """A connection of the caller's own, for caches that follow other processes' commits."""
        ...

    def data_version(self, conn: Connection) -> int:
        """A number that changes whenever anything committed since ``conn`` last asked."""
        ...

    def vector_index(self, model_id: str, dim: int) -> VectorIndex:
        """The index of one embedding model's vectors (``storage/vectors.py``): this engine's best kind."""
        ...

    def reserve_ids(self, conn: Connection, table: str, count: int) -> int:
        """Inside a write: the first of ``count`` (at least 1) consecutive new ids of ``table``'s key, which the caller inserts.

        Ids are never reused, not even after a delete.
        """
        ...

    def foreign_keys_off(self) -> AbstractContextManager[Connection]:
        """A write transaction in which foreign keys are not checked (a permissive graph import)."""
        ...

    def migrate(self, migrations: Sequence[Migration]) -> None: ...

    def schema_versions(self) -> dict[str, int]: ...

    def size_bytes(self) -> int:
        """How much space the records take in the engine."""
        ...

    def close(self) -> None: ...
