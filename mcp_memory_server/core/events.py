"""Event memory: a structured log of events and tool results, with a hot window in memory.

The newest events (``hot_window``) answer ``recent`` and ``last_by_name`` without a
query. The window follows other processes' commits: the engine's data version tells when
anyone else wrote, and the window then loads what it has not seen: rows above the newest
``seq`` it holds, and rows in the holes below it that a transaction still in flight may
fill (:class:`~mcp_memory_server.storage.catchup.IdFollower`), so a lower ``seq`` that
commits after a higher one is not missed.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from ..config import Config
from ..errors import InvalidInput
from ..ids import new_ids, parse_timestamp, utc_now
from ..models import Event, EventHit, EventPage, EventSearchPage, ForgetReport, LastValue, Value
from ..storage.catchup import IdFollower
from ..storage.engine import Connection, Dialect, Row
from . import _validate as check
from ._context import StoreContext
from .search import SOURCES, ProgressFn, SearchIndex, SourceFilter

__all__ = ["EventLog"]

_HIT_TEXT_CHARS = 240
"""How much of a non-event hit's text a search answer carries: enough to recognise it, cheap per hit."""


def _sources(sources: Sequence[str] | None) -> tuple[str, ...]:
    """The sources a search ranks, checked (default: events)."""
    if sources is None:
        return ("events",)
    if isinstance(sources, str) or not isinstance(sources, Sequence) or not sources:
        raise InvalidInput(f"sources must be a non-empty list of: {', '.join(SOURCES)}")
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise InvalidInput(f"unknown source(s) {unknown}; sources are: {', '.join(SOURCES)}")
    return tuple(dict.fromkeys(sources))


_VALUE_KINDS = ("number", "string", "boolean", "object", "array", "null", "uri", "ref")
_EVENT_FIELDS = frozenset({"kind", "data", "text", "topic", "tool", "tags", "metrics", "inputs", "outputs",
                           "severity", "graph_id", "node_id"})  # fmt: skip
_COLUMNS = (
    "seq, event_id, ts, kind, topic, tool, text, data, tags, metrics, inputs, outputs, severity,"
    " run_id, graph_id, node_id"
)
_COLUMN_NAMES = tuple(name.strip() for name in _COLUMNS.split(","))


