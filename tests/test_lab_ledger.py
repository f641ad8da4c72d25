"""The ledger: logging runs, bad input, champion board, lineages, failure clusters, results.tsv."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mcp_memory_server import AccessDenied, InvalidInput, MemoryStore, NotFound
from mcp_memory_server.core.lab import LabRun
from mcp_memory_server.core.lab.novelty import READING
from mcp_memory_server.embeddings import Embedder

RESULTS_TSV = (
    "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
    "a1b2c3d\t0.997900\t44.0\tkeep\tbaseline\n"
    "b2c3d4e\t0.993200\t44.2\tkeep\tincrease LR to 0.04\n"
    "c3d4e5f\t1.005000\t44.0\tdiscard\tswitch to GeLU activation\n"
    "d4e5f6g\t0.000000\t0.0\tcrash\tdouble model width (OOM)\n"
    "e5f6a7b\t0.991000\t44.1\tkeep\twarmdown ratio 0.5\n"
)


@pytest.fixture
def store(data_dir: Path, embedding_model: Embedder) -> Iterator[MemoryStore]:
    """A fresh store whose embedder is ready at once: the session already loaded the model."""
    with MemoryStore.open(data_dir) as opened:
        yield opened


def _nothing_written(store: MemoryStore) -> None:
    assert store.lab.count() == 0
    assert store.artifacts.count() == 0


# -- logging -----------------------------------------------------------------------------------------


def test_a_logged_run_keeps_every_field_and_stores_log_patch_and_summary_artifacts(store: MemoryStore) -> None:
    """experiment_log records the run, its packet and guard, and saves log, patch and summary as artifacts."""
    run = store.lab.log(
        "raise the learning rate to 0.04", "keep", {"val_bpb": 0.9912, "memory_gb": 44.1},
        commit="b2c3d4e", parent_commit="a1b2c3d", branch="autoresearch/mar5", family="lr",
        hypothesis="a higher lr converges faster in 5 minutes", tags=["optimizer"], notes="seed 0",
        log_text="step 100 loss 3.2\nval_bpb: 0.9912\n", patch="--- a/train.py\n+++ b/train.py\n",
        ts="2026-03-05T01:02:03Z",
    )  # fmt: skip
    assert store.lab.get(run.run_id) == run
    assert (run.commit, run.parent_commit, run.branch, run.family, run.status) == (
        "b2c3d4e", "a1b2c3d", "autoresearch/mar5", "lr", "keep",
    )  # fmt: skip
    assert run.ts == "2026-03-05T01:02:03.000000Z"
    assert run.tags == ["optimizer"] and run.metrics == {"val_bpb": 0.9912, "memory_gb": 44.1}
    assert run.novelty_guard is not None and run.novelty_guard.classification == "novel"
    assert run.decision_packet is not None and run.decision_packet.next_action == "promote"
    roles = {a.role: a for a in run.artifacts}
    assert set(roles) == {"log", "patch", "summary"}
    assert store.artifacts.read_bytes(roles["log"].artifact_id) == b"step 100 loss 3.2\nval_bpb: 0.9912\n"
    assert store.artifacts.get(roles["patch"].artifact_id).kind == "run_patch"
    summary = json.loads(store.artifacts.read_bytes(roles["summary"].artifact_id))
    assert summary["run_id"] == run.run_id and summary["decision_packet"]["next_action"] == "promote"
    assert store.artifacts.get(roles["log"].artifact_id).labels == {"lab_run_id": run.run_id, "commit": "b2c3d4e"}


def test_a_crash_without_an_error_gets_it_from_the_log_tail(store: MemoryStore, tmp_path: Path) -> None:
    """The last error line of the run log becomes the error summary; out of memory means fix_and_retry."""
    log = tmp_path / "run.log"
    log.write_text("\n".join(f"step {i}" for i in range(100)) + "\ntorch.OutOfMemoryError: CUDA out of memory.\n")
    run = store.lab.log("depth 16", "crash", log_path=str(log))
    assert run.error is not None
    assert (run.error.summary, run.error.source, run.error.kind) == (
        "torch.OutOfMemoryError: CUDA out of memory.", "log", "memory",
    )  # fmt: skip
    assert run.error.tail.splitlines()[-1] == "torch.OutOfMemoryError: CUDA out of memory."
    assert len(run.error.tail.splitlines()) == 30
    assert run.decision_packet is not None and run.decision_packet.next_action == "fix_and_retry"
    assert run.decision_packet.error == run.error


def test_a_kept_run_is_compared_with_the_champion_and_its_parent(store: MemoryStore) -> None:
    """The comparison names the previous champion, the delta, and the parent commit's value."""
    base = store.lab.log("baseline", "keep", {"val_bpb": 1.0}, commit="c0")
    child = store.lab.log("lr 0.04", "keep", {"val_bpb": 0.998}, commit="c1", parent_commit="c0")
    assert child.decision_packet is not None
    comparison = child.decision_packet.comparison
    assert comparison.champion_run_id == base.run_id and comparison.new_champion
    assert comparison.delta == pytest.approx(-0.002) and comparison.improvement == pytest.approx(0.002)
    assert comparison.parent_run_id == base.run_id and comparison.parent_improvement == pytest.approx(0.002)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"status": "maybe"}, InvalidInput, "status='maybe' is not valid; use keep, discard or crash"),
        ({"status": "keep"}, InvalidInput, r"a kept run needs metrics\['val_bpb'\]"),
        ({"status": "keep", "metrics": {"memory_gb": 40.0}}, InvalidInput, r"needs metrics\['val_bpb'\]"),
        ({"status": "discard", "metrics": {"val_bpb": "low"}}, InvalidInput, "must be a finite number"),
        ({"status": "discard", "description": "  "}, InvalidInput, "description must not be empty"),
        ({"status": "crash", "error": {"summary": ""}}, InvalidInput, "error.summary must not be empty"),
        ({"status": "crash", "error": {"why": "x"}}, InvalidInput, "unknown error field"),
        ({"status": "discard", "mode": "yolo"}, InvalidInput, "mode='yolo' is not valid"),
        ({"status": "discard", "ts": "yesterday"}, InvalidInput, "not an RFC 3339 timestamp"),
        ({"status": "discard", "log_text": "a", "log_path": "b"}, InvalidInput, "log_text or log_path"),
        ({"status": "discard", "artifact_ids": ["art_missing"]}, NotFound, "no artifact"),
        ({"status": "discard", "log_path": "/etc/hostname"}, AccessDenied, "outside the allowed roots"),
    ],
)
def test_bad_run_input_is_refused_with_a_clear_error_and_nothing_is_written(
    store: MemoryStore, kwargs: dict, error: type[Exception], message: str
) -> None:
    """Unknown status, a kept run without the metric, bad metrics or paths: refused, and no run or artifact stored."""
    arguments = {"description": "lr 0.04", **kwargs}
    with pytest.raises(error, match=message):
        store.lab.log(**arguments)
    _nothing_written(store)


