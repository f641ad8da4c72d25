"""Path-addressed memory files: text and JSON documents with versions, an audit log and compare-and-swap.

The database is the source of truth: every version is a row in ``file_versions`` (the
history and the append-only audit log in one) whose content is a blob, so identical
contents are stored once. ``files`` holds each path's latest state.

The live files under ``<data_dir>/files/<namespace>/`` are a projection people can open
in any editor. A write commits first and then updates the live file while holding the
write lock, so the disk never goes back to an older version. ``files.projected_sha``
records what this server last put on disk: where it differs from ``sha256`` an update is
pending (the writer was killed between the commit and the rename) and the next open or
read repairs it; where the disk holds something else, the file was edited outside the
server and that content is recorded as an ``external_edit`` version.

Two settings switch parts of this off, as Flyte ``MemoryStore``'s ``audit`` and
``keep_versions`` do (both on by default here; Flyte keeps no versions by default, but
this store always has, and its default stays):

- ``keep_versions=False``: only the current version's content is kept. A version written
  so keeps its row (number, op, sha256, time and, when audited, actor and reason), but
  once a newer version or a deletion replaces it no record references its blob, so
  ``gc`` frees it, and reading or restoring it is refused with a message naming the
  setting. Flyte's flag decides whether a write leaves a snapshot; the same holds here:
  versions written with ``keep_versions=True`` keep their content whatever comes after.
  CAS needs only the current sha256 (``files.sha256``), so ``expected_sha`` works as ever.
- ``audit=False``: writes leave no audit entry. Their version rows carry no actor or
  reason and are not in ``audit_tail`` (which, for a store only ever written this way,
  is empty, as Flyte's is). The file's current metadata (``updated_by``, ``reason``, what
  ``get_meta`` returns) is still recorded, as Flyte's metadata sidecar is.
- Both off: a replaced version is deleted outright, so nothing of the past is kept; the
  current version's row remains (it carries the version number and the content's reference).

The settings belong to the process that opened the store (``Config``), not to the store:
each write follows the settings of the process that makes it and records them on its
row, so several processes with different settings can share one store. A process with
``keep_versions=False`` never drops what another process chose to keep, and one with
``audit=True`` cannot bring back what was written unaudited. Exports carry the rows'
settings, so an import restores them as they were.
"""

from __future__ import annotations

import json as jsonlib
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from ..config import Config
from ..errors import Conflict, InvalidInput, LimitExceeded, MemoryServerError, NotFound
from ..ids import parse_timestamp, utc_now
from ..models import FileArchiveReport, FileAuditEntry, FileContent, FileHistory, FileList, FileMeta, FileVersion
from ..storage.blobs import PendingBlobs, check_digest
from ..storage.engine import Connection, Row
from ..storage.staging import StagingLedger
from . import _validate as check
from ._context import StoreContext
from ._file_archive import ArchiveSource, open_sink, open_source, read_lines, read_member
from ._files_flyte import FlyteFileNames
from ._paths import LiveTree, ReadOnlyPrefixes, Staged, StatKey, normalize_namespace, normalize_path, sha256_hex
from .local_paths import LocalAccess
from .search import FILES_JOIN, SearchIndex, SourceFilter
from .search import ProgressFn as SearchProgressFn

__all__ = ["BLOB_REFERENCES", "DEFAULT_NAMESPACE", "Files", "Transcript"]

logger = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "default"
EXTERNAL_ACTOR = "external"
ARCHIVE_FORMAT = "mcp-memory-server/files"
ARCHIVE_VERSION = 1


BLOB_REFERENCES = (
    "SELECT sha256 FROM file_versions AS v WHERE sha256 IS NOT NULL AND (keep_content = 1 OR EXISTS"
    " (SELECT 1 FROM files AS f WHERE f.namespace = v.namespace AND f.path = v.path AND f.version = v.version))"
)
"""SQL listing every blob digest file versions need (used by gc): kept versions and each path's current one."""

_OPS = ("create", "update", "delete", "restore", "external_edit")
# One versions.jsonl record: a path of at most 1 KiB, a reason of 2000 characters, JSON escapes.
_MAX_VERSION_LINE = 64 << 10
_MAX_JSONL_BYTES = 1 << 34  # streamed, so this bounds the time an import takes, not its memory
_MISSING: Any = object()
# Optional keys of a versions.jsonl record, with the value an older export (which lacks them) means.
_VERSION_FLAGS = {"keep_content": True, "audited": True, "follows_dropped": False}


