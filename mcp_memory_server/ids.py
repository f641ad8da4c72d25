"""Time-sortable identifiers and RFC 3339 timestamps shared by every capability."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime

__all__ = ["new_id", "new_ids", "parse_timestamp", "utc_now"]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_lock = threading.Lock()
_last_ms = 0
_last_random = 0


# IDs are made on hot paths (a batch of events), so 10 bits at a time become two characters.
_PAIRS = [first + second for first in _CROCKFORD for second in _CROCKFORD]
_PAIR_SHIFTS = tuple(range(120, -1, -10))
_TIME_MASK, _RANDOM_MASK = (1 << 50) - 1, (1 << 80) - 1  # 10 and 16 characters


def _encode_ulid(time_ms: int, random_part: int) -> str:
    """The 26 Crockford base32 characters of a 50-bit time and an 80-bit random part."""
    value = ((time_ms & _TIME_MASK) << 80) | (random_part & _RANDOM_MASK)
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _PAIR_SHIFTS])


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
    return f"{prefix}_{_encode_ulid(now_ms, random_part)}"


def new_ids(prefix: str, count: int) -> list[str]:
    """``count`` ids as ``new_id`` would make them one after another, under one lock (a batch's ids)."""
    global _last_ms, _last_random
    if count <= 0:
        return []
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms <= _last_ms:
            now_ms = _last_ms
            first = _last_random + 1
        else:
            first = int.from_bytes(os.urandom(10), "big") >> 1
        _last_ms = now_ms
        _last_random = first + count - 1
    # The time and the random part's upper 60 bits are the same for runs of ids: spelled once per run.
    ids = []
    head_of = -1
    head = ""
    for random_part in range(first, first + count):
        random_part &= _RANDOM_MASK
        upper = random_part >> 20
        if upper != head_of:
            head_of = upper
            head = prefix + "_" + _encode_ulid(now_ms, random_part)[:22]
        ids.append(head + _PAIRS[(random_part >> 10) & 1023] + _PAIRS[random_part & 1023])
    return ids


_second: tuple[int, str] = (-1, "")  # the last whole second formatted, reused within that second


def utc_now() -> str:
    """Return the current time as RFC 3339 UTC with microseconds (``…T12:00:00.000001Z``)."""
    global _second
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    cached, text = _second
    if seconds != cached:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _second = (seconds, text)
    return f"{text}.{nanos // 1000:06d}Z"


def parse_timestamp(value: str, *, field: str) -> str:
    """Normalise an RFC 3339 / ISO 8601 timestamp to the stored UTC form.

    Raises:
        InvalidInput: ``value`` is not a timestamp.
    """
    from .errors import InvalidInput

    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        raise InvalidInput(f"{field}={value!r} is not an RFC 3339 timestamp; use e.g. '2026-01-31T12:00:00Z'") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
