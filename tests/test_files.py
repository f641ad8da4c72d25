"""Memory files through the Python API, against a real SQLite file, blob folder and live tree."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mcp_memory_server import AccessDenied, Conflict, InvalidInput, MemoryStore, NotFound


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def live(store: MemoryStore, path: str, namespace: str = "default") -> Path:
    return store.data_dir / "files" / namespace / path


def snapshot(store: MemoryStore, namespace: str = "default") -> dict[str, Any]:
    """Everything a refused call must leave untouched: index, history, audit and the live tree."""
    files = store.files
    listing = files.list(namespace=namespace).items
    root = store.data_dir / "files" / namespace
    disk = {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".memory" not in p.parts
    }
    audit = files.audit_tail(500, namespace=namespace).audit
    return {"list": listing, "audit": audit, "disk": disk, "counts": files.counts()}


# -- expected_sha ----------------------------------------------------------------------------------


def test_write_without_expected_sha_overwrites_unconditionally(store: MemoryStore) -> None:
    """expected_sha=None writes whatever the current content is."""
    store.files.write("plan.md", "first")
    meta = store.files.write("plan.md", "second")
    assert meta.version == 2 and meta.sha256 == sha("second")
    assert store.files.read("plan.md").content == "second"
    assert live(store, "plan.md").read_text() == "second"


def test_create_only_write_succeeds_when_absent_and_is_refused_when_present(store: MemoryStore) -> None:
    """expected_sha='' creates a new path; on an existing one it fails naming the current sha and changes nothing."""
    created = store.files.write("profile.json", json={"name": "Ada"}, expected_sha="")
    assert created.version == 1
    before = snapshot(store)
    with pytest.raises(Conflict) as refused:
        store.files.write("profile.json", json={"name": "Bob"}, expected_sha="")
    assert created.sha256 in str(refused.value)
    assert snapshot(store) == before
    assert store.files.read_json("profile.json") == {"name": "Ada"}


def test_compare_and_swap_write_succeeds_on_the_current_sha_and_is_refused_on_a_stale_one(
    store: MemoryStore,
) -> None:
    """A digest writes only if it is the current content hash; a stale one fails naming the current sha."""
    first = store.files.write("notes.md", "v1")
    second = store.files.write("notes.md", "v2", expected_sha=first.sha256)
    assert second.version == 2
    before = snapshot(store)
    with pytest.raises(Conflict) as refused:
        store.files.write("notes.md", "v3 from a stale reader", expected_sha=first.sha256)
    assert second.sha256 in str(refused.value)
    assert snapshot(store) == before


def test_compare_and_swap_on_a_missing_path_is_refused_and_creates_nothing(store: MemoryStore) -> None:
    """A digest for a path that does not exist is a conflict, not a create."""
    before = snapshot(store)
    with pytest.raises(Conflict, match="current sha256: none"):
        store.files.write("ghost.md", "boo", expected_sha=sha("anything"))
    assert snapshot(store) == before


@pytest.mark.parametrize("bad", ["abc", "g" * 64, 42, "0" * 63])
def test_a_malformed_expected_sha_is_invalid_input(store: MemoryStore, bad: Any) -> None:
    """expected_sha must be null, '' or a 64-hex digest."""
    with pytest.raises(InvalidInput, match="expected_sha"):
        store.files.write("a.md", "x", expected_sha=bad)


def test_an_uppercase_digest_is_accepted_as_expected_sha(store: MemoryStore) -> None:
    """Digests compare case-insensitively."""
    first = store.files.write("a.md", "x")
    assert store.files.write("a.md", "y", expected_sha=first.sha256.upper()).version == 2


def test_delete_with_a_stale_sha_is_refused_and_changes_nothing(store: MemoryStore) -> None:
    """Delete honours expected_sha like write does."""
    store.files.write("a.md", "one")
    current = store.files.write("a.md", "two")
    before = snapshot(store)
    with pytest.raises(Conflict, match=current.sha256):
        store.files.delete("a.md", expected_sha=sha("one"))
    assert snapshot(store) == before
    assert store.files.delete("a.md", expected_sha=current.sha256).op == "delete"


# -- reading, JSON, listing ------------------------------------------------------------------------


def test_reading_a_missing_path_is_a_clear_not_found_unless_a_default_is_given(store: MemoryStore) -> None:
    """read() raises NotFound naming the path; default= is returned instead when given."""
    with pytest.raises(NotFound, match=r"no file 'nope\.md' in namespace 'default'"):
        store.files.read("nope.md")
    assert store.files.read("nope.md", default=None) is None
    assert store.files.read_json("nope.json", default={"fresh": True}) == {"fresh": True}


def test_json_is_written_readably_and_read_back_as_the_same_value(store: MemoryStore) -> None:
    """json= stores indented JSON text; read_json parses it back."""
    value = {"name": "Ada", "langs": ["en", "fr"], "nested": {"n": 1.5, "ok": True, "none": None}}
    store.files.write("profile.json", json=value)
    assert store.files.read_json("profile.json") == value
    assert live(store, "profile.json").read_text().startswith('{\n  "name": "Ada"')


def test_read_json_of_text_that_is_not_json_is_invalid_input(store: MemoryStore) -> None:
    """read_json explains the content is not JSON."""
    store.files.write("a.md", "# not json")
    with pytest.raises(InvalidInput, match="not JSON"):
        store.files.read_json("a.md")


def test_write_needs_exactly_one_of_content_or_json(store: MemoryStore) -> None:
    """Giving neither or both is refused."""
    with pytest.raises(InvalidInput, match="exactly one"):
        store.files.write("a.md")
    with pytest.raises(InvalidInput, match="exactly one"):
        store.files.write("a.md", "x", json={"x": 1})


def test_writing_identical_content_adds_no_version(store: MemoryStore) -> None:
    """A write that changes nothing returns the current version and leaves history alone."""
    first = store.files.write("a.md", "same")
    assert store.files.write("a.md", "same") == first
    assert len(store.files.history("a.md").versions) == 1


def test_long_content_is_read_in_chunks_that_never_split_a_character(store: MemoryStore) -> None:
    """offset/length read byte ranges; next_offset walks the whole text, multibyte characters intact."""
    text = "é" * 50 + "end"
    store.files.write("long.md", text)
    parts, offset = [], 0
    while offset is not None:
        chunk = store.files.read("long.md", offset=offset, length=7)
        parts.append(chunk.content)
        offset = chunk.next_offset
    assert "".join(parts) == text
    assert chunk.total_bytes == len(text.encode())


def test_list_is_sorted_by_path_and_filters_by_prefix(store: MemoryStore) -> None:
    """list() returns live files sorted by path; a prefix narrows it; deleted files are absent."""
    for path in ["notes/b.md", "notes/a.md", "plans/x.md", "notes/sub/c.md", "notesy.md"]:
        store.files.write(path, path)
    store.files.delete("plans/x.md")
    assert [m.path for m in store.files.list().items] == ["notes/a.md", "notes/b.md", "notes/sub/c.md", "notesy.md"]
    assert [m.path for m in store.files.list("notes/").items] == ["notes/a.md", "notes/b.md", "notes/sub/c.md"]
    flat = store.files.list("notes/", recursive=False)
    assert [m.path for m in flat.items] == ["notes/a.md", "notes/b.md"]
    assert flat.folders == ["notes/sub/"]


def test_list_pages_with_a_cursor_through_every_file_once(store: MemoryStore) -> None:
    """limit + next_cursor visit every path exactly once, in order."""
    paths = sorted(f"n/{i:03d}.md" for i in range(23))
    for path in paths:
        store.files.write(path, path)
    seen, cursor = [], None
    while True:
        page = store.files.list(limit=5, cursor=cursor)
        seen += [m.path for m in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == paths


@pytest.fixture
def locale_sorted_url(engine: str, postgres_url: str | None) -> Iterator[str | None]:
    """On PostgreSQL, a database whose own locale (ICU en-US) sorts 'a' before 'B' and 'é' before 'z'.

    The suite's cluster sorts by code point already (C.UTF-8), so only a database like this
    shows whether listing depends on the database's locale. None on SQLite, which has none.
    """
    if engine != "postgres":
        yield None
        return
    assert postgres_url is not None
    import uuid
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    name = "files_icu_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(
            f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
            " LOCALE 'C.UTF-8'"
        )
    try:
        yield urlunsplit(urlsplit(postgres_url)._replace(path="/" + name))
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_list_follows_code_point_order_whatever_the_database_locale(
    tmp_path: Path, locale_sorted_url: str | None
) -> None:
    """Order, pages and prefix ranges are by code point on both engines, not by the database's locale."""
    paths = ["B.md", "a.md", "a/b.md", "a-b.md", "a0.md", "ab/c.md", "z.md", "é.md", "Éa/x.md"]
    with MemoryStore.open(tmp_path / "s", database_url=locale_sorted_url) as store:
        for path in paths:
            store.files.write(path, path)
        assert [m.path for m in store.files.list().items] == sorted(paths)
        seen, cursor = [], None
        while True:
            page = store.files.list(limit=2, cursor=cursor)
            seen += [m.path for m in page.items]
            if (cursor := page.next_cursor) is None:
                break
        assert seen == sorted(paths)
        assert [m.path for m in store.files.list("a").items] == ["a-b.md", "a.md", "a/b.md", "a0.md", "ab/c.md"]
        assert [m.path for m in store.files.list("a/").items] == ["a/b.md"]
        flat = store.files.list(recursive=False)
        assert [m.path for m in flat.items] == ["B.md", "a-b.md", "a.md", "a0.md", "z.md", "é.md"]
        assert flat.folders == ["a/", "ab/", "Éa/"]
        # A file cannot sit where a folder is: the check looks the folder's range up by the same order.
        with pytest.raises(Conflict, match="folder"):
            store.files.write("a", "x")


