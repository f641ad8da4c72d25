"""``AsyncMemoryStore``: the library API for asyncio/anyio code, as AetherGraph and Flyte use it.

Every public method of a capability (``store.artifacts.save_text``, ``store.events.recent`` …)
is a coroutine here with the sync API's name and arguments. The work runs on a worker
thread (the store keeps one SQLite connection per thread), so the event loop never blocks.

Cancellation never leaves a write half-done: a cancelled ``await`` lets the worker thread
finish the call it started (its transaction commits or rolls back as a whole) and then
raises the cancellation in the caller. ``writer()`` is an async context manager whose bytes
are committed on a clean exit and discarded on an error or a cancellation.
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread

from .core.artifacts import ArtifactWriter
from .models import GcReport, Stats
from .store import MemoryStore

__all__ = ["AsyncCapability", "AsyncMemoryStore"]


async def _in_thread(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    # abandon_on_cancel=False (the default): the call always runs to its end, so a
    # cancelled caller never leaves a write half-committed.
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


class AsyncCapability:
    """An async view of one capability (``artifacts``, ``events``, ``files``, ``lab``, ``graph``, ``search``).

    Methods are the sync capability's, as coroutines; plain attributes are read through.
    ``sync`` is the wrapped object, for code that wants to call it from a thread itself.
    """

    def __init__(self, sync: Any) -> None:
        self.sync = sync

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(self.sync, name)
        if not callable(attr):
            return attr

        @functools.wraps(attr)
        async def method(*args: Any, **kwargs: Any) -> Any:
            return await _in_thread(attr, *args, **kwargs)

        return method

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *(n for n in dir(self.sync) if not n.startswith("_"))})

    def __repr__(self) -> str:
        return f"<async {type(self.sync).__name__}>"


class AsyncArtifacts(AsyncCapability):
    """Async artifacts; ``writer()`` is an ``async with`` block."""

    @asynccontextmanager
    async def writer(self, kind: str = "blob", planned_ext: str = "", **meta: Any) -> AsyncIterator[ArtifactWriter]:
        """Stream bytes into a new artifact, committed atomically when the block exits cleanly.

        ``w.write(data)`` appends to a temp blob (fast, local); the commit (fsync, rename,
        record insert) runs on a worker thread. On an error or a cancellation inside the
        block nothing remains. After the block ``w.record`` (and ``artifacts.last_artifact``) is the record.
        """
        sync_cm = self.sync.writer(kind, planned_ext, **meta)
        writer = await _in_thread(sync_cm.__enter__)
        try:
            yield writer
        except BaseException as exc:
            # Shielded: a cancelled block must still discard its temp blob.
            with anyio.CancelScope(shield=True):
                await _in_thread(sync_cm.__exit__, type(exc), exc, exc.__traceback__)
            raise
        await _in_thread(sync_cm.__exit__, None, None, None)


class AsyncKeyedMemories(AsyncCapability):
    """Async keyed memories: ``mem = await store.memories.get_or_create(key)``, then ``await mem.save()``."""

    async def create(self, key: str, **options: Any) -> AsyncCapability:
        return AsyncCapability(await _in_thread(self.sync.create, key, **options))

    async def get_or_create(self, key: str, **options: Any) -> AsyncCapability:
        return AsyncCapability(await _in_thread(self.sync.get_or_create, key, **options))


class AsyncMemoryStore:
    """A data directory opened for async code: ``store = await AsyncMemoryStore.open(path)``.

    Capabilities are attributes, as on :class:`MemoryStore`: ``artifacts``, ``events``
    (alias ``memory``), ``files``, ``lab``, ``graph``, ``search``. Use it as
    ``async with await AsyncMemoryStore.open(...) as store:`` or close it with ``await store.close()``.
    """

    def __init__(self, store: MemoryStore) -> None:
        self.sync = store
        self.artifacts = AsyncArtifacts(store.artifacts)
        self.events = AsyncCapability(store.events)
        self.memory = self.events
        self.files = AsyncCapability(store.files)
        self.lab = AsyncCapability(store.lab)
        self.graph = AsyncCapability(store.graph)
        self.search = AsyncCapability(store.search)
        self.memories = AsyncKeyedMemories(store.memories)

    @classmethod
    async def open(cls, data_dir: str | os.PathLike[str] | None = None, **settings: Any) -> AsyncMemoryStore:
        """Open (creating if needed) the store in ``data_dir``; ``settings`` are :class:`Config` fields.

        Raises:
            InvalidInput: an unknown or invalid setting. StorageError: the store cannot be opened.
        """
        store: MemoryStore = await _in_thread(MemoryStore.open, data_dir, **settings)
        return cls(store)

    @property
    def config(self) -> Any:
        return self.sync.config

    @property
    def run_id(self) -> str:
        return self.sync.run_id

    def gc(self, *, older_than_days: float | None = None, dry_run: bool = True) -> Awaitable[GcReport]:
        """See :meth:`MemoryStore.gc`."""
        return _in_thread(self.sync.gc, older_than_days=older_than_days, dry_run=dry_run)

    def stats(self) -> Awaitable[Stats]:
        """See :meth:`MemoryStore.stats`."""
        return _in_thread(self.sync.stats)

    async def close(self) -> None:
        await _in_thread(self.sync.close)

    async def __aenter__(self) -> AsyncMemoryStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
