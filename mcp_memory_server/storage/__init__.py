"""Storage layer: the metadata engine (SQLite or PostgreSQL) and the content-addressed blob store.

Nothing here knows about artifacts, events or any other capability; nothing outside here
knows which engine keeps the records (see :mod:`.engine`).
"""

from .blobs import BlobInfo, BlobStore, LocalBlobStore, check_digest
from .engine import Connection, Database, Dialect, Migration, Row
from .open import open_database

__all__ = [
    "BlobInfo",
    "BlobStore",
    "Connection",
    "Database",
    "Dialect",
    "LocalBlobStore",
    "Migration",
    "Row",
    "check_digest",
    "open_database",
]
