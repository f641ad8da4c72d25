"""Memory per request against its size: hostile and largest-legitimate bodies, and a 64 MiB resource read.

    python bench/bench_bounds.py                                  # about 2-4 minutes; one fresh server per case
    python bench/bench_bounds.py --only base64_16mib_served,resource_64mib_blob

Each case runs against a fresh ``serve --transport http`` process on 127.0.0.1, so the
server's peak resident set (VmHWM) after the case, minus its resident set before, is
what that one request cost. The ratio to the body size is the figure RELIABILITY.md
quotes. Prints a table (stderr) and the JSON (stdout); writes ``bench/results/bounds-*.json``.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from common import machine, memory_kib, print_table, write_results
from mcp import Client

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
from _procs import HttpServer, http_server  # noqa: E402

MIB = 1024 * 1024
HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def envelope(arguments: bytes, name: bytes = b"memory_record") -> bytes:
    return (b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"' + name
            + b'","arguments":' + arguments + b"}}")  # fmt: skip


def deep(size: int) -> bytes:
    return b"[" * (size // 2) + b"]" * (size // 2)


def wide(size: int) -> bytes:
    return envelope(b'{"kind":"x","data":[' + b"[]," * (size // 3 - 40) + b"[]]}")


def at_item_limit(_size: int) -> bytes:
    """65,536 values (the default max_request_items) of the costliest kind: accepted, parsed, stored."""
    return envelope(b'{"kind":"x","data":[' + b"[]," * (65_536 - 10) + b"[]]}")


def largest_base64(_size: int) -> bytes:
    """16 MiB decoded (max_base64_bytes) through artifact_save: the largest legitimate request."""
    payload = base64.b64encode(os.urandom(16 * MIB))
    return envelope(b'{"base64":"' + payload + b'"}', b"artifact_save")


CASES: dict[str, tuple[Callable[[int], bytes], int]] = {
    "deep_30mib_refused": (deep, 30 * MIB),
    "wide_30mib_refused": (wide, 30 * MIB),
    "items_at_limit_served": (at_item_limit, 0),
    "base64_16mib_served": (largest_base64, 0),
}


def session(server: HttpServer) -> dict[str, str]:
    """Initialize over raw HTTP; return the headers that carry the session."""
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}}  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    conn.request("POST", "/mcp", json.dumps(init), HEADERS)
    response = conn.getresponse()
    response.read()
    headers = {**HEADERS, "Mcp-Session-Id": response.getheader("mcp-session-id") or ""}
    conn.request("POST", "/mcp", json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}), headers)
    conn.getresponse().read()
    conn.close()
    return headers


def settle(pid: int, quiet_s: float = 4.0, limit_s: float = 120.0) -> None:
    """Wait until the resident set stops moving (the embedding model loads in the background after a first call)."""
    deadline = time.monotonic() + limit_s
    last, since = memory_kib(pid)["VmRSS"], time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < quiet_s:
        time.sleep(0.5)
        now = memory_kib(pid)["VmRSS"]
        if abs(now - last) > 1024:
            last, since = now, time.monotonic()


def warm_up(server: HttpServer, headers: dict[str, str]) -> None:
    """One small write of each kind, then settle: the case's growth is then the request's, not start-up's."""
    post(server, envelope(b'{"kind":"warm","data":[1]}'), headers)
    post(server, envelope(b'{"text":"warm"}', b"artifact_save"), headers)
    settle(server.process.pid)


def post(server: HttpServer, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    try:
        conn.request("POST", "/mcp", body, headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def run_case(root: Path, name: str, make: Callable[[int], bytes], size: int) -> dict[str, Any]:
    body = make(size)
    with http_server(root / name, "http") as server:
        headers = session(server)
        warm_up(server, headers)
        before = memory_kib(server.process.pid)
        started = time.perf_counter()
        status, answer = post(server, body, headers)
        seconds = time.perf_counter() - started
        after = memory_kib(server.process.pid)
    growth = max(after["VmHWM"] - before["VmRSS"], 0) * 1024
    return {"case": name, "body_bytes": len(body), "status": status, "answer": answer[:160].decode(errors="replace"),
            "rss_before_mib": round(before["VmRSS"] / 1024, 1), "peak_growth_mib": round(growth / MIB, 1),
            "peak_growth_per_body_byte": round(growth / len(body), 2), "seconds": round(seconds, 2)}  # fmt: skip


async def resource_case(root: Path) -> dict[str, Any]:
    """A 64 MiB blob read as a resource: one bounded chunk comes back, not the blob."""
    blob_path = root / "blob.bin"
    blob_path.write_bytes(os.urandom(64 * MIB))
    with http_server(root / "resource", "http") as server:
        async with Client(server.url) as client:
            saved = await client.call_tool("artifact_save", {"path": str(blob_path)})
            uri = (saved.structured_content or {})["uri"]
            await client.call_tool("memory_record", {"kind": "warm", "data": [1]})
            await anyio.to_thread.run_sync(settle, server.process.pid)
            before = memory_kib(server.process.pid)
            started = time.perf_counter()
            result = await client.read_resource(uri)
            seconds = time.perf_counter() - started
            after = memory_kib(server.process.pid)
    content = result.contents[0]
    returned = len(base64.b64decode(content.blob))  # type: ignore[union-attr]
    growth = max(after["VmHWM"] - before["VmRSS"], 0) * 1024
    return {"case": "resource_64mib_blob", "body_bytes": 64 * MIB, "status": 200,
            "answer": f"{returned} bytes, next_offset={(content.meta or {}).get('next_offset')}",
            "rss_before_mib": round(before["VmRSS"] / 1024, 1), "peak_growth_mib": round(growth / MIB, 1),
            "peak_growth_per_body_byte": round(growth / returned, 2), "seconds": round(seconds, 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="", help="comma-separated case names (default: all)")
    only = {c for c in parser.parse_args().only.split(",") if c}
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-bounds-") as tmp:
        root = Path(tmp)
        for name, (make, size) in CASES.items():
            if not only or name in only:
                rows.append(run_case(root, name, make, size))
                print(f"{name}: {rows[-1]}", file=sys.stderr)
        if not only or "resource_64mib_blob" in only:
            rows.append(anyio.run(resource_case, root))
    results = {"machine": machine(), "cases": rows,
               "note": "peak_growth: VmHWM after the one request minus VmRSS before it, fresh server per case; "
                       "per_body_byte for the resource case is per byte returned"}  # fmt: skip
    print_table("memory per request (fresh HTTP server per case)",
                ["case", "body MiB", "status", "peak +MiB", "x body", "s"],
                [[r["case"], round(r["body_bytes"] / MIB, 2), r["status"], r["peak_growth_mib"],
                  r["peak_growth_per_body_byte"], r["seconds"]] for r in rows])  # fmt: skip
    path = write_results("bounds", results)
    print(json.dumps(results, indent=2))
    print(f"\nwritten to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
