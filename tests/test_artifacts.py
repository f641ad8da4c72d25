"""Artifacts through the Python API, against a real blob folder and a real engine (SQLite or PostgreSQL)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest

from mcp_memory_server import AccessDenied, InvalidInput, LimitExceeded, MemoryStore, NotFound


def blob_files(store: MemoryStore) -> list[Path]:
    return [p for p in (store.data_dir / "blobs" / "sha256").rglob("*") if p.is_file()]


def test_identical_bytes_are_stored_once_under_one_uri(store: MemoryStore) -> None:
    """Two records with the same bytes share one blob file and one cas:// URI."""
    first = store.artifacts.save_text("same bytes", kind="note", name="a")
    second = store.artifacts.save_text("same bytes", kind="note", name="b")
    assert first.artifact_id != second.artifact_id
    assert first.uri == second.uri == "cas://sha256/" + hashlib.sha256(b"same bytes").hexdigest()
    assert len(blob_files(store)) == 1


def test_resaving_identical_content_and_metadata_returns_the_existing_record(store: MemoryStore) -> None:
    """Saving is idempotent for identical content, kind, name, labels, metrics and scope."""
    meta = {"name": "r", "labels": {"model": "small", "seed": 1}, "metrics": {"acc": 0.5}, "tags": ["x"]}
    first = store.artifacts.save_text("report", kind="report", **meta)
    again = store.artifacts.save_text("report", kind="report", **meta)
    assert again == first
    assert store.artifacts.count() == 1


def test_blob_files_are_read_only_and_named_by_their_digest(store: MemoryStore) -> None:
    """A stored blob sits at blobs/sha256/ab/cd/<hex>, is read-only, and hashes to its name."""
    record = store.artifacts.save_bytes(b"\x00\x01binary", kind="blob")
    path = store.data_dir / "blobs" / "sha256" / record.sha256[:2] / record.sha256[2:4] / record.sha256
    assert hashlib.sha256(path.read_bytes()).hexdigest() == record.sha256
    assert not os.access(path, os.W_OK) or os.geteuid() == 0
    assert path.stat().st_mode & 0o222 == 0


