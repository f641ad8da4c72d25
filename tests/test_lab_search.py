"""Lab runs in the store-wide search: found by description, hypothesis, notes or tags; one call over several sources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _mcp import call, error
from mcp import Client

from mcp_memory_server import MemoryStore
from mcp_memory_server.core.search import SOURCES
from mcp_memory_server.errors import InvalidInput

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("embedding_model")]

RUN = {
    "description": "raise the learning rate to 0.04",
    "status": "keep",
    "metrics": {"val_bpb": 0.991},
    "hypothesis": "faster convergence within the five minute budget",
    "notes": "loss curve was noisy after step 900",
    "tags": ["optimizer", "sweep"],
    "family": "lr-sweep",
}


def _log(store: MemoryStore, **overrides: Any) -> str:
    fields = {**RUN, **overrides}
    return store.lab.log(fields.pop("description"), fields.pop("status"), fields.pop("metrics"), **fields).run_id


def _lab_hits(store: MemoryStore, query: str, **options: Any) -> list[str]:
    page = store.events.search(query, sources=["lab"], mode="lexical", **options)
    assert all(hit.source == "lab" and hit.event is None for hit in page.hits)
    return [hit.id for hit in page.hits if hit.id is not None]


# -- the Python API ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["learning rate", "convergence budget", "noisy loss curve", "optimizer", "lr-sweep"],
    ids=["description", "hypothesis", "notes", "tag", "family"],
)
def test_a_run_is_found_by_each_of_its_words(store: MemoryStore, query: str) -> None:
    """A logged run is found by its description, hypothesis, notes, a tag, or its family."""
    run_id = _log(store)
    _log(store, description="swap the tokenizer for a byte-level one", hypothesis="", notes="", tags=["data"],
         family="tokenizer", metrics={"val_bpb": 1.2}, status="discard")  # fmt: skip
    assert _lab_hits(store, query) == [run_id]


def test_a_crash_is_found_by_its_error_and_status(store: MemoryStore) -> None:
    """A crashed run's error summary and status are searchable (lexically)."""
    crash = _log(store, status="crash", metrics=None, error="CUDA out of memory at batch 64")
    _log(store)
    assert _lab_hits(store, "out of memory") == [crash]
    assert _lab_hits(store, "crash") == [crash]


def test_a_lab_hit_carries_the_run_id_and_the_start_of_its_text(store: MemoryStore) -> None:
    """The hit names its source and run, and its text begins with the description."""
    run_id = _log(store)
    (hit,) = store.events.search("learning rate", sources=["lab"], mode="lexical").hits
    assert (hit.source, hit.id) == ("lab", run_id)
    assert hit.text is not None and hit.text.startswith(RUN["description"]) and RUN["hypothesis"] in hit.text


def test_a_run_is_found_by_meaning(store: MemoryStore) -> None:
    """A paraphrase finds the run by its description in the default (hybrid) mode."""
    run_id = _log(store)
    _log(store, description="swap the tokenizer for a byte-level one", hypothesis="", notes="", tags=[],
         family="tokenizer", metrics={"val_bpb": 1.2}, status="discard")  # fmt: skip
    page = store.events.search("increase the lr", sources=["lab"], limit=1)
    assert page.mode == "hybrid" and [h.id for h in page.hits] == [run_id]


def test_default_sources_are_events_and_their_answer_is_unchanged(store: MemoryStore) -> None:
    """Without sources only events are searched, and hits carry no source label, id or text."""
    _log(store)
    event = store.events.record("note", text="the learning rate warmup helped")
    page = store.events.search("learning rate", mode="lexical")
    assert [hit.event.event_id for hit in page.hits if hit.event] == [event.event_id]
    assert all(hit.source is None and hit.id is None and hit.text is None for hit in page.hits)


