"""The engine seen from the outside, on both engines: the URL, its errors, migrations on open.

Runs on SQLite (``pytest``) and on a real PostgreSQL cluster (``pytest --engine postgres``);
the tests that name a PostgreSQL URL that cannot be reached need no server, only psycopg.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from _engine import records_created
from _procs import clean_env, free_port, read_line

from mcp_memory_server import InvalidInput, MemoryStore, StorageError
from mcp_memory_server.cli import main

PASSWORD = "s3cret-Pw"


def _with_password(url: str) -> str:
    """``url`` with a password added (the test cluster trusts every local connection, so it is accepted)."""
    parts = urlsplit(url)
    return parts._replace(netloc=f"{parts.username}:{PASSWORD}@{parts.hostname}:{parts.port}").geturl()


# -- the URL -------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["mysql://alice:s3cret-Pw@db.example/memory", "localhost:5432/memory"])
def test_a_url_of_an_engine_this_program_lacks_is_refused_before_anything_is_created(
    tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """InvalidInput naming the URL (password hidden) and the form to use; the data directory is not created."""
    with pytest.raises(InvalidInput, match=r"is not a URL of an engine this program has; use postgresql://") as info:
        MemoryStore.open(tmp_path / "store", database_url=url)
    assert PASSWORD not in str(info.value)
    assert not (tmp_path / "store").exists()

    assert main(["stats", "--data-dir", str(tmp_path / "store"), "--database-url", url]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mcp-memory-server: error: --database-url '")  # the flag's name, not the field's
    assert PASSWORD not in err and "Traceback" not in err
    assert not (tmp_path / "store").exists()


def test_a_postgresql_server_that_cannot_be_reached_is_a_storage_error_naming_where(tmp_path: Path) -> None:
    """A closed port: StorageError 'cannot connect to the PostgreSQL database … on 127.0.0.1', no password in it."""
    url = f"postgresql://alice:{PASSWORD}@127.0.0.1:{free_port()}/memory"
    with pytest.raises(
        StorageError, match=r"cannot connect to the PostgreSQL database .*memory on 127\.0\.0\.1"
    ) as info:
        MemoryStore.open(tmp_path / "store", database_url=url)
    assert PASSWORD not in str(info.value)
    assert "Connection refused" in str(info.value)  # the server's own reason, for the operator


@pytest.mark.parametrize(
    "argv",
    [["serve"], ["stats"], ["gc"], ["graph", "validate"], ["lab", "export-tsv"], ["files", "export", "out"]],
    ids=lambda argv: " ".join(argv),
)
def test_every_entry_point_takes_database_url_and_reports_an_unreachable_server_in_one_line(
    tmp_path: Path, argv: list[str]
) -> None:
    """``mcp-memory-server [COMMAND] --database-url URL``: exit 1, one clear line on stderr, no traceback, no password."""
    url = f"postgresql://alice:{PASSWORD}@127.0.0.1:{free_port()}/memory"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mcp_memory_server",
            *argv,
            "--data-dir",
            str(tmp_path / "store"),
            "--database-url",
            url,
        ],
        capture_output=True,
        text=True,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,  # files export writes its (relative) destination here, if it wrongly got that far
        timeout=120,
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("mcp-memory-server: error: cannot connect to the PostgreSQL database"), (
        result.stderr
    )
    assert "127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr and PASSWORD not in result.stderr


def test_serve_with_database_url_keeps_the_records_at_that_url(
    tmp_path: Path, engine: str, database_url: str | None
) -> None:
    """``serve --database-url URL`` (stdin at its end) creates the store's tables at URL: a sqlite:/// file, or a new schema."""
    url = database_url if engine == "postgres" else f"sqlite:///{tmp_path / 'elsewhere.db'}"
    assert url is not None
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mcp_memory_server",
            "serve",
            "--data-dir",
            str(tmp_path / "store"),
            "--database-url",
            url,
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=clean_env(),  # the test's own MCP_MEMORY_DATABASE_URL, if any, is a different schema: the flag wins
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    if engine == "sqlite":
        assert (tmp_path / "elsewhere.db").is_file() and not (tmp_path / "store" / "memory.db").exists()
    else:
        assert records_created(tmp_path / "store", url)
    with MemoryStore.open(tmp_path / "store", database_url=url) as store:
        assert store.db.schema_versions() == _latest(store)  # the command migrated it fully


