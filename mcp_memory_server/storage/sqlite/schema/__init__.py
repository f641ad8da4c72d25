"""Every table of the embedded engine, by the capability that owns it; applied in order on open."""

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
    # The size of each blob the artifact writer stored (or stats once had to stat), so the
    # counters' triggers (stats.py) never need the blob folder. A digest names its content, so
    # a cached size can never go stale; gc removes the rows of the blobs it deletes.
    ("blob_sizes", 1, "CREATE TABLE blob_sizes (sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL) WITHOUT ROWID"),
    # The counts and sizes memory_stats reads, kept by triggers (see stats.py).
    *stats.MIGRATIONS,
    stats.VECTOR_COUNTERS,
]
