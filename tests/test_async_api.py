"""The async library API: AetherGraph's "Store & Recall" tutorial, run as written, against a real store."""

from __future__ import annotations

import threading
from pathlib import Path

import anyio
import pytest

from mcp_memory_server import AsyncMemoryStore, InvalidInput, MemoryStore

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def test_aethergraph_tutorial_runs_unchanged(data_dir: Path, tmp_path: Path) -> None:
    """Every snippet of the AetherGraph tutorial (Tutorial 4) runs as written and returns real records."""
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.4 quarterly report")
    png_bytes = PNG
    store = await AsyncMemoryStore.open(data_dir)
    try:
        arts = store.artifacts
        mem = store.events

        # 1A. Ingest an existing file
        art = await arts.save_file(
            path=str(report),
            kind="report",
            labels={"exp": "A"},
        )
        path = await arts.as_local_file(art)
        assert Path(path).read_bytes() == report.read_bytes()

        # 1B. Stream-write, atomically
        async with arts.writer(kind="plot", planned_ext=".png") as w:
            w.write(png_bytes)
        assert w.record is not None and w.record.kind == "plot" and w.record.mime == "image/png"
        assert arts.last_artifact == w.record
        uri = w.record.uri

        # 2A. Record a typed result
        await mem.record_tool_result(
            tool="train.step",
            outputs=[
                {"name": "val_acc", "kind": "number", "value": 0.912},
                {"name": "ckpt_uri", "kind": "uri", "value": uri},
            ],
        )
        recent = await mem.recent_tool_results(tool="train.step", limit=10)
        assert [e.tool for e in recent] == ["train.step"]
        last = await mem.last_by_name("val_acc")
        assert last is not None and last.value == 0.912

        # 2B. Log arbitrary events
        await mem.record(
            kind="train_log",
            data={"epoch": 1, "loss": 0.25, "acc": 0.91},
        )
        recent = await mem.recent(kinds=["train_log"], limit=3)
        assert [e.kind for e in recent] == ["train_log"]
        logs = await mem.recent_data(kinds=["train_log"], limit=3)
        assert logs == [{"epoch": 1, "loss": 0.25, "acc": 0.91}]

        # 3A. Search by labels
        hits = await arts.search(
            kind="report",
            labels={"exp": "A"},
        )
        assert [h.artifact_id for h in hits.items] == [art.artifact_id]

        # 3B. Best so far by a metric
        await arts.save_text("ckpt-1", kind="checkpoint", metrics={"val_acc": 0.8})
        good = await arts.save_text("ckpt-2", kind="checkpoint", metrics={"val_acc": 0.9})
        best = await arts.best(
            kind="checkpoint",
            metric="val_acc",
            mode="max",
            scope="run",
        )
        assert best is not None and best.artifact_id == good.artifact_id
        if best:
            best_path = await arts.as_local_file(best)
        assert Path(best_path).read_text() == "ckpt-2"

        # 4A-C. Small JSON/text, browse this run, pin
        cfg_art = await arts.save_json({"lr": 1e-3, "batch": 64})
        log_art = await arts.save_text("training finished ok")
        all_run_outputs = await arts.list(scope="run")
        assert {cfg_art.artifact_id, log_art.artifact_id, art.artifact_id} <= {
            a.artifact_id for a in all_run_outputs.items
        }
        await arts.pin(artifact_id=cfg_art.artifact_id)
        assert (await arts.get(cfg_art.artifact_id)).pinned
    finally:
        await store.close()


async def test_async_calls_run_off_the_event_loop_thread(data_dir: Path) -> None:
    """Blocking store work runs on a worker thread, never on the loop's own thread."""
    loop_thread = threading.get_ident()
    seen: list[int] = []
    async with await AsyncMemoryStore.open(data_dir) as store:
        original = store.events.sync.record

        def spy(*args: object, **kwargs: object) -> object:
            seen.append(threading.get_ident())
            return original(*args, **kwargs)

        store.events.sync.record = spy  # type: ignore[method-assign]
        await store.events.record(kind="note", text="hello")
    assert seen and loop_thread not in seen


