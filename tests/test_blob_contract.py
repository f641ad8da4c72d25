"""The blob-store contract, run against both stores: the local ``blobs/`` folder and an S3 bucket.

The bucket is a real S3 HTTP endpoint (``moto_server`` on 127.0.0.1, started once per test
session by :mod:`_s3`, or the one ``$MCP_MEMORY_TEST_S3_ENDPOINT`` names); each test gets a
prefix of its own in it. Both stores come from :func:`open_blob_store`, configured the way
an operator would: ``blob_url`` plus the standard ``AWS_*`` environment variables.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import stat
import subprocess
import sys
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _procs import clean_env
from _s3 import BUCKET, CREDENTIALS, client_env, start, stop

from mcp_memory_server import MemoryStore
from mcp_memory_server.config import Config
from mcp_memory_server.core._context import StoreContext
from mcp_memory_server.errors import InvalidInput, NotFound, StorageError
from mcp_memory_server.storage.blobs import BlobStore, LocalBlobStore
from mcp_memory_server.storage.objectstore import S3BlobStore
from mcp_memory_server.storage.open import open_database
from mcp_memory_server.storage.open_blobs import open_blob_store
from mcp_memory_server.store import blob_references

MiB = 1 << 20


def _bucket_url() -> str:
    return f"s3://{BUCKET}/t-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """The ``blob_url`` of the store under test (None: the local folder); the AWS variables set for a bucket."""
    if request.param == "local":
        return None
    endpoint = request.getfixturevalue("s3_endpoint")
    for name, value in client_env(endpoint).items():
        monkeypatch.setenv(name, value)
    return _bucket_url()


@pytest.fixture
def blobs(backend: str | None, tmp_path: Path) -> BlobStore:
    return open_blob_store(Config.load({"blob_url": backend}), tmp_path / "data")


@pytest.fixture
def s3_blobs(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> S3BlobStore:
    """A bucket store only, for what only a bucket has (its key layout, objects written by others)."""
    for name, value in client_env(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    store = open_blob_store(Config.load({"blob_url": _bucket_url()}), tmp_path / "data")
    assert isinstance(store, S3BlobStore)
    return store


def _s3_client(store: BlobStore) -> Any:
    assert isinstance(store, S3BlobStore)
    return store._client


def _chunks(seed: int, total: int, size: int = MiB) -> Iterator[bytes]:
    rng = random.Random(seed)
    for start_at in range(0, total, size):
        yield rng.randbytes(min(size, total - start_at))


def _payload(seed: int, total: int) -> bytes:
    return b"".join(_chunks(seed, total))


# -- put-if-absent and dedup -------------------------------------------------------------------------


def test_identical_bytes_are_stored_once(blobs: BlobStore) -> None:
    """The same bytes by put_bytes twice and by put_stream in pieces: one digest, one stored blob."""
    data = b"the same bytes " * 1000
    first = blobs.put_bytes(data)
    second = blobs.put_bytes(data)
    streamed = blobs.put_stream(iter([data[:7], data[7:5000], data[5000:]]))
    assert first == second == streamed
    assert first.sha256 == hashlib.sha256(data).hexdigest() and first.size == len(data)
    assert list(blobs.digests()) == [first.sha256]
    assert blobs.total_bytes() == len(data)
    assert blobs.read(first.sha256) == data


def test_threads_racing_the_same_bytes_all_succeed_and_store_one_blob(blobs: BlobStore) -> None:
    """Eight writers of identical bytes at once: each gets the digest, none fails, one blob remains."""
    data = _payload(1, 3 * MiB)
    gate = threading.Barrier(8)
    results: list[Any] = []

    def write(n: int) -> None:
        gate.wait()
        try:
            results.append(blobs.put_bytes(data) if n % 2 else blobs.put_stream(_chunks(1, 3 * MiB)))
        except Exception as exc:  # collected: an exception in a thread would not fail the test
            results.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = hashlib.sha256(data).hexdigest()
    assert [getattr(r, "sha256", r) for r in results] == [expected] * 8
    assert list(blobs.digests()) == [expected]
    assert blobs.read(expected) == data


_RACER = r"""
import json, sys, time, random
from pathlib import Path
from mcp_memory_server.config import Config
from mcp_memory_server.storage.open_blobs import open_blob_store

