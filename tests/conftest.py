"""Shared fixtures: a fresh store in a temp directory, and an in-process MCP client over it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from mcp import Client

from mcp_memory_server import MemoryStore
from mcp_memory_server.embeddings import Embedder
from mcp_memory_server.server import build_server


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def embedding_model() -> Embedder:
    """The real all-MiniLM-L6-v2, loaded once per test session; every store's embedder then shares it."""
    model = Embedder()
    assert model.wait(), model.error
    return model


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(data_dir: Path) -> Iterator[MemoryStore]:
    """A fresh store on a real SQLite file and blob folder."""
    with MemoryStore.open(data_dir) as opened:
        yield opened


@pytest.fixture
async def client(store: MemoryStore) -> AsyncIterator[Client]:
    """An MCP client connected in-process to a server over ``store``."""
    async with Client(build_server(store)) as connected:
        yield connected