def test_namespaces_are_separate_trees(store: MemoryStore) -> None:
    """The same path in two namespaces holds two documents, in two folders on disk."""
    store.files.write("me.md", "alice", namespace="alice")
    store.files.write("me.md", "bob", namespace="bob")
    assert store.files.read("me.md", namespace="alice").content == "alice"
    assert store.files.read("me.md", namespace="bob").content == "bob"
    assert live(store, "me.md", "bob").read_text() == "bob"
    assert store.files.list().items == []


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "a b", "x" * 129, "über"])
def test_a_bad_namespace_is_refused(store: MemoryStore, bad: str) -> None:
    """A namespace is one segment of [A-Za-z0-9._-], not '.' or '..'."""
    with pytest.raises(InvalidInput, match="namespace"):
        store.files.write("a.md", "x", namespace=bad)


def test_a_file_cannot_also_be_a_folder(store: MemoryStore) -> None:
    """Writing under an existing file, or onto a folder of files, is a conflict."""
    store.files.write("a", "file")
    with pytest.raises(Conflict, match="'a' is a file"):
        store.files.write("a/b.md", "x")
    store.files.write("dir/x.md", "x")
    with pytest.raises(Conflict, match="folder"):
        store.files.write("dir", "x")


# -- history, restore, audit, delete ---------------------------------------------------------------