async def test_writer_that_raises_leaves_no_record_and_no_temp(data_dir: Path) -> None:
    """An error inside ``async with writer()`` leaves no record, no blob and no temp file."""
    async with await AsyncMemoryStore.open(data_dir) as store:
        with pytest.raises(RuntimeError, match="boom"):
            async with store.artifacts.writer(kind="plot", planned_ext=".png") as w:
                w.write(PNG)
                raise RuntimeError("boom")
        assert (await store.artifacts.list()).items == []
        assert list((data_dir / "blobs").glob(".tmp-*")) == []
        assert (await store.stats()).counts["blobs"] == 0


async def test_cancelled_writer_commits_nothing(data_dir: Path) -> None:
    """A cancellation inside ``async with writer()`` discards the pending bytes: nothing half-written remains."""
    async with await AsyncMemoryStore.open(data_dir) as store:
        with anyio.move_on_after(0.05):
            async with store.artifacts.writer(kind="plot") as w:
                w.write(PNG)
                await anyio.sleep(10)
        assert (await store.artifacts.list()).items == []
        assert list((data_dir / "blobs").glob(".tmp-*")) == []


async def test_cancelled_save_is_all_or_nothing(data_dir: Path) -> None:
    """Cancelling awaits of saves never leaves a record without its blob: every record that exists reads back."""
    async with await AsyncMemoryStore.open(data_dir) as store:
        for i in range(20):
            with anyio.move_on_after(0.001 * (i % 5)):
                await store.artifacts.save_text(f"payload {i} " * 1000, kind="text")
        records = (await store.artifacts.list(limit=100)).items
        for record in records:
            assert (await store.artifacts.read_bytes(record)).startswith(b"payload ")


async def test_async_store_is_the_same_data_as_the_sync_store(data_dir: Path) -> None:
    """What the async API writes, the sync API reads (one data directory, two faces)."""
    async with await AsyncMemoryStore.open(data_dir) as store:
        saved = await store.files.write("notes/plan.md", "step 1")
    with MemoryStore.open(data_dir) as sync:
        back = sync.files.read("notes/plan.md")
        assert back.content == "step 1"
        assert back.meta.sha256 == saved.sha256


async def test_unknown_setting_is_refused_with_its_name(data_dir: Path) -> None:
    """A misspelt setting is refused, naming it and the closest valid one, and no store is created."""
    with pytest.raises(InvalidInput, match=r"unknown setting 'hot_windw'; did you mean 'hot_window'"):
        await AsyncMemoryStore.open(data_dir, hot_windw=3)
    with pytest.raises(InvalidInput, match="unknown setting 'hot_windw'"):
        MemoryStore.open(data_dir, hot_windw=3)
    assert not data_dir.exists()


def test_sync_pin_takes_artifact_id_keyword(store: MemoryStore) -> None:
    """``pin(artifact_id=...)`` (AetherGraph's spelling) pins; giving neither or both refs is refused."""
    record = store.artifacts.save_text("keep me")
    assert store.artifacts.pin(artifact_id=record.artifact_id).pinned
    with pytest.raises(InvalidInput, match="exactly one record"):
        store.artifacts.pin()
    with pytest.raises(InvalidInput, match="exactly one record"):
        store.artifacts.pin(record.artifact_id, artifact_id=record.artifact_id)


def test_sync_list_by_scope_lists_only_this_run(data_dir: Path) -> None:
    """``list(scope="run")`` returns what this run produced, not other runs' records."""
    with MemoryStore.open(data_dir, run_id="run-a") as first:
        old = first.artifacts.save_text("from run a")
    with MemoryStore.open(data_dir, run_id="run-b") as second:
        new = second.artifacts.save_text("from run b")
        assert [a.artifact_id for a in second.artifacts.list(scope="run").items] == [new.artifact_id]
        assert {a.artifact_id for a in second.artifacts.list().items} == {old.artifact_id, new.artifact_id}
