"""What every turn costs the agent: tool definitions and answers within budgets, strict arguments, clean prompts.

Sizes are deterministic (compact JSON of what the server publishes), so they are asserted here;
timings live in bench/.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _mcp import call, error
from _procs import stdio_params
from mcp import Client
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

from mcp_memory_server import MemoryStore

pytestmark = pytest.mark.anyio

VISIBLE_BUDGET = 20_000  # name + description + input schema of every tool: what the model reads
LIST_BUDGET = 45_000  # the whole tools/list answer
RECENT_BUDGET = 10_000  # memory_recent of 50 short events


def compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


async def published(client: Client) -> list[dict[str, Any]]:
    tools = (await client.list_tools()).tools
    return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]


def walk(value: Any) -> list[Any]:
    """Every dict and list inside ``value``, itself included."""
    found = [value]
    if isinstance(value, dict):
        for item in value.values():
            found += walk(item)
    elif isinstance(value, list):
        for item in value:
            found += walk(item)
    return found


# -- definitions -------------------------------------------------------------------------------


async def test_the_tool_list_fits_its_budgets(client: Client) -> None:
    """All 26 tools: the model-visible part ≤ 20,000 characters, the whole tools/list ≤ 45,000."""
    tools = await published(client)
    assert len(tools) == 26
    visible = sum(len(compact({k: t[k] for k in ("name", "description", "inputSchema")})) for t in tools)
    whole = len(compact({"tools": tools}))
    assert visible <= VISIBLE_BUDGET, visible
    assert whole <= LIST_BUDGET, whole


async def test_every_parameter_is_described_in_a_few_words(client: Client) -> None:
    """Each parameter says what it is in a few words; every tool has a short when-to-use description."""
    for tool in await published(client):
        assert 20 <= len(tool["description"]) <= 300, tool["name"]
        for name, prop in tool["inputSchema"]["properties"].items():
            described = prop.get("description", "")
            assert 3 <= len(described) <= 200, f"{tool['name']}.{name}: {described!r}"


async def test_schemas_carry_no_titles_null_unions_or_dangling_refs(client: Client) -> None:
    """No pydantic titles, no [T, null] unions, and every $ref resolves to a $defs entry that is used."""
    for tool in await published(client):
        for key in ("inputSchema", "outputSchema"):
            schema = tool[key]
            assert schema["type"] == "object"
            nodes = [n for n in walk(schema) if isinstance(n, dict)]
            for node in nodes:
                assert not isinstance(node.get("title"), str), (tool["name"], key, node)
                assert {"type": "null"} not in node.get("anyOf", []), (tool["name"], key, node)
                assert node.get("type") != "null" and "null" not in (node.get("type") or [])
            refs = {n["$ref"].removeprefix("#/$defs/") for n in nodes if isinstance(n.get("$ref"), str)}
            assert refs == set(schema.get("$defs", {})), (tool["name"], key)
        assert "$defs" not in tool["inputSchema"], tool["name"]  # nested input models are written in place


# -- answers -----------------------------------------------------------------------------------


async def test_memory_recent_of_fifty_short_events_is_lean(client: Client) -> None:
    """50 short events fit 10,000 characters, carry no null or default fields, and the text is the same object."""
    for i in range(50):
        await call(client, "memory_record", kind="note", text=f"step {i} done", tags=["run"])
    result = await client.call_tool("memory_recent", {})
    structured = result.structured_content
    assert structured is not None and structured["count"] == 50
    assert len(compact(structured)) <= RECENT_BUDGET, len(compact(structured))
    assert all(v is not None for n in walk(structured) if isinstance(n, dict) for v in n.values())
    event = structured["events"][0]
    assert set(event) == {"event_id", "ts", "kind", "text", "tags", "run_id"}
    # One compact line, not a second pretty-printed copy.
    (block,) = result.content
    assert block.text == compact(structured)  # type: ignore[union-attr]


async def test_user_payloads_keep_their_nulls_and_defaults(client: Client) -> None:
    """Only our own record fields are slimmed: data given by the caller comes back exactly as given."""
    data = {"a": None, "b": [], "c": {"d": None}, "severity": 2}
    await call(client, "memory_record", kind="raw", data=data, severity=3)
    (event,) = (await call(client, "memory_recent", kinds=["raw"]))["events"]
    assert event["data"] == data and event["severity"] == 3


async def test_write_tools_answer_with_ids_not_echoes(client: Client) -> None:
    """memory_record and memory_record_tool_result return the new id and time, not the whole record."""
    recorded = await call(client, "memory_record", kind="decision", text="use adamw " * 20)
    assert set(recorded) == {"event_id", "ts"}
    result = await call(client, "memory_record_tool_result", tool="train", outputs=[{"name": "loss", "value": 0.5}])
    assert set(result) == {"event_id", "ts"}
    saved = await call(client, "artifact_save", text="a report", kind="report")
    pinned = await call(client, "artifact_pin", artifact_id=saved["artifact_id"])
    assert pinned == {"artifact_id": saved["artifact_id"], "pinned": True}


async def test_experiment_log_sends_its_novelty_check_once(client: Client) -> None:
    """The decision packet carries the novelty check; no second copy, no echo of the run's own fields."""
    logged = await call(client, "experiment_log", description="raise lr to 0.04", status="keep",
                        metrics={"val_bpb": 0.99}, hypothesis="faster convergence", notes="seed 1")  # fmt: skip
    assert "novelty_guard" not in logged and "novelty" not in logged
    assert logged["decision_packet"]["novelty"]["classification"]
    assert not {"description", "hypothesis", "notes", "metrics"} & set(logged)
    assert compact(logged).count('"classification"') == 1