def test_every_version_is_listed_newest_first_and_can_be_read_back(store: MemoryStore) -> None:
    """history() lists each version with op, actor and reason; read(version=) returns its content."""
    store.files.write("plan.md", "v1", actor="alice", reason="draft")
    store.files.write("plan.md", "v2", actor="bob", reason="edit")
    store.files.write("plan.md", "v3", actor="alice", reason="final")
    history = store.files.history("plan.md").versions
    assert [(v.version, v.op, v.actor, v.reason) for v in history] == [
        (3, "update", "alice", "final"),
        (2, "update", "bob", "edit"),
        (1, "create", "alice", "draft"),
    ]
    assert [store.files.read("plan.md", version=v).content for v in (1, 2, 3)] == ["v1", "v2", "v3"]
    old = store.files.read("plan.md", version=1).meta
    assert (old.version, old.updated_by, old.reason, old.sha256) == (1, "alice", "draft", sha("v1"))


def test_restore_writes_an_old_version_back_as_a_new_version(store: MemoryStore) -> None:
    """restore(path, 1) makes version 1's content current as version 3, op 'restore'."""
    store.files.write("plan.md", "good")
    store.files.write("plan.md", "bad")
    restored = store.files.restore("plan.md", 1, reason="revert")
    assert (restored.version, restored.sha256) == (3, sha("good"))
    assert store.files.history("plan.md").versions[0].op == "restore"
    assert live(store, "plan.md").read_text() == "good"


