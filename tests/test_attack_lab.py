"""Hostile autoresearch inputs: summaries and summary files an attacker (or a broken train.py) could hand the lab.

Every one is refused with a message that names the file or field, or skipped the way a
non-numeric value is; none escapes as a bare exception, and nothing is logged on refusal.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from _mcp import call, error
from mcp import Client

from mcp_memory_server import InvalidInput, MemoryServerError, MemoryStore
from mcp_memory_server.core.lab.autoresearch import read_summary_file, summary_metrics

HUGE = 10**400  # an integer JSON allows, larger than any float: float(HUGE) raises OverflowError


def test_an_integer_too_large_for_a_float_is_not_a_metric_in_a_summary() -> None:
    """summary_metrics skips it like a non-finite number (it was an OverflowError)."""
    assert summary_metrics({"val_bpb": 0.99, "steps": HUGE, "neg": -HUGE}) == {"val_bpb": 0.99}


def test_explicit_metrics_with_an_integer_too_large_for_a_float_are_refused(store: MemoryStore) -> None:
    """Lab.log(metrics=…) names the metric (it was an OverflowError out of the validator)."""
    with pytest.raises(InvalidInput, match=r"metrics\['val_bpb'\] must be a finite number"):
        store.lab.log("huge", "discard", metrics={"val_bpb": HUGE})
    assert store.lab.count() == 0


@pytest.mark.anyio
async def test_experiment_log_with_a_huge_integer_in_its_summary_is_logged_without_it(
    client: Client, store: MemoryStore
) -> None:
    """Over MCP the summary's huge integer is skipped; it used to answer 'Error executing tool experiment_log'."""
    logged = await call(client, "experiment_log", description="big summary", status="discard",
                        summary={"val_bpb": 0.95, "tokens": HUGE})  # fmt: skip
    assert store.lab.get(logged["run_id"]).metrics == {"val_bpb": 0.95}
    message = await error(client, "experiment_log", description="only huge", status="keep", summary={"val_bpb": HUGE})
    assert "a kept run needs metrics['val_bpb']" in message
    assert store.lab.count() == 1


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"val_bpb": ' + "9" * 5000 + "}", "is not JSON"),  # past Python's int-string digit limit
        ('{"val_bpb": 0.9, "tokens": ' + "9" * 400 + "}", None),  # a valid summary: the huge one is skipped
    ],
    ids=["deep", "too-many-digits", "huge-int"],
)
def test_a_hostile_summary_file_is_refused_naming_it_or_read(
    tmp_path: Path, content: str, expected: str | None
) -> None:
    """Deep nesting and over-long integers are InvalidInput naming the file (they were RecursionError/ValueError)."""
    summary = tmp_path / "summary.json"
    summary.write_text(content)
    if expected is None:
        assert summary_metrics(read_summary_file(summary)) == {"val_bpb": 0.9}
        return
    with pytest.raises(InvalidInput, match=expected) as caught:
        read_summary_file(summary)
    assert str(summary) in str(caught.value)


def test_a_summary_path_that_is_not_a_regular_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    """A directory, /dev/zero (endless) and a FIFO with no writer (blocks forever) are refused at once."""
    with pytest.raises(InvalidInput, match="must be a file"):
        read_summary_file(tmp_path)
    with pytest.raises(MemoryServerError, match="not a regular file"):
        read_summary_file("/dev/zero")
    fifo = tmp_path / "summary.fifo"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []
    worker = threading.Thread(target=lambda: outcome.append(_refusal(fifo)), daemon=True)
    worker.start()
    worker.join(30)
    if worker.is_alive():  # unblock the reader so the test process can exit, then fail
        with open(fifo, "wb"):
            pass
        worker.join()
        pytest.fail("reading a FIFO summary blocked")
    assert isinstance(outcome[0], MemoryServerError) and "not a regular file" in str(outcome[0])


def test_a_summary_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    """The 1 MiB bound holds for what is read, not only for what stat says."""
    summary = tmp_path / "summary.json"
    summary.write_text('{"val_bpb": 0.9, "pad": "' + "x" * (1 << 20) + '"}')
    with pytest.raises(InvalidInput, match="over 1 MiB"):
        read_summary_file(summary)


def _refusal(path: Path) -> BaseException | None:
    try:
        read_summary_file(path)
    except BaseException as exc:
        return exc
    return None
