"""Time-sortable identifiers and RFC 3339 timestamps shared by every capability."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime

__all__ = ["new_id", "parse_timestamp", "utc_now"]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_lock = threading.Lock()
_last_ms = 0
_last_random = 0


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(_CROCKFORD[digit])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """Return a ULID with a type prefix, e.g. ``evt_01JD3…``.

    IDs made in one process are strictly increasing even within a millisecond, so
    sorting by ID is sorting by creation order.
    """
    global _last_ms, _last_random
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms <= _last_ms:
            now_ms = _last_ms
            _last_random += 1
        else:
            _last_random = int.from_bytes(os.urandom(10), "big") >> 1
        _last_ms = now_ms
        random_part = _last_random
    return f"{prefix}_{_encode(now_ms, 10)}{_encode(random_part, 16)}"


def utc_now() -> str:
    """Return the current time as RFC 3339 UTC with microseconds (``…T12:00:00.000001Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(value: str, *, field: str) -> str:
    """Normalise an RFC 3339 / ISO 8601 timestamp to the stored UTC form.

    Raises:
        InvalidInput: ``value`` is not a timestamp.
    """
    from .errors import InvalidInput

    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        raise InvalidInput(
            f"{field}={value!r} is not an RFC 3339 timestamp; use e.g. '2026-01-31T12:00:00Z'"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
