"""SQLite tables of search: the migrations that create and upgrade them."""

from __future__ import annotations

from collections.abc import Sequence

from ...engine import Migration

MIGRATIONS: list[Migration] = [
    (
        "search",
        1,
        """
        CREATE TABLE search_docs (
            doc_id INTEGER PRIMARY KEY AUTOINCREMENT,
            source TEXT NOT NULL,
            item_id TEXT NOT NULL,
            doc_text TEXT NOT NULL DEFAULT '',
            doc_meta TEXT NOT NULL DEFAULT '',
            doc_context TEXT NOT NULL DEFAULT '',
            UNIQUE (source, item_id)
        );
        CREATE VIRTUAL TABLE search_fts USING fts5(
            doc_text, doc_meta, doc_context,
            content='search_docs', content_rowid='doc_id',
            tokenize='porter unicode61 remove_diacritics 2'
        );
        -- How far search_fts has caught up with search_docs (see SearchIndex.sync_lexical).
        CREATE TABLE search_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO search_state (key, value) VALUES ('fts_upto', 0);
        -- Documents are never updated in place: a changed record gets a new doc_id (and vector).
        CREATE TRIGGER search_docs_ad AFTER DELETE ON search_docs BEGIN
            INSERT INTO search_fts (search_fts, rowid, doc_text, doc_meta, doc_context)
            SELECT 'delete', old.doc_id, old.doc_text, old.doc_meta, old.doc_context
            WHERE old.doc_id <= (SELECT value FROM search_state WHERE key = 'fts_upto');
            DELETE FROM vectors WHERE collection = old.source AND item = old.doc_id;
        END;
        -- Records whose text lives outside the database (file contents in blobs): indexed by
        -- SearchIndex before the next search, since a trigger cannot read a blob.
        CREATE TABLE search_pending (
            source TEXT NOT NULL,
            item_id TEXT NOT NULL,
            PRIMARY KEY (source, item_id)
        ) WITHOUT ROWID;
        """,
    ),
    (
        "search",
        2,
        # The same index declared with content="search_docs": sqlite-utils and Datasette find a
        # table's full-text index only by that spelling (or [search_docs]), not 'search_docs'.
        # Rebuilt from search_docs, so it then covers every document (fts_upto moves to the end).
        """
        DROP TABLE search_fts;
        CREATE VIRTUAL TABLE search_fts USING fts5(
            doc_text, doc_meta, doc_context,
            content="search_docs", content_rowid="doc_id",
            tokenize='porter unicode61 remove_diacritics 2'
        );
        INSERT INTO search_fts (search_fts) VALUES ('rebuild');
        UPDATE search_state SET value = (SELECT coalesce(MAX(doc_id), 0) FROM search_docs) WHERE key = 'fts_upto';
        """,
    ),
]


def index_source(
    component: str,
    *,
    source: str,
    table: str,
    key: str,
    text: str,
    meta: str = "''",
    context: str = "''",
    columns: Sequence[str] = (),
    version: int = 1,
) -> Migration:
    """A migration that keeps ``table``'s rows in the search index, and indexes existing rows.

    Expressions use ``{row}`` for the row, e.g. ``text="coalesce({row}.body, '')"``.

    Args:
        component: migration component name; must sort after ``"search"`` (e.g. ``"search_files"``).
        source: the name searches use for these documents (e.g. ``"files"``).
        table: the record table; ``key`` is its unique text id column.
        text: the SQL expression for the searchable, embedded text.
        meta: words matched lexically but not embedded (kind, tags, labels).
        context: text of neighbouring records, matched lexically at lower weight.
        columns: columns whose update re-indexes the row (none: rows never change).
        version: migration version within ``component``.
    """

    def values(row: str) -> str:
        return (
            f"'{source}', {row}.{key}, coalesce({text.format(row=row)}, ''), "
            f"coalesce({meta.format(row=row)}, ''), coalesce({context.format(row=row)}, '')"
        )

    insert = "INSERT INTO search_docs (source, item_id, doc_text, doc_meta, doc_context)"
    delete = f"DELETE FROM search_docs WHERE source = '{source}' AND item_id = old.{key};"
    sql = f"""
        CREATE TRIGGER search_{source}_ai AFTER INSERT ON {table} BEGIN
            {insert} VALUES ({values("new")});
        END;
        CREATE TRIGGER search_{source}_ad AFTER DELETE ON {table} BEGIN
            {delete}
        END;
        {insert} SELECT {values(table)} FROM {table} ORDER BY rowid;
    """
    if columns:
        sql += f"""
        CREATE TRIGGER search_{source}_au AFTER UPDATE OF {", ".join(columns)} ON {table} BEGIN
            {delete}
            {insert} VALUES ({values("new")});
        END;
        """
    return (component, version, sql)


