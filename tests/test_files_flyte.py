"""Flyte ``MemoryStore``'s names on ``store.files``, sync and async, against a real store."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from _mcp import call, error
from mcp import Client

from mcp_memory_server import AsyncMemoryStore, ConcurrencyError, Conflict, MemoryStore, NotFound
from mcp_memory_server.cli import _config as cli_config
from mcp_memory_server.cli import build_parser
from mcp_memory_server.config import Config
from mcp_memory_server.errors import InvalidInput
from mcp_memory_server.server import build_server


def test_flyte_text_and_json_round_trip(store: MemoryStore) -> None:
    """write_text/read_text and write_json/read_json store new versions and read them back."""
    files = store.files
    files.write_text("notes/plan.md", "step 1")
    files.write_json("state/config.json", {"lr": 0.04, "steps": [1, 2]})
    assert files.read_text("notes/plan.md") == "step 1"
    assert files.read_json("state/config.json") == {"lr": 0.04, "steps": [1, 2]}
    assert files.list_paths() == ["notes/plan.md", "state/config.json"]
    assert files.list_paths("state/") == ["state/config.json"]


def test_read_json_default_on_missing_or_empty(store: MemoryStore) -> None:
    """read_json returns the default for a missing path and for an empty file; read_text too when missing."""
    files = store.files
    assert files.read_json("state/none.json", default={}) == {}
    files.write_text("state/empty.json", "")
    assert files.read_json("state/empty.json", default=[]) == []
    assert files.read_text("nope.md", default="") == ""
    with pytest.raises(NotFound):
        files.read_text("nope.md")


def test_exists_current_sha_and_get_meta(store: MemoryStore) -> None:
    """current_sha is "" when absent and the content hash after a write; a deleted path does not exist."""
    files = store.files
    assert files.current_sha("a.md") == "" and not files.exists("a.md") and files.get_meta("a.md") is None
    meta = files.write_text("a.md", "hello")
    assert files.current_sha("a.md") == meta.sha256 and files.exists("a.md")
    assert files.get_meta("a.md") == meta
    files.delete("a.md")
    assert not files.exists("a.md") and files.current_sha("a.md") == ""


def test_expected_sha_conflict_raises_concurrency_error(store: MemoryStore) -> None:
    """A stale expected_sha raises Conflict, catchable as Flyte's ConcurrencyError, and changes nothing."""
    files = store.files
    first = files.write_text("plan.md", "v1")
    files.write_text("plan.md", "v2", expected_sha=first.sha256)
    assert ConcurrencyError is Conflict
    with pytest.raises(ConcurrencyError):
        files.write_text("plan.md", "v3", expected_sha=first.sha256)
    with pytest.raises(ConcurrencyError):
        files.write_text("plan.md", "again", expected_sha="")
    assert files.read_text("plan.md") == "v2"


def test_transcript_append_extend_flush_messages(data_dir: Path) -> None:
    """append/extend buffer messages; flush_messages persists them; a new store sees them all."""
    with MemoryStore.open(data_dir) as store:
        store.files.append({"role": "user", "content": "hi"})
        store.files.extend([{"role": "assistant", "content": "hello"}, {"role": "user", "content": "bye"}])
        assert store.files.flush_messages() == 3
        assert store.files.flush_messages() == 0
        store.files.append({"role": "user", "content": "unflushed"})
    with MemoryStore.open(data_dir) as again:
        assert [m["content"] for m in again.files.transcript().messages] == ["hi", "hello", "bye"]


def test_audit_tail_lists_flyte_writes(store: MemoryStore) -> None:
    """audit_tail shows each write made through the Flyte names, oldest first."""
    store.files.write_text("a.md", "1")
    store.files.write_text("a.md", "2")
    assert [e.op for e in store.files.audit_tail(10).audit] == ["create", "update"]


