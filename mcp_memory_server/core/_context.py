"""What every capability is handed: settings, the database, the blob store and the run scope."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..storage import BlobStore, Database


@dataclass(frozen=True, slots=True)
class StoreContext:
    config: Config
    db: Database
    blobs: BlobStore
    data_dir: Path
    run_id: str