class Files(FlyteFileNames):
    """The memory files of one data directory. Get it as ``MemoryStore.files``.

    Every method takes ``namespace`` (default ``"default"``). Opening repairs live files
    left behind by a killed writer. Flyte's names (``write_text``, ``read_text``,
    ``current_sha``, ``append``/``flush_messages`` …) work too, and so do its ``audit``
    and ``keep_versions`` settings (``MemoryStore.open(path, audit=False)``; see the module docstring).
    """

    def __init__(self, ctx: StoreContext, *, search: SearchIndex | None = None) -> None:
        self._ctx = ctx
        self._db = ctx.db
        self._blobs = ctx.blobs
        self._config = ctx.config
        self._audit = ctx.config.audit
        self._keep_versions = ctx.config.keep_versions
        self._search = search
        self._tree = LiveTree(ctx.data_dir / "files", durable=ctx.config.sync == "full")
        self._read_only = ReadOnlyPrefixes.parse(ctx.config.read_only_prefixes, max_bytes=ctx.config.max_path_bytes)
        # (namespace, path) → the stat key and sha of the live file when this process last checked it.
        self._seen: dict[tuple[str, str], tuple[StatKey, str | None]] = {}
        self._transcripts: dict[str, Transcript] = {}
        self._transcripts_lock = threading.Lock()
        self._tree.remove_stale_temps()
        self.repair()

    @property
    def root(self) -> Path:
        """The folder holding the live files, one sub-folder per namespace."""
        return self._tree.root

    # -- writing ---------------------------------------------------------------------------------

    def write(
        self,
        path: str,
        content: str | None = None,
        *,
        json: Any = _MISSING,
        expected_sha: str | None = None,
        actor: str = "agent",
        reason: str = "",
        namespace: str = DEFAULT_NAMESPACE,
    ) -> FileMeta:
        """Write text (``content``) or a JSON value (``json=``) to ``path`` as a new version.

        ``expected_sha``: ``None`` writes unconditionally, ``""`` only creates (fails if the
        path exists), a digest writes only if it is the current content's sha256. Writing
        the current content again changes nothing and returns the current version.

        Raises:
            Conflict: ``expected_sha`` does not match (the message names the current sha), or
                the path collides with a folder or a file in the way.
            AccessDenied: the path is under a read-only prefix or a symlink leads outside.
            InvalidInput / LimitExceeded: a bad path, content or argument.
        """
        ns, rel = self._address(namespace, path)
        self._read_only.check(ns, rel, action="write")
        data = self._encode(content, json)
        return self._put(ns, rel, data, expected_sha, actor, reason, op=None)

    def restore(
        self,
        path: str,
        version: int,
        *,
        expected_sha: str | None = None,
        actor: str = "agent",
        reason: str = "",
        namespace: str = DEFAULT_NAMESPACE,
    ) -> FileMeta:
        """Write an old version's content back as a new version (op ``restore``).

        Raises:
            NotFound: no such version. InvalidInput: the version is a deletion.
            Conflict / AccessDenied: as for :meth:`write`.
        """
        ns, rel = self._address(namespace, path)
        self._read_only.check(ns, rel, action="restore")
        old = self._version_row(ns, rel, version, content=True)
        if old["sha256"] is None:
            raise InvalidInput(f"version {version} of {rel!r} is its deletion; restore version {version - 1}")
        return self._put(ns, rel, self._blobs.read(old["sha256"]), expected_sha, actor, reason, op="restore")

    def delete(
        self,
        path: str,
        *,
        expected_sha: str | None = None,
        actor: str = "agent",
        reason: str = "",
        namespace: str = DEFAULT_NAMESPACE,
    ) -> FileAuditEntry:
        """Delete ``path``; its history is kept and the deletion is a version of its own.

        Raises:
            NotFound: the path does not exist. Conflict: ``expected_sha`` does not match.
            AccessDenied: the path is under a read-only prefix.
        """
        ns, rel = self._address(namespace, path)
        self._read_only.check(ns, rel, action="delete")
        if expected_sha == "":
            raise InvalidInput("expected_sha='' means 'create only' and cannot delete; pass the current sha or null")
        self._put(ns, rel, None, expected_sha, actor, reason, op="delete")
        rows = self._db.query(
            "SELECT * FROM file_versions WHERE namespace = ? AND path = ? AND op = 'delete'"
            " ORDER BY version DESC LIMIT 1",
            (ns, rel),
        )
        return _audit_entry(rows[0])

    def _put(
        self,
        ns: str,
        rel: str,
        data: bytes | None,
        expected_sha: str | None,
        actor: str,
        reason: str,
        *,
        op: Literal["restore", "delete"] | None,
    ) -> FileMeta:
        expected = _expected(expected_sha)
        actor = _actor(actor)
        reason = check.short(reason, field="reason", max_chars=2000)
        self._tree.check(ns, rel)  # refuse a symlink on the way before anything is committed
        # An edit made on disk becomes a version first, so the write cannot silently drop it.
        self._synced_row(ns, rel, strict=False)
        with self._blobs.pending() as pending:
            new_sha = pending.put_bytes(data).sha256 if data is not None else None
            with self._db.write() as conn:
                row = _row(conn, ns, rel)
                current = row["sha256"] if row else None
                _check_expected(ns, rel, current, expected)
                if data is None and current is None:
                    raise NotFound(_missing_message(ns, rel, row))
                if row is not None and data is not None and current == new_sha:
                    return _meta(row)
                if current is None:
                    _check_tree(conn, ns, rel)
                kind = op or ("create" if current is None else "update")
                if new_sha is not None:
                    pending.confirm(conn, [new_sha])  # gc may have removed a reused blob meanwhile
                row = self._append(conn, ns, rel, row, kind, new_sha, len(data or b""), actor, reason)
        self._project(ns, rel, new_sha, data)
        return _meta(row) if new_sha is not None else _deleted_meta(row)

    def _append(
        self,
        conn: Connection,
        ns: str,
        rel: str,
        row: Row | None,
        op: str,
        sha: str | None,
        size: int,
        actor: str,
        reason: str,
        *,
        ts: str | None = None,
        version: int | None = None,
        keep_content: bool | None = None,
        audited: bool | None = None,
    ) -> Row:
        """Append a version and move the path's latest state to it (inside a write transaction).

        ``keep_content``/``audited`` default to this process's settings (an import passes the archive's).
        """
        version = version or (row["version"] if row else 0) + 1
        keep_content = self._keep_versions if keep_content is None else keep_content
        audited = self._audit if audited is None else audited
        now = ts or utc_now()
        conn.execute(
            "INSERT INTO file_versions (namespace, path, version, op, sha256, old_sha, bytes, ts, actor, reason,"
            " keep_content, audited) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ns, rel, version, op, sha, row["sha256"] if row else None, size, now, actor if audited else "",
             reason if audited else "", int(keep_content), int(audited)),
        )  # fmt: skip
        if row is not None:
            # The version just replaced goes entirely when its writer kept neither its content nor its audit entry.
            conn.execute(
                "DELETE FROM file_versions WHERE namespace = ? AND path = ? AND version = ?"
                " AND keep_content = 0 AND audited = 0",
                (ns, rel, row["version"]),
            )
        conn.execute(
            "INSERT INTO files (namespace, path, sha256, bytes, version, updated_at, updated_by, reason)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (namespace, path) DO UPDATE SET sha256 = excluded.sha256, bytes = excluded.bytes,"
            " version = excluded.version, updated_at = excluded.updated_at, updated_by = excluded.updated_by,"
            " reason = excluded.reason",
            (ns, rel, sha, size, version, now, actor, reason),
        )
        new = _row(conn, ns, rel)
        assert new is not None
        return new

    # -- the live files --------------------------------------------------------------------------

    def _project(self, ns: str, rel: str, sha: str | None, data: bytes | None) -> None:
        """Bring the live file to ``sha`` unless a newer version has landed (its writer projects it).

        The version is committed already, so a failure here is logged, not raised: the
        update stays pending and the next open or read retries it.
        """
        try:
            staged = self._tree.stage(ns, data) if data is not None else None
        except MemoryServerError as exc:
            logger.warning("%s/%s is saved but its live file was not updated: %s", ns, rel, exc)
            return
        try:
            with self._db.write() as conn:
                row = _row(conn, ns, rel)
                if row is not None and row["sha256"] == sha:
                    self._install(conn, ns, rel, sha, staged)
        except MemoryServerError as exc:
            logger.warning("%s/%s is saved but its live file was not updated: %s", ns, rel, exc)
        finally:
            if staged is not None:
                staged.discard()

    def _install(self, conn: Connection, ns: str, rel: str, sha: str | None, staged: Staged | None) -> None:
        if sha is None:
            self._tree.remove(ns, rel)
            self._seen.pop((ns, rel), None)
        else:
            if staged is None:
                staged = self._tree.stage(ns, self._blobs.read(sha))
            try:
                self._seen[(ns, rel)] = (self._tree.install(ns, rel, staged), sha)
            finally:
                staged.discard()
        _set_projected(conn, ns, rel, sha)

    def _synced_row(self, ns: str, rel: str, *, strict: bool = True) -> Row | None:
        """The path's row after noticing edits made on disk and repairing a pending update.

        The common case (disk unchanged since this process last looked, nothing pending)
        costs one query and one ``stat``.
        """
        row = _first(self._db.query("SELECT * FROM files WHERE namespace = ? AND path = ?", (ns, rel)))
        latest = row["sha256"] if row else None
        if latest == (row["projected_sha"] if row else None):
            key = self._tree.stat_key(ns, rel)
            if key is None and latest is None:
                return row
            if key is not None and self._seen.get((ns, rel)) == (key, latest):
                return row
            found = self._tree.read(ns, rel, max_bytes=self._config.max_text_bytes) if key is not None else None
            if found is not None and sha256_hex(found[0]) == latest:
                self._seen[(ns, rel)] = (found[1], latest)
                return row
        with self._db.write() as conn:
            try:
                self._sync(conn, ns, rel)
            except (InvalidInput, Conflict) as exc:
                if strict:
                    raise
                logger.warning("ignoring the on-disk change to %s/%s: %s", ns, rel, exc)
            return _row(conn, ns, rel)

    def _sync(self, conn: Connection, ns: str, rel: str) -> None:
        """Reconcile the live file with the database (inside a write transaction)."""
        row = _row(conn, ns, rel)
        latest = row["sha256"] if row else None
        projected = row["projected_sha"] if row else None
        found = self._tree.read(ns, rel, max_bytes=self._config.max_text_bytes)
        if found is None:
            if latest is not None or projected is not None:
                # Never written (killed before the rename) or removed by hand: the database wins.
                self._install(conn, ns, rel, latest, None)
            return
        data, key = found
        disk_sha = sha256_hex(data)
        if disk_sha == latest:
            if projected != latest:
                _set_projected(conn, ns, rel, latest)
            self._seen[(ns, rel)] = (key, latest)
            return
        if disk_sha == projected or self._seen.get((ns, rel)) == (key, disk_sha):
            # The disk still shows what we last wrote: an update is pending, not an edit. The
            # second test is per process: on a shared database another host may have written
            # (and projected on its own disk) since this one projected the file it still holds.
            self._install(conn, ns, rel, latest, None)
            return
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(
                f"the live file for {ns}/{rel} was changed on disk and is not UTF-8 text; "
                "fix it on disk, or overwrite it with file_write"
            ) from None
        if latest is None:
            _check_tree(conn, ns, rel)
        with self._blobs.pending() as pending:  # already under the write lock: confirmed at once
            pending.put_bytes(data)
            pending.confirm(conn, [disk_sha])
        self._append(
            conn, ns, rel, row, "external_edit", disk_sha, len(data), EXTERNAL_ACTOR,
            "changed on disk outside the server",
        )  # fmt: skip
        _set_projected(conn, ns, rel, disk_sha)
        self._seen[(ns, rel)] = (key, disk_sha)

    def repair(self) -> int:
        """Finish live-file updates a killed writer left pending; return how many paths were repaired."""
        pending = self._db.query("SELECT namespace, path FROM files WHERE projected_sha IS DISTINCT FROM sha256")
        for item in pending:
            try:
                with self._db.write() as conn:
                    self._sync(conn, item["namespace"], item["path"])
            except MemoryServerError as exc:
                logger.warning("cannot repair the live file %s/%s: %s", item["namespace"], item["path"], exc)
        return len(pending)

    # -- reading ---------------------------------------------------------------------------------

    def read(
        self,
        path: str,
        version: int | None = None,
        *,
        default: Any = _MISSING,
        offset: int = 0,
        length: int | None = None,
        namespace: str = DEFAULT_NAMESPACE,
    ) -> FileContent | Any:
        """The content and metadata of ``path`` (its latest version, or ``version``).

        Reading the latest version first notices an edit made on disk (recorded as an
        ``external_edit`` version). ``offset``/``length`` read a byte range; the result's
        ``next_offset`` says where to continue.

        Raises:
            NotFound: no such path or version (unless ``default`` is given, which is returned instead).
        """
        ns, rel = self._address(namespace, path)
        if version is None:
            row = self._synced_row(ns, rel)
            if row is None or row["sha256"] is None:
                if default is not _MISSING:
                    return default
                raise NotFound(_missing_message(ns, rel, row))
            meta = _meta(row)
        else:
            try:
                found = self._version_row(ns, rel, version, content=True)
            except NotFound:
                if default is not _MISSING:
                    return default
                raise
            if found["sha256"] is None:
                if default is not _MISSING:
                    return default
                raise NotFound(f"version {version} of {rel!r} is its deletion; read version {version - 1}")
            meta = _version_meta(found)
        return self._content(meta, offset, length)

    def read_json(
        self,
        path: str,
        version: int | None = None,
        *,
        default: Any = _MISSING,
        namespace: str = DEFAULT_NAMESPACE,
    ) -> Any:
        """The parsed JSON content of ``path``; ``default`` (when given) for a missing or empty file.

        Raises:
            NotFound: no such path or version (unless ``default`` is given).
            InvalidInput: the content is not JSON.
        """
        content = self.read(path, version, default=_MISSING if default is _MISSING else None, namespace=namespace)
        if content is None or (default is not _MISSING and not content.content.strip()):
            return default
        try:
            return jsonlib.loads(content.content)
        except ValueError as exc:
            raise InvalidInput(f"{content.meta.path!r} is not JSON ({exc}); read it as text with read()") from None

    def _content(self, meta: FileMeta, offset: int, length: int | None) -> FileContent:
        if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= meta.bytes:
            raise InvalidInput(f"offset must be between 0 and {meta.bytes} (the size), got {offset!r}")
        if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 1):
            raise InvalidInput(f"length must be a positive integer, got {length!r}")
        raw = self._blobs.read(meta.sha256, offset, length)
        text, used = check.utf8_prefix(raw, final=offset + len(raw) >= meta.bytes)
        if text is None:
            raise InvalidInput(f"offset {offset} splits a UTF-8 character; continue from next_offset")
        end = offset + used
        return FileContent(
            meta=meta, content=text, offset=offset, length=used, total_bytes=meta.bytes,
            next_offset=end if end < meta.bytes else None,
        )  # fmt: skip

    def list(
        self,
        prefix: str = "",
        *,
        recursive: bool = True,
        limit: int | None = None,
        cursor: str | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        query: str | None = None,
        mode: str = "hybrid",
        progress: SearchProgressFn | None = None,
    ) -> FileList:
        """Live files whose path starts with ``prefix``, sorted by path.

        With ``recursive=False`` only the files directly under the prefix are listed, and
        the sub-folders there are named in ``folders``. ``limit``/``cursor`` page the result.
        With ``query`` the files under the prefix come most relevant first instead (content
        and path, matched by words and meaning; ``mode``: hybrid, semantic or lexical).
        """
        ns = normalize_namespace(namespace)
        prefix = self._prefix(prefix)
        if limit is not None:
            limit = check.limit(limit, config=self._config)
        if query is not None:
            return self._ranked(query, mode, ns, prefix, limit or 50, cursor, progress)
        after = _decode_path_cursor(cursor)
        clauses = ["namespace = ?", "sha256 IS NOT NULL"]
        params: list[Any] = [ns]
        if prefix:
            clauses.append("path >= ?")
            params.append(prefix)
            upper = _prefix_end(prefix)
            if upper is not None:
                clauses.append("path < ?")
                params.append(upper)
        where = " AND ".join(clauses)
        folders: list[str] = []
        if recursive:
            if after is not None:
                where += " AND path > ?"
                params.append(after)
            sql = f"SELECT * FROM files WHERE {where} ORDER BY path"
            rows = self._db.query(sql + (" LIMIT ?" if limit else ""), (*params, limit + 1) if limit else params)
        else:
            everything = self._db.query(f"SELECT * FROM files WHERE {where} ORDER BY path", params)
            rows = []
            for item in everything:
                rest = item["path"][len(prefix) :]
                if "/" in rest:
                    folder = prefix + rest.split("/", 1)[0] + "/"
                    if after is None and (not folders or folders[-1] != folder):
                        folders.append(folder)
                elif after is None or item["path"] > after:
                    rows.append(item)
            folders = folders[: self._config.max_page_size]
        next_cursor = None
        if limit and len(rows) > limit:
            rows = rows[:limit]
            next_cursor = _encode_path_cursor(rows[-1]["path"])
        return FileList(namespace=ns, items=[_meta(r) for r in rows], folders=folders, next_cursor=next_cursor)

    def _ranked(
        self, query: str, mode: str, ns: str, prefix: str, limit: int, cursor: str | None,
        progress: SearchProgressFn | None,
    ) -> FileList:  # fmt: skip
        if self._search is None:
            raise InvalidInput("these files were opened without a search index; use MemoryStore.files")
        where = "files.namespace = ? AND files.sha256 IS NOT NULL"
        params: list[Any] = [ns]
        if prefix:
            where += " AND files.path >= ?"
            params.append(prefix)
            upper = _prefix_end(prefix)
            if upper is not None:
                where += " AND files.path < ?"
                params.append(upper)
        ranking = self._search.rank(
            "files", query, mode=mode, limit=limit, offset=check.decode_cursor(cursor) or 0, progress=progress,
            filter=SourceFilter("files", FILES_JOIN, where, params),
        )  # fmt: skip
        found = {}
        for ranked in ranking.items:
            rows = self._db.query(
                "SELECT * FROM files WHERE namespace = ? AND path = ? AND sha256 IS NOT NULL",
                ranked.item_id.split("/", 1),
            )
            if rows:
                found[ranked.item_id] = _meta(rows[0])
        kept = [r for r in ranking.items if r.item_id in found]
        return FileList(
            namespace=ns, items=[found[r.item_id] for r in kept], scores=[r.score for r in kept], mode=ranking.mode,
            warning=ranking.warning,
            next_cursor=None if ranking.next_offset is None else check.encode_cursor(ranking.next_offset),
        )  # fmt: skip

    def history(
        self,
        path: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        namespace: str = DEFAULT_NAMESPACE,
    ) -> FileHistory:
        """Every version of ``path``, newest first (``limit``/``cursor`` page it).

        Raises:
            NotFound: the path has never been written.
        """
        ns, rel = self._address(namespace, path)
        try:
            self._synced_row(ns, rel)  # so an edit made on disk shows up as the newest version
        except MemoryServerError as exc:
            logger.warning("history of %s/%s does not include its live file: %s", ns, rel, exc)
        if limit is not None:
            limit = check.limit(limit, config=self._config)
        before = check.decode_cursor(cursor)
        sql = "SELECT * FROM file_versions WHERE namespace = ? AND path = ?"
        params: list[Any] = [ns, rel]
        if before is not None:
            sql += " AND version < ?"
            params.append(before)
        sql += " ORDER BY version DESC"
        if limit:
            sql += " LIMIT ?"
            params.append(limit + 1)
        rows = self._db.query(sql, params)
        if not rows and before is None:
            raise NotFound(f"{rel!r} has never been written in namespace {ns!r}; file_list shows what exists")
        next_cursor = None
        if limit and len(rows) > limit:
            rows = rows[:limit]
            next_cursor = check.encode_cursor(rows[-1]["version"])
        current = _first(self._db.query("SELECT version FROM files WHERE namespace = ? AND path = ?", (ns, rel)))
        latest = current["version"] if current else None
        versions = [_version(r, content_kept=bool(r["keep_content"]) or r["version"] == latest) for r in rows]
        return FileHistory(namespace=ns, path=rel, versions=versions, next_cursor=next_cursor)

    def audit_tail(
        self,
        n: int = 50,
        path: str | None = None,
        *,
        namespace: str | None = DEFAULT_NAMESPACE,
        cursor: str | None = None,
    ) -> FileHistory:
        """The newest ``n`` audit entries (oldest first): of one path, one namespace, or (``namespace=None``) all.

        ``next_cursor`` pages towards older entries. Writes made with ``audit=False`` have no
        entry, so a store only ever written that way answers an empty list, as Flyte's does.
        """
        n = check.limit(n, config=self._config)
        clauses: list[str] = ["audited = 1"]
        params: list[Any] = []
        ns = normalize_namespace(namespace) if namespace is not None or path is not None else None
        if ns is not None:
            clauses.append("namespace = ?")
            params.append(ns)
        rel = None
        if path is not None:
            assert ns is not None
            rel = normalize_path(path, max_bytes=self._config.max_path_bytes)
            clauses.append("path = ?")
            params.append(rel)
        rows, next_cursor = check.newest_first_page(self._db, "file_versions", clauses, params, n, cursor)
        entries = [_audit_entry(r) for r in reversed(rows)]
        return FileHistory(namespace=ns or "*", path=rel, audit=entries, next_cursor=next_cursor)

    def counts(self) -> dict[str, int]:
        """Live files and stored versions, across every namespace."""
        row = self._db.query(
            "SELECT (SELECT COUNT(*) FROM files WHERE sha256 IS NOT NULL), (SELECT COUNT(*) FROM file_versions)"
        )[0]
        return {"files": int(row[0]), "file_versions": int(row[1])}

    # -- transcript --------------------------------------------------------------------------------

    def transcript(self, namespace: str = DEFAULT_NAMESPACE) -> Transcript:
        """The namespace's conversation transcript, loaded with every message flushed so far."""
        return Transcript(self._ctx, normalize_namespace(namespace))

    # -- export / import -------------------------------------------------------------------------

    def export(
        self, namespace: str, dest: str | os.PathLike[str], *, access: LocalAccess | None = None
    ) -> FileArchiveReport:
        """Write a namespace (live files, every version, audit, transcript) to a directory or ``.tar.gz``.

        ``dest`` must not exist; a local one must be under the allowed roots. A URL
        (``s3://…``) works when ``fsspec`` and that filesystem's package are installed.

        Raises:
            NotFound: the namespace has nothing in it. InvalidInput: ``dest`` exists.
            AccessDenied: ``dest`` is outside the allowed roots (``access``: the store's rule
                unless the caller, such as keyed memories' own staging, brings another).
        """
        ns = normalize_namespace(namespace)
        for item in self._db.query("SELECT path FROM files WHERE namespace = ? AND sha256 IS NOT NULL", (ns,)):
            try:
                self._synced_row(ns, item["path"])  # so edits made on disk are part of the export
            except MemoryServerError as exc:
                logger.warning("exporting %s/%s without its live file: %s", ns, item["path"], exc)
        with self._db.snapshot() as conn:  # one consistent view of the records; blobs are immutable, read them after
            versions = conn.execute("SELECT * FROM file_versions WHERE namespace = ? ORDER BY seq", (ns,)).fetchall()
            latest = conn.execute("SELECT path, sha256, version FROM files WHERE namespace = ? ORDER BY path", (ns,))
            states = latest.fetchall()
            messages = conn.execute(
                "SELECT ts, message FROM file_transcripts WHERE namespace = ? ORDER BY seq", (ns,)
            ).fetchall()
        if not versions and not messages:
            raise NotFound(f"namespace {ns!r} has no files and no transcript; nothing to export")
        live = [r for r in states if r["sha256"] is not None]
        current = {r["path"]: r["version"] for r in states}
        # A version written with keep_versions=False has no content once replaced (gc may have freed it).
        digests = sorted(
            {r["sha256"] for r in versions if r["sha256"] and (r["keep_content"] or current[r["path"]] == r["version"])}
        )
        records: list[dict[str, Any]] = []
        last: dict[str, int] = {}
        for r in versions:
            records.append(_version_record(r, follows_dropped=r["version"] != last.get(r["path"], 0) + 1))
            last[r["path"]] = r["version"]
        report = FileArchiveReport(
            namespace=ns, location=os.fspath(dest), files=len(live), versions=len(versions), blobs=len(digests),
            transcript_messages=len(messages),
        )  # fmt: skip
        sink = open_sink(dest, access or LocalAccess.of(self._config), StagingLedger(self._ctx.data_dir))
        try:
            manifest = {"format": ARCHIVE_FORMAT, "format_version": ARCHIVE_VERSION, "namespace": ns,
                        "exported_at": utc_now(), **report.model_dump(exclude={"namespace", "location"})}  # fmt: skip
            sink.add("manifest.json", (jsonlib.dumps(manifest, indent=2) + "\n").encode())
            sink.add("versions.jsonl", _jsonl(records))
            sink.add(
                "transcript.jsonl", _jsonl({"ts": r["ts"], "message": jsonlib.loads(r["message"])} for r in messages)
            )
            for digest in digests:
                sink.add(f"blobs/{digest}", self._blobs.read(digest))
            for item in live:
                sink.add(f"files/{item['path']}", self._blobs.read(item["sha256"]))
            sink.commit()
        except BaseException:
            sink.abort()
            raise
        return report.model_copy(update={"location": sink.location})

    def import_(
        self, src: str | os.PathLike[str], namespace: str | None = None, *, access: LocalAccess | None = None
    ) -> FileArchiveReport:
        """Restore an export into ``namespace`` (default: the exported one), which must be empty.

        Versions keep their numbers, times, actors and reasons; live files are rewritten
        on disk. Every version passes the checks a write makes (path rules, read-only
        prefixes, UTF-8 text within max_text_bytes, no file where a folder is), with sizes
        and hashes recomputed from the content. The inputs are streamed (one line of
        ``versions.jsonl`` or ``transcript.jsonl`` in memory at a time) and the records go
        in as one transaction: all or nothing. Blobs are stored before it, so a failed
        import leaves only unreferenced blobs (gc removes them) and can simply be retried.

        Raises:
            Conflict: the namespace already has files or a transcript.
            InvalidInput: ``src`` is not a valid export (bad format, missing or corrupt content).
            NotFound / AccessDenied: ``src`` is missing or outside the allowed roots; or a
                path is under a read-only prefix.
        """
        # Pass 1 stages the blobs; pass 2's transaction confirms them, so gc cannot take one between.
        with self._blobs.pending() as pending:
            return self._import(pending, src, namespace, access or LocalAccess.of(self._config))

    def _import(
        self, pending: PendingBlobs, src: str | os.PathLike[str], namespace: str | None, access: LocalAccess
    ) -> FileArchiveReport:
        max_read = self._config.max_text_bytes + (1 << 20)
        source = open_source(src, access, max_read=max_read)
        try:
            manifest = _load_json(read_member(source, "manifest.json", max_bytes=1 << 20), "manifest.json")
            if not isinstance(manifest, dict) or manifest.get("format") != ARCHIVE_FORMAT:
                raise InvalidInput(
                    f"{source.location} is not a files export (manifest.json has no format {ARCHIVE_FORMAT!r})"
                )
            if manifest.get("format_version") != ARCHIVE_VERSION:
                raise InvalidInput(
                    f"{source.location} has export format version {manifest.get('format_version')!r}; "
                    f"this mcp-memory-server reads version {ARCHIVE_VERSION}"
                )
            ns = normalize_namespace(namespace if namespace is not None else manifest.get("namespace"))
            with self._db.write() as conn:
                _refuse_filled(conn, ns)
            # Pass 1, outside the write lock: check every record and store each content it names once.
            needed: list[tuple[str, dict[str, Any]]] = []  # versions whose content is stored
            # Each path's last version: its content is needed even if its writer kept no versions.
            last: dict[str, tuple[str, dict[str, Any]]] = {}
            for where, v in self._archive_versions(source):
                self._read_only.check(ns, v["path"], action="import")
                last[v["path"]] = (where, v)
                if v["keep_content"]:
                    needed.append((where, v))
            needed += last.values()
            # In the archive's order: a .tar.gz stream seeks backwards only by decompressing again
            # from its start (in versions order, 5,000 files took 3 minutes to import).
            digests = sorted({v["sha256"] for _, v in needed if v["sha256"] is not None})
            sizes: dict[str, int] = {}
            for name in source.in_archive_order([f"blobs/{digest}" for digest in digests]):
                digest = name.removeprefix("blobs/")
                sizes[digest] = self._import_blob(pending, source, digest)
            for where, v in needed:
                self._check_version_size(sizes, where, v)
            # Pass 2: replay the versions in order, as writes would have made them, in one transaction.
            counts = {"versions": 0, "messages": 0}
            with self._db.write() as conn:
                _refuse_filled(conn, ns)
                pending.confirm(conn, sizes)  # gc may have removed a reused blob since pass 1
                for where, v in self._archive_versions(source):
                    try:
                        self._replay(conn, ns, v)
                    except (InvalidInput, Conflict) as exc:
                        raise InvalidInput(f"{where} in {source.location}: {exc}. Nothing was imported") from None
                    counts["versions"] += 1
                for ts, text in self._archive_transcript(source):
                    conn.execute(
                        "INSERT INTO file_transcripts (namespace, ts, message) VALUES (?, ?, ?)", (ns, ts, text)
                    )
                    counts["messages"] += 1
                files = conn.execute(
                    "SELECT COUNT(*) FROM files WHERE namespace = ? AND sha256 IS NOT NULL", (ns,)
                ).fetchone()[0]
        finally:
            source.close()
        # The records are committed: a live file that cannot be written now stays pending and is
        # repaired on the next read, so the import is reported as done.
        after = ""
        while page := self._db.query(
            "SELECT path, sha256 FROM files WHERE namespace = ? AND sha256 IS NOT NULL AND path > ?"
            " ORDER BY path LIMIT 500",
            (ns, after),
        ):
            for row in page:
                self._project(ns, row["path"], row["sha256"], None)
            after = page[-1]["path"]
        return FileArchiveReport(
            namespace=ns, location=source.location, files=files, versions=counts["versions"], blobs=len(sizes),
            transcript_messages=counts["messages"],
        )  # fmt: skip

    def _archive_versions(self, source: ArchiveSource) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(where, checked record)`` for each line of versions.jsonl, streamed."""
        lines = read_lines(source, "versions.jsonl", max_line_bytes=_MAX_VERSION_LINE, max_bytes=_MAX_JSONL_BYTES)
        for number, line in enumerate(lines, 1):
            if line.strip():
                where = f"versions.jsonl line {number}"
                yield where, self._check_record(_load_json(line, where), where)

    def _archive_transcript(self, source: ArchiveSource) -> Iterator[tuple[str, str]]:
        """``(ts, message text)`` for each line of transcript.jsonl, streamed and checked."""
        # JSON escapes can make a message up to six times longer than its text.
        cap = 6 * self._config.max_text_bytes + (1 << 16)
        lines = read_lines(source, "transcript.jsonl", max_line_bytes=cap, max_bytes=_MAX_JSONL_BYTES)
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"transcript.jsonl line {number}"
            record = _load_json(line, where)
            if not isinstance(record, dict) or set(record) != {"ts", "message"}:
                raise InvalidInput(f"{where} in {source.location} must be an object {{ts, message}}")
            ts = parse_timestamp(check.short(record["ts"], field=f"{where} ts", max_chars=64), field=f"{where} ts")
            yield ts, _message_text(record["message"], self._config)

    @staticmethod
    def _check_version_size(sizes: dict[str, int], where: str, v: dict[str, Any]) -> None:
        """A version's size is its stored content's (``sizes``: digest → bytes)."""
        digest = v["sha256"]
        if digest is not None and v["bytes"] != sizes[digest]:
            raise InvalidInput(
                f"{where} says {v['path']!r} version {v['version']} is {v['bytes']} bytes, but its content "
                f"blobs/{digest} is {sizes[digest]}; the archive is corrupt"
            )

    def _import_blob(self, pending: PendingBlobs, source: ArchiveSource, digest: str) -> int:
        """Check one archived content like written content and store it; return its size."""
        name = f"blobs/{digest}"
        data = read_member(source, name, max_bytes=self._config.max_text_bytes)
        if sha256_hex(data) != digest:
            raise InvalidInput(f"{name} in {source.location} is corrupt (its sha256 is {sha256_hex(data)})")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(
                f"{name} in {source.location} is not UTF-8 text; memory files hold text, so it cannot be imported"
            ) from None
        check.text(text, field=name, config=self._config)
        pending.put_bytes(data)
        return len(data)

    def _replay(self, conn: Connection, ns: str, v: dict[str, Any]) -> None:
        """Append one archived version after the checks a write of it would pass (inside the transaction)."""
        rel = v["path"]
        row = _row(conn, ns, rel)
        current = row["sha256"] if row else None
        expected = (row["version"] if row else 0) + 1
        # A gap is where a writer with audit=False and keep_versions=False left nothing; the export marks it.
        dropped = v["follows_dropped"] and v["version"] > expected
        if v["version"] != expected and not dropped:
            raise InvalidInput(f"{rel!r} version {v['version']} should be {expected} (versions run 1, 2, 3, …)")
        op = v["op"]
        if op == "delete" and current is None and not dropped:
            raise InvalidInput(f"version {v['version']} deletes {rel!r}, which does not exist at that point")
        if (op == "create") != (current is None) and op in ("create", "update") and not dropped:
            raise InvalidInput(f"version {v['version']} of {rel!r} is an {op!r}, but the path "
                               f"{'does not exist' if current is None else 'exists'} at that point")  # fmt: skip
        if v["sha256"] is not None and current is None:
            _check_tree(conn, ns, rel)  # the write path's rule: no file where a folder is, or the reverse
        size = v["bytes"] if v["sha256"] is not None else 0
        self._append(
            conn, ns, rel, row, op, v["sha256"], size, v["actor"], v["reason"], ts=v["ts"], version=v["version"],
            keep_content=v["keep_content"], audited=v["audited"],
        )  # fmt: skip

    def _check_record(self, record: Any, where: str) -> dict[str, Any]:
        if not isinstance(record, dict):
            raise InvalidInput(f"{where}: versions.jsonl must hold one JSON object per line")
        flags = {key: record.get(key, default) for key, default in _VERSION_FLAGS.items()}
        for key, value in flags.items():
            if not isinstance(value, bool):
                raise InvalidInput(f"{where}: {key} {value!r} is not true or false")
        try:
            path = normalize_path(record["path"], max_bytes=self._config.max_path_bytes)
            actor = record["actor"]  # an unaudited version has none
            out = {
                **flags,
                "path": path,
                "version": record["version"],
                "op": record["op"],
                "sha256": None if record["sha256"] is None else check_digest(record["sha256"]),
                "bytes": record["bytes"],
                "ts": parse_timestamp(check.short(record["ts"], field="ts", max_chars=64), field="ts"),
                "actor": _actor(actor) if flags["audited"] or actor != "" else "",
                "reason": check.short(record["reason"], field="reason", max_chars=2000),
            }
        except KeyError as exc:
            raise InvalidInput(f"{where}: a version lacks {exc.args[0]!r}") from None
        except (InvalidInput, LimitExceeded) as exc:
            raise InvalidInput(f"{where}: {exc}") from None
        if path != record["path"]:
            raise InvalidInput(f"{where}: path {record['path']!r} is not in canonical form (it would be {path!r})")
        if out["op"] not in _OPS or (out["sha256"] is None) != (out["op"] == "delete"):
            raise InvalidInput(f"{where}: op {out['op']!r} with sha256 {out['sha256']!r} is not a valid version")
        for key in ("version", "bytes"):
            if isinstance(out[key], bool) or not isinstance(out[key], int) or out[key] < 0:
                raise InvalidInput(f"{where}: {key} {out[key]!r} is not a non-negative integer")
        # The next write numbers its version one past the last: past 2^63 - 2 the file could never be written
        # or deleted again (the store's integers are 64-bit).
        if out["version"] >= _MAX_VERSION:
            raise InvalidInput(
                f"{where}: version {out['version']} leaves no room for a next one (at most {_MAX_VERSION - 1})"
            )
        return out

    # -- helpers -----------------------------------------------------------------------------------

    def _address(self, namespace: str, path: str) -> tuple[str, str]:
        return normalize_namespace(namespace), normalize_path(path, max_bytes=self._config.max_path_bytes)

    def _prefix(self, prefix: str) -> str:
        if not isinstance(prefix, str):
            raise InvalidInput(f"prefix must be a string, got {type(prefix).__name__}")
        if not prefix.strip("/."):
            if ".." in prefix:
                raise InvalidInput(
                    f"prefix={prefix!r} climbs out of the namespace; give a folder in it, such as 'notes/', or '' for every file"
                )
            return ""
        rel = normalize_path(prefix, max_bytes=self._config.max_path_bytes, field="prefix")
        return rel + "/" if prefix.endswith("/") else rel

    def _encode(self, content: str | None, value: Any) -> bytes:
        if (content is None) == (value is _MISSING):
            raise InvalidInput("give exactly one of content (text) or json")
        if content is not None:
            return check.text(content, field="content", config=self._config).encode("utf-8")
        check.json_value(value, field="json", config=self._config)
        text = jsonlib.dumps(value, ensure_ascii=False, indent=2) + "\n"
        return check.text(text, field="json", config=self._config).encode("utf-8")

    def _version_row(self, ns: str, rel: str, version: int, *, content: bool = False) -> Row:
        """The row of ``version``; with ``content``, only if its content is kept (to read or restore it).

        Raises:
            NotFound: no such version, or (``content``) its writer had ``keep_versions=False``
                and a newer version has replaced it. The message names the setting.
        """
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidInput(f"version must be a positive integer, got {version!r}")
        rows = self._db.query(
            "SELECT v.*, f.version AS current_version FROM files AS f LEFT JOIN file_versions AS v"
            " ON v.namespace = f.namespace AND v.path = f.path AND v.version = ?"
            " WHERE f.namespace = ? AND f.path = ?",
            (version, ns, rel),
        )
        if not rows or (rows[0]["version"] is None and version > rows[0]["current_version"]):
            raise NotFound(f"{rel!r} has no version {version} in namespace {ns!r}; file_history lists its versions")
        row: Row = rows[0]
        if row["version"] is None:
            raise NotFound(
                f"version {version} of {rel!r} in namespace {ns!r} is not kept: it was written by a store opened "
                "with audit=False and keep_versions=False, which keep neither replaced versions nor their audit "
                "entries; file_history lists the versions that are kept"
            )
        if content and row["sha256"] is not None and not row["keep_content"] and version != row["current_version"]:
            raise NotFound(
                f"version {version} of {rel!r} in namespace {ns!r} has no content any more: it was written by a "
                "store opened with keep_versions=False, which keeps only the current version's content; read "
                "the current version (open the store with keep_versions=True to keep the versions to come)"
            )
        return row


class Transcript:
    """A conversation transcript kept per namespace.

    ``append``/``extend`` add messages (any JSON value, typically ``{"role", "content"}``)
    in memory; ``flush`` persists them. Used as a context manager it flushes on exit.
    Opening the transcript again loads every flushed message.
    """

    def __init__(self, ctx: StoreContext, namespace: str) -> None:
        self._db = ctx.db
        self._config = ctx.config
        self.namespace = namespace
        rows = ctx.db.query("SELECT message FROM file_transcripts WHERE namespace = ? ORDER BY seq", (namespace,))
        self.messages: list[Any] = [jsonlib.loads(r["message"]) for r in rows]
        self._pending: list[tuple[str, str]] = []

    def append(self, message: Any) -> None:
        """Add one message (validated now, persisted by :meth:`flush`)."""
        self.extend([message])

    def extend(self, messages: Iterable[Any]) -> None:
        """Add several messages; if one is invalid, none is added."""
        batch = list(messages)
        texts = []
        for message in batch:
            texts.append((utc_now(), _message_text(message, self._config)))
        self.messages.extend(batch)
        self._pending.extend(texts)

    def flush(self) -> int:
        """Persist the messages added since the last flush; return how many were written."""
        if not self._pending:
            return 0
        with self._db.write() as conn:
            conn.executemany(
                "INSERT INTO file_transcripts (namespace, ts, message) VALUES (?, ?, ?)",
                [(self.namespace, ts, text) for ts, text in self._pending],
            )
        written = len(self._pending)
        self._pending.clear()
        return written

    def __len__(self) -> int:
        return len(self.messages)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.messages)

    def __enter__(self) -> Transcript:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()


# -- module helpers ----------------------------------------------------------------------------------


def _message_text(message: Any, config: Config) -> str:
    """A transcript message's JSON text, keys in the order given (validated like any JSON field)."""
    check.json_value(message, field="transcript message", config=config)
    return jsonlib.dumps(message, ensure_ascii=False)


