"""PostgreSQL tables of vectors: the migrations that create and upgrade them (same components and versions as SQLite)."""

from __future__ import annotations

from ...engine import Migration

MIGRATIONS: list[Migration] = []