url, data_dir, go, size = sys.argv[1] or None, Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
store = open_blob_store(Config.load({"blob_url": url}), data_dir)
rng = random.Random(7)
chunks = [rng.randbytes(min(1 << 20, size - at)) for at in range(0, size, 1 << 20)]
print("ready", flush=True)
while not go.exists():
    time.sleep(0.002)
info = store.put_stream(iter(chunks))
print(json.dumps({"sha256": info.sha256, "size": info.size}), flush=True)
"""


def test_processes_on_separate_hosts_racing_the_same_big_payload_store_it_once(
    backend: str | None, tmp_path: Path
) -> None:
    """Three processes (each with its own local folder for a bucket) upload the same 9 MiB (multipart) at once."""
    size = 9 * MiB  # over the 8 MiB part size: the multipart path, completed with If-None-Match
    go = tmp_path / "go"
    racers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _RACER,
                backend or "",
                str(tmp_path / ("data" if backend is None else f"host{n}")),
                str(go),
                str(size),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        for n in range(3)
    ]
    try:
        for racer in racers:
            assert racer.stdout is not None
            assert racer.stdout.readline().strip() == "ready", racer.stderr.read() if racer.stderr else ""
        go.touch()
        outcomes = [racer.communicate(timeout=120) for racer in racers]
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
                racer.wait()
    expected = hashlib.sha256(_payload_from_racer(size)).hexdigest()
    assert [racer.returncode for racer in racers] == [0, 0, 0], [err[-2000:] for _, err in outcomes]
    assert [json.loads(out) for out, _ in outcomes] == [{"sha256": expected, "size": size}] * 3
    store = open_blob_store(Config.load({"blob_url": backend}), tmp_path / "data")
    assert list(store.digests()) == [expected]
    assert store.size(expected) == size
    if backend is not None:  # no multipart upload left half-done by the losers
        client = _s3_client(store)
        assert client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def _payload_from_racer(size: int) -> bytes:
    rng = random.Random(7)
    return b"".join(rng.randbytes(min(MiB, size - at)) for at in range(0, size, MiB))


# -- streaming and reads -----------------------------------------------------------------------------


def test_a_multi_mib_stream_is_stored_without_holding_the_payload_in_memory(blobs: BlobStore) -> None:
    """32 MiB from a generator: stored whole, while the peak of Python allocations stays under half of it.

    A store that buffered the payload (or a conditional PUT that needs it whole) would peak
    above 32 MiB; the bucket holds one 8 MiB part at a time, the folder one chunk.
    """
    total = 32 * MiB
    hasher = hashlib.sha256()
    for chunk in _chunks(2, total):
        hasher.update(chunk)
    tracemalloc.start()
    try:
        info = blobs.put_stream(_chunks(2, total))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.sha256 == hasher.hexdigest() and info.size == total
    assert peak < total // 2, f"put_stream held {peak} bytes at once for a {total}-byte payload"
    assert blobs.size(info.sha256) == total
    check = hashlib.sha256()
    with blobs.open(info.sha256) as handle:
        for chunk in iter(lambda: handle.read(3 * MiB + 17), b""):
            check.update(chunk)
    assert check.hexdigest() == info.sha256


def test_range_reads_return_exactly_the_bytes_asked_for(blobs: BlobStore) -> None:
    """read(offset, length) is a range: inside, across the end, at and past the end, zero length."""
    data = _payload(3, 100_000)
    digest = blobs.put_bytes(data).sha256
    assert blobs.read(digest) == data
    assert blobs.read(digest, 0, 10) == data[:10]
    assert blobs.read(digest, 1000, 5000) == data[1000:6000]
    assert blobs.read(digest, 5) == data[5:]
    assert blobs.read(digest, len(data) - 3, 100) == data[-3:]
    assert blobs.read(digest, len(data)) == b""
    assert blobs.read(digest, len(data) + 10, 5) == b""
    assert blobs.read(digest, 7, 0) == b""
    empty = blobs.put_bytes(b"").sha256
    assert blobs.read(empty) == b"" and blobs.read(empty, 0, 10) == b"" and blobs.size(empty) == 0


def test_open_streams_and_seeks(blobs: BlobStore) -> None:
    """open() reads in pieces to the end, seeks from the start, the current position and the end."""
    data = _payload(4, 2 * MiB + 123)
    digest = blobs.put_bytes(data).sha256
    with blobs.open(digest) as handle:
        pieces = list(iter(lambda: handle.read(300_001), b""))
        assert b"".join(pieces) == data and len(pieces) == 7
        handle.seek(500)
        assert handle.read(10) == data[500:510]
        assert handle.tell() == 510
        handle.seek(20, os.SEEK_CUR)
        assert handle.read(5) == data[530:535]
        handle.seek(-10, os.SEEK_END)
        assert handle.read() == data[-10:]
        handle.seek(0)
        assert handle.read(4) == data[:4]


def test_a_missing_blob_is_not_found_everywhere(blobs: BlobStore) -> None:
    """A digest never stored: exists is False, every read says NotFound, delete is a no-op; a bad digest is refused."""
    absent = hashlib.sha256(b"never stored").hexdigest()
    assert not blobs.exists(absent)
    for call in (
        lambda: blobs.read(absent),
        lambda: blobs.read(absent, 3, 0),
        lambda: blobs.open(absent),
        lambda: blobs.size(absent),
        lambda: blobs.modified_at(absent),
        lambda: blobs.local_path(absent),
    ):
        with pytest.raises(NotFound, match=f"no blob with sha256 {absent}"):
            call()
    blobs.delete(absent)
    with pytest.raises(InvalidInput, match="is not a sha256 digest"):
        blobs.read("../../etc/passwd")
    with pytest.raises(InvalidInput, match="is not a sha256 digest"):
        blobs.exists("ABC")


def test_delete_removes_one_blob_and_the_totals_follow(blobs: BlobStore) -> None:
    """Two blobs, one deleted: it is gone from exists, reads, digests and total_bytes; the other stays."""
    keep = blobs.put_bytes(b"keep me" * 10)
    drop = blobs.put_bytes(b"drop me" * 100)
    assert sorted(blobs.digests()) == sorted([keep.sha256, drop.sha256])
    assert blobs.total_bytes() == keep.size + drop.size
    before = time.time()
    assert before - 120 < blobs.modified_at(drop.sha256) <= before + 5
    blobs.delete(drop.sha256)
    assert not blobs.exists(drop.sha256)
    with pytest.raises(NotFound):
        blobs.read(drop.sha256)
    assert list(blobs.digests()) == [keep.sha256]
    assert blobs.total_bytes() == keep.size
    assert blobs.read(keep.sha256) == b"keep me" * 10


def test_local_path_is_a_read_only_local_copy_under_the_data_directory(blobs: BlobStore, tmp_path: Path) -> None:
    """local_path gives the bytes as a local file (downloaded once for a bucket) that nobody can write."""
    data = _payload(5, 3 * MiB)
    digest = blobs.put_bytes(data).sha256
    path = blobs.local_path(digest)
    assert path.is_relative_to(tmp_path / "data")
    assert path.read_bytes() == data
    assert path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) == 0
    assert blobs.local_path(digest) == path
    assert not list(path.parent.glob(".tmp-*")) and not list((tmp_path / "data").rglob(".tmp-*"))
    blobs.delete(digest)
    with pytest.raises(NotFound):  # a cached copy is not served for a deleted blob
        blobs.local_path(digest)


def test_stale_temps_of_dead_writers_are_swept(blobs: BlobStore) -> None:
    """A temp left by a killed writer (its pid gone) is removed at start-up; a live writer's is kept."""
    assert isinstance(blobs, LocalBlobStore | S3BlobStore)
    dead = blobs.temp_dir / ".tmp-999999999-deadbeef"
    dead.write_bytes(b"half a blob")
    live = blobs.temp()
    live.write(b"in progress")
    assert blobs.remove_stale_temps() == 1
    assert not dead.exists() and live.path.exists()
    live.discard()


