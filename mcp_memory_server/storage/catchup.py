"""Following a table's rising ids when transactions may commit them out of order.

A cache that loads "rows with an id above the last one I saw" misses a row whose id was
drawn before a higher one but committed after it: the higher row is loaded, the marker
moves past the lower id, and the lower row never matches again. SQLite's single writer
and our per-store write lock on PostgreSQL draw ids in commit order, so this does not
happen through :meth:`Database.write`; :class:`IdFollower` does not rely on it. It
remembers the holes below the newest id it has seen (ranges not seen yet, which a
transaction still in flight may fill) for a while, and the next catch-up asks for them
again along with everything newer. Holes left by rolled-back transactions or deleted
rows are simply never filled and age out.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["IdFollower"]

# How long a hole is re-read. A transaction that drew an id and commits later than this is
# not waited for; through Database.write ids are drawn under the write lock, so this only
# guards writers that bypass it.
_HORIZON_S = 120.0
# Holes re-read at once; beyond this the oldest are given up (each costs one index range).
_MAX_GAPS = 64


class IdFollower:
    """The ids of one table a cache has taken in, and the holes below the newest.

    Feed ids in rising order per read with :meth:`take`; build the next read's
    condition with :meth:`condition`.
    """

    __slots__ = ("_clock", "_gaps", "_horizon", "_max_gaps", "high")

    def __init__(
        self,
        *,
        horizon: float = _HORIZON_S,
        max_gaps: int = _MAX_GAPS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.high = 0
        self._gaps: list[tuple[int, int, float]] = []  # (first, last, noticed at), rising by first
        self._horizon = horizon
        self._max_gaps = max_gaps
        self._clock = clock

    def reset(self, high: int = 0) -> None:
        """Start over: ids up to ``high`` count as seen, and no hole is known."""
        self.high = high
        self._gaps.clear()

    @property
    def gaps(self) -> list[tuple[int, int]]:
        """The holes still re-read, as ``(first, last)`` id ranges."""
        return [(first, last) for first, last, _ in self._gaps]

    def condition(self, column: str) -> tuple[str, list[int]]:
        """``(sql, params)`` matching ids not taken in yet: above the newest, or in a recent hole."""
        now = self._clock()
        self._gaps = [gap for gap in self._gaps if now - gap[2] <= self._horizon]
        sql = f"{column} > ?"
        params = [self.high]
        for first, last, _ in self._gaps:
            sql += f" OR {column} BETWEEN ? AND ?"
            params += [first, last]
        return f"({sql})", params

    def take(self, seq: int) -> bool:
        """Note that ``seq`` was read; True when it is new (not taken in before)."""
        if seq > self.high:
            if seq > self.high + 1:
                self._gaps.append((self.high + 1, seq - 1, self._clock()))
                if len(self._gaps) > self._max_gaps:
                    del self._gaps[0]
            self.high = seq
            return True
        for index, (first, last, noticed) in enumerate(self._gaps):
            if first <= seq <= last:
                # A late commit: split the hole around it.
                parts = [(a, b, noticed) for a, b in ((first, seq - 1), (seq + 1, last)) if a <= b]
                self._gaps[index : index + 1] = parts
                return True
        return False
