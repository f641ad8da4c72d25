"""Every tool, fuzzed from its published inputSchema: the server never dies and every failure is a clean tool error.

Arguments are generated from each tool's ``inputSchema`` as ``list_tools`` publishes it:
valid values (with boundary sizes), and invalid ones (wrong types, oversized strings,
deep JSON, odd Unicode, NUL, lone surrogates, hostile paths and ids). Each call goes
through a real MCP client to a live server. A failure must be ``isError`` with a message
that says something: never a traceback, and never the SDK's bare ``Error executing tool
<name>``, which means an unexpected exception escaped the tool. The store must pass
the engine's integrity check (tests/_engine.py) afterwards.

The default run makes a few hundred calls; ``python -m pytest -m slow tests/test_fuzz_tools.py``
runs the long campaign (``MCP_FUZZ_CALLS`` calls, default 20,000; ``MCP_FUZZ_SEED`` picks the seed).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from _engine import integrity
from _procs import SERVER, clean_env, read_line, stdio_params
from mcp import Client
from mcp.shared.exceptions import MCPError

from mcp_memory_server import MemoryStore
from mcp_memory_server.server import build_server

pytestmark = pytest.mark.anyio

# Small limits so that "just over the limit" is cheap to generate.
LIMITS = {
    "max_text_bytes": 8192,
    "max_base64_bytes": 16384,
    "max_json_depth": 16,
    "max_labels": 16,
    "max_path_bytes": 256,
    "max_page_size": 50,
    "max_response_bytes": 8192,
}

ODD_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",  # lone high surrogate
    "x\udfffy",  # lone low surrogate
    "\u202eevil\u202c",  # right-to-left override
    "\u200b\u200d\ufeff",  # zero-width characters and a BOM
    "e\u0301\u0301\u0301",  # stacked combining marks
    "\U0001f600\U0001f469\u200d\U0001f4bb",  # emoji and a ZWJ sequence
    "\uffff\ufffe",
    "\r\n\t\x1b[31m",
    "%s%n{0}${x}",
    "'; DROP TABLE events; --",
    "..",
    ".",
    "/",
    "../../etc/passwd",
    "/etc/passwd",
    "/dev/zero",
    "a/../../b",
    "a//b",
    "a\\b",
    "~/x",
    "cas://sha256/" + "0" * 64,
    "cas://sha256/zz",
    "artifact://x",
    "art_",
    "art_01ARZ3NDEKTSV4RRFFQ69G5FAV",
    "node_00000000000000000000000000",
    "2026-13-45T99:99:99Z",
    "1970-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z",
    "NaN",
    "-1",
]


def _huge_text(rng: random.Random) -> str:
    size = rng.choice([LIMITS["max_text_bytes"], LIMITS["max_text_bytes"] + 1, 3 * LIMITS["max_text_bytes"], 70_000])
    return rng.choice("aé\U0001f600") * (size // 2)


def _deep(rng: random.Random, depth: int) -> Any:
    value: Any = rng.choice([1, "x", None, [], {}])
    for _ in range(depth):
        value = [value] if rng.random() < 0.5 else {"k": value}
    return value


def hostile_value(rng: random.Random, pool: list[str]) -> Any:
    """A value of any type that a careless or hostile client might send."""
    roll = rng.randrange(15)
    if roll == 0:
        return rng.choice(ODD_TEXT)
    if roll == 1:
        return _huge_text(rng)
    if roll == 2:
        return _deep(rng, rng.choice([LIMITS["max_json_depth"], LIMITS["max_json_depth"] + 2, 200]))
    if roll == 3:
        return rng.choice([0, -1, 1, 2**31, -(2**63), 2**64, 10**30, -(10**30)])
    if roll == 4:
        return rng.choice([0.0, -0.0, 1e308, -1e308, 5e-324, 0.5, -2.5])
    if roll == 5:
        return rng.choice([True, False, None])
    if roll == 6:
        return [rng.choice(ODD_TEXT) for _ in range(rng.choice([0, 1, 3, LIMITS["max_labels"] + 1, 100]))]
    if roll == 7:
        return {rng.choice(ODD_TEXT) or "k": rng.choice([1, "v", None, [1], {"a": 1}]) for _ in range(rng.randrange(4))}
    if roll == 8:
        return {f"k{i}": i for i in range(rng.choice([LIMITS["max_labels"], LIMITS["max_labels"] + 1, 200]))}
    if roll == 9:
        return rng.choice(pool) if pool else "x"
    if roll == 10:
        return [{"name": rng.choice(ODD_TEXT), "value": rng.choice([1, None, "x"])}]
    if roll == 11:
        return rng.choice(pool)[: rng.randrange(1, 12)] if pool else "q"
    if roll == 12:
        return "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0xD7FF)])) for _ in range(20))
    if roll == 13:
        return [[[]], {}, [None]]
    return rng.choice(pool) + rng.choice(ODD_TEXT) if pool else "y"


class SchemaFuzzer:
    """Values for a JSON schema: mostly valid (with boundary sizes), sometimes hostile."""

    def __init__(self, rng: random.Random, defs: dict[str, Any], pool: list[str]) -> None:
        self.rng = rng
        self.defs = defs
        self.pool = pool

    def value(self, schema: dict[str, Any], depth: int = 0) -> Any:
        rng = self.rng
        if "$ref" in schema:
            return self.value(self.defs[schema["$ref"].rsplit("/", 1)[-1]], depth)
        if "anyOf" in schema:
            return self.value(rng.choice(schema["anyOf"]), depth)
        if "enum" in schema:
            return rng.choice(schema["enum"])
        kind = schema.get("type")
        if kind is None:  # any JSON value
            return self.any_json(depth)
        if kind == "string":
            return self.string()
        if kind == "integer":
            return rng.choice([0, 1, 2, 3, 10, 49, 50, 51, 500, 10**6, -1])
        if kind == "number":
            low = schema.get("exclusiveMinimum", schema.get("minimum"))
            return rng.choice([0.001, 0.5, 1.0, 16.0, 1e6, -1.0, 0.0] if low is None else [low, low + 1e-9, low + 1])
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "null":
            return None
        if kind == "array":
            items = schema.get("items", {})
            count = rng.choice([0, 1, 2, 3, LIMITS["max_labels"], LIMITS["max_labels"] + 1])
            return [self.value(items, depth + 1) for _ in range(count if depth < 3 else 1)]
        if kind == "object":
            return self.object(schema, depth)
        return None

    def string(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.35 and self.pool:
            return rng.choice(self.pool)
        if roll < 0.55:
            return rng.choice(["x", "note", "loss", "notes/a.md", "docs/b.txt", "default", "agent", "val_bpb", "keep"])
        if roll < 0.75:
            return rng.choice(ODD_TEXT)
        if roll < 0.85:
            return "w" * rng.choice([LIMITS["max_path_bytes"], LIMITS["max_path_bytes"] + 1, 1000])
        return " ".join(rng.choice(["alpha", "beta", "gamma", "loss", "lr", "0.04", "run"]) for _ in range(5))

    def any_json(self, depth: int) -> Any:
        rng = self.rng
        if depth > 3:
            return rng.choice([1, "x", None, True])
        roll = rng.randrange(6)
        if roll == 0:
            return {self.string()[:20] or "k": self.any_json(depth + 1) for _ in range(rng.randrange(4))}
        if roll == 1:
            return [self.any_json(depth + 1) for _ in range(rng.randrange(4))]
        return rng.choice([0, 1.5, "text", True, None, -7])

    def object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        rng = self.rng
        properties: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", []))
        result: dict[str, Any] = {}
        for name, sub in properties.items():
            if name in required or rng.random() < 0.4:
                result[name] = self.value(sub, depth + 1)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and rng.random() < 0.5:
            for _ in range(rng.randrange(1, 4)):
                result[self.string()[:30] or "k"] = self.value(extra, depth + 1)
        elif extra is True and rng.random() < 0.3:
            result[rng.choice(["node_type", "payload", "id", "extra", "to_id", "label"])] = self.any_json(depth + 1)
        return result

    def arguments(self, tool_schema: dict[str, Any]) -> dict[str, Any]:
        """One argument object: valid-shaped, then with some fields made hostile, dropped or added."""
        rng = self.rng
        args = self.object(tool_schema, 0)
        mode = rng.random()
        if mode < 0.45:
            return args  # valid shapes with boundary sizes
        properties = list(tool_schema.get("properties", {}))
        for _ in range(rng.randrange(1, 3)):
            if properties and rng.random() < 0.85:
                args[rng.choice(properties)] = hostile_value(rng, self.pool)
            else:
                args[rng.choice(ODD_TEXT) or "unknown"] = hostile_value(rng, self.pool)
        if (required := tool_schema.get("required")) and rng.random() < 0.1:
            args.pop(rng.choice(required), None)
        return args


def is_crash(tool: str, text: str) -> bool:
    """The SDK's text for an exception that is not a MemoryServerError/ToolError: it carries no detail."""
    return text.strip() == f"Error executing tool {tool}" or "Traceback" in text