def test_the_primary_metric_and_direction_are_configurable(data_dir: Path, embedding_model: Embedder) -> None:
    """With lab_metric=val_acc and lab_direction=max, higher accuracy wins and kept runs need val_acc."""
    with MemoryStore.open(data_dir, lab_metric="val_acc", lab_direction="max") as store:
        with pytest.raises(InvalidInput, match=r"metrics\['val_acc'\]"):
            store.lab.log("baseline", "keep", {"val_bpb": 1.0})
        store.lab.log("baseline", "keep", {"val_acc": 0.80})
        better = store.lab.log("mixup", "keep", {"val_acc": 0.83})
        assert better.decision_packet is not None and better.decision_packet.next_action == "promote"
        board = store.lab.board()
        assert board.champion is not None and board.champion.run_id == better.run_id
        assert board.challengers[0].delta == pytest.approx(-0.03)


# -- champion board ----------------------------------------------------------------------------------


def test_the_champion_is_the_best_kept_run_with_three_challengers_and_their_deltas(store: MemoryStore) -> None:
    """Lower is better; ties go to the earliest; a better discarded run does not become champion."""
    log = store.lab.log
    runs = {
        "a": log("a", "keep", {"val_bpb": 0.995}),
        "b": log("b", "keep", {"val_bpb": 0.990}),
        "c": log("c", "keep", {"val_bpb": 0.990}),
        "d": log("d", "discard", {"val_bpb": 0.980}),
        "e": log("e", "keep", {"val_bpb": 0.993}),
        "f": log("f", "crash"),
        "g": log("g", "keep", {"val_bpb": 0.999}),
    }
    board = store.lab.board()
    assert board.champion is not None and not board.provisional
    assert board.champion.run_id == runs["b"].run_id
    assert [(e.run_id, round(e.delta, 6)) for e in board.challengers] == [
        (runs["c"].run_id, 0.0), (runs["e"].run_id, 0.003), (runs["a"].run_id, 0.005),
    ]  # fmt: skip
    assert [e.rank for e in [board.champion, *board.challengers]] == [1, 2, 3, 4]