# -- migrations ----------------------------------------------------------------------------------

_OPENER = """\
import sys, time
from pathlib import Path
from mcp_memory_server import MemoryStore
go = Path(sys.argv[2])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
with MemoryStore.open(sys.argv[1]) as store:
    print(sorted(store.db.schema_versions().items()), flush=True)
"""


def _latest(store: MemoryStore) -> dict[str, int]:
    latest: dict[str, int] = {}
    for component, version, _ in store.db.migrations:
        latest[component] = max(latest.get(component, 0), version)
    return latest


def test_four_processes_opening_a_new_store_at_once_all_succeed_and_migrate_it_once(tmp_path: Path) -> None:
    """4 processes released together on one new store (file, or fresh PostgreSQL schema): all open; each migration applied once."""
    data_dir, go = tmp_path / "store", tmp_path / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _OPENER, str(data_dir), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=clean_env(),  # keeps the test's MCP_MEMORY_DATABASE_URL: one new schema for all four
        )
        for _ in range(4)
    ]
    try:
        for process in processes:
            assert read_line(process) == b"ready\n"
        go.touch()
        outcomes = [process.communicate(timeout=120) for process in processes]
    finally:
        for process in processes:
            process.kill()
            process.wait()
    for process, (_, err) in zip(processes, outcomes, strict=True):
        assert process.returncode == 0, err.decode()
    with MemoryStore.open(data_dir) as store:
        rows = store.db.query("SELECT component, version, COUNT(*) FROM schema_migrations GROUP BY component, version")
        expected = {(component, version) for component, version, _ in store.db.migrations}
        latest = _latest(store)
    assert sorted((r[0], r[1]) for r in rows) == sorted(expected)
    assert all(r[2] == 1 for r in rows)
    assert {out.decode() for out, _ in outcomes} == {f"{sorted(latest.items())}\n"}  # every opener saw the final schema


def test_a_store_written_by_a_newer_version_is_refused_with_a_clear_message(
    tmp_path: Path, engine: str, database_url: str | None
) -> None:
    """A migration row beyond what this version knows: StorageError 'written by a newer …; upgrade', store untouched."""
    url = _with_password(database_url) if engine == "postgres" and database_url else None
    with MemoryStore.open(tmp_path / "store", database_url=url) as store:
        component, version = sorted(_latest(store).items())[0]
        with store.db.write() as conn:
            conn.execute(
                "INSERT INTO schema_migrations (component, version, applied_at) VALUES (?, ?, ?)",
                (component, version + 1, "2099-01-01T00:00:00Z"),
            )
    with pytest.raises(StorageError, match=r"was written by a newer mcp-memory-server") as info:
        MemoryStore.open(tmp_path / "store", database_url=url)
    message = str(info.value)
    assert f"schema {component} v{version + 1}, this version knows up to v{version}" in message
    assert "upgrade mcp-memory-server to open it" in message
    assert PASSWORD not in message
    # Refused, not damaged: without the future row the same store opens again.
    from mcp_memory_server.config import Config
    from mcp_memory_server.storage import open_database

    db = open_database(Config.load({"data_dir": tmp_path / "store", "database_url": url}), tmp_path / "store")
    try:
        with db.write() as conn:
            conn.execute("DELETE FROM schema_migrations WHERE component = ? AND version = ?", (component, version + 1))
    finally:
        db.close()
    with MemoryStore.open(tmp_path / "store", database_url=url) as store:
        assert store.db.schema_versions()[component] == version
