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
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...errors import InvalidInput, LimitExceeded, MemoryServerError, NotFound
from .. import _validate as check
from ..local_paths import LocalAccess

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
        if check.finite_number(number):
            metrics[str(key)] = float(number)  # type: ignore[arg-type]
    return metrics


def read_summary_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON object in a summary sidecar file (the operator's path: any regular file outside the store).

    Raises:
        InvalidInput: the file is missing, too large, not JSON or not an object, or a directory.
        AccessDenied: it is a FIFO, socket or device (a FIFO with no writer would block forever,
            ``/dev/zero`` never ends).
    """
    shown = Path(path).expanduser()
    # Through a descriptor that must be a regular file, read at most the bound: stat's size
    # is 0 for a device or a FIFO, so checking it first bounded nothing.
    try:
        with LocalAccess.create((Path("/"),), None).open_file(shown, field="the summary file") as opened:
            raw = opened.read(_MAX_SUMMARY_BYTES, what="the summary file")
    except NotFound:
        raise InvalidInput(
            f"the summary file {shown} does not exist; pass the path train.py wrote ({SUMMARY_PATH_VARIABLE})"
        ) from None
    except LimitExceeded:
        raise InvalidInput(f"the summary file {shown} is over 1 MiB; a summary is a small JSON object") from None
    except MemoryServerError:  # AccessDenied is also an OSError: keep it as it is
        raise
    except OSError as exc:
        raise InvalidInput(f"cannot read the summary file {shown}: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError as exc:  # not UTF-8, not JSON, or an integer past Python's digit limit
        raise InvalidInput(
            f"the summary file {shown} is not JSON ({exc}); expected an object of final metrics"
        ) from None
    except RecursionError:
        raise InvalidInput(
            f"the summary file {shown} is nested too deeply; expected a flat object of metrics"
        ) from None
    summary_metrics(data, source=f"the summary file {shown}")
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
