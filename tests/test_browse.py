"""The store opens in the tools people already use: sqlite-utils (its real CLI) finds and searches the FTS index.

sqlite-utils and Datasette detect a table's full-text index only when it is declared
``content="search_docs"`` (or ``[search_docs]``); the "search" v2 migration declares it so.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _mcp import call
from mcp import Client

from mcp_memory_server.store import MemoryStore

# sqlite-utils and Datasette open memory.db, the SQLite file; a PostgreSQL store has none.
pytestmark = [pytest.mark.anyio, pytest.mark.sqlite_only]

_V1_FTS = """CREATE VIRTUAL TABLE search_fts USING fts5(
    doc_text, doc_meta, doc_context,
    content='search_docs', content_rowid='doc_id',
    tokenize='porter unicode61 remove_diacritics 2'
)"""


def sqlite_utils(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sqlite_utils", *args], capture_output=True, text=True, timeout=120)


def search_rows(db: Path, word: str) -> list[dict[str, object]]:
    result = sqlite_utils("search", str(db), "search_docs", word)
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


@pytest.mark.sqlite_only  # sqlite-utils reads memory.db and its FTS5 table; PostgreSQL has neither
async def test_sqlite_utils_search_finds_a_recorded_event(store: MemoryStore, client: Client) -> None:
    """Events recorded through MCP, then ``sqlite-utils search memory.db search_docs zebra``: the zebra row only."""
    # lunch first: a document's context column holds the preceding record's text.
    lunch = await call(client, "memory_record", kind="note", data={"text": "lunch was soup"})
    zebra = await call(client, "memory_record", kind="note", data={"text": "the zebra crossing was repainted"})
    await call(client, "memory_search", query="zebra")  # the lexical index catches up before a search
    db = store.data_dir / "memory.db"
    tables = sqlite_utils("tables", str(db), "--fts5")
    assert json.loads(tables.stdout) == [{"table": "search_fts"}], tables.stderr
    rows = search_rows(db, "zebra")
    found = {row["item_id"]: row for row in rows}
    assert "zebra crossing" in str(found[zebra["event_id"]]["doc_text"])
    assert lunch["event_id"] not in found
    # Every row is a real match (the search's own tool-call event mentions zebra too).
    assert all("zebra" in f"{row['doc_text']} {row['doc_meta']} {row['doc_context']}" for row in rows), rows
    assert search_rows(db, "giraffe") == []


@pytest.mark.sqlite_only  # the FTS5 table's declaration and its rebuild exist only on SQLite
def test_a_store_with_the_old_fts_declaration_is_migrated_and_rebuilt(tmp_path: Path) -> None:
    """A v1 store (content='search_docs', some documents not yet indexed) opens searchable in sqlite-utils."""
    with MemoryStore.open(tmp_path / "s") as store:
        store.events.record(kind="note", data={"text": "an okapi in the archive"})
        store.search.sync_lexical()
        store.events.record(kind="note", data={"text": "an okapi not yet indexed"})
        with store.db.write() as conn:  # put the store back as search v1 left it
            conn.execute("DROP TABLE search_fts")
            conn.execute(_V1_FTS)
            conn.execute("INSERT INTO search_fts (search_fts) VALUES ('rebuild')")
            conn.execute("UPDATE search_state SET value = 1 WHERE key = 'fts_upto'")
            conn.execute("DELETE FROM schema_migrations WHERE component = 'search' AND version = 2")
    db = tmp_path / "s" / "memory.db"
    assert sqlite_utils("search", str(db), "search_docs", "okapi").returncode != 0  # v1: not detected
    with MemoryStore.open(tmp_path / "s") as store:
        assert store.db.schema_versions()["search"] == 2
        assert len(store.events.search("okapi", mode="lexical").hits) == 2  # the rebuild indexed both, once
    assert len(search_rows(db, "okapi")) == 2
