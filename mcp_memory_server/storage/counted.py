"""What the store's counters count: one declaration for both engines' stats migrations.

``storage/sqlite/schema/stats.py`` and ``storage/postgres/schema/stats.py`` turn these into
row triggers and statement triggers; a table added here is counted on both, and the blob
references stay the ones gc keeps (``files.BLOB_REFERENCES``, ``artifacts.BLOB_REFERENCES``).
Conditions are SQL over ``{row}`` (the new or old row); "" means every row.
"""

from __future__ import annotations

__all__ = ["BLOB_REFERENCES", "COUNTED"]

# (table, counter, condition): tables counted row for row.
COUNTED: list[tuple[str, str, str]] = [
    ("artifacts", "artifacts", ""),
    ("events", "events", ""),
    ("files", "files", "{row}.sha256 IS NOT NULL"),  # live paths; a deleted one keeps its row with sha256 NULL
    ("file_versions", "file_versions", ""),
    ("graph_nodes", "graph_nodes", ""),
    ("graph_edges", "graph_edges", ""),
    ("lab_runs", "lab_runs", ""),
    ("search_docs", "search_docs", ""),
]

# (table, condition): rows that reference a blob. File contents are referenced by a version
# written with keep_versions on, and by each live path's current content (its ``files`` row),
# which is what gc keeps: a version written with keep_versions off stops holding its content
# once it is replaced, and the ``files`` row moving on is the only write that says so. A blob
# named by both counts once.
BLOB_REFERENCES: list[tuple[str, str]] = [
    ("artifact_blobs", ""),
    ("file_versions", "{row}.sha256 IS NOT NULL AND {row}.keep_content = 1"),
    ("files", "{row}.sha256 IS NOT NULL"),
]