def test_directory_round_trips_to_an_identical_tree(store: MemoryStore, tmp_path: Path) -> None:
    """A saved directory materialises back with the same relative paths and bytes."""
    source = tmp_path / "tree"
    (source / "sub" / "deeper").mkdir(parents=True)
    (source / "a.txt").write_text("alpha")
    (source / "sub" / "b.bin").write_bytes(os.urandom(5000))
    (source / "sub" / "deeper" / "c.json").write_text('{"c": 1}')
    (source / "empty.txt").write_bytes(b"")
    record = store.artifacts.save_file(source, kind="dataset")
    assert record.is_dir and record.bytes == 5 + 5000 + 8

    out = store.artifacts.materialize(record, tmp_path / "copy")

    def tree(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    assert tree(out) == tree(source)
    manifest = json.loads(store.artifacts.read(record).content or "")
    assert [e["path"] for e in manifest["entries"]] == ["a.txt", "empty.txt", "sub/b.bin", "sub/deeper/c.json"]
    assert store.artifacts.as_local_file(record).is_dir()


def test_directory_uri_is_the_hash_of_its_manifest(store: MemoryStore, tmp_path: Path) -> None:
    """The same tree saved twice gives the same URI; a changed file changes it."""
    source = tmp_path / "t"
    source.mkdir()
    (source / "f").write_text("1")
    first = store.artifacts.save_file(source, kind="d")
    assert store.artifacts.save_file(source, kind="d").uri == first.uri
    (source / "f").write_text("2")
    assert store.artifacts.save_file(source, kind="d").uri != first.uri


def test_writer_commits_atomically_on_clean_exit(store: MemoryStore) -> None:
    """Bytes streamed through writer() become one record when the block ends."""
    with store.artifacts.writer(kind="log", planned_ext=".txt") as out:
        out.write("line 1\n")
        out.write(b"line 2\n")
    assert out.record is not None
    assert store.artifacts.read_bytes(out.record) == b"line 1\nline 2\n"
    assert out.record.mime == "text/plain"


def test_writer_that_raises_leaves_no_record_blob_or_temp_file(store: MemoryStore) -> None:
    """An exception inside writer() leaves nothing behind."""
    with pytest.raises(RuntimeError), store.artifacts.writer(kind="log") as out:
        out.write(b"partial data")
        raise RuntimeError("boom")
    assert store.artifacts.count() == 0
    assert blob_files(store) == []
    assert list((store.data_dir / "blobs").glob(".tmp-*")) == []


def test_best_ignores_records_without_the_metric_and_honours_mode(store: MemoryStore) -> None:
    """best() picks max or min of a metric and skips records that lack it."""
    store.artifacts.save_text("a", kind="ckpt", metrics={"acc": 0.7})
    high = store.artifacts.save_text("b", kind="ckpt", metrics={"acc": 0.9})
    low = store.artifacts.save_text("c", kind="ckpt", metrics={"acc": 0.1, "loss": 3.0})
    store.artifacts.save_text("d", kind="ckpt", metrics={"loss": 0.01})
    assert store.artifacts.best("acc", kind="ckpt", mode="max") == high
    assert store.artifacts.best("acc", kind="ckpt", mode="min") == low
    assert store.artifacts.best("f1", kind="ckpt") is None


def test_best_breaks_ties_by_the_earliest_record(store: MemoryStore) -> None:
    """Equal metric values go to the record saved first."""
    first = store.artifacts.save_text("first", kind="ckpt", metrics={"acc": 0.5})
    store.artifacts.save_text("second", kind="ckpt", metrics={"acc": 0.5})
    assert store.artifacts.best("acc", mode="max") == first
    assert store.artifacts.best("acc", mode="min") == first


def test_best_with_run_scope_sees_only_the_current_run(data_dir: Path) -> None:
    """scope='run' ignores records saved by an earlier run of the server."""
    with MemoryStore.open(data_dir, run_id="run_old") as old:
        old.artifacts.save_text("old", kind="ckpt", metrics={"acc": 0.99})
    with MemoryStore.open(data_dir, run_id="run_new") as new:
        mine = new.artifacts.save_text("new", kind="ckpt", metrics={"acc": 0.5})
        assert new.artifacts.best("acc", scope="run") == mine
        assert new.artifacts.best("acc", scope="all").run_id == "run_old"  # type: ignore[union-attr]


def test_search_filters_by_kind_labels_tags_and_metrics(store: MemoryStore) -> None:
    """Every given filter must match: exact labels, all tags, metric conditions."""
    a = store.artifacts.save_text("a", kind="report", labels={"model": "big", "seed": 1}, tags=["x", "y"],
                                  metrics={"acc": 0.95})  # fmt: skip
    store.artifacts.save_text("b", kind="report", labels={"model": "small", "seed": 1}, tags=["x"],
                              metrics={"acc": 0.80})  # fmt: skip
    store.artifacts.save_text("c", kind="plot", labels={"model": "big"})
    search = store.artifacts.search
    assert [r.artifact_id for r in search(kind="report", labels={"model": "big"}).items] == [a.artifact_id]
    assert [r.artifact_id for r in search(tags=["x", "y"]).items] == [a.artifact_id]
    assert [r.artifact_id for r in search(metrics={"acc": {">=": 0.9}}).items] == [a.artifact_id]
    assert len(search(labels={"seed": 1}).items) == 2
    assert search(labels={"seed": "1"}).items == []  # a string label never equals a number


def test_label_filters_keep_json_types_apart(store: MemoryStore) -> None:
    """A label filter matches its own JSON type only: 1 is not "1" nor true, 0 is not false; 1 equals 1.0."""
    save = store.artifacts.save_text
    one = save("one", kind="k", labels={"v": 1})
    one_float = save("one float", kind="k", labels={"v": 1.0})
    one_text = save("one text", kind="k", labels={"v": "1"})
    true = save("true", kind="k", labels={"v": True})
    zero = save("zero", kind="k", labels={"v": 0})
    false = save("false", kind="k", labels={"v": False})
    save("other key", kind="k", labels={"w": 1})

    def ids(value: object) -> set[str]:
        return {r.artifact_id for r in store.artifacts.search(labels={"v": value}).items}

    assert ids(1) == {one.artifact_id, one_float.artifact_id}
    assert ids(1.0) == {one.artifact_id, one_float.artifact_id}
    assert ids("1") == {one_text.artifact_id}
    assert ids(True) == {true.artifact_id}
    assert ids(0) == {zero.artifact_id}
    assert ids(False) == {false.artifact_id}
    assert ids("true") == set()
    assert ids(2) == set()


def test_label_keys_and_values_with_sql_and_json_punctuation_match_exactly(store: MemoryStore) -> None:
    """Keys holding dots, brackets, $ or spaces and values holding %, ? or ' are plain text to the filter."""
    odd = store.artifacts.save_text("odd", kind="k", labels={"a.b [0] $x": "50% done? it's 'fine'", "é": "ü"},
                                    tags=["100%", "why?"])  # fmt: skip
    store.artifacts.save_text("plain", kind="k", labels={"a": 1, "é": "u"}, tags=["100", "why"])
    search = store.artifacts.search
    assert [r.artifact_id for r in search(labels={"a.b [0] $x": "50% done? it's 'fine'"}).items] == [odd.artifact_id]
    assert [r.artifact_id for r in search(labels={"é": "ü"}).items] == [odd.artifact_id]
    assert search(labels={"a.b [0] $x": "50% done"}).items == []  # equality, not a pattern
    assert [r.artifact_id for r in search(tags=["100%"]).items] == [odd.artifact_id]
    assert [r.artifact_id for r in search(tags=["why?", "100%"]).items] == [odd.artifact_id]
    assert search(tags=["10"]).items == []  # a whole tag, not a prefix


def test_metric_filters_compare_integers_and_floats_by_value(store: MemoryStore) -> None:
    """Metric conditions compare numbers (2 == 2.0, 10 > 9.5) and skip records without the metric."""
    save = store.artifacts.save_text
    two = save("two", kind="k", metrics={"n": 2})
    two_float = save("two float", kind="k", metrics={"n": 2.0})
    half = save("two and a half", kind="k", metrics={"n": 2.5})
    ten = save("ten", kind="k", metrics={"n": 10})
    negative = save("negative", kind="k", metrics={"n": -3.25})
    save("no n", kind="k", metrics={"m": 2})

    def ids(conditions: dict[str, float]) -> set[str]:
        return {r.artifact_id for r in store.artifacts.search(metrics={"n": conditions}).items}

    assert ids({"==": 2}) == {two.artifact_id, two_float.artifact_id}
    assert ids({"==": 2.0}) == {two.artifact_id, two_float.artifact_id}
    assert ids({"!=": 2}) == {half.artifact_id, ten.artifact_id, negative.artifact_id}
    assert ids({">": 9.5}) == {ten.artifact_id}
    assert ids({">": 2, "<": 10}) == {half.artifact_id}
    assert ids({">=": 2.5, "<=": 10}) == {half.artifact_id, ten.artifact_id}
    assert ids({"<": 0}) == {negative.artifact_id}
    assert ids({">": 2**62}) == set()


def test_best_orders_by_number_not_text_and_ties_go_to_the_earliest(store: MemoryStore) -> None:
    """10 beats 9.5 and 2 (a text order would not); 2 and 2.0 tie, so min is the one saved first."""
    save = store.artifacts.save_text
    two = save("two", kind="k", metrics={"n": 2})
    save("two float", kind="k", metrics={"n": 2.0})
    save("nine and a half", kind="k", metrics={"n": 9.5})
    ten = save("ten", kind="k", metrics={"n": 10})
    save("no n", kind="k", metrics={"m": 100})
    assert store.artifacts.best("n", mode="max") == ten
    assert store.artifacts.best("n", mode="min") == two
    assert store.artifacts.best("n", mode="max", labels={"x": 1}) is None


def test_ranked_search_applies_the_typed_filters_too(store: MemoryStore) -> None:
    """With a query, labels, tags and metrics filter the ranked hits exactly as they filter a listing."""
    save = store.artifacts.save_text
    wanted = save("garden notes about tomatoes", kind="note", labels={"v": 1}, tags=["g"], metrics={"m": 2})
    save("garden notes about tomatoes again", kind="note", labels={"v": "1"}, tags=["g"], metrics={"m": 2})
    save("garden notes about tomatoes once more", kind="note", labels={"v": 1}, tags=["h"], metrics={"m": 2})
    save("garden notes about tomatoes, last", kind="note", labels={"v": 1}, tags=["g"], metrics={"m": 1.5})
    page = store.artifacts.search(
        query="garden tomatoes", mode="lexical", labels={"v": 1}, tags=["g"], metrics={"m": {">=": 2}}
    )
    assert [r.artifact_id for r in page.items] == [wanted.artifact_id]
    assert store.artifacts.search(query="garden", mode="lexical", labels={"v": True}).items == []


def test_concurrent_saves_of_the_same_content_and_metadata_make_one_record(data_dir: Path) -> None:
    """Two stores on one database, several threads each, saving identical artifacts at once: one record wins."""
    import threading

    with (
        MemoryStore.open(data_dir, run_id="run_same") as first,
        MemoryStore.open(data_dir, run_id="run_same") as second,
    ):
        start = threading.Barrier(8)
        results: list[str] = []
        errors: list[BaseException] = []

        def save(store: MemoryStore) -> None:
            try:
                start.wait()
                record = store.artifacts.save_text("same", kind="k", labels={"a": 1}, tags=["t"], metrics={"m": 1})
                results.append(record.artifact_id)
            except BaseException as exc:  # reported below, in the test thread
                errors.append(exc)

        threads = [threading.Thread(target=save, args=(s,)) for s in [first, second] * 4]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(results) == 8 and len(set(results)) == 1
        assert first.artifacts.count() == 1
        assert second.artifacts.get(results[0]).labels == {"a": 1}


def test_delete_reports_what_it_removed_and_a_second_delete_finds_nothing(store: MemoryStore) -> None:
    """delete removes exactly the record named; the other record sharing its blob stays."""
    kept = store.artifacts.save_text("shared", kind="a")
    gone = store.artifacts.save_text("shared", kind="b")
    report = store.artifacts.delete(gone.artifact_id)
    assert report.deleted and report.artifact_id == gone.artifact_id
    with pytest.raises(NotFound):
        store.artifacts.delete(gone.artifact_id)
    assert store.artifacts.get(kept.uri) == kept
    assert store.artifacts.count() == 1


def test_search_without_filters_lists_everything_page_by_page(store: MemoryStore) -> None:
    """No filters lists all records newest first; cursors walk every page exactly once."""
    saved = [store.artifacts.save_text(f"item {i}", kind="k").artifact_id for i in range(7)]
    seen: list[str] = []
    cursor = None
    while True:
        page = store.artifacts.search(limit=3, cursor=cursor)
        seen += [r.artifact_id for r in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == list(reversed(saved))


def test_pin_protects_from_delete_and_gc(store: MemoryStore) -> None:
    """A pinned record refuses delete and survives gc; unpinned it can be deleted."""
    record = store.artifacts.save_text("keep me", kind="k", pin=True)
    with pytest.raises(AccessDenied, match="pinned"):
        store.artifacts.delete(record.artifact_id)
    report = store.gc(older_than_days=0, dry_run=False)
    assert report.records_removed == 0
    assert store.artifacts.get(record.artifact_id).pinned
    store.artifacts.pin(record.artifact_id, False)
    assert store.artifacts.delete(record.artifact_id).deleted
    with pytest.raises(NotFound):
        store.artifacts.get(record.artifact_id)


def test_gc_is_a_dry_run_by_default_and_then_frees_unreferenced_blobs(store: MemoryStore) -> None:
    """gc reports without deleting unless told; then old records and their blobs go."""
    record = store.artifacts.save_text("temporary", kind="k")
    kept = store.artifacts.save_text("kept", kind="k", pin=True)
    # Age every blob past gc's grace period for in-flight saves.
    for path in blob_files(store):
        os.utime(path, (0, 0))
    dry = store.gc(older_than_days=0)
    assert dry.dry_run and dry.records_removed == 1 and dry.blobs_removed == 1
    assert store.artifacts.get(record.artifact_id) == record
    assert len(blob_files(store)) == 2
    real = store.gc(older_than_days=0, dry_run=False)
    assert (real.records_removed, real.blobs_removed) == (1, 1)
    assert [p.name for p in blob_files(store)] == [kept.sha256]


def test_read_returns_binary_in_bounded_base64_chunks(data_dir: Path) -> None:
    """Binary content comes back in chunks no larger than the response limit, resumable by offset."""
    import base64

    payload = os.urandom(10_000)
    with MemoryStore.open(data_dir, max_response_bytes=4096) as store:
        record = store.artifacts.save_bytes(payload, kind="bin")
        got = b""
        offset: int | None = 0
        while offset is not None:
            chunk = store.artifacts.read(record, offset=offset)
            assert chunk.encoding == "base64"
            assert len(chunk.content or "") <= 4096
            got += base64.b64decode(chunk.content or "")
            offset = chunk.next_offset
        assert got == payload


def test_read_text_chunks_never_split_a_character(data_dir: Path) -> None:
    """Text read in chunks reassembles exactly, even with multi-byte characters at the cut."""
    text = "é€😀a" * 3000
    with MemoryStore.open(data_dir, max_response_bytes=1000) as store:
        record = store.artifacts.save_text(text, kind="t")
        parts = []
        offset: int | None = 0
        while offset is not None:
            chunk = store.artifacts.read(record, offset=offset)
            parts.append(chunk.content or "")
            offset = chunk.next_offset
        assert "".join(parts) == text


def test_read_by_path_returns_a_local_file_with_the_content(store: MemoryStore) -> None:
    """encoding='path' returns a server-local path whose bytes are the artifact."""
    record = store.artifacts.save_bytes(b"abc", kind="b")
    content = store.artifacts.read(record.uri, encoding="path")
    assert Path(content.path or "").read_bytes() == b"abc"


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda a: a.save_text(123, kind="k"), InvalidInput, "text must be a string"),
        (lambda a: a.save_text("x", kind=""), InvalidInput, "kind must not be empty"),
        (lambda a: a.save_text("x", kind="k", labels={"a": [1]}), InvalidInput, "labels"),
        (lambda a: a.save_text("x", kind="k", metrics={"m": "high"}), InvalidInput, "finite number"),
        (lambda a: a.save_text("x", kind="k", metrics={"m": float("nan")}), InvalidInput, "finite number"),
        (lambda a: a.save_text("x", kind="k", tags=[str(i) for i in range(65)]), LimitExceeded, "limit of 64"),
        (lambda a: a.save_json({"a": float("inf")}, kind="k"), InvalidInput, "JSON cannot represent"),
        (lambda a: a.save_text("x", kind="k", colour="red"), InvalidInput, "unknown artifact field"),
        (lambda a: a.get("cas://sha256/xyz"), InvalidInput, "not a sha256 digest"),
        (lambda a: a.get("art_missing"), NotFound, "no artifact"),
        (lambda a: a.search(cursor="bogus!"), InvalidInput, "not a cursor"),
        (lambda a: a.search(limit=0), InvalidInput, "positive integer"),
        (lambda a: a.search(limit=10_000), LimitExceeded, "page size limit"),
        (lambda a: a.search(metrics={"acc": {"~": 1}}), InvalidInput, "operator"),
        (lambda a: a.search(scope="graph"), InvalidInput, "needs graph_id"),
        (lambda a: a.best("acc", mode="median"), InvalidInput, "use max or min"),
        # Names SQLite's JSON path cannot quote are refused on both engines alike.
        (lambda a: a.search(labels={'say"hi': 1}), InvalidInput, "must not contain quotes or backslashes"),
        (lambda a: a.search(metrics={"a\\b": {">": 1}}), InvalidInput, "must not contain quotes or backslashes"),
        (lambda a: a.best('acc"'), InvalidInput, "must not contain quotes or backslashes"),
        # Integers past 64 bits: SQLite cannot bind them, so neither engine compares them.
        (lambda a: a.search(labels={"seed": 2**63}), InvalidInput, "must fit in 64 bits"),
        (lambda a: a.search(metrics={"acc": {">": -(2**63) - 1}}), InvalidInput, "must fit in 64 bits"),
    ],
)
def test_bad_input_is_refused_with_a_message_and_changes_nothing(
    store: MemoryStore, call: object, error: type[Exception], message: str
) -> None:
    """Each bad argument raises a named error explaining itself, and nothing is stored."""
    with pytest.raises(error, match=message):
        call(store.artifacts)  # type: ignore[operator]
    assert store.artifacts.count() == 0
    assert blob_files(store) == []