def test_reading_or_restoring_a_version_that_does_not_exist_is_not_found(store: MemoryStore) -> None:
    """An unknown version number is a NotFound naming file_history."""
    store.files.write("a.md", "x")
    with pytest.raises(NotFound, match="file_history"):
        store.files.read("a.md", version=9)
    with pytest.raises(NotFound):
        store.files.restore("a.md", 9)


def test_the_audit_log_lists_every_change_in_order_with_old_and_new_sha(store: MemoryStore) -> None:
    """audit_tail covers the store or one path, oldest first, one entry per change."""
    store.files.write("a.md", "a1", actor="alice", reason="start")
    store.files.write("b.md", "b1")
    store.files.write("a.md", "a2", actor="bob", reason="fix")
    store.files.delete("b.md", actor="carol", reason="obsolete")
    store.files.restore("a.md", 1)
    audit = store.files.audit_tail(10).audit
    assert [(e.path, e.op, e.version) for e in audit] == [
        ("a.md", "create", 1), ("b.md", "create", 1), ("a.md", "update", 2), ("b.md", "delete", 2),
        ("a.md", "restore", 3),
    ]  # fmt: skip
    assert (audit[2].old_sha, audit[2].new_sha, audit[2].actor, audit[2].reason) == (sha("a1"), sha("a2"), "bob", "fix")
    assert (audit[3].old_sha, audit[3].new_sha, audit[3].actor) == (sha("b1"), None, "carol")
    assert [e.op for e in store.files.audit_tail(10, "a.md").audit] == ["create", "update", "restore"]
    assert [e.op for e in store.files.audit_tail(2).audit] == ["delete", "restore"]
    assert [e.ts for e in audit] == sorted(e.ts for e in audit)


def test_the_audit_tail_pages_towards_older_entries(store: MemoryStore) -> None:
    """next_cursor walks the audit log back to its first entry."""
    for i in range(7):
        store.files.write("a.md", f"v{i}")
    page = store.files.audit_tail(3)
    seen = [e.version for e in page.audit]
    while page.next_cursor:
        page = store.files.audit_tail(3, cursor=page.next_cursor)
        seen = [e.version for e in page.audit] + seen
    assert seen == list(range(1, 8))


def test_audit_tail_without_a_namespace_covers_the_whole_store(store: MemoryStore) -> None:
    """namespace=None reads every namespace's changes."""
    store.files.write("a.md", "x", namespace="one")
    store.files.write("a.md", "x", namespace="two")
    assert [e.namespace for e in store.files.audit_tail(10, namespace=None).audit] == ["one", "two"]
    assert [e.namespace for e in store.files.audit_tail(10, namespace="two").audit] == ["two"]


