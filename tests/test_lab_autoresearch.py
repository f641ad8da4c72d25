"""The autoresearch operator loop, end to end through the CLI: check → train → log --summary --log → report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcp_memory_server import InvalidInput, MemoryStore
from mcp_memory_server.cli import main
from mcp_memory_server.core.lab.autoresearch import footer_metrics

# What autoresearch's train.py prints (its output format; the numbers are ours).
RUN_LOG = """\
step 00950 (99.7%) | loss: 3.012345 | lrm: 0.02 | dt: 312ms | tok/sec: 1,681,233 | mfu: 39.8% | epoch: 1 | remaining: 1s
step 00953 (100.0%) | loss: 3.010101 | lrm: 0.00 | dt: 311ms | tok/sec: 1,683,977 | mfu: 39.9% | epoch: 1 | remaining: 0s
---
val_bpb:          0.997900
training_seconds: 300.1
total_seconds:    325.9
peak_vram_mb:     45060.2
mfu_percent:      39.80
total_tokens_M:   499.6
num_steps:        953
num_params_M:     50.3
depth:            8
"""

CRASH_LOG = """\
step 00012 (1.3%) | loss: 9.123456 | lrm: 1.00 | dt: 1200ms
Traceback (most recent call last):
  File "train.py", line 412, in <module>
    loss.backward()
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB
"""


@pytest.fixture
def lab(data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run ``lab`` in-process; lexical matching (no model load) — the command surface is what is tested."""
    monkeypatch.setenv("MCP_MEMORY_EMBED_MODEL", str(data_dir.parent / "no-model"))
    monkeypatch.delenv("AUTORESEARCH_SUMMARY_PATH", raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["lab", *args, "--data-dir", str(data_dir)])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_footer_metrics_reads_every_numeric_key_after_the_last_separator() -> None:
    """The train.py footer becomes metrics: val_bpb, timings, memory, steps, params, depth."""
    assert footer_metrics(RUN_LOG) == {
        "val_bpb": 0.9979, "training_seconds": 300.1, "total_seconds": 325.9, "peak_vram_mb": 45060.2,
        "mfu_percent": 39.8, "total_tokens_M": 499.6, "num_steps": 953.0, "num_params_M": 50.3, "depth": 8.0,
    }  # fmt: skip
    assert footer_metrics(CRASH_LOG) == {}
    assert footer_metrics("---\ndevice: cuda\nval_loss: 1.5\nnot a metric line\nx: 2") == {"val_loss": 1.5}


