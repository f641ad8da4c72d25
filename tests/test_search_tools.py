"""Search through MCP and the CLI: memory_search, artifact_search(query=), a held model, reindex."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from mcp_memory_server import MemoryStore
from mcp_memory_server.cli import main
from mcp_memory_server.embeddings import Embedder
from mcp_memory_server.server import build_server

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("embedding_model")]

RAISE_LR = "We decided on raising the learning rate for the next training run"


async def test_memory_search_returns_scored_hits(client: Client) -> None:
    """memory_search finds a paraphrase and reports score, similarity and ranks per hit."""
    await client.call_tool("memory_record", {"kind": "decision", "text": RAISE_LR})
    await client.call_tool("memory_record", {"kind": "note", "text": "Bought groceries for the weekend"})
    result = await client.call_tool("memory_search", {"query": "increase lr", "limit": 1})
    assert not result.is_error
    page = result.structured_content
    assert page is not None and page["mode"] == "hybrid" and "warning" not in page
    hit = page["hits"][0]
    assert hit["event"]["text"] == RAISE_LR
    assert hit["semantic_rank"] == 1 and hit["similarity"] > 0.2 and hit["score"] > 0


async def test_memory_search_filters_by_kind(client: Client) -> None:
    """kinds limits the hits to events of those kinds."""
    await client.call_tool("memory_record", {"kind": "decision", "text": RAISE_LR})
    await client.call_tool("memory_record", {"kind": "note", "text": "The learning rate schedule looks odd"})
    result = await client.call_tool("memory_search", {"query": "learning rate", "kinds": ["note"]})
    assert [h["event"]["kind"] for h in result.structured_content["hits"]] == ["note"]  # type: ignore[index]


async def test_a_bad_mode_is_a_tool_error_naming_the_choices(client: Client) -> None:
    """An unknown mode is refused with the valid choices."""
    result = await client.call_tool("memory_search", {"query": "x", "mode": "fuzzy"})
    assert result.is_error
    assert "hybrid" in result.content[0].text  # type: ignore[union-attr]


async def test_artifact_search_with_a_query_ranks_by_relevance(client: Client) -> None:
    """artifact_search(query=) returns the relevant artifact first with a score; without query it lists."""
    await client.call_tool("artifact_save", {"text": "Validation accuracy rose to 91%", "kind": "report"})
    await client.call_tool("artifact_save", {"text": "Shopping list: eggs, milk", "kind": "note"})
    ranked = (await client.call_tool("artifact_search", {"query": "model accuracy on validation"})).structured_content
    assert ranked is not None
    assert ranked["items"][0]["kind"] == "report" and ranked["scores"][0] > 0 and ranked["mode"] == "hybrid"
    listed = (await client.call_tool("artifact_search", {})).structured_content
    assert listed is not None and "scores" not in listed and len(listed["items"]) == 2


async def test_record_and_recent_answer_while_the_model_is_held_and_search_completes_after(
    store: MemoryStore,
) -> None:
    """While the model is held back, record/recent answer promptly; a semantic search waits with progress."""
    hold = threading.Event()
    store.embedder = Embedder(hold=hold)
    waiting = anyio.Event()
    progress: list[Any] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message)
        waiting.set()

    async with Client(build_server(store)) as client:
        await client.call_tool("memory_record", {"kind": "decision", "text": RAISE_LR})
        found: dict[str, Any] = {}

        async def search() -> None:
            found["result"] = await client.call_tool(
                "memory_search", {"query": "increase lr", "mode": "semantic"}, progress_callback=on_progress
            )

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(search)
            with anyio.fail_after(30):
                await waiting.wait()
            with anyio.fail_after(5):
                recorded = await client.call_tool("memory_record", {"kind": "note", "text": "still responsive"})
                recent = await client.call_tool("memory_recent", {"limit": 5})
            assert not recorded.is_error and recent.structured_content["count"] == 2  # type: ignore[index]
            assert "result" not in found and store.embedder.state == "loading"
            hold.set()
        result = found["result"]
        assert not result.is_error
        assert result.structured_content["hits"][0]["event"]["text"] == RAISE_LR
        assert "loading the embedding model" in progress


async def test_the_model_loads_in_the_background_only_after_the_handshake(store: MemoryStore) -> None:
    """Building the server leaves the model idle; after the handshake it starts loading on its own."""
    store.embedder = Embedder()
    server = build_server(store)
    assert store.embedder.state == "idle"
    async with Client(server) as client:
        await client.list_tools()
        with anyio.fail_after(30):
            while store.embedder.state == "idle":
                await anyio.sleep(0.05)


async def test_a_broken_model_gives_lexical_hits_and_a_warning(tmp_path: Path) -> None:
    """With an unloadable model, memory_search still answers, lexically, and explains why."""
    with MemoryStore.open(tmp_path / "s", embed_model=str(tmp_path / "missing-model")) as store:
        async with Client(build_server(store)) as client:
            await client.call_tool("memory_record", {"kind": "decision", "text": RAISE_LR})
            page = (await client.call_tool("memory_search", {"query": "learning rate"})).structured_content
            stats = (await client.call_tool("memory_stats", {})).structured_content
    assert page is not None and page["mode"] == "lexical" and "missing-model" in page["warning"]
    assert page["hits"][0]["event"]["text"] == RAISE_LR
    assert stats is not None and stats["model"]["state"] == "failed"


async def test_memory_stats_reports_model_and_index_status(client: Client) -> None:
    """memory_stats shows the model id, dimension and how many documents are embedded."""
    await client.call_tool("memory_record", {"kind": "note", "text": RAISE_LR})
    await client.call_tool("memory_search", {"query": "learning rate", "mode": "semantic"})
    model = (await client.call_tool("memory_stats", {})).structured_content["model"]  # type: ignore[index]
    assert (model["state"], model["dim"], model["documents"], model["pending_documents"]) == ("ready", 384, 1, 0)


def test_the_reindex_command_re_embeds_everything(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`mcp-memory-server reindex` embeds every document and prints a JSON summary."""
    with MemoryStore.open(data_dir) as store:
        store.events.record_many([{"kind": "note", "text": f"note {i} about apples"} for i in range(30)])
    assert main(["reindex", "--data-dir", str(data_dir)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["embedded_documents"], summary["documents"], summary["dim"]) == (30, 30, 384)


async def test_file_list_with_a_query_ranks_by_relevance(client: Client) -> None:
    """file_list(query=) puts the file whose content matches first, with scores."""
    await client.call_tool("file_write", {"path": "notes/plan.md", "text": "Raise the learning rate next"})
    await client.call_tool("file_write", {"path": "notes/food.md", "text": "Pasta with tomato sauce"})
    page = (await client.call_tool("file_list", {"query": "increase lr"})).structured_content
    assert page is not None and page["items"][0]["path"] == "notes/plan.md" and page["scores"][0] > 0
