"""Exporting a namespace and importing it into another store: lossless for a directory, a .tar.gz and a URL."""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mcp_memory_server import AccessDenied, Conflict, InvalidInput, MemoryStore, NotFound
from mcp_memory_server.cli import main


def populate(store: MemoryStore, namespace: str = "default") -> None:
    """A namespace with updates, JSON, a deletion, a restore, an external edit and a transcript."""
    files = store.files
    files.write("notes/plan.md", "step 1", actor="alice", reason="start", namespace=namespace)
    files.write("notes/plan.md", "step 1\nstep 2", actor="bob", reason="more", namespace=namespace)
    files.write("profile.json", json={"name": "Ada", "likes": ["tea"]}, namespace=namespace)
    files.write("scratch.md", "temporary", namespace=namespace)
    files.delete("scratch.md", reason="done", namespace=namespace)
    files.restore("notes/plan.md", 1, reason="too long", namespace=namespace)
    files.write("unicodé/ñame.md", "ü" * 10, namespace=namespace)
    (store.data_dir / "files" / namespace / "profile.json").write_text('{"name": "Ada", "likes": ["coffee"]}')
    files.read("profile.json", namespace=namespace)
    with files.transcript(namespace) as transcript:
        transcript.extend([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}])


def everything(store: MemoryStore, namespace: str) -> dict[str, Any]:
    """Content, metadata, every version of every path, the audit log, the transcript and the live tree."""
    files = store.files
    paths = sorted({e.path for e in files.audit_tail(500, namespace=namespace).audit})
    root = store.data_dir / "files" / namespace
    return {
        "list": [m.model_dump(exclude={"namespace"}) for m in files.list(namespace=namespace).items],
        "history": {p: files.history(p, namespace=namespace).versions for p in paths},
        "contents": {
            (p, v.version): files.read(p, v.version, namespace=namespace).content
            for p in paths
            for v in files.history(p, namespace=namespace).versions
            if v.op != "delete"
        },
        "audit": [e.model_dump(exclude={"namespace"}) for e in files.audit_tail(500, namespace=namespace).audit],
        "transcript": files.transcript(namespace).messages,
        "disk": {
            p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file() and ".memory" not in p.parts
        },
    }


@pytest.fixture
def source(tmp_path: Path) -> Iterator[MemoryStore]:
    """A store whose default namespace went through every kind of change."""
    with MemoryStore.open(tmp_path / "source") as store:
        populate(store)
        yield store


@pytest.mark.parametrize("name", ["export-dir", "export.tar.gz"])
def test_export_then_import_into_a_fresh_store_is_lossless(
    source: MemoryStore, tmp_path: Path, name: str, fresh_database_url: Callable[[], str | None]
) -> None:
    """Content, metadata, history, audit, transcript and live files are identical after the round trip."""
    report = source.files.export("default", tmp_path / name)
    assert (report.files, report.versions, report.transcript_messages) == (3, 8, 2)
    with MemoryStore.open(tmp_path / "target", database_url=fresh_database_url()) as target:
        imported = target.files.import_(tmp_path / name)
        assert imported.model_dump(exclude={"location"}) == report.model_dump(exclude={"location"})
        assert everything(target, "default") == everything(source, "default")


def test_a_tar_gz_import_reads_the_stream_forwards_whatever_the_version_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_database_url: Callable[[], str | None]
) -> None:
    """Each backward seek in a gzip stream decompresses it again from the start: reading blobs in
    versions order made 5,000 files take 3 minutes. The count of backward seeks is deterministic
    and must not grow with the files."""
    import gzip

    with MemoryStore.open(tmp_path / "many", database_url=fresh_database_url()) as store:
        # Written in an order unrelated to the digests the export sorts its blobs by.
        for i in range(120):
            store.files.write(f"notes/{i:03}.md", f"note {i} " * (i + 1))
        store.files.write("notes/000.md", "rewritten")
        store.files.export("default", tmp_path / "many.tar.gz")
    backward = [0]
    real_seek = gzip.GzipFile.seek

    def counting_seek(self: gzip.GzipFile, offset: int, whence: int = 0) -> int:
        if whence == 0 and offset < self.tell():
            backward[0] += 1
        return real_seek(self, offset, whence)

    monkeypatch.setattr(gzip.GzipFile, "seek", counting_seek)
    with MemoryStore.open(tmp_path / "target", database_url=fresh_database_url()) as target:
        report = target.files.import_(tmp_path / "many.tar.gz")
        assert (report.files, report.versions) == (120, 121)
        assert target.files.read("notes/119.md").content == "note 119 " * 120
    assert backward[0] <= 4, backward  # versions.jsonl and transcript.jsonl are read again in pass 2


