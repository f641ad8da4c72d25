"""SQLite counters behind ``memory_stats``: kept by triggers inside every writing transaction.

``stats()`` then reads one small table instead of counting every table and taking the
union of every blob reference, so its cost does not grow with the store.

- ``store_counters (name, value)``: one row per count (``artifacts``, ``events``, ``files``
  (live paths), ``file_versions``, ``graph_nodes``, ``graph_edges``, ``lab_runs``,
  ``search_docs``, ``blobs``, ``blob_bytes``, ``blobs_unsized``, and ``vectors:<model>``
  for each model's first-chunk vectors). Row triggers add or subtract one; only UPDATEs
  of rows that already exist, so no trigger statement can meet a conflict (inside a
  trigger, SQLite lets the outer statement's conflict policy, such as the files upsert's,
  override the trigger's own).
- ``blob_refs (sha256, refs, size)``: each referenced blob once, with how many reference
  rows (``artifact_blobs``, kept ``file_versions``, live ``files``) name it and its size. The first reference
  inserts the row, the last one's delete removes it, and triggers on ``blob_refs`` keep
  ``blobs`` and ``blob_bytes``. The size comes from the referencing row where it is
  there (``file_versions.bytes``) or from ``blob_sizes``, which the artifact writer fills
  in the same transaction; a size known to neither (a blob referenced by an older
  version of this program and never seen by stats) is NULL and counted in
  ``blobs_unsized``, and ``stats()`` stats such blobs once and fills the size in.

Foreign-key cascades (artifact → artifact_blobs, node → edges) delete through the child
tables' triggers, so their counts follow. Creating this backfills every counter from
the tables as they are (once, O(store size)).
"""

from __future__ import annotations

from ...counted import BLOB_REFERENCES, COUNTED
from ...engine import Migration

# The SQL for a referenced blob's size (over {row}; NULL if unknown), per referencing table.
_SIZES = {
    "artifact_blobs": "(SELECT size FROM blob_sizes WHERE sha256 = {row}.sha256)",
    "file_versions": "{row}.bytes",
    "files": "{row}.bytes",
}
_REFERENCES: list[tuple[str, str, str]] = [(table, _SIZES[table], where) for table, where in BLOB_REFERENCES]


def _bump(counter: str, delta: str) -> str:
    return f"UPDATE store_counters SET value = value + {delta} WHERE name = '{counter}';"


def _counted(table: str, counter: str, where: str) -> str:
    when_new = f" WHEN {where.format(row='new')}" if where else ""
    when_old = f" WHEN {where.format(row='old')}" if where else ""
    sql = f"""
        INSERT INTO store_counters (name, value)
        SELECT '{counter}', COUNT(*) FROM {table}{" WHERE " + where.format(row=table) if where else ""};
        CREATE TRIGGER count_{table}_ai AFTER INSERT ON {table}{when_new} BEGIN
            {_bump(counter, "1")}
        END;
        CREATE TRIGGER count_{table}_ad AFTER DELETE ON {table}{when_old} BEGIN
            {_bump(counter, "-1")}
        END;
    """
    if where:  # an update can move a row in or out of the count (a file deleted or restored)
        inside_new, inside_old = where.format(row="new"), where.format(row="old")
        sql += f"""
        CREATE TRIGGER count_{table}_au AFTER UPDATE ON {table} WHEN ({inside_new}) IS NOT ({inside_old}) BEGIN
            {_bump(counter, f"CASE WHEN {inside_new} THEN 1 ELSE -1 END")}
        END;
        """
    return sql


def _references(table: str, size: str, where: str) -> str:
    def holds(row: str) -> str:
        return f"({where.format(row=row)})" if where else "1"

    def add(row: str) -> str:
        # No upsert: inside a trigger the outer statement's conflict policy would apply to it.
        return f"""
            INSERT INTO blob_refs (sha256, refs, size) SELECT {row}.sha256, 0, {size.format(row=row)}
            WHERE {row}.sha256 IS NOT NULL AND {holds(row)}
              AND NOT EXISTS (SELECT 1 FROM blob_refs WHERE sha256 = {row}.sha256);
            UPDATE blob_refs SET refs = refs + 1, size = coalesce(size, {size.format(row=row)})
            WHERE sha256 = {row}.sha256 AND {holds(row)};
        """

    def remove(row: str) -> str:
        return f"""
            UPDATE blob_refs SET refs = refs - 1 WHERE sha256 = {row}.sha256 AND {holds(row)};
            DELETE FROM blob_refs WHERE sha256 = {row}.sha256 AND refs <= 0;
        """

    # An update can change the digest or whether the row holds it (a file's content replaced or
    # deleted): the new state gains a reference and the old one loses it (added first, so a
    # digest that stays keeps its row).
    return f"""
        CREATE TRIGGER blob_refs_{table}_ai AFTER INSERT ON {table} BEGIN
            {add("new")}
        END;
        CREATE TRIGGER blob_refs_{table}_ad AFTER DELETE ON {table} BEGIN
            {remove("old")}
        END;
        CREATE TRIGGER blob_refs_{table}_au AFTER UPDATE ON {table}
        WHEN new.sha256 IS NOT old.sha256 OR {holds("new")} IS NOT {holds("old")} BEGIN
            {add("new")}
            {remove("old")}
        END;
    """


