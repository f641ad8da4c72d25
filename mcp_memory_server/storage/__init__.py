"""Storage layer: the SQLite metadata store and the content-addressed blob store.

Nothing here knows about artifacts, events or any other capability.
"""

from .blobs import BlobInfo, BlobStore, LocalBlobStore, check_digest
from .database import Database, Migration

__all__ = ["BlobInfo", "BlobStore", "Database", "LocalBlobStore", "Migration", "check_digest"]
