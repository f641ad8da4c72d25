"""Server-local paths are safe by default: the roots, the data directory, URLs and symlink races.

Every test goes through the real MCP surface where one exists (an in-process client for
tight loops, a stdio subprocess for the real process), on a real store. The races use an
adversarial thread that atomically swaps a real directory and a symlink pointing outside
with ``renameat2(RENAME_EXCHANGE)`` while the operation runs in a loop.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import anyio
import pytest
from _mcp import call, error
from _procs import run_python, stdio_params
from mcp import Client

from mcp_memory_server import AccessDenied, InvalidInput, MemoryStore
from mcp_memory_server.config import Config
from mcp_memory_server.server import build_server

SECRET = b"TOP SECRET: outside the allowed roots"
PUBLIC = b"public content inside the root"
RENAME_EXCHANGE = 2
pytestmark = pytest.mark.anyio
# The clean refusals a swap can cause: seen as the link, seen mid-swap, or gone for an instant.
REFUSALS = ("outside the allowed roots", "changed while it was being opened", "cannot be resolved", "does not exist")
SWAPS = 200_000  # an upper bound; the thread stops when the operation loop ends


def _exchange(libc: ctypes.CDLL, a: bytes, b: bytes) -> None:
    if libc.renameat2(-100, a, -100, b, RENAME_EXCHANGE) != 0:  # AT_FDCWD
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


@contextmanager
def swapping(a: Path, b: Path) -> Iterator[list[int]]:
    """Swap ``a`` and ``b`` atomically, over and over, until the block ends; yields the swap count."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    stop = threading.Event()
    count = [0]

    def run() -> None:
        while not stop.is_set() and count[0] < SWAPS:
            _exchange(libc, os.fsencode(a), os.fsencode(b))
            count[0] += 1

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield count
    finally:
        stop.set()
        thread.join()
        if count[0] % 2:  # put them back where they started
            _exchange(libc, os.fsencode(a), os.fsencode(b))


def blob_bytes(data_dir: Path) -> list[bytes]:
    return [p.read_bytes() for p in (data_dir / "blobs").rglob("*") if p.is_file()]


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


class Layout:
    """root/ (the only allowed root: cwd and TMPDIR), outside/ with a secret, the store beside them.

    ``root/work/real`` is a real directory with public files; ``root/work/link`` is a symlink
    to ``outside``, holding the same names with secret content.
    """

    def __init__(self, base: Path) -> None:
        self.root = base / "root"
        self.outside = base / "outside"
        self.data_dir = base / "store"
        self.real = self.root / "work" / "real"
        self.link = self.root / "work" / "link"
        (self.real / "sub").mkdir(parents=True)
        (self.outside / "sub").mkdir(parents=True)
        for folder, content in ((self.real, PUBLIC), (self.outside, SECRET)):
            (folder / "data.txt").write_bytes(content)
            (folder / "sub" / "inner.txt").write_bytes(content)
            (folder / "run.log").write_bytes(content + b"\nTraceback: boom\n")
            (folder / "victim.json").write_bytes(content)
        self.link.symlink_to(self.outside, target_is_directory=True)

    def outside_untouched(self) -> None:
        assert tree(self.outside) == {
            "data.txt": SECRET, "sub/inner.txt": SECRET, "run.log": SECRET + b"\nTraceback: boom\n",
            "victim.json": SECRET,
        }  # fmt: skip


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Layout:
    """The layout, with this process's cwd and temp dir set to root so that root is the only root."""
    made = Layout(tmp_path)
    monkeypatch.chdir(made.root)
    monkeypatch.setattr(tempfile, "tempdir", str(made.root))
    return made


@pytest.fixture
async def racing_client(layout: Layout) -> AsyncIterator[tuple[MemoryStore, Client]]:
    with MemoryStore.open(layout.data_dir) as store:
        assert store.config.allowed_roots == (layout.root.resolve(),)
        async with Client(build_server(store)) as client:
            yield store, client


async def race(
    client: Client, tool: str, rounds: int, check: Callable[[dict[str, object]], None], **args: object
) -> dict[str, int]:
    """Call ``tool`` ``rounds`` times; every success goes to ``check``; every failure must be a clean refusal."""
    outcomes = {"ok": 0, "refused": 0}
    for _ in range(rounds):
        result = await client.call_tool(tool, dict(args))
        if result.is_error:
            text = result.content[0].text  # type: ignore[union-attr]
            assert "Traceback" not in text, text
            assert any(s in text for s in REFUSALS), text
            outcomes["refused"] += 1
        else:
            assert result.structured_content is not None
            check(result.structured_content)
            outcomes["ok"] += 1
    return outcomes


