"""Keyed memories: which namespace holds which key's memory, at which saved version."""

from __future__ import annotations

from ...engine import Migration

MIGRATIONS: list[Migration] = [
    (
        "keyed",
        1,
        """
        CREATE TABLE keyed_memories (
            namespace TEXT PRIMARY KEY,
            memory_key TEXT NOT NULL,
            version BIGINT NOT NULL,
            saved_at TEXT NOT NULL
        );
        """,
    )
]
