"""What autoresearch's ``train.py`` leaves behind, read into run metrics.

Two sources, both optional:

- the run's output ends with a footer: a line ``---`` and then ``key: value`` lines
  (``val_bpb: 0.997900``, ``training_seconds: 300.1``, ``peak_vram_mb: 45060.2``,
  ``num_steps: 953``, …); every numeric one becomes a metric;
- a summary sidecar (the JSON file ``$AUTORESEARCH_SUMMARY_PATH`` names): an object of
  final metrics.

Explicit metrics win over the sidecar, which wins over the log footer.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...errors import InvalidInput

__all__ = ["SUMMARY_PATH_VARIABLE", "footer_metrics", "merge_metrics", "read_summary_file", "summary_metrics"]

SUMMARY_PATH_VARIABLE = "AUTORESEARCH_SUMMARY_PATH"
_FOOTER_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*:\s*(\S+)\s*$")
_MAX_SUMMARY_BYTES = 1 << 20


def footer_metrics(log_text: str) -> dict[str, float]:
    """The numeric ``key: value`` lines after the log's last ``---`` line (empty when there is none).

    Non-numeric values (a device name, a path) are skipped; the footer ends at the first
    line that is not ``key: value``.
    """
    lines = log_text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == "---"]
    if not starts:
        return {}
    metrics: dict[str, float] = {}
    for line in lines[starts[-1] + 1 :]:
        if not line.strip():
            continue
        match = _FOOTER_LINE.match(line)
        if match is None:
            break
        value = _number(match.group(2))
        if value is not None:
            metrics[match.group(1)] = value
    return metrics


def summary_metrics(summary: Any, *, source: str = "summary") -> dict[str, float]:
    """The numeric top-level entries of a summary object (booleans and non-finite numbers are skipped).

    Raises:
        InvalidInput: ``summary`` is not a JSON object.
    """
    if not isinstance(summary, Mapping):
        raise InvalidInput(
            f'{source} must be a JSON object of final metrics, e.g. {{"val_bpb": 0.9979}}; got {type(summary).__name__}'
        )
    metrics: dict[str, float] = {}
    for key, value in summary.items():
        number = _number(value) if isinstance(value, str) else value
        if isinstance(number, int | float) and not isinstance(number, bool) and math.isfinite(number):
            metrics[str(key)] = float(number)
    return metrics


def read_summary_file(path: str | Path) -> dict[str, Any]:
    """The JSON object in a summary sidecar file.

    Raises:
        InvalidInput: the file is missing, too large, not JSON or not an object.
    """
    file = Path(path).expanduser()
    try:
        size = file.stat().st_size
        if size > _MAX_SUMMARY_BYTES:
            raise InvalidInput(f"the summary file {file} is {size} bytes; a summary is a small JSON object (≤ 1 MiB)")
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(
            f"the summary file {file} does not exist; pass the path train.py wrote ({SUMMARY_PATH_VARIABLE})"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(
            f"the summary file {file} is not JSON ({exc}); expected an object of final metrics"
        ) from None
    summary_metrics(data, source=f"the summary file {file}")
    return dict(data)


def merge_metrics(
    explicit: Mapping[str, float] | None, summary: Mapping[str, Any] | None, log_tail: str | None
) -> dict[str, float]:
    """Explicit metrics over the sidecar's over the log footer's."""
    merged = footer_metrics(log_tail) if log_tail else {}
    if summary is not None:
        merged.update(summary_metrics(summary))
    merged.update(explicit or {})
    return merged


def _number(raw: str) -> float | None:
    try:
        value = float(raw.rstrip("%"))
    except ValueError:
        return None
    return value if math.isfinite(value) else None
