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
import io
import os
import re
import shutil
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

from ..errors import InvalidInput, NotFound, StorageError
from ..storage.staging import StagingLedger
from .local_paths import resolve_allowed

__all__ = ["ArchiveSink", "ArchiveSource", "open_sink", "open_source"]

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


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


def open_source(src: str | os.PathLike[str], roots: tuple[Path, ...]) -> ArchiveSource:
    """A reader for an export at ``src``.

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
    path = resolve_allowed(local, roots)
    if path.is_dir():
        return _DirSource(path)
    return _TarSource(open(path, "rb"), str(path))


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
    def __init__(self, root: Path) -> None:
        self._root = root
        self.location = str(root)

    def read(self, name: str, *, max_bytes: int) -> bytes:
        target = self._root / name
        try:
            if target.is_symlink() or target.stat().st_size > max_bytes:
                raise InvalidInput(f"{target} is a symlink or larger than {max_bytes} bytes; not a valid export")
            return target.read_bytes()
        except FileNotFoundError:
            raise InvalidInput(f"{self.location} is not a files export: {name} is missing") from None

    def close(self) -> None:
        pass


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