def test_without_kept_runs_the_board_is_provisional_and_ranks_discarded_runs(store: MemoryStore) -> None:
    """Kept runs are preferred; only when there are none does a discarded run lead, marked provisional."""
    store.lab.log("a", "discard", {"val_bpb": 1.01})
    best = store.lab.log("b", "discard", {"val_bpb": 1.002})
    board = store.lab.board()
    assert board.provisional and board.champion is not None and board.champion.run_id == best.run_id
    assert store.lab.board().challengers[0].delta == pytest.approx(0.008)


def test_an_empty_ledger_has_no_champion(store: MemoryStore) -> None:
    """No runs with the metric, no champion."""
    assert store.lab.board().champion is None


# -- lineages ------------------------------------------------------------------------------------


def test_lineages_follow_parent_commits_from_root_to_tip(store: MemoryStore) -> None:
    """The best kept run's chain comes first; a second branch is its own lineage."""
    log = store.lab.log
    log("baseline", "keep", {"val_bpb": 1.000}, commit="c0")
    log("lr 0.04", "keep", {"val_bpb": 0.995}, commit="c1", parent_commit="c0")
    log("gelu", "discard", {"val_bpb": 1.004}, commit="x1", parent_commit="c1")
    log("warmdown 0.5", "keep", {"val_bpb": 0.990}, commit="c2", parent_commit="c1")
    log("depth 10", "keep", {"val_bpb": 0.997}, commit="d1", parent_commit="c0")
    first, second = store.lab.lineages()
    assert [s.commit for s in first.steps] == ["c0", "c1", "c2"]
    assert first.gain == pytest.approx(0.010) and not first.cycle
    assert [s.commit for s in second.steps] == ["c0", "d1"]


def test_a_cycle_in_parent_commits_is_cut_not_followed(store: MemoryStore) -> None:
    """a → b → a (and a run that is its own parent) end the walk, marked as a cycle."""
    log = store.lab.log
    log("a", "keep", {"val_bpb": 0.99}, commit="a", parent_commit="b")
    log("b", "keep", {"val_bpb": 0.98}, commit="b", parent_commit="a")
    log("self", "keep", {"val_bpb": 0.97}, commit="s", parent_commit="s")
    lineages = store.lab.lineages(limit=5)
    by_tip = {lin.steps[-1].commit: lin for lin in lineages}
    assert by_tip["s"].cycle and [s.commit for s in by_tip["s"].steps] == ["s"]
    assert by_tip["b"].cycle and [s.commit for s in by_tip["b"].steps] == ["a", "b"]


# -- failure clusters ---------------------------------------------------------------------------------


