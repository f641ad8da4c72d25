"""mcp-memory-server: durable, auditable, searchable memory for LLM agents.

The library API is :class:`MemoryStore`; the MCP server and the CLI are thin layers over it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mcp-memory-server")
except PackageNotFoundError:  # running from a checkout without installing
    __version__ = "0.0.0+local"

from .aio import AsyncMemoryStore
from .config import Config
from .errors import (
    AccessDenied,
    ConcurrencyError,
    Conflict,
    InvalidInput,
    LimitExceeded,
    MemoryServerError,
    NotFound,
    StorageError,
)
from .store import MemoryStore

__all__ = [
    "AccessDenied",
    "AsyncMemoryStore",
    "ConcurrencyError",
    "Config",
    "Conflict",
    "InvalidInput",
    "LimitExceeded",
    "MemoryServerError",
    "MemoryStore",
    "NotFound",
    "StorageError",
    "__version__",
]