def test_too_deep_json_is_refused(store: MemoryStore) -> None:
    """JSON nested past max_json_depth is refused before anything is written."""
    deep: object = 1
    for _ in range(40):
        deep = [deep]
    with pytest.raises(LimitExceeded, match="max_json_depth"):
        store.artifacts.save_json(deep, kind="k")
    assert store.artifacts.count() == 0


def test_paths_outside_the_allowed_roots_are_refused_also_through_symlinks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file outside the allowed roots, directly or via a symlink inside one, is refused."""
    outside = Path("/etc/hostname") if Path("/etc/hostname").exists() else Path("/etc/passwd")
    monkeypatch.chdir(tmp_path)
    with MemoryStore.open(tmp_path / "store") as store:
        with pytest.raises(AccessDenied, match="outside the allowed roots"):
            store.artifacts.save_file(outside, kind="f")
        link = tmp_path / "link"
        link.symlink_to(outside)
        with pytest.raises(AccessDenied, match="outside the allowed roots"):
            store.artifacts.save_file(link, kind="f")
        tree = tmp_path / "tree"
        tree.mkdir()
        (tree / "inner").symlink_to(outside)
        with pytest.raises(AccessDenied, match="outside the allowed roots"):
            store.artifacts.save_file(tree, kind="d")
        assert store.artifacts.count() == 0


def test_fifos_and_devices_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Special files cannot be ingested even under an allowed root."""
    monkeypatch.chdir(tmp_path)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with MemoryStore.open(tmp_path / "store", allow_path=["/dev"]) as store:
        with pytest.raises(AccessDenied, match="FIFO, socket or device"):
            store.artifacts.save_file(fifo, kind="f")
        with pytest.raises(AccessDenied, match="FIFO, socket or device"):
            store.artifacts.save_file("/dev/null", kind="f")