def _row(conn: Connection, ns: str, rel: str) -> Row | None:
    row: Row | None = conn.execute("SELECT * FROM files WHERE namespace = ? AND path = ?", (ns, rel)).fetchone()
    return row


def _first(rows: list[Row]) -> Row | None:
    return rows[0] if rows else None


def _set_projected(conn: Connection, ns: str, rel: str, sha: str | None) -> None:
    conn.execute("UPDATE files SET projected_sha = ? WHERE namespace = ? AND path = ?", (sha, ns, rel))


def _expected(value: str | None) -> str | None:
    if value is None or value == "":
        return value
    if isinstance(value, str) and len(value) == 64:
        try:
            return check_digest(value.lower())
        except InvalidInput:
            pass
    raise InvalidInput(
        f"expected_sha {value!r} is not valid; use null (write unconditionally), '' (create only) "
        "or the 64-hex sha256 that file_read or file_list returned"
    )


def _check_expected(ns: str, rel: str, current: str | None, expected: str | None) -> None:
    """Raises: Conflict: the stored state is not what ``expected`` says (the message names the current sha)."""
    if expected is None:
        return
    if expected == "":
        if current is not None:
            raise Conflict(
                f"{rel!r} already exists in namespace {ns!r} (current sha256 {current}); expected_sha='' only "
                f"creates. Read it, then pass expected_sha={current} to overwrite"
            )
        return
    if current is None:
        raise Conflict(
            f"{rel!r} does not exist in namespace {ns!r} (current sha256: none, expected {expected}); "
            "pass expected_sha='' to create it"
        )
    if current != expected:
        raise Conflict(
            f"{rel!r} was changed by someone else: current sha256 is {current}, not the expected {expected}. "
            f"Read it again, merge, and retry with expected_sha={current}"
        )


