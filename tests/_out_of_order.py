"""Two writers that commit a lower id after a higher one, bypassing the store's write lock.

Through ``Database.write`` ids are drawn in commit order on both engines; caches that
follow a table by its ids must not rely on it (issue 11), and these helpers make the
other order happen on purpose.
"""

from __future__ import annotations

from collections.abc import Callable

from mcp_memory_server.storage import Database
from mcp_memory_server.storage.engine import Connection

__all__ = ["commit_lower_after_higher"]

Write = Callable[[Connection], None]


def commit_lower_after_higher(
    db: Database, engine: str, *, lower: Write, higher: Write, between: Callable[[], None]
) -> None:
    """Run ``higher`` and commit it, call ``between``, then commit ``lower``; each in its own transaction.

    On PostgreSQL ``lower`` is written first and stays uncommitted while ``higher`` commits,
    as two writers without the lock would interleave; SQLite has one writer at a time, so
    there ``lower`` is written after ``between``. Either way the lower id becomes visible last.
    """
    low, high = db.watcher(), db.watcher()
    try:
        if engine == "postgres":
            low.execute("BEGIN")
            lower(low)
        high.execute("BEGIN")
        higher(high)
        _commit(high, engine)
        between()
        if engine != "postgres":
            low.execute("BEGIN")
            lower(low)
        _commit(low, engine)
    finally:
        low.close()
        high.close()


def _commit(conn: Connection, engine: str) -> None:
    if engine == "postgres":
        # What Database.write does on commit, so readers' data_version sees the change.
        conn.execute("UPDATE store_version SET version = version + 1")
    conn.execute("COMMIT")
