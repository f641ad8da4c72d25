"""Choose the engine from the settings: the URL is the whole configuration."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from ..config import Config
from ..errors import InvalidInput, StorageError
from .engine import Database

__all__ = ["open_database"]

_POSTGRES_SCHEMES = ("postgresql", "postgres")


def open_database(config: Config, data_dir: Path) -> Database:
    """The store's records: ``memory.db`` in ``data_dir``, or the PostgreSQL database at ``config.database_url``.

    Raises:
        InvalidInput: the URL names an engine this program does not have.
        StorageError: PostgreSQL support is not installed.
    """
    url = config.database_url
    if not url:
        from .sqlite import SqliteDatabase

        return SqliteDatabase(data_dir / "memory.db", synchronous=config.sync)
    scheme = urlsplit(url).scheme.split("+", 1)[0].lower()
    if scheme == "sqlite":
        from .sqlite import SqliteDatabase

        path = urlsplit(url).path[1:]  # sqlite:///relative/file.db, sqlite:////absolute/file.db
        if not path:
            raise InvalidInput("database_url sqlite:///PATH needs a file path, e.g. sqlite:////srv/memory.db")
        return SqliteDatabase(Path(path).expanduser(), synchronous=config.sync)
    if scheme not in _POSTGRES_SCHEMES:
        raise InvalidInput(
            f"database_url {_redacted(url)!r} names an engine this program does not have; "
            "use postgresql://user@host:5432/db, or leave it unset for SQLite in the data directory"
        )
    try:
        from .postgres import PostgresDatabase
    except ImportError as exc:
        raise StorageError("PostgreSQL support is not installed: pip install 'mcp-memory-server[postgres]'") from exc
    return PostgresDatabase(url)


def _redacted(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
