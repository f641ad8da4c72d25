"""Where a memory file may live: namespace and path rules, read-only prefixes, and the live tree on disk.

A path is checked twice: as text (:func:`normalize_path`: NFC, no ``..``, no absolute
paths, no backslashes, control or invisible format characters, not too long, not
reserved) and on disk, where :class:`LiveTree` walks folder descriptors without
following symlinks, so no symlink (swapped in at any moment) can lead it outside the
namespace root.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import stat
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import AccessDenied, InvalidInput, LimitExceeded, MemoryServerError, StorageError
from ..storage.blobs import remove_orphaned_temps

__all__ = ["RESERVED", "LiveTree", "ReadOnlyPrefixes", "Staged", "StatKey", "normalize_namespace", "normalize_path"]

RESERVED = ".memory"
"""First path segment kept for the server's own use (temp files, the transcript resource)."""

_NAMESPACE = re.compile(r"[A-Za-z0-9._-]{1,128}")
_SEGMENT_BYTES = 255  # NAME_MAX on every common file system
# Format characters (zero-width space and joiners, bidi controls, BOM, soft hyphen) and the
# line/paragraph separators: invisible, so two paths that differ only by them look alike.
_INVISIBLE = frozenset({"Cf", "Zl", "Zp"})

StatKey = tuple[int, int, int, int]
"""``(inode, size, mtime_ns, ctime_ns)`` of a live file: unchanged key, unchanged content."""


def normalize_namespace(value: object) -> str:
    """Raises: InvalidInput: ``value`` is not one segment of ``[A-Za-z0-9._-]``."""
    if not isinstance(value, str) or not _NAMESPACE.fullmatch(value) or value in (".", ".."):
        raise InvalidInput(
            f"namespace {value!r} is not valid; use one segment of letters, digits, '.', '_' or '-' "
            "(not '.' or '..'), at most 128 characters"
        )
    return value


def normalize_path(value: object, *, max_bytes: int, field: str = "path") -> str:
    """The canonical form of a relative POSIX path: NFC, ``.`` and empty segments dropped.

    Raises:
        InvalidInput: ``..``, an absolute path, a backslash, a NUL, control or invisible
            format character (Unicode Cc, Cf, Zl, Zp), an empty path, or the reserved
            ``.memory/`` prefix.
        LimitExceeded: longer than ``max_bytes`` in UTF-8, or a segment over 255 bytes.
    """
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string, got {type(value).__name__}")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInput(f"{field} contains a lone surrogate; send valid UTF-8 text") from None
    if size > max_bytes:
        raise LimitExceeded(f"{field} is {size} bytes, over the limit of {max_bytes} (max_path_bytes); shorten it")
    if "\x00" in value:
        raise InvalidInput(f"{field} {value!r} contains a NUL character; remove it")
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise InvalidInput(f"{field} {value!r} contains a control character (newline, tab, …); remove it")
    invisible = next((char for char in value if unicodedata.category(char) in _INVISIBLE), None)
    if invisible is not None:
        raise InvalidInput(
            f"{field} {value!r} contains the invisible character U+{ord(invisible):04X} "
            f"({unicodedata.name(invisible, 'format character')}); zero-width, bidi and other format "
            "characters would make two paths look the same, remove it"
        )
    # "café" typed as é or as e + combining accent is one file, stored in NFC.
    value = unicodedata.normalize("NFC", value)
    if "\\" in value:
        raise InvalidInput(f"{field} {value!r} contains a backslash; separate folders with '/'")
    if value.startswith("/"):
        raise InvalidInput(
            f"{field} {value!r} is absolute; give a path relative to the namespace, e.g. 'notes/plan.md'"
        )
    segments = [segment for segment in value.split("/") if segment not in ("", ".")]
    if ".." in segments:
        raise InvalidInput(f"{field} {value!r} contains '..'; paths cannot leave their namespace")
    if not segments:
        raise InvalidInput(f"{field} {value!r} names no file; give a path such as 'notes/plan.md'")
    for segment in segments:
        if len(segment.encode("utf-8")) > _SEGMENT_BYTES:
            raise LimitExceeded(f"{field} segment {segment[:40]!r}… is over {_SEGMENT_BYTES} bytes; shorten it")
    if segments[0] == RESERVED:
        raise InvalidInput(
            f"{field} {value!r} is under '{RESERVED}/', which the server keeps for itself; choose another path"
        )
    return "/".join(segments)


