"""SQLite tables of files: the migrations that create and upgrade them."""

from __future__ import annotations

from ...engine import Migration

MIGRATIONS: list[Migration] = [
    (
        "files",
        1,
        """
        -- The latest state of every path ever written; sha256 is NULL once deleted.
        CREATE TABLE files (
            namespace TEXT NOT NULL,
            path TEXT NOT NULL,
            sha256 TEXT,
            bytes INTEGER NOT NULL,
            version INTEGER NOT NULL,
            updated_at TEXT NOT NULL,
            updated_by TEXT NOT NULL,
            reason TEXT NOT NULL,
            -- What this server last put on disk; differs from sha256 while an update is pending.
            projected_sha TEXT,
            PRIMARY KEY (namespace, path)
        ) WITHOUT ROWID;
        CREATE INDEX files_pending ON files (namespace, path) WHERE projected_sha IS NOT sha256;
        -- Every version of every path, in commit order: the history and the audit log.
        CREATE TABLE file_versions (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            namespace TEXT NOT NULL,
            path TEXT NOT NULL,
            version INTEGER NOT NULL,
            op TEXT NOT NULL,
            sha256 TEXT,
            old_sha TEXT,
            bytes INTEGER NOT NULL,
            ts TEXT NOT NULL,
            actor TEXT NOT NULL,
            reason TEXT NOT NULL,
            UNIQUE (namespace, path, version)
        );
        CREATE INDEX file_versions_namespace ON file_versions (namespace, seq);
        CREATE TABLE file_transcripts (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            namespace TEXT NOT NULL,
            ts TEXT NOT NULL,
            message TEXT NOT NULL
        );
        CREATE INDEX file_transcripts_namespace ON file_transcripts (namespace, seq);
        """,
    ),
    (
        "files",
        2,
        """
        -- gc asks, under the write lock, whether a few blobs are still referenced: answer it by index.
        CREATE INDEX file_versions_sha ON file_versions (sha256);
        """,
    ),
    (
        "files",
        3,
        """
        -- How the writer of each version was opened (audit, keep_versions): keep_content = 0 drops the
        -- content once a newer version replaces it; audited = 0 keeps the version out of the audit log.
        ALTER TABLE file_versions ADD COLUMN keep_content INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE file_versions ADD COLUMN audited INTEGER NOT NULL DEFAULT 1;
        """,
    ),
]