@pytest.mark.anyio
async def test_flyte_names_are_coroutines_on_the_async_store(data_dir: Path) -> None:
    """The same names work awaited on AsyncMemoryStore.files."""
    async with await AsyncMemoryStore.open(data_dir) as store:
        files = store.files
        meta = await files.write_json("state.json", {"step": 1})
        assert await files.read_json("state.json") == {"step": 1}
        assert await files.current_sha("state.json") == meta.sha256
        with pytest.raises(ConcurrencyError):
            await files.write_json("state.json", {"step": 2}, expected_sha="0" * 64)
        await files.append({"role": "user", "content": "hi"})
        assert await files.flush_messages() == 1
        assert await files.list_paths() == ["state.json"]


# -- audit and keep_versions, per store as Flyte has them ------------------------------------------


def _age_blobs(store: MemoryStore) -> None:
    """Make every blob older than gc's grace period, so gc judges them by references alone."""
    old = time.time() - 3 * 3600
    for digest in store.blobs.digests():
        os.utime(store.blobs.local_path(digest), (old, old))


def test_defaults_keep_every_version_and_audit_every_write(store: MemoryStore) -> None:
    """Without the settings a store audits and keeps versions as before: old versions read back, audit has actors."""
    assert store.config.audit is True and store.config.keep_versions is True
    files = store.files
    files.write_text("plan.md", "v1", actor="alice", reason="draft")
    files.write_text("plan.md", "v2", actor="bob", reason="edit")
    assert [(v.version, v.content_kept, v.actor) for v in files.history("plan.md").versions] == [
        (2, True, "bob"),
        (1, True, "alice"),
    ]
    assert files.read("plan.md", version=1).content == "v1"
    assert [(e.op, e.actor, e.reason) for e in files.audit_tail(10).audit] == [
        ("create", "alice", "draft"),
        ("update", "bob", "edit"),
    ]


def test_flyte_style_store_without_audit_or_versions(data_dir: Path) -> None:
    """audit=False, keep_versions=False: CAS works, audit_tail is empty, only the current version remains."""
    store = MemoryStore.open(data_dir, audit=False, keep_versions=False)
    memory = store.files
    meta = memory.write_text("notes/plan.md", "draft", actor="planner", reason="first pass")
    memory.write_text("notes/plan.md", "final", actor="planner", reason="done", expected_sha=meta.sha256)
    with pytest.raises(ConcurrencyError, match="changed by someone else"):
        memory.write_text("notes/plan.md", "late", expected_sha=meta.sha256)
    assert memory.read_text("notes/plan.md") == "final"
    assert memory.audit_tail(20).audit == []
    current = memory.get_meta("notes/plan.md")
    assert current is not None and (current.updated_by, current.reason, current.version) == ("planner", "done", 2)
    [only] = memory.history("notes/plan.md").versions
    assert (only.version, only.actor, only.reason, only.content_kept) == (2, "", "", True)
    with pytest.raises(NotFound, match=r"version 1 .* not kept: .*audit=False and keep_versions=False"):
        memory.read("notes/plan.md", version=1)
    assert memory.counts() == {"files": 1, "file_versions": 1}
    store.close()


def test_keep_versions_false_keeps_the_audit_but_not_old_contents(data_dir: Path) -> None:
    """Flyte's default (audit on, no versions): every write is audited; a replaced version cannot be read or restored."""
    store = MemoryStore.open(data_dir, keep_versions=False)
    files = store.files
    first = files.write_text("plan.md", "v1", actor="alice")
    second = files.write_text("plan.md", "v2", actor="bob", expected_sha=first.sha256)
    tail = files.audit_tail(10).audit
    assert [(e.op, e.actor, e.old_sha, e.new_sha) for e in tail] == [
        ("create", "alice", None, first.sha256),
        ("update", "bob", first.sha256, second.sha256),
    ]
    assert [(v.version, v.content_kept) for v in files.history("plan.md").versions] == [(2, True), (1, False)]
    with pytest.raises(NotFound, match="keep_versions=False, which keeps only the current version's content"):
        files.read("plan.md", version=1)
    assert files.read("plan.md", version=1, default="gone") == "gone"
    with pytest.raises(NotFound, match="keep_versions=False"):
        files.restore("plan.md", 1)
    assert files.read("plan.md", version=2).content == "v2"  # the current version, by number too
    with pytest.raises(ConcurrencyError):
        files.write_text("plan.md", "v3", expected_sha=first.sha256)
    assert files.read_text("plan.md") == "v2" and files.current_sha("plan.md") == second.sha256
    store.close()