# -- symlink races -------------------------------------------------------------------------------------


async def test_a_directory_swapped_for_a_link_out_never_gets_the_secret_into_the_store(
    layout: Layout, racing_client: tuple[MemoryStore, Client]
) -> None:
    """artifact_save of a directory, of a file in it, and experiment_log(log_path) while real/ and link/ swap."""
    store, client = racing_client

    def public_dir(record: dict[str, object]) -> None:
        manifest = json.loads(store.artifacts.read_bytes(str(record["artifact_id"])))
        assert {e["path"]: store.blobs.read(e["sha256"]) for e in manifest["entries"]} == {
            "data.txt": PUBLIC, "sub/inner.txt": PUBLIC, "run.log": PUBLIC + b"\nTraceback: boom\n",
            "victim.json": PUBLIC,
        }  # fmt: skip

    def public_file(record: dict[str, object]) -> None:
        assert store.artifacts.read_bytes(str(record["artifact_id"])) == PUBLIC

    # One swapping thread per loop: a loop that runs slowly must not spend the next loop's swaps.
    with swapping(layout.real, layout.link) as swaps:
        dirs = await race(client, "artifact_save", 60, public_dir, path=str(layout.real), kind="tree")
    assert swaps[0] > 100, "the swapping thread barely ran"
    with swapping(layout.real, layout.link) as swaps:
        files = await race(client, "artifact_save", 150, public_file, path=str(layout.real / "sub" / "inner.txt"))
    assert swaps[0] > 100, "the swapping thread barely ran"
    with swapping(layout.real, layout.link) as swaps:
        logs = await race(client, "experiment_log", 60, lambda run: None, description="a run", status="crash",
                          log_path=str(layout.real / "run.log"))  # fmt: skip
    assert swaps[0] > 100, "the swapping thread barely ran"
    for outcomes in (dirs, files, logs):
        assert outcomes["ok"] > 0 and outcomes["refused"] > 0, (dirs, files, logs)
    assert not any(SECRET in blob for blob in blob_bytes(layout.data_dir))
    layout.outside_untouched()


async def test_an_export_whose_folder_or_file_is_swapped_for_a_link_never_writes_outside(
    layout: Layout, racing_client: tuple[MemoryStore, Client]
) -> None:
    """graph_export onto real/victim.json while real/ and link/ swap, then while victim.json swaps with a link."""
    _, client = racing_client
    await call(client, "graph_write", agent_id="alice", nodes=[{"node_type": "semantic", "payload": {"fact": "a"}}])

    def written(result: dict[str, object]) -> None:
        assert result["node_count"] == 1

    with swapping(layout.real, layout.link) as swaps:
        folder = await race(client, "graph_export", 150, written, agent_id="alice",
                            path=str(layout.real / "victim.json"), overwrite=True)  # fmt: skip
    assert swaps[0] > 100 and folder["ok"] > 0 and folder["refused"] > 0, folder
    layout.outside_untouched()

    leaf_link = layout.real / "victim-link.json"
    leaf_link.symlink_to(layout.outside / "victim.json")
    with swapping(layout.real / "victim.json", leaf_link) as swaps:
        leaf = await race(client, "graph_export", 150, written, agent_id="alice",
                          path=str(layout.real / "victim.json"), overwrite=True)  # fmt: skip
    assert swaps[0] > 100 and leaf["ok"] > 0, leaf
    layout.outside_untouched()
    ours = [p for p in (layout.real / "victim.json", leaf_link) if not p.is_symlink()]
    assert ours and all(json.loads(p.read_text())["agent_id"] == "alice" for p in ours)