async def seed(client: Client) -> list[str]:
    """Real ids, uris, paths and names for the fuzzer to reuse, so calls reach past lookup."""
    pool: list[str] = []

    async def ok(name: str, **arguments: Any) -> dict[str, Any]:
        result = await client.call_tool(name, arguments)
        assert not result.is_error, result.content
        assert result.structured_content is not None
        return result.structured_content

    for i in range(3):
        saved = await ok("artifact_save", text=f"seed report {i}", kind="report", metrics={"val_acc": i / 10})
        pool += [saved["artifact_id"], saved["uri"]]
        event = await ok("memory_record", kind="note", data={"i": i}, tags=["seed"])
        pool.append(event["event_id"])
        written = await ok("file_write", path=f"notes/seed{i}.md", text=f"seed {i}")
        pool += [written["path"], written["sha256"]]
    await ok("memory_record_tool_result", tool="train", outputs=[{"name": "loss", "value": 0.5}])
    nodes = await ok(
        "graph_write",
        nodes=[
            {"node_type": "semantic", "payload": {"fact": "the sky is blue"}},
            {"node_type": "episode", "payload": {"tool_calls": ["train"]}},
        ],
    )
    pool += [str(v) for v in json.dumps(nodes).split('"') if v.startswith("node_")]
    logged = await client.call_tool(
        "experiment_log", {"description": "lr 0.04", "status": "keep", "metrics": {"val_bpb": 1.0}}
    )
    if logged.structured_content:
        pool += [str(v) for v in logged.structured_content.values() if isinstance(v, str) and v.startswith("run_")]
    pool += ["seed.txt", "seed-dir", "train", "loss", "notes/"]
    return pool


