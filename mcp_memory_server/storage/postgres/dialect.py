"""PostgreSQL's spelling of what the engines say differently: JSON fields read through ``jsonb``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from ..engine import Connection

__all__ = ["PostgresDialect"]


class PostgresDialect:
    """JSON columns are TEXT (as on SQLite, so both engines hand back the same strings), read as ``jsonb``."""

    name = "postgres"

    def json_number(self, column: str, key: str) -> tuple[str, list[Any]]:
        # numeric keeps a JSON integer an integer (3, not 3.0), as SQLite's json_extract does.
        return (f"(CASE WHEN jsonb_typeof(({column})::jsonb -> ?) = 'number'"
                f" THEN (({column})::jsonb ->> ?)::numeric END)", [key, key])  # fmt: skip

    def json_text(self, column: str, key: str) -> tuple[str, list[Any]]:
        return (f"(CASE WHEN jsonb_typeof(({column})::jsonb -> ?) = 'string' THEN ({column})::jsonb ->> ? END)",
                [key, key])  # fmt: skip

    def json_bool(self, column: str, key: str) -> tuple[str, list[Any]]:
        return (f"(CASE WHEN jsonb_typeof(({column})::jsonb -> ?) = 'boolean'"
                f" THEN CASE WHEN ({column})::jsonb ->> ? = 'true' THEN 1 ELSE 0 END END)", [key, key])  # fmt: skip

    def json_array_contains(self, column: str, value: str, key: str | None = None) -> tuple[str, list[Any]]:
        if key is None:
            return f"(COALESCE(({column})::jsonb, '[]'::jsonb) @> jsonb_build_array(?::text))", [value]
        return f"(COALESCE(({column})::jsonb -> ?, '[]'::jsonb) @> jsonb_build_array(?::text))", [key, value]

    def begin_snapshot(self) -> str:
        """REPEATABLE READ: every statement sees the same snapshot (READ COMMITTED takes one per statement)."""
        return "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

    def insert_rows(self, conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """COPY: one stream for every row, several times faster than a statement per row."""
        from .database import PostgresConnection, _error

        if not rows:
            return
        assert isinstance(conn, PostgresConnection)
        try:
            with conn.raw.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        except psycopg.Error as exc:
            raise _error(exc) from exc