def test_delete_removes_the_live_file_keeps_history_and_is_audited(store: MemoryStore) -> None:
    """After delete the path reads as not found, old versions stay readable, and the audit says who."""
    store.files.write("notes/todo.md", "buy milk")
    entry = store.files.delete("notes/todo.md", actor="alice", reason="done")
    assert (entry.op, entry.version, entry.actor, entry.reason) == ("delete", 2, "alice", "done")
    assert not live(store, "notes/todo.md").exists()
    assert not live(store, "notes").exists(), "the emptied folder is removed too"
    with pytest.raises(NotFound, match="was deleted"):
        store.files.read("notes/todo.md")
    assert store.files.read("notes/todo.md", version=1).content == "buy milk"
    assert [v.op for v in store.files.history("notes/todo.md").versions] == ["delete", "create"]
    again = store.files.write("notes/todo.md", "buy bread", expected_sha="")
    assert (again.version, store.files.history("notes/todo.md").versions[0].op) == (3, "create")


def test_deleting_a_missing_path_is_not_found(store: MemoryStore) -> None:
    """Delete of a path that does not exist says so."""
    with pytest.raises(NotFound):
        store.files.delete("never.md")


def test_reading_a_deleted_version_is_not_found(store: MemoryStore) -> None:
    """A deletion has no content to read or restore."""
    store.files.write("a.md", "x")
    store.files.delete("a.md")
    with pytest.raises(NotFound, match="deletion"):
        store.files.read("a.md", version=2)
    with pytest.raises(InvalidInput, match="deletion"):
        store.files.restore("a.md", 2)


# -- read-only prefixes ------------------------------------------------------------------------------


def test_read_only_prefixes_refuse_writes_and_deletes_but_allow_reads(tmp_path: Path) -> None:
    """Operator-configured prefixes block write, restore and delete under them; reads still work."""
    with MemoryStore.open(tmp_path / "s") as setup:
        setup.files.write("policies/safety.md", "be careful")
        setup.files.write("team/rules.md", "rule", namespace="team")
    with MemoryStore.open(tmp_path / "s", read_only_prefixes=["default/policies/", "team"]) as store:
        before = snapshot(store)
        with pytest.raises(AccessDenied, match="read-only"):
            store.files.write("policies/safety.md", "anything goes")
        with pytest.raises(AccessDenied, match="read-only"):
            store.files.write("policies/new.md", "x")
        with pytest.raises(AccessDenied, match="read-only"):
            store.files.delete("policies/safety.md")
        with pytest.raises(AccessDenied, match="read-only"):
            store.files.restore("policies/safety.md", 1)
        with pytest.raises(AccessDenied, match="whole namespace"):
            store.files.write("anything.md", "x", namespace="team")
        assert snapshot(store) == before
        assert store.files.read("policies/safety.md").content == "be careful"
        assert store.files.write("policies.md", "outside the folder").version == 1


def test_read_only_prefixes_come_from_the_environment_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MCP_MEMORY_READ_ONLY_PREFIXES sets them (os.pathsep-separated)."""
    monkeypatch.setenv("MCP_MEMORY_READ_ONLY_PREFIXES", os.pathsep.join(["default/a/", "default/b/"]))
    with MemoryStore.open(tmp_path / "s") as store, pytest.raises(AccessDenied):
        store.files.write("b/x.md", "x")


def test_a_malformed_read_only_prefix_is_refused_at_open(tmp_path: Path) -> None:
    """An entry that does not start with a namespace is a configuration error."""
    with (
        MemoryStore.open(tmp_path / "s", read_only_prefixes=["no such ns!/x"]) as store,
        pytest.raises(InvalidInput, match="namespace/prefix"),
    ):
        _ = store.files


# -- live files and external edits -------------------------------------------------------------------


def test_live_files_are_plain_files_under_the_namespace_folder(store: MemoryStore) -> None:
    """files/<namespace>/<path> holds each live file's latest content."""
    store.files.write("deep/er/note.md", "hello")
    store.files.write("x.md", "ns", namespace="proj")
    assert live(store, "deep/er/note.md").read_text() == "hello"
    assert live(store, "x.md", "proj").read_text() == "ns"


