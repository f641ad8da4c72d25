"""SQLite tables of vectors: the migrations that create and upgrade them."""

from __future__ import annotations

from ...engine import Migration

MIGRATIONS: list[Migration] = [
    (
        "vectors",
        1,
        """
        CREATE TABLE vector_models (
            model INTEGER PRIMARY KEY,
            model_id TEXT NOT NULL,
            dim INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (model_id, dim)
        );
        CREATE TABLE vectors (
            vseq INTEGER PRIMARY KEY AUTOINCREMENT,
            collection TEXT NOT NULL,
            item INTEGER NOT NULL,
            chunk INTEGER NOT NULL DEFAULT 0,
            model INTEGER NOT NULL REFERENCES vector_models (model),
            vector BLOB NOT NULL,
            UNIQUE (collection, item, chunk, model)
        );
        CREATE INDEX vectors_model ON vectors (model, vseq);
        CREATE TABLE vector_tombstones (
            tseq INTEGER PRIMARY KEY AUTOINCREMENT,
            model INTEGER NOT NULL,
            collection TEXT NOT NULL,
            item INTEGER NOT NULL
        );
        CREATE TRIGGER vectors_tombstone AFTER DELETE ON vectors BEGIN
            INSERT INTO vector_tombstones (model, collection, item) VALUES (old.model, old.collection, old.item);
        END;
        """,
    )
]
