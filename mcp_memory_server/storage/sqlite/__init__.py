"""The embedded default engine: SQLite in WAL mode, FTS5 for words, vectors in a table."""

from .database import SqliteDatabase, SqliteDialect

__all__ = ["SqliteDatabase", "SqliteDialect"]