def test_an_edit_made_on_disk_is_recorded_as_an_external_edit_on_the_next_read(store: MemoryStore) -> None:
    """A changed live file is noticed by read, becomes a version by 'external', and the index follows."""
    first = store.files.write("plan.md", "from the agent")
    live(store, "plan.md").write_text("fixed by hand")
    content = store.files.read("plan.md")
    assert content.content == "fixed by hand"
    assert (content.meta.version, content.meta.updated_by, content.meta.sha256) == (2, "external", sha("fixed by hand"))
    top = store.files.history("plan.md").versions[0]
    assert (top.op, top.actor) == ("external_edit", "external")
    assert store.files.audit_tail(1).audit[0].old_sha == first.sha256
    assert store.files.list().items[0].sha256 == sha("fixed by hand")
    assert store.files.read("plan.md").meta.version == 2, "a second read records nothing new"


def test_a_write_based_on_the_pre_edit_sha_conflicts_after_an_external_edit(store: MemoryStore) -> None:
    """An unnoticed external edit is recorded before a compare-and-swap write, which then fails."""
    first = store.files.write("plan.md", "v1")
    live(store, "plan.md").write_text("hand edit")
    with pytest.raises(Conflict, match=sha("hand edit")):
        store.files.write("plan.md", "agent edit", expected_sha=first.sha256)
    assert store.files.read("plan.md").content == "hand edit"
    assert [v.op for v in store.files.history("plan.md").versions] == ["external_edit", "create"]


def test_a_file_created_on_disk_is_picked_up_when_read(store: MemoryStore) -> None:
    """A new file dropped into the namespace folder becomes version 1 (external_edit) on read."""
    target = live(store, "dropped/in.md")
    target.parent.mkdir(parents=True)
    target.write_text("by hand")
    content = store.files.read("dropped/in.md")
    assert (content.content, content.meta.version, content.meta.updated_by) == ("by hand", 1, "external")


def test_a_live_file_removed_by_hand_is_restored_from_the_database(store: MemoryStore) -> None:
    """The database is the source of truth: a missing live file is rewritten, not treated as deleted."""
    store.files.write("keep.md", "precious")
    live(store, "keep.md").unlink()
    assert store.files.read("keep.md").content == "precious"
    assert live(store, "keep.md").read_text() == "precious"
    assert len(store.files.history("keep.md").versions) == 1


def test_an_external_edit_made_while_no_server_runs_is_noticed_after_reopening(tmp_path: Path) -> None:
    """Edits between sessions are recorded on the next session's first read."""
    with MemoryStore.open(tmp_path / "s") as store:
        store.files.write("a.md", "session one")
    (tmp_path / "s" / "files" / "default" / "a.md").write_text("between sessions")
    with MemoryStore.open(tmp_path / "s") as store:
        content = store.files.read("a.md")
        assert (content.content, content.meta.updated_by) == ("between sessions", "external")


def test_an_external_edit_that_is_not_utf8_is_refused_with_a_fix(store: MemoryStore) -> None:
    """Binary bytes written over a live file make read fail clearly; a write still replaces them."""
    store.files.write("a.md", "text")
    live(store, "a.md").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(InvalidInput, match="not UTF-8"):
        store.files.read("a.md")
    store.files.write("a.md", "clean again")
    assert store.files.read("a.md").content == "clean again"


def test_a_pending_live_file_update_is_repaired_when_the_store_opens(tmp_path: Path) -> None:
    """A version committed without its live file (a killed writer) is projected on the next open."""
    with MemoryStore.open(tmp_path / "s") as store:
        store.files.write("a.md", "old")
        store.files.write("a.md", "new")
        # What a writer killed between commit and rename leaves: the disk shows the old version.
        with store.db.write() as conn:
            conn.execute("UPDATE files SET projected_sha = ?", (sha("old"),))
        live(store, "a.md").write_text("old")
    with MemoryStore.open(tmp_path / "s") as store:
        assert store.files.repair() == 0, "opening repaired it already"
        assert live(store, "a.md").read_text() == "new"
        assert [v.op for v in store.files.history("a.md").versions] == ["update", "create"]


# -- transcript ----------------------------------------------------------------------------------------