def test_one_search_ranks_several_sources_together(store: MemoryStore) -> None:
    """events, lab, artifacts, files and graph in one call: each hit labelled with its source."""
    run_id = _log(store)
    store.events.record("note", text="groceries for the weekend")  # first: no earlier event gives it context
    event = store.events.record("decision", text="keep the warmup of the learning rate")
    artifact = store.artifacts.save_text("learning rate sweep summary", "report")
    store.files.write("notes/lr.md", "the learning rate plan for tomorrow")
    written = store.graph.write(nodes=[{"node_type": "semantic", "agent_id": "a",
                                        "payload": {"fact": "a learning rate of 0.04 diverges"}}])  # fmt: skip
    page = store.events.search(
        "learning rate", sources=["events", "artifacts", "files", "graph", "lab"], mode="lexical", limit=10
    )
    found = {(hit.source, hit.event.event_id if hit.event else hit.id) for hit in page.hits}
    assert found == {
        ("events", event.event_id),
        ("lab", run_id),
        ("artifacts", artifact.artifact_id),
        ("files", "default/notes/lr.md"),
        ("graph", written.node_ids[0]),
    }
    scores = [hit.score for hit in page.hits]
    assert scores == sorted(scores, reverse=True)  # one ranking, not one list per source


def test_several_sources_page_with_the_cursor(store: MemoryStore) -> None:
    """limit/cursor page through the merged ranking without repeats."""
    runs = {_log(store, description=f"learning rate variant {i}") for i in range(3)}
    events = {store.events.record("note", text=f"learning rate note {i}").event_id for i in range(3)}
    first = store.events.search("learning rate", sources=["lab", "events"], mode="lexical", limit=4)
    assert first.next_cursor is not None
    second = store.events.search("learning rate", sources=["lab", "events"], mode="lexical", limit=4,
                                 cursor=first.next_cursor)  # fmt: skip
    ids = [hit.event.event_id if hit.event else hit.id for hit in first.hits + second.hits]
    assert len(ids) == 6 and set(ids) == runs | events and second.next_cursor is None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"sources": ["labs"]}, "unknown source(s) ['labs']; sources are: events, artifacts, files, graph, lab"),
        ({"sources": []}, "sources must be a non-empty list"),
        ({"sources": "lab"}, "sources must be a non-empty list"),
        ({"sources": ["lab"], "kinds": ["note"]}, "narrow events only"),
        ({"sources": ["events", "lab"], "scope": "run"}, "narrow events only"),
    ],
)
def test_bad_sources_are_refused_clearly(store: MemoryStore, arguments: dict[str, Any], message: str) -> None:
    """An unknown or empty source list, or an event filter on other sources, is InvalidInput naming the problem."""
    with pytest.raises(InvalidInput) as info:
        store.events.search("learning rate", mode="lexical", **arguments)
    assert message in str(info.value)


def test_event_filters_still_apply_when_sources_name_only_events(store: MemoryStore) -> None:
    """sources=["events"] with kinds filters as before, and labels the hits."""
    store.events.record("note", text="learning rate note")
    decision = store.events.record("decision", text="learning rate decision")
    page = store.events.search("learning rate", sources=["events"], kinds=["decision"], mode="lexical")
    assert [(h.source, h.event.event_id if h.event else None) for h in page.hits] == [("events", decision.event_id)]


# -- the index follows the ledger --------------------------------------------------------------------


def test_a_run_edited_or_deleted_in_the_ledger_is_reindexed_or_dropped(store: MemoryStore) -> None:
    """The ledger has no edit or delete verb, but its triggers keep the index in step with a hand edit."""
    run_id = _log(store)
    with store.db.write() as conn:
        conn.execute("UPDATE lab_runs SET notes = ? WHERE run_id = ?", ("plateau after warmdown", run_id))
    assert _lab_hits(store, "plateau warmdown") == [run_id]
    assert _lab_hits(store, "noisy") == []
    with store.db.write() as conn:
        conn.execute("DELETE FROM lab_runs WHERE run_id = ?", (run_id,))
    assert _lab_hits(store, "learning rate") == []