def _blob_refs() -> str:
    references = " UNION ALL ".join(
        f"SELECT sha256 FROM {table}" + (f" WHERE {where.format(row=table)}" if where else "")
        for table, _, where in _REFERENCES
    )
    # A backfilled blob's size: the cache, else a file version's bytes, else a file artifact's
    # (its own blob's size; a directory's bytes are its files' total, not its manifest's).
    return f"""
        CREATE TABLE blob_refs (sha256 TEXT PRIMARY KEY, refs INTEGER NOT NULL, size INTEGER) WITHOUT ROWID;
        CREATE INDEX blob_refs_unsized ON blob_refs (sha256) WHERE size IS NULL;
        INSERT INTO blob_refs (sha256, refs, size)
        SELECT r.sha256, r.refs, coalesce(
            (SELECT size FROM blob_sizes WHERE sha256 = r.sha256),
            (SELECT bytes FROM file_versions WHERE sha256 = r.sha256 LIMIT 1),
            (SELECT bytes FROM artifacts WHERE sha256 = r.sha256 AND is_dir = 0 LIMIT 1))
        FROM (SELECT sha256, COUNT(*) AS refs FROM ({references}) GROUP BY sha256) AS r;
        INSERT INTO store_counters (name, value) SELECT 'blobs', COUNT(*) FROM blob_refs;
        INSERT INTO store_counters (name, value) SELECT 'blob_bytes', coalesce(SUM(size), 0) FROM blob_refs;
        INSERT INTO store_counters (name, value) SELECT 'blobs_unsized', COUNT(*) FROM blob_refs WHERE size IS NULL;
        CREATE TRIGGER count_blob_refs_ai AFTER INSERT ON blob_refs BEGIN
            UPDATE store_counters SET value = value + CASE name WHEN 'blobs' THEN 1
                WHEN 'blob_bytes' THEN coalesce(new.size, 0) ELSE new.size IS NULL END
            WHERE name IN ('blobs', 'blob_bytes', 'blobs_unsized');
        END;
        CREATE TRIGGER count_blob_refs_ad AFTER DELETE ON blob_refs BEGIN
            UPDATE store_counters SET value = value - CASE name WHEN 'blobs' THEN 1
                WHEN 'blob_bytes' THEN coalesce(old.size, 0) ELSE old.size IS NULL END
            WHERE name IN ('blobs', 'blob_bytes', 'blobs_unsized');
        END;
        CREATE TRIGGER count_blob_refs_au AFTER UPDATE OF size ON blob_refs WHEN new.size IS NOT old.size BEGIN
            UPDATE store_counters SET value = value + CASE name
                WHEN 'blob_bytes' THEN coalesce(new.size, 0) - coalesce(old.size, 0)
                ELSE (new.size IS NULL) - (old.size IS NULL) END
            WHERE name IN ('blob_bytes', 'blobs_unsized');
        END;
    """


MIGRATIONS: list[Migration] = [
    # "stats" sorts after every component whose tables it counts except vectors (see vectors v2).
    (
        "stats",
        1,
        "CREATE TABLE store_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
        + "".join(_counted(*counted) for counted in COUNTED)
        + _blob_refs()
        + "".join(_references(*reference) for reference in _REFERENCES),
    ),
]

VECTOR_COUNTERS: Migration = (
    "vectors",
    2,
    # Each model's first-chunk vectors (the documents it has embedded), under 'vectors:<model>'.
    # The model's row creates its counter, so the vector triggers only ever update.
    """
    INSERT INTO store_counters (name, value)
    SELECT 'vectors:' || m.model, (SELECT COUNT(*) FROM vectors WHERE model = m.model AND chunk = 0)
    FROM vector_models AS m;
    CREATE TRIGGER count_vector_models_ai AFTER INSERT ON vector_models BEGIN
        INSERT INTO store_counters (name, value) SELECT 'vectors:' || new.model, 0
        WHERE NOT EXISTS (SELECT 1 FROM store_counters WHERE name = 'vectors:' || new.model);
    END;
    CREATE TRIGGER count_vector_models_ad AFTER DELETE ON vector_models BEGIN
        DELETE FROM store_counters WHERE name = 'vectors:' || old.model;
    END;
    CREATE TRIGGER count_vectors_ai AFTER INSERT ON vectors WHEN new.chunk = 0 BEGIN
        UPDATE store_counters SET value = value + 1 WHERE name = 'vectors:' || new.model;
    END;
    CREATE TRIGGER count_vectors_ad AFTER DELETE ON vectors WHEN old.chunk = 0 BEGIN
        UPDATE store_counters SET value = value - 1 WHERE name = 'vectors:' || old.model;
    END;
    """,
)
