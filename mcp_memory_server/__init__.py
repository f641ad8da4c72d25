"""mcp-memory-server: durable, auditable, searchable memory for LLM agents.

The library API is :class:`MemoryStore`; the MCP server and the CLI are thin layers over it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mcp-memory-server")
except PackageNotFoundError:  # running from a checkout without installing
    __version__ = "0.0.0+local"

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .aio import AsyncMemoryStore
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


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def __getattr__(name: str) -> Any:
    # The stores are imported on first use, not with the package: the server (``python -m
    # mcp_memory_server``) answers ``initialize`` before the capabilities behind them load.
    if name == "MemoryStore":
        from .store import MemoryStore

        return MemoryStore
    if name == "AsyncMemoryStore":
        from .aio import AsyncMemoryStore

        return AsyncMemoryStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
