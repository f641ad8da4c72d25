"""SQLite tables of events: the migrations that create and upgrade them."""

from __future__ import annotations

from ...engine import Migration

MIGRATIONS: list[Migration] = [
    (
        "events",
        1,
        """
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id TEXT NOT NULL UNIQUE,
            ts TEXT NOT NULL,
            kind TEXT NOT NULL,
            topic TEXT,
            tool TEXT,
            text TEXT,
            data TEXT,
            tags TEXT NOT NULL DEFAULT '[]',
            metrics TEXT NOT NULL DEFAULT '{}',
            inputs TEXT NOT NULL DEFAULT '[]',
            outputs TEXT NOT NULL DEFAULT '[]',
            severity INTEGER NOT NULL DEFAULT 2,
            run_id TEXT NOT NULL,
            graph_id TEXT,
            node_id TEXT
        );
        CREATE INDEX events_ts ON events (ts);
        CREATE INDEX events_kind ON events (kind, seq);
        CREATE INDEX events_tool ON events (tool, seq);
        CREATE INDEX events_run ON events (run_id, seq);
        CREATE TABLE event_values (
            seq INTEGER NOT NULL,
            event_id TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            value TEXT NOT NULL,
            tool TEXT,
            ts TEXT NOT NULL
        );
        CREATE INDEX event_values_name ON event_values (name, seq);
        CREATE INDEX event_values_event ON event_values (event_id);
        -- Bumped by forget so other processes' hot windows know to rebuild.
        CREATE TABLE event_log_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO event_log_state (key, value) VALUES ('forget_epoch', 0);
        """,
    ),
    (
        "events",
        2,
        # One row per (event, name), the last output of that name, as new writes store it:
        # "the latest value" then follows from seq alone, with no tie to break by rowid.
        """
        DELETE FROM event_values WHERE rowid NOT IN (SELECT MAX(rowid) FROM event_values GROUP BY event_id, name);
        """,
    ),
]
