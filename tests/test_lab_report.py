"""The morning report: its sections and numbers for a fixture ledger, and a chart that really shows the runs."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from mcp_memory_server import InvalidInput, MemoryStore
from mcp_memory_server.embeddings import Embedder

UNTIL = "2026-03-05T08:00:00Z"
KEEP_GREEN, FRONTIER_NAVY, CRASH_RED = (0x2A, 0x9D, 0x55), (0x1D, 0x35, 0x57), (0xD1, 0x49, 0x5B)


@pytest.fixture
def store(data_dir: Path, embedding_model: Embedder) -> Iterator[MemoryStore]:
    """A fresh store whose embedder is ready at once: the session already loaded the model."""
    with MemoryStore.open(data_dir) as opened:
        yield opened


@pytest.fixture
def ledger(store: MemoryStore) -> dict[str, str]:
    """One run before the window and seven overnight runs, each with a known decision."""
    rows = [
        ("c0", None, "2026-03-04T12:00:00Z", "baseline", "keep", 1.000, None),
        ("c1", "c0", "2026-03-04T17:00:00Z", "raise the learning rate to 0.04", "keep", 0.995, None),
        ("c2", "c1", "2026-03-04T18:00:00Z", "swap relu squared for gelu", "discard", 1.004, None),
        ("c3", "c1", "2026-03-04T19:00:00Z", "depth 16", "crash", None, "torch.OutOfMemoryError: CUDA out of memory"),
        ("c4", "c1", "2026-03-04T20:00:00Z", "warmdown ratio 0.5", "keep", 0.990, None),
        ("c5", "c4", "2026-03-04T21:00:00Z", "depth 12", "discard", 0.9905, None),
        ("c6", "c4", "2026-03-04T22:00:00Z", "depth 14", "discard", 1.010, None),
        ("c7", "c4", "2026-03-04T23:00:00Z", "increase model width to 768", "keep", 0.9912, None),
    ]
    ids = {}
    for commit, parent, ts, description, status, value, error in rows:
        run = store.lab.log(
            description, status, {"val_bpb": value} if value is not None else None, commit=commit,
            parent_commit=parent, ts=ts, error=error,
        )  # fmt: skip
        ids[commit] = run.run_id
    return ids


def test_each_fixture_run_gets_its_expected_decision(store: MemoryStore, ledger: dict[str, str]) -> None:
    """The fixture exercises promote, abandon (low and high), fix_and_retry, replicate and branch_followup."""
    actions = {c: store.lab.get(i).decision_packet.next_action for c, i in ledger.items()}  # type: ignore[union-attr]
    assert actions == {
        "c0": "promote", "c1": "promote", "c2": "abandon", "c3": "fix_and_retry", "c4": "promote",
        "c5": "replicate", "c6": "abandon", "c7": "branch_followup",
    }  # fmt: skip


def test_the_report_has_every_section_with_the_right_numbers(store: MemoryStore, ledger: dict[str, str]) -> None:
    """Headline, decision queue, champion board, lineages, failure clusters and recent ledger match the fixture."""
    report = store.lab.report(16, until=UNTIL)
    md = report.markdown
    assert report.since == "2026-03-04T16:00:00.000000Z" and report.until == "2026-03-05T08:00:00.000000Z"
    # Open decisions only: c1's and c4's promotions were acted on (runs were built on them).
    assert report.counts == {"runs": 7, "keep": 3, "discard": 3, "crash": 1, "high_priority": 3}
    assert report.headline == (
        "7 runs in the last 16 h: 3 kept, 3 discarded, 1 crashed. 2 new champions: val_bpb 1.000000 → "
        f"0.990000 (improved by 0.010000; {ledger['c4']}). 3 open high-priority decisions."
    )
    headers = [line for line in md.splitlines() if line.startswith("## ")]
    assert headers == [
        "## Headline", "## Decision queue", "## Champion board", "## Best lineages", "## Failure clusters",
        "## Recent ledger",
    ]  # fmt: skip
    queue = _section(md, "Decision queue")
    order = [(row[1], row[2].strip("*"), row[4]) for row in _table(queue)]
    assert order == [
        ("high", "branch_followup", "`c7`"), ("high", "abandon", "`c6`"), ("high", "fix_and_retry", "`c3`"),
        ("medium", "replicate", "`c5`"), ("low", "abandon", "`c2`"),
    ]  # fmt: skip
    board = _table(_section(md, "Champion board"))
    assert [(row[2], row[4], row[5]) for row in board] == [
        ("`c4`", "0.990000", "—"), ("`c7`", "0.991200", "+0.001200"), ("`c1`", "0.995000", "+0.005000"),
        ("`c0`", "1.000000", "+0.010000"),
    ]  # fmt: skip
    assert report.champion is not None and report.champion.run_id == ledger["c4"]
    lineages = _section(md, "Best lineages").strip().splitlines()
    assert lineages[0].startswith("1. `c0` 1.000000 → `c1` 0.995000 → `c4` 0.990000 (3 runs, gain 0.010000)")
    assert lineages[1].startswith("2. `c0` 1.000000 → `c1` 0.995000 → `c4` 0.990000 → `c7` 0.991200 (4 runs")
    clusters = _table(_section(md, "Failure clusters"))
    assert [row[:5] for row in clusters] == [["depth 16", "3", "2", "1", "3"]]
    recent = _table(_section(md, "Recent ledger"))
    assert [row[2] for row in recent] == ["`c7`", "`c6`", "`c5`", "`c4`", "`c3`", "`c2`", "`c1`"]
    assert [row[3] for row in recent] == ["keep", "discard", "discard", "keep", "crash", "discard", "keep"]


def test_report_and_chart_are_stored_as_artifacts_and_the_chart_shows_runs_and_frontier(
    store: MemoryStore, ledger: dict[str, str]
) -> None:
    """The Markdown is a lab_report artifact; the chart is a valid PNG with kept, crashed and frontier marks."""
    report = store.lab.report(16, until=UNTIL)
    assert report.report_artifact_id and report.chart_artifact_id and report.chart_uri
    stored = store.artifacts.get(report.report_artifact_id)
    assert (stored.kind, stored.mime) == ("lab_report", "text/markdown")
    assert store.artifacts.read_bytes(stored).decode() == report.markdown
    assert f"]({report.chart_uri})" in report.markdown
    chart = store.artifacts.get(report.chart_artifact_id)
    assert (chart.kind, chart.mime) == ("lab_chart", "image/png")
    png = store.artifacts.read_bytes(chart)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(png))
    image.verify()
    pixels = Image.open(io.BytesIO(png)).convert("RGB")
    assert pixels.size == (1000, 450)
    colours = pixels.getcolors(maxcolors=1 << 20)
    assert colours is not None

    def count(target: tuple[int, int, int]) -> int:
        return sum(n for n, rgb in colours if all(abs(a - b) <= 12 for a, b in zip(rgb, target, strict=True)))

    assert count(KEEP_GREEN) > 20
    assert count(FRONTIER_NAVY) > 100
    assert count(CRASH_RED) > 5


def test_the_latest_report_is_the_newest_stored_one(store: MemoryStore, ledger: dict[str, str]) -> None:
    """latest_report serves the newest lab_report artifact."""
    store.lab.report(16, until=UNTIL)
    newest = store.lab.report(2, until=UNTIL)
    assert store.lab.latest_report() == newest.markdown
    assert "0 runs in the last 2 h" in newest.headline


def test_with_no_stored_report_the_latest_is_built_fresh_and_not_saved(store: MemoryStore) -> None:
    """Reading the latest report before any was written builds one without storing anything."""
    text = store.lab.latest_report()
    assert text.startswith("# Morning report") and "0 runs in the last 16 h" in text
    assert store.artifacts.count() == 0


def test_a_long_report_is_cut_in_the_response_but_stored_whole(data_dir: Path, embedding_model: Embedder) -> None:
    """Responses stay under max_response_bytes; the artifact keeps the full report; the queue shows 25 rows."""
    with MemoryStore.open(data_dir, max_response_bytes=1500) as store:
        for i in range(30):
            store.lab.log(f"seed {i} of the baseline", "discard", {"val_bpb": 1.0 + i / 1000})
        report = store.lab.report()
        assert report.truncated and report.markdown.endswith("read the lab_report artifact for the rest)")
        assert len(report.markdown.encode()) < 1600
        full = store.artifacts.read_bytes(report.report_artifact_id or "").decode()
        assert len(full) > 1500 and full.startswith(report.markdown[:1000])
        queue = _table(_section(full, "Decision queue"))
        assert len(queue) == 25
        assert "… and 5 more: 4x abandon (high), 1x abandon (low)." in _section(full, "Decision queue")


@pytest.mark.parametrize("hours", [0, -1, float("nan"), True])
def test_a_bad_window_is_refused(store: MemoryStore, hours: float) -> None:
    """since_hours must be a positive number."""
    with pytest.raises(InvalidInput, match="since_hours"):
        store.lab.report(hours)


def _section(markdown: str, title: str) -> str:
    return markdown.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _table(section: str) -> list[list[str]]:
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows]


def test_a_champion_improved_in_the_window_is_not_called_first(store: MemoryStore) -> None:
    """With no champion before the window, a run of improvements is reported as first set and improved n times."""
    parent = None
    for i, value in enumerate([1.0, 0.99, 0.98, 0.97]):
        store.lab.log(f"step {i}", "keep", {"val_bpb": value}, commit=f"k{i}", parent_commit=parent,
                      ts=f"2026-03-04T{i + 17}:00:00Z")  # fmt: skip
        parent = f"k{i}"
    headline = store.lab.report(16, until=UNTIL).headline
    assert "First champion set and improved 3 times: val_bpb 1.000000 → 0.970000 (improved by 0.030000" in headline
    assert "First champion set:" not in headline


def test_a_superseded_champion_leaves_the_decision_queue(store: MemoryStore) -> None:
    """Only the current champion's promotion stays open; the replaced one is history."""
    old = store.lab.log("baseline", "keep", {"val_bpb": 1.0}, commit="a", ts="2026-03-04T17:00:00Z")
    new = store.lab.log("better", "keep", {"val_bpb": 0.99}, commit="b", ts="2026-03-04T18:00:00Z")
    queue = _table(_section(store.lab.report(16, until=UNTIL).markdown, "Decision queue"))
    assert [row[3] for row in queue] == [f"`{new.run_id}`"]
    assert old.run_id not in " ".join(" ".join(row) for row in queue)


def test_deltas_are_rounded_for_people(store: MemoryStore) -> None:
    """Board deltas and decision comparisons carry no float noise (0.9911 - 0.9979 is -0.0068)."""
    store.lab.log("baseline", "keep", {"val_bpb": 0.9979}, commit="a")
    run = store.lab.log("better", "keep", {"val_bpb": 0.9911}, commit="b", parent_commit="a")
    assert run.decision_packet is not None
    assert run.decision_packet.comparison.delta == -0.0068
    assert store.lab.board().challengers[0].delta == 0.0068