def _check_tree(conn: Connection, ns: str, rel: str) -> None:
    """Raises: Conflict: a parent of ``rel`` is a file, or ``rel`` is a folder holding files."""
    parts = rel.split("/")
    parents = ["/".join(parts[:i]) for i in range(1, len(parts))]
    if parents:
        marks = ",".join("?" * len(parents))
        blocking = conn.execute(
            f"SELECT path FROM files WHERE namespace = ? AND sha256 IS NOT NULL AND path IN ({marks}) LIMIT 1",
            (ns, *parents),
        ).fetchone()
        if blocking:
            raise Conflict(
                f"cannot create {rel!r}: {blocking['path']!r} is a file, so it cannot be a folder; "
                "choose another path or delete that file first"
            )
    child = conn.execute(
        "SELECT path FROM files WHERE namespace = ? AND sha256 IS NOT NULL AND path > ? AND path < ? LIMIT 1",
        (ns, rel + "/", rel + "0"),
    ).fetchone()
    if child:
        raise Conflict(f"cannot create {rel!r}: it is a folder holding {child['path']!r}; choose another path")


def _refuse_filled(conn: Connection, ns: str) -> None:
    """Raises: Conflict: ``ns`` already has files or a transcript (an import needs an empty namespace)."""
    if conn.execute(
        "SELECT 1 FROM files WHERE namespace = ? UNION ALL SELECT 1 FROM file_transcripts WHERE namespace = ? LIMIT 1",
        (ns, ns),
    ).fetchone():
        raise Conflict(f"namespace {ns!r} already has files or a transcript; import into an empty namespace")


