"""Path attacks on memory files: every refusal writes nothing, and no accepted path lands outside its namespace."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcp_memory_server import AccessDenied, InvalidInput, LimitExceeded, MemoryServerError, MemoryStore


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the store that must stay untouched."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("top secret")
    return folder


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_nothing_written(store: MemoryStore, outside: Path) -> None:
    assert store.files.counts() == {"files": 0, "file_versions": 0}
    assert tree(outside) == {"secret.txt": b"top secret"}
    assert not any(p.is_file() and ".memory" not in p.parts for p in (store.data_dir / "files").rglob("*"))


@pytest.mark.parametrize(
    ("path", "error", "says"),
    [
        ("../escape.md", InvalidInput, "'..'"),
        ("notes/../../escape.md", InvalidInput, "'..'"),
        ("a/..", InvalidInput, "'..'"),
        ("/etc/passwd", InvalidInput, "absolute"),
        ("//server/share", InvalidInput, "absolute"),
        ("notes\\..\\escape.md", InvalidInput, "backslash"),
        ("c:\\windows\\x", InvalidInput, "backslash"),
        ("bad\x00name.md", InvalidInput, "NUL"),
        ("line\nbreak.md", InvalidInput, "control"),
        ("tab\there.md", InvalidInput, "control"),
        ("bell\x07.md", InvalidInput, "control"),
        ("del\x7f.md", InvalidInput, "control"),
        ("x" * 1025, LimitExceeded, "max_path_bytes"),
        ("é" * 513, LimitExceeded, "max_path_bytes"),
        ("d/" + "n" * 256, LimitExceeded, "255 bytes"),
        (".memory/transcript.jsonl", InvalidInput, "keeps for itself"),
        ("./.memory/tmp/x.tmp", InvalidInput, "keeps for itself"),
        ("", InvalidInput, "names no file"),
        ("./", InvalidInput, "names no file"),
        ("lone\udc80surrogate", InvalidInput, "surrogate"),
    ],
)
def test_a_dangerous_path_is_refused_and_writes_nothing(
    store: MemoryStore, outside: Path, path: str, error: type[Exception], says: str
) -> None:
    """Traversal, absolute paths, backslashes, NUL/control characters, over-long and reserved paths are refused."""
    with pytest.raises(error, match=re.escape(says)):
        store.files.write(path, "payload")
    with pytest.raises(error):
        store.files.read(path)
    with pytest.raises(error):
        store.files.delete(path)
    assert_nothing_written(store, outside)


@pytest.mark.parametrize(("given", "stored"), [("./a//b/./c.md", "a/b/c.md"), ("notes/", "notes"), ("a/.b", "a/.b")])
def test_dot_and_empty_segments_are_dropped(store: MemoryStore, given: str, stored: str) -> None:
    """'.' and empty segments vanish; the canonical path is what is stored and read."""
    assert store.files.write(given, "x").path == stored
    assert store.files.read(stored).content == "x"


def test_a_path_of_exactly_the_byte_limit_is_accepted(store: MemoryStore) -> None:
    """max_path_bytes (1024) is inclusive."""
    path = "/".join(["d" * 200] * 5) + "/" + "f" * 19
    assert len(path.encode()) == 1024
    assert store.files.write(path, "x").path == path


def test_a_folder_symlink_pointing_outside_is_refused_for_write_and_read(store: MemoryStore, outside: Path) -> None:
    """A symlinked folder inside the namespace that leads out cannot be written through or read through."""
    root = store.data_dir / "files" / "default"
    root.mkdir(parents=True)
    (root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(AccessDenied, match="outside the namespace"):
        store.files.write("link/planted.md", "payload")
    with pytest.raises(AccessDenied, match="outside the namespace"):
        store.files.read("link/secret.txt")
    with pytest.raises(AccessDenied):
        store.files.write("link/deeper/planted.md", "payload")
    assert_nothing_written(store, outside)


def test_a_file_symlink_pointing_outside_is_refused_for_write_and_read(store: MemoryStore, outside: Path) -> None:
    """A live file replaced by a symlink to an outside file is neither read nor written through."""
    store.files.write("notes.md", "mine")
    link = store.data_dir / "files" / "default" / "notes.md"
    link.unlink()
    link.symlink_to(outside / "secret.txt")
    with pytest.raises(AccessDenied, match="outside the namespace"):
        store.files.read("notes.md")
    with pytest.raises(AccessDenied, match="outside the namespace"):
        store.files.write("notes.md", "overwrite the secret")
    with pytest.raises(AccessDenied):
        store.files.delete("notes.md")
    assert tree(outside) == {"secret.txt": b"top secret"}
    assert [v.op for v in store.files.history("notes.md").versions] == ["create"]


def test_a_new_file_symlink_pointing_outside_is_not_picked_up_as_an_external_edit(
    store: MemoryStore, outside: Path
) -> None:
    """A symlink dropped into the folder does not leak the outside file into memory."""
    root = store.data_dir / "files" / "default"
    root.mkdir(parents=True)
    (root / "leak.md").symlink_to(outside / "secret.txt")
    with pytest.raises(AccessDenied):
        store.files.read("leak.md")
    assert store.files.counts()["file_versions"] == 0


def test_a_symlink_that_stays_inside_the_namespace_is_refused_too(store: MemoryStore) -> None:
    """Any symlink in the live tree is refused: where it leads can change between a check and a use."""
    store.files.write("real/a.md", "x")
    root = store.data_dir / "files" / "default"
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    with pytest.raises(AccessDenied, match="'alias' in the live-file folder is a symlink"):
        store.files.write("alias/b.md", "y")
    with pytest.raises(AccessDenied, match="symlink"):
        store.files.read("alias/a.md")
    assert sorted(os.listdir(root / "real")) == ["a.md"]
    assert [item.path for item in store.files.list().items] == ["real/a.md"]


def test_the_namespace_itself_cannot_hide_a_traversal(store: MemoryStore, outside: Path) -> None:
    """'..' or a path as the namespace is refused before anything is touched."""
    for namespace in ["..", "../outside", "/tmp", "a\\b"]:
        with pytest.raises(InvalidInput, match="namespace"):
            store.files.write("x.md", "payload", namespace=namespace)
    assert_nothing_written(store, outside)


# -- property ----------------------------------------------------------------------------------------

_ALPHABET = st.sampled_from(["a", "b", ".", "..", "/", "\\", "\x00", "\n", " ", "é", "~", "link", ".memory", ":"])
_PATHS = st.one_of(
    st.lists(_ALPHABET, max_size=12).map("".join),
    st.lists(st.sampled_from(["a", "..", ".", "", "link", "~", ".memory", "x y"]), max_size=8).map("/".join),
    st.lists(
        st.one_of(st.sampled_from(["..", ".", "", "link"]), st.text(alphabet="ab.é~ -_", min_size=1, max_size=6)),
        min_size=1,
        max_size=6,
    ).map("/".join),
    st.text(max_size=40),
)


@pytest.fixture
def store_with_escape_hatch(tmp_path: Path) -> Iterator[tuple[MemoryStore, Path]]:
    """A store whose default namespace holds 'link' → a folder outside (sync=normal: many quick writes)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    with MemoryStore.open(tmp_path / "s", sync="normal") as store:
        root = store.data_dir / "files" / "default"
        root.mkdir(parents=True)
        (root / "link").symlink_to(outside, target_is_directory=True)
        yield store, outside


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=_PATHS)
def test_no_accepted_path_ever_resolves_outside_the_namespace_root(
    store_with_escape_hatch: tuple[MemoryStore, Path], path: str
) -> None:
    """Whatever the path, a write either fails with an anticipated error or lands inside the namespace root."""
    store, outside = store_with_escape_hatch
    root = (store.data_dir / "files" / "default").resolve()
    try:
        meta = store.files.write(path, "payload")
    except MemoryServerError:
        pass
    else:
        location = (root / meta.path).resolve()
        assert location.is_relative_to(root) and location != root
        assert location.read_text() == "payload"
        assert meta.path.split("/")[0] != ".memory" and ".." not in meta.path.split("/")
    assert os.listdir(outside) == []
