"""Content-addressed blob storage: ``blobs/sha256/ab/cd/<hex>``.

Bytes are written to a temp file in the blob folder, fsynced, made read-only and linked
into place, so a reader never sees a partial blob and a crash leaves at most a temp file
that the next start-up removes.

gc and writers meet under the database write lock: gc deletes a blob only inside a write
transaction that finds no reference to it, and a write confirms the blobs it references
inside the transaction that inserts the references (:meth:`PendingBlobs.confirm`),
recreating any that gc removed from the copy it staged. So no committed record ever
points at a deleted blob, whatever the timing, without trusting file times.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, TypeVar

from ..errors import InvalidInput, NotFound, StorageError
from .engine import Connection

__all__ = [
    "BlobInfo",
    "BlobStore",
    "BlobWriter",
    "LocalBlobStore",
    "PendingBlobs",
    "StagedBlob",
    "Stager",
    "check_digest",
    "fsync_dir",
    "remove_orphaned_temps",
    "remove_path",
]

logger = logging.getLogger(__name__)

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
    """What the capabilities need from a blob store: a local folder, or an S3 bucket (``objectstore.py``)."""

    def put_bytes(self, data: bytes) -> BlobInfo: ...
    def put_stream(self, chunks: Iterable[bytes], progress: ProgressFn | None = None) -> BlobInfo: ...
    def exists(self, digest: str) -> bool: ...
    def size(self, digest: str) -> int: ...
    def read(self, digest: str, offset: int = 0, length: int | None = None) -> bytes: ...
    def open(self, digest: str) -> BinaryIO: ...
    def local_path(self, digest: str) -> Path: ...
    def modified_at(self, digest: str) -> float: ...
    def pending(self) -> PendingBlobs: ...
    def delete(self, digest: str) -> None: ...
    def digests(self) -> Iterator[str]: ...
    def total_bytes(self) -> int: ...
    def remove_stale_temps(self) -> int: ...


class Stager(Protocol):
    """What staging needs from a store: a local folder for temps, and a way to publish a staged copy.

    The local folder store publishes by hard link; the object store (``objectstore.py``)
    by an upload-if-absent from the staged file. :class:`PendingBlobs` works over either.
    """

    @property
    def temp_dir(self) -> Path: ...
    def exists(self, digest: str) -> bool: ...
    def put_bytes(self, data: bytes) -> BlobInfo: ...
    def publish_staged(self, staged: StagedBlob) -> bool: ...


class _TempBlob:
    """A temp file that becomes a :class:`StagedBlob` on :meth:`finish` and vanishes on :meth:`discard`."""

    def __init__(self, store: Stager, on_finish: Callable[[StagedBlob], None] | None = None) -> None:
        self._store = store
        self._on_finish = on_finish
        fd_path = store.temp_dir / f"{_TMP_PREFIX}{os.getpid()}-{os.urandom(8).hex()}"
        self.path = fd_path
        try:
            self._file = open(fd_path, "xb")  # noqa: SIM115 - closed in finish/discard
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

    def finish(self) -> StagedBlob:
        """Fsync the bytes and publish them as a blob, keeping the temp as the staged copy."""
        digest = self._hash.hexdigest()
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.chmod(self.path, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        except OSError as exc:
            self.discard()
            raise _os_error(exc) from exc
        staged = StagedBlob(self._store, digest, self.size, self.path)
        if self._on_finish is not None:
            self._on_finish(staged)  # registered first, so a failure below still releases the temp
        try:
            # Published now so that the common case finds it in place inside the transaction.
            staged.publish()
        except BaseException:
            if self._on_finish is None:
                staged.release()
            raise
        return staged

    def commit(self) -> BlobInfo:
        """Finish and drop the staged copy: for blobs nothing will reference (see :class:`PendingBlobs`)."""
        staged = self.finish()
        staged.release()
        return BlobInfo(staged.sha256, staged.size)

    def discard(self) -> None:
        try:
            self._file.close()
        finally:
            self.path.unlink(missing_ok=True)


class StagedBlob:
    """Bytes fsynced under a temp name that can (re)create the blob ``sha256`` until :meth:`release`.

    The temp is a hard link to the published blob (no second copy of the bytes; in the
    object store, the local copy of the uploaded bytes), so if gc removes the blob before
    the reference commits, :meth:`publish` brings it back.
    """

    def __init__(self, store: Stager, sha256: str, size: int, path: Path) -> None:
        self._store = store
        self.sha256 = sha256
        self.size = size
        self.path = path

    def publish(self) -> bool:
        """Make sure the blob exists, recreating it from the staged copy; idempotent. True if it had to.

        Raises:
            StorageError: the staged copy is gone (released) or the store is not writable.
        """
        return self._store.publish_staged(self)

    def release(self) -> None:
        """Drop the staged copy (the published blob stays)."""
        self.path.unlink(missing_ok=True)


class PendingBlobs:
    """The blobs one write is about to reference: staged before its transaction, confirmed inside it.

    gc deletes a blob only inside a write transaction after checking that no record
    references it, so a blob that exists inside the writer's transaction cannot vanish
    before that transaction commits its reference. :meth:`confirm` is that check: call it
    inside the ``Database.write()`` block that inserts the references, after which the
    staged copies are no longer needed. Use as a context manager; it releases them.
    """

    def __init__(self, store: Stager) -> None:
        self._store = store
        self._staged: dict[str, StagedBlob] = {}
        self._held: dict[str, bytes] = {}
        self._released: list[StagedBlob] = []

    def _add(self, staged: StagedBlob) -> None:
        if staged.sha256 in self._staged:
            self._released.append(staged)  # the same bytes twice: one staged copy is enough
        else:
            self._staged[staged.sha256] = staged

    def temp(self) -> _TempBlob:
        """A writer whose bytes are staged on ``finish()``; call ``discard()`` on failure."""
        return _TempBlob(self._store, self._add)

    def put_stream(self, chunks: Iterable[bytes], progress: ProgressFn | None = None) -> BlobInfo:
        staged = _filled(self.temp(), chunks, progress).finish()
        return BlobInfo(staged.sha256, staged.size)

    def put_bytes(self, data: bytes) -> BlobInfo:
        """Stage ``data``; bytes already stored cost no write (they stay in memory in case gc takes them)."""
        digest = hashlib.sha256(data).hexdigest()
        if digest in self._staged or digest in self._held:
            return BlobInfo(digest, len(data))
        if self._store.exists(digest):
            self._held[digest] = data
            return BlobInfo(digest, len(data))
        return self.put_stream([data])

    def put_file(self, path: Path, progress: ProgressFn | None = None) -> BlobInfo:
        with open(path, "rb") as source:
            return self.put_stream(iter(lambda: source.read(_CHUNK), b""), progress)

    def head(self, digest: str, length: int) -> bytes:
        """The first ``length`` bytes of a blob staged here (read from the staged copy, which gc cannot remove)."""
        return self.read(digest, 0, length)

    def read(self, digest: str, offset: int = 0, length: int | None = None) -> bytes:
        """Bytes of a blob staged here, read from the staged copy (which gc cannot remove)."""
        if digest in self._held:
            data = self._held[digest]
            return data[offset:] if length is None else data[offset : offset + length]
        try:
            with open(self._staged[digest].path, "rb") as handle:
                handle.seek(offset)
                return handle.read() if length is None else handle.read(length)
        except OSError as exc:
            raise _os_error(exc) from exc

    def size(self, digest: str) -> int | None:
        """The size of a blob staged or held here; None for one this write did not put."""
        if digest in self._held:
            return len(self._held[digest])
        staged = self._staged.get(digest)
        return None if staged is None else staged.size

    def confirm(self, conn: Connection, digests: Iterable[str]) -> None:
        """Inside the write transaction that references ``digests``: make sure each blob exists.

        A blob gc removed since it was staged is recreated from the staged copy.

        Raises:
            StorageError: a digest is neither stored nor staged here (it cannot be referenced).
        """
        if not conn.in_transaction:
            raise RuntimeError("PendingBlobs.confirm must run inside the write transaction that adds the references")
        for digest in digests:
            staged = self._staged.get(digest)
            if staged is not None:
                if staged.publish():
                    logger.info("blob %s was removed by gc after this write staged it; restored", digest)
            elif self._store.exists(digest):
                continue
            elif digest in self._held:
                self._store.put_bytes(self._held[digest])
                logger.info("blob %s was removed by gc after this write found it; restored", digest)
            else:
                raise StorageError(f"blob {digest} is missing from the blob folder; it cannot be referenced")

    def release(self) -> None:
        for staged in [*self._staged.values(), *self._released]:
            staged.release()
        self._staged.clear()
        self._held.clear()
        self._released.clear()

    def __enter__(self) -> PendingBlobs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


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

    @property
    def temp_dir(self) -> Path:
        """Where temps and staged copies live: the blob folder itself, so publishing is a hard link."""
        return self.root

    def publish_staged(self, staged: StagedBlob) -> bool:
        """See :meth:`StagedBlob.publish`: a hard link from the staged copy (a copy where links fail)."""
        final = self._path(staged.sha256)
        if final.is_file():
            return False
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(staged.path, final)
            except FileExistsError:
                return False  # another writer published the same bytes meanwhile
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EMLINK, errno.EOPNOTSUPP):
                    raise
                self._publish_copy(staged, final)  # a filesystem without hard links
            try:
                os.chmod(final, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)  # gc's delete made the inode writable
            except FileNotFoundError:
                # gc took it between the link and here (nothing references it yet). Not an
                # error: confirm() publishes it again inside the transaction that references it.
                return True
            fsync_dir(final.parent)
            return True
        except FileNotFoundError as exc:
            raise StorageError(f"the staged copy of blob {staged.sha256} is gone; retry the write") from exc
        except OSError as exc:
            raise _os_error(exc) from exc

    def _publish_copy(self, staged: StagedBlob, final: Path) -> None:
        copy = self.root / f"{_TMP_PREFIX}{os.getpid()}-{os.urandom(8).hex()}"
        try:
            with open(staged.path, "rb") as source, open(copy, "xb") as target:
                shutil.copyfileobj(source, target, _CHUNK)
                target.flush()
                os.fsync(target.fileno())
            os.chmod(copy, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            os.replace(copy, final)
        finally:
            copy.unlink(missing_ok=True)

    def temp(self) -> _TempBlob:
        """A writer whose bytes become a blob on ``commit()``; call ``discard()`` on failure."""
        return _TempBlob(self)

    def pending(self) -> PendingBlobs:
        """Stage the blobs of a write that will reference them; see :class:`PendingBlobs`."""
        return PendingBlobs(self)

    def put_bytes(self, data: bytes) -> BlobInfo:
        """Store a blob nothing references yet; a write that will reference it uses :meth:`pending`."""
        return self.put_stream([data])

    def put_stream(self, chunks: Iterable[bytes], progress: ProgressFn | None = None) -> BlobInfo:
        return _filled(self.temp(), chunks, progress).commit()

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

    def modified_at(self, digest: str) -> float:
        """When the blob was stored (seconds since the epoch); gc spares blobs younger than its grace.

        Raises:
            NotFound: no such blob.
        """
        try:
            return self._path(check_digest(digest)).stat().st_mtime
        except FileNotFoundError:
            raise NotFound(f"no blob with sha256 {digest}") from None

    def delete(self, digest: str) -> None:
        """Remove a blob. Only gc calls this, inside a write transaction that found it unreferenced."""
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


_Temp = TypeVar("_Temp", bound=_TempName)


def _filled(temp: _TempBlob, chunks: Iterable[bytes], progress: ProgressFn | None) -> _TempBlob:
    """``temp`` with ``chunks`` written into it; discarded if writing (or the caller's iterator) fails."""
    try:
        for chunk in chunks:
            temp.write(chunk)
            if progress is not None:
                progress(temp.size)
    except BaseException:
        temp.discard()
        raise
    return temp


def remove_orphaned_temps(
    paths: Iterable[_Temp], pid_prefixed: Callable[[str], str], remove: Callable[[_Temp], None] | None = None
) -> int:
    """Delete the temp files (or staging trees) among ``paths`` whose writer process is gone; return how many.

    ``pid_prefixed`` maps a file name to the part that starts with ``<pid>-``; ``remove``
    (default :func:`remove_path` for a ``Path``, else its ``unlink``) deletes one.
    """
    removed = 0
    for path in paths:
        pid_text = pid_prefixed(path.name).split("-", 1)[0]
        if pid_text.isdigit() and _process_alive(int(pid_text)):
            continue
        if remove is not None:
            remove(path)
        elif isinstance(path, Path):
            remove_path(path)  # a file or a staging tree
        else:
            path.unlink(missing_ok=True)  # a name in an open folder: the live tree removes files only
        removed += 1
    return removed


def remove_path(path: Path) -> None:
    """Remove a file or a directory tree at ``path`` (a symlink itself, never what it points to)."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass  # best effort: debris that cannot be removed now is retried at the next start-up


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
    if exc.errno == errno.ENOSPC:
        return StorageError("the disk holding the blob folder is full; free space and retry")
    if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
        return StorageError(f"the blob folder is not writable ({exc.strerror}); check its permissions")
    return StorageError(f"blob storage failed: {exc.strerror or exc}")
