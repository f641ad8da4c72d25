"""Safe by default, for memory files (issue 10): symlink swaps, look-alike paths, hostile imports.

Through the MCP tools where they exist (file_write/file_read/file_list over an in-process
client) and the real ``files import`` command; hostile archives are built here.
"""

from __future__ import annotations

import ctypes
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _mcp import call, error
from mcp import Client

from mcp_memory_server import AccessDenied, Conflict, InvalidInput, MemoryStore
from mcp_memory_server.cli import main
from mcp_memory_server.server import build_server

pytestmark = pytest.mark.anyio

MAX_SWAPS = 1_000_000  # a bound on the tries; the attacker stops (on an even count) when the calls are done
CALLS = 300
SECRET = b"outside secret"


# -- symlink swaps in the live tree ------------------------------------------------------------------


_libc = ctypes.CDLL(None, use_errno=True)
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(a: Path, b: Path) -> None:
    """Swap two names atomically: renameat2(RENAME_EXCHANGE)."""
    if _libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(a))


@pytest.fixture
def swap_target(tmp_path: Path, store: MemoryStore) -> tuple[Path, Path, Path]:
    """``files/default/dir`` (a real folder), a symlink to an outside folder beside it, and that folder."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "notes.md").write_bytes(SECRET)
    store.files.write("dir/notes.md", "mine")
    link = tmp_path / "swap-link"
    link.symlink_to(outside, target_is_directory=True)
    real = store.data_dir / "files" / "default" / "dir"
    try:
        exchange(real, link)
        exchange(real, link)
    except (OSError, AttributeError) as exc:  # no renameat2 (old libc) or no RENAME_EXCHANGE on this file system
        pytest.skip(f"renameat2(RENAME_EXCHANGE) is not available here: {exc}")
    return real, link, outside


SWAPPER = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
real, link, stop, limit = os.fsencode(sys.argv[1]), os.fsencode(sys.argv[2]), sys.argv[3], int(sys.argv[4])
count = 0
print("ready", flush=True)
while count < limit and (count % 2 or count % 256 or not os.path.exists(stop)):
    if libc.renameat2(-100, real, -100, link, 2) != 0:
        sys.exit(f"renameat2 failed: {os.strerror(ctypes.get_errno())}")
    count += 1
print(count, flush=True)
"""


