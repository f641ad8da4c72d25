"""Staging paths written next to a destination (exports, snapshots, materialised trees), swept if their writer dies.

A writer that builds ``dest`` atomically writes ``.<name>.tmp-<pid>-<token>`` beside it and
renames it into place. Those folders can be anywhere under the allowed roots, so a
killed writer's leftovers cannot be found by listing the data directory: before creating
one, the writer records it in ``<data_dir>/staging/<pid>-<token>``. Store start-up removes
the staging path of every record whose process is gone, then the record.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .blobs import remove_orphaned_temps, remove_path

__all__ = ["StagingLedger", "remove_path"]

Reserve = Callable[[Path], Path]
"""Maps a destination to the staging path to build it under (recorded before it exists)."""

_NAME_CHARS = 180  # leaves room for ".tmp-<pid>-<token>" within a 255-byte file name


class StagingLedger:
    """The staging paths of one data directory's writers.

    Args:
        data_dir: the store's data directory; records live in its ``staging/`` folder.
    """

    def __init__(self, data_dir: Path) -> None:
        self.folder = data_dir / "staging"

    def reserve(self, dest: Path) -> Path:
        """The staging path to build ``dest`` under, recorded before it exists; :meth:`release` it after."""
        token = f"{os.getpid()}-{os.urandom(8).hex()}"
        short = os.fsencode(dest.name)[:_NAME_CHARS].decode("utf-8", errors="ignore") or "x"  # bytes, for NAME_MAX
        staging = dest.parent / f".{short}.tmp-{token}"
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / token).write_text(os.fspath(staging), encoding="utf-8")
        return staging

    def release(self, staging: Path) -> None:
        """Forget ``staging`` once it has been renamed into place or removed."""
        (self.folder / staging.name.rsplit(".tmp-", 1)[-1]).unlink(missing_ok=True)

    @contextmanager
    def reserving(self) -> Iterator[Reserve]:
        """Yield ``reserve(dest) -> staging path``; the records go when the block ends, however it ends.

        The block must rename or remove what it staged; only a killed process leaves it behind.
        """
        reserved: list[Path] = []

        def reserve(dest: Path) -> Path:
            reserved.append(self.reserve(dest))
            return reserved[-1]

        try:
            yield reserve
        finally:
            for staging in reserved:
                self.release(staging)

    def sweep(self) -> int:
        """Remove what dead writers staged; return how many records were swept."""
        if not self.folder.is_dir():
            return 0
        return remove_orphaned_temps(self.folder.iterdir(), lambda name: name, remove=self._remove)

    @staticmethod
    def _remove(record: Path) -> None:
        if record.is_symlink() or not record.is_file():
            return  # not a record this ledger wrote (a folder here made every open fail): leave it
        try:
            staging = Path(record.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            staging = None
        # Only a path named for exactly this record is removed: never a file the writer did not create.
        if staging is not None and staging.name.endswith(f".tmp-{record.name}"):
            remove_path(staging)
        record.unlink(missing_ok=True)