async def fuzz(client: Client, calls: int, rng: random.Random) -> tuple[Counter[str], list[str]]:
    """``calls`` generated calls across every tool; returns outcome counts and any crash descriptions."""
    tools = (await client.list_tools()).tools
    pool = await seed(client)
    fuzzers = {t.name: SchemaFuzzer(rng, t.input_schema.get("$defs", {}), pool) for t in tools}
    outcomes: Counter[str] = Counter()
    crashes: list[str] = []
    for i in range(calls):
        tool = tools[i % len(tools)]
        arguments = fuzzers[tool.name].arguments(tool.input_schema)
        if not _encodable(arguments):
            # The SDK client cannot send a lone surrogate as UTF-8; the raw JSON-RPC test sends those.
            outcomes["unsendable"] += 1
            continue
        try:
            result = await client.call_tool(tool.name, arguments)
        except MCPError as exc:
            # Refused before any tool ran (e.g. nested beyond max_request_depth): a clean protocol answer
            # if it says why; the server must then go on answering.
            outcomes["refused"] += 1
            if not exc.message.strip():
                crashes.append(f"{tool.name}({_short(arguments)}) -> protocol error without a message")
            continue
        if not result.is_error:
            outcomes["ok"] += 1
            continue
        outcomes["error"] += 1
        text = result.content[0].text if result.content else ""  # type: ignore[union-attr]
        if not text.strip() or is_crash(tool.name, text):
            crashes.append(f"{tool.name}({_short(arguments)}) -> {text[:300]!r}")
    outcomes["calls"] = calls
    return outcomes, crashes


