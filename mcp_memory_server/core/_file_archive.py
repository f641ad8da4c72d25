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
import io
import os
import re
import tarfile
import time
from pathlib import Path
from typing import IO, Any, Protocol

from ..errors import AccessDenied, InvalidInput, NotFound, StorageError
from .local_paths import DirEntry, FileWriter, LocalAccess, LocalDir, TreeWriter

__all__ = ["ArchiveSink", "ArchiveSource", "open_sink", "open_source"]

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_NOT_A_PROTOCOL = re.compile(r".*[^a-z]+.*")


class ArchiveSink(Protocol):
    location: str

    def add(self, name: str, data: bytes) -> None: ...
    def commit(self) -> None: ...
    def abort(self) -> None: ...


class ArchiveSource(Protocol):
    location: str

    def read(self, name: str, *, max_bytes: int) -> bytes: ...
    def close(self) -> None: ...


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


def open_sink(dest: str | os.PathLike[str], access: LocalAccess) -> ArchiveSink:
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
    if _is_tar(path.name):
        writer = FileWriter(parent, name, replace=False)
        return _TarSink(writer.handle, str(path), on_commit=writer.commit, on_abort=writer.abort)
    try:
        return _DirSink(TreeWriter(parent, name), path)
    except BaseException:
        parent.close()
        raise


def open_source(src: str | os.PathLike[str], access: LocalAccess) -> ArchiveSource:
    """A reader for an export at ``src`` (a local one read through descriptors, links not followed).

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
            return _TarSource(fs.open(root, "rb"), location)
        return _FsspecDirSource(fs, root, location)
    opened = access.open(local)
    if isinstance(opened, LocalDir):
        return _DirSource(opened)
    return _TarSource(opened.handle, str(opened.path))


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
    def __init__(self, root: LocalDir) -> None:
        self._root = root
        self.location = str(root.path)

    def read(self, name: str, *, max_bytes: int) -> bytes:
        target = self._root.path / name
        try:
            opened = self._root.open_file(DirEntry(name, 0))
        except NotFound:
            raise InvalidInput(f"{self.location} is not a files export: {name} is missing") from None
        except AccessDenied:
            raise InvalidInput(f"{target} is a symlink or not a regular file; not a valid export") from None
        with opened:
            if opened.size > max_bytes:
                raise InvalidInput(f"{target} is larger than {max_bytes} bytes; not a valid export")
            return opened.read(max_bytes, what="export member")

    def close(self) -> None:
        self._root.close()


class _TarSource:
    def __init__(self, handle: IO[bytes], location: str) -> None:
        self._handle = handle
        self.location = location
        try:
            self._tar = tarfile.open(fileobj=handle, mode="r:*")  # noqa: SIM115 - closed in close()
            self._members = {m.name.removeprefix("./"): m for m in self._tar.getmembers()}
        except (tarfile.TarError, OSError, EOFError) as exc:
            handle.close()
            raise InvalidInput(f"{location} is not a readable .tar.gz export ({exc})") from None

    def read(self, name: str, *, max_bytes: int) -> bytes:
        member = self._members.get(name)
        if member is None:
            raise InvalidInput(f"{self.location} is not a files export: {name} is missing")
        if not member.isreg() or member.size > max_bytes:
            raise InvalidInput(f"{name} in {self.location} is not a regular file of at most {max_bytes} bytes")
        extracted = self._tar.extractfile(member)
        if extracted is None:
            raise InvalidInput(f"{name} in {self.location} cannot be read")
        try:
            return extracted.read()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise StorageError(f"cannot read {name} from {self.location}: {exc}") from None

    def close(self) -> None:
        self._tar.close()
        self._handle.close()


class _FsspecDirSource:
    def __init__(self, fs: Any, root: str, location: str) -> None:
        self._fs = fs
        self._root = root.rstrip("/")
        self.location = location

    def read(self, name: str, *, max_bytes: int) -> bytes:
        target = f"{self._root}/{name}"
        try:
            if self._fs.size(target) > max_bytes:
                raise InvalidInput(f"{target} is larger than {max_bytes} bytes; not a valid export")
            return bytes(self._fs.cat_file(target))
        except FileNotFoundError:
            raise InvalidInput(f"{self.location} is not a files export: {name} is missing") from None

    def close(self) -> None:
        pass
