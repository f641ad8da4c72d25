"""Where a files export goes and an import comes from: a directory, a ``.tar.gz``, or an fsspec URL.

The layout is the same in all three::

    manifest.json       format, namespace, counts
    versions.jsonl      every version in audit order (history and audit log in one)
    transcript.jsonl    the namespace's transcript messages
    blobs/<sha256>      each distinct content once (every version can be restored)
    files/<path>        the live files, for people to read

Local paths (and URLs of the local filesystem, ``file://``, ``local://``) must lie under
the allowed roots and are read and written through descriptors (``local_paths``); a URL
of another filesystem (``s3://…``, ``memory://…``) needs the ``fsspec`` package and the
filesystem package it names.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
import os
import re
import tarfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol

from ..errors import AccessDenied, InvalidInput, NotFound
from ..storage.staging import StagingLedger
from .local_paths import DirEntry, FileWriter, LocalAccess, LocalDir, TreeWriter

__all__ = ["MAX_MEMBERS", "ArchiveSink", "ArchiveSource", "open_sink", "open_source", "read_lines", "read_member"]

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_NOT_A_PROTOCOL = re.compile(r".*[^a-z]+.*")


class ArchiveSink(Protocol):
    location: str

    def add(self, name: str, data: bytes) -> None: ...
    def commit(self) -> None: ...
    def abort(self) -> None: ...


class ArchiveSource(Protocol):
    location: str

    def open(self, name: str, *, max_bytes: int) -> contextlib.AbstractContextManager[IO[bytes]]: ...
    def in_archive_order(self, names: list[str]) -> list[str]: ...
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
    """The local path of ``location``, or None for a URL of a filesystem that is not this machine's.

    A URL whose filesystem is local (``file://``, ``local://``, any protocol fsspec maps to
    its local filesystem) names a plain path and obeys the allowed roots exactly like one.

    Raises:
        InvalidInput: a chained URL (``a::b``) with a local link, which would read or write
            this machine's disk around the roots; give the local path itself instead.
    """
    if location.startswith("file://"):
        return location[len("file://") :]
    if not _URL.match(location) and not ("::" in location and any("://" in link for link in location.split("::"))):
        return location
    try:
        import fsspec
        from fsspec.implementations.local import LocalFileSystem
    except ImportError:
        return None  # then opening it says fsspec is needed
    # As fsspec reads a chain: a bare lowercase word is a protocol, anything else without :// a local path.
    links = [link if "://" in link or _NOT_A_PROTOCOL.match(link) else link + "://" for link in location.split("::")]
    local: list[str] = []
    for link in links:
        protocol, _ = fsspec.core.split_protocol(link)
        try:
            cls = fsspec.get_filesystem_class(protocol or "file")
        except (ImportError, ValueError):
            continue  # unknown or not installed: opening it reports that
        if issubclass(cls, LocalFileSystem):
            local.append(str(cls._strip_protocol(link)))
    if not local:
        return None
    if len(links) == 1:
        return local[0]
    raise InvalidInput(
        f"{location!r} chains a filesystem over this machine's local disk; give the local path itself "
        "(it must be under the allowed roots)"
    )


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


def open_sink(dest: str | os.PathLike[str], access: LocalAccess, ledger: StagingLedger | None = None) -> ArchiveSink:
    """A writer for a new export at ``dest`` (a directory, a ``.tar.gz`` file, or an fsspec URL).

    A local ``dest`` is written only through descriptors (see ``local_paths``): a temp entry
    of its directory, renamed into place without replacing anything.

    Raises:
        InvalidInput: ``dest`` exists already, or is a URL without fsspec.
        AccessDenied: a local ``dest`` is outside the allowed roots or inside the data directory.
    """
    location = os.fspath(dest)
    local = _local(location)
    if local is None:
        fs, root = _fsspec(location)
        if fs.exists(root):
            raise InvalidInput(f"export destination {location} already exists; choose a new one")
        if _is_tar(root):
            handle = fs.open(root, "wb")

            def remove() -> None:
                handle.close()
                fs.rm(root)

            return _TarSink(handle, location, on_commit=handle.close, on_abort=remove)
        return _FsspecDirSink(fs, root, location)
    path = access.check(local, must_exist=False)
    if path.exists() or path.is_symlink():
        raise InvalidInput(f"export destination {path} already exists; choose a new path")
    parent, name = access.open_parent(local)
    # With a ledger, the writer records its staging name first: a killed export's is swept at start-up.
    if _is_tar(path.name):
        writer = FileWriter(parent, name, replace=False, ledger=ledger)
        return _TarSink(writer.handle, str(path), on_commit=writer.commit, on_abort=writer.abort)
    try:
        return _DirSink(TreeWriter(parent, name, ledger=ledger), path)
    except BaseException:
        parent.close()
        raise


def open_source(src: str | os.PathLike[str], access: LocalAccess, *, max_read: int) -> ArchiveSource:
    """A reader for an export at ``src`` (a local one read through descriptors, links not followed).

    ``max_read`` bounds any one read of a ``.tar.gz`` stream.

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
    opened = access.open(local)
    if isinstance(opened, LocalDir):
        return _DirSource(opened)
    return _TarSource(opened.handle, str(opened.path), max_read=max_read)


class _DirSink:
    """Builds the tree next to the destination and renames it into place on commit."""

    def __init__(self, tree: TreeWriter, dest: Path) -> None:
        self._tree = tree
        self.location = str(dest)

    def add(self, name: str, data: bytes) -> None:
        self._tree.add(name, [data])

    def commit(self) -> None:
        if not self._tree.commit():
            raise InvalidInput(f"export destination {self.location} appeared while exporting; choose a new path")

    def abort(self) -> None:
        self._tree.abort()


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
        """Finish the archive; ``on_commit`` makes it durable and puts it in place."""
        self._tar.close()
        self._on_commit()

    def abort(self) -> None:
        try:
            self._tar.close()
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
    """An export directory, read through descriptors opened without following symlinks (``local_paths``)."""

    def __init__(self, root: LocalDir) -> None:
        self._root = root
        self.location = str(root.path)

    def in_archive_order(self, names: list[str]) -> list[str]:
        return list(names)  # a folder's files are read in any order at the same cost

    @contextlib.contextmanager
    def open(self, name: str, *, max_bytes: int) -> Iterator[IO[bytes]]:
        try:
            opened = self._root.open_file(DirEntry(name, 0))
        except NotFound:
            raise InvalidInput(f"{self.location} is not a files export: {name} is missing") from None
        except AccessDenied:
            raise InvalidInput(f"{name} in {self.location} cannot be read (a symlink or not a regular file); "
                               "not a valid export") from None  # fmt: skip
        with opened:
            if opened.size > max_bytes:
                raise InvalidInput(f"{name} in {self.location} is not a regular file of at most {max_bytes} bytes")
            yield opened.handle

    def close(self) -> None:
        self._root.close()


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

    def in_archive_order(self, names: list[str]) -> list[str]:
        """``names`` by their place in the stream, so reading them never seeks backwards
        (missing ones first: their error comes without decompressing anything)."""
        return sorted(names, key=lambda name: self._members.get(name, (-1, 0))[0])

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

    def in_archive_order(self, names: list[str]) -> list[str]:
        return list(names)  # a folder's files are read in any order at the same cost

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
