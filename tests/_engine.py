"""The engine's own consistency check of a store's records, on whichever engine the test runs.

SQLite: ``PRAGMA integrity_check`` of ``memory.db``. PostgreSQL (``MCP_MEMORY_DATABASE_URL``
set by conftest): amcheck's ``verify_heapam`` on every table of the store's schema and
``bt_index_check(..., heapallindexed)`` on every B-tree index, so a row missing from an
index, or a damaged page, is found the same way on both.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

__all__ = ["integrity", "own_records_env", "records_created"]


def integrity(data_dir: Path) -> list[tuple[str]]:
    """``[("ok",)]`` when the engine finds nothing wrong with the store in ``data_dir``, else one row per problem."""
    url = os.environ.get("MCP_MEMORY_DATABASE_URL")
    if not url:
        conn = sqlite3.connect(data_dir / "memory.db")
        try:
            return [(str(row[0]),) for row in conn.execute("PRAGMA integrity_check").fetchall()]
        finally:
            conn.close()
    return _postgres_integrity(url)


def records_created(data_dir: Path, database_url: str | None = None) -> bool:
    """Whether the store's record tables exist: ``memory.db`` in ``data_dir``, or the migrated schema on PostgreSQL.

    ``database_url``: the store's URL when it is not the test's own (``MCP_MEMORY_DATABASE_URL``).
    """
    url = database_url or os.environ.get("MCP_MEMORY_DATABASE_URL")
    if not url:
        return (data_dir / "memory.db").is_file()
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    return bool(row and row[0])


def own_records_env() -> dict[str, str]:
    """Environment for a server on one more, separate store (a module's shared server): a new schema on PostgreSQL.

    On SQLite its own data directory already separates it: nothing to add.
    """
    url = os.environ.get("MCP_MEMORY_DATABASE_URL")
    if not url:
        return {}
    from _postgres import sibling_schema_url

    return {"MCP_MEMORY_DATABASE_URL": sibling_schema_url(url)}


def _postgres_integrity(url: str) -> list[tuple[str]]:
    import psycopg

    problems: list[tuple[str]] = []
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.transaction():
            # One creator at a time: CREATE EXTENSION IF NOT EXISTS is not safe against a concurrent one.
            conn.execute("SELECT pg_advisory_xact_lock(7160801)")
            conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck SCHEMA public")
        relations = conn.execute(
            "SELECT c.oid, c.relname, c.relkind, am.amname FROM pg_class AS c"
            " JOIN pg_namespace AS n ON n.oid = c.relnamespace LEFT JOIN pg_am AS am ON am.oid = c.relam"
            " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i') ORDER BY c.relname"
        ).fetchall()
        if not any(kind == "r" for _, _, kind, _ in relations):
            return [(f"no tables in the store's schema ({url})",)]
        for oid, name, kind, method in relations:
            if kind == "r":
                for block, offset, attribute, message in conn.execute(
                    "SELECT blkno, offnum, attnum, msg FROM public.verify_heapam(%s)", (oid,)
                ):
                    problems.append((f"table {name} block {block} item {offset} column {attribute}: {message}",))
            elif method == "btree":
                try:
                    conn.execute("SELECT public.bt_index_check(%s, true)", (oid,))
                except psycopg.Error as exc:
                    problems.append((f"index {name}: {exc}",))
    return problems or [("ok",)]