def test_gc_frees_the_contents_keep_versions_false_no_longer_needs(data_dir: Path) -> None:
    """Replaced and deleted contents of a keep_versions=False store are gc'd; the current one and kept ones are not."""
    with MemoryStore.open(data_dir) as keeping:
        kept = keeping.files.write_text("kept.md", "kept forever")
    with MemoryStore.open(data_dir, keep_versions=False) as store:
        old = store.files.write_text("plan.md", "old plan")
        new = store.files.write_text("plan.md", "new plan")
        doomed = store.files.write_text("scratch.md", "scratch")
        store.files.delete("scratch.md")
        _age_blobs(store)
        assert store.gc(dry_run=True).blobs_removed == 2
        report = store.gc(dry_run=False)
        assert (report.blobs_removed, report.bytes_freed) == (2, len("old plan") + len("scratch"))
        assert not store.blobs.exists(old.sha256) and not store.blobs.exists(doomed.sha256)
        assert store.blobs.exists(new.sha256) and store.blobs.exists(kept.sha256)
        assert store.files.read_text("plan.md") == "new plan"
        assert store.stats().counts["blobs"] == 2


def test_each_process_applies_its_own_settings_to_its_own_writes(data_dir: Path) -> None:
    """Two stores on one data directory: a version keeps what its writer chose, whoever writes next."""
    with MemoryStore.open(data_dir) as full, MemoryStore.open(data_dir, audit=False, keep_versions=False) as lean:
        full.files.write_text("plan.md", "v1 by full", actor="full")
        lean.files.write_text("plan.md", "v2 by lean", actor="lean")
        lean.files.write_text("plan.md", "v3 by lean", actor="lean")
        full.files.write_text("plan.md", "v4 by full", actor="full")
        versions = full.files.history("plan.md").versions
        assert [(v.version, v.actor, v.content_kept) for v in versions] == [(4, "full", True), (1, "full", True)]
        assert lean.files.read("plan.md", version=1).content == "v1 by full"  # lean never drops what full kept
        with pytest.raises(NotFound, match="not kept"):
            full.files.read("plan.md", version=2)
        assert [e.version for e in lean.files.audit_tail(10).audit] == [1, 4]


def test_export_and_import_keep_what_was_kept_and_nothing_more(data_dir: Path, tmp_path: Path) -> None:
    """A namespace with dropped and content-less versions exports after gc and imports with the same history."""
    with MemoryStore.open(data_dir) as full, MemoryStore.open(data_dir, keep_versions=False) as lean:
        lean_both = MemoryStore.open(data_dir, audit=False, keep_versions=False)
        try:
            full.files.write_text("a.md", "a1")
            lean_both.files.write_text("a.md", "a2")  # dropped entirely once a3 replaces it
            lean.files.write_text("a.md", "a3")  # audited, content dropped once a4 replaces it
            full.files.write_text("a.md", "a4")
            lean.files.write_text("b.md", "b1")
        finally:
            lean_both.close()
        _age_blobs(full)
        assert full.gc(dry_run=False).blobs_removed == 2  # a2 and a3
        report = full.files.export("default", tmp_path / "export")
        assert (report.versions, report.blobs) == (4, 3)
        full.files.import_(tmp_path / "export", "copy")
        for path in ("a.md", "b.md"):
            assert full.files.history(path, namespace="copy") == full.files.history(path).model_copy(
                update={"namespace": "copy"}
            )
        assert full.files.read("a.md", version=1, namespace="copy").content == "a1"
        with pytest.raises(NotFound, match="keep_versions=False"):
            full.files.read("a.md", version=3, namespace="copy")
        with pytest.raises(NotFound, match="audit=False and keep_versions=False"):
            full.files.read("a.md", version=2, namespace="copy")
        assert full.files.read_text("a.md", namespace="copy") == "a4"
        assert full.files.read_text("b.md", namespace="copy") == "b1"