# -- staging and the gc guarantee --------------------------------------------------------------------


def test_confirm_restores_blobs_deleted_between_staging_and_confirm(blobs: BlobStore, tmp_path: Path) -> None:
    """gc's race, forced: new bytes, streamed multipart bytes and reused bytes, each deleted after staging.

    Inside the write transaction confirm finds each gone and re-uploads it from what the
    write staged (the local copy, or the bytes held in memory for a reused blob).
    """
    db = _database(tmp_path)
    try:
        reused = b"bytes stored before the write " * 50
        blobs.put_bytes(reused)
        big = _payload(6, 9 * MiB)
        with blobs.pending() as pending:
            fresh = pending.put_bytes(b"new bytes " * 300).sha256
            held = pending.put_bytes(reused).sha256
            temp = pending.temp()
            for chunk in _chunks(6, 9 * MiB):
                temp.write(chunk)
            streamed = temp.finish().sha256
            for digest in (fresh, held, streamed):
                assert blobs.exists(digest)
                blobs.delete(digest)  # what gc does, in its own transaction, between staging and confirm
                assert not blobs.exists(digest)
            with db.write() as conn:
                pending.confirm(conn, [fresh, held, streamed])
                assert all(blobs.exists(d) for d in (fresh, held, streamed))
            assert pending.read(streamed, 9 * MiB - 4) == big[-4:]
        assert blobs.read(fresh) == b"new bytes " * 300
        assert blobs.read(held) == reused
        assert blobs.read(streamed, 5 * MiB, 100) == big[5 * MiB : 5 * MiB + 100]
        assert not list(blobs.temp_dir.glob(".tmp-*"))  # the staged copies went with the write
    finally:
        db.close()