MIGRATIONS += [
    index_source(
        "search_events",
        source="events",
        table="events",
        key="event_id",
        text="{row}.text",
        meta="{row}.kind || ' ' || coalesce({row}.topic, '') || ' ' || coalesce({row}.tool, '') || ' ' || {row}.tags",
        # The event just before it in the same run, when it has the same topic: conversations
        # and step-by-step logs split one thought over neighbouring records.
        context=(
            "(SELECT CASE WHEN p.topic IS {row}.topic THEN substr(p.text, 1, 500) END FROM events AS p"
            " WHERE p.run_id = {row}.run_id AND p.seq < {row}.seq ORDER BY p.seq DESC LIMIT 1)"
        ),
        columns=("text", "kind", "topic", "tool", "tags"),
    ),
    index_source(
        "search_artifacts",
        source="artifacts",
        table="artifacts",
        key="artifact_id",
        text="{row}.name || char(10) || {row}.preview",
        meta="{row}.kind || ' ' || {row}.mime || ' ' || {row}.labels || ' ' || {row}.tags",
        columns=("name", "preview", "kind", "labels", "tags"),
    ),
    # A ledger run: its idea in words (description, hypothesis, notes), and what it was
    # (tags, family, status, commit, the error's summary) matched lexically only.
    index_source(
        "search_lab",
        source="lab",
        table="lab_runs",
        key="run_id",
        text=(
            "{row}.description || char(10) || coalesce({row}.hypothesis, '') || char(10) || coalesce({row}.notes, '')"
        ),
        meta=(
            "{row}.tags || ' ' || coalesce({row}.family, '') || ' ' || {row}.status || ' '"
            " || coalesce({row}.commit_sha, '') || ' ' || coalesce(json_extract({row}.error, '$.summary'), '')"
        ),
        columns=("description", "hypothesis", "notes", "tags", "family", "status", "error"),
    ),
    (
        "search_files",
        1,
        """
        -- No OR IGNORE here: inside a trigger it yields to the outer statement's conflict policy
        -- (the files upsert's), so duplicates are skipped with NOT EXISTS instead.
        CREATE TRIGGER search_files_ai AFTER INSERT ON files WHEN new.sha256 IS NOT NULL BEGIN
            INSERT INTO search_pending (source, item_id) SELECT 'files', new.namespace || '/' || new.path
            WHERE NOT EXISTS (SELECT 1 FROM search_pending
                              WHERE source = 'files' AND item_id = new.namespace || '/' || new.path);
        END;
        CREATE TRIGGER search_files_au AFTER UPDATE OF sha256 ON files WHEN new.sha256 IS NOT old.sha256 BEGIN
            DELETE FROM search_docs WHERE source = 'files' AND item_id = old.namespace || '/' || old.path;
            INSERT INTO search_pending (source, item_id) SELECT 'files', new.namespace || '/' || new.path
            WHERE new.sha256 IS NOT NULL AND NOT EXISTS (SELECT 1 FROM search_pending
                              WHERE source = 'files' AND item_id = new.namespace || '/' || new.path);
        END;
        CREATE TRIGGER search_files_ad AFTER DELETE ON files BEGIN
            DELETE FROM search_docs WHERE source = 'files' AND item_id = old.namespace || '/' || old.path;
            DELETE FROM search_pending WHERE source = 'files' AND item_id = old.namespace || '/' || old.path;
        END;
        INSERT OR IGNORE INTO search_pending (source, item_id)
        SELECT 'files', namespace || '/' || path FROM files WHERE sha256 IS NOT NULL;
        """,
    ),
]