@dataclass(frozen=True, slots=True)
class ReadOnlyPrefixes:
    """Operator-configured prefixes under which writes and deletes are refused.

    Each entry is ``namespace/prefix`` (the same shape as ``memfile://`` URIs and the
    ``files/`` folder); the prefix is matched as text against the normalised path, so end
    it with ``/`` to mean a folder. A bare ``namespace`` makes the whole namespace read-only.
    """

    rules: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str], *, max_bytes: int) -> ReadOnlyPrefixes:
        """Raises: InvalidInput: an entry does not start with a valid namespace or has a bad prefix."""
        rules = []
        for entry in entries:
            namespace, _, prefix = str(entry).partition("/")
            try:
                normalize_namespace(namespace)
            except InvalidInput:
                raise InvalidInput(
                    f"read_only_prefixes entry {entry!r} must be 'namespace/prefix', e.g. 'default/policies/'"
                ) from None
            if prefix.strip("/"):
                folder = prefix.endswith("/")
                prefix = normalize_path(prefix, max_bytes=max_bytes, field="read_only_prefixes entry")
                prefix += "/" if folder else ""
            else:
                prefix = ""
            rules.append((namespace, prefix))
        return cls(tuple(rules))

    def check(self, namespace: str, path: str, *, action: str) -> None:
        """Raises: AccessDenied: ``path`` is under a read-only prefix of ``namespace``."""
        for rule_namespace, prefix in self.rules:
            if rule_namespace == namespace and path.startswith(prefix):
                shown = f"{namespace}/{prefix}" if prefix else f"the whole namespace {namespace!r}"
                raise AccessDenied(
                    f"cannot {action} {path!r}: {shown} is read-only (read_only_prefixes, set by the operator); "
                    "reads are allowed, write somewhere else"
                )


class Staged:
    """A fsynced temp file in a namespace's ``.memory/tmp`` folder, held by that folder's descriptor."""

    def __init__(self, dir_fd: int, name: str) -> None:
        self.dir_fd = dir_fd
        self.name = name

    def discard(self) -> None:
        """Remove the temp file (if :meth:`LiveTree.install` has not moved it) and close the folder."""
        if self.dir_fd < 0:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.name, dir_fd=self.dir_fd)
        os.close(self.dir_fd)
        self.dir_fd = -1


class _Missing(Exception):
    """A folder on the way does not exist (or a file stands where a folder should be)."""


