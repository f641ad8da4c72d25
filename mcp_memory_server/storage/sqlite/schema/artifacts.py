"""SQLite tables of artifacts: the migrations that create and upgrade them."""

from __future__ import annotations

from ...engine import Migration

MIGRATIONS: list[Migration] = [
    (
        "artifacts",
        1,
        """
        CREATE TABLE artifacts (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            artifact_id TEXT NOT NULL UNIQUE,
            sha256 TEXT NOT NULL,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            mime TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            is_dir INTEGER NOT NULL DEFAULT 0,
            labels TEXT NOT NULL DEFAULT '{}',
            metrics TEXT NOT NULL DEFAULT '{}',
            tags TEXT NOT NULL DEFAULT '[]',
            run_id TEXT NOT NULL,
            graph_id TEXT,
            node_id TEXT,
            created_at TEXT NOT NULL,
            pinned INTEGER NOT NULL DEFAULT 0,
            preview TEXT NOT NULL DEFAULT '',
            dedup_key TEXT NOT NULL UNIQUE
        );
        CREATE INDEX artifacts_kind ON artifacts (kind, seq);
        CREATE INDEX artifacts_sha ON artifacts (sha256);
        CREATE INDEX artifacts_run ON artifacts (run_id, seq);
        -- Every blob a record needs (a directory needs its manifest and each file).
        CREATE TABLE artifact_blobs (
            artifact_id TEXT NOT NULL REFERENCES artifacts (artifact_id) ON DELETE CASCADE,
            sha256 TEXT NOT NULL,
            PRIMARY KEY (artifact_id, sha256)
        );
        CREATE INDEX artifact_blobs_sha ON artifact_blobs (sha256);
        """,
    ),
    # The content address of another artifact that previews this one (a chart's thumbnail, a
    # report's chart), as AetherGraph's records carry it; NULL when there is none.
    ("artifacts", 2, "ALTER TABLE artifacts ADD COLUMN preview_uri TEXT"),
]
