"""Event memory through the Python API, against a real store on the run's engine."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from _out_of_order import Write, commit_lower_after_higher

from mcp_memory_server import InvalidInput, LimitExceeded, MemoryStore, StorageError
from mcp_memory_server.ids import new_id, utc_now
from mcp_memory_server.storage.engine import Connection


def test_text_defaults_to_the_json_of_data_and_data_is_kept_as_given(store: MemoryStore) -> None:
    """record() keeps any JSON data as given and derives text from it."""
    for data in ({"b": 1, "a": [1, 2]}, [1, "x"], "plain", 3.5, True):
        event = store.events.record("obs", data)
        assert event.data == data
        assert store.events.get(event.event_id) == event
    assert store.events.record("obs", {"b": 1, "a": 2}).text == '{"a":2,"b":1}'


def test_recent_returns_the_newest_n_oldest_first(store: MemoryStore) -> None:
    """recent(limit=3) returns the last three events in chronological order."""
    ids = [store.events.record("step", {"i": i}).event_id for i in range(10)]
    assert [e.event_id for e in store.events.recent(limit=3)] == ids[-3:]


def test_recent_filters_by_kind_tags_tool_topic_and_time(store: MemoryStore) -> None:
    """Every filter narrows the result; tags must all be present."""
    a = store.events.record("note", text="a", tags=["x", "y"], topic="plans")
    store.events.record("note", text="b", tags=["x"])
    c = store.events.record("error", text="c", tags=["y"])
    t = store.events.record_tool_result("train", outputs=[{"name": "loss", "value": 1.0}])
    recent = store.events.recent
    assert [e.event_id for e in recent(kinds=["note"], tags=["x", "y"])] == [a.event_id]
    assert [e.event_id for e in recent(kinds=["error", "tool_result"])] == [c.event_id, t.event_id]
    assert [e.event_id for e in recent(tool="train")] == [t.event_id]
    assert [e.event_id for e in recent(topic="plans")] == [a.event_id]
    assert [e.event_id for e in recent(since=c.ts)] == [c.event_id, t.event_id]
    assert [e.event_id for e in recent(until=c.ts)] == [a.event_id, store.events.recent(limit=4)[1].event_id]


def test_recent_data_decodes_payloads(store: MemoryStore) -> None:
    """recent_data returns data, else text parsed as JSON, else the raw text."""
    store.events.record("k", {"x": 1})
    store.events.record("k", text='{"y": 2}')
    store.events.record("k", text="not json")
    assert store.events.recent_data(limit=3) == [{"x": 1}, {"y": 2}, "not json"]


def test_last_by_name_returns_the_latest_output_of_that_name(store: MemoryStore) -> None:
    """Every named output becomes the latest value for its name, per tool if asked."""
    store.events.record_tool_result("train", outputs=[{"name": "loss", "value": 2.0}])
    store.events.record_tool_result("eval", outputs=[{"name": "loss", "value": 0.7}, {"name": "ok", "value": True}])
    last = store.events.last_by_name("loss")
    assert last is not None and (last.value, last.tool, last.kind) == (0.7, "eval", "number")
    by_tool = store.events.last_by_name("loss", tool="train")
    assert by_tool is not None and by_tool.value == 2.0
    assert store.events.last_by_name("missing") is None
    assert [e.tool for e in store.events.recent_tool_results("eval")] == ["eval"]


def test_values_older_than_the_hot_window_are_still_found(data_dir: Path) -> None:
    """With a tiny hot window, recent and last_by_name fall back to the database correctly."""
    with MemoryStore.open(data_dir, hot_window=5) as store:
        first = store.events.record_tool_result("t", outputs=[{"name": "rare", "value": "old"}])
        ids = [store.events.record("fill", {"i": i}).event_id for i in range(20)]
        last = store.events.last_by_name("rare")
        assert last is not None and last.event_id == first.event_id
        assert [e.event_id for e in store.events.recent(limit=8)] == ids[-8:]
        assert [e.event_id for e in store.events.recent(kinds=["tool_result"])] == [first.event_id]


def test_another_processs_writes_are_visible_at_once(data_dir: Path) -> None:
    """An event written by a separate process shows in recent() and last_by_name() immediately."""
    with MemoryStore.open(data_dir) as store:
        store.events.record("mine", {"n": 1})
        assert store.events.recent(limit=1)[0].kind == "mine"  # the hot window is now warm
        script = (
            "import sys; from mcp_memory_server import MemoryStore\n"
            "s = MemoryStore.open(sys.argv[1])\n"
            "e = s.events.record_tool_result('other', outputs=[{'name': 'score', 'value': 42}])\n"
            "print(e.event_id)\n"
        )
        out = subprocess.run([sys.executable, "-c", script, str(data_dir)], capture_output=True, text=True, check=True)
        theirs = out.stdout.strip()
        assert store.events.recent(limit=1)[0].event_id == theirs
        last = store.events.last_by_name("score")
        assert last is not None and (last.value, last.event_id) == (42, theirs)


def test_forget_is_a_dry_run_by_default(store: MemoryStore) -> None:
    """forget() only counts unless dry_run=False, then deletes exactly the matches."""
    keep = store.events.record("keep", text="k")
    drop = [store.events.record("drop", text=str(i)).event_id for i in range(3)]
    report = store.events.forget(kinds=["drop"])
    assert (report.dry_run, report.matched, report.deleted, report.event_ids) == (True, 3, 0, drop)
    assert store.events.count() == 4
    report = store.events.forget(kinds=["drop"], dry_run=False)
    assert report.deleted == 3
    assert [e.event_id for e in store.events.recent()] == [keep.event_id]


def test_forget_in_another_process_is_seen_by_the_hot_window(data_dir: Path) -> None:
    """Events forgotten by another process disappear from this process's recent()."""
    with MemoryStore.open(data_dir) as store:
        store.events.record("secret", text="s")
        assert len(store.events.recent()) == 1
        script = (
            "import sys; from mcp_memory_server import MemoryStore\n"
            "MemoryStore.open(sys.argv[1]).events.forget(kinds=['secret'], dry_run=False)\n"
        )
        subprocess.run([sys.executable, "-c", script, str(data_dir)], check=True)
        assert store.events.recent() == []