def test_failure_clusters_group_discarded_and_crashed_runs_that_tried_the_same_idea(store: MemoryStore) -> None:
    """Depth attempts cluster together, warmup attempts together; a lone failure and kept runs do not."""
    log = store.lab.log
    log("depth 12", "discard", {"val_bpb": 1.01})
    log("warmup ratio 0.1", "discard", {"val_bpb": 1.02})
    log("depth 14", "discard", {"val_bpb": 1.03})
    log("increase depth to 16 layers", "crash", error="CUDA out of memory")
    log("warmup ratio 0.2", "discard", {"val_bpb": 1.02})
    log("label smoothing 0.1", "discard", {"val_bpb": 1.02})
    log("depth 9", "keep", {"val_bpb": 0.99})
    clusters = store.lab.failure_clusters()
    assert [(c.label, c.size, c.discarded, c.crashed) for c in clusters] == [
        ("depth 12", 3, 2, 1), ("warmup ratio 0.1", 2, 2, 0),
    ]  # fmt: skip


# -- processes and vectors -------------------------------------------------------------------------


def test_a_second_store_on_the_same_directory_sees_runs_logged_by_the_first(
    data_dir: Path, embedding_model: Embedder
) -> None:
    """The in-memory vector matrix follows other writers; vectors are stored with the model id."""
    with MemoryStore.open(data_dir) as first, MemoryStore.open(data_dir) as second:
        assert second.lab.check("lr 0.04").classification == "novel"
        first.lab.log("raise the learning rate to 0.04", "discard", {"val_bpb": 1.01})
        assert second.lab.check("lr 0.04").classification == "duplicate_run"
        first.lab.log("depth 12", "keep", {"val_bpb": 0.99})
        assert second.lab.check("depth 12").classification == "duplicate_run"
        rows = second.db.query("SELECT model_id, dim FROM lab_run_vectors")
        assert [(r[0], r[1]) for r in rows] == [(f"{second.embedder.model_id}+{READING}", 384)] * 2


