"""SQLite tables of lab: the migrations that create and upgrade them."""

from __future__ import annotations

from ...engine import Migration

MIGRATIONS: list[Migration] = [
    (
        "lab",
        1,
        """
        CREATE TABLE lab_runs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL UNIQUE,
            ts TEXT NOT NULL,
            branch TEXT,
            commit_sha TEXT,
            parent_commit TEXT,
            family TEXT,
            status TEXT NOT NULL CHECK (status IN ('keep', 'discard', 'crash')),
            description TEXT NOT NULL,
            hypothesis TEXT,
            tags TEXT NOT NULL DEFAULT '[]',
            notes TEXT,
            metrics TEXT NOT NULL DEFAULT '{}',
            error TEXT,
            artifacts TEXT NOT NULL DEFAULT '[]',
            novelty_guard TEXT,
            decision_packet TEXT,
            source TEXT,
            server_run_id TEXT NOT NULL
        );
        CREATE INDEX lab_runs_ts ON lab_runs (ts);
        CREATE INDEX lab_runs_commit ON lab_runs (commit_sha);
        CREATE INDEX lab_runs_status ON lab_runs (status, seq);
        CREATE TABLE lab_run_vectors (
            run_id TEXT PRIMARY KEY REFERENCES lab_runs (run_id) ON DELETE CASCADE,
            model_id TEXT NOT NULL,
            dim INTEGER NOT NULL,
            vector BLOB NOT NULL
        );
        """,
    )
]
