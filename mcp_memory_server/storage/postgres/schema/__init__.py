"""Every table of the PostgreSQL engine, by the capability that owns it; applied in order on open.

Components and versions match ``storage/sqlite/schema`` one for one, so a store's schema
version means the same on both engines.
"""

from __future__ import annotations

from ...engine import Migration
from . import artifacts, events, files, graph, keyed, lab, search, stats, vectors

MIGRATIONS: list[Migration] = [
    *artifacts.MIGRATIONS,
    *events.MIGRATIONS,
    *files.MIGRATIONS,
    *graph.MIGRATIONS,
    *keyed.MIGRATIONS,
    *lab.MIGRATIONS,
    *search.MIGRATIONS,
    *vectors.MIGRATIONS,
    ("blob_sizes", 1, "CREATE TABLE blob_sizes (sha256 TEXT PRIMARY KEY, size BIGINT NOT NULL)"),
    # The counts and sizes memory_stats reads, kept by triggers (see stats.py).
    *stats.MIGRATIONS,
    stats.VECTOR_COUNTERS,
]
