"""Shared fixtures: a fresh store in a temp directory, and an in-process MCP client over it.

The suite runs on either engine: ``pytest`` on SQLite (the default), ``pytest --engine
postgres`` on a real PostgreSQL cluster (``$MCP_MEMORY_TEST_DATABASE_URL``, else one this
session starts and stops). On PostgreSQL every test gets a new, empty schema through
``MCP_MEMORY_DATABASE_URL``, so each store it opens, in-process or in a subprocess,
lands there. Tests marked ``sqlite_only`` check what only the embedded file has.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from mcp import Client

from mcp_memory_server import MemoryStore
from mcp_memory_server.embeddings import Embedder
from mcp_memory_server.server import build_server


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--engine",
        choices=("sqlite", "postgres"),
        default=os.environ.get("MCP_MEMORY_TEST_ENGINE", "sqlite"),
        help="the metadata engine every test's store runs on",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: checks what only the embedded SQLite file has")
    config.addinivalue_line("markers", "postgres_only: needs the shared engine (several hosts on one database)")
    config.addinivalue_line("markers", "engine_free: opens no store (lint, types); runs once, on the SQLite run")
    config.addinivalue_line(
        "markers", "pgvector: needs a PostgreSQL server with pgvector (MCP_MEMORY_TEST_PG_BIN=pgserver); else skipped"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--engine") == "postgres":
        elsewhere: tuple[str, ...] = ("sqlite_only", "engine_free")
    else:
        elsewhere = ("postgres_only",)

    def skipped_here(item: pytest.Item) -> bool:
        return any(item.get_closest_marker(name) is not None for name in elsewhere)

    kept = [item for item in items if not skipped_here(item)]
    deselected = [item for item in items if skipped_here(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.fixture(scope="session")
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--engine"))


@pytest.fixture(scope="session")
def postgres_url(engine: str) -> Iterator[str | None]:
    """The cluster's URL on the PostgreSQL run (a failure to start fails the run, never skips it)."""
    if engine != "postgres":
        yield None
        return
    given = os.environ.get("MCP_MEMORY_TEST_DATABASE_URL")
    if given:
        yield given
        return
    from _postgres import start, stop

    directory = Path(tempfile.mkdtemp(prefix="mcp-memory-pg-"))
    url = start(directory)
    try:
        yield url
    finally:
        stop(directory)


@pytest.fixture
def database_url(postgres_url: str | None) -> str | None:
    """A URL for one more, separate store in this test (None on SQLite: a data directory is enough)."""
    if postgres_url is None:
        return None
    from _postgres import fresh_schema_url

    return fresh_schema_url(postgres_url)


@pytest.fixture
def fresh_database_url(postgres_url: str | None) -> Callable[[], str | None]:
    """Makes URLs for further, separate stores in one test: ``MemoryStore.open(d2, database_url=fresh_database_url())``.

    On SQLite it returns None, and the separate data directory is what separates the stores.
    """

    def fresh() -> str | None:
        if postgres_url is None:
            return None
        from _postgres import fresh_schema_url

        return fresh_schema_url(postgres_url)

    return fresh


@pytest.fixture(scope="module", autouse=True)
def _module_store_engine(postgres_url: str | None) -> Iterator[None]:
    """A module's shared stores (a server fixture of scope="module") land on the engine too, in a schema of their own."""
    with pytest.MonkeyPatch.context() as patch:
        if postgres_url is None:
            patch.delenv("MCP_MEMORY_DATABASE_URL", raising=False)
        else:
            from _postgres import fresh_schema_url

            patch.setenv("MCP_MEMORY_DATABASE_URL", fresh_schema_url(postgres_url))
        yield


@pytest.fixture(autouse=True)
def _store_engine(database_url: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    # Subprocesses inherit the variable (tests/_procs.clean_env keeps it); on the SQLite run a
    # URL from the developer's shell must not send the stores elsewhere.
    if database_url is None:
        monkeypatch.delenv("MCP_MEMORY_DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("MCP_MEMORY_DATABASE_URL", database_url)


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3 endpoint with the bucket ``_s3.BUCKET``: the given one, else moto started for this session."""
    from _s3 import BUCKET, create_bucket
    from _s3 import start as start_s3
    from _s3 import stop as stop_s3

    given = os.environ.get("MCP_MEMORY_TEST_S3_ENDPOINT")
    if given:
        try:
            create_bucket(given, BUCKET)
        except Exception as exc:  # already there (a previous session, or .ci/run made it)
            if "BucketAlready" not in str(exc):
                raise
        yield given
        return
    directory = tmp_path_factory.mktemp("s3")
    endpoint = start_s3(directory)
    try:
        yield endpoint
    finally:
        stop_s3(directory)


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