class Attacker:
    """A separate process (so no lock of ours slows it) swapping the folder and the symlink.

    It stops, on an even count so the tree ends as it started, once :meth:`stop` is called
    or after MAX_SWAPS tries.
    """

    def __init__(self, real: Path, link: Path) -> None:
        self._stop = link.with_name("stop-swapping")
        self._process = subprocess.Popen(
            [sys.executable, "-c", SWAPPER, str(real), str(link), str(self._stop), str(MAX_SWAPS)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self._process.stdout is not None and self._process.stdout.readline().strip() == "ready"

    def stop(self) -> int:
        self._stop.touch()
        out, _ = self._process.communicate(timeout=120)
        assert self._process.returncode == 0, out
        return int(out.split()[-1])


def outside_tree(outside: Path) -> dict[str, bytes]:
    return {p.relative_to(outside).as_posix(): p.read_bytes() for p in outside.rglob("*") if p.is_file()}


async def test_file_write_never_lands_outside_while_a_folder_is_swapped_for_a_symlink(
    client: Client, store: MemoryStore, swap_target: tuple[Path, Path, Path]
) -> None:
    """A folder swapped for a symlink to an outside folder, over and over, never receives a write.

    Every write is committed (the database is the source of truth); a live file the swap
    kept from being written is refused, logged, and repaired once the symlink is gone.
    """
    real, link, outside = swap_target
    swapper = Attacker(real, link)
    written, calls = [], 0
    while calls < CALLS:
        calls += 1
        path = f"dir/w{len(written)}.md"
        result = await client.call_tool("file_write", {"path": path, "text": f"payload {len(written)}"})
        if result.is_error:
            # The pre-commit check saw the symlink: refused cleanly, nothing stored.
            assert "is a symlink; symlinks are refused" in result.content[0].text  # type: ignore[union-attr]
        else:
            written.append(path)
    swaps = swapper.stop()
    assert swaps > CALLS and swaps % 2 == 0 and written
    assert outside_tree(outside) == {"notes.md": SECRET}
    assert not real.is_symlink() and link.is_symlink()
    for index, path in enumerate(written):
        read = await call(client, "file_read", path=path)
        assert read["content"] == f"payload {index}"
        assert (real / path.split("/", 1)[1]).read_text() == f"payload {index}"


async def test_file_read_never_returns_an_outside_file_while_a_folder_is_swapped(
    client: Client, store: MemoryStore, swap_target: tuple[Path, Path, Path]
) -> None:
    """Reads during the swaps return the stored content or a clean refusal, never the outside file."""
    real, link, outside = swap_target
    swapper = Attacker(real, link)
    served = refused = 0
    while served + refused < CALLS:
        result = await client.call_tool("file_read", {"path": "dir/notes.md"})
        if result.is_error:
            assert "symlink" in result.content[0].text  # type: ignore[union-attr]
            refused += 1
        else:
            assert result.structured_content is not None
            assert result.structured_content["content"] == "mine"
            served += 1
    swaps = swapper.stop()
    assert swaps > CALLS and swaps % 2 == 0 and served > 0
    history = await call(client, "file_history", path="dir/notes.md")
    assert [v["op"] for v in history["versions"]] == ["create"]  # the secret never became an external edit
    assert outside_tree(outside) == {"notes.md": SECRET}
    assert (await call(client, "file_read", path="dir/notes.md"))["content"] == "mine"


def test_a_symlinked_temp_folder_or_namespace_is_never_written_through(store: MemoryStore, tmp_path: Path) -> None:
    """The namespace folder and its .memory/tmp are walked without following symlinks too."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    root = store.data_dir / "files"
    root.mkdir(parents=True, exist_ok=True)
    (root / "other").symlink_to(outside, target_is_directory=True)
    with pytest.raises(AccessDenied, match="'other' in the live-file folder is a symlink"):
        store.files.write("a.md", "x", namespace="other")
    store.files.write("a.md", "x")
    tmp = root / "default" / ".memory" / "tmp"
    for child in tmp.iterdir():
        child.unlink()
    tmp.rmdir()
    tmp.symlink_to(outside, target_is_directory=True)
    store.files.write("b.md", "y")  # saved; the live file is refused and stays pending
    assert os.listdir(outside) == []
    with pytest.raises(AccessDenied, match="'tmp' in the live-file folder is a symlink"):
        store.files.read("b.md")
    tmp.unlink()  # the operator removes the symlink: the pending live file is repaired from the database
    assert store.files.read("b.md").content == "y"
    assert (root / "default" / "b.md").read_text() == "y" and os.listdir(outside) == []


# -- path identity ---------------------------------------------------------------------------------


async def test_nfc_and_nfd_spellings_are_one_file(client: Client, store: MemoryStore) -> None:
    """'café' typed precomposed or with a combining accent names the same file, stored in NFC."""
    nfc, nfd = unicodedata.normalize("NFC", "café.md"), unicodedata.normalize("NFD", "café.md")
    assert nfc != nfd
    first = await call(client, "file_write", path=nfc, text="one")
    second = await call(client, "file_write", path=nfd, text="two")
    assert first["path"] == second["path"] == nfc and second["version"] == 2
    assert (await call(client, "file_read", path=nfd))["content"] == "two"
    listed = await call(client, "file_list")
    assert [item["path"] for item in listed["items"]] == [nfc]
    assert sorted(os.listdir(store.data_dir / "files" / "default")) == sorted([".memory", nfc])


@pytest.mark.parametrize(
    ("path", "code"),
    [("ca\u200bfe.md", "U+200B"), ("notes/\u202etxt.md", "U+202E"), ("a\u2066b.md", "U+2066"),
     ("\ufeffplan.md", "U+FEFF"), ("x\u200d.md", "U+200D"), ("soft\u00adhyphen.md", "U+00AD"),
     ("line\u2028sep.md", "U+2028")],
)  # fmt: skip
async def test_invisible_characters_in_a_path_are_refused(client: Client, store: MemoryStore, path: str,
                                                          code: str) -> None:  # fmt: skip
    """Zero-width, bidi and other format characters would make look-alike paths; they are refused by name."""
    message = await error(client, "file_write", path=path, text="x")
    assert code in message and "invisible" in message
    assert store.files.counts() == {"files": 0, "file_versions": 0}


async def test_a_prefix_ending_in_the_last_code_point_lists_only_what_starts_with_it(client: Client) -> None:
    """prefix='notes\\U0010FFFF' used to have no upper bound and listed every later path."""
    for path in ["notes/a.md", "notes\U0010ffff.md", "notes\U0010ffff\U0010ffff/b.md", "noteu.md", "z.md"]:
        await call(client, "file_write", path=path, text="x")
    for recursive in (True, False):
        listed = await call(client, "file_list", prefix="notes\U0010ffff", recursive=recursive)
        paths = [item["path"] for item in listed["items"]]
        folders = listed.get("folders", [])  # omitted when empty
        assert all(p.startswith("notes\U0010ffff") for p in paths + folders)
    listed = await call(client, "file_list", prefix="notes\U0010ffff")
    assert [item["path"] for item in listed["items"]] == ["notes\U0010ffff.md", "notes\U0010ffff\U0010ffff/b.md"]
    ranked = await call(client, "file_list", prefix="notes\U0010ffff", query="x", mode="lexical")
    assert {item["path"] for item in ranked["items"]} <= {"notes\U0010ffff.md", "notes\U0010ffff\U0010ffff/b.md"}


# -- hostile imports ---------------------------------------------------------------------------------


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def version(path: str, n: int, op: str, content: bytes | None, **extra: Any) -> dict[str, Any]:
    return {"path": path, "version": n, "op": op, "sha256": None if content is None else sha(content),
            "old_sha": None, "bytes": 0 if content is None else len(content), "ts": "2026-01-01T00:00:00Z",
            "actor": "agent", "reason": "", **extra}  # fmt: skip


def build_archive(
    target: Path,
    versions: list[dict[str, Any]] | bytes,
    blobs: list[bytes],
    *,
    transcript: bytes = b"",
    extra: list[tarfile.TarInfo] | None = None,
    pax: dict[str, str] | None = None,
) -> Path:
    """A .tar.gz export as this server writes them, with whatever a hostile author put in."""
    manifest = {"format": "mcp-memory-server/files", "format_version": 1, "namespace": "default"}
    lines = versions if isinstance(versions, bytes) else "".join(json.dumps(v) + "\n" for v in versions).encode()
    members = [("manifest.json", json.dumps(manifest).encode()), ("versions.jsonl", lines),
               ("transcript.jsonl", transcript)] + [(f"blobs/{sha(b)}", b) for b in blobs]  # fmt: skip
    with tarfile.open(target, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            if pax and name == "versions.jsonl":
                info.pax_headers = pax
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
    return target


GOOD = [version("notes/a.md", 1, "create", b"hello\n"), version("notes/a.md", 2, "update", b"hello again\n")]
GOOD_BLOBS = [b"hello\n", b"hello again\n"]


def assert_empty(store: MemoryStore) -> None:
    assert store.files.counts() == {"files": 0, "file_versions": 0}
    assert len(store.files.transcript()) == 0
    assert not (store.data_dir / "files" / "default" / "notes").exists()


def hostile_cases(tmp: Path) -> dict[str, tuple[Path, str]]:
    link = tarfile.TarInfo("blobs/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    hard = tarfile.TarInfo("files/hard")
    hard.type, hard.linkname = tarfile.LNKTYPE, "manifest.json"
    device = tarfile.TarInfo("files/dev")
    device.type = tarfile.CHRTYPE
    escape = tarfile.TarInfo("../../escape.md")
    escape.size = 1
    not_utf8 = b"\xff\xfe not text"
    return {
        "a file and a folder at once": (build_archive(
            tmp / "tree.tar.gz", [version("a", 1, "create", b"x"), version("a/b", 1, "create", b"y")], [b"x", b"y"]),
            "'a' is a file, so it cannot be a folder"),
        "non-UTF-8 content": (build_archive(
            tmp / "bytes.tar.gz", [version("bin.md", 1, "create", not_utf8)], [not_utf8]), "is not UTF-8 text"),
        "a bytes field that lies": (build_archive(
            tmp / "lie.tar.gz", [version("a.md", 1, "create", b"short", bytes=10**9)], [b"short"]),
            "is 1000000000 bytes, but its content"),
        "a symlink member": (build_archive(tmp / "sym.tar.gz", GOOD, GOOD_BLOBS, extra=[link]), "is a symlink"),
        "a hard-link member": (build_archive(tmp / "hard.tar.gz", GOOD, GOOD_BLOBS, extra=[hard]), "is a hard link"),
        "a device member": (build_archive(tmp / "dev.tar.gz", GOOD, GOOD_BLOBS, extra=[device]), "not a regular file"),
        "a member leaving the archive": (build_archive(tmp / "up.tar.gz", GOOD, GOOD_BLOBS, extra=[escape]),
                                         "leaves the archive"),
        "a path not in canonical form": (build_archive(
            tmp / "dot.tar.gz", [version("./notes//a.md", 1, "create", b"x")], [b"x"]), "not in canonical form"),
        "an invisible character in a path": (build_archive(
            tmp / "zw.tar.gz", [version("a\u200b.md", 1, "create", b"x")], [b"x"]), "U+200B"),
        "a version out of order": (build_archive(
            tmp / "seq.tar.gz", [*GOOD, version("notes/a.md", 5, "update", b"x")], [*GOOD_BLOBS, b"x"]),
            "version 5 should be 3"),
        "a delete of nothing": (build_archive(tmp / "del.tar.gz", [version("gone.md", 1, "delete", None)], []),
                                "does not exist at that point"),
        "a bad transcript line at the very end": (build_archive(
            tmp / "tr.tar.gz", GOOD, GOOD_BLOBS, transcript=b'{"ts": "2026-01-01T00:00:00.000000Z", "message": "ok"}\n[1, 2]\n'),
            "must be an object {ts, message}"),
        "a line over the cap": (build_archive(tmp / "line.tar.gz", b'{"path": "' + b"a" * (1 << 20), []),
                                "versions.jsonl line 1"),
        "a giant pax header": (build_archive(tmp / "pax.tar.gz", GOOD, GOOD_BLOBS, pax={"comment": "x" * (8 << 20)}),
                               "tar header or entry over"),
    }  # fmt: skip


CASES = [
    "a file and a folder at once", "non-UTF-8 content", "a bytes field that lies", "a symlink member",
    "a hard-link member", "a device member", "a member leaving the archive", "a path not in canonical form",
    "an invisible character in a path", "a version out of order", "a delete of nothing",
    "a bad transcript line at the very end", "a line over the cap", "a giant pax header",
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_a_hostile_archive_is_refused_whole_and_the_import_can_then_be_retried(
    store: MemoryStore, tmp_path: Path, case: str
) -> None:
    """Each archive fails with a message naming what is wrong, leaves the namespace empty, and a good
    archive imported right after into the same namespace succeeds."""
    archive, message = hostile_cases(tmp_path)[case]
    with pytest.raises((InvalidInput, Conflict)) as refused:
        store.files.import_(archive)
    assert message in str(refused.value)
    assert_empty(store)
    good = build_archive(
        tmp_path / "good.tar.gz",
        GOOD,
        GOOD_BLOBS,
        transcript=b'{"ts": "2026-01-01T00:00:00.000000Z", "message": "hi"}\n',
    )
    report = store.files.import_(good)
    assert (report.files, report.versions, report.blobs, report.transcript_messages) == (1, 2, 2, 1)
    assert store.files.read("notes/a.md").content == "hello again\n"


async def test_an_imported_file_pages_to_its_end_through_file_read(store: MemoryStore, tmp_path: Path) -> None:
    """Sizes come from the content, so next_offset paging ends (a lying bytes field is refused above)."""
    text = ("é" * 1000 + "\n").encode()
    store.files.import_(build_archive(tmp_path / "a.tar.gz", [version("big.md", 1, "create", text)], [text]))
    async with Client(build_server(store)) as client:
        offset: int | None = 0
        pieces = []
        for _ in range(100):
            page = await call(client, "file_read", path="big.md", offset=offset, length=333)
            pieces.append(page["content"])
            offset = page.get("next_offset")  # omitted on the last chunk
            if offset is None:
                break
        assert offset is None and "".join(pieces).encode() == text
        assert (await call(client, "file_list"))["items"][0]["bytes"] == len(text)


def test_the_files_import_command_refuses_a_hostile_archive_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`files import` prints the reason and exits non-zero; the store is untouched and export still works."""
    data_dir = tmp_path / "store"
    archive = build_archive(tmp_path / "tree.tar.gz", [version("a", 1, "create", b"x"),
                                                       version("a/b", 1, "create", b"y")], [b"x", b"y"])  # fmt: skip
    assert main(["files", "import", str(archive), "--data-dir", str(data_dir)]) != 0
    assert "'a' is a file" in capsys.readouterr().err
    with MemoryStore.open(data_dir) as store:
        assert_empty(store)
    good = build_archive(tmp_path / "good.tar.gz", GOOD, GOOD_BLOBS)
    assert main(["files", "import", str(good), "--data-dir", str(data_dir)]) == 0
    assert main(["files", "export", str(tmp_path / "out.tar.gz"), "--data-dir", str(data_dir)]) == 0


def test_a_decompression_bomb_is_refused_in_bounded_memory(
    tmp_path: Path, fresh_database_url: Callable[[], str | None]
) -> None:
    """~200 KiB of gzip holding a 192 MiB versions.jsonl line is refused; the importing process stays small.

    The old import read the member whole, decoded and split it (the 1.35 GiB seen in the
    issue); now one line of at most 64 KiB is held, so the peak is the baseline plus little.
    """
    bomb = build_archive(tmp_path / "bomb.tar.gz", b'{"path": "' + b" " * (192 << 20), [])
    assert bomb.stat().st_size < 400 << 10
    small = build_archive(tmp_path / "small.tar.gz", GOOD, GOOD_BLOBS)
    probe = (
        "import resource, sys\n"
        "from mcp_memory_server.cli import main\n"
        "code = main(['files', 'import', sys.argv[1], '--data-dir', sys.argv[2]])\n"
        "print(code, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    peaks = {}
    for name, archive in (("small", small), ("bomb", bomb)):
        # No embedding model: its background load would dwarf, and blur, what the import itself takes.
        env = {**os.environ, "MCP_MEMORY_EMBED_MODEL": str(tmp_path / "no-model")}
        url = fresh_database_url()  # each import fills its own, empty store
        if url is not None:
            env["MCP_MEMORY_DATABASE_URL"] = url
        out = subprocess.run([sys.executable, "-c", probe, str(archive), str(tmp_path / name)],
                             capture_output=True, text=True, timeout=300, check=True, env=env)  # fmt: skip
        code, peak_kib = out.stdout.split()[-2:]
        peaks[name] = int(peak_kib)
        assert (code == "0") == (name == "small"), out.stderr
        if name == "bomb":
            assert "versions.jsonl line 1" in out.stderr
    assert peaks["bomb"] - peaks["small"] < 64 << 10, peaks  # KiB: far below the 192 MiB it unpacks to


def test_an_export_directory_with_a_symlinked_member_is_refused(
    store: MemoryStore, tmp_path: Path, fresh_database_url: Callable[[], str | None]
) -> None:
    """A directory import opens each member without following symlinks."""
    store.files.write("notes/a.md", "hello")
    store.files.export("default", tmp_path / "dir-export")
    blobs = tmp_path / "dir-export" / "blobs"
    victim = next(blobs.iterdir())
    secret = tmp_path / "secret"
    secret.write_bytes(victim.read_bytes())
    victim.unlink()
    victim.symlink_to(secret)
    with MemoryStore.open(tmp_path / "copy", database_url=fresh_database_url()) as copy:
        with pytest.raises(InvalidInput, match="symlink"):
            copy.files.import_(tmp_path / "dir-export")
        assert_empty(copy)
