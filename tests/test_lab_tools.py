"""The lab tool group through the SDK's in-process client: tools, the report resource and the prompts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _mcp import call, error
from mcp import Client

from mcp_memory_server import MemoryStore
from mcp_memory_server.embeddings import Embedder
from mcp_memory_server.server import build_server

pytestmark = pytest.mark.anyio


@pytest.fixture
def store(data_dir: Path, embedding_model: Embedder) -> Iterator[MemoryStore]:
    """A fresh store whose embedder is ready at once: the session already loaded the model."""
    with MemoryStore.open(data_dir) as opened:
        yield opened


async def test_lab_tools_are_listed_with_hints_schemas_and_descriptions(client: Client) -> None:
    """novelty_check is read-only; experiment_log and experiment_report write; all have output schemas."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert {"novelty_check", "experiment_log", "experiment_report"} <= set(tools)
    hints = {
        name: (tools[name].annotations.read_only_hint, tools[name].annotations.destructive_hint)  # type: ignore[union-attr]
        for name in ("novelty_check", "experiment_log", "experiment_report")
    }
    assert hints == {"novelty_check": (True, False), "experiment_log": (False, False),
                     "experiment_report": (False, False)}  # fmt: skip
    for name in ("novelty_check", "experiment_log", "experiment_report"):
        assert tools[name].output_schema and tools[name].output_schema.get("type") == "object"
        assert tools[name].description and len(tools[name].description) > 80
    assert set(tools["novelty_check"].input_schema["properties"]) >= {
        "description", "tags", "family", "mode", "threshold", "limit",
    }  # fmt: skip


async def test_log_then_check_then_report_through_mcp(client: Client, store: MemoryStore) -> None:
    """A logged run comes back with its decision packet, blocks a paraphrase, and appears in the report."""
    logged = await call(
        client, "experiment_log", description="raise the learning rate to 0.04", status="keep",
        metrics={"val_bpb": 0.9912, "memory_gb": 44.0}, commit="b2c3d4e", parent_commit="a1b2c3d",
        family="lr", log_text="val_bpb: 0.9912\n", patch="+lr = 0.04\n",
    )  # fmt: skip
    assert logged["decision_packet"]["next_action"] == "promote"
    assert {a["role"] for a in logged["artifacts"]} == {"log", "patch", "summary"}
    verdict = await call(client, "novelty_check", description="lr 0.04", mode="explore")
    assert verdict["classification"] == "duplicate_run" and verdict["policy"]["decision"] == "block"
    assert verdict["top_matches"][0]["run_id"] == logged["run_id"]
    crashed = await call(
        client, "experiment_log", description="depth 16", status="crash",
        error={"summary": "CUDA out of memory", "tail": "...\nCUDA out of memory"},
    )  # fmt: skip
    assert crashed["decision_packet"]["next_action"] == "fix_and_retry"
    report = await call(client, "experiment_report", since_hours=16)
    assert report["counts"]["runs"] == 2 and report["report_uri"].startswith("cas://sha256/")
    assert "## Decision queue" in report["markdown"] and "fix_and_retry" in report["markdown"]
    latest = await client.read_resource("lab://report/latest")
    assert latest.contents[0].text == report["markdown"]  # type: ignore[union-attr]
    chart = await client.read_resource(report["chart_uri"])
    assert chart.contents[0].blob  # type: ignore[union-attr]
    assert store.lab.count() == 2


@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        ("experiment_log", {"description": "lr 0.04", "status": "maybe"}, "status"),
        ("experiment_log", {"description": "lr 0.04", "status": "keep"}, "a kept run needs metrics['val_bpb']"),
        ("experiment_log", {"description": "lr 0.04", "status": "keep", "metrics": {"val_bpb": 1.0},
                            "log_path": "/etc/hostname"}, "outside the allowed roots"),
        ("novelty_check", {"description": ""}, "description must not be empty"),
        ("novelty_check", {"description": "lr", "threshold": 2}, "threshold"),
        ("experiment_report", {"since_hours": 0}, "since_hours"),
    ],
)  # fmt: skip
async def test_bad_lab_input_is_a_tool_error_that_names_the_problem_and_writes_nothing(
    client: Client, store: MemoryStore, tool: str, arguments: dict[str, Any], message: str
) -> None:
    """Unknown status, a kept run without the metric, bad paths or thresholds: isError, nothing stored."""
    assert message in await error(client, tool, **arguments)
    assert (store.lab.count(), store.artifacts.count()) == (0, 0)


async def test_lab_prompts_render_with_their_arguments(client: Client) -> None:
    """plan_next_experiment and morning_review come from prompts/ and walk through the lab tools."""
    names = {p.name for p in (await client.list_prompts()).prompts}
    assert {"plan_next_experiment", "morning_review"} <= names
    plan = await client.get_prompt("plan_next_experiment", {"idea": "lr 0.04", "mode": "explore"})
    text = plan.messages[0].content.text  # type: ignore[union-attr]
    assert '"lr 0.04"' in text and "novelty_check" in text and "experiment_log" in text
    review = await client.get_prompt("morning_review", {"since_hours": "12"})
    text = review.messages[0].content.text  # type: ignore[union-attr]
    assert "last 12 hours" in text and "experiment_report" in text and "lab://report/latest" in text


async def test_without_the_lab_group_there_are_no_lab_tools_or_report_resource(data_dir: Path) -> None:
    """--tools memory leaves the lab out entirely."""
    with MemoryStore.open(data_dir, tools="memory") as store:
        async with Client(build_server(store)) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            resources = {str(r.uri) for r in (await client.list_resources()).resources}
    assert not names & {"novelty_check", "experiment_log", "experiment_report"}
    assert "lab://report/latest" not in resources


async def test_memory_stats_counts_lab_runs(client: Client) -> None:
    """memory_stats reports how many runs the ledger holds."""
    await call(client, "experiment_log", description="baseline", status="keep", metrics={"val_bpb": 1.0})
    stats = await call(client, "memory_stats")
    assert stats["counts"]["lab_runs"] == 1