def test_opening_a_store_from_a_newer_version_fails_clearly(data_dir: Path) -> None:
    """A schema version above what this program knows is refused with an upgrade hint."""
    from mcp_memory_server import StorageError

    with MemoryStore.open(data_dir) as store, store.db.write() as conn:
        conn.execute("INSERT INTO schema_migrations VALUES ('artifacts', 99, 'now')")
    with pytest.raises(StorageError, match="newer mcp-memory-server"):
        MemoryStore.open(data_dir)


# -- preview_uri ---------------------------------------------------------------------------------


def test_a_record_names_its_preview_by_the_previews_uri_or_id(store: MemoryStore, tmp_path: Path) -> None:
    """save_file/save_text/writer take preview_uri (an artifact's uri or id); the record keeps its cas:// address."""
    thumb = store.artifacts.save_bytes(b"\x89PNG thumbnail", "thumbnail", mime="image/png")
    plot = tmp_path / "loss.png"
    plot.write_bytes(b"\x89PNG full-size plot")
    by_uri = store.artifacts.save_file(plot, "plot", preview_uri=thumb.uri)
    by_id = store.artifacts.save_text("the report", "report", preview_uri=thumb.artifact_id)
    with store.artifacts.writer("plot", planned_ext=".png", preview_uri=thumb.uri) as writer:
        writer.write(b"\x89PNG streamed")
    assert by_uri.preview_uri == by_id.preview_uri == thumb.uri
    assert writer.record is not None and writer.record.preview_uri == thumb.uri
    assert store.artifacts.get(by_uri.artifact_id).preview_uri == thumb.uri  # read back from the table
    preview = store.artifacts.read(by_uri.preview_uri, encoding="base64")
    assert preview.content == base64.b64encode(b"\x89PNG thumbnail").decode()