def test_runs_logged_before_the_upgrade_are_indexed_by_it(data_dir: Path, engine: str) -> None:
    """A store whose runs predate the search_lab migration: opening it indexes every existing run."""
    with MemoryStore.open(data_dir) as store:
        run_id = _log(store)
        with store.db.write() as conn:  # back to what a store before search_lab held
            if engine == "sqlite":
                for trigger in ("ai", "ad", "au"):
                    conn.execute(f"DROP TRIGGER search_lab_{trigger}")
            else:
                for function in ("ai", "ad", "au"):
                    conn.execute(f"DROP FUNCTION search_lab_{function}() CASCADE")
            conn.execute("DELETE FROM search_docs WHERE source = 'lab'")
            conn.execute("DELETE FROM schema_migrations WHERE component = 'search_lab'")
        assert _lab_hits(store, "learning rate") == []
    with MemoryStore.open(data_dir) as store:
        assert store.db.schema_versions()["search_lab"] == 1
        assert _lab_hits(store, "learning rate") == [run_id]


# -- over MCP ------------------------------------------------------------------------------------------


async def _log_over_mcp(client: Client) -> str:
    logged = await call(client, "experiment_log", **RUN)
    return str(logged["run_id"])


@pytest.mark.parametrize(
    "query",
    ["learning rate", "convergence budget", "noisy loss curve", "optimizer"],
    ids=["description", "hypothesis", "notes", "tag"],
)
async def test_memory_search_finds_a_run_over_mcp(client: Client, query: str) -> None:
    """memory_search(sources=["lab"]) finds a run logged by experiment_log by each of its fields."""
    run_id = await _log_over_mcp(client)
    page = await call(client, "memory_search", query=query, sources=["lab"], mode="lexical")
    (hit,) = page["hits"]
    assert hit["source"] == "lab" and hit["id"] == run_id and hit["text"].startswith(RUN["description"])
    assert "event" not in hit


async def test_memory_search_over_mcp_defaults_to_events(client: Client) -> None:
    """Without sources the answer is as before: events only, no source label on the hits."""
    await _log_over_mcp(client)
    await call(client, "memory_record", kind="note", text="the learning rate warmup helped")
    page = await call(client, "memory_search", query="learning rate", mode="lexical")
    (hit,) = page["hits"]
    assert set(hit) == {"event", "score", "lexical_rank"} and hit["event"]["kind"] == "note"


async def test_memory_search_over_mcp_searches_several_sources_in_one_call(client: Client) -> None:
    """One call over events, lab and artifacts: each hit says where it came from."""
    run_id = await _log_over_mcp(client)
    recorded = await call(client, "memory_record", kind="decision", text="keep the learning rate warmup")
    saved = await call(client, "artifact_save", text="learning rate sweep summary", kind="report")
    page = await call(client, "memory_search", query="learning rate", sources=["events", "lab", "artifacts"],
                      mode="lexical")  # fmt: skip
    found = {(h["source"], h["event"]["event_id"] if "event" in h else h["id"]) for h in page["hits"]}
    assert found == {("events", recorded["event_id"]), ("lab", run_id), ("artifacts", saved["artifact_id"])}


async def test_memory_search_over_mcp_refuses_an_unknown_source(client: Client) -> None:
    """An unknown source is a tool error naming the valid ones."""
    message = await error(client, "memory_search", query="x", sources=["labs"])
    assert "sources" in message and "lab" in message


async def test_the_tool_lists_every_source_the_store_indexes(client: Client) -> None:
    """memory_search's sources enum is core.search.SOURCES, so a new source cannot be left out of the tool."""
    (tool,) = [t for t in (await client.list_tools()).tools if t.name == "memory_search"]
    assert tuple(tool.input_schema["properties"]["sources"]["items"]["enum"]) == SOURCES


async def test_the_async_api_searches_several_sources_too(data_dir: Path) -> None:
    """await store.events.search(query, sources=[...]) answers as the sync call does."""
    from mcp_memory_server import AsyncMemoryStore

    async with await AsyncMemoryStore.open(data_dir) as store:
        run = await store.lab.log(RUN["description"], "keep", {"val_bpb": 0.99}, hypothesis=RUN["hypothesis"])
        page = await store.events.search("convergence", sources=["lab", "events"], mode="lexical")
    assert [(hit.source, hit.id) for hit in page.hits] == [("lab", run.run_id)]