def test_racing_loggers_in_separate_stores_crown_exactly_one_champion(
    data_dir: Path, embedding_model: Embedder
) -> None:
    """Four stores log kept runs at once, each beating the champion by the same margin: exactly one is crowned.

    The comparison with the champion and the parent runs inside the write, so each logger
    sees every run committed before it; the winner is the first to commit, and ties on the
    board go to it as the earliest.
    """
    with MemoryStore.open(data_dir) as first:
        baseline = first.lab.log("baseline", "keep", {"val_bpb": 1.0}, commit="c0")
    stores = [MemoryStore.open(data_dir) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    logged: list[LabRun] = []
    failures: list[BaseException] = []

    def race(i: int, store: MemoryStore) -> None:
        try:
            barrier.wait()
            logged.append(store.lab.log(f"idea {i}: set warmup steps to {100 * (i + 1)}", "keep",
                                        {"val_bpb": 0.99}, commit=f"r{i}", parent_commit="c0"))  # fmt: skip
        except BaseException as exc:  # surfaced below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=race, args=(i, s)) for i, s in enumerate(stores)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for store in stores:
            store.close()
    assert not failures and len(logged) == 4
    comparisons = {run.run_id: run.decision_packet.comparison for run in logged if run.decision_packet}
    winners = [run_id for run_id, c in comparisons.items() if c.new_champion]
    assert len(winners) == 1
    losers = [c for run_id, c in comparisons.items() if run_id != winners[0]]
    assert all(c.champion_run_id == winners[0] and c.delta == 0 for c in losers)
    assert all(c.parent_run_id == baseline.run_id and c.parent_improvement == pytest.approx(0.01)
               for c in comparisons.values())  # fmt: skip
    with MemoryStore.open(data_dir) as reader:
        board = reader.lab.board()
    assert board.champion is not None and board.champion.run_id == winners[0]


def test_a_stored_metric_that_is_not_a_number_never_ranks(store: MemoryStore) -> None:
    """Runs whose metric is text, a boolean, null or a list (written by another tool) are left out of the board."""
    real = store.lab.log("baseline", "keep", {"val_bpb": 0.99})
    odd = ['{"val_bpb": "0.1"}', '{"val_bpb": true}', '{"val_bpb": null}', '{"val_bpb": [0.1]}']
    with store.db.write() as conn:
        for i, metrics in enumerate(odd):
            conn.execute(
                "INSERT INTO lab_runs (run_id, ts, status, description, metrics, server_run_id)"
                " VALUES (?, ?, 'keep', ?, ?, 'another-tool')",
                (f"run_odd{i}", "2026-03-05T00:00:00.000000Z", f"written elsewhere {i}", metrics),
            )
    board = store.lab.board()
    assert board.champion is not None and board.champion.run_id == real.run_id and board.challengers == []
    tied = store.lab.log("tied", "keep", {"val_bpb": 0.99})
    assert tied.decision_packet is not None
    comparison = tied.decision_packet.comparison
    assert comparison.champion_run_id == real.run_id and not comparison.new_champion
    assert not [s.run_id for lin in store.lab.lineages(limit=10) for s in lin.steps if s.run_id.startswith("run_odd")]


def test_after_a_model_change_each_run_keeps_one_vector_of_the_new_model(
    data_dir: Path, embedding_model: Embedder
) -> None:
    """A vector of another model is replaced, not kept beside the new one; vectors come back as bytes."""
    with MemoryStore.open(data_dir) as store:
        store.lab.log("raise the learning rate to 0.04", "discard", {"val_bpb": 1.01})
        store.lab.log("depth 12", "keep", {"val_bpb": 0.99})
        with store.db.write() as conn:
            conn.execute("UPDATE lab_run_vectors SET model_id = ?, dim = ?, vector = ?", ("old-model", 2, bytes(8)))
    with MemoryStore.open(data_dir) as reopened:
        assert reopened.lab.embed_missing() == 2
        rows = reopened.db.query("SELECT model_id, dim, vector FROM lab_run_vectors")
        assert [(r[0], r[1]) for r in rows] == [(f"{reopened.embedder.model_id}+{READING}", 384)] * 2
        assert all(isinstance(r[2], bytes) and len(r[2]) == 384 * 4 for r in rows)
        assert reopened.lab.check("lr 0.04").classification == "duplicate_run"


def test_runs_embedded_under_an_older_reading_are_embedded_again(data_dir: Path, embedding_model: Embedder) -> None:
    """A store from before a change to how descriptions are read re-embeds its runs, so probes meet today's text.

    The stale vector is made of another text ("depth 12"): kept, it would make "try lion" novel.
    """
    with MemoryStore.open(data_dir) as store:
        store.lab.log("swap the optimizer to Lion", "discard", {"val_bpb": 1.01})
        stale = store.embedder.encode(["depth 12"])[0].astype("float32").tobytes()
        with store.db.write() as conn:
            conn.execute("UPDATE lab_run_vectors SET model_id = ?, vector = ?", (store.embedder.model_id, stale))
    with MemoryStore.open(data_dir) as reopened:
        assert reopened.lab.embed_missing() == 1
        rows = reopened.db.query("SELECT model_id FROM lab_run_vectors")
        assert [r[0] for r in rows] == [f"{reopened.embedder.model_id}+{READING}"]
        assert reopened.lab.check("try lion").classification != "novel"


# -- results.tsv ------------------------------------------------------------------------------------


def test_results_tsv_import_then_export_round_trips_byte_for_byte(store: MemoryStore) -> None:
    """An autoresearch results.tsv comes back exactly as it went in."""
    imported = store.lab.import_tsv(RESULTS_TSV, branch="autoresearch/mar5")
    assert imported.imported == 5 and len(imported.run_ids) == 5
    assert store.lab.export_tsv() == RESULTS_TSV
    assert store.lab.export_tsv(branch="autoresearch/mar5") == RESULTS_TSV
    assert store.lab.export_tsv(branch="other") == "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"


def test_an_imported_results_tsv_becomes_a_linked_ledger(store: MemoryStore) -> None:
    """Each row's parent is the last kept commit before it; crashes lose the 0.000000 placeholder."""
    imported = store.lab.import_tsv(RESULTS_TSV)
    assert imported.champion is not None and imported.champion.commit == "e5f6a7b"
    runs = store.lab.runs()
    assert [r.parent_commit for r in runs] == [None, "a1b2c3d", "b2c3d4e", "b2c3d4e", "b2c3d4e"]
    assert runs[3].status == "crash" and runs[3].metrics is None
    assert [r.decision_packet.next_action for r in runs if r.decision_packet] == [
        "promote", "promote", "abandon", "investigate_crash", "promote",
    ]  # fmt: skip
    assert [s.commit for s in store.lab.lineages()[0].steps] == ["a1b2c3d", "b2c3d4e", "e5f6a7b"]


def test_importing_a_results_tsv_again_adds_only_the_rows_appended_since(store: MemoryStore) -> None:
    """A retried or repeated import must not double the ledger (duplicates would look like repeats)."""
    assert store.lab.import_tsv(RESULTS_TSV).imported == 5
    again = store.lab.import_tsv(RESULTS_TSV)
    assert (again.imported, again.skipped, again.run_ids) == (0, 5, [])
    grown = RESULTS_TSV + "f6a7b8c\t0.989000\t44.3\tkeep\tbatch 2x\ng7b8c9d\t0.995000\t44.0\tdiscard\tdepth 10\n"
    more = store.lab.import_tsv(grown)
    assert (more.imported, more.skipped) == (2, 5)
    runs = store.lab.runs()
    assert [r.commit for r in runs] == ["a1b2c3d", "b2c3d4e", "c3d4e5f", "d4e5f6g", "e5f6a7b", "f6a7b8c", "g7b8c9d"]
    assert [r.parent_commit for r in runs[5:]] == ["e5f6a7b", "f6a7b8c"]
    assert more.champion is not None and more.champion.commit == "f6a7b8c"
    assert store.lab.export_tsv() == grown


def test_a_results_tsv_with_a_bom_or_a_line_separator_in_a_description_imports(store: MemoryStore) -> None:
    """Excel writes a BOM; only \\n and \\r\\n end a line, so U+2028 or a form feed stays in its description."""
    text = (
        "\ufeffcommit\tval_bpb\tmemory_gb\tstatus\tdescription\r\n"
        "a1\t0.99\t44.0\tkeep\tsee\u2028notes\r\nb2\t0.98\t44.0\tkeep\tpage\x0cbreak\r\n"
    )
    imported = store.lab.import_tsv(text)
    assert imported.imported == 2
    assert [r.commit for r in store.lab.runs()] == ["a1", "b2"]
    with pytest.raises(InvalidInput, match=r"line 2: 4 fields, expected 5"):
        store.lab.import_tsv("commit\tval_bpb\tmemory_gb\tstatus\tdescription\na3\t0.99\tkeep\tno memory cell\n")


def test_logged_runs_export_in_autoresearch_format(store: MemoryStore) -> None:
    """Runs logged through the API export with 6-decimal metrics, 1-decimal memory, zeros for a crash."""
    store.lab.log("baseline", "keep", {"val_bpb": 0.9979, "memory_gb": 44}, commit="a1b2c3d")
    store.lab.log("oom\there", "crash", commit="b2c3d4e")
    assert store.lab.export_tsv() == (
        "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
        "a1b2c3d\t0.997900\t44.0\tkeep\tbaseline\n"
        "b2c3d4e\t0.000000\t0.0\tcrash\toom here\n"
    )


def test_what_export_tsv_writes_import_tsv_reads_back(
    store: MemoryStore, tmp_path: Path, fresh_database_url: Callable[[], str | None]
) -> None:
    """A run without a commit and an extra metric another run lacks (an attack found both refused or invented):
    the export leaves those cells empty, and importing it into another ledger gives the same runs and the same text."""
    store.lab.log("baseline", "keep", {"val_bpb": 0.99}, commit="c1")
    store.lab.log("lr 0.04", "keep", {"val_bpb": 0.98, "acc": 0.5}, commit="c2")
    store.lab.log("no commit", "discard", {"val_bpb": 1.01})
    text = store.lab.export_tsv(extra_metrics=True)
    assert text.splitlines()[1:] == [
        "c1\t0.990000\t0.0\t\tkeep\tbaseline",
        "c2\t0.980000\t0.0\t0.5\tkeep\tlr 0.04",
        "\t1.010000\t0.0\t\tdiscard\tno commit",
    ]
    with MemoryStore.open(tmp_path / "other", database_url=fresh_database_url()) as other:
        runs = [other.lab.get(run_id) for run_id in other.lab.import_tsv(text).run_ids]
        assert [run.commit for run in runs] == ["c1", "c2", None]
        assert "acc" not in runs[0].metrics and runs[1].metrics["acc"] == 0.5
        assert other.lab.export_tsv(extra_metrics=True) == text


def test_a_commit_with_spaces_or_a_metric_without_a_name_is_refused(store: MemoryStore) -> None:
    """results.tsv cannot hold them: what log accepts, export must write and import read back."""
    with pytest.raises(InvalidInput, match="commit='b b' must be an id without spaces"):
        store.lab.log("depth 9", "discard", {"val_bpb": 1.0}, commit="b b")
    with pytest.raises(InvalidInput, match="metric with an empty name"):
        store.lab.log("depth 9", "discard", {"": 1.0})
    with pytest.raises(InvalidInput, match="metric with an empty name"):
        store.events.record("note", text="x", metrics={" ": 1.0})
    assert store.lab.export_tsv().count("\n") == 1


@pytest.mark.parametrize(
    ("text", "messages"),
    [
        (
            "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
            "a1\t0.99\t44.0\tkeep\tbaseline\n"
            "b2\t0.98\t44.0\tmaybe\tlr 0.04\n"
            "c3\tlow\t44.0\tdiscard\tgelu\n"
            "d4\t0.97\t44.0\tkeep\n"
            "e5\t\t44.0\tkeep\tno metric\n",
            ["4 problem(s); nothing was imported", "line 3: unknown status 'maybe'",
             "line 4: val_bpb 'low' is not a finite number", "line 5: 4 fields, expected 5",
             "line 6: a kept run needs val_bpb"],
        ),
        ("commit\tval_bpb\tstatus\n", ["lacks column(s) ['description']"]),
        ("commit\tloss\tstatus\tdescription\n", ["has no 'val_bpb' column"]),
        ("", ["results.tsv is empty"]),
    ],
)  # fmt: skip
def test_malformed_results_tsv_names_every_bad_line_and_imports_nothing(
    store: MemoryStore, text: str, messages: list[str]
) -> None:
    """Bad statuses, non-numbers, wrong field counts, missing metrics or columns: one clear error, no rows."""
    with pytest.raises(InvalidInput) as caught:
        store.lab.import_tsv(text)
    for message in messages:
        assert message in str(caught.value)
    _nothing_written(store)


def test_import_from_a_path_is_limited_to_the_allowed_roots(store: MemoryStore, tmp_path: Path) -> None:
    """A results.tsv under an allowed root imports; one elsewhere is refused."""
    path = tmp_path / "results.tsv"
    path.write_text(RESULTS_TSV)
    assert store.lab.import_tsv(path=path).imported == 5
    with pytest.raises(AccessDenied):
        store.lab.import_tsv(path="/etc/hostname")
