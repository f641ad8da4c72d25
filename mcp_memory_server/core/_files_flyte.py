"""Flyte ``MemoryStore``'s names for memory files, as thin calls into :class:`~.files.Files`.

Users arriving from Flyte keep their code: ``write_text``/``read_text``,
``write_json``/``read_json``, ``list_paths``, ``exists``, ``current_sha`` (``""`` when
absent), ``get_meta``, and the transcript's ``append``/``extend``/``flush_messages``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, cast

from ..errors import NotFound
from ..models import FileMeta

if TYPE_CHECKING:
    from .files import Files, Transcript

__all__ = ["FlyteFileNames"]

_MISSING: Any = object()
_DEFAULT_NAMESPACE = "default"


class FlyteFileNames:
    """Mixed into :class:`~.files.Files`; every method is one call of the native API."""

    _transcripts: dict[str, Transcript]
    _transcripts_lock: threading.Lock

    @property
    def _host(self) -> Files:
        return cast("Files", self)

    def write_text(
        self, path: str, text: str, *, expected_sha: str | None = None, actor: str = "agent",
        reason: str = "", namespace: str = _DEFAULT_NAMESPACE,
    ) -> FileMeta:  # fmt: skip
        """Write ``text`` as a new version of ``path`` (``expected_sha``: only if unchanged; ``""``: only if new).

        Raises:
            Conflict: ``expected_sha`` does not match the current content.
        """
        return self._host.write(path, text, expected_sha=expected_sha, actor=actor, reason=reason, namespace=namespace)

    def write_json(
        self, path: str, value: Any, *, expected_sha: str | None = None, actor: str = "agent",
        reason: str = "", namespace: str = _DEFAULT_NAMESPACE,
    ) -> FileMeta:  # fmt: skip
        """Write a JSON value as a new version of ``path``.

        Raises:
            Conflict: ``expected_sha`` does not match the current content.
        """
        return self._host.write(
            path, json=value, expected_sha=expected_sha, actor=actor, reason=reason, namespace=namespace
        )

    def read_text(self, path: str, default: Any = _MISSING, *, namespace: str = _DEFAULT_NAMESPACE) -> Any:
        """The whole text of ``path``, or ``default`` when it does not exist.

        Raises:
            NotFound: the path does not exist and no ``default`` was given.
        """
        if default is _MISSING:
            return self._host.read(path, namespace=namespace).content
        content = self._host.read(path, default=None, namespace=namespace)
        return default if content is None else content.content

    def exists(self, path: str, *, namespace: str = _DEFAULT_NAMESPACE) -> bool:
        """Whether ``path`` currently has content (a deleted path does not exist)."""
        return self.get_meta(path, namespace=namespace) is not None

    def current_sha(self, path: str, *, namespace: str = _DEFAULT_NAMESPACE) -> str:
        """The sha256 of the current content, ``""`` when the path does not exist (pass it as ``expected_sha``)."""
        meta = self.get_meta(path, namespace=namespace)
        return meta.sha256 if meta is not None else ""

    def get_meta(self, path: str, *, namespace: str = _DEFAULT_NAMESPACE) -> FileMeta | None:
        """The metadata of the current version of ``path``, or None when it does not exist."""
        try:
            return self._host.read(path, length=1, namespace=namespace).meta
        except NotFound:
            return None

    def list_paths(self, prefix: str = "", *, namespace: str = _DEFAULT_NAMESPACE) -> list[str]:
        """Every live path under ``prefix``, sorted."""
        paths: list[str] = []
        cursor: str | None = None
        while True:
            page = self._host.list(prefix, cursor=cursor, namespace=namespace, limit=self._host._config.max_page_size)
            paths += [item.path for item in page.items]
            cursor = page.next_cursor
            if cursor is None:
                return paths

    # -- the transcript, as Flyte's MemoryStore keeps it --------------------------------------------

    def append(self, message: Any, *, namespace: str = _DEFAULT_NAMESPACE) -> None:
        """Add one message to the namespace's transcript (persisted by :meth:`flush_messages`)."""
        self._pending_transcript(namespace).append(message)

    def extend(self, messages: Any, *, namespace: str = _DEFAULT_NAMESPACE) -> None:
        """Add several messages; if one is invalid, none is added."""
        self._pending_transcript(namespace).extend(messages)

    def flush_messages(self, *, namespace: str | None = None) -> int:
        """Persist the messages appended since the last flush (one namespace, or all); return how many."""
        with self._transcripts_lock:
            open_ones = dict(self._transcripts)
        names = [namespace] if namespace is not None else list(open_ones)
        return sum(open_ones[n].flush() for n in names if n in open_ones)

    def _pending_transcript(self, namespace: str) -> Transcript:
        with self._transcripts_lock:
            if namespace not in self._transcripts:
                self._transcripts[namespace] = self._host.transcript(namespace)
            return self._transcripts[namespace]