def test_without_a_preview_the_field_is_absent(store: MemoryStore) -> None:
    """A record saved without preview_uri has none (and lean answers drop the null)."""
    record = store.artifacts.save_text("plain", "note")
    assert record.preview_uri is None
    assert "preview_uri" not in record.model_dump(exclude_none=True)


def test_the_preview_is_part_of_what_makes_a_record_the_same(store: MemoryStore) -> None:
    """Same content and metadata with another preview is a new record; with the same preview, the existing one."""
    first_thumb = store.artifacts.save_bytes(b"thumb 1", "thumbnail")
    second_thumb = store.artifacts.save_bytes(b"thumb 2", "thumbnail")
    plain = store.artifacts.save_text("chart data", "plot")
    first = store.artifacts.save_text("chart data", "plot", preview_uri=first_thumb.uri)
    assert store.artifacts.save_text("chart data", "plot", preview_uri=first_thumb.artifact_id) == first
    second = store.artifacts.save_text("chart data", "plot", preview_uri=second_thumb.uri)
    assert len({plain.artifact_id, first.artifact_id, second.artifact_id}) == 3
    assert store.artifacts.save_text("chart data", "plot") == plain  # records without a preview keep their key


@pytest.mark.parametrize(
    ("preview_uri", "error", "message"),
    [
        ("cas://sha256/" + "0" * 64, NotFound, "names no artifact; save the preview first"),
        ("art_00000000000000000000000000", NotFound, "names no artifact"),
        ("cas://sha256/nothex", InvalidInput, "preview_uri: 'nothex' is not a sha256 digest"),
        (42, InvalidInput, "preview_uri must be an artifact's uri"),
    ],
)
def test_a_preview_that_names_no_artifact_is_refused_and_nothing_is_saved(
    store: MemoryStore, preview_uri: object, error: type[Exception], message: str
) -> None:
    """preview_uri must name an artifact of this store; otherwise the save is refused and stores nothing."""
    with pytest.raises(error) as info:
        store.artifacts.save_text("orphan", "report", preview_uri=preview_uri)
    assert message in str(info.value)
    assert store.artifacts.count() == 0