def _encodable(arguments: dict[str, Any]) -> bool:
    try:
        json.dumps(arguments, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _short(arguments: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}"[:80] for k, v in arguments.items())


def _confine_local_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Allowed roots become a small scratch cwd and temp dir, so path= fuzzing ingests nothing large."""
    cwd, scratch_tmp = tmp_path / "cwd", tmp_path / "tmp"
    (cwd / "seed-dir").mkdir(parents=True)
    scratch_tmp.mkdir()
    (cwd / "seed.txt").write_text("a local file")
    (cwd / "seed-dir" / "inner.txt").write_text("inside a directory")
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_tmp))


async def run_campaign(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: int, seed_value: int) -> Counter[str]:
    _confine_local_paths(tmp_path, monkeypatch)
    data_dir = tmp_path / "store"
    with MemoryStore.open(data_dir, **LIMITS) as store:
        store.embedder.start()
        async with Client(build_server(store)) as client:
            outcomes, crashes = await fuzz(client, calls, random.Random(seed_value))
            assert not crashes, f"{len(crashes)} unexpected exceptions:\n" + "\n".join(crashes[:20])
            stats = await client.call_tool("memory_stats", {})
            assert not stats.is_error  # the server is alive and answering
    assert integrity(data_dir) == [("ok",)]
    print(f"fuzz: {dict(outcomes)}")
    return outcomes


async def test_every_tool_survives_a_few_hundred_generated_calls_with_only_clean_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedding_model: object
) -> None:
    """~600 schema-generated calls (valid, boundary, hostile) over every tool: clean errors only, integrity ok."""
    outcomes = await run_campaign(
        tmp_path, monkeypatch, calls=600, seed_value=int(os.environ.get("MCP_FUZZ_SEED", "7"))
    )
    assert outcomes["ok"] > 50 and outcomes["error"] > 50  # the generator reaches both sides


@pytest.mark.slow
async def test_every_tool_survives_a_long_generated_campaign(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedding_model: object
) -> None:
    """The long campaign: MCP_FUZZ_CALLS (default 20,000) generated calls, clean errors only, integrity ok."""
    calls = int(os.environ.get("MCP_FUZZ_CALLS", "20000"))
    await run_campaign(tmp_path, monkeypatch, calls=calls, seed_value=int(os.environ.get("MCP_FUZZ_SEED", "1")))


async def test_a_real_stdio_server_survives_hostile_arguments_and_answers_afterwards(tmp_path: Path) -> None:
    """The same generator over a stdio subprocess (real JSON encoding, surrogates escaped): the process never dies."""
    cwd = tmp_path / "cwd"
    (cwd / "seed-dir").mkdir(parents=True)
    (cwd / "seed.txt").write_text("a local file")
    data_dir = tmp_path / "store"
    settings = [f"--{k.replace('_', '-')}={v}" for k, v in LIMITS.items()]
    params = stdio_params(data_dir, *settings, env={"TMPDIR": str(cwd)}, cwd=cwd)
    with anyio.fail_after(180):
        async with Client(params) as client:
            outcomes, crashes = await fuzz(client, 150, random.Random(11))
            assert not crashes, "\n".join(crashes[:20])
            stats = await client.call_tool("memory_stats", {})
            assert not stats.is_error
    assert outcomes["calls"] == 150
    assert integrity(data_dir) == [("ok",)]


def test_raw_json_rpc_with_lone_surrogates_nul_and_garbage_gets_answers_and_the_server_lives(tmp_path: Path) -> None:
    """Escaped lone surrogates (which no SDK client sends), NUL, malformed lines: never a crash, the server lives."""
    data_dir = tmp_path / "store"
    process = subprocess.Popen(
        [*SERVER, "--data-dir", str(data_dir)], cwd=tmp_path,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=clean_env(),
    )  # fmt: skip

    def send(message: dict[str, Any] | str) -> None:
        assert process.stdin is not None
        line = message if isinstance(message, str) else json.dumps(message)  # ensure_ascii: "\\ud800" escapes
        process.stdin.write(line.encode() + b"\n")
        process.stdin.flush()

    replies: dict[int, dict[str, Any]] = {}

    def answer(request_id: int) -> dict[str, Any]:
        while request_id not in replies:
            message = json.loads(read_line(process))
            if isinstance(message.get("id"), int):
                replies[message["id"]] = message
        return replies[request_id]

    def check(tool: str, value: str, reply: dict[str, Any]) -> None:
        if "error" in reply:  # a protocol-level refusal is a clean answer too
            assert reply["error"]["message"], reply
        elif reply["result"].get("isError"):
            text = reply["result"]["content"][0]["text"]
            assert not is_crash(tool, text), (tool, value, text)

    try:
        send(
            {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "raw", "version": "0"},
                },
            }
        )
        assert "result" in answer(0)
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        hostile = ["\ud800", "a\udfffb", "\x00", "ok\x00nul", "\ud83d", "\udc00\ud800"]
        calls = [
            ("memory_record", lambda v: {"kind": v, "text": v, "tags": [v], "data": {v: v}}),
            ("artifact_save", lambda v: {"text": v, "kind": v, "labels": {v: v}}),
            ("file_write", lambda v: {"path": f"notes/{v}.md", "text": v}),
            ("graph_write", lambda v: {"nodes": [{"node_type": "semantic", "payload": {"fact": v}}]}),
            ("experiment_log", lambda v: {"description": v, "status": "discard", "notes": v}),
            ("memory_search", lambda v: {"query": v}),
            ("artifact_search", lambda v: {"query": v, "kind": v}),
            ("file_read", lambda v: {"path": v}),
            ("novelty_check", lambda v: {"description": v}),
            ("graph_query", lambda v: {"op": "search", "query": v}),
        ]
        request_id = 1
        answered = 0
        dropped: dict[int, tuple[str, str]] = {}
        for tool, make in calls:
            for value in hostile:
                send({"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                      "params": {"name": tool, "arguments": make(value)}})  # fmt: skip
                if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
                    # The SDK's JSON parser refuses escaped lone surrogates; the stdio reader
                    # answers -32600 (checked below if it came), and the server must live on.
                    dropped[request_id] = (tool, value)
                else:
                    check(tool, value, answer(request_id))
                    answered += 1
                request_id += 1
        for garbage in ["{not json", "[]", '{"jsonrpc": "2.0", "id": 99999, "method": "no/such"}', "\x00" * 10]:
            send(garbage)
        send(
            {
                "jsonrpc": "2.0",
                "id": request_id,
                "method": "tools/call",
                "params": {"name": "memory_stats", "arguments": {}},
            }
        )
        assert answer(request_id)["result"].get("isError") is not True  # still alive and serving
        for dropped_id, (tool, value) in dropped.items():
            if dropped_id in replies:  # should a later SDK answer them, the answer must be clean
                check(tool, value, replies[dropped_id])
        assert answered == len(calls) * 2  # the NUL values
    finally:
        process.kill()
        process.communicate()
    assert integrity(data_dir) == [("ok",)]