class LiveTree:
    """The plain files people can open: ``<data_dir>/files/<namespace>/<path>``.

    They are a projection of the database, which stays the source of truth. Files appear
    atomically (temp file, fsync, rename); temp files live under ``<namespace>/.memory/tmp``.

    Every operation walks from the tree root one folder at a time with ``openat`` and
    ``O_NOFOLLOW | O_DIRECTORY``, then reads, renames or unlinks relative to the folder it
    holds open. Checking a resolved path and then opening it again by name would follow a
    symlink swapped in between; holding descriptors cannot be redirected. A symlink found
    anywhere in a namespace is refused, whether or not it leads outside.
    """

    def __init__(self, root: Path, *, durable: bool) -> None:
        self.root = root
        self._durable = durable

    def namespace_root(self, namespace: str) -> Path:
        return self.root / namespace

    # -- the walk ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _folder(self, namespace: str, folders: Sequence[str], *, create: bool, shown: str) -> Iterator[int]:
        """A descriptor of ``<namespace>/<folders…>``, opened without following any symlink.

        Raises:
            _Missing: a folder is absent (and ``create`` is false) or a file is in the way.
            AccessDenied: a symlink is on the way.
        """
        fds: list[int] = []
        try:
            fds.append(self._open_root(create))
            for name in (namespace, *folders):
                fds.append(_open_dir(fds[-1], name, create=create, shown=shown))
            yield fds[-1]
        finally:
            for fd in fds:
                os.close(fd)

    def _open_root(self, create: bool) -> int:
        # The data directory itself is the operator's choice and may sit behind a symlink.
        try:
            return os.open(self.root, _DIR_FLAGS & ~os.O_NOFOLLOW)
        except FileNotFoundError:
            if not create:
                raise _Missing from None
        except OSError as exc:
            raise StorageError(f"cannot open the live-file folder {self.root}: {exc.strerror}") from exc
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            return os.open(self.root, _DIR_FLAGS & ~os.O_NOFOLLOW)
        except OSError as exc:
            raise StorageError(f"cannot create the live-file folder {self.root}: {exc.strerror}") from exc

    def check(self, namespace: str, path: str) -> None:
        """Refuse ``path`` now if a symlink stands on its way or at its end (nothing is created).

        Raises:
            AccessDenied: a symlink is on the way.
        """
        *folders, leaf = path.split("/")
        shown = f"{namespace}/{path}"
        try:
            with self._folder(namespace, folders, create=False, shown=shown) as fd:
                _leaf_stat(fd, leaf, shown)
        except _Missing:
            pass

    # -- reading -----------------------------------------------------------------------------------

    def stat_key(self, namespace: str, path: str) -> StatKey | None:
        """The stat key of the live file, or None when there is no regular file there.

        Raises:
            AccessDenied: a symlink is on the way or at the end.
        """
        *folders, leaf = path.split("/")
        shown = f"{namespace}/{path}"
        try:
            with self._folder(namespace, folders, create=False, shown=shown) as fd:
                st = _leaf_stat(fd, leaf, shown)
        except _Missing:
            return None
        if st is None or not stat.S_ISREG(st.st_mode):
            return None
        return _key(st)

    def read(self, namespace: str, path: str, *, max_bytes: int) -> tuple[bytes, StatKey] | None:
        """The live file's bytes and stat key, or None when there is no regular file there.

        Raises:
            AccessDenied: a symlink is on the way or at the end.
            LimitExceeded: the file on disk is larger than ``max_bytes``.
        """
        *folders, leaf = path.split("/")
        shown = f"{namespace}/{path}"
        try:
            with self._folder(namespace, folders, create=False, shown=shown) as dir_fd:
                try:
                    fd = os.open(leaf, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
                except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                    return None
                except OSError as exc:
                    if exc.errno == errno.ELOOP:
                        raise _symlink_refused(shown, leaf) from None
                    raise StorageError(f"cannot read the live file {shown}: {exc.strerror}") from exc
        except _Missing:
            return None
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(handle.fileno())
            if not stat.S_ISREG(st.st_mode):
                return None
            if st.st_size > max_bytes:
                raise LimitExceeded(
                    f"the live file {shown} was changed on disk and is now {st.st_size} bytes, over the "
                    f"limit of {max_bytes} (max_text_bytes); shrink it or restore it with file_write"
                )
            data = handle.read(max_bytes + 1)
        return data, _key(st)

    # -- writing -----------------------------------------------------------------------------------

    def stage(self, namespace: str, data: bytes) -> Staged:
        """Write ``data`` to a fsynced temp file in the namespace, ready for :meth:`install`.

        Raises:
            AccessDenied: a symlink stands where the namespace or its temp folder should be.
            StorageError: the disk refused.
        """
        shown = f"{namespace}/{RESERVED}/tmp"
        name = f"{os.getpid()}-{os.urandom(8).hex()}.tmp"
        try:
            with self._folder(namespace, (RESERVED, "tmp"), create=True, shown=shown) as tmp_fd:
                staged = Staged(os.dup(tmp_fd), name)
        except _Missing:
            raise StorageError(f"cannot create {shown}: a file is in the way; move it away") from None
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                         dir_fd=staged.dir_fd)  # fmt: skip
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                if self._durable:
                    os.fsync(handle.fileno())
        except OSError as exc:
            staged.discard()
            raise StorageError(f"cannot write under {shown}: {exc.strerror}") from exc
        return staged

    def install(self, namespace: str, path: str, staged: Staged) -> StatKey:
        """Atomically put a staged temp file at ``path`` (folders made on the way, nothing followed).

        Raises:
            AccessDenied: a symlink is on the way or at the end.
            StorageError: a folder or file is in the way, or the disk refused.
        """
        *folders, leaf = path.split("/")
        shown = f"{namespace}/{path}"
        try:
            with self._folder(namespace, folders, create=True, shown=shown) as dir_fd:
                old = _leaf_stat(dir_fd, leaf, shown)
                if old is not None and stat.S_ISDIR(old.st_mode):
                    raise StorageError(f"cannot update the live file {shown}: a folder is in the way; move it away")
                # rename(2) replaces the name itself: whatever was swapped in there is not followed.
                os.rename(staged.name, leaf, src_dir_fd=staged.dir_fd, dst_dir_fd=dir_fd)
                if self._durable:
                    os.fsync(dir_fd)
                return _key(os.stat(leaf, dir_fd=dir_fd, follow_symlinks=False))
        except _Missing:
            raise StorageError(
                f"cannot update the live file {shown}: a file stands where a folder should be; move it away"
            ) from None
        except MemoryServerError:  # AccessDenied and StorageError are OSErrors too: keep their message
            raise
        except OSError as exc:
            raise StorageError(
                f"cannot update the live file {shown}: {exc.strerror}; move away whatever is in the way"
            ) from exc

    def remove(self, namespace: str, path: str) -> None:
        """Remove the live file (if any) and the folders it leaves empty.

        Raises:
            AccessDenied: a symlink is on the way or at the end.
        """
        *folders, leaf = path.split("/")
        shown = f"{namespace}/{path}"
        fds: list[int] = []
        try:
            fds.append(self._open_root(False))
            for name in (namespace, *folders):
                fds.append(_open_dir(fds[-1], name, create=False, shown=shown))
            st = _leaf_stat(fds[-1], leaf, shown)
            if st is not None and stat.S_ISREG(st.st_mode):
                os.unlink(leaf, dir_fd=fds[-1])
            synced = len(fds) - 1
            # rmdir(2) of a name never follows a symlink; stop at the first folder still in use.
            for depth in range(len(folders), 0, -1):
                try:
                    os.rmdir(folders[depth - 1], dir_fd=fds[depth])
                except OSError:
                    break
                synced = depth
            if self._durable:
                os.fsync(fds[synced])
        except _Missing:
            return
        except MemoryServerError:
            raise
        except OSError as exc:
            raise StorageError(f"cannot remove the live file {shown}: {exc.strerror}") from exc
        finally:
            for fd in fds:
                os.close(fd)

    def remove_stale_temps(self) -> int:
        """Delete temp files whose writing process is gone; return how many were removed."""
        try:
            namespaces = os.listdir(self.root)
        except OSError:
            return 0
        removed = 0
        for namespace in namespaces:
            try:
                with self._folder(namespace, (RESERVED, "tmp"), create=False, shown=namespace) as fd:
                    temps = [_AtFile(fd, name) for name in os.listdir(fd) if name.endswith(".tmp")]
                    removed += remove_orphaned_temps(temps, lambda name: name)
            except (_Missing, MemoryServerError, OSError):
                continue
        return removed


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class _AtFile:
    """A file named relative to an open folder (what :func:`remove_orphaned_temps` unlinks)."""

    dir_fd: int
    name: str

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            os.unlink(self.name, dir_fd=self.dir_fd)
        except FileNotFoundError:
            if not missing_ok:
                raise