async def test_a_snapshot_read_swapped_for_a_link_never_loads_the_outside_copy(
    layout: Layout, racing_client: tuple[MemoryStore, Client], fresh_database_url: Callable[[], str | None]
) -> None:
    """graph_import(path=real/snap.json) while real/ and link/ swap: only the inside snapshot is ever loaded."""
    store, client = racing_client
    with MemoryStore.open(layout.root / "maker", database_url=fresh_database_url()) as maker:
        maker.graph.write([{"node_type": "semantic", "payload": {"fact": "inside"}}], agent_id="inside")
        maker.graph.write([{"node_type": "semantic", "payload": {"fact": "outside"}}], agent_id="outsider")
        maker.graph.export_to_file("inside", layout.real / "snap.json")
        maker.graph.export_to_file("outsider", layout.outside / "snap.json")
    with swapping(layout.real, layout.link) as swaps:
        outcomes = await race(client, "graph_import", 100, lambda report: None, path=str(layout.real / "snap.json"))
    assert swaps[0] > 100 and outcomes["ok"] > 0 and outcomes["refused"] > 0, outcomes
    assert len(store.graph.export("inside").nodes) == 1
    assert store.graph.export("outsider").nodes == []


async def test_materialising_into_a_destination_swapped_for_a_link_never_writes_outside(
    layout: Layout, racing_client: tuple[MemoryStore, Client]
) -> None:
    """Artifacts.materialize and files export (library only, no tool) into real/<new> while real/ and link/ swap."""
    store, client = racing_client
    source = layout.root / "src"
    (source / "a").mkdir(parents=True)
    (source / "a" / "b.txt").write_text("tree content")
    record = await call(client, "artifact_save", path=str(source), kind="tree")
    await call(client, "file_write", path="notes.md", text="a note")
    done = refused = 0
    with swapping(layout.real, layout.link) as swaps:
        for i in range(80):
            for write in (
                partial(store.artifacts.materialize, record["artifact_id"], layout.real / f"copy-{i}"),
                partial(store.files.export, "default", layout.real / f"export-{i}"),
                partial(store.files.export, "default", layout.real / f"export-{i}.tar.gz"),
            ):
                try:
                    write()
                    done += 1
                except (AccessDenied, InvalidInput) as exc:
                    assert any(s in str(exc) for s in REFUSALS), exc
                    refused += 1
    assert swaps[0] > 100 and done > 0 and refused > 0, (done, refused)
    layout.outside_untouched()


async def test_a_directory_ingest_race_through_a_stdio_server_stores_no_secret(layout: Layout) -> None:
    """The same swap against a real stdio server process: only public bytes are ever stored."""
    params = stdio_params(layout.data_dir, env={"TMPDIR": str(layout.root)}, cwd=layout.root)
    with anyio.fail_after(240):
        async with Client(params) as client:
            with swapping(layout.real, layout.link) as swaps:
                outcomes = await race(client, "artifact_save", 80, lambda record: None, path=str(layout.real))
    assert swaps[0] > 100 and outcomes["ok"] > 0, outcomes
    assert not any(SECRET in blob for blob in blob_bytes(layout.data_dir))
    layout.outside_untouched()


# -- the default roots -----------------------------------------------------------------------------------


def test_the_working_directory_counts_only_when_it_is_narrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """cwd is a root unless it is /, home, an ancestor of home or of the data dir; --allow-path always counts."""
    home = tmp_path / "home"
    project = home / "project"
    project.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    data_dir = tmp_path / "data" / "store"
    data_dir.mkdir(parents=True)
    for cwd, counts in (("/", False), (home, False), (tmp_path, False), (tmp_path / "data", False),
                        (project, True)):  # fmt: skip
        monkeypatch.chdir(cwd)
        roots = Config.load({"data_dir": data_dir}, environ={}).allowed_roots
        assert (Path(cwd).resolve() in roots) is counts, (cwd, roots)
        assert (tmp_path / "tmp").resolve() in roots
    monkeypatch.chdir("/")
    explicit = Config.load({"data_dir": data_dir, "allow_path": ["/", str(home)]}, environ={}).allowed_roots
    assert Path("/") in explicit and home.resolve() in explicit


