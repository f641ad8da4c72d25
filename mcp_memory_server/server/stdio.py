"""The stdio transport: newline-delimited JSON-RPC with every message bounded and every bad one answered.

The SDK's own stdio reader buffers a line of any length and drops a line it cannot
parse with a debug log, so a client that sent one (nested ~200 deep, say) waits for an
answer forever. Here a line over ``max_request_bytes`` is discarded as it streams in,
:func:`~._limits.check_message` bounds depth and size before parsing, and anything
refused or unparsable is answered with a JSON-RPC error (-32600 or -32700), carrying
the request's id where it can be read.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import mcp_types as types
from mcp.server.mcpserver import MCPServer
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from ..config import Config
from ._limits import INVALID_REQUEST, PARSE_ERROR, MessageLimits, Rejection, check_message, request_id, too_large

logger = logging.getLogger(__name__)

_DISCARD_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class _Oversize:
    prefix: bytes  # the first bytes of the refused line, for its id


class _BoundedLines:
    """Lines from a binary stream, none held beyond ``max_bytes``: a longer one is skipped as it arrives."""

    def __init__(self, stream: BinaryIO, max_bytes: int) -> None:
        self._stream = stream
        self._max = max_bytes

    def next(self) -> bytes | _Oversize | None:
        """The next line (without its newline), an :class:`_Oversize` marker, or None at end of input."""
        line = self._stream.readline(self._max + 1)
        if not line:
            return None
        if line.endswith(b"\n"):
            return line[:-1]
        if len(line) <= self._max:
            return line  # the last line, without a newline
        prefix = line[:4096]
        del line
        while True:
            rest = self._stream.readline(_DISCARD_CHUNK)
            if not rest or rest.endswith(b"\n"):
                return _Oversize(prefix)


def parse_line(line: bytes, limits: MessageLimits) -> SessionMessage | Rejection | None:
    """One stdio line as a message to serve, a rejection to answer, or None (blank, or a bad notification)."""
    if not line.strip():
        return None
    rejection = check_message(line, limits)
    if rejection is not None:
        return rejection
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(line, by_name=False))
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"] if exc.errors() else str(exc)
    try:
        decoded = json.loads(line)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        return Rejection(PARSE_ERROR, f"message is not valid UTF-8 JSON ({exc}); send one JSON object per line")
    if isinstance(decoded, dict) and "method" in decoded and "id" not in decoded:
        logger.warning("dropped an invalid notification: %s", reason)  # JSON-RPC: never answer a notification
        return None
    return Rejection(
        INVALID_REQUEST, f"message is not a valid JSON-RPC 2.0 request or notification: {reason}", request_id(line)
    )


def _claim_std_streams() -> tuple[BinaryIO, BinaryIO, Callable[[bool], None]]:
    """Private handles on the wire; fd 0 then reads the null device and fd 1 writes to stderr.

    A stray ``print`` or a library's progress output would otherwise corrupt the JSON-RPC
    stream, and a child process could eat the client's requests.
    """
    sys.stdout.flush()
    wire_in, wire_out = os.dup(0), os.dup(1)  # non-inheritable: children never see the wire
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)

    def restore(reader_done: bool) -> None:
        sys.stdout.flush()
        os.dup2(wire_out, 1)
        os.dup2(wire_in, 0)
        if reader_done:  # else a reader still blocked on it could later read whatever file reuses the number
            os.close(wire_in)
        os.close(wire_out)

    reader = open(wire_in, "rb", buffering=65536, closefd=False)  # noqa: SIM115 - closed by restore
    writer = open(wire_out, "wb", closefd=False)  # noqa: SIM115 - closed by restore
    return reader, writer, restore


_ANSWERS_AFTER_EOF_S = 30.0
"""How long requests still running at end of input may take to be answered before the session closes."""


async def serve_stdio(server: MCPServer, config: Config) -> None:
    """Serve ``server`` over this process's stdin/stdout until the client closes stdin."""
    limits = MessageLimits.from_config(config)
    wire_in, wire_out, restore = _claim_std_streams()
    lines = _BoundedLines(wire_in, limits.max_bytes)
    write_lock = anyio.Lock()

    def write_line(data: bytes) -> None:
        wire_out.write(data + b"\n")
        wire_out.flush()

    async def emit(data: bytes) -> None:
        async with write_lock:  # one whole line at a time: two writers must not interleave
            await anyio.to_thread.run_sync(write_line, data)

    inbound_send, inbound = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    outbound, outbound_receive = anyio.create_memory_object_stream[SessionMessage](0)

    # stdin is read on a daemon thread, not a worker thread: on Ctrl-C the loop stops at
    # once, and a worker still blocked in readline() would hold interpreter exit until the
    # client closed stdin (SIGINT seemed ignored). A daemon thread dies with the process.
    raw_send, raw_lines = anyio.create_memory_object_stream[bytes | _Oversize | None](0)
    token = anyio.lowlevel.current_token()

    def pump() -> None:
        try:
            while True:
                line = lines.next()
                anyio.from_thread.run(raw_send.send, line, token=token)
                if line is None:
                    return
        except Exception:  # the loop is gone or stopped listening: nothing to deliver to
            return

    pump_thread = threading.Thread(target=pump, name="mcp-stdio-reader", daemon=True)
    pump_thread.start()

    # Requests forwarded and not yet answered. A client may write its requests and close stdin
    # at once (a shell pipe): closing the session then would cancel the calls still running,
    # whose writes commit but whose answers were lost, so end of input waits for them first.
    unanswered: set[Any] = set()
    all_answered = anyio.Event()
    all_answered.set()

    async def read_requests() -> None:
        nonlocal all_answered
        async with inbound_send, raw_lines:
            async for line in raw_lines:
                if line is None:
                    # Bounded: a request the SDK drops without an answer must not keep the
                    # process alive after its client has gone.
                    with anyio.move_on_after(_ANSWERS_AFTER_EOF_S):
                        await all_answered.wait()
                    return
                item = too_large(None, limits, line.prefix) if isinstance(line, _Oversize) else parse_line(line, limits)
                if isinstance(item, Rejection):
                    await emit(item.body())
                elif item is not None:
                    message = item.message
                    if isinstance(message, types.JSONRPCRequest):
                        unanswered.add(message.id)
                        if all_answered.is_set():
                            all_answered = anyio.Event()
                    elif isinstance(message, types.JSONRPCNotification) and message.method == "notifications/cancelled":
                        answered(message.params.get("requestId") if isinstance(message.params, dict) else None)
                    await inbound_send.send(item)

    async def write_responses() -> None:
        async with outbound_receive:
            async for message in outbound_receive:
                await emit(message.message.model_dump_json(by_alias=True, exclude_unset=True).encode())
                if isinstance(message.message, types.JSONRPCResponse | types.JSONRPCError):
                    answered(message.message.id)

    def answered(request: Any) -> None:  # a request cancelled by its client needs no answer
        unanswered.discard(request)
        if not unanswered:
            all_answered.set()

    # MCPServer.run_stdio_async runs this same loop on the SDK's reader; there is no public way to give it ours.
    lowlevel = server._lowlevel_server
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(read_requests)
            async with anyio.create_task_group() as serving:
                serving.start_soon(write_responses)
                async with outbound:
                    await lowlevel.run(inbound, outbound, lowlevel.create_initialization_options())
            tasks.cancel_scope.cancel()  # every answer is written; stop waiting on stdin
    finally:
        restore(not pump_thread.is_alive())
