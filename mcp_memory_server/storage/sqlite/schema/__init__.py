"""Every table of the embedded engine, by the capability that owns it; applied in order on open."""

from __future__ import annotations

from ...engine import Migration
from . import artifacts, events, files, graph, keyed, lab, search, vectors

MIGRATIONS: list[Migration] = [
    *artifacts.MIGRATIONS,
    *events.MIGRATIONS,
    *files.MIGRATIONS,
    *graph.MIGRATIONS,
    *keyed.MIGRATIONS,
    *lab.MIGRATIONS,
    *search.MIGRATIONS,
    *vectors.MIGRATIONS,
    # The size of each blob stats has seen, so stats never walks the blob folder. A digest names
    # its content, so a cached size can never go stale; gc may leave rows for deleted blobs, and
    # they are harmless because stats only counts digests that a record references.
    ("blob_sizes", 1, "CREATE TABLE blob_sizes (sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL) WITHOUT ROWID"),
]