def test_a_transcript_is_persisted_by_flush_and_reloaded_on_open(tmp_path: Path) -> None:
    """append/extend buffer messages, flush persists them, a new store sees exactly the flushed ones."""
    with MemoryStore.open(tmp_path / "s") as store:
        transcript = store.files.transcript()
        transcript.append({"role": "user", "content": "hi"})
        transcript.extend([{"role": "assistant", "content": "hello"}, {"role": "user", "content": "bye"}])
        assert transcript.flush() == 3
        transcript.append({"role": "assistant", "content": "never flushed"})
        with store.files.transcript("other") as other:
            other.append({"role": "user", "content": "elsewhere"})
    with MemoryStore.open(tmp_path / "s") as store:
        assert store.files.transcript().messages == [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "bye"},
        ]
        assert len(store.files.transcript("other")) == 1


def test_an_invalid_transcript_message_adds_nothing(store: MemoryStore) -> None:
    """extend() validates every message first; one bad message rejects the batch."""
    transcript = store.files.transcript()
    with pytest.raises(InvalidInput):
        transcript.extend([{"ok": 1}, {"bad": float("nan")}])
    assert transcript.messages == [] and transcript.flush() == 0


# -- storage -------------------------------------------------------------------------------------------


def test_a_thousand_writes_alternating_between_two_contents_store_two_blobs(tmp_path: Path) -> None:
    """Versions are deduplicated through the blob store: 1,000 versions, two blobs."""
    with MemoryStore.open(tmp_path / "s", sync="normal") as store:
        for i in range(1000):
            store.files.write("flip.md", "heads" if i % 2 == 0 else "tails")
        assert store.files.history("flip.md", limit=1).versions[0].version == 1000
        assert store.files.counts()["file_versions"] == 1000
        assert sorted(store.blobs.digests()) == sorted([sha("heads"), sha("tails")])


def test_gc_never_removes_a_blob_a_file_version_needs(store: MemoryStore) -> None:
    """Old versions (even of deleted files) keep their blobs through gc; unreferenced blobs go."""
    store.files.write("a.md", "version one")
    store.files.write("a.md", "version two")
    store.files.delete("a.md")
    orphan = store.blobs.put_bytes(b"nobody needs me").sha256
    old = time.time() - 3 * 3600
    for digest in store.blobs.digests():
        os.utime(store.blobs.local_path(digest), (old, old))
    report = store.gc(dry_run=False)
    assert report.blobs_removed == 1
    assert sorted(store.blobs.digests()) == sorted([sha("version one"), sha("version two")])
    assert not store.blobs.exists(orphan)
    assert store.files.read("a.md", version=1).content == "version one"


def test_stats_count_live_files_and_versions(store: MemoryStore) -> None:
    """memory_stats counts live files and every stored version."""
    store.files.write("a.md", "1")
    store.files.write("a.md", "2")
    store.files.write("b.md", "1")
    store.files.delete("b.md")
    counts = store.stats().counts
    assert (counts["files"], counts["file_versions"]) == (1, 4)


def test_stale_temp_files_of_dead_processes_are_removed_on_open(tmp_path: Path) -> None:
    """A temp file left by a killed writer disappears when the store opens."""
    with MemoryStore.open(tmp_path / "s") as store:
        store.files.write("a.md", "x")
    tmp_dir = tmp_path / "s" / "files" / "default" / ".memory" / "tmp"
    stale = tmp_dir / "999999999-deadbeef.tmp"
    stale.write_bytes(b"half a write")
    with MemoryStore.open(tmp_path / "s") as store:
        _ = store.files
        assert not stale.exists()


def test_the_json_written_to_disk_is_what_the_sha_covers(store: MemoryStore) -> None:
    """The sha256 in FileMeta is the hash of the live file's bytes."""
    meta = store.files.write("data.json", json=[1, 2, {"k": "v"}])
    assert hashlib.sha256(live(store, "data.json").read_bytes()).hexdigest() == meta.sha256
    assert json.loads(live(store, "data.json").read_text()) == [1, 2, {"k": "v"}]