def test_an_import_can_fill_a_differently_named_namespace(
    source: MemoryStore, tmp_path: Path, fresh_database_url: Callable[[], str | None]
) -> None:
    """namespace= on import renames the namespace; everything else is the same."""
    source.files.export("default", tmp_path / "e.tar.gz")
    with MemoryStore.open(tmp_path / "target", database_url=fresh_database_url()) as target:
        target.files.import_(tmp_path / "e.tar.gz", namespace="restored")
        assert everything(target, "restored") == everything(source, "default")
        assert target.files.list().items == []


def test_the_export_holds_the_live_files_for_people_to_read(source: MemoryStore, tmp_path: Path) -> None:
    """files/<path> in an export is the live content; versions.jsonl and blobs/ carry history."""
    source.files.export("default", tmp_path / "out")
    out = tmp_path / "out"
    assert (out / "files" / "notes" / "plan.md").read_text() == "step 1"
    assert json.loads((out / "manifest.json").read_text())["format"] == "mcp-memory-server/files"
    assert len((out / "versions.jsonl").read_text().splitlines()) == 8
    assert not (out / "files" / "scratch.md").exists()


def test_an_fsspec_url_works_when_fsspec_is_installed(
    source: MemoryStore, tmp_path: Path, fresh_database_url: Callable[[], str | None]
) -> None:
    """memory:// (fsspec's in-memory filesystem) takes a directory export and a .tar.gz export."""
    fsspec = pytest.importorskip("fsspec")
    try:
        for url in ["memory://mcp-test/export-dir", "memory://mcp-test/export.tar.gz"]:
            source.files.export("default", url)
            with MemoryStore.open(tmp_path / url.rsplit("/", 1)[1], database_url=fresh_database_url()) as target:
                target.files.import_(url)
                assert everything(target, "default") == everything(source, "default")
    finally:
        fsspec.filesystem("memory").rm("/mcp-test", recursive=True)


def test_importing_into_a_namespace_that_has_files_is_refused_and_changes_nothing(
    source: MemoryStore, tmp_path: Path
) -> None:
    """Import never merges: a namespace with history is a conflict."""
    source.files.export("default", tmp_path / "e")
    before = everything(source, "default")
    with pytest.raises(Conflict, match="empty namespace"):
        source.files.import_(tmp_path / "e")
    assert everything(source, "default") == before


def test_exporting_onto_an_existing_path_or_outside_the_allowed_roots_is_refused(
    source: MemoryStore, tmp_path: Path
) -> None:
    """The destination must be new and under the allowed roots."""
    (tmp_path / "taken").mkdir()
    with pytest.raises(InvalidInput, match="already exists"):
        source.files.export("default", tmp_path / "taken")
    with pytest.raises(AccessDenied, match="allowed roots"):
        source.files.export("default", "/var/lib/not-allowed-export")


def test_exporting_an_empty_namespace_is_not_found(source: MemoryStore, tmp_path: Path) -> None:
    """A namespace with nothing in it (a typo, usually) is reported, not exported empty."""
    with pytest.raises(NotFound, match="nothing to export"):
        source.files.export("nosuchnamespace", tmp_path / "e")
    assert not (tmp_path / "e").exists()


def test_a_tampered_archive_is_refused_and_imports_nothing(
    source: MemoryStore, tmp_path: Path, fresh_database_url: Callable[[], str | None]
) -> None:
    """A blob whose bytes do not hash to its name fails the import before anything is written."""
    source.files.export("default", tmp_path / "e")
    blob = next((tmp_path / "e" / "blobs").iterdir())
    blob.write_bytes(b"tampered")
    with MemoryStore.open(tmp_path / "target", database_url=fresh_database_url()) as target:
        with pytest.raises(InvalidInput, match="corrupt"):
            target.files.import_(tmp_path / "e")
        assert target.files.counts() == {"files": 0, "file_versions": 0}