def _missing_message(ns: str, rel: str, row: Row | None) -> str:
    if row is not None:
        return (
            f"{rel!r} was deleted (version {row['version']}) in namespace {ns!r}; read an older version "
            "or restore one (file_history lists them)"
        )
    return f"no file {rel!r} in namespace {ns!r}; file_list shows what exists"


def _actor(value: Any) -> str:
    actor = check.short(value, field="actor", max_chars=128)
    if not actor.strip():
        raise InvalidInput("actor must not be empty; name who is writing, e.g. 'agent' or 'alice'")
    return actor


def _meta(row: Row) -> FileMeta:
    return FileMeta(
        namespace=row["namespace"], path=row["path"], sha256=row["sha256"], bytes=row["bytes"],
        version=row["version"], updated_at=row["updated_at"], updated_by=row["updated_by"], reason=row["reason"],
    )  # fmt: skip


def _deleted_meta(row: Row) -> FileMeta:
    return FileMeta(
        namespace=row["namespace"], path=row["path"], sha256="", bytes=0, version=row["version"],
        updated_at=row["updated_at"], updated_by=row["updated_by"], reason=row["reason"],
    )  # fmt: skip


def _version_meta(row: Row) -> FileMeta:
    return FileMeta(
        namespace=row["namespace"], path=row["path"], sha256=row["sha256"], bytes=row["bytes"],
        version=row["version"], updated_at=row["ts"], updated_by=row["actor"], reason=row["reason"],
    )  # fmt: skip