def test_the_morning_report_is_previewed_by_its_chart(store: MemoryStore) -> None:
    """experiment_report saves the chart, and the report's record names it as its preview."""
    store.lab.log("baseline", "keep", {"val_bpb": 1.0})
    report = store.lab.report()
    assert report.report_artifact_id is not None and report.chart_uri is not None
    assert store.artifacts.get(report.report_artifact_id).preview_uri == report.chart_uri


def test_text_with_a_nul_is_kept_byte_for_byte_and_previewed_on_every_engine(store: MemoryStore) -> None:
    """A NUL in saved text (PostgreSQL's text cannot hold one) is in the blob as given; the preview shows U+FFFD."""
    record = store.artifacts.save_text("before\x00after", "note")
    assert record.preview == "before\ufffdafter"
    assert store.artifacts.read(record.artifact_id, encoding="text").content == "before\x00after"


def test_gc_keeps_a_lab_runs_log_patch_summary_and_attachments(store: MemoryStore) -> None:
    """A run references its artifacts and gc never removes a run, so a retention keeps them too;
    an unrelated old record still goes (an outside attack found gc deleting a run's patch)."""
    attached = store.artifacts.save_text("eval table", kind="table")
    run = store.lab.log("lr 0.04", "keep", {"val_bpb": 0.99}, log_text="step 1\nval_bpb: 0.99\n",
                        patch="+lr=0.04\n", summary={"val_bpb": 0.99}, artifact_ids=[attached.artifact_id])  # fmt: skip
    assert {a.role for a in run.artifacts} == {"log", "patch", "summary", "attached"}
    loose = store.artifacts.save_text("scratch", kind="k")
    for path in blob_files(store):
        os.utime(path, (0, 0))
    assert store.gc(older_than_days=0).records_removed == 1  # the dry run counts the same
    report = store.gc(older_than_days=0, dry_run=False)
    assert (report.records_removed, report.blobs_removed) == (1, 1)
    with pytest.raises(NotFound):
        store.artifacts.get(loose.artifact_id)
    content = {a.role: store.artifacts.read_bytes(a.uri) for a in store.lab.get(run.run_id).artifacts}
    assert (content["log"], content["patch"], content["attached"]) == (b"step 1\nval_bpb: 0.99\n", b"+lr=0.04\n",
                                                                      b"eval table")  # fmt: skip
    assert json.loads(content["summary"])["run_id"] == run.run_id