def test_kept_run_logged_with_only_its_log_takes_metrics_from_the_footer(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`lab log --status keep --log run.log` needs no --metric: the footer supplies val_bpb and the rest."""
    log = tmp_path / "run.log"
    log.write_text(RUN_LOG)
    code, _, err = lab("log", "baseline", "--status", "keep", "--commit", "a1b2c3d", "--log", str(log))
    assert code == 0, err
    with MemoryStore.open(tmp_path / "store") as store:
        (run,) = store.lab.runs()
        assert run.metrics["val_bpb"] == 0.9979 and run.metrics["num_steps"] == 953
        assert [a.role for a in run.artifacts if a.role == "log"] == ["log"]


def test_summary_sidecar_from_the_environment_wins_over_the_footer(  # type: ignore[no-untyped-def]
    lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$AUTORESEARCH_SUMMARY_PATH is read when --summary is not given; its values beat the log footer's."""
    log = tmp_path / "run.log"
    log.write_text(RUN_LOG)
    sidecar = tmp_path / "summary.json"
    sidecar.write_text(json.dumps({"val_bpb": 0.9911, "peak_vram_mb": 44000.0, "device": "cuda"}))
    monkeypatch.setenv("AUTORESEARCH_SUMMARY_PATH", str(sidecar))
    code, _, err = lab("log", "lr 0.04", "--status", "keep", "--commit", "b2c3d4e", "--log-file", str(log))
    assert code == 0, err
    explicit = tmp_path / "explicit.json"
    explicit.write_text(json.dumps({"val_bpb": 0.9905}))
    code, _, err = lab("log", "lr 0.05", "--status", "keep", "--summary", str(explicit), "--metric", "val_bpb=0.99")
    assert code == 0, err
    with MemoryStore.open(tmp_path / "store") as store:
        by_description = {r.description: r for r in store.lab.runs()}
        first, second = by_description["lr 0.04"], by_description["lr 0.05"]
        assert first.metrics["val_bpb"] == 0.9911 and first.metrics["peak_vram_mb"] == 44000.0
        assert first.metrics["num_steps"] == 953 and "device" not in first.metrics
        assert second.metrics["val_bpb"] == 0.99


def test_kept_run_without_the_metric_anywhere_is_refused_and_nothing_is_logged(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A kept run whose log has no footer and no summary is refused with the three ways to give the metric."""
    log = tmp_path / "run.log"
    log.write_text(CRASH_LOG)
    code, _, err = lab("log", "widen", "--status", "keep", "--log", str(log))
    assert code != 0
    assert "footer" in err and "summary" in err
    with MemoryStore.open(tmp_path / "store") as store:
        assert store.lab.count() == 0


def test_bad_summary_file_is_refused_with_what_to_pass(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A summary that is missing, not JSON, or not an object is refused naming the file."""
    missing = tmp_path / "nope.json"
    code, _, err = lab("log", "x", "--status", "discard", "--summary", str(missing))
    assert code != 0 and "does not exist" in err
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    code, _, err = lab("log", "x", "--status", "discard", "--summary", str(bad))
    assert code != 0 and "JSON object of final metrics" in err


def test_crash_log_gives_the_error_and_results_tsv_row_is_appended(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """--results-tsv appends autoresearch's five-column row (header once); a crash row has zeros and its error."""
    results = tmp_path / "results.tsv"
    ok = tmp_path / "ok.log"
    ok.write_text(RUN_LOG)
    crash = tmp_path / "crash.log"
    crash.write_text(CRASH_LOG)
    assert lab("log", "baseline", "--status", "keep", "--commit", "a1b2c3d", "--log", str(ok),
               "--results-tsv", str(results))[0] == 0  # fmt: skip
    assert lab("log", "double width", "--status", "crash", "--commit", "b2c3d4e", "--log", str(crash),
               "--results-tsv", str(results))[0] == 0  # fmt: skip
    assert results.read_text() == (
        "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
        "a1b2c3d\t0.997900\t44.0\tkeep\tbaseline\n"
        "b2c3d4e\t0.000000\t0.0\tcrash\tdouble width\n"
    )
    with MemoryStore.open(tmp_path / "store") as store:
        crashed = next(r for r in store.lab.runs() if r.status == "crash")
        assert crashed.error is not None and "out of memory" in crashed.error.summary.lower()


def test_export_tsv_stays_five_columns_unless_extra_metrics_are_asked_for(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Runs with footer metrics export as autoresearch's 5 columns; --extra-metrics adds the rest."""
    log = tmp_path / "run.log"
    log.write_text(RUN_LOG)
    assert lab("log", "baseline", "--status", "keep", "--commit", "a1b2c3d", "--log", str(log))[0] == 0
    code, out, _ = lab("export-tsv")
    assert code == 0
    assert out == "commit\tval_bpb\tmemory_gb\tstatus\tdescription\na1b2c3d\t0.997900\t44.0\tkeep\tbaseline\n"
    code, out, _ = lab("export-tsv", "--extra-metrics")
    header = out.splitlines()[0].split("\t")
    assert header[:3] == ["commit", "val_bpb", "memory_gb"] and header[-2:] == ["status", "description"]
    assert {"num_steps", "peak_vram_mb", "depth"} <= set(header)


def test_check_takes_the_description_as_a_flag_too(lab) -> None:  # type: ignore[no-untyped-def]
    """`lab check --description …` works like the positional form; neither or both is refused."""
    assert lab("log", "increase LR to 0.04", "--status", "discard")[0] == 0
    code, positional, _ = lab("check", "increase LR to 0.04")
    code_flag, flagged, _ = lab("check", "--description", "increase LR to 0.04")
    assert code == code_flag == 0
    assert json.loads(positional)["classification"] == json.loads(flagged)["classification"]
    assert lab("check")[0] != 0
    assert lab("check", "a", "--description", "b")[0] != 0


def test_experiment_log_summary_over_the_library(store: MemoryStore) -> None:
    """Lab.log(summary=…, log_text=…) merges metrics; a non-object summary is refused and nothing is logged."""
    run = store.lab.log("baseline", "keep", summary={"val_bpb": 0.9979, "note": "x"}, log_text=RUN_LOG)
    assert run.metrics["val_bpb"] == 0.9979 and run.metrics["depth"] == 8
    with pytest.raises(InvalidInput, match="JSON object"):
        store.lab.log("again", "keep", summary=[0.99])  # type: ignore[arg-type]
    assert store.lab.count() == 1


def test_a_crash_log_ending_in_binary_noise_is_logged_and_searchable_on_every_engine(store: MemoryStore) -> None:
    """NUL bytes in a crashed run's log tail (PostgreSQL text cannot hold NUL) show as U+FFFD; the run is logged."""
    noisy = "step 12 | loss 3.1\nRuntimeError: CUDA error: an illegal memory access\n\x00\x07\x00garbage"
    run = store.lab.log("fused attention kernel", "crash", log_text=noisy)
    assert run.error is not None and "\x00" not in run.error.tail and "\ufffd" in run.error.tail
    assert "illegal memory access" in run.error.tail
    assert store.lab.get(run.run_id).error == run.error
    hits = store.events.search("illegal memory access", sources=["lab"], mode="lexical")
    assert [hit.id for hit in hits.hits] == [run.run_id]
    run2 = store.lab.log("again", "crash", error={"summary": "bad\x00byte", "tail": "x\x00y"})
    assert run2.error is not None and run2.error.summary == "bad\ufffdbyte" and run2.error.tail == "x\ufffdy"


def test_report_written_to_files_links_the_chart_file(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`lab report -o report.md --chart chart.png`: the Markdown links chart.png (a viewer opens it), not cas://."""
    log = tmp_path / "run.log"
    log.write_text(RUN_LOG)
    assert lab("log", "baseline", "--status", "keep", "--commit", "a1b2c3d", "--log", str(log))[0] == 0
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    report, chart = out_dir / "report.md", out_dir / "chart.png"
    code, printed, err = lab("report", "-o", str(report), "--chart", str(chart))
    assert code == 0, err
    text = report.read_text()
    assert "](chart.png)" in text and "](cas://" not in text
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert printed.strip() == text.strip()


def test_a_logged_run_is_judged_as_made_not_advised_and_crashes_measure_nothing(store: MemoryStore) -> None:
    """Logging judges the run that happened (no "run it only if it is cheap"); the guard names its probe."""
    first = store.lab.log("swap the optimizer to Lion with weight decay 0.1", "discard", {"val_bpb": 1.01})
    guard = first.novelty_guard
    assert guard is not None
    assert guard.policy.rationale.startswith("logged run, novel:")
    assert "only if it is cheap" not in guard.policy.rationale
    assert (guard.probe_text, guard.match_count, guard.threshold) == (
        "swap the optimizer to Lion with weight decay 0.1", 0, guard.effective_threshold,
    )  # fmt: skip
    again = store.lab.log("swap the optimizer to Lion with weight decay 0.1", "discard", {"val_bpb": 1.02})
    assert again.novelty_guard is not None and again.novelty_guard.match_count >= 1
    assert again.novelty_guard.policy.decision == "caution"
    assert "already" in again.novelty_guard.policy.rationale
    crashed = store.lab.log("depth 64", "crash", log_text=CRASH_LOG)
    assert crashed.metrics is None
    assert store.lab.get(crashed.run_id).metrics is None
