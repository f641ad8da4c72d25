"""The morning report: Markdown for a person, and a PNG chart of the metric with the champion frontier."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from .models import BoardEntry, ChampionBoard, FailureCluster, LabRun, Lineage

__all__ = ["Point", "ReportData", "frontier", "headline", "is_open", "render_chart", "render_markdown"]


class Point(NamedTuple):
    """One run as the chart and the frontier need it (cheap to load for a whole ledger)."""

    run_id: str
    ts: str
    status: str
    value: float | None


_PRIORITY_ORDER = {"high": 0, "medium": 1, "low": 2}
_LEDGER_ROWS = 50
_QUEUE_ROWS = 25


@dataclass(frozen=True, slots=True)
class ReportData:
    generated_at: str
    since: str
    until: str
    since_hours: float
    metric: str
    direction: Literal["min", "max"]
    window: list[LabRun]
    """Runs in the window, oldest first."""
    frontier_in_window: list[Point]
    """Kept runs in the window that set a new best, oldest first."""
    start_best: float | None
    """The best kept value before the window began."""
    board: ChampionBoard
    lineages: list[Lineage]
    clusters: list[FailureCluster]
    chart_uri: str | None = None
    followed_up: frozenset[str] = frozenset()
    """Commits some run was built on: their decisions were acted on."""


def is_open(run: LabRun, data: ReportData) -> bool:
    """Whether the run's decision still waits for someone.

    Any decision is closed once a run has been built on the run's commit (someone acted on
    it); a promotion also closes when a newer champion supersedes the run.
    """
    packet = run.decision_packet
    if packet is None or (run.commit and run.commit in data.followed_up):
        return False
    if packet.next_action == "promote":
        champion = data.board.champion
        return champion is not None and champion.run_id == run.run_id
    return True


def frontier(points: Sequence[Point], direction: str) -> list[Point]:
    """Kept runs (in ledger order) that were strictly better than every kept run before them."""
    best: float | None = None
    steps = []
    for point in points:
        value = point.value
        if point.status != "keep" or value is None:
            continue
        if best is None or (value < best if direction == "min" else value > best):
            best = value
            steps.append(point)
    return steps


def counts(data: ReportData) -> dict[str, int]:
    window = data.window
    by_status = Counter(run.status for run in window)
    queue = Counter(run.decision_packet.priority for run in window if run.decision_packet and is_open(run, data))
    return {
        "runs": len(window),
        "keep": by_status["keep"],
        "discard": by_status["discard"],
        "crash": by_status["crash"],
        "high_priority": queue["high"],
    }


def headline(data: ReportData) -> str:
    c = counts(data)
    hours = f"{data.since_hours:g}"
    text = (
        f"{c['runs']} run{'s' if c['runs'] != 1 else ''} in the last {hours} h: "
        f"{c['keep']} kept, {c['discard']} discarded, {c['crash']} crashed."
    )
    champion = data.board.champion
    steps = data.frontier_in_window
    if steps and champion is not None and steps[-1].value is not None:
        new_best = steps[-1].value
        if data.start_best is None and len(steps) == 1:
            text += f" First champion set: {data.metric} {_v(new_best)} ({steps[-1].run_id})."
        elif data.start_best is None:
            first = steps[0].value
            assert first is not None
            gain = first - new_best if data.direction == "min" else new_best - first
            text += (
                f" First champion set and improved {len(steps) - 1} time{'s' if len(steps) != 2 else ''}: "
                f"{data.metric} {_v(first)} → {_v(new_best)} (improved by {_v(gain)}; {steps[-1].run_id})."
            )
        else:
            gain = data.start_best - new_best if data.direction == "min" else new_best - data.start_best
            text += (
                f" {len(steps)} new champion{'s' if len(steps) != 1 else ''}: {data.metric} "
                f"{_v(data.start_best)} → {_v(new_best)} (improved by {_v(gain)}; {steps[-1].run_id})."
            )
    elif champion is not None:
        text += f" No new champion; the best is still {data.metric} {_v(champion.value)} ({champion.run_id})."
    else:
        text += f" No kept run has {data.metric} yet."
    if c["high_priority"]:
        text += f" {c['high_priority']} open high-priority decision{'s' if c['high_priority'] != 1 else ''}."
    return text


def render_markdown(data: ReportData) -> str:
    """The report: headline, decision queue, champion board, best lineages, failure clusters, recent ledger."""
    m = data.metric
    better = "lower" if data.direction == "min" else "higher"
    out = [
        f"# Morning report — {data.until[:16].replace('T', ' ')} UTC",
        "",
        f"Window: {data.since} → {data.until} ({data.since_hours:g} h). Primary metric: `{m}` ({better} is better).",
        "",
        "## Headline",
        "",
        headline(data),
        "",
    ]
    if data.chart_uri:
        out += [f"![{m} over runs with the champion frontier]({data.chart_uri})", ""]

    out += ["## Decision queue", ""]
    # Open decisions only (a superseded champion's "promote" is history); highest priority first, newest first.
    queued = [
        (i, r, r.decision_packet)
        for i, r in enumerate(data.window)
        if r.decision_packet is not None and is_open(r, data)
    ]
    queued.sort(key=lambda item: (_PRIORITY_ORDER[item[2].priority], -item[0]))
    if queued:
        out += [
            "| # | priority | next action | run | commit | " + m + " | description | why |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for rank, (_, run, packet) in enumerate(queued[:_QUEUE_ROWS], 1):
            out.append(
                f"| {rank} | {packet.priority} | **{packet.next_action}** | `{run.run_id}` | {_commit(run.commit)} | "
                f"{_v((run.metrics or {}).get(m))} | {_cell(run.description)} | {_cell(packet.rationale, 160)} |"
            )
        if len(queued) > _QUEUE_ROWS:
            rest = Counter(f"{p.next_action} ({p.priority})" for _, _, p in queued[_QUEUE_ROWS:])
            listed = ", ".join(f"{n}x {name}" for name, n in rest.most_common())
            out.append(f"\n… and {len(queued) - _QUEUE_ROWS} more: {listed}.")
    else:
        out.append("No open decisions in the window." if data.window else "No runs in the window.")
    out.append("")

    out += ["## Champion board", ""]
    board = data.board
    if board.champion is None:
        out.append(f"No run has `{m}` yet.")
    else:
        if board.provisional:
            out += ["No kept run has the metric yet; the board ranks discarded runs (provisional).", ""]
        out += [
            f"| rank | run | commit | status | {m} | Δ vs champion | description |",
            "|---|---|---|---|---|---|---|",
        ]
        for entry in [board.champion, *board.challengers]:
            out.append(_board_row(entry))
    out.append("")

    out += ["## Best lineages", ""]
    if data.lineages:
        for i, lineage in enumerate(data.lineages, 1):
            out.append(f"{i}. {_lineage_line(lineage, m)}")
    else:
        out.append("No lineages yet: log runs with commit and parent_commit to link them.")
    out.append("")

    out += ["## Failure clusters", ""]
    if data.clusters:
        out += ["| cluster | runs | discarded | crashed | in window | examples |", "|---|---|---|---|---|---|"]
        for cluster in data.clusters:
            examples = "; ".join(_cell(e, 60) for e in cluster.examples[:3])
            out.append(
                f"| {_cell(cluster.label, 60)} | {cluster.size} | {cluster.discarded} | {cluster.crashed} | "
                f"{cluster.in_window} | {examples} |"
            )
    else:
        out.append("No repeated failures: no two discarded or crashed runs tried the same idea.")
    out.append("")

    out += ["## Recent ledger", ""]
    recent = list(reversed(data.window))
    if recent:
        out += [f"| time (UTC) | run | commit | status | {m} | description |", "|---|---|---|---|---|---|"]
        for run in recent[:_LEDGER_ROWS]:
            out.append(
                f"| {run.ts[:19].replace('T', ' ')} | `{run.run_id}` | {_commit(run.commit)} | {run.status} | "
                f"{_v((run.metrics or {}).get(m))} | {_cell(run.description)} |"
            )
        if len(recent) > _LEDGER_ROWS:
            out.append(f"\n… and {len(recent) - _LEDGER_ROWS} older runs in the window.")
    else:
        out.append("No runs in the window.")
    out.append("")
    return "\n".join(out)


def _board_row(entry: BoardEntry) -> str:
    delta = "—" if entry.rank == 1 else f"{entry.delta:+.6f}"
    return (
        f"| {entry.rank} | `{entry.run_id}` | {_commit(entry.commit)} | {entry.status} | {_v(entry.value)} | "
        f"{delta} | {_cell(entry.description)} |"
    )


def _lineage_line(lineage: Lineage, metric: str) -> str:
    steps = lineage.steps
    shown = steps if len(steps) <= 8 else [*steps[:2], None, *steps[-5:]]
    parts = []
    for step in shown:
        if step is None:
            parts.append("…")
        else:
            parts.append(f"{_commit(step.commit) if step.commit else '`' + step.run_id + '`'} {_v(step.value)}")
    gain = f", gain {_v(lineage.gain)}" if lineage.gain is not None else ""
    cycle = ", cut at a cycle" if lineage.cycle else ""
    tip = steps[-1]
    return f"{' → '.join(parts)} ({len(steps)} run{'s' if len(steps) != 1 else ''}{gain}{cycle}); tip: {_cell(tip.description, 80)}"


def _commit(commit: str | None) -> str:
    return f"`{commit[:12]}`" if commit else "—"


def _cell(text: str, limit: int = 100) -> str:
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _v(value: float | None) -> str:
    return "—" if value is None else f"{value:.6f}"


def render_chart(
    runs: Sequence[Point],
    *,
    metric: str,
    direction: str,
    window_start: int | None = None,
) -> bytes:
    """A PNG: every run's metric in ledger order (kept, discarded, crashed) and the champion frontier."""
    # A bare Figure renders through Agg without pyplot: no global state, no GUI backend.
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(10, 4.5), dpi=100)
    axes = figure.subplots()
    values = [(i, run.value, run.status) for i, run in enumerate(runs, 1)]
    styles = {"keep": ("#2a9d55", "o", "kept"), "discard": ("#9aa0a6", "o", "discarded")}
    for status, (color, marker, label) in styles.items():
        xs = [i for i, v, s in values if s == status and v is not None]
        ys = [v for _, v, s in values if s == status and v is not None]
        if xs:
            axes.scatter(xs, ys, s=18, c=color, marker=marker, label=label, zorder=3)
    crashes = [i for i, v, s in values if s == "crash"]
    if crashes:
        # A crash has no metric: mark it on a strip at the foot of the axes, off the metric scale.
        axes.scatter(crashes, [0.03] * len(crashes), s=36, c="#d1495b", marker="x", label="crashed (no metric)",
                     zorder=3, transform=axes.get_xaxis_transform(), clip_on=False)  # fmt: skip
    best_x: list[float] = []
    best_y: list[float] = []
    best: float | None = None
    for i, value, status in values:
        if (
            status == "keep"
            and value is not None
            and (best is None or (value < best if direction == "min" else value > best))
        ):
            best = value
        if best is not None:
            best_x.append(i)
            best_y.append(best)
    if best_x:
        axes.step(best_x, best_y, where="post", color="#1d3557", linewidth=1.8, label="champion frontier", zorder=2)
    if window_start is not None and runs:
        axes.axvspan(window_start - 0.5, len(runs) + 0.5, color="#f4a261", alpha=0.12, label="report window")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("run (ledger order)")
    axes.set_ylabel(f"{metric} ({'lower' if direction == 'min' else 'higher'} is better)")
    axes.set_title(f"{metric} over {len(runs)} runs")
    axes.grid(True, alpha=0.3)
    if runs:
        axes.legend(loc="best", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