def test_an_import_still_needs_each_current_content(data_dir: Path, tmp_path: Path) -> None:
    """A keep_versions=False export lacking its current version's blob is refused as a whole."""
    with MemoryStore.open(data_dir, keep_versions=False) as store:
        store.files.write_text("a.md", "a1")
        current = store.files.write_text("a.md", "a2")
        store.files.export("default", tmp_path / "export")
        (tmp_path / "export" / "blobs" / current.sha256).unlink()
        with pytest.raises(InvalidInput, match=f"blobs/{current.sha256}"):
            store.files.import_(tmp_path / "export", "copy")
        assert store.files.list_paths(namespace="copy") == []


@pytest.mark.anyio
async def test_flyte_style_async_store_without_audit_or_versions(data_dir: Path) -> None:
    """AsyncMemoryStore.open takes the same settings: awaited writes, CAS, an empty audit tail."""
    async with await AsyncMemoryStore.open(data_dir, audit=False, keep_versions=False) as store:
        memory = store.files
        meta = await memory.write_json("state.json", {"step": 1}, actor="agent")
        await memory.write_json("state.json", {"step": 2}, expected_sha=meta.sha256)
        with pytest.raises(ConcurrencyError):
            await memory.write_json("state.json", {"step": 3}, expected_sha=meta.sha256)
        assert await memory.read_json("state.json") == {"step": 2}
        assert (await memory.audit_tail(20)).audit == []
        with pytest.raises(NotFound, match="not kept"):
            await memory.read("state.json", version=1)


def test_audit_and_keep_versions_are_flags_and_environment_variables(tmp_path: Path) -> None:
    """--no-audit / --no-keep-versions and MCP_MEMORY_AUDIT / MCP_MEMORY_KEEP_VERSIONS switch them off; both default on."""
    parse = build_parser().parse_args
    assert (cli_config(parse(["stats"])).audit, cli_config(parse(["stats"])).keep_versions) == (True, True)
    config = cli_config(parse(["--no-audit", "stats", "--no-keep-versions"]))
    assert (config.audit, config.keep_versions) == (False, False)
    assert cli_config(parse(["--audit", "stats"])).audit is True
    config = Config.load(environ={"MCP_MEMORY_AUDIT": "0", "MCP_MEMORY_KEEP_VERSIONS": "false"})
    assert (config.audit, config.keep_versions) == (False, False)
    assert Config.load({"audit": True}, environ={"MCP_MEMORY_AUDIT": "off"}).audit is True  # the flag wins
    with pytest.raises(InvalidInput, match="MCP_MEMORY_KEEP_VERSIONS='sometimes' must be a boolean"):
        Config.load(environ={"MCP_MEMORY_KEEP_VERSIONS": "sometimes"})


@pytest.mark.anyio
async def test_a_server_started_with_keep_versions_off_drops_replaced_contents(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MCP_MEMORY_KEEP_VERSIONS=0 reaches the files tools: file_history marks v1, file_read of it names the setting."""
    monkeypatch.setenv("MCP_MEMORY_KEEP_VERSIONS", "0")
    with MemoryStore.open(data_dir) as store:
        async with Client(build_server(store)) as client:
            await call(client, "file_write", path="plan.md", text="v1")
            await call(client, "file_write", path="plan.md", text="v2")
            history = await call(client, "file_history", path="plan.md")
            # Lean results leave out fields at their default (content_kept: true), as for every tool.
            assert [(v["version"], v.get("content_kept", True)) for v in history["versions"]] == [(2, True), (1, False)]
            assert "keep_versions=False" in await error(client, "file_read", path="plan.md", version=1)
