"""Artifacts: a content-addressed store of text, JSON, bytes, files and directories.

Bytes live in the blob store under their sha256; a record adds kind, name, labels,
metrics, tags and scope. Saving the same content with the same metadata returns the
existing record; otherwise a new record points at the same blob.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import mimetypes
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import AccessDenied, InvalidInput, NotFound, StorageError
from ..ids import new_id, utc_now
from ..models import ArtifactContent, ArtifactPage, ArtifactRecord, DeleteReport
from ..storage.blobs import PendingBlobs, check_digest
from ..storage.engine import Connection, Row
from ..storage.staging import StagingLedger
from . import _validate as check
from ._context import StoreContext
from .local_paths import FileWriter, LocalAccess, LocalDir, TreeWriter
from .search import ProgressFn as SearchProgressFn
from .search import SearchIndex, SourceFilter

__all__ = ["ArtifactWriter", "Artifacts", "PreparedArtifact", "ProgressFn", "Scope"]

Scope = Literal["all", "run", "graph", "node"]
ProgressFn = Callable[[int, int | None], None]
"""Called with (bytes done, bytes total or None)."""

URI_PREFIX = "cas://sha256/"
DIR_MIME = "inode/directory"
_PREVIEW_CHARS = 300
_METRIC_OPS = {">": ">", ">=": ">=", "<": "<", "<=": "<=", "==": "=", "!=": "!="}


BLOB_REFERENCES = "SELECT sha256 FROM artifact_blobs"
"""SQL listing every blob digest artifacts still need (used by gc)."""


def parse_uri(uri: str) -> str:
    """Return the digest of a ``cas://sha256/<hex>`` URI.

    Raises:
        InvalidInput: ``uri`` is not such a URI.
    """
    if not isinstance(uri, str) or not uri.startswith(URI_PREFIX):
        raise InvalidInput(f"uri {uri!r} is not a content address; expected cas://sha256/<64 hex>")
    return check_digest(uri[len(URI_PREFIX) :])


def _is_textual(mime: str) -> bool:
    return mime.startswith("text/") or mime in ("application/json", "application/xml", "application/yaml")


@dataclass(frozen=True, slots=True)
class PreparedArtifact:
    """Content already in blobs, waiting for its record (see :meth:`Artifacts.prepare_file`)."""

    sha256: str
    size: int
    mime: str
    preview: str
    fields: dict[str, Any]
    pending: PendingBlobs  # the staged blobs, confirmed by insert_prepared's transaction
    is_dir: bool = False
    extra_blobs: tuple[str, ...] = ()

    def tail(self, size: int) -> bytes:
        """The last ``size`` bytes of the content, read from the staged copy (gc cannot remove it)."""
        return self.pending.read(self.sha256, max(0, self.size - size))

    def discard(self) -> None:
        """Drop the staged copies (after the insert, or when the caller gives up)."""
        self.pending.release()


class ArtifactWriter:
    """Streams bytes into a pending artifact; see :meth:`Artifacts.writer`."""

    def __init__(self, temp: Any) -> None:
        self._temp = temp
        self.record: ArtifactRecord | None = None

    def write(self, data: bytes | str) -> int:
        return int(self._temp.write(data.encode("utf-8") if isinstance(data, str) else data))


class Artifacts:
    """The artifact store of one data directory. Get it as ``MemoryStore.artifacts``."""

    def __init__(self, ctx: StoreContext, *, search: SearchIndex | None = None) -> None:
        self._ctx = ctx
        self._db = ctx.db
        self._blobs = ctx.blobs
        self._config = ctx.config
        self._search = search
        self.last_artifact: ArtifactRecord | None = None
        """The record the latest :meth:`writer` block of this process committed (AetherGraph's name)."""

    # -- saving ----------------------------------------------------------------------------------

    def save_text(self, text: str, kind: str = "text", **meta: Any) -> ArtifactRecord:
        """Save text (UTF-8) as an artifact.

        ``meta``: name, labels, metrics, tags, pin, mime, graph_id, node_id, and preview_uri (the uri
        or id of an artifact that previews this one, e.g. a chart's thumbnail).
        """
        check.text(text, field="text", config=self._config)
        meta["mime"] = meta.get("mime") or "text/plain"
        return self.save_bytes(text.encode("utf-8"), kind, **meta)

    def save_json(self, value: Any, kind: str = "json", **meta: Any) -> ArtifactRecord:
        """Save a JSON value (stored canonically: sorted keys, compact)."""
        encoded = check.json_value(value, field="json", config=self._config)
        meta["mime"] = meta.get("mime") or "application/json"
        return self.save_bytes(encoded.encode("utf-8"), kind, **meta)

    def save_bytes(self, data: bytes, kind: str = "blob", **meta: Any) -> ArtifactRecord:
        """Save raw bytes."""
        if not isinstance(data, bytes | bytearray):
            raise InvalidInput(f"data must be bytes, got {type(data).__name__}")
        fields = self._check_meta(kind, meta)
        with self._blobs.pending() as pending:
            info = pending.put_bytes(bytes(data))
            mime = fields.pop("mime") or "application/octet-stream"
            preview = _preview(bytes(data[:2048]), mime, info.size)
            return self._insert(pending, info.sha256, info.size, mime, preview, fields)

    def save_file(
        self,
        path: str | os.PathLike[str],
        kind: str = "file",
        *,
        progress: ProgressFn | None = None,
        **meta: Any,
    ) -> ArtifactRecord:
        """Save a server-local file or directory (under the allowed roots).

        Raises:
            AccessDenied: the path is outside the allowed roots, in the data directory, or a special file.
            NotFound: nothing exists at the path.
        """
        return self.insert_prepared(self.prepare_file(path, kind, progress=progress, **meta))

    def prepare_file(
        self,
        path: str | os.PathLike[str],
        kind: str = "file",
        *,
        progress: ProgressFn | None = None,
        file_field: str | None = None,
        **meta: Any,
    ) -> PreparedArtifact:
        """Copy a server-local file or directory into blobs; :meth:`insert_prepared` then records it.

        The split lets a caller copy before taking the database write lock and hold the
        lock only for the insert. The path is read through descriptors opened without
        following symlinks (see ``local_paths``), so a swap after the check cannot redirect it.
        With ``file_field`` the path must be a regular file (the error names that field).
        The copied blobs stay staged (``PendingBlobs``) until :meth:`insert_prepared`
        confirms them in its transaction, or :meth:`PreparedArtifact.discard` drops them.

        Raises:
            InvalidInput: ``file_field`` is given and the path is a directory.
        """
        access = LocalAccess.of(self._config)
        opened = access.open_file(path, field=file_field) if file_field else access.open(path)
        pending = self._blobs.pending()
        try:
            if not meta.get("name"):  # None from a tool that left it out: the file's own name
                meta["name"] = opened.path.name
            fields = self._check_meta(kind, meta)
            if isinstance(opened, LocalDir):
                return self._prepare_dir(pending, opened, fields, progress)
            total = opened.size
            info = pending.put_stream(opened.chunks(), None if progress is None else lambda done: progress(done, total))
            mime = fields.pop("mime") or mimetypes.guess_type(opened.path.name)[0] or "application/octet-stream"
            preview = _preview(pending.head(info.sha256, 2048), mime, info.size)
            return PreparedArtifact(info.sha256, info.size, mime, preview, fields, pending)
        except BaseException:
            pending.release()
            raise
        finally:
            opened.close()

    def insert_prepared(self, prepared: PreparedArtifact) -> ArtifactRecord:
        """Record what :meth:`prepare_file` copied (may run inside a caller's write transaction)."""
        try:
            return self._insert(
                prepared.pending, prepared.sha256, prepared.size, prepared.mime, prepared.preview,
                dict(prepared.fields), is_dir=prepared.is_dir, extra_blobs=prepared.extra_blobs,
            )  # fmt: skip
        finally:
            prepared.discard()

    def _prepare_dir(
        self, pending: PendingBlobs, root: LocalDir, fields: dict[str, Any], progress: ProgressFn | None
    ) -> PreparedArtifact:
        files = root.files()
        total = sum(f.size for f in files)
        done = 0
        entries: list[dict[str, Any]] = []
        for entry in files:
            with root.open_file(entry) as opened:
                info = pending.put_stream(opened.chunks())
            done += info.size
            if progress is not None:
                progress(done, total)
            entries.append({"path": entry.relative, "sha256": info.sha256, "bytes": info.size})
        entries.sort(key=lambda e: e["path"])
        manifest = _manifest_bytes(entries)
        info = pending.put_bytes(manifest)
        fields.pop("mime")
        size = sum(e["bytes"] for e in entries)
        names = ", ".join(e["path"] for e in entries[:10]) + (", …" if len(entries) > 10 else "")
        preview = f"directory, {len(entries)} files, {size} bytes: {names}"
        extra = tuple(e["sha256"] for e in entries)
        return PreparedArtifact(info.sha256, size, DIR_MIME, preview, fields, pending, is_dir=True, extra_blobs=extra)

    @contextmanager
    def writer(self, kind: str = "blob", planned_ext: str = "", **meta: Any) -> Iterator[ArtifactWriter]:
        """Stream bytes into a new artifact, committed atomically on a clean exit.

        If the block raises, no record, no blob and no temp file remain. After the block,
        ``writer.record`` holds the saved record.
        """
        if planned_ext and not planned_ext.startswith("."):
            planned_ext = "." + planned_ext
        meta.setdefault("name", f"{kind}{planned_ext}")
        fields = self._check_meta(kind, meta)
        with self._blobs.pending() as pending:
            temp = pending.temp()
            writer = ArtifactWriter(temp)
            try:
                yield writer
            except BaseException:
                temp.discard()
                raise
            info = temp.finish()
            mime = fields.pop("mime") or mimetypes.guess_type(f"x{planned_ext}")[0] or "application/octet-stream"
            preview = _preview(pending.head(info.sha256, 2048), mime, info.size)
            writer.record = self._insert(pending, info.sha256, info.size, mime, preview, fields)
            self.last_artifact = writer.record

    def _check_meta(self, kind: str, meta: dict[str, Any]) -> dict[str, Any]:
        allowed = {"name", "labels", "metrics", "tags", "pin", "mime", "graph_id", "node_id", "preview_uri"}
        unknown = set(meta) - allowed
        if unknown:
            raise InvalidInput(f"unknown artifact field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        config = self._config
        return {
            "kind": check.short(kind, field="kind", max_chars=128) if kind else _raise_empty("kind"),
            "name": check.short(meta.get("name") or "", field="name"),
            "labels": check.labels(meta.get("labels"), config=config),
            "metrics": check.metrics(meta.get("metrics"), config=config),
            "tags": check.tags(meta.get("tags"), config=config),
            "pin": bool(meta.get("pin", False)),
            "mime": check.short(meta["mime"], field="mime", max_chars=128) if meta.get("mime") else None,
            "graph_id": check.short(meta["graph_id"], field="graph_id", max_chars=128)
            if meta.get("graph_id")
            else None,
            "node_id": check.short(meta["node_id"], field="node_id", max_chars=128) if meta.get("node_id") else None,
            "preview_uri": _preview_ref(meta.get("preview_uri")),
        }

    def _insert(
        self,
        pending: PendingBlobs,
        sha256: str,
        size: int,
        mime: str,
        preview: str,
        fields: dict[str, Any],
        *,
        is_dir: bool = False,
        extra_blobs: Sequence[str] = (),
    ) -> ArtifactRecord:
        run_id = self._ctx.run_id
        labels_json = check.canonical_json(fields["labels"])
        metrics_json = check.canonical_json(fields["metrics"])
        tags_json = check.canonical_json(fields["tags"])
        identity = [sha256, fields["kind"], fields["name"], labels_json, metrics_json, tags_json]
        identity += [run_id, fields["graph_id"], fields["node_id"]]
        artifact_id = new_id("art")
        with self._db.write() as conn:
            pending.confirm(conn, {sha256, *extra_blobs})  # gc may have removed a reused blob meanwhile
            preview_uri = self._preview_uri(conn, fields["preview_uri"])
            if preview_uri is not None:  # appended only when set: records saved before keep their keys
                identity.append(preview_uri)
            dedup_key = hashlib.sha256(check.canonical_json(identity).encode()).hexdigest()
            conn.execute(
                "INSERT INTO artifacts (artifact_id, sha256, kind, name, mime, bytes, is_dir, labels, metrics,"
                " tags, run_id, graph_id, node_id, created_at, pinned, preview, preview_uri, dedup_key)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (dedup_key) DO NOTHING",
                (
                    artifact_id, sha256, fields["kind"], fields["name"], mime, size, int(is_dir),
                    labels_json, metrics_json, tags_json, run_id, fields["graph_id"], fields["node_id"],
                    utc_now(), int(fields["pin"]), preview, preview_uri, dedup_key,
                ),
            )  # fmt: skip
            row = conn.execute("SELECT * FROM artifacts WHERE dedup_key = ?", (dedup_key,)).fetchone()
            if fields["pin"] and not row["pinned"]:
                conn.execute("UPDATE artifacts SET pinned = 1 WHERE seq = ?", (row["seq"],))
                row = conn.execute("SELECT * FROM artifacts WHERE seq = ?", (row["seq"],)).fetchone()
            digests = {sha256, *extra_blobs}
            # Each blob's size for the reference counters (storage/*/schema/stats.py), so they need no stat.
            sizes = {digest: pending.size(digest) for digest in digests}
            if not is_dir:
                sizes[sha256] = size
            conn.executemany(
                "INSERT INTO blob_sizes (sha256, size) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(digest, known) for digest, known in sizes.items() if known is not None],
            )
            conn.executemany(
                "INSERT INTO artifact_blobs (artifact_id, sha256) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(row["artifact_id"], digest) for digest in digests],
            )
        return _record(row)

    @staticmethod
    def _preview_uri(conn: Connection, ref: str | None) -> str | None:
        """The content address of the artifact ``ref`` names (checked in the write transaction, so it exists).

        Raises:
            NotFound: no artifact has that id or content.
        """
        if ref is None:
            return None
        if ref.startswith(URI_PREFIX):
            row = conn.execute("SELECT sha256 FROM artifacts WHERE sha256 = ? LIMIT 1", (parse_uri(ref),)).fetchone()
        else:
            row = conn.execute("SELECT sha256 FROM artifacts WHERE artifact_id = ?", (ref,)).fetchone()
        if row is None:
            raise NotFound(f"preview_uri {ref!r} names no artifact; save the preview first (e.g. a thumbnail)")
        return URI_PREFIX + str(row[0])

    # -- reading ---------------------------------------------------------------------------------

    def get(self, ref: str | ArtifactRecord) -> ArtifactRecord:
        """The record for an ``artifact_id`` or ``cas://`` URI (the newest record of that content).

        Raises:
            NotFound: no such record.
            InvalidInput: ``ref`` is neither an id nor a URI.
        """
        if isinstance(ref, ArtifactRecord):
            ref = ref.artifact_id
        if not isinstance(ref, str) or not ref:
            raise InvalidInput("give artifact_id (art_…) or uri (cas://sha256/…)")
        if ref.startswith("cas://"):
            rows = self._db.query(
                "SELECT * FROM artifacts WHERE sha256 = ? ORDER BY seq DESC LIMIT 1", (parse_uri(ref),)
            )
        else:
            rows = self._db.query("SELECT * FROM artifacts WHERE artifact_id = ?", (ref,))
        if not rows:
            raise NotFound(f"no artifact {ref!r}; search with artifact_search to find ids")
        return _record(rows[0])

    def read(
        self,
        ref: str | ArtifactRecord,
        *,
        offset: int = 0,
        length: int | None = None,
        encoding: Literal["auto", "text", "base64", "path"] = "auto",
    ) -> ArtifactContent:
        """Read content back: text inline, binary as base64 chunks, or a local path.

        Responses are bounded by ``max_response_bytes``; ``next_offset`` says where to continue.

        Raises:
            NotFound: no such record. InvalidInput: bad offset/length/encoding, or text asked of binary.
        """
        record = self.get(ref)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidInput(f"offset must be a non-negative integer, got {offset!r}")
        if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 1):
            raise InvalidInput(f"length must be a positive integer, got {length!r}")
        if encoding not in ("auto", "text", "base64", "path"):
            raise InvalidInput(f"encoding={encoding!r} is not valid; use auto, text, base64 or path")
        if encoding == "path":
            return ArtifactContent(
                artifact=record, encoding="path", path=str(self.as_local_file(record)), total_bytes=record.bytes
            )
        limit = self._config.max_response_bytes
        if record.is_dir:
            page = self._manifest_page(record, offset, min(length or limit, limit))
            return ArtifactContent(
                artifact=record,
                encoding="manifest",
                content=page.text,
                offset=offset,
                length=page.end - offset,
                total_bytes=page.size,
                next_offset=page.next_offset,
            )
        if encoding == "auto":
            encoding = "text" if _is_textual(record.mime) else "base64"
        total = record.bytes
        if offset > total:
            raise InvalidInput(f"offset {offset} is past the end of the content ({total} bytes)")
        if encoding == "text":
            want = min(length or limit, limit)
            raw = self._blobs.read(record.sha256, offset, want)
            text, used = check.utf8_prefix(raw, final=offset + len(raw) >= total)
            if text is None:
                raise InvalidInput(
                    f"artifact {record.artifact_id} is not UTF-8 text at offset {offset}; read it with encoding=base64"
                )
            chunk_len = used
            content = text
        else:
            import base64

            # base64 grows 4/3, so read 3/4 of the budget to keep the response bounded.
            want = min(length or limit, limit * 3 // 4)
            raw = self._blobs.read(record.sha256, offset, want)
            chunk_len = len(raw)
            content = base64.b64encode(raw).decode("ascii")
        end = offset + chunk_len
        return ArtifactContent(
            artifact=record,
            encoding=encoding,
            content=content,
            offset=offset,
            length=chunk_len,
            total_bytes=total,
            next_offset=end if end < total else None,
        )

    def read_bytes(self, ref: str | ArtifactRecord) -> bytes:
        """The whole content of a file artifact (the manifest JSON for a directory)."""
        return self._blobs.read(self.get(ref).sha256)

    def read_chunk(self, ref: str | ArtifactRecord, *, offset: int, limit: int) -> Chunk:
        """At most ``limit`` bytes of content from ``offset``, read from the blob without loading the rest.

        Text types come as ``str`` cut at a character boundary (bytes that are not UTF-8
        become U+FFFD); other files as ``bytes``; a directory as one page of its manifest.

        Raises:
            NotFound: no such record. InvalidInput: ``offset`` is negative or past the end.
        """
        record = self.get(ref)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidInput(f"offset must be a non-negative integer, got {offset!r}")
        if record.is_dir:
            page = self._manifest_page(record, offset, limit)
            return Chunk(record, page.text, offset, page.end, page.size, page.next_offset)
        if offset > record.bytes:
            raise InvalidInput(f"offset {offset} is past the end of the content ({record.bytes} bytes)")
        raw = self._blobs.read(record.sha256, offset, limit)
        end = offset + len(raw)
        content: str | bytes = raw
        if _is_textual(record.mime):
            if end < record.bytes:
                end -= _incomplete_utf8_tail(raw)
            content = raw[: end - offset].decode("utf-8", errors="replace")
        return Chunk(record, content, offset, end, record.bytes, end if end < record.bytes else None)

    def _manifest_page(self, record: ArtifactRecord, offset: int, budget: int) -> _ManifestPage:
        """Whole entries of a directory manifest from byte ``offset`` of its blob, about ``budget`` bytes of them.

        The manifest is canonical JSON, ``{"entries":[{"bytes":…,"path":…,"sha256":…},…],"type":"directory"}``,
        so ``,{"bytes":`` can only occur between entries (inside a string a quote is
        escaped): a page ends at the last such boundary in the window read, and an offset
        is valid when it is 0 or follows such a comma. Each page is itself a manifest with
        the same shape; at least one entry comes back, however long.

        Raises:
            InvalidInput: ``offset`` is not 0 or the ``next_offset`` of a previous page.
        """
        with self._blobs.open(record.sha256) as handle:
            size = handle.seek(0, os.SEEK_END)  # any seekable reader: a file or a bucket object
            handle.seek(0)
            entries_end = size - len(_MANIFEST_TAIL)
            if handle.read(len(_MANIFEST_HEAD)) != _MANIFEST_HEAD:
                raise StorageError(f"the manifest of {record.artifact_id} is not a directory manifest; re-save it")
            start = offset or len(_MANIFEST_HEAD)
            if offset:
                handle.seek(offset - 1)
                if offset >= entries_end or handle.read(1 + len(_ENTRY_START)) != b"," + _ENTRY_START:
                    raise InvalidInput(
                        f"offset {offset} is not the start of an entry of directory {record.artifact_id}'s manifest; "
                        "read from offset 0, then pass each answer's next_offset"
                    )
            window = max(budget, 64)
            while True:
                if start + window >= entries_end:
                    handle.seek(start)
                    body = handle.read(max(entries_end - start, 0))
                    end, next_offset = entries_end, None
                    break
                handle.seek(start)
                raw = handle.read(window + len(_ENTRY_START) + 1)
                cut = raw.rfind(b"}," + _ENTRY_START)  # its "}" lies within the window
                if cut >= 0:
                    body = raw[: cut + 1]
                    end = next_offset = start + cut + 2
                    break
                window *= 2  # one entry longer than the budget: it still comes whole
        text = (_MANIFEST_HEAD + body + _MANIFEST_TAIL).decode("utf-8")
        return _ManifestPage(text, end, size, next_offset)

    def as_local_file(self, ref: str | ArtifactRecord) -> Path:
        """A local path holding the content: the read-only blob for a file, a materialised tree for a directory.

        Concurrent callers are safe: each builds its own pid-named staging tree and renames
        it into place without replacing; a loser of that race discards its tree and uses
        the winner's, which is complete because the rename is atomic.
        """
        record = self.get(ref)
        if not record.is_dir:
            return self._blobs.local_path(record.sha256)
        target = self._ctx.data_dir / "materialized" / record.sha256
        if not target.is_dir():
            # The data directory is the operator's: it is the root here, and nothing else is.
            inside = LocalAccess.create((self._ctx.data_dir,), None)
            self._write_tree(record, inside, target)
        return target

    def materialize(self, ref: str | ArtifactRecord, dest: str | os.PathLike[str]) -> Path:
        """Write a directory (or file) artifact out to ``dest``, which must not exist yet.

        The tree appears atomically: it is built next to ``dest`` and renamed into place,
        all through directory descriptors opened without following symlinks.

        Raises:
            InvalidInput: ``dest`` already exists.
            AccessDenied: ``dest`` is outside the allowed roots or inside the data directory.
        """
        record = self.get(ref)
        access = LocalAccess.of(self._config)
        dest_path = access.check(dest, must_exist=False)
        if record.is_dir:
            if not self._write_tree(record, access, dest):
                raise InvalidInput(f"destination {dest_path} already exists; choose a new path")
            return dest_path
        parent, name = access.open_parent(dest)
        ledger = StagingLedger(self._ctx.data_dir)  # records the temp: a killed writer's is swept at start-up
        with FileWriter(parent, name, replace=False, ledger=ledger) as out, self._blobs.open(record.sha256) as blob:
            shutil.copyfileobj(blob, out.handle)
        return dest_path

    def _write_tree(self, record: ArtifactRecord, access: LocalAccess, dest: str | os.PathLike[str]) -> bool:
        """Build the tree of a directory artifact at ``dest``; False when ``dest`` already existed."""
        parent, name = access.open_parent(dest)
        try:
            # Recorded in the ledger first, so a killed writer's half-built tree is swept at start-up.
            tree = TreeWriter(parent, name, ledger=StagingLedger(self._ctx.data_dir))
        except BaseException:
            parent.close()
            raise
        try:
            for entry in json.loads(self._blobs.read(record.sha256))["entries"]:
                with self._blobs.open(entry["sha256"]) as blob:
                    tree.add(entry["path"], iter(lambda blob=blob: blob.read(1 << 20), b""))  # type: ignore[misc]
        except BaseException:
            tree.abort()
            raise
        return tree.commit()

    # -- querying --------------------------------------------------------------------------------

    def _where(
        self,
        *,
        kind: str | None = None,
        labels: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        metrics: Mapping[str, Mapping[str, float]] | None = None,
        scope: Scope = "all",
        graph_id: str | None = None,
        node_id: str | None = None,
    ) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        dialect = self._db.dialect
        if kind:
            clauses.append("artifacts.kind = ?")
            params.append(check.short(kind, field="kind", max_chars=128))
        for key, value in check.labels(labels, config=self._config).items():
            _check_key(key, "labels")
            # Typed reads keep the JSON types apart: a filter 1 matches neither "1" nor true.
            if isinstance(value, bool):
                sql, args = dialect.json_bool("artifacts.labels", key)
                value = int(value)
            elif isinstance(value, int | float):
                _check_bound(value, f"labels[{key!r}]")
                sql, args = dialect.json_number("artifacts.labels", key)
            else:
                sql, args = dialect.json_text("artifacts.labels", key)
            clauses.append(f"{sql} = ?")
            params += [*args, value]
        for tag in check.tags(tags, config=self._config):
            sql, args = dialect.json_array_contains("artifacts.tags", tag)
            clauses.append(sql)
            params += args
        for name, conditions in (metrics or {}).items():
            _check_key(name, "metrics")
            if not isinstance(conditions, Mapping) or not conditions:
                raise InvalidInput(f'metrics filter for {name!r} must be like {{">=": 0.9}}')
            for op, bound in conditions.items():
                if op not in _METRIC_OPS:
                    raise InvalidInput(f"metric operator {op!r} is not valid; use one of {', '.join(_METRIC_OPS)}")
                if isinstance(bound, bool) or not isinstance(bound, int | float):
                    raise InvalidInput(f"metric bound for {name!r} {op} must be a number, got {bound!r}")
                _check_bound(bound, f"metric bound for {name!r} {op}")
                sql, args = dialect.json_number("artifacts.metrics", name)
                clauses.append(f"{sql} {_METRIC_OPS[op]} ?")
                params += [*args, bound]
        clauses += self._scope_clause(scope, graph_id, node_id, params)
        return clauses, params

    def _scope_clause(self, scope: str, graph_id: str | None, node_id: str | None, params: list[Any]) -> list[str]:
        if scope == "all":
            return []
        if scope == "run":
            params.append(self._ctx.run_id)
            return ["run_id = ?"]
        if scope == "graph":
            if not graph_id:
                raise InvalidInput("scope='graph' needs graph_id")
            params.append(graph_id)
            return ["graph_id = ?"]
        if scope == "node":
            if not node_id:
                raise InvalidInput("scope='node' needs node_id")
            params.append(node_id)
            return ["node_id = ?"]
        raise InvalidInput(f"scope={scope!r} is not valid; use all, run, graph or node")

    def search(
        self,
        *,
        kind: str | None = None,
        labels: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        metrics: Mapping[str, Mapping[str, float]] | None = None,
        scope: Scope = "all",
        graph_id: str | None = None,
        node_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        query: str | None = None,
        mode: str = "hybrid",
        progress: SearchProgressFn | None = None,
    ) -> ArtifactPage:
        """Records matching every filter, newest first, one page at a time (no filters lists all).

        With ``query`` they come most relevant first instead (name, kind, labels and text
        preview, matched by words and meaning; ``mode``: hybrid, semantic or lexical).
        """
        limit = check.limit(limit, config=self._config)
        clauses, params = self._where(
            kind=kind, labels=labels, tags=tags, metrics=metrics, scope=scope, graph_id=graph_id, node_id=node_id
        )
        if query is not None:
            return self._ranked(query, mode, clauses, params, limit, cursor, progress)
        rows, next_cursor = check.newest_first_page(self._db, "artifacts", clauses, params, limit, cursor)
        return ArtifactPage(items=[_record(r) for r in rows], next_cursor=next_cursor)

    def _ranked(
        self, query: str, mode: str, clauses: list[str], params: list[Any], limit: int, cursor: str | None,
        progress: SearchProgressFn | None,
    ) -> ArtifactPage:  # fmt: skip
        if self._search is None:
            raise InvalidInput("this artifact store was opened without a search index; use MemoryStore.artifacts")
        ranking = self._search.rank(
            "artifacts", query, mode=mode, limit=limit, offset=check.decode_cursor(cursor) or 0, progress=progress,
            filter=SourceFilter("artifacts", "artifacts.artifact_id = d.item_id", " AND ".join(clauses), params),
        )  # fmt: skip
        ids = [r.item_id for r in ranking.items]
        rows = (  # PostgreSQL refuses an empty IN ()
            self._db.query(f"SELECT * FROM artifacts WHERE artifact_id IN ({','.join('?' * len(ids))})", ids)
            if ids
            else []
        )
        found = {row["artifact_id"]: _record(row) for row in rows}
        kept = [r for r in ranking.items if r.item_id in found]
        return ArtifactPage(
            items=[found[r.item_id] for r in kept], scores=[r.score for r in kept], mode=ranking.mode,
            warning=ranking.warning,
            next_cursor=None if ranking.next_offset is None else check.encode_cursor(ranking.next_offset),
        )  # fmt: skip

    def list(
        self,
        *,
        kind: str | None = None,
        scope: Scope = "all",
        graph_id: str | None = None,
        node_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> ArtifactPage:
        """Every record in ``scope`` (``arts.list(scope="run")``: what this run produced), newest first."""
        return self.search(kind=kind, scope=scope, graph_id=graph_id, node_id=node_id, limit=limit, cursor=cursor)

    def best(
        self,
        metric: str,
        *,
        kind: str | None = None,
        mode: Literal["max", "min"] = "max",
        scope: Scope = "all",
        labels: Mapping[str, Any] | None = None,
        graph_id: str | None = None,
        node_id: str | None = None,
    ) -> ArtifactRecord | None:
        """The record with the best ``metrics[metric]``; records without it are ignored, ties go to the earliest."""
        if mode not in ("max", "min"):
            raise InvalidInput(f"mode={mode!r} is not valid; use max or min")
        metric = _check_key(check.short(metric, field="metric", max_chars=128), "metric")
        clauses, params = self._where(kind=kind, labels=labels, scope=scope, graph_id=graph_id, node_id=node_id)
        value, value_params = self._db.dialect.json_number("artifacts.metrics", metric)
        clauses.append(f"{value} IS NOT NULL")
        order = "DESC" if mode == "max" else "ASC"
        rows = self._db.query(
            f"SELECT * FROM artifacts WHERE {' AND '.join(clauses)} ORDER BY {value} {order}, seq ASC LIMIT 1",
            (*params, *value_params, *value_params),
        )
        return _record(rows[0]) if rows else None

    # -- changing --------------------------------------------------------------------------------

    def pin(
        self, ref: str | ArtifactRecord | None = None, pinned: bool = True, *, artifact_id: str | None = None
    ) -> ArtifactRecord:
        """Pin (or unpin) a record; pinned records are never removed by gc or delete.

        The record is ``ref`` (an id, ``cas://`` URI or record) or, as AetherGraph calls it, ``artifact_id=``.

        Raises:
            InvalidInput: neither or both of ``ref`` and ``artifact_id`` given. NotFound: no such record.
        """
        if (ref is None) == (artifact_id is None):
            raise InvalidInput("pin needs exactly one record: pin(ref) or pin(artifact_id=...)")
        record = self.get(ref if ref is not None else str(artifact_id))
        with self._db.write() as conn:
            conn.execute("UPDATE artifacts SET pinned = ? WHERE artifact_id = ?", (int(pinned), record.artifact_id))
        return self.get(record.artifact_id)

    def delete(self, ref: str | ArtifactRecord) -> DeleteReport:
        """Delete one record (its blob goes at the next gc if nothing else uses it).

        Raises:
            NotFound: no such record. AccessDenied: the record is pinned.
        """
        record = self.get(ref)
        if record.pinned:
            raise AccessDenied(f"artifact {record.artifact_id} is pinned; unpin it (artifact_pin pinned=false) first")
        with self._db.write() as conn:
            deleted = conn.execute("DELETE FROM artifacts WHERE artifact_id = ?", (record.artifact_id,)).rowcount
        return DeleteReport(
            deleted=bool(deleted),
            artifact_id=record.artifact_id,
            message="deleted; its blob is freed by the next gc if nothing else references it",
        )

    def expired(self, before: str) -> builtins.list[str]:
        """Ids of unpinned records created before ``before`` (for gc)."""
        rows = self._db.query("SELECT artifact_id FROM artifacts WHERE pinned = 0 AND created_at < ?", (before,))
        return [r[0] for r in rows]

    def delete_many(self, conn: Connection, artifact_ids: Sequence[str]) -> int:
        return sum(
            conn.execute("DELETE FROM artifacts WHERE artifact_id = ? AND pinned = 0", (i,)).rowcount
            for i in artifact_ids
        )

    def count(self) -> int:
        return int(self._db.query("SELECT COUNT(*) FROM artifacts")[0][0])


def _preview_ref(value: Any) -> str | None:
    """``preview_uri`` as given: an artifact's ``cas://`` URI or id (resolved by ``Artifacts._preview_uri``)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"preview_uri must be an artifact's uri (cas://sha256/…) or id, got {type(value).__name__}")
    if value.startswith("cas://"):
        try:
            parse_uri(value)  # a malformed address is bad input, not a missing artifact
        except InvalidInput as exc:
            raise InvalidInput(f"preview_uri: {exc}") from None
    return check.short(value, field="preview_uri", max_chars=256)


def _raise_empty(field: str) -> str:
    raise InvalidInput(f"{field} must not be empty")


def _check_key(key: str, field: str) -> str:
    # SQLite's JSON path cannot quote a quote inside a key; both engines refuse the same names.
    if '"' in key or "\\" in key:
        raise InvalidInput(f"{field} name {key!r} must not contain quotes or backslashes")
    return key


def _check_bound(value: float, field: str) -> None:
    # One answer on both engines: SQLite cannot bind a wider integer, PostgreSQL would compare it.
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise InvalidInput(
            f"{field} is too large: integers must fit in 64 bits (-2**63 .. 2**63-1); use a smaller value"
        )


_MANIFEST_HEAD = b'{"entries":['
_MANIFEST_TAIL = b'],"type":"directory"}'
_ENTRY_START = b'{"bytes":'


@dataclass(frozen=True, slots=True)
class Chunk:
    """A bounded piece of an artifact's content; ``end`` is the blob offset just past it."""

    artifact: ArtifactRecord
    content: str | bytes
    offset: int
    end: int
    total_bytes: int
    next_offset: int | None


@dataclass(frozen=True, slots=True)
class _ManifestPage:
    text: str
    end: int
    size: int
    next_offset: int | None


def _incomplete_utf8_tail(raw: bytes) -> int:
    """How many bytes at the end of ``raw`` start a UTF-8 character that continues past it (0 to 3)."""
    for back in range(1, min(4, len(raw)) + 1):
        byte = raw[-back]
        if byte & 0xC0 != 0x80:  # a lead byte (or ASCII): does its sequence fit?
            need = 1 if byte < 0x80 else 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4
            return back if need > back else 0
    return 0


def _manifest_bytes(entries: list[dict[str, Any]]) -> bytes:
    return check.canonical_json({"type": "directory", "entries": entries}).encode("utf-8")


def _preview(head: bytes, mime: str, size: int) -> str:
    if _is_textual(mime) or mime == "application/octet-stream":
        text, _ = check.utf8_prefix(head, final=len(head) >= size)
        if text is not None and (_is_textual(mime) or text.isprintable() or "\n" in text):
            # A preview is for people: a NUL (which PostgreSQL's text cannot hold) shows as
            # U+FFFD on both engines; the content itself is the blob, byte for byte.
            text = text.replace("\x00", "\ufffd")
            return text[:_PREVIEW_CHARS] + ("…" if len(text) > _PREVIEW_CHARS or size > len(head) else "")
    return f"binary, {size} bytes ({mime})"


def _record(row: Row) -> ArtifactRecord:
    return ArtifactRecord(
        artifact_id=row["artifact_id"],
        uri=URI_PREFIX + row["sha256"],
        kind=row["kind"],
        name=row["name"],
        mime=row["mime"],
        sha256=row["sha256"],
        bytes=row["bytes"],
        labels=json.loads(row["labels"]),
        metrics=json.loads(row["metrics"]),
        tags=json.loads(row["tags"]),
        run_id=row["run_id"],
        graph_id=row["graph_id"],
        node_id=row["node_id"],
        created_at=row["created_at"],
        pinned=bool(row["pinned"]),
        preview=row["preview"],
        preview_uri=row["preview_uri"],
        is_dir=bool(row["is_dir"]),
    )