def test_confirm_refuses_unknown_digests_and_runs_only_inside_a_transaction(blobs: BlobStore, tmp_path: Path) -> None:
    """A digest nobody holds cannot be referenced; a confirm outside the write transaction would prove nothing."""
    db = _database(tmp_path)
    try:
        with blobs.pending() as pending:
            digest = pending.put_bytes(b"staged").sha256
            with pytest.raises(RuntimeError, match="inside the write transaction"):
                pending.confirm(db.conn, [digest])  # the reference would commit without the check
            with pytest.raises(StorageError, match="missing from the blob folder"), db.write() as conn:
                pending.confirm(conn, ["0" * 64])
    finally:
        db.close()


def _database(tmp_path: Path) -> Any:
    """The store's real database (SQLite here, PostgreSQL under ``--engine postgres``), its schema in place."""
    db = open_database(Config.load({}), tmp_path)
    db.migrate(db.migrations)
    return db


def _open_store(data_dir: Path, blob_url: str | None, database_url: str) -> MemoryStore:
    """A real store on ``blob_url``, each on its own data directory, all on one database.

    Until store.py opens the configured blob store itself (its one line
    ``self.blobs = open_blob_store(config, self.data_dir)``), the same store is put in
    place here before any capability is built.
    """
    store = MemoryStore.open(data_dir, blob_url=blob_url, database_url=database_url)
    blobs: Any = open_blob_store(store.config, store.data_dir)
    store.blobs = blobs
    store.ctx = StoreContext(store.config, store.db, blobs, store.data_dir, store.run_id)
    return store