def _open_dir(parent_fd: int, name: str, *, create: bool, shown: str) -> int:
    """Open the folder ``name`` inside ``parent_fd`` without following a symlink (making it if asked)."""
    swapped = False
    for _ in range(3):
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            if not create:
                raise _Missing from None
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o755, dir_fd=parent_fd)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise StorageError(f"cannot open the folder {name!r} of {shown}: {exc.strerror}") from exc
            try:
                st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
            except FileNotFoundError:
                continue  # it vanished between the two calls; look again
            if stat.S_ISLNK(st.st_mode):
                raise _symlink_refused(shown, name) from None
            if stat.S_ISDIR(st.st_mode):
                swapped = True  # a symlink when opened, a folder again now: it is being swapped; look again
                continue
            raise _Missing from None
    if swapped:
        raise _symlink_refused(shown, name)
    raise StorageError(f"the folder {name!r} of {shown} keeps changing on disk; retry")


def _leaf_stat(dir_fd: int, name: str, shown: str) -> os.stat_result | None:
    """The leaf's own stat (None when absent). Raises: AccessDenied: it is a symlink."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISLNK(st.st_mode):
        raise _symlink_refused(shown, name)
    return st


def _symlink_refused(shown: str, name: str) -> AccessDenied:
    return AccessDenied(
        f"{shown}: {name!r} in the live-file folder is a symlink; symlinks are refused there (one could lead "
        "outside the namespace folder). Remove it; the database still holds every version"
    )


def _key(st: os.stat_result) -> StatKey:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
