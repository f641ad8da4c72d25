"""Content-addressed blob storage: ``blobs/sha256/ab/cd/<hex>``.

Bytes are written to a temp file in the blob folder, fsynced, renamed into place and
made read-only, so a reader never sees a partial blob and a crash leaves at most a
temp file that the next start-up removes.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from ..errors import InvalidInput, NotFound, StorageError

__all__ = [
    "BlobInfo",
    "BlobStore",
    "BlobWriter",
    "LocalBlobStore",
    "check_digest",
    "fsync_dir",
    "remove_orphaned_temps",
]

_CHUNK = 1 << 20
_HEX = re.compile(r"[0-9a-f]{64}")
_TMP_PREFIX = ".tmp-"

ProgressFn = Callable[[int], None]
"""Called with the number of bytes stored so far."""


@dataclass(frozen=True, slots=True)
class BlobInfo:
    sha256: str
    size: int


def check_digest(digest: str) -> str:
    """Raises: InvalidInput: ``digest`` is not 64 lowercase hex characters."""
    if not isinstance(digest, str) or not _HEX.fullmatch(digest):
        raise InvalidInput(f"{digest!r} is not a sha256 digest; expected 64 lowercase hex characters")
    return digest


class BlobWriter(Protocol):
    def write(self, data: bytes) -> int: ...


class BlobStore(Protocol):
    """What the capabilities need from a blob store (local folder today, object store later)."""

    def put_bytes(self, data: bytes) -> BlobInfo: ...
    def put_stream(self, chunks: Iterable[bytes], progress: ProgressFn | None = None) -> BlobInfo: ...
    def exists(self, digest: str) -> bool: ...
    def size(self, digest: str) -> int: ...
    def read(self, digest: str, offset: int = 0, length: int | None = None) -> bytes: ...
    def open(self, digest: str) -> BinaryIO: ...
    def local_path(self, digest: str) -> Path: ...
    def delete(self, digest: str) -> None: ...
    def digests(self) -> Iterator[str]: ...
    def total_bytes(self) -> int: ...


class _TempBlob:
    """A temp file that becomes a blob on :meth:`commit` and vanishes on :meth:`discard`."""

    def __init__(self, store: LocalBlobStore) -> None:
        self._store = store
        fd_path = store.root / f"{_TMP_PREFIX}{os.getpid()}-{os.urandom(8).hex()}"
        self.path = fd_path
        try:
            self._file = open(fd_path, "xb")  # noqa: SIM115 - closed in commit/discard
        except OSError as exc:
            raise _os_error(exc) from exc
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        try:
            self._file.write(data)
        except OSError as exc:
            self.discard()
            raise _os_error(exc) from exc
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    def commit(self) -> BlobInfo:
        digest = self._hash.hexdigest()
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            final = self._store._path(digest)
            if final.exists():
                self.path.unlink()
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(self.path, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
                os.replace(self.path, final)
                fsync_dir(final.parent)
        except OSError as exc:
            self.discard()
            raise _os_error(exc) from exc
        return BlobInfo(digest, self.size)

    def discard(self) -> None:
        try:
            self._file.close()
        finally:
            self.path.unlink(missing_ok=True)


class LocalBlobStore:
    """Blobs in a local folder.

    Args:
        root: the ``blobs`` folder; ``sha256/`` lives inside it.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        try:
            (root / "sha256").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _os_error(exc) from exc

    def _path(self, digest: str) -> Path:
        return self.root / "sha256" / digest[:2] / digest[2:4] / digest

    def temp(self) -> _TempBlob:
        """A writer whose bytes become a blob on ``commit()``; call ``discard()`` on failure."""
        return _TempBlob(self)

    def put_bytes(self, data: bytes) -> BlobInfo:
        return self.put_stream([data])

    def put_stream(self, chunks: Iterable[bytes], progress: ProgressFn | None = None) -> BlobInfo:
        temp = self.temp()
        try:
            for chunk in chunks:
                temp.write(chunk)
                if progress is not None:
                    progress(temp.size)
        except BaseException:
            temp.discard()
            raise
        return temp.commit()

    def put_file(self, path: Path, progress: ProgressFn | None = None) -> BlobInfo:
        with open(path, "rb") as source:
            return self.put_stream(iter(lambda: source.read(_CHUNK), b""), progress)

    def exists(self, digest: str) -> bool:
        return self._path(check_digest(digest)).is_file()

    def size(self, digest: str) -> int:
        try:
            return self._path(check_digest(digest)).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"no blob with sha256 {digest}") from None

    def read(self, digest: str, offset: int = 0, length: int | None = None) -> bytes:
        with self.open(digest) as handle:
            handle.seek(offset)
            return handle.read() if length is None else handle.read(length)

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self._path(check_digest(digest)), "rb")
        except FileNotFoundError:
            raise NotFound(f"no blob with sha256 {digest}") from None

    def local_path(self, digest: str) -> Path:
        path = self._path(check_digest(digest))
        if not path.is_file():
            raise NotFound(f"no blob with sha256 {digest}")
        return path

    def delete(self, digest: str) -> None:
        path = self._path(check_digest(digest))
        try:
            os.chmod(path, stat.S_IWUSR | stat.S_IRUSR)
            path.unlink()
        except FileNotFoundError:
            pass

    def digests(self) -> Iterator[str]:
        for path in (self.root / "sha256").glob("*/*/*"):
            if _HEX.fullmatch(path.name):
                yield path.name

    def total_bytes(self) -> int:
        return sum(self._path(d).stat().st_size for d in self.digests())

    def remove_stale_temps(self) -> int:
        """Delete temp files whose writing process is gone; return how many were removed."""
        return remove_orphaned_temps(self.root.glob(f"{_TMP_PREFIX}*"), lambda name: name[len(_TMP_PREFIX) :])


class _TempName(Protocol):
    """A temp file to sweep: a ``Path``, or a name relative to an open folder (the live tree's walk)."""

    @property
    def name(self) -> str: ...
    def unlink(self, missing_ok: bool = False) -> None: ...


def remove_orphaned_temps(paths: Iterable[_TempName], pid_prefixed: Callable[[str], str]) -> int:
    """Delete the temp files among ``paths`` whose writer process is gone; return how many.

    ``pid_prefixed`` maps a file name to the part that starts with ``<pid>-``.
    """
    removed = 0
    for path in paths:
        pid_text = pid_prefixed(path.name).split("-", 1)[0]
        if pid_text.isdigit() and _process_alive(int(pid_text)):
            continue
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped) still answers kill(0); it writes nothing more.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def fsync_dir(path: Path) -> None:
    """Make a rename or new entry in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _os_error(exc: OSError) -> StorageError:
    import errno

    if exc.errno == errno.ENOSPC:
        return StorageError("the disk holding the blob folder is full; free space and retry")
    if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
        return StorageError(f"the blob folder is not writable ({exc.strerror}); check its permissions")
    return StorageError(f"blob storage failed: {exc.strerror or exc}")