def _version(row: Row, *, content_kept: bool) -> FileVersion:
    return FileVersion(
        version=row["version"], op=row["op"], sha256=row["sha256"], bytes=row["bytes"], ts=row["ts"],
        actor=row["actor"], reason=row["reason"], content_kept=content_kept and row["sha256"] is not None,
    )  # fmt: skip


def _audit_entry(row: Row) -> FileAuditEntry:
    return FileAuditEntry(
        ts=row["ts"], op=row["op"], namespace=row["namespace"], path=row["path"], old_sha=row["old_sha"],
        new_sha=row["sha256"], actor=row["actor"], reason=row["reason"], version=row["version"],
    )  # fmt: skip


def _version_record(row: Row, *, follows_dropped: bool) -> dict[str, Any]:
    keys = ("path", "version", "op", "sha256", "old_sha", "bytes", "ts", "actor", "reason")
    record = {key: row[key] for key in keys}
    # Written only when not the default, so an export of a store that never switched anything off is as before.
    if not row["keep_content"]:
        record["keep_content"] = False
    if not row["audited"]:
        record["audited"] = False
    if follows_dropped:
        record["follows_dropped"] = True
    return record


def _jsonl(records: Iterable[Any]) -> bytes:
    return "".join(jsonlib.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


_MAX_VERSION = 2**63 - 1


def _load_json(data: bytes, name: str) -> Any:
    try:
        return jsonlib.loads(data)
    except ValueError as exc:
        raise InvalidInput(f"{name} is not valid JSON ({exc})") from None
    except RecursionError:  # "[" * 20000: the decoder recurses once per level
        raise InvalidInput(f"{name} nests JSON too deeply to be a memory-file archive record") from None


def _encode_path_cursor(path: str) -> str:
    import base64

    return base64.urlsafe_b64encode(("f" + path).encode("utf-8")).decode().rstrip("=")


def _decode_path_cursor(cursor: str | None) -> str | None:
    import base64
    import binascii

    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
        if raw.startswith("f"):
            return raw[1:]
    except (ValueError, UnicodeDecodeError, binascii.Error):
        pass
    raise InvalidInput(
        f"cursor {cursor[:40]!r} is not a cursor this server issued; pass next_cursor from the last page"
    )


def _prefix_end(prefix: str) -> str | None:
    """The smallest string above every string starting with ``prefix`` (None: no such string).

    Every engine's schema compares paths as UTF-8 bytes, which is code point order, whatever
    the database's locale. Trailing U+10FFFF
    cannot be incremented, so the bound comes from the last character before them:
    ``"a\U0010ffff"`` → ``"b"``.
    """
    stem = prefix.rstrip("\U0010ffff")
    if not stem:
        return None
    code = ord(stem[-1]) + 1
    if 0xD800 <= code <= 0xDFFF:  # surrogates are not text; the next character is U+E000
        code = 0xE000
    return stem[:-1] + chr(code)
