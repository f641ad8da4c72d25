"""Where a memory file may live: namespace and path rules, read-only prefixes, and the live tree on disk.

A path is checked twice: as text (:func:`normalize_path`: no ``..``, no absolute paths,
no backslashes or control characters, not too long, not reserved) and, before any disk
access, as a location (:meth:`LiveTree.locate`: after resolving every symlink it must
still lie inside the namespace root).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import AccessDenied, InvalidInput, LimitExceeded, StorageError
from ..storage.blobs import fsync_dir, remove_orphaned_temps

__all__ = ["RESERVED", "LiveTree", "ReadOnlyPrefixes", "StatKey", "normalize_namespace", "normalize_path"]

RESERVED = ".memory"
"""First path segment kept for the server's own use (temp files, the transcript resource)."""

_NAMESPACE = re.compile(r"[A-Za-z0-9._-]{1,128}")
_SEGMENT_BYTES = 255  # NAME_MAX on every common file system

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
    """The canonical form of a relative POSIX path: ``.`` and empty segments dropped.

    Raises:
        InvalidInput: ``..``, an absolute path, a backslash, a NUL or control character,
            an empty path, or the reserved ``.memory/`` prefix.
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


class LiveTree:
    """The plain files people can open: ``<data_dir>/files/<namespace>/<path>``.

    They are a projection of the database, which stays the source of truth. Files appear
    atomically (temp file, fsync, rename); temp files live under ``<namespace>/.memory/tmp``.
    """

    def __init__(self, root: Path, *, durable: bool) -> None:
        self.root = root
        self._durable = durable

    def namespace_root(self, namespace: str) -> Path:
        return self.root / namespace

    def locate(self, namespace: str, path: str) -> Path:
        """The live location of ``path``, checked to stay inside the namespace root after symlinks.

        Raises:
            AccessDenied: a symlink on the way (or at the end) leads outside the namespace root.
        """
        root = self.namespace_root(namespace)
        target = root.joinpath(*path.split("/"))
        try:
            real_root = root.resolve()
            resolved = target.resolve()
        except (OSError, RuntimeError) as exc:
            raise AccessDenied(f"path {path!r} cannot be resolved on disk ({exc}); remove the symlink loop") from None
        if not resolved.is_relative_to(real_root) or resolved == real_root:
            raise AccessDenied(
                f"path {path!r} resolves to {resolved}, outside the namespace folder {real_root} "
                "(a symlink points out); remove the symlink"
            )
        return target

    def stat_key(self, namespace: str, path: str) -> StatKey | None:
        """The stat key of the live file, or None when there is no regular file there."""
        try:
            st = os.stat(self.locate(namespace, path))
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def read(self, namespace: str, path: str, *, max_bytes: int) -> tuple[bytes, StatKey] | None:
        """The live file's bytes and stat key, or None when there is no regular file there.

        Raises:
            AccessDenied: the location escapes the namespace root.
            LimitExceeded: the file on disk is larger than ``max_bytes``.
        """
        target = self.locate(namespace, path)
        try:
            fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            raise StorageError(f"cannot read the live file {target}: {exc.strerror}") from exc
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(handle.fileno())
            if not stat.S_ISREG(st.st_mode):
                return None
            if st.st_size > max_bytes:
                raise LimitExceeded(
                    f"the live file {target} was changed on disk and is now {st.st_size} bytes, over the "
                    f"limit of {max_bytes} (max_text_bytes); shrink it or restore it with file_write"
                )
            data = handle.read(max_bytes + 1)
        return data, (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def stage(self, namespace: str, data: bytes) -> Path:
        """Write ``data`` to a fsynced temp file in the namespace, ready for :meth:`install`."""
        tmp_dir = self.namespace_root(namespace) / RESERVED / "tmp"
        try:
            tmp_dir.mkdir(parents=True, exist_ok=True)
            temp = tmp_dir / f"{os.getpid()}-{os.urandom(8).hex()}.tmp"
            with open(temp, "xb") as handle:
                handle.write(data)
                handle.flush()
                if self._durable:
                    os.fsync(handle.fileno())
        except OSError as exc:
            raise StorageError(f"cannot write under {tmp_dir}: {exc.strerror}") from exc
        return temp

    def install(self, namespace: str, path: str, staged: Path) -> StatKey:
        """Atomically put a staged temp file at ``path`` (replacing a file or a symlink, never following it).

        Raises:
            AccessDenied: the location escapes the namespace root.
            StorageError: a folder is in the way, or the disk refused.
        """
        target = self.locate(namespace, path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self.locate(namespace, path)  # the folders just made must not have raced a symlink in
            os.replace(staged, target)
            if self._durable:
                fsync_dir(target.parent)
            st = os.stat(target, follow_symlinks=False)
        except OSError as exc:
            staged.unlink(missing_ok=True)
            raise StorageError(
                f"cannot update the live file {target}: {exc.strerror}; move away whatever is in the way"
            ) from exc
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def remove(self, namespace: str, path: str) -> None:
        """Remove the live file (if any) and the folders it leaves empty."""
        target = self.locate(namespace, path)
        root = self.namespace_root(namespace)
        try:
            if target.is_file() or target.is_symlink():
                target.unlink()
            parent = target.parent
            while parent != root and parent.is_relative_to(root):
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent
            if self._durable and parent.exists():
                fsync_dir(parent)
        except OSError as exc:
            raise StorageError(f"cannot remove the live file {target}: {exc.strerror}") from exc

    def remove_stale_temps(self) -> int:
        """Delete temp files whose writing process is gone; return how many were removed."""
        return remove_orphaned_temps(self.root.glob(f"*/{RESERVED}/tmp/*.tmp"), lambda name: name)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
