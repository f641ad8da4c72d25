"""Keyed memories, Flyte-style: a files namespace saved to and loaded from a deterministic place.

``store.memories.get_or_create("agent-42")`` gives the memory of that key: its files,
versions, audit and transcript live in the namespace ``agent-42``, loaded from the newest
save under ``memory_root`` (a directory or ``s3://bucket/prefix``) the first time this
store sees the key. ``memory.save()`` writes the namespace as the next numbered archive,
``<memory_root>/agent-42/v000002.tar.gz``, created only if absent.

Concurrent saves of one key: one wins. Each copy remembers the version it was loaded from
(or last saved); a save writes that version + 1, and a second process saving the same
number loses with :class:`~mcp_memory_server.errors.Conflict` and nothing written. It then
loads the winner into another namespace (``get_or_create(key, namespace="merge")``),
merges what it needs, and saves again. Saving twice from one copy just adds versions.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from ..errors import AccessDenied, Conflict, InvalidInput, NotFound
from ..ids import utc_now
from ..models import FileHistory, FileMeta
from ..storage.archives import MAX_VERSION, ArchiveRoot, DirectoryArchiveRoot, archive_name, open_archive_root
from ._context import StoreContext
from ._paths import normalize_namespace
from .files import Files
from .local_paths import LocalAccess

__all__ = ["KeyedMemories", "KeyedMemory"]

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise InvalidInput(
            f"memory key {key!r} is not valid; use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return key


class KeyedMemories:
    """The keyed memories of one store, saved under ``memory_root``."""

    def __init__(self, ctx: StoreContext, files: Files) -> None:
        self._ctx = ctx
        self._files = files
        self._root_url = ctx.config.memory_root
        self._root: ArchiveRoot | None = None

    @property
    def root(self) -> ArchiveRoot:
        if self._root is None:
            if not self._root_url:
                raise InvalidInput(
                    "keyed memories need a place to be saved: set memory_root (MCP_MEMORY_MEMORY_ROOT or "
                    "MemoryStore.open(..., memory_root=...)) to a directory or s3://bucket/prefix"
                )
            root = open_archive_root(self._root_url)
            data_dir = self._ctx.config.resolved_data_dir
            if isinstance(root, DirectoryArchiveRoot) and root.root.resolve().is_relative_to(data_dir):
                # Archives among the store's own files: staging/ entries are swept as the store's
                # records (a folder there stopped the next open), blobs/ and files/ are the store's.
                raise AccessDenied(
                    f"memory_root {self._root_url!r} is inside the data directory {data_dir}; the store's own "
                    "files can never hold keyed memories: set memory_root to a directory outside it"
                )
            self._root = root
        return self._root

    def exists(self, key: str) -> bool:
        """True when ``key`` has been saved under ``memory_root`` (by any process)."""
        return bool(self.root.versions(_check_key(key)))

    def create(self, key: str, *, namespace: str | None = None) -> KeyedMemory:
        """A new, empty memory for ``key``.

        Raises:
            Conflict: ``key`` was saved already (use :meth:`get_or_create`), or its namespace holds files.
        """
        key = _check_key(key)
        if self.root.versions(key):
            raise Conflict(f"memory {key!r} exists under {self.root.location}; use get_or_create to load it")
        ns = normalize_namespace(namespace or key)
        if self._tracked(ns) is not None or self._has_content(ns):
            raise Conflict(f"namespace {ns!r} already holds a memory or files; pick another namespace")
        self._track(ns, key, 0)
        return KeyedMemory(self, key, ns, 0)

    def get_or_create(self, key: str, *, namespace: str | None = None) -> KeyedMemory:
        """The memory of ``key``: this store's copy if it has one, else the newest save loaded, else a new one.

        Raises:
            Conflict: the namespace holds files that were not loaded from ``key``.
        """
        key = _check_key(key)
        ns = normalize_namespace(namespace or key)
        tracked = self._tracked(ns)
        if tracked is not None:
            tracked_key, version = tracked
            if tracked_key != key:
                raise Conflict(f"namespace {ns!r} holds memory {tracked_key!r}, not {key!r}; pick another namespace")
            return KeyedMemory(self, key, ns, version)
        if self._has_content(ns):
            raise Conflict(f"namespace {ns!r} holds files not loaded from memory {key!r}; pick another namespace")
        versions = self.root.versions(key)
        if not versions:
            self._track(ns, key, 0)
            return KeyedMemory(self, key, ns, 0)
        latest = versions[-1]
        if latest > MAX_VERSION:  # checked before loading: the namespace must stay empty on refusal
            raise InvalidInput(
                f"{self.root.location}/{key}/{archive_name(latest)} has version {latest}, past the largest version "
                f"a store can track ({MAX_VERSION}); remove or rename it"
            )
        with tempfile.TemporaryDirectory(prefix="mcp-memory-load-") as scratch:
            archive = Path(scratch) / "memory.tar.gz"
            self.root.fetch(key, latest, archive)
            self._files.import_(archive, ns, access=self._scratch_access(Path(scratch)))
        self._track(ns, key, latest)
        return KeyedMemory(self, key, ns, latest)

    # -- inside --------------------------------------------------------------------------------

    def _save(self, memory: KeyedMemory) -> int:
        version = memory.version + 1
        if version > MAX_VERSION:  # before publishing: a save that fails must leave the root as it was
            raise InvalidInput(
                f"memory {memory.key!r} is at the largest version a store can track ({MAX_VERSION}); "
                "save it under a new key"
            )
        with tempfile.TemporaryDirectory(prefix="mcp-memory-save-") as scratch:
            archive = Path(scratch) / "memory.tar.gz"
            try:
                self._files.export(memory.namespace, archive, access=self._scratch_access(Path(scratch)))
            except NotFound:
                raise InvalidInput(f"memory {memory.key!r} is empty: write a file or a message before saving") from None
            if not self.root.put_new(memory.key, version, archive):
                raise Conflict(
                    f"memory {memory.key!r} was saved as version {version} by another process since this copy "
                    f"was loaded (version {memory.version}); load the newest with get_or_create(key, "
                    "namespace=<another>), merge, and save from there"
                )
        with self._ctx.db.write() as conn:
            conn.execute(
                "UPDATE keyed_memories SET version = ?, saved_at = ? WHERE namespace = ? AND version < ?",
                (version, utc_now(), memory.namespace, version),
            )
        return version

    def _scratch_access(self, scratch: Path) -> LocalAccess:
        # The archive is this module's own temp file, not a path an agent named.
        return LocalAccess.create([scratch.resolve()], self._ctx.config.resolved_data_dir)

    def _tracked(self, ns: str) -> tuple[str, int] | None:
        rows = self._ctx.db.query("SELECT memory_key, version FROM keyed_memories WHERE namespace = ?", (ns,))
        return (rows[0][0], int(rows[0][1])) if rows else None

    def _track(self, ns: str, key: str, version: int) -> None:
        with self._ctx.db.write() as conn:
            conn.execute(
                "INSERT INTO keyed_memories (namespace, memory_key, version, saved_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (namespace) DO NOTHING",
                (ns, key, version, utc_now()),
            )

    def _has_content(self, ns: str) -> bool:
        return bool(self._files.list_paths(namespace=ns)) or bool(
            self._ctx.db.query("SELECT 1 FROM file_transcripts WHERE namespace = ? LIMIT 1", (ns,))
        )


class KeyedMemory:
    """One key's memory: Flyte's file names bound to its namespace, and :meth:`save`."""

    def __init__(self, owner: KeyedMemories, key: str, namespace: str, version: int) -> None:
        self._owner = owner
        self._files = owner._files
        self.key = key
        self.namespace = namespace
        self.version = version
        """The saved version this copy holds (0: never saved)."""

    def __repr__(self) -> str:
        return f"KeyedMemory(key={self.key!r}, namespace={self.namespace!r}, version={self.version})"

    def save(self) -> int:
        """Save this memory as the next version under ``memory_root``; returns the version.

        Raises:
            Conflict: another process saved that version first (nothing was written).
            InvalidInput: the memory is empty.
        """
        self.flush_messages()
        self.version = self._owner._save(self)
        return self.version

    # Flyte's names, in this memory's namespace.

    def write_text(self, path: str, text: str, **options: Any) -> FileMeta:
        return self._files.write_text(path, text, namespace=self.namespace, **options)

    def write_json(self, path: str, value: Any, **options: Any) -> FileMeta:
        return self._files.write_json(path, value, namespace=self.namespace, **options)

    def read_text(self, path: str, *default: Any) -> Any:
        return self._files.read_text(path, *default, namespace=self.namespace)

    def read_json(self, path: str, **options: Any) -> Any:
        """The parsed JSON of ``path``; ``default=`` for a missing or empty file."""
        return self._files.read_json(path, namespace=self.namespace, **options)

    def exists(self, path: str) -> bool:
        return self._files.exists(path, namespace=self.namespace)

    def current_sha(self, path: str) -> str:
        return self._files.current_sha(path, namespace=self.namespace)

    def get_meta(self, path: str) -> FileMeta | None:
        return self._files.get_meta(path, namespace=self.namespace)

    def list_paths(self, prefix: str = "") -> list[str]:
        return self._files.list_paths(prefix, namespace=self.namespace)

    def audit_tail(self, n: int = 50, path: str | None = None) -> FileHistory:
        return self._files.audit_tail(n, path, namespace=self.namespace)

    def append(self, message: Any) -> None:
        self._files.append(message, namespace=self.namespace)

    def extend(self, messages: Any) -> None:
        self._files.extend(messages, namespace=self.namespace)

    def flush_messages(self) -> int:
        return self._files.flush_messages(namespace=self.namespace)