async def test_a_server_started_from_root_or_home_cannot_ingest_system_or_key_files(tmp_path: Path) -> None:
    """Started from / (as Claude Desktop does) and from home: /etc/hostname and ~/.ssh keys are refused."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY")
    (home / "notes.txt").write_text("my notes")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {"HOME": str(home), "TMPDIR": str(scratch)}
    system_file = "/etc/hostname" if Path("/etc/hostname").exists() else "/etc/passwd"
    data_dir = tmp_path / "store"
    for cwd in (Path("/"), home):
        async with Client(stdio_params(data_dir, env=env, cwd=cwd)) as client:
            relative = [system_file.lstrip("/")] if cwd == Path("/") else []
            for path in (system_file, *relative, "~/.ssh/id_ed25519", "~/notes.txt"):
                message = await error(client, "artifact_save", path=path)
                assert "outside the allowed roots" in message, (cwd, path, message)
                assert "--allow-path" in message and "MCP_MEMORY_ALLOW_PATH" in message
            assert (await call(client, "memory_stats"))["counts"]["artifacts"] == 0

    # Allowing home explicitly gives its files, never its hidden entries; those need their own --allow-path.
    async with Client(stdio_params(data_dir, "--allow-path", str(home), env=env, cwd=Path("/"))) as client:
        assert (await call(client, "artifact_save", path="~/notes.txt"))["bytes"] == len("my notes")
        message = await error(client, "artifact_save", path="~/.ssh/id_ed25519")
        assert "hidden entry of the home directory" in message and f"--allow-path {home / '.ssh'}" in message
        message = await error(client, "artifact_save", path=str(home))
        assert "hidden entry of the home directory" in message
        assert (await call(client, "memory_stats"))["counts"]["artifacts"] == 1
    async with Client(stdio_params(data_dir, "--allow-path", str(home / ".ssh"), env=env, cwd=Path("/"))) as client:
        assert (await call(client, "artifact_save", path="~/.ssh/id_ed25519"))["bytes"] == len("PRIVATE KEY")


async def test_the_data_directory_can_never_be_ingested_or_exported_into(tmp_path: Path, engine: str) -> None:
    """memory.db, blobs/, the data dir, a folder holding it, or a link to it: refused, whatever the roots."""
    data_dir = tmp_path / "store"
    (tmp_path / "link-to-db").symlink_to(data_dir / "memory.db")
    params = stdio_params(data_dir, "--allow-path", str(tmp_path), "--allow-path", str(data_dir),
                          env={"TMPDIR": str(tmp_path)}, cwd=tmp_path)  # fmt: skip
    async with Client(params) as client:
        await call(client, "graph_write", nodes=[{"node_type": "semantic", "payload": {"fact": "a"}}])
        await call(client, "artifact_save", text="a blob inside the data directory", kind="note")
        before = await call(client, "memory_stats")
        blob_files = sorted(p for p in (data_dir / "blobs").rglob("*") if p.is_file())
        # On PostgreSQL the records are not in the data directory: there is no memory.db to protect.
        database = [data_dir / "memory.db", tmp_path / "link-to-db"] if engine == "sqlite" else []
        for path in (*database, data_dir / "blobs", data_dir,
                     blob_files[0] if blob_files else data_dir / "blobs"):  # fmt: skip
            message = await error(client, "artifact_save", path=str(path))
            assert "data directory" in message, (path, message)
        message = await error(client, "artifact_save", path=str(tmp_path))  # an ancestor: the walk meets it
        assert "data directory" in message
        for target in (data_dir / "snapshot.json", data_dir / "memory.db", data_dir / "files" / "x.json"):
            message = await error(client, "graph_export", path=str(target))
            assert "inside the data directory" in message, message
        inside = data_dir / "memory.db" if engine == "sqlite" else blob_files[0]
        message = await error(client, "experiment_log", description="r", status="crash",
                              log_path=str(inside))  # fmt: skip
        assert "inside the data directory" in message
        after = await call(client, "memory_stats")
    assert after["counts"] == before["counts"]
    assert not (data_dir / "snapshot.json").exists() and not (data_dir / "files" / "x.json").exists()


def test_local_urls_obey_the_allowed_roots_like_plain_paths(layout: Layout) -> None:
    """file:// and local:// exports and imports: refused outside the roots, working inside; local chains refused."""
    with MemoryStore.open(layout.data_dir) as store:
        store.files.write("notes.md", "a note")
        for url in (f"local://{layout.outside}/out.tar.gz", f"file://{layout.outside}/out",
                    f"local://{layout.data_dir}/x.tar.gz"):  # fmt: skip
            with pytest.raises(AccessDenied, match=r"outside the allowed roots|inside the data directory"):
                store.files.export("default", url)
        with pytest.raises(InvalidInput, match="chains a filesystem over this machine's local disk"):
            store.files.export("default", f"simplecache::file://{layout.outside}/out")
        layout.outside_untouched()
        report = store.files.export("default", f"local://{layout.root}/exported")
        assert report.location == str(layout.root.resolve() / "exported")
        assert (layout.root / "exported" / "files" / "notes.md").read_text() == "a note"
        os.rename(layout.root / "exported", layout.outside / "exported")
        with pytest.raises(AccessDenied, match="outside the allowed roots"):
            store.files.import_(f"local://{layout.outside}/exported", "other")
        assert store.files.counts()["files"] == 1