async def test_graph_nodes_carry_only_payload_fields_that_differ_from_defaults(
    client: Client, store: MemoryStore
) -> None:
    """A semantic fact comes back with its fact and set fields, not ~15 defaulted ones; the store keeps them all."""
    await call(client, "graph_write", nodes=[{"node_type": "semantic", "agent_id": "a", "payload": {"fact": "x"}}])
    (node,) = (await call(client, "graph_query", op="since", agent_id="a", since="2000-01-01T00:00:00Z"))["nodes"]
    assert set(node["payload"]) <= {"fact", "source_episode_id", "last_referenced_at"}, node["payload"]
    assert node["payload"]["fact"] == "x"
    stored = store.graph.query("since", "a", since="2000-01-01T00:00:00Z").nodes[0]
    assert stored.payload["confidence"] == 0.7 and "reference_count" in stored.payload
    # A snapshot is a file format: it keeps every field.
    snapshot = (await call(client, "graph_export", agent_id="a"))["snapshot"]
    assert snapshot["schema_version"] == "1.0" and "reference_count" in snapshot["nodes"][0]["payload"]


# -- strict arguments --------------------------------------------------------------------------


async def test_an_unknown_argument_is_refused_by_name(client: Client, store: MemoryStore) -> None:
    """limt=5 is not silently ignored: the error names it, suggests limit and lists the valid parameters."""
    message = await error(client, "memory_recent", limt=5)
    assert "'limt'" in message and "did you mean 'limit'" in message
    assert "kinds" in message and "data_only" in message
    message = await error(client, "memory_record", kind="note", txt="typo")
    assert "'txt'" in message and store.events.count() == 0  # nothing was written


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("memory_recent", {"limit": "ten"}, 'limit must be a whole number, got "ten"'),
        ("memory_record", {}, "kind is required"),
        ("memory_search", {"query": "x", "mode": "fuzzy"}, "mode must be one of 'hybrid', 'semantic' or 'lexical'"),
        ("memory_record_tool_result", {"tool": "t", "inputs": [{"value": 1}]}, "inputs.0.name is required"),
        ("file_list", {"recursive": "maybe"}, "recursive must be true or false"),
    ],
)
async def test_validation_errors_are_in_our_own_words(
    client: Client, tool: str, arguments: dict[str, Any], expected: str
) -> None:
    """Which parameter, what was wrong, what it is for; never a library URL or pydantic's phrasing."""
    message = await error(client, tool, **arguments)
    assert expected in message, message
    assert f"invalid arguments for {tool}" in message
    assert "pydantic" not in message and "http" not in message and "Input should" not in message


# -- prompts -----------------------------------------------------------------------------------


async def test_a_prompt_without_its_required_argument_is_a_clear_error(client: Client) -> None:
    """get_prompt("recall_context") without task: invalid params naming task, not an internal error."""
    with pytest.raises(MCPError) as caught:
        await client.get_prompt("recall_context", {})
    assert caught.value.error.code == -32602
    assert "'task'" in caught.value.error.message and "Internal" not in caught.value.error.message
    with pytest.raises(MCPError) as caught:
        await client.get_prompt("recall_context", {"task": "x", "tsak": "y"})
    assert "'tsak'" in caught.value.error.message
    with pytest.raises(MCPError) as caught:
        await client.get_prompt("recal_context", {})
    assert "recall_context" in caught.value.error.message


async def test_prompts_render_cleanly_without_their_optional_arguments(client: Client) -> None:
    """An empty optional argument leaves no "Topic: " line, and a defaulted one takes its default."""
    notes = (await client.get_prompt("save_session_notes", {})).messages[0].content.text  # type: ignore[union-attr]
    assert "Topic:" not in notes and "summary given:" not in notes
    filled = (await client.get_prompt("save_session_notes", {"topic": "lr"})).messages[0].content.text  # type: ignore[union-attr]
    assert "Topic: lr" in filled
    review = (await client.get_prompt("morning_review", {})).messages[0].content.text  # type: ignore[union-attr]
    assert "last 16 hours" in review and "last  hours" not in review
    plan = (await client.get_prompt("plan_next_experiment", {"idea": "lr 0.04"})).messages[0].content.text  # type: ignore[union-attr]
    assert "Mode: exploit." in plan and "Family:" not in plan


# -- over stdio --------------------------------------------------------------------------------


async def test_a_stdio_server_refuses_bad_arguments_and_prompts_without_a_traceback(
    data_dir: Path, tmp_path: Path
) -> None:
    """The same refusals from a real subprocess, and nothing like a traceback on its stderr."""
    stderr_path = tmp_path / "stderr.txt"
    with stderr_path.open("w") as stderr:
        async with Client(stdio_client(stdio_params(data_dir), errlog=stderr)) as client:
            message = await error(client, "memory_recent", limt=5)
            assert "'limt'" in message and "limit" in message
            with pytest.raises(MCPError) as caught:
                await client.get_prompt("recall_context", {})
            assert "'task'" in caught.value.error.message
            recorded = await client.call_tool("memory_record", {"kind": "note", "text": "over stdio"})
            assert recorded.structured_content is not None
            assert recorded.content[0].text == compact(recorded.structured_content)  # type: ignore[union-attr]
    assert "Traceback" not in stderr_path.read_text()