def test_record_many_commits_all_or_nothing(store: MemoryStore) -> None:
    """A batch with one bad event stores none of them."""
    with pytest.raises(InvalidInput, match="severity"):
        store.events.record_many([{"kind": "ok"}, {"kind": "bad", "severity": 9}])
    assert store.events.count() == 0
    assert len(store.events.record_many([{"kind": "a"}, {"kind": "b"}])) == 2


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"kind": ""}, InvalidInput, "kind must be a non-empty string"),
        ({"kind": 5}, InvalidInput, "kind must be a non-empty string"),
        ({"kind": "k", "severity": 0}, InvalidInput, "severity must be 1, 2 or 3"),
        ({"kind": "k", "text": "x" * 2_000_000}, LimitExceeded, "max_text_bytes"),
        ({"kind": "k", "text": "\ud800"}, InvalidInput, "surrogate"),
        ({"kind": "k", "tags": "notalist"}, InvalidInput, "tags must be a list"),
        ({"kind": "k", "outputs": [{"value": 1}]}, InvalidInput, "name and a value"),
        ({"kind": "k", "outputs": [{"name": "a", "value": 1, "kind": "weird"}]}, InvalidInput, "kind='weird'"),
    ],
)
def test_bad_events_are_refused_and_nothing_is_written(
    store: MemoryStore, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    """Invalid event fields raise a clear error and the log stays empty."""
    with pytest.raises(error, match=message):
        store.events.record(**kwargs)  # type: ignore[arg-type]
    assert store.events.count() == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"since": "yesterday"}, "not an RFC 3339 timestamp"),
        ({"scope": "galaxy"}, "scope='galaxy' is not valid"),
        ({"scope": "node"}, "needs node_id"),
        ({"limit": -1}, "positive integer"),
        ({"kinds": "note"}, "kinds must be a list"),
    ],
)
def test_bad_queries_are_refused(store: MemoryStore, kwargs: dict[str, object], message: str) -> None:
    """Query arguments are validated with messages naming the problem."""
    with pytest.raises(InvalidInput, match=message):
        store.events.recent(**kwargs)


def test_forget_without_any_filter_is_refused(store: MemoryStore) -> None:
    """forget() needs at least one criterion so nothing is wiped by accident."""
    store.events.record("k")
    with pytest.raises(InvalidInput, match="give before, kinds or tags"):
        store.events.forget(dry_run=False)
    assert store.events.count() == 1


def test_a_page_of_long_events_is_cut_to_the_response_limit(data_dir: Path) -> None:
    """memory_recent's page stays under max_response_bytes, marking what it cut."""
    with MemoryStore.open(data_dir, max_response_bytes=10_000) as store:
        for _ in range(5):
            store.events.record("long", text="x" * 8_000)
        store.events.record("short", text="tiny")
        page = store.events.page(limit=6)
        assert sum(len(e.text or "") for e in page.events) < 10_000
        assert [e.truncated for e in page.events] == [True] * 5 + [False]
        assert "truncated: 8000 characters" in (page.events[0].text or "")
        assert page.events[-1].text == "tiny"
        assert store.events.page(limit=1).events[0].text == "tiny"


