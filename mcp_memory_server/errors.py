"""The one error hierarchy raised by the core and mapped to MCP tool errors by the server.

Every message says what was wrong and what to do about it; the server passes it to the
client unchanged.
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "ConcurrencyError",
    "Conflict",
    "InvalidInput",
    "LimitExceeded",
    "MemoryServerError",
    "NotFound",
    "StorageError",
]


class MemoryServerError(Exception):
    """Base class of every anticipated error in mcp-memory-server."""


class InvalidInput(MemoryServerError, ValueError):
    """An argument has the wrong type, shape or value."""


class LimitExceeded(InvalidInput):
    """An argument is larger than a configured limit."""


class NotFound(MemoryServerError, LookupError):
    """The record, path, version or node asked for does not exist."""


class Conflict(MemoryServerError):
    """A conditional write lost: the stored state is not what the caller expected."""


ConcurrencyError = Conflict
"""Flyte's name for :class:`Conflict`."""


class AccessDenied(MemoryServerError, PermissionError):
    """The operation touches something outside what this server may touch."""


class StorageError(MemoryServerError, OSError):
    """The store could not be read or written (disk full, read-only, newer schema)."""