@dataclass(frozen=True, slots=True)
class _Filter:
    kinds: frozenset[str] | None
    tags: tuple[str, ...]
    tool: str | None
    topic: str | None
    since: str | None
    until: str | None
    run_id: str | None
    graph_id: str | None
    node_id: str | None

    def matches(self, event: Event) -> bool:
        return (
            (self.kinds is None or event.kind in self.kinds)
            and all(tag in event.tags for tag in self.tags)
            and (self.tool is None or event.tool == self.tool)
            and (self.topic is None or event.topic == self.topic)
            and (self.since is None or event.ts >= self.since)
            and (self.until is None or event.ts < self.until)
            and (self.run_id is None or event.run_id == self.run_id)
            and (self.graph_id is None or event.graph_id == self.graph_id)
            and (self.node_id is None or event.node_id == self.node_id)
        )

    def sql(self, dialect: Dialect) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.kinds is not None:
            clauses.append(f"kind IN ({','.join('?' * len(self.kinds))})")
            params += sorted(self.kinds)
        for tag in self.tags:
            sql, args = dialect.json_array_contains("events.tags", tag)
            clauses.append(sql)
            params += args
        for column in ("tool", "topic", "run_id", "graph_id", "node_id"):
            value = getattr(self, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.since is not None:
            clauses.append("ts >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("ts < ?")
            params.append(self.until)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


class _HotWindow:
    """The newest events and latest named values, kept in step with the database."""

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx
        self._size = ctx.config.hot_window
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._version = -1
        self._epoch = -1
        self._seen = IdFollower()
        self._events: deque[tuple[int, Event]] = deque(maxlen=self._size)
        self.complete = True  # the window holds every stored event

    def _watch(self) -> Connection:
        if self._conn is None:
            self._conn = self._ctx.db.watcher()
        return self._conn

    def sync(self) -> None:
        """Load whatever other connections committed since the last look."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    self._catch_up()
                    return
                except BaseException as exc:
                    # A failed look (a dropped connection, a restarted server, a connection the
                    # store's close() closed): a fresh connection and a full reload, since what
                    # changed meanwhile is unknown; once at once, then the caller's. The fresh one
                    # of a closed store raises "the store is closed".
                    if self._conn is not None:
                        with suppress(Exception):
                            self._conn.close()
                    self._conn = None
                    self._version = self._epoch = -1
                    if attempt == 2 or not isinstance(exc, Exception):
                        raise

    def _catch_up(self) -> None:
        conn = self._watch()
        version = self._ctx.db.data_version(conn)
        if version == self._version:
            return
        epoch = conn.execute("SELECT value FROM event_log_state WHERE key = 'forget_epoch'").fetchone()[0]
        if epoch != self._epoch:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM events ORDER BY seq DESC LIMIT ?", (self._size + 1,)
            ).fetchall()
            rows.reverse()
            self._events.clear()
            self.complete = len(rows) <= self._size
            # Holes between the loaded rows may still fill; below them lies what the window never held.
            self._seen.reset(0 if self.complete else rows[0]["seq"] - 1)
            self._epoch = epoch
        else:
            where, params = self._seen.condition("seq")
            rows = conn.execute(f"SELECT {_COLUMNS} FROM events WHERE {where} ORDER BY seq", params).fetchall()
        self._append_rows(rows)
        self._version = version

    def _append_rows(self, rows: Iterable[Row]) -> None:
        events = self._events
        for row in rows:
            seq = row["seq"]
            if not self._seen.take(seq):
                continue
            if not events or seq > events[-1][0]:
                if len(events) == self._size:
                    self.complete = False
                events.append((seq, _event(row)))
                continue
            # A lower id committed after a higher one: it goes where its id puts it.
            at = len(events)
            while at and events[at - 1][0] > seq:
                at -= 1
            if len(events) == self._size:
                self.complete = False
                if at == 0:
                    continue  # older than everything held: the database answers for it
                events.popleft()
                at -= 1
            events.insert(at, (seq, _event(row)))

    def recent(self, flt: _Filter, limit: int) -> list[Event] | None:
        """The newest ``limit`` matches, oldest first, or None when the window cannot tell."""
        self.sync()
        with self._lock:
            found: list[Event] = []
            for _, event in reversed(self._events):
                if flt.matches(event):
                    found.append(event)
                    if len(found) == limit:
                        break
            if len(found) < limit and not self.complete:
                return None
        found.reverse()
        return found

    def last_value(self, name: str, tool: str | None) -> LastValue | bool | None:
        """The newest value named ``name``; ``False`` when it may be older than the window."""
        self.sync()
        with self._lock:
            for _, event in reversed(self._events):
                if tool is not None and event.tool != tool:
                    continue
                for value in reversed(event.outputs):
                    if value.name == name:
                        return LastValue(
                            name=name,
                            value=value.value,
                            kind=value.kind or _kind_of(value.value),
                            ts=event.ts,
                            event_id=event.event_id,
                            tool=event.tool,
                        )
            return None if self.complete else False


class EventLog:
    """The event log of one data directory. Get it as ``MemoryStore.events``."""

    def __init__(self, ctx: StoreContext, *, search: SearchIndex | None = None) -> None:
        self._ctx = ctx
        self._db = ctx.db
        self._config = ctx.config
        self._window = _HotWindow(ctx)
        self._search = search

    # -- writing ---------------------------------------------------------------------------------

    def record(
        self,
        kind: str,
        data: Any = None,
        text: str | None = None,
        *,
        topic: str | None = None,
        tool: str | None = None,
        tags: Sequence[str] | None = None,
        metrics: Mapping[str, float] | None = None,
        inputs: Sequence[Mapping[str, Any] | Value] | None = None,
        outputs: Sequence[Mapping[str, Any] | Value] | None = None,
        severity: int = 2,
        graph_id: str | None = None,
        node_id: str | None = None,
    ) -> Event:
        """Append one event. ``text`` defaults to the JSON of ``data``; ``data`` is kept as given.

        Raises:
            InvalidInput / LimitExceeded: a field has the wrong type or size.
        """
        return self.record_many(
            [
                {
                    "kind": kind, "data": data, "text": text, "topic": topic, "tool": tool, "tags": tags,
                    "metrics": metrics, "inputs": inputs, "outputs": outputs, "severity": severity,
                    "graph_id": graph_id, "node_id": node_id,
                }
            ]
        )[0]  # fmt: skip

    def record_tool_result(
        self,
        tool: str,
        inputs: Sequence[Mapping[str, Any] | Value] | None = None,
        outputs: Sequence[Mapping[str, Any] | Value] | None = None,
        message: str | None = None,
        *,
        tags: Sequence[str] | None = None,
        metrics: Mapping[str, float] | None = None,
        topic: str | None = None,
        severity: int = 2,
    ) -> Event:
        """Record a ``tool_result`` event; each named output becomes the latest value of that name."""
        check.short(tool, field="tool", max_chars=256)
        return self.record(
            "tool_result",
            text=message,
            topic=topic,
            tool=tool,
            tags=tags,
            metrics=metrics,
            inputs=inputs,
            outputs=outputs,
            severity=severity,
        )

    def record_many(self, items: Sequence[Mapping[str, Any]]) -> list[Event]:
        """Append many events in one transaction (each item has ``record``'s arguments).

        All or nothing: one invalid item refuses the whole batch (naming its index) and writes nothing.
        """
        if isinstance(items, str | bytes) or not isinstance(items, Sequence):
            raise InvalidInput("items must be a list of event objects")
        if not items:
            return []
        # One pass in Python checks each item and makes its row; the database then gets one
        # bulk insert per table. Nothing is written until every item has passed.
        ids = new_ids("evt", len(items))
        tags_seen: dict[tuple[str, ...], tuple[list[str], str]] = {}
        events: list[Event] = []
        rows: list[tuple[Any, ...]] = []
        values: list[tuple[int, str, str, str | None, str, str | None, str]] = []
        for index, item in enumerate(items):
            event, row = self._build(item, index, ids[index], tags_seen)
            events.append(event)
            rows.append(row)
            if event.outputs:
                # An output's name holds its last value in that event (as the hot window reads it), so
                # one row per name keeps "the latest" well defined by seq alone, on every engine.
                for value in {value.name: value for value in event.outputs}.values():
                    values.append((index, event.event_id, value.name, value.kind, check.canonical_json(value.value),
                                   event.tool, event.ts))  # fmt: skip
        insert_rows = self._db.dialect.insert_rows
        with self._db.write() as conn:
            first = self._db.reserve_ids(conn, "events", len(rows))
            insert_rows(conn, "events", _COLUMN_NAMES, [(first + i, *row) for i, row in enumerate(rows)])
            if values:
                insert_rows(conn, "event_values", ("seq", "event_id", "name", "kind", "value", "tool", "ts"),
                            [(first + v[0], *v[1:]) for v in values])  # fmt: skip
        return events

    def _build(
        self,
        item: Mapping[str, Any],
        index: int,
        event_id: str,
        tags_seen: dict[tuple[str, ...], tuple[list[str], str]],
    ) -> tuple[Event, tuple[Any, ...]]:
        """One item's checks, in the order of its fields, and its event and row (without ``seq``)."""
        if type(item) is not dict and not isinstance(item, Mapping):  # the ABC check is slow on this hot path
            raise InvalidInput(f"event #{index} must be an object")
        config = self._config
        unknown = item.keys() - _EVENT_FIELDS
        if unknown:
            raise InvalidInput(f"event #{index} has unknown field(s) {sorted(unknown)}")
        get = item.get
        kind = get("kind")
        if not isinstance(kind, str) or not kind.strip():
            raise InvalidInput("kind must be a non-empty string, e.g. 'note', 'decision', 'observation'")
        check.short(kind, field="kind", max_chars=128)
        data = get("data")
        data_json = None if data is None else check.json_value(data, field="data", config=config)
        text = get("text")
        if text is None:
            text = data_json
        else:
            check.text(text, field="text", config=config)
        severity = get("severity", 2)
        if isinstance(severity, bool) or severity not in (1, 2, 3):
            raise InvalidInput(f"severity must be 1, 2 or 3, got {severity!r}")
        topic, tool, graph_id, node_id = get("topic"), get("tool"), get("graph_id"), get("node_id")
        short = check.short
        if topic is not None:
            short(topic, field="topic", max_chars=256)
        if tool is not None:
            short(tool, field="tool", max_chars=256)
        if graph_id is not None:
            short(graph_id, field="graph_id", max_chars=256)
        if node_id is not None:
            short(node_id, field="node_id", max_chars=256)
        tags, tags_json = _tags(get("tags"), config, tags_seen)
        metrics = check.metrics(get("metrics"), config=config)
        inputs = _values(get("inputs"), "inputs", config=self._ctx)
        outputs = _values(get("outputs"), "outputs", config=self._ctx)
        ts = utc_now()
        run_id = self._ctx.run_id
        # pydantic's own validation (in Rust) is cheaper than model_construct's Python loop here,
        # and gives the caller the same values a read returns (metrics as floats).
        event = Event(
            event_id=event_id, ts=ts, kind=kind, topic=topic, tool=tool, text=text, data=data, tags=tags,
            metrics=metrics, inputs=inputs, outputs=outputs, severity=severity, run_id=run_id,
            graph_id=graph_id, node_id=node_id,
        )  # fmt: skip
        # Most events have no metrics, inputs or outputs; their JSON is a constant.
        row = (
            event_id, ts, kind, topic, tool, text, data_json, tags_json,
            check.canonical_json(metrics) if metrics else "{}",
            check.canonical_json([v.model_dump() for v in inputs]) if inputs else "[]",
            check.canonical_json([v.model_dump() for v in outputs]) if outputs else "[]",
            severity, run_id, graph_id, node_id,
        )  # fmt: skip
        return event, row

    # -- reading ---------------------------------------------------------------------------------

    def _filter(
        self,
        *,
        kinds: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        tool: str | None = None,
        topic: str | None = None,
        since: str | None = None,
        until: str | None = None,
        scope: str = "all",
        graph_id: str | None = None,
        node_id: str | None = None,
    ) -> _Filter:
        if kinds is not None and (isinstance(kinds, str) or not isinstance(kinds, Sequence)):
            raise InvalidInput("kinds must be a list of strings")
        if scope not in ("all", "run", "graph", "node"):
            raise InvalidInput(f"scope={scope!r} is not valid; use all, run, graph or node")
        if scope == "graph" and not graph_id:
            raise InvalidInput("scope='graph' needs graph_id")
        if scope == "node" and not node_id:
            raise InvalidInput("scope='node' needs node_id")
        return _Filter(
            kinds=frozenset(check.short(k, field="kinds entry", max_chars=128) for k in kinds) if kinds else None,
            tags=tuple(check.tags(tags, config=self._config)),
            tool=check.short(tool, field="tool", max_chars=256) if tool else None,
            topic=check.short(topic, field="topic", max_chars=256) if topic else None,
            since=parse_timestamp(since, field="since") if since else None,
            until=parse_timestamp(until, field="until") if until else None,
            run_id=self._ctx.run_id if scope == "run" else None,
            graph_id=graph_id if scope == "graph" else None,
            node_id=node_id if scope == "node" else None,
        )

    def recent(self, *, limit: int = 50, **filters: Any) -> list[Event]:
        """The newest ``limit`` events matching every filter, returned oldest → newest.

        Filters: kinds, tags, tool, topic, since, until, scope (all|run|graph|node), graph_id, node_id.
        """
        limit = check.limit(limit, config=self._config)
        flt = self._filter(**filters)
        hot = self._window.recent(flt, limit)
        if hot is not None:
            return hot
        where, params = flt.sql(self._db.dialect)
        rows = self._db.query(f"SELECT {_COLUMNS} FROM events{where} ORDER BY seq DESC LIMIT ?", (*params, limit))
        return [_event(row) for row in reversed(rows)]

    def recent_data(self, *, limit: int = 50, **filters: Any) -> list[Any]:
        """The decoded payloads of :meth:`recent`: ``data``, else ``text`` parsed as JSON, else raw text."""
        return [decoded_data(event) for event in self.recent(limit=limit, **filters)]

    def recent_tool_results(self, tool: str, limit: int = 50) -> list[Event]:
        """The newest results of one tool, oldest → newest."""
        return self.recent(kinds=["tool_result"], tool=tool, limit=limit)

    def last_by_name(self, name: str, tool: str | None = None) -> LastValue | None:
        """The latest output value with this name (optionally of one tool), or None."""
        check.short(name, field="name", max_chars=256)
        hot = self._window.last_value(name, tool)
        if hot is not False:
            return hot  # type: ignore[return-value]
        sql = "SELECT name, kind, value, ts, event_id, tool FROM event_values WHERE name = ?"
        params: list[Any] = [name]
        if tool is not None:
            sql += " AND tool = ?"
            params.append(tool)
        rows = self._db.query(sql + " ORDER BY seq DESC LIMIT 1", params)
        if not rows:
            return None
        row = rows[0]
        return LastValue(name=row["name"], value=json.loads(row["value"]), kind=row["kind"], ts=row["ts"],
                         event_id=row["event_id"], tool=row["tool"])  # fmt: skip

    def page(self, **kwargs: Any) -> EventPage:
        """:meth:`recent` wrapped for the tool layer (``data_only`` adds decoded payloads only)."""
        data_only = kwargs.pop("data_only", False)
        events = self._bounded(self.recent(**kwargs))
        if data_only:
            return EventPage(data=[decoded_data(e) for e in events], count=len(events))
        return EventPage(events=events, count=len(events))

    def _bounded(self, events: list[Event]) -> list[Event]:
        """Cut long text/data so the page stays under ``max_response_bytes``."""
        budget = self._config.max_response_bytes
        sizes = [len(e.text or "") + (len(json.dumps(e.data)) if e.data is not None else 0) for e in events]
        if sum(sizes) <= budget:
            return events
        share = max(256, budget // max(1, len(events)) // 2)
        out = []
        for event, size in zip(events, sizes, strict=True):
            if size <= share:
                out.append(event)
                continue
            text = event.text or ""
            marker = f"… [truncated: {len(text)} characters in all; fetch fewer events (limit) to see more]"
            out.append(event.model_copy(update={"text": text[:share] + marker, "data": None, "truncated": True}))
        return out

    def search(
        self,
        query: str,
        *,
        mode: str = "hybrid",
        limit: int = 10,
        cursor: str | None = None,
        sources: Sequence[str] | None = None,
        progress: ProgressFn | None = None,
        **filters: Any,
    ) -> EventSearchPage:
        """The events (or, with ``sources``, records of any group) most relevant to ``query``, best first.

        ``mode``: ``hybrid`` (words and meaning, the default), ``semantic`` or ``lexical``.
        Filters as in :meth:`recent`. Without a loadable model the results are lexical and
        ``warning`` says why. ``sources`` (default ``["events"]``) ranks several groups
        together (``events``, ``artifacts``, ``files``, ``graph``, ``lab``); each hit then
        names its ``source``, and a hit that is not an event carries the record's ``id`` and
        the start of its ``text``.

        Raises:
            InvalidInput: empty query, unknown mode or source, a bad filter, or a filter with
                sources other than events (filters narrow events only).
        """
        if self._search is None:
            raise InvalidInput("this event log was opened without a search index; use MemoryStore.events")
        wanted = _sources(sources)
        where, params = self._filter(**filters).sql(self._db.dialect)
        if where and wanted != ("events",):
            raise InvalidInput(
                "kinds, tags, tool, topic, since, until and scope narrow events only;"
                " leave them out to search other sources, or search events alone"
            )
        events_filter = SourceFilter("events", "events.event_id = d.item_id", where.removeprefix(" WHERE "), params)
        ranking = self._search.rank_sources(
            {source: events_filter if source == "events" else None for source in wanted}, query, mode=mode,
            limit=limit, offset=check.decode_cursor(cursor) or 0, progress=progress,
        )  # fmt: skip
        labelled = sources is not None
        ids = [r.item_id for r in ranking.items if r.source == "events"]
        rows = (  # PostgreSQL refuses an empty IN ()
            self._db.query(f"SELECT {_COLUMNS} FROM events WHERE event_id IN ({','.join('?' * len(ids))})", ids)
            if ids
            else []
        )
        found = {row["event_id"]: _event(row) for row in rows}
        bounded = dict(zip(found, self._bounded(list(found.values())), strict=True))
        texts = self._search.texts([r for r in ranking.items if r.source != "events"], _HIT_TEXT_CHARS)
        hits = []
        for r in ranking.items:
            event, item_id, text = bounded.get(r.item_id) if r.source == "events" else None, None, None
            if event is None:
                text = texts.get((r.source, r.item_id))
                if text is None:
                    continue  # deleted since the ranking
                item_id = r.item_id
            hits.append(EventHit(source=r.source if labelled else None, event=event, id=item_id, text=text,
                                 score=r.score, similarity=r.similarity, lexical_rank=r.lexical_rank,
                                 semantic_rank=r.semantic_rank))  # fmt: skip
        next_cursor = None if ranking.next_offset is None else check.encode_cursor(ranking.next_offset)
        return EventSearchPage(hits=hits, mode=ranking.mode, warning=ranking.warning, next_cursor=next_cursor)

    def get(self, event_id: str) -> Event | None:
        rows = self._db.query(f"SELECT {_COLUMNS} FROM events WHERE event_id = ?", (event_id,))
        return _event(rows[0]) if rows else None

    # -- forgetting ------------------------------------------------------------------------------

    def forget(
        self,
        *,
        before: str | None = None,
        kinds: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        dry_run: bool = True,
    ) -> ForgetReport:
        """Delete events matching every filter (``dry_run`` only counts them).

        Raises:
            InvalidInput: no filter was given (to forget everything, pass ``before`` = now).
        """
        if not (before or kinds or tags):
            raise InvalidInput("give before, kinds or tags; to forget everything pass before=<now>")
        # Parsed here so that a bad value is named as the caller's parameter, not the filter's.
        cutoff = parse_timestamp(before, field="before") if before else None
        flt = self._filter(kinds=kinds, tags=tags, until=cutoff)
        where, params = flt.sql(self._db.dialect)
        with self._db.write() as conn:
            ids = [r[0] for r in conn.execute(f"SELECT event_id FROM events{where} ORDER BY seq", params)]
            deleted = 0
            if not dry_run and ids:
                deleted = conn.execute(f"DELETE FROM events{where}", params).rowcount
                conn.execute("UPDATE event_log_state SET value = value + 1 WHERE key = 'forget_epoch'")
        return ForgetReport(dry_run=dry_run, matched=len(ids), deleted=deleted, event_ids=ids[:100])

    def count(self) -> int:
        return int(self._db.query("SELECT COUNT(*) FROM events")[0][0])


def decoded_data(event: Event) -> Any:
    if event.data is not None:
        return event.data
    if event.text is None:
        return None
    try:
        return json.loads(event.text)
    except ValueError:
        return event.text


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "uri" if value.startswith(("cas://", "artifact://", "memfile://", "http://", "https://")) else "string"
    return "array" if isinstance(value, list) else "object"


def _values(items: Any, field: str, *, config: StoreContext) -> list[Value]:
    if items is None:
        return []
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise InvalidInput(f"{field} must be a list of {{name, value, kind?}} objects")
    if len(items) > config.config.max_labels:
        raise InvalidInput(f"{field} has {len(items)} entries, over the limit of {config.config.max_labels}")
    out = []
    for index, item in enumerate(items):
        raw = item.model_dump() if isinstance(item, Value) else item
        if not isinstance(raw, Mapping) or "name" not in raw:
            raise InvalidInput(f"{field}[{index}] must be an object with a name and a value")
        name = check.short(raw["name"], field=f"{field}[{index}].name", max_chars=256)
        value = raw.get("value")
        check.json_value(value, field=f"{field}[{index}].value", config=config.config)
        kind = raw.get("kind") or _kind_of(value)
        if kind not in _VALUE_KINDS:
            raise InvalidInput(f"{field}[{index}].kind={kind!r} is not valid; use one of {', '.join(_VALUE_KINDS)}")
        out.append(Value.model_validate({"name": name, "kind": kind, "value": value}))
    return out


def _tags(value: Any, config: Config, seen: dict[tuple[str, ...], tuple[list[str], str]]) -> tuple[list[str], str]:
    """``check.tags`` and its JSON, once per distinct list in a batch (a bulk load repeats the same few)."""
    if value is None:
        return [], "[]"
    key = tuple(value) if type(value) is list and all(type(tag) is str for tag in value) else None
    if key is not None and key in seen:
        return seen[key]
    tags = check.tags(value, config=config)
    found = (tags, check.canonical_json(tags) if tags else "[]")
    if key is not None:
        seen[key] = found
    return found


def _event(row: Row) -> Event:
    return Event(
        event_id=row["event_id"],
        ts=row["ts"],
        kind=row["kind"],
        topic=row["topic"],
        tool=row["tool"],
        text=row["text"],
        data=None if row["data"] is None else json.loads(row["data"]),
        tags=json.loads(row["tags"]),
        metrics=json.loads(row["metrics"]),
        inputs=[Value(**v) for v in json.loads(row["inputs"])],
        outputs=[Value(**v) for v in json.loads(row["outputs"])],
        severity=row["severity"],
        run_id=row["run_id"],
        graph_id=row["graph_id"],
        node_id=row["node_id"],
    )
