"""Bounds on one JSON-RPC message, checked on its raw bytes before anything parses it.

Both transports call :func:`check_message` first: the streamable-HTTP/SSE body middleware
(``http.py``) and the stdio reader (``stdio.py``). A parser turns every JSON value into a
Python object (an empty list costs ~60 bytes for its 2 bytes of JSON) and recurses once
per nesting level, so a message that is small on the wire can still cost gigabytes or
overflow the stack. The scan here looks only at the bytes, in a few C-speed passes
(``re.sub``, ``bytes.translate``, ``bytes.count``, ``bytes.replace``), and holds at most
two copies of the message at once.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..config import Config

PARSE_ERROR = -32700
INVALID_REQUEST = -32600

# A JSON string, escapes included; and the same when no string holds an escaped quote, which
# re scans ~7x faster (a base64 payload of 20 MiB: 0.15 s instead of 1 s).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_PLAIN_STRING = re.compile(rb'"[^"]*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_CURLY_TO_SQUARE = bytes.maketrans(b"{}", b"[]")
# Tokens the id lookup walks: strings whole, structure one byte at a time.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}:,]', re.DOTALL)
_SCALAR = re.compile(rb'\s*(-?\d{1,20}|"[^"\\]{0,256}"|null)')
_ID_SCAN_TOKENS = 10_000  # the id normally comes first; past this much structure, answer with id null


@dataclass(frozen=True, slots=True)
class MessageLimits:
    max_bytes: int
    max_depth: int
    max_items: int

    @classmethod
    def from_config(cls, config: Config) -> MessageLimits:
        return cls(config.max_request_bytes, config.max_request_depth, config.max_request_items)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A JSON-RPC error answer for a message refused before it was handled."""

    code: int
    message: str
    request_id: str | int | None = None

    def body(self) -> bytes:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        return json.dumps({"jsonrpc": "2.0", "id": self.request_id, "error": error}, separators=(",", ":")).encode()


def too_large(size: int | None, limits: MessageLimits, prefix: bytes = b"") -> Rejection:
    """The answer to a message over ``max_bytes`` (``size`` None: it was cut off unread)."""
    got = f"is {size} bytes, over" if size is not None else "is over"
    return Rejection(
        INVALID_REQUEST,
        f"request {got} the limit of {limits.max_bytes} bytes (max_request_bytes); send less per call, "
        "e.g. save big content from a server-local path or in several artifacts",
        request_id(prefix),
    )


def check_message(data: bytes, limits: MessageLimits) -> Rejection | None:
    """Why ``data`` (one whole message) must not be parsed, or None if it may be.

    Refuses more than ``max_bytes`` bytes, nesting deeper than ``max_depth`` (arrays and
    objects, outside strings) and more than ``max_items`` values (counted outside strings:
    one per comma, one per non-empty array or object, and the message itself). Unbalanced brackets are a parse error. Anything
    else, including other malformed JSON, is left to the parser, which is safe on
    input within these bounds.
    """
    if len(data) > limits.max_bytes:
        return too_large(len(data), limits, data[:4096])
    structure = (_STRING if b'\\"' in data else _PLAIN_STRING).sub(b"", data) if b'"' in data else data
    # Each value but the first of its container follows a comma; a container without one is empty.
    empty = structure.count(b"[]") + structure.count(b"{}")
    items = structure.count(b",") + structure.count(b"[") + structure.count(b"{") - empty + 1
    brackets = structure.translate(_CURLY_TO_SQUARE, _NOT_BRACKETS)
    del structure  # at most two copies of the message alive at once
    depth = _depth(brackets, limits.max_depth)
    del brackets
    if depth is None:
        return Rejection(PARSE_ERROR, "request is not valid JSON: its brackets do not balance", None)
    if depth > limits.max_depth:
        return Rejection(
            INVALID_REQUEST,
            f"request is nested more than {limits.max_depth} levels deep (max_request_depth); flatten it",
            request_id(data),
        )
    if items > limits.max_items:
        return Rejection(
            INVALID_REQUEST,
            f"request holds about {items} JSON values, over the limit of {limits.max_items} (max_request_items); "
            "split it into several calls",
            request_id(data),
        )
    if b'"' in data:
        return _repeated_key(data)
    return None


class _RepeatedKey(ValueError):
    pass


def _once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _RepeatedKey(key)
        seen[key] = value
    return seen


def _repeated_key(data: bytes) -> Rejection | None:
    """Refuses an object that names a key twice: JSON parsers keep the last, proxies and logs often the first.

    ``{"name": "memory_stats", "name": "artifact_save"}`` ran artifact_save (an attack, stop 30), so a
    policy in front of the server that reads the first key would allow one tool and see another run. The
    bounds above hold, so parsing it once more here is cheap; what fails to parse is the SDK's to report.
    """
    try:
        json.loads(data, object_pairs_hook=_once)
    except _RepeatedKey as exc:
        return Rejection(
            INVALID_REQUEST, f"request names the key {exc.args[0]!r} twice in one object; send each key once",
            request_id(data),
        )  # fmt: skip
    except (ValueError, RecursionError):
        pass  # malformed JSON is the SDK's parser's to answer
    return None


def _depth(brackets: bytes, limit: int) -> int | None:
    """Nesting depth of a ``[``/``]`` sequence, capped at ``limit + 1``; None if unbalanced.

    Each pass deletes every innermost ``[]`` pair, so the depth falls by exactly one per
    pass; an innocent message takes a few passes, and ``limit + 1`` opening brackets in a
    row settle the common deep attack at once.
    """
    if b"[" * (limit + 1) in brackets:
        return limit + 1
    passes = 0
    while brackets:
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            return None
        brackets = shorter
        passes += 1
        if passes > limit:
            return passes
    return passes


def request_id(data: bytes) -> str | int | None:
    """The top-level ``"id"`` of a JSON-RPC request, read without parsing the rest; None if not found."""
    depth = 0
    previous = b""
    for count, match in enumerate(_TOKEN.finditer(data)):
        if count > _ID_SCAN_TOKENS:
            return None
        token = match.group()
        if count == 0 and token != b"{":
            return None  # not an object: a batch, a scalar or garbage
        if token in (b"{", b"["):
            depth += 1
        elif token in (b"}", b"]"):
            depth -= 1
            if depth <= 0:
                return None
        elif token == b'"id"' and depth == 1 and previous in (b"{", b","):
            colon = data.find(b":", match.end())
            if colon < 0 or data[match.end() : colon].strip():
                return None
            value = _SCALAR.match(data, colon + 1)
            if value is None:
                return None
            parsed = json.loads(value.group(1))
            return parsed if isinstance(parsed, str | int) and not isinstance(parsed, bool) else None
        previous = token
    return None
