"""Server-local paths: what an agent may touch, opened so that a swapped-in symlink cannot redirect it.

The rule (:class:`LocalAccess`): a path must resolve, symlinks included, to a place under
one of the allowed roots; never to the data directory or anything in it; and never to
a dot entry of the home directory (``~/.ssh``, ``~/.aws``, ``~/.config``, …) unless a
root lies inside that entry. Only regular files and directories can be read.

The mechanism: checking a path and then opening it again by name lets a symlink swapped
in between redirect the open (a time-of-check-to-time-of-use race). So after the check
every operation starts from the allowed root's directory descriptor and opens each
component with ``O_NOFOLLOW`` relative to the previous one, verifies what it opened with
``fstat``, and then reads, writes and renames only through those descriptors. A symlink
that appears at any moment makes the open fail (``ELOOP``/``ENOTDIR``) instead of being
followed. Outputs are written to a temp entry created in the destination's directory
descriptor and renamed into place within that descriptor, so a swapped destination is
replaced, never written through.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

from ..config import Config, home_dir
from ..errors import AccessDenied, InvalidInput, LimitExceeded, NotFound
from ..storage.staging import StagingLedger

__all__ = ["FileWriter", "LocalAccess", "LocalDir", "LocalFile", "TreeWriter", "rename_noreplace"]

_CHUNK = 1 << 20
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO swapped in after the check must not block the open; regular files ignore it.
_LEAF = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_FIX = "start the server with --allow-path DIR (or set MCP_MEMORY_ALLOW_PATH) to allow another root"


def _roots_text(roots: Sequence[Path]) -> str:
    return ", ".join(str(r) for r in roots) or "none"


def _raced(raw: object, exc: OSError) -> AccessDenied:
    return AccessDenied(
        f"path {raw!s} changed while it was being opened (a component is now a symlink or not a directory: "
        f"{exc.strerror}); symlinks are not followed after the check, retry once it is stable"
    )


@dataclass(frozen=True, slots=True)
class LocalAccess:
    """Which server-local paths may be read or written, and the descriptor-based ways to do it.

    Args:
        roots: resolved directories under which paths may be used.
        data_dir: the store's data directory, never readable or writable through a path.
        home: the home directory whose dot entries are refused (None: no such rule).
    """

    roots: tuple[Path, ...]
    data_dir: Path | None = None
    home: Path | None = None
    _identity: tuple[int, int] | None = field(default=None, compare=False)

    @classmethod
    def create(cls, roots: Sequence[Path], data_dir: Path | None, home: Path | None = None) -> LocalAccess:
        identity = None
        if data_dir is not None:
            with contextlib.suppress(OSError):
                st = os.stat(data_dir)
                identity = (st.st_dev, st.st_ino)
        return cls(tuple(roots), data_dir, home, identity)

    @classmethod
    def of(cls, config: Config) -> LocalAccess:
        """The access rule of a :class:`~mcp_memory_server.config.Config` (its roots, data and home dirs)."""
        return cls.create(config.allowed_roots, config.resolved_data_dir, home_dir())

    # -- the rule ----------------------------------------------------------------------------------

    def check(self, path: str | os.PathLike[str], *, must_exist: bool = True) -> Path:
        """Resolve ``path`` (symlinks included) and check it against the rule; return the resolved path.

        Raises:
            InvalidInput: the path is empty or contains NUL.
            NotFound: ``must_exist`` and nothing is there.
            AccessDenied: the path is outside the roots, in the data directory, a dot entry of
                home, or (``must_exist``) a FIFO, socket or device.
        """
        raw = os.fspath(path)
        if not isinstance(raw, str) or not raw or "\x00" in raw:
            raise InvalidInput("path must be a non-empty path without NUL characters")
        candidate = Path(raw).expanduser()
        if not candidate.is_absolute():
            candidate = Path.cwd() / candidate
        try:
            resolved = candidate.resolve(strict=must_exist)
        except FileNotFoundError:
            raise NotFound(f"path {raw!r} does not exist on the server") from None
        except (OSError, RuntimeError) as exc:
            raise AccessDenied(f"path {raw!r} cannot be resolved: {exc}") from None
        self._check_resolved(raw, resolved)
        if must_exist:
            mode = resolved.stat().st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise AccessDenied(f"path {raw!r} is not a regular file or directory (FIFO, socket or device)")
        return resolved

    def _check_resolved(self, raw: str, resolved: Path) -> Path:
        if self.data_dir is not None and resolved.is_relative_to(self.data_dir):
            raise AccessDenied(
                f"path {raw!r} is inside the data directory {self.data_dir}; the store's own files (memory.db, "
                "blobs/, files/) can never be read or written through a path; use the tools to read what they hold"
            )
        root = self._root_of(resolved)
        if root is None:
            raise AccessDenied(
                f"path {raw!r} resolves to {resolved}, outside the allowed roots ({_roots_text(self.roots)}); {_FIX}"
            )
        if self.home is not None and resolved.is_relative_to(self.home) and resolved != self.home:
            first = resolved.relative_to(self.home).parts[0]
            hidden = self.home / first
            if first.startswith(".") and not any(r.is_relative_to(hidden) for r in self.roots):
                raise AccessDenied(
                    f"path {raw!r} is inside {hidden}, a hidden entry of the home directory (keys, tokens and "
                    f"settings live there) and refused even under an allowed root; to allow it, start the server "
                    f"with --allow-path {hidden} (or set MCP_MEMORY_ALLOW_PATH)"
                )
        return root

    def _root_of(self, resolved: Path) -> Path | None:
        # The deepest root, so the descriptor walk is as short as possible.
        found = [r for r in self.roots if resolved.is_relative_to(r)]
        return max(found, key=lambda r: len(r.parts)) if found else None

    def _refuse_data_dir(self, fd: int, shown: object) -> None:
        if self._identity is not None:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) == self._identity:
                raise AccessDenied(
                    f"{shown} is the data directory {self.data_dir}; the store's own files can never be read or "
                    "written through a path"
                )

    # -- opening -----------------------------------------------------------------------------------

    def _walk(self, raw: object, resolved: Path, *, create: bool = False) -> int:
        """A descriptor of the directory ``resolved``, opened from its root without following links.

        With ``create`` missing directories are made on the way (each through its parent's descriptor).
        """
        root = self._check_resolved(str(raw), resolved)
        try:
            fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the root itself is the operator's
        except FileNotFoundError:
            raise NotFound(f"the allowed root {root} does not exist") from None
        try:
            self._refuse_data_dir(fd, raw)
            for part in resolved.relative_to(root).parts:
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o777, dir_fd=fd)
                child = _open_at(raw, part, _DIR, fd)
                os.close(fd)
                fd = child
                self._refuse_data_dir(fd, raw)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def open(self, path: str | os.PathLike[str]) -> LocalFile | LocalDir:
        """Open an existing regular file or directory under the rule, without following links after the check.

        Raises:
            NotFound, AccessDenied, InvalidInput: as :meth:`check`; AccessDenied also when the
                path changed into a link or special file after the check.
        """
        resolved = self.check(path)
        raw = os.fspath(path)
        if resolved.parent == resolved or self._root_of(resolved) == resolved:
            return LocalDir(self, resolved, self._walk(raw, resolved))
        parent = self._walk(raw, resolved.parent)
        try:
            return self._open_leaf(raw, parent, resolved.name, resolved)
        finally:
            os.close(parent)

    def _open_leaf(self, raw: object, parent: int, name: str, shown: Path) -> LocalFile | LocalDir:
        fd = _open_at(raw, name, _LEAF, parent)
        try:
            mode = os.fstat(fd).st_mode
            if stat.S_ISDIR(mode):
                self._refuse_data_dir(fd, raw)
                return LocalDir(self, shown, fd)
            if not stat.S_ISREG(mode):
                raise AccessDenied(f"path {raw!s} is not a regular file or directory (FIFO, socket or device)")
            os.set_blocking(fd, True)
            return LocalFile(shown, fd)
        except BaseException:
            os.close(fd)
            raise

    def open_file(self, path: str | os.PathLike[str], *, field: str = "path") -> LocalFile:
        """Like :meth:`open`, for a path that must be a regular file.

        Raises:
            InvalidInput: it is a directory.
        """
        opened = self.open(path)
        if isinstance(opened, LocalDir):
            opened.close()
            raise InvalidInput(f"{field} must be a file, got a directory: {opened.path}")
        return opened

    def open_parent(self, path: str | os.PathLike[str]) -> tuple[LocalDir, str]:
        """The directory that will hold a new ``path`` (made if missing) and the entry name in it.

        A ``path`` that is a symlink inside the roots names its target, as when reading.

        Raises:
            AccessDenied / InvalidInput: as :meth:`check` (with ``must_exist=False``).
        """
        resolved = self.check(path, must_exist=False)
        if resolved.parent == resolved:
            raise InvalidInput(f"path {os.fspath(path)!r} names a root directory; give a new file or folder in it")
        return LocalDir(self, resolved.parent, self._walk(os.fspath(path), resolved.parent, create=True)), resolved.name


class LocalFile:
    """A regular file opened without following links; read it through :attr:`handle`."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.handle: IO[bytes] = os.fdopen(fd, "rb")
        self.size = os.fstat(fd).st_size

    def chunks(self) -> Iterator[bytes]:
        self.handle.seek(0)
        return iter(lambda: self.handle.read(_CHUNK), b"")

    def read(self, max_bytes: int | None = None, *, what: str = "file") -> bytes:
        """The whole content (at most ``max_bytes``).

        Raises:
            LimitExceeded: it is longer than ``max_bytes``.
        """
        self.handle.seek(0)
        data = self.handle.read() if max_bytes is None else self.handle.read(max_bytes + 1)
        if max_bytes is not None and len(data) > max_bytes:
            raise LimitExceeded(f"{what} {self.path} is larger than {max_bytes} bytes")
        return data

    def tail(self, size: int) -> bytes:
        end = self.handle.seek(0, os.SEEK_END)
        self.handle.seek(max(0, end - size))
        return self.handle.read()

    def close(self) -> None:
        self.handle.close()

    def __enter__(self) -> LocalFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class DirEntry:
    """A file found by :meth:`LocalDir.files`: its POSIX path relative to the directory and its size."""

    relative: str
    size: int
    link_target: Path | None = None


class LocalDir:
    """A directory opened without following links; its tree is read only through descriptors."""

    def __init__(self, access: LocalAccess, path: Path, fd: int) -> None:
        self.access = access
        self.path = path
        self.fd = fd

    def files(self) -> list[DirEntry]:
        """Every file under the directory, sorted by relative path (directory links refused).

        A file symlink is allowed when its target passes the rule; it is opened by its target.

        Raises:
            AccessDenied: an entry is special, a directory link, a link out of the roots, or the data directory.
        """
        found: list[DirEntry] = []
        self._collect(self.fd, "", found)
        found.sort(key=lambda e: e.relative)
        return found

    def _collect(self, fd: int, prefix: str, found: list[DirEntry]) -> None:
        names = sorted(os.listdir(fd))
        for name in names:
            relative = f"{prefix}{name}"
            shown = self.path / relative
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed while we walk: it is simply not part of the tree
            if stat.S_ISLNK(st.st_mode):
                target = Path(os.path.realpath(shown))
                self.access._check_resolved(str(shown), target)
                if target.is_dir():
                    raise AccessDenied(
                        f"{shown} is a symlink to a directory; directory links are not followed, copy the target in instead"
                    )
                if not target.is_file():
                    raise AccessDenied(f"{shown} is not a regular file (it links to {target})")
                found.append(DirEntry(relative, target.stat().st_size, target))
            elif stat.S_ISDIR(st.st_mode):
                self.access._check_resolved(str(shown), shown)
                try:
                    child = os.open(name, _DIR, dir_fd=fd)
                except OSError as exc:
                    raise _raced(shown, exc) from None
                try:
                    self.access._refuse_data_dir(child, shown)
                    self._collect(child, relative + "/", found)
                finally:
                    os.close(child)
            elif stat.S_ISREG(st.st_mode):
                self.access._check_resolved(str(shown), shown)
                found.append(DirEntry(relative, st.st_size))
            else:
                raise AccessDenied(f"{shown} is not a regular file or directory (FIFO, socket or device)")

    def open_file(self, entry: DirEntry) -> LocalFile:
        """Open one entry of :meth:`files`, walking from this directory's descriptor without following links.

        Raises:
            AccessDenied: the entry changed into a link, a directory or a special file since it was listed.
        """
        shown = self.path / entry.relative
        if entry.link_target is not None:
            return self.access.open_file(entry.link_target, field=str(shown))
        parts = entry.relative.split("/")
        fd = os.dup(self.fd)
        try:
            for part in parts[:-1]:
                try:
                    child = os.open(part, _DIR, dir_fd=fd)
                except FileNotFoundError:
                    raise NotFound(f"{shown} does not exist on the server") from None
                except OSError as exc:
                    raise _raced(shown, exc) from None
                os.close(fd)
                fd = child
            opened = self.access._open_leaf(shown, fd, parts[-1], shown)
        finally:
            os.close(fd)
        if isinstance(opened, LocalDir):
            opened.close()
            raise _raced(shown, OSError(errno.EISDIR, "it is now a directory"))
        return opened

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> LocalDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _temp_name(name: str) -> str:
    # At most 100 bytes of the name, so the temp fits NAME_MAX whenever the name itself does.
    short = os.fsencode(name)[:100].decode("utf-8", errors="ignore") or "x"
    return f".{short}.tmp-{os.getpid()}-{os.urandom(4).hex()}"


class _Staging:
    """The temp entry's name in ``parent``; with a ledger, recorded there before the entry exists.

    The ledger (``storage/staging.py``) is how start-up finds a killed writer's temp, which
    may lie anywhere under the allowed roots; it is released once the temp is renamed or removed.
    """

    def __init__(self, parent: LocalDir, name: str, ledger: StagingLedger | None) -> None:
        self._ledger = ledger
        self._reserved = None if ledger is None else ledger.reserve(parent.path / name)
        self.name = _temp_name(name) if self._reserved is None else self._reserved.name

    def release(self) -> None:
        if self._ledger is not None and self._reserved is not None:
            self._ledger.release(self._reserved)
            self._reserved = None


class FileWriter:
    """A new file built as a temp entry of ``parent`` and renamed onto ``name`` on :meth:`commit`.

    ``replace``: an existing ``name`` (a file, or a symlink, which is replaced and never
    followed) is overwritten; otherwise it makes the commit fail with InvalidInput.
    ``ledger``: the temp's name is recorded there first (see :class:`_Staging`).
    """

    def __init__(self, parent: LocalDir, name: str, *, replace: bool, ledger: StagingLedger | None = None) -> None:
        self._parent = parent
        self._name = name
        self._replace = replace
        self._staging = _Staging(parent, name, ledger)
        self._temp = self._staging.name
        self.location = parent.path / name
        try:
            self.handle: IO[bytes] = os.fdopen(os.open(self._temp, _NEW_FILE, 0o644, dir_fd=parent.fd), "wb")
        except BaseException:
            self._staging.release()
            raise

    def write(self, data: bytes) -> int:
        return self.handle.write(data)

    def commit(self) -> None:
        try:
            self.handle.flush()
            os.fsync(self.handle.fileno())
            self.handle.close()
            if self._replace:
                os.rename(self._temp, self._name, src_dir_fd=self._parent.fd, dst_dir_fd=self._parent.fd)
            else:
                rename_noreplace(self._parent.fd, self._temp, self._parent.fd, self._name, is_dir=False)
            os.fsync(self._parent.fd)
        except FileExistsError:
            self.abort()
            raise InvalidInput(f"destination {self.location} already exists; choose a new path") from None
        except IsADirectoryError:
            self.abort()
            raise AccessDenied(
                f"{self.location} is a directory; give a file path such as {self.location / 'snapshot.json'}"
            ) from None
        except BaseException:
            self.abort()
            raise
        finally:
            self._parent.close()
            self._staging.release()

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self.handle.close()
        with contextlib.suppress(OSError):
            os.unlink(self._temp, dir_fd=self._parent.fd)
        self._parent.close()
        self._staging.release()

    def __enter__(self) -> FileWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()


class TreeWriter:
    """A new directory built as a temp entry of ``parent`` and renamed onto ``name`` on :meth:`commit`.

    Every file is created through the staging directory's descriptors, never by a path, so
    nothing swapped into the staging tree can redirect a write.
    """

    def __init__(self, parent: LocalDir, name: str, *, ledger: StagingLedger | None = None) -> None:
        self._parent = parent
        self._name = name
        self._staging = _Staging(parent, name, ledger)
        self._temp = self._staging.name
        self.location = parent.path / name
        try:
            os.mkdir(self._temp, 0o755, dir_fd=parent.fd)
            self._fd = os.open(self._temp, _DIR, dir_fd=parent.fd)
        except BaseException:
            self._staging.release()
            raise

    def add(self, relative: str, chunks: Iterable[bytes]) -> None:
        """Write one file at ``relative`` (POSIX, inside the tree).

        Raises:
            AccessDenied: ``relative`` is absolute, empty or climbs out with ``..``.
        """
        parts = relative.split("/")
        if not relative or relative.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise AccessDenied(f"entry {relative!r} escapes the directory or is not a plain relative path")
        fd = os.dup(self._fd)
        try:
            for part in parts[:-1]:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
                child = os.open(part, _DIR, dir_fd=fd)
                os.close(fd)
                fd = child
            with os.fdopen(os.open(parts[-1], _NEW_FILE, 0o644, dir_fd=fd), "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
        finally:
            os.close(fd)

    def commit(self) -> bool:
        """Rename the tree into place; False (and the staging removed) when ``name`` already exists.

        Raises:
            StorageError: the rename failed otherwise.
        """
        try:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
            rename_noreplace(self._parent.fd, self._temp, self._parent.fd, self._name, is_dir=True)
            os.fsync(self._parent.fd)
        except FileExistsError:
            self.abort()
            return False
        except BaseException:
            self.abort()
            raise
        self._parent.close()
        self._staging.release()
        return True

    def abort(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        # rmtree with dir_fd never follows links out of the staging tree.
        shutil.rmtree(self._temp, dir_fd=self._parent.fd, ignore_errors=True)
        self._parent.close()
        self._staging.release()


_RENAME_NOREPLACE = 1
_libc: ctypes.CDLL | None = None


def _renameat2(src_fd: int, src: str, dst_fd: int, dst: str, flags: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    fn = _libc.renameat2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(src_fd, os.fsencode(src), dst_fd, os.fsencode(dst), flags) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def rename_noreplace(src_fd: int, src: str, dst_fd: int, dst: str, *, is_dir: bool) -> None:
    """Rename ``src`` to ``dst`` (each relative to its directory descriptor) only if ``dst`` does not exist.

    Raises:
        FileExistsError: ``dst`` exists (a file, a directory or a symlink; it is left alone).
    """
    try:
        _renameat2(src_fd, src, dst_fd, dst, _RENAME_NOREPLACE)
        return
    except (AttributeError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno == errno.EEXIST:
            raise FileExistsError(exc.errno, exc.strerror) from None
        if isinstance(exc, OSError) and exc.errno not in (errno.EINVAL, errno.ENOSYS):
            raise
    # No renameat2 (old libc or a filesystem without it): a hard link cannot replace, for files;
    # a directory renamed onto a file or link fails, onto an empty directory it merely replaces it.
    if not is_dir:
        os.link(src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd, follow_symlinks=False)
        os.unlink(src, dir_fd=src_fd)
        return
    try:
        os.stat(dst, dir_fd=dst_fd, follow_symlinks=False)
    except FileNotFoundError:
        try:
            os.rename(src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise FileExistsError(exc.errno, exc.strerror) from None
            raise
        return
    raise FileExistsError(errno.EEXIST, f"{dst} exists")


def _open_at(raw: object, name: str, flags: int, dir_fd: int) -> int:
    """``os.open(name, flags, dir_fd=dir_fd)`` with its failures in our words (a link met is a race lost)."""
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        raise NotFound(f"path {raw!s} does not exist on the server") from None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _raced(raw, exc) from None
        raise AccessDenied(f"path {raw!s} cannot be opened: {exc.strerror}") from None