def test_saves_of_reused_bytes_raced_against_a_collector_lose_no_acknowledged_write(
    backend: str | None, tmp_path: Path, database_url: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    """Real stores on one database: writers save bytes whose blobs are orphans while a collector deletes orphans.

    The collector does what gc does minus the age grace (a stronger adversary): inside a
    write transaction it re-reads the references and deletes every listed blob none holds.
    For a bucket each store is a separate "host" (its own data directory and staging
    folder). Every acknowledged artifact and file version must read back whole.
    """
    shared = database_url or f"sqlite:///{tmp_path / 'shared.db'}"
    hosts = [tmp_path / ("data" if backend is None else f"host{n}") for n in range(3)]
    stores = [_open_store(host, backend, shared) for host in hosts]
    writer_a, writer_b, collector = stores
    stop_collecting = threading.Event()
    deleted = [0]
    errors: list[BaseException] = []

    def collect_once() -> None:
        candidates = list(collector.blobs.digests())
        with collector.db.write() as conn:
            held = {row[0] for sql in blob_references() for row in conn.execute(sql)}
            for digest in candidates:
                if digest not in held:
                    collector.blobs.delete(digest)
                    deleted[0] += 1

    def collect() -> None:
        try:
            while not stop_collecting.is_set():
                collect_once()
        except BaseException as exc:  # collected: an exception in a thread would not fail the test
            errors.append(exc)

    def saving(fn: Callable[[], Any], saved: dict[str, Any], name: str) -> Callable[[], None]:
        def run() -> None:
            try:
                saved[name] = fn()
            except BaseException as exc:
                errors.append(exc)

        return run

    acknowledged: list[tuple[str, str, str]] = []
    caplog.set_level(logging.INFO, logger="mcp_memory_server.storage.blobs")
    collector_thread = threading.Thread(target=collect)
    try:
        collector_thread.start()
        for r in range(12):
            text = f"round {r} " + "x" * 2000
            orphan = writer_a.artifacts.save_text(text, kind="orphan")  # its blob, about to be unreferenced
            writer_a.artifacts.delete(orphan.artifact_id)
            saved: dict[str, Any] = {}
            savers = [
                threading.Thread(
                    target=saving(lambda t=text: writer_a.artifacts.save_text(t, kind="race"), saved, "art")
                ),
                threading.Thread(
                    target=saving(
                        lambda t=text, r=r: writer_b.files.write(f"race/{r}.md", t, namespace="race"), saved, "file"
                    )
                ),
            ]
            for saver in savers:
                saver.start()
            for saver in savers:
                saver.join()
            assert errors == []
            acknowledged.append(("art", saved["art"].artifact_id, text))
            acknowledged.append(("file", f"race/{r}.md", text))
            assert writer_b.artifacts.read(saved["art"].artifact_id).content == text  # read from another host
            assert writer_a.files.read(f"race/{r}.md", namespace="race").content == text
        stop_collecting.set()
        collector_thread.join()
        assert errors == []
        collect_once()  # the collector has the last word
        assert deleted[0] > 0  # it really deleted orphans meanwhile
        for kind, ref, text in acknowledged:  # every acknowledged write is still whole
            if kind == "art":
                assert collector.artifacts.read(ref).content == text
            else:
                assert collector.files.read(ref, namespace="race").content == text
        referenced = {row[0] for sql in blob_references() for row in collector.db.query(sql)}
        assert sorted(d for d in referenced if not collector.blobs.exists(d)) == []
        restored = sum("was removed by gc after this write" in m for m in caplog.messages)
        print(f"collector deleted {deleted[0]} blobs; writes restored {restored}")
    finally:
        stop_collecting.set()
        if collector_thread.is_alive():
            collector_thread.join()
        for store in stores:
            store.close()


# -- the bucket only: configuration and errors -------------------------------------------------------


def test_a_bucket_store_keeps_content_in_the_bucket_under_its_prefix(s3_blobs: S3BlobStore) -> None:
    """Content-addressed keys ``<prefix>/sha256/ab/cd/<hex>`` in the bucket, nothing outside the prefix."""
    digest = s3_blobs.put_bytes(b"where does it go").sha256
    prefix = s3_blobs.prefix
    listed = _s3_client(s3_blobs).list_objects_v2(Bucket=BUCKET, Prefix=prefix + "/")
    assert [item["Key"] for item in listed["Contents"]] == [f"{prefix}/sha256/{digest[:2]}/{digest[2:4]}/{digest}"]


def test_local_path_refuses_an_object_whose_bytes_do_not_match_its_name(s3_blobs: S3BlobStore) -> None:
    """An object overwritten behind the program's back is not materialised: a clear error, no cached file."""
    blobs = s3_blobs
    digest = blobs.put_bytes(b"the real bytes").sha256
    _s3_client(blobs).put_object(Bucket=BUCKET, Key=blobs._key(digest), Body=b"other bytes")
    with pytest.raises(StorageError, match="holds other bytes"):
        blobs.local_path(digest)
    assert not blobs._cache_path(digest).exists() and not list(blobs.temp_dir.glob(".tmp-*"))


def test_bad_blob_urls_are_refused_naming_the_accepted_forms(tmp_path: Path) -> None:
    """Another scheme, a bare path, no bucket or URL options: InvalidInput naming s3://bucket/prefix and the default."""
    for url in ("gs://bucket/x", "/srv/blobs", "s3:///no-bucket", "s3://bucket/x?endpoint=y"):
        with pytest.raises(InvalidInput, match=r"use s3://bucket or s3://bucket/prefix, or leave blob_url unset"):
            open_blob_store(Config.load({"blob_url": url}), tmp_path)
    with pytest.raises(InvalidInput, match="is not an S3 bucket name"):
        open_blob_store(Config.load({"blob_url": "s3://Key:Secret@Bucket/x"}), tmp_path)
    assert Config.load({}, environ={"MCP_MEMORY_BLOB_URL": "s3://b/p"}).blob_url == "s3://b/p"


def test_an_absent_bucket_is_a_clear_error_at_open(
    s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bucket name the endpoint does not have fails at start-up, saying create it or fix the URL."""
    for name, value in client_env(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(StorageError, match=r"the bucket 'no-such-bucket' does not exist at http://127\.0\.0\.1"):
        open_blob_store(Config.load({"blob_url": "s3://no-such-bucket/p"}), tmp_path)


def test_refused_credentials_are_a_clear_error_at_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An endpoint that checks signatures (moto with auth on) refuses an unknown key: the message names the fix."""
    endpoint = start(tmp_path / "auth", auth=True, bucket=None)
    try:
        for name, value in client_env(endpoint).items():
            monkeypatch.setenv(name, value)
        with pytest.raises(StorageError, match=r"refused the credentials.*check AWS_ACCESS_KEY_ID"):
            open_blob_store(Config.load({"blob_url": f"s3://{BUCKET}/p"}), tmp_path / "data")
    finally:
        stop(tmp_path / "auth")


def test_missing_credentials_and_an_unreachable_endpoint_are_clear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No keys anywhere, a port nothing listens on, an unknown AWS_PROFILE: each says which variable to fix."""
    for name in (*CREDENTIALS, "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))  # not the developer's ~/.aws
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    with pytest.raises(StorageError, match="no credentials for the object store"):
        open_blob_store(Config.load({"blob_url": f"s3://{BUCKET}"}), tmp_path / "a")
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(StorageError, match=r"cannot reach the object store at http://127\.0\.0\.1:9"):
        open_blob_store(Config.load({"blob_url": f"s3://{BUCKET}"}), tmp_path / "b")
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    with pytest.raises(StorageError, match=r"no-such-profile.*check AWS_PROFILE"):
        open_blob_store(Config.load({"blob_url": f"s3://{BUCKET}"}), tmp_path / "c")


def test_an_aws_profile_supplies_the_credentials(
    s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No key variables, only AWS_PROFILE naming a profile of the credentials file: the bucket opens and works."""
    for name in (*CREDENTIALS, "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    credentials = tmp_path / "credentials"
    credentials.write_text("[memory]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_PROFILE", "memory")
    store = open_blob_store(Config.load({"blob_url": _bucket_url()}), tmp_path / "data")
    digest = store.put_bytes(b"through a profile").sha256
    assert store.read(digest) == b"through a profile"