def test_an_archive_with_a_traversal_path_is_refused(
    source: MemoryStore, tmp_path: Path, fresh_database_url: Callable[[], str | None]
) -> None:
    """Paths inside an archive pass the same rules as paths from tools."""
    source.files.export("default", tmp_path / "e")
    versions = tmp_path / "e" / "versions.jsonl"
    lines = versions.read_text().splitlines()
    evil = json.loads(lines[0]) | {"path": "../../escape.md"}
    versions.write_text("\n".join([json.dumps(evil), *lines[1:]]) + "\n")
    with MemoryStore.open(tmp_path / "target", database_url=fresh_database_url()) as target:
        with pytest.raises(InvalidInput, match=r"'\.\.'"):
            target.files.import_(tmp_path / "e")
        assert target.files.counts()["file_versions"] == 0
    assert not (tmp_path / "escape.md").exists()


@pytest.mark.parametrize("where", ["versions.jsonl", "transcript.jsonl", "manifest.json"])
def test_an_archive_record_nested_too_deeply_is_refused_cleanly(
    source: MemoryStore, tmp_path: Path, fresh_database_url: Callable[[], str | None], where: str
) -> None:
    """20,000 nested brackets in any record: InvalidInput naming the record, not a RecursionError (an attack)."""
    source.files.export("default", tmp_path / "e")
    (tmp_path / "e" / where).write_text("[" * 20000 + "]" * 20000 + "\n")
    with MemoryStore.open(tmp_path / "target", database_url=fresh_database_url()) as target:
        with pytest.raises(InvalidInput, match=rf"{re.escape(where)}.*nests JSON too deeply"):
            target.files.import_(tmp_path / "e")
        assert target.files.counts()["file_versions"] == 0


def test_an_archived_version_that_leaves_no_room_for_a_next_is_refused(
    source: MemoryStore, tmp_path: Path, fresh_database_url: Callable[[], str | None]
) -> None:
    """Version 2^63 - 1 imported would make the file unwritable and undeletable: refused, nothing imported."""
    source.files.export("default", tmp_path / "e")
    versions = tmp_path / "e" / "versions.jsonl"
    lines = versions.read_text().splitlines()
    last = json.loads(lines[-1]) | {"version": 2**63 - 1, "follows_dropped": True}
    versions.write_text("\n".join([*lines[:-1], json.dumps(last)]) + "\n")
    with MemoryStore.open(tmp_path / "target", database_url=fresh_database_url()) as target:
        with pytest.raises(InvalidInput, match="leaves no room for a next one"):
            target.files.import_(tmp_path / "e")
        assert target.files.counts()["file_versions"] == 0


def test_a_file_that_is_not_an_archive_is_refused(tmp_path: Path) -> None:
    """Importing random bytes says it is not an export."""
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tarball")
    with MemoryStore.open(tmp_path / "s") as store, pytest.raises(InvalidInput, match="not a readable"):
        store.files.import_(junk)


def test_a_tar_member_that_is_a_symlink_is_not_followed(
    source: MemoryStore, tmp_path: Path, fresh_database_url: Callable[[], str | None]
) -> None:
    """Archive members are read as regular files only; a link member fails the import."""
    source.files.export("default", tmp_path / "e.tar.gz")
    with tarfile.open(tmp_path / "e.tar.gz") as original, tarfile.open(tmp_path / "evil.tar.gz", "w:gz") as evil:
        for member in original.getmembers():
            if member.name == "manifest.json":
                link = tarfile.TarInfo("manifest.json")
                link.type = tarfile.SYMTYPE
                link.linkname = "/etc/passwd"
                evil.addfile(link)
            else:
                evil.addfile(member, original.extractfile(member))
    with (
        MemoryStore.open(tmp_path / "target", database_url=fresh_database_url()) as target,
        pytest.raises(InvalidInput, match="regular file"),
    ):
        target.files.import_(tmp_path / "evil.tar.gz")


def test_the_cli_exports_and_imports_a_namespace(source: MemoryStore, tmp_path: Path, capsys: Any) -> None:
    """`mcp-memory-server files export|import` round-trip a namespace and print a JSON report."""
    source_dir = str(source.data_dir)
    archive = str(tmp_path / "cli.tar.gz")
    assert main(["files", "export", archive, "--data-dir", source_dir, "--namespace", "default"]) == 0
    assert json.loads(capsys.readouterr().out)["versions"] == 8
    target_dir = str(tmp_path / "cli-target")
    assert main(["files", "import", archive, "--data-dir", target_dir, "--namespace", "copy"]) == 0
    assert json.loads(capsys.readouterr().out)["namespace"] == "copy"
    with MemoryStore.open(target_dir) as target:
        assert everything(target, "copy") == everything(source, "default")
    assert main(["files", "import", archive, "--data-dir", target_dir, "--namespace", "copy"]) == 1
    assert "empty namespace" in capsys.readouterr().err
