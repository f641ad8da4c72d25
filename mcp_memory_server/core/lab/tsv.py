"""autoresearch's ``results.tsv``: ``commit, val_bpb, memory_gb, status, description``, tab-separated.

Parsing checks the whole file before anything is stored, and names every bad line.
Numeric cells are remembered as written so an imported file exports back as it was, except
that lines end in \n and statuses are written in lower case.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ...errors import InvalidInput

__all__ = ["TsvRow", "format_results_tsv", "parse_results_tsv"]

STATUSES = ("keep", "discard", "crash")
_REQUIRED = ("commit", "status", "description")
_MAX_REPORTED = 20


@dataclass(frozen=True, slots=True)
class TsvRow:
    line: int
    commit: str | None
    """None where the cell is empty: a run logged without a commit, as export-tsv writes it."""
    status: str
    description: str
    metrics: dict[str, float]
    cells: dict[str, str] = field(default_factory=dict)
    """Metric cells as written, for a lossless export."""


def parse_results_tsv(text: str, *, metric: str) -> tuple[list[str], list[TsvRow]]:
    """The header and rows of a results.tsv; crash rows' zero metrics (autoresearch's placeholder) are dropped.

    Raises:
        InvalidInput: the header lacks a required column, or any line is malformed (all are listed).
    """
    # Only \n and \r\n end a line: splitlines() would also split a description at U+2028, NEL or
    # a form feed, and blame the wrong line for "tabs". A BOM (Excel, Notepad) is not a column.
    lines = re.split(r"\r?\n", text.removeprefix("\ufeff"))
    header_index = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_index is None:
        raise InvalidInput("results.tsv is empty; expected a header line: commit<TAB>val_bpb<TAB>…<TAB>description")
    header = [name.strip() for name in lines[header_index].split("\t")]
    lowered = [name.lower() for name in header]
    missing = [name for name in _REQUIRED if name not in lowered]
    if missing:
        raise InvalidInput(
            f"results.tsv header {header} lacks column(s) {missing}; expected e.g. "
            f"commit<TAB>{metric}<TAB>memory_gb<TAB>status<TAB>description"
        )
    if len(set(lowered)) != len(lowered):
        raise InvalidInput(f"results.tsv header {header} repeats a column name")
    if metric not in header:
        raise InvalidInput(
            f"results.tsv has no {metric!r} column (header: {header}); set lab_metric to its metric column"
        )
    position = {name: lowered.index(name) for name in _REQUIRED}
    metric_columns = [name for name in header if name.lower() not in _REQUIRED]
    problems: list[str] = []
    rows: list[TsvRow] = []
    for number, line in enumerate(lines[header_index + 1 :], start=header_index + 2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            problems.append(
                f"line {number}: {len(fields)} fields, expected {len(header)} ({', '.join(header)}); "
                "descriptions must not contain tabs"
            )
            continue
        commit = fields[position["commit"]].strip()
        status = fields[position["status"]].strip().lower()
        description = fields[position["description"]].strip()
        bad = False
        if any(c.isspace() for c in commit):
            problems.append(f"line {number}: commit {commit!r} must be an id without spaces")
            bad = True
        if status not in STATUSES:
            problems.append(
                f"line {number}: unknown status {fields[position['status']].strip()!r}; use keep, discard or crash"
            )
            bad = True
        if not description:
            problems.append(f"line {number}: description is empty")
            bad = True
        metrics: dict[str, float] = {}
        cells: dict[str, str] = {}
        for name in metric_columns:
            cell = fields[header.index(name)].strip()
            cells[name] = cell
            if cell == "":
                continue
            try:
                value = float(cell)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                problems.append(f"line {number}: {name} {cell!r} is not a finite number")
                bad = True
                continue
            if status == "crash" and value == 0:
                continue
            metrics[name] = value
        if status == "keep" and metric not in metrics and not bad:
            problems.append(f"line {number}: a kept run needs {metric} (the primary metric)")
            bad = True
        if not bad:
            rows.append(TsvRow(number, commit or None, status, description, metrics, cells))
    if problems:
        shown = "\n".join(problems[:_MAX_REPORTED])
        more = f"\n… and {len(problems) - _MAX_REPORTED} more" if len(problems) > _MAX_REPORTED else ""
        raise InvalidInput(
            f"results.tsv has {len(problems)} problem(s); nothing was imported. Fix these lines:\n{shown}{more}"
        )
    return header, rows


def _cell(name: str, value: float | None, primary: str) -> str:
    if value is None:
        # autoresearch's own columns hold 0 for what a crash never measured; an extra metric a run
        # lacks is left empty (import reads an empty cell as no value, never as 0)
        if name == primary:
            return "0.000000"
        return "0.0" if name == "memory_gb" else ""
    if name == primary:
        return f"{value:.6f}"
    if name == "memory_gb":
        return f"{value:.1f}"
    return f"{value:g}"


def format_results_tsv(runs: Sequence[dict[str, Any]], *, metric: str, extra_metrics: bool = False) -> str:
    """results.tsv text for ``runs`` (dicts with commit, status, description, metrics, source).

    Runs imported from a results.tsv keep their columns and cells as written; others use
    autoresearch's five columns and formats (metric to 6 decimals, memory_gb to 1 — from
    ``peak_vram_mb`` when the run has no ``memory_gb`` — and a crash's missing values as 0).
    ``extra_metrics`` adds a column for every other metric the runs carry.
    """
    sources = [r.get("source") or {} for r in runs]
    headers = {tuple(s.get("columns", ())) for s in sources}
    if len(headers) == 1 and next(iter(headers)) and not extra_metrics:
        header = list(next(iter(headers)))
    else:
        extra: list[str] = []
        for run in runs if extra_metrics else ():
            for name in run["metrics"]:
                if name not in (metric, "memory_gb") and name not in extra:
                    extra.append(name)
        header = ["commit", metric, "memory_gb", *extra, "status", "description"]
    out = ["\t".join(header)]
    for run, source in zip(runs, sources, strict=True):
        cells_written = source.get("cells", {})
        row = []
        for name in header:
            key = name.lower()
            if key == "commit":
                row.append(run.get("commit") or "")
            elif key == "status":
                row.append(source.get("status_cell") or run["status"])
            elif key == "description":
                row.append(" ".join(run["description"].split()))
            else:
                value = run["metrics"].get(name)
                if key == "memory_gb" and value is None and run["metrics"].get("peak_vram_mb") is not None:
                    value = run["metrics"]["peak_vram_mb"] / 1024  # what autoresearch's loop writes
                written = cells_written.get(name)
                if written is not None and _same_cell(written, value, run["status"]):
                    row.append(written)
                else:
                    row.append(_cell(name, value, metric))
        out.append("\t".join(row))
    return "\n".join(out) + "\n"


def _same_cell(written: str, value: float | None, status: str) -> bool:
    if written == "":
        return value is None
    try:
        parsed = float(written)
    except ValueError:
        return False
    if value is None:
        return status == "crash" and parsed == 0
    return parsed == value