def test_an_event_committed_after_one_with_a_higher_seq_is_not_missed_by_the_warm_hot_window(
    store: MemoryStore, engine: str
) -> None:
    """seq N+2 commits, the window syncs, then seq N+1 commits (no write lock): recent and last_by_name see it."""
    first = store.events.record("before").event_id
    assert [e.event_id for e in store.events.recent()] == [first]  # warm and complete
    top = store.db.query("SELECT MAX(seq) FROM events")[0][0]
    low_id, high_id = new_id("evt"), new_id("evt")

    def insert(seq: int, event_id: str, name: str) -> Write:
        def write(conn: Connection) -> None:
            ts = utc_now()
            output = f'[{{"name": "{name}", "kind": "number", "value": {seq}}}]'
            conn.execute(
                "INSERT INTO events (seq, event_id, ts, kind, tool, outputs, run_id) VALUES (?, ?, ?, 'note', 't', ?, ?)",
                (seq, event_id, ts, output, store.run_id),
            )
            conn.execute(
                "INSERT INTO event_values (seq, event_id, name, kind, value, tool, ts)"
                " VALUES (?, ?, ?, 'number', ?, 't', ?)",
                (seq, event_id, name, str(seq), ts),
            )

        return write

    between: list[list[str]] = []
    commit_lower_after_higher(
        store.db, engine,
        lower=insert(top + 1, low_id, "late"), higher=insert(top + 2, high_id, "early"),
        between=lambda: between.append([e.event_id for e in store.events.recent()]),
    )  # fmt: skip
    assert between == [[first, high_id]]
    assert [e.event_id for e in store.events.recent()] == [first, low_id, high_id]
    late = store.events.last_by_name("late")
    assert late is not None and (late.event_id, late.value) == (low_id, top + 1)


def test_last_by_name_takes_the_last_output_of_that_name_within_one_event(store: MemoryStore, data_dir: Path) -> None:
    """An event naming one output twice: the later value is the latest, from the window and from the database."""
    event = store.events.record_tool_result("t", outputs=[{"name": "x", "value": 1}, {"name": "x", "value": 2}])
    hot = store.events.last_by_name("x")
    assert hot is not None and (hot.value, hot.event_id) == (2, event.event_id)
    with MemoryStore.open(data_dir, hot_window=1) as cold:
        cold.events.record("fill")  # pushes the event out of this window: the database answers
        stored = cold.events.last_by_name("x")
    assert stored is not None and (stored.value, stored.event_id) == (2, event.event_id)


def test_a_nul_in_event_text_is_kept_on_sqlite_and_refused_whole_batch_on_postgres(
    store: MemoryStore, engine: str
) -> None:
    """PostgreSQL text cannot hold U+0000: there the batch is refused with a clear error and nothing is written."""
    batch = [{"kind": "k", "text": "fine"}, {"kind": "k", "text": "a\x00b"}]
    if engine == "postgres":
        with pytest.raises(InvalidInput, match="NUL"):
            store.events.record_many(batch)
        assert store.events.count() == 0
    else:
        store.events.record_many(batch)
        assert [e.text for e in store.events.recent()] == ["fine", "a\x00b"]


@pytest.mark.sqlite_only  # the v2 migration orders old rows by SQLite's rowid; no PostgreSQL store predates it
def test_events_v2_keeps_the_last_of_duplicate_named_values_an_older_store_wrote(data_dir: Path) -> None:
    """A v1 store with two rows for one (event, name): after the upgrade only the later one is left, and is the latest."""
    with MemoryStore.open(data_dir) as store:
        event = store.events.record_tool_result("t", outputs=[{"name": "x", "value": 1}])
        with store.db.write() as conn:  # what v1 wrote for outputs [x=1, x=2]
            conn.execute(
                "INSERT INTO event_values (seq, event_id, name, kind, value, tool, ts)"
                " SELECT seq, event_id, name, kind, '2', tool, ts FROM event_values"
            )
            conn.execute("DELETE FROM schema_migrations WHERE component = 'events' AND version = 2")
    with MemoryStore.open(data_dir, hot_window=1) as store:
        assert store.db.schema_versions()["events"] == 2
        assert [tuple(r) for r in store.db.query("SELECT name, value FROM event_values")] == [("x", "2")]
        store.events.record("fill")  # the event leaves the window: the database answers
        last = store.events.last_by_name("x")
    assert last is not None and (last.value, last.event_id) == (2, event.event_id)