# -- the write lock and concurrent materialisation ----------------------------------------------------------


def test_experiment_log_copies_its_log_before_taking_the_write_lock(layout: Layout) -> None:
    """While a large log_path is being copied into a blob, another store on the same data dir commits a write."""
    big = layout.root / "big.log"
    with open(big, "wb") as out:
        block = hashlib.sha256(b"seed").digest() * 32768  # 1 MiB
        for _ in range(160):
            out.write(block)
        out.write(b"\nTraceback: the end\n")
    with MemoryStore.open(layout.data_dir) as logger_store, MemoryStore.open(layout.data_dir) as other:
        other.events.count()  # connection open before the race starts
        seen: dict[str, bool] = {}

        def other_writer() -> None:
            blobs = layout.data_dir / "blobs"
            while not any(p.name.startswith(".tmp-") and p.stat().st_size > (8 << 20) for p in blobs.iterdir()):
                if seen.get("done"):
                    return
                time.sleep(0.002)
            other.artifacts.save_text("written during the copy", kind="probe")
            seen["copy_still_running"] = any(p.name.startswith(".tmp-") for p in blobs.iterdir())

        thread = threading.Thread(target=other_writer)
        thread.start()
        run = logger_store.lab.log("a long run", "crash", log_path=str(big))
        seen["done"] = True
        thread.join()
        log = next(a for a in run.artifacts if a.role == "log")
        assert logger_store.artifacts.get(log.artifact_id).bytes == big.stat().st_size
    assert seen.get("copy_still_running") is True, seen


async def test_concurrent_path_reads_of_an_unpacked_directory_all_succeed(
    layout: Layout, racing_client: tuple[MemoryStore, Client]
) -> None:
    """Six threads and three other processes unpack the same directory artifact at the same moment."""
    store, client = racing_client
    source = layout.root / "tree"
    for i in range(40):
        (source / f"d{i % 4}").mkdir(parents=True, exist_ok=True)
        (source / f"d{i % 4}" / f"f{i}.txt").write_text(f"file {i}\n" * 200)
    record = await call(client, "artifact_save", path=str(source), kind="tree")
    go = layout.root / "go"
    code = (
        "import os, sys, time\nfrom mcp_memory_server import MemoryStore\n"
        "with MemoryStore.open(sys.argv[1]) as s:\n"
        "    s.artifacts.get(sys.argv[2])\n"
        "    while not os.path.exists(sys.argv[3]): time.sleep(0.001)\n"
        "    print(s.artifacts.as_local_file(sys.argv[2]))\n"
    )
    results: list[str] = []
    errors: list[BaseException] = []

    def in_subprocess() -> None:
        try:
            results.append(run_python(code, str(layout.data_dir), record["artifact_id"], str(go), timeout=180).strip())
        except BaseException as exc:
            errors.append(exc)

    def in_thread() -> None:
        try:
            while not go.exists():
                time.sleep(0.001)
            results.append(str(store.artifacts.as_local_file(record["artifact_id"])))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=in_subprocess) for _ in range(3)] + [
        threading.Thread(target=in_thread) for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    time.sleep(8)  # let the subprocesses import and open the store, then release everyone at once
    go.write_text("go")
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(results) == 9 and len(set(results)) == 1, results
    assert tree(Path(results[0])) == tree(source)
    read = await call(client, "artifact_read", artifact_id=record["artifact_id"], encoding="path")
    assert read["path"] == results[0]
    materialized = layout.data_dir / "materialized"
    assert [p.name for p in materialized.iterdir()] == [record["sha256"]]  # no staging debris


def test_rename_exchange_is_available() -> None:
    """The race tests need renameat2; fail loudly rather than pass vacuously where it is missing."""
    libc = ctypes.CDLL(None, use_errno=True)
    assert hasattr(libc, "renameat2")
    with pytest.raises(OSError) as caught:
        _exchange(libc, b"/nonexistent-a", b"/nonexistent-b")
    assert caught.value.errno == errno.ENOENT
