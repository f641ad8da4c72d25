"""Where a files export goes and an import comes from: a directory, a ``.tar.gz``, or an fsspec URL.

The layout is the same in all three::

    manifest.json       format, namespace, counts
    versions.jsonl      every version in audit order (history and audit log in one)
    transcript.jsonl    the namespace's transcript messages
    blobs/<sha256>      each distinct content once (every version can be restored)
    files/<path>        the live files, for people to read

Local paths must lie under the allowed roots; a URL (``s3://…``, ``memory://…``) needs
the ``fsspec`` package and the filesystem package it names.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import io
import itertools
import os
import re
import shutil
import stat
import tarfile
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol

from ..errors import InvalidInput, NotFound
from ..storage.staging import StagingLedger
from .local_paths import resolve_allowed

__all__ = ["MAX_MEMBERS", "ArchiveSink", "ArchiveSource", "open_sink", "open_source", "read_lines", "read_member"]

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class ArchiveSink(Protocol):
    location: str

    def add(self, name: str, data: bytes) -> None: ...
    def commit(self) -> None: ...
    def abort(self) -> None: ...


class ArchiveSource(Protocol):
    location: str

    def open(self, name: str, *, max_bytes: int) -> contextlib.AbstractContextManager[IO[bytes]]: ...
    def close(self) -> None: ...


MAX_MEMBERS = 500_000
"""Entries a ``.tar.gz`` import may hold (each kept one costs about 200 bytes of index)."""


def read_member(source: ArchiveSource, name: str, *, max_bytes: int) -> bytes:
    """The whole of one member, read through its stream.

    Raises:
        InvalidInput: missing, not a regular file, or over ``max_bytes`` once decompressed.
    """
    with source.open(name, max_bytes=max_bytes) as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InvalidInput(f"{name} in {source.location} is over {max_bytes} bytes; not a valid export")
    return data


def read_lines(source: ArchiveSource, name: str, *, max_line_bytes: int, max_bytes: int) -> Iterator[bytes]:
    """The lines of one member, one at a time (memory: one line, at most ``max_line_bytes``).

    Raises:
        InvalidInput: a line over ``max_line_bytes``, or the member over ``max_bytes``.
    """
    total = 0
    with source.open(name, max_bytes=max_bytes) as handle:
        for number in itertools.count(1):
            line = handle.readline(max_line_bytes + 1)
            if not line:
                return
            total += len(line)
            if len(line) > max_line_bytes:
                raise InvalidInput(
                    f"{name} line {number} in {source.location} is over {max_line_bytes} bytes; not a valid export"
                )
            if total > max_bytes:
                raise InvalidInput(f"{name} in {source.location} is over {max_bytes} bytes; not a valid export")
            yield line


def _is_tar(name: str) -> bool:
    return name.endswith((".tar.gz", ".tgz"))


def _local(location: str) -> str | None:
    """The local path of ``location``, or None for a URL."""
    if location.startswith("file://"):
        return location[len("file://") :]
    return None if _URL.match(location) else location


def _fsspec(location: str) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError:
        raise InvalidInput(
            f"{location!r} is a URL; install fsspec (and the package for that filesystem) to use URLs, "
            "or give a local directory or .tar.gz path"
        ) from None
    try:
        fs, root = fsspec.core.url_to_fs(location)
    except (ImportError, ValueError) as exc:
        raise InvalidInput(f"cannot open {location!r}: {exc}") from None
    return fs, str(root)


def open_sink(
    dest: str | os.PathLike[str], roots: tuple[Path, ...], ledger: StagingLedger | None = None
) -> ArchiveSink:
    """A writer for a new export at ``dest`` (a directory, a ``.tar.gz`` file, or an fsspec URL).

    Raises:
        InvalidInput: ``dest`` exists already, or is a URL without fsspec.
        AccessDenied: a local ``dest`` is outside the allowed roots.
    """
    location = os.fspath(dest)
    local = _local(location)
    if local is None:
        fs, root = _fsspec(location)
        if fs.exists(root):
            raise InvalidInput(f"export destination {location} already exists; choose a new one")
        if _is_tar(root):
            return _TarSink(fs.open(root, "wb"), location, on_commit=lambda: None, on_abort=lambda: fs.rm(root))
        return _FsspecDirSink(fs, root, location)
    path = resolve_allowed(local, roots, must_exist=False)
    if path.exists() or path.is_symlink():
        raise InvalidInput(f"export destination {path} already exists; choose a new path")
    path.parent.mkdir(parents=True, exist_ok=True)
    # The ledger records the staging path first, so a killed export's is swept at the next start-up.
    if ledger is None:
        staging = path.parent / f".{path.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}"
    else:
        staging = ledger.reserve(path)

    def release() -> None:
        if ledger is not None:
            ledger.release(staging)

    if _is_tar(path.name):
        handle = open(staging, "xb")  # noqa: SIM115 - closed by the sink

        def commit() -> None:
            os.replace(staging, path)
            release()

        def abort() -> None:
            staging.unlink(missing_ok=True)
            release()

        return _TarSink(handle, str(path), on_commit=commit, on_abort=abort)
    return _DirSink(staging, path, on_done=release)


def open_source(src: str | os.PathLike[str], roots: tuple[Path, ...], *, max_read: int) -> ArchiveSource:
    """A reader for an export at ``src``; ``max_read`` bounds any one read of a ``.tar.gz`` stream.

    Raises:
        NotFound: nothing is there. AccessDenied: a local ``src`` is outside the allowed roots.
        InvalidInput: ``src`` is a URL without fsspec, or not a readable archive.
    """
    location = os.fspath(src)
    local = _local(location)
    if local is None:
        fs, root = _fsspec(location)
        if not fs.exists(root):
            raise NotFound(f"nothing to import at {location}")
        if _is_tar(root):
            return _TarSource(fs.open(root, "rb"), location, max_read=max_read)
        return _FsspecDirSource(fs, root, location)
    path = resolve_allowed(local, roots)
    if path.is_dir():
        return _DirSource(path)
    return _TarSource(open(path, "rb"), str(path), max_read=max_read)


class _DirSink:
    """Builds the tree next to the destination and renames it into place on commit."""

    def __init__(self, staging: Path, dest: Path, on_done: Callable[[], None]) -> None:
        self._staging = staging
        self._dest = dest
        self._on_done = on_done
        self.location = str(dest)
        staging.mkdir()

    def add(self, name: str, data: bytes) -> None:
        target = self._staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def commit(self) -> None:
        os.replace(self._staging, self._dest)
        self._on_done()

    def abort(self) -> None:
        shutil.rmtree(self._staging, ignore_errors=True)
        self._on_done()


class _TarSink:
    def __init__(self, handle: IO[bytes], location: str, *, on_commit: Any, on_abort: Any) -> None:
        self._handle = handle
        self._tar = tarfile.open(fileobj=handle, mode="w:gz")  # noqa: SIM115 - closed in commit/abort
        self._on_commit = on_commit
        self._on_abort = on_abort
        self.location = location
        self._mtime = int(time.time())

    def add(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = self._mtime
        info.mode = 0o644
        self._tar.addfile(info, io.BytesIO(data))

    def commit(self) -> None:
        self._tar.close()
        self._handle.flush()
        if hasattr(self._handle, "fileno"):
            with contextlib.suppress(OSError, io.UnsupportedOperation):
                os.fsync(self._handle.fileno())
        self._handle.close()
        self._on_commit()

    def abort(self) -> None:
        try:
            self._tar.close()
            self._handle.close()
        finally:
            with contextlib.suppress(OSError):
                self._on_abort()


class _FsspecDirSink:
    def __init__(self, fs: Any, root: str, location: str) -> None:
        self._fs = fs
        self._root = root.rstrip("/")
        self.location = location

    def add(self, name: str, data: bytes) -> None:
        target = f"{self._root}/{name}"
        self._fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        self._fs.pipe_file(target, data)

    def commit(self) -> None:
        pass

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._fs.rm(self._root, recursive=True)


class _DirSource:
    """An export directory, read through descriptors opened without following symlinks."""

    def __init__(self, root: Path) -> None:
        self.location = str(root)
        try:
            self._fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise InvalidInput(f"{root} is not a readable export directory ({exc.strerror})") from None

    @contextlib.contextmanager
    def open(self, name: str, *, max_bytes: int) -> Iterator[IO[bytes]]:
        *folders, leaf = name.split("/")
        fds: list[int] = []
        try:
            parent = self._fd
            for folder in folders:
                parent = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
                fds.append(parent)
            fd = os.open(leaf, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent)
        except FileNotFoundError:
            raise InvalidInput(f"{self.location} is not a files export: {name} is missing") from None
        except OSError as exc:
            shown = "a symlink" if exc.errno in (errno.ELOOP, errno.ENOTDIR) else exc.strerror
            raise InvalidInput(f"{name} in {self.location} cannot be read ({shown}); not a valid export") from None
        finally:
            for folder_fd in fds:
                os.close(folder_fd)
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(handle.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_size > max_bytes:
                raise InvalidInput(f"{name} in {self.location} is not a regular file of at most {max_bytes} bytes")
            yield handle

    def close(self) -> None:
        os.close(self._fd)


class _BoundedReads(io.RawIOBase):
    """A decompressed stream that refuses any single read larger than ``max_read``.

    tarfile reads a pax or GNU long-name header in one ``read``: a header claiming a
    gigabyte would be held in memory whole. Contents are read in bounded chunks, so only
    such headers hit the bound.
    """

    def __init__(self, inner: gzip.GzipFile, location: str, max_read: int) -> None:
        self._inner = inner
        self._location = location
        self._max_read = max_read

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > self._max_read:
            raise InvalidInput(
                f"{self._location} has a tar header or entry over {self._max_read} bytes; not a valid export"
            )
        return self._inner.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._inner.seek(offset, whence)

    def tell(self) -> int:
        return self._inner.tell()


class _TarSource:
    """A ``.tar.gz`` export: only regular files (and folders) with plain relative names are accepted."""

    def __init__(self, handle: IO[bytes], location: str, *, max_read: int) -> None:
        self._handle = handle
        self.location = location
        self._members: dict[str, tuple[int, int]] = {}  # name → (offset of the data, size)
        try:
            self._stream = _BoundedReads(gzip.GzipFile(fileobj=handle, mode="rb"), location, max_read)
            self._tar = tarfile.open(fileobj=self._stream, mode="r:")  # noqa: SIM115 - closed in close()
            for count in itertools.count(1):
                member = self._tar.next()
                if member is None:
                    break
                if count > MAX_MEMBERS:
                    raise InvalidInput(f"{location} holds over {MAX_MEMBERS} entries; not a valid export")
                self._admit(member)
                # tarfile would keep every header (typeshed omits the attribute); the index above is enough.
                self._tar.members.clear()  # type: ignore[attr-defined]
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            self.close()
            raise InvalidInput(f"{location} is not a readable .tar.gz export ({exc})") from None
        except BaseException:
            self.close()
            raise

    def _admit(self, member: tarfile.TarInfo) -> None:
        name = member.name.removeprefix("./")
        parts = name.split("/")
        if name.startswith("/") or ".." in parts or "\x00" in name:
            raise InvalidInput(f"{self.location} has an entry named {member.name!r} that leaves the archive")
        if member.isdir():
            return
        if not member.isreg() or member.sparse is not None:
            kind = "a symlink" if member.issym() else "a hard link" if member.islnk() else "not a regular file"
            raise InvalidInput(f"{self.location} has an entry {member.name!r} that is {kind}; an export holds "
                               "only regular files")  # fmt: skip
        if name in self._members:
            raise InvalidInput(f"{self.location} holds the entry {member.name!r} twice; not a valid export")
        if name in ("manifest.json", "versions.jsonl", "transcript.jsonl") or name.startswith("blobs/"):
            self._members[name] = (member.offset_data, member.size)  # files/… are rebuilt from blobs/

    @contextlib.contextmanager
    def open(self, name: str, *, max_bytes: int) -> Iterator[IO[bytes]]:
        found = self._members.get(name)
        if found is None:
            raise InvalidInput(f"{self.location} is not a files export: {name} is missing")
        if found[1] > max_bytes:
            raise InvalidInput(f"{name} in {self.location} is not a regular file of at most {max_bytes} bytes")
        member = tarfile.TarInfo(name)
        member.offset_data, member.size, member.type = found[0], found[1], tarfile.REGTYPE
        extracted = self._tar.extractfile(member)
        if extracted is None:
            raise InvalidInput(f"{name} in {self.location} cannot be read")
        try:
            yield extracted
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise InvalidInput(f"cannot read {name} from {self.location}: {exc}") from None
        finally:
            extracted.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._tar.close()
        self._handle.close()


class _FsspecDirSource:
    def __init__(self, fs: Any, root: str, location: str) -> None:
        self._fs = fs
        self._root = root.rstrip("/")
        self.location = location

    @contextlib.contextmanager
    def open(self, name: str, *, max_bytes: int) -> Iterator[IO[bytes]]:
        target = f"{self._root}/{name}"
        try:
            if self._fs.size(target) > max_bytes:
                raise InvalidInput(f"{target} is larger than {max_bytes} bytes; not a valid export")
            handle = self._fs.open(target, "rb")
        except FileNotFoundError:
            raise InvalidInput(f"{self.location} is not a files export: {name} is missing") from None
        with handle:
            yield handle

    def close(self) -> None:
        pass
