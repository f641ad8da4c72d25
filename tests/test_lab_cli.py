"""``mcp-memory-server lab …``: init, check (with --fail-on-similar), log, report, import-tsv, export-tsv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_memory_server.cli import main

RESULTS_TSV = (
    "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
    "a1b2c3d\t0.997900\t44.0\tkeep\tbaseline\n"
    "b2c3d4e\t0.993200\t44.2\tkeep\tincrease LR to 0.04\n"
    "c3d4e5f\t1.005000\t44.0\tdiscard\tswitch to GeLU activation\n"
    "d4e5f6g\t0.000000\t0.0\tcrash\tdouble model width (OOM)\n"
)


@pytest.fixture
def lab(data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run ``lab`` in-process on ``data_dir``; returns (exit code, stdout, stderr).

    These tests exercise the command surface, so they skip the 10 s model load: with no model
    the lab matches lexically (the model-backed path is covered by a subprocess test below).
    """
    monkeypatch.setenv("MCP_MEMORY_EMBED_MODEL", str(data_dir.parent / "no-model"))

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["lab", *args, "--data-dir", str(data_dir)])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_init_creates_the_ledger_and_can_bootstrap_it_from_a_results_tsv(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """lab init reports the metric, direction and run count; --from-tsv imports in the same step."""
    tsv = tmp_path / "results.tsv"
    tsv.write_text(RESULTS_TSV)
    code, out, _ = lab("init", "--from-tsv", str(tsv))
    assert code == 0
    assert {k: v for k, v in json.loads(out).items() if k != "data_dir"} == {
        "metric": "val_bpb", "direction": "min", "runs": 4, "imported": 4,
    }  # fmt: skip


def test_import_then_export_round_trips_through_files(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """import-tsv then export-tsv -o gives back the same file."""
    source, copy = tmp_path / "results.tsv", tmp_path / "copy.tsv"
    source.write_text(RESULTS_TSV)
    code, out, _ = lab("import-tsv", str(source), "--branch", "autoresearch/mar5")
    assert code == 0 and json.loads(out)["imported"] == 4
    assert lab("export-tsv", "-o", str(copy))[0] == 0
    assert copy.read_text() == RESULTS_TSV
    code, out, _ = lab("export-tsv", "--branch", "autoresearch/mar5")
    assert (code, out) == (0, RESULTS_TSV)


def test_a_malformed_results_tsv_exits_1_with_the_bad_lines_and_imports_nothing(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The error names each bad line; the ledger stays empty."""
    bad = tmp_path / "bad.tsv"
    bad.write_text(RESULTS_TSV + "e5f6a7b\t0.99\t44.0\tperhaps\tlr 0.05\n")
    code, _, err = lab("import-tsv", str(bad))
    assert code == 1 and "line 6: unknown status 'perhaps'" in err and "nothing was imported" in err
    assert lab("export-tsv")[1] == "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"


def test_check_with_fail_on_similar_exits_2_only_when_the_policy_blocks(lab) -> None:  # type: ignore[no-untyped-def]
    """A shell loop can gate on the exit code: 2 for block, 0 otherwise (without the flag, always 0)."""
    lab("log", "raise the learning rate to 0.04", "--status", "keep", "--metric", "val_bpb=0.99")
    code, out, err = lab("check", "learning rate 0.04", "--fail-on-similar")
    assert code == 2 and json.loads(out)["policy"]["decision"] == "block"
    assert err.startswith("block: duplicate_run in explore mode; closest run_")
    assert lab("check", "learning rate 0.04")[0] == 0
    assert lab("check", "add qk norm", "--fail-on-similar")[0] == 0
    code, out, _ = lab("check", "learning rate 0.05", "--mode", "exploit", "--fail-on-similar")
    assert code == 0 and json.loads(out)["classification"] == "known_success"


def test_log_prints_the_decision_packet_and_reads_a_crash_from_the_log_file(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """lab log with --log-file stores the log and takes the crash's error from its tail."""
    log = tmp_path / "run.log"
    log.write_text("step 1\nstep 2\nRuntimeError: CUDA out of memory\n")
    code, out, _ = lab("log", "depth 16", "--status", "crash", "--commit", "d4e5f6g", "--log-file", str(log))
    packet = json.loads(out)
    assert code == 0 and packet["next_action"] == "fix_and_retry"
    assert packet["error"]["summary"] == "RuntimeError: CUDA out of memory"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["log", "lr 0.04", "--status", "keep"], "a kept run needs metrics['val_bpb']"),
        (["log", "lr 0.04", "--status", "keep", "--metric", "val_bpb"], "must look like NAME=NUMBER"),
        (["log", "lr 0.04", "--status", "keep", "--metric", "val_bpb=low"], "must look like NAME=NUMBER"),
        (["check", "lr 0.04", "--threshold", "3"], "threshold must be a number from 0 to 1"),
    ],
)
def test_bad_cli_input_exits_1_with_a_clear_message(lab, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    """Bad arguments print one error line naming the fix; nothing is logged."""
    code, _, err = lab(*args)
    assert code == 1 and message in err
    assert lab("export-tsv")[1].count("\n") == 1


def test_report_writes_markdown_and_chart_files(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """lab report prints the Markdown and can also write it and the PNG chart to files."""
    lab("log", "baseline", "--status", "keep", "--metric", "val_bpb=1.0", "--commit", "c0")
    md, png = tmp_path / "report.md", tmp_path / "chart.png"
    code, out, _ = lab("report", "--since-hours", "4", "-o", str(md), "--chart", str(png))
    assert code == 0 and out.startswith("# Morning report") and "1 run in the last 4 h" in out
    assert md.read_text() + "\n" == out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_lab_metric_and_direction_flags_configure_the_ledger(lab) -> None:  # type: ignore[no-untyped-def]
    """--lab-metric/--lab-direction (or MCP_MEMORY_LAB_*) choose the primary metric."""
    code, out, _ = lab("init", "--lab-metric", "val_acc", "--lab-direction", "max")
    assert code == 0 and (json.loads(out)["metric"], json.loads(out)["direction"]) == ("val_acc", "max")
    code, _, err = lab("init", "--lab-direction", "down")
    assert code == 1 and "--lab-direction='down' is not valid" in err


def test_the_installed_command_blocks_a_duplicate_with_exit_2_using_the_real_model(lab, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """In a real process with the embedding model, a paraphrase of a logged run exits 2.

    The run is logged without a model, so the check also embeds the ledger's missing vectors.
    """
    lab("log", "raise the learning rate to 0.04", "--status", "discard", "--metric", "val_bpb=1.01")
    checked = subprocess.run(
        [sys.executable, "-m", "mcp_memory_server", "lab", "check", "lr 0.04", "--fail-on-similar",
         "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=240, check=False,
        env={k: v for k, v in os.environ.items() if k != "MCP_MEMORY_EMBED_MODEL"},
    )  # fmt: skip
    assert checked.returncode == 2, (checked.stdout, checked.stderr[-2000:])
    verdict = json.loads(checked.stdout)
    assert verdict["similarity"] == "embedding" and verdict["classification"] == "duplicate_run"


def test_import_tsv_embeds_the_runs_so_the_loops_first_check_does_not(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the real model the import leaves a vector per run (the first check used to embed a
    whole imported ledger inline); importing again adds and embeds nothing."""
    from mcp_memory_server import MemoryStore

    source = tmp_path / "results.tsv"
    source.write_text(RESULTS_TSV)
    assert main(["lab", "import-tsv", str(source), "--data-dir", str(data_dir)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["imported"] == 4 and "embedding 4 imported runs" in err
    with MemoryStore.open(data_dir) as store:
        vectors = store.db.query("SELECT COUNT(*) FROM lab_run_vectors")[0][0]
    assert vectors == 4
    assert main(["lab", "import-tsv", str(source), "--data-dir", str(data_dir)]) == 0
    out, err = capsys.readouterr()
    assert (json.loads(out)["imported"], json.loads(out)["skipped"]) == (0, 4) and "embedding" not in err


def test_import_tsv_without_a_model_imports_and_says_the_runs_are_not_embedded(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "results.tsv"
    source.write_text(RESULTS_TSV)
    code, out, err = lab("import-tsv", str(source))
    assert code == 0 and json.loads(out)["imported"] == 4
    assert "the runs are imported but not embedded" in err