@pytest.mark.postgres_only  # SQLite has no server to drop a connection
def test_the_hot_window_reconnects_when_the_server_drops_its_connection(store: MemoryStore, engine: str) -> None:
    """PostgreSQL ends the window's connection: the next recent() reconnects, reloads and misses nothing."""
    first = store.events.record("before").event_id
    assert [e.event_id for e in store.events.recent()] == [first]
    dropped = store.db.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE pid <> pg_backend_pid() AND query LIKE 'SELECT seq, event_id%'"
    )
    assert len(dropped) == 1  # the window's own connection, which last read the events
    second = store.events.record("after").event_id
    assert [e.event_id for e in store.events.recent()] == [first, second]


def test_record_many_returns_the_events_a_read_returns(store: MemoryStore) -> None:
    """The events a batch hands back equal the stored ones field for field, with ids rising in batch order."""
    batch = [
        {"kind": "obs", "data": {"b": 1, "a": [1, 2.5]}, "tags": ["y", "x", "y"], "topic": "t", "metrics": {"m": 1}},
        {"kind": "obs", "data": {"b": 2}, "tags": ["y", "x", "y"], "topic": "t"},
        {"kind": "obs", "tags": ["x", "y"]},
        {"kind": "tool_result", "tool": "train", "text": "done", "tags": ["z"], "severity": 3, "graph_id": "g",
         "node_id": "n", "inputs": [{"name": "lr", "value": 0.1}], "outputs": [{"name": "loss", "value": 0.5}]},
    ]  # fmt: skip
    made = store.events.record_many(batch)
    assert [e.tags for e in made] == [["x", "y"], ["x", "y"], ["x", "y"], ["z"]]
    assert made[0].text == '{"a":[1,2.5],"b":1}' and made[0].metrics == {"m": 1.0}
    assert made == [store.events.get(e.event_id) for e in made]
    assert made == store.events.recent()
    ids = [e.event_id for e in made]
    assert ids == sorted(set(ids)) and store.events.record("after").event_id > ids[-1]
    loss = store.events.last_by_name("loss")
    assert loss is not None and (loss.value, loss.event_id) == (0.5, ids[-1])


def test_a_batch_of_several_inserts_is_stored_whole_in_order_with_its_search_documents(store: MemoryStore) -> None:
    """1,234 events (more than one multi-row INSERT on SQLite): each stored in batch order with its search document."""
    made = store.events.record_many([{"kind": "step", "text": f"step {i}"} for i in range(1234)])
    stored = store.db.query("SELECT event_id FROM events ORDER BY seq")
    assert [row[0] for row in stored] == [e.event_id for e in made]
    docs = store.db.query("SELECT item_id, doc_context FROM search_docs WHERE source = 'events' ORDER BY doc_id")
    assert [row[0] for row in docs] == [e.event_id for e in made]
    # Each document's context is the text of the event before it in the run, within one statement too.
    assert [row[1] for row in docs[1:]] == [f"step {i}" for i in range(1233)]


def test_a_batch_the_database_refuses_midway_writes_nothing(store: MemoryStore, engine: str) -> None:
    """A row refused by the database after a thousand others (a test trigger): no event, value or document stays."""
    with store.db.write() as conn:
        if engine == "postgres":
            conn.execute(
                "CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                " IF new.kind = 'boom' THEN RAISE EXCEPTION 'boom refused'; END IF; RETURN new; END $$"
            )
            conn.execute(
                "CREATE TRIGGER refuse_boom BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_boom()"
            )
        else:
            conn.execute(
                "CREATE TRIGGER refuse_boom BEFORE INSERT ON events WHEN new.kind = 'boom'"
                " BEGIN SELECT RAISE(ABORT, 'boom refused'); END"
            )
    batch = [{"kind": "step", "outputs": [{"name": "i", "value": i}]} for i in range(1100)] + [{"kind": "boom"}]
    # The engine's own error: SQLite's constraint error as it is, PostgreSQL's as a StorageError.
    with pytest.raises((sqlite3.IntegrityError, StorageError), match="boom refused"):
        store.events.record_many(batch)
    counts = [
        store.db.query(f"SELECT COUNT(*) FROM {table}")[0][0] for table in ("events", "event_values", "search_docs")
    ]
    assert counts == [0, 0, 0]
    assert store.events.recent() == [] and store.events.last_by_name("i") is None


@pytest.mark.parametrize("read_before_close", [False, True])
def test_reads_of_a_closed_store_say_it_is_closed(data_dir: Path, read_before_close: bool) -> None:
    """recent() and last_by_name() of a closed store raise StorageError, whether the hot window had
    a connection (closed by close()) or not (it must not open a new one that outlives close())."""
    store = MemoryStore.open(data_dir)
    store.events.record("note", outputs=[{"name": "x", "value": 1}])
    if read_before_close:
        assert len(store.events.recent()) == 1 and store.events.last_by_name("x") is not None
    store.close()
    for read in (store.events.recent, lambda: store.events.last_by_name("x")):
        with pytest.raises(StorageError, match="the store is closed"):
            read()
