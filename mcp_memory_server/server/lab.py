"""The ``lab`` tool group: thin adapters over :class:`~mcp_memory_server.core.lab.Lab`, plus ``lab://report/latest``."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from pydantic import BaseModel, Field

from ..core.lab import ExperimentReport, LabRun, NoveltyCheck
from ..errors import MemoryServerError
from ..store import MemoryStore
from ._tools import register

Mode = Annotated[
    Literal["explore", "exploit", "replicate"],
    Field(description="explore: new ideas; exploit: refine what works; replicate: re-run to confirm"),
]
Tags = Annotated[list[str] | None, Field(description="free-form tags, e.g. optimizer, schedule")]
Family = Annotated[str | None, Field(description="the line of work, e.g. 'lr-sweep' or 'attention'")]


class RunErrorInput(BaseModel):
    summary: str = Field(description="one line: what went wrong, e.g. 'CUDA out of memory'")
    tail: str | None = Field(None, description="the last lines of the run's output")


def register_tools(server: MCPServer, store: MemoryStore) -> None:
    lab = store.lab

    @register(server, read_only=True, idempotent=True, title="Check an experiment idea for novelty")
    def novelty_check(
        description: Annotated[str, Field(description="the change you are about to try, e.g. 'lr 0.04'")],
        tags: Tags = None,
        family: Family = None,
        mode: Mode = "explore",
        threshold: Annotated[
            float | None, Field(description="match threshold 0-1; default: the calibrated one", ge=0, le=1)
        ] = None,
        limit: Annotated[int, Field(description="how many closest runs to return")] = 5,
    ) -> NoveltyCheck:
        """Before trying an experiment, ask whether it (or something close) was already run, and how it went.

        Returns a classification (novel, known_success, incremental_followup, repeat_failure,
        duplicate_run), a policy decision for the mode (allow, caution or block, with the
        reason), and the closest prior runs with their status, metric and what differs.
        Paraphrases match; the same knob with another value is a variant, not a duplicate.
        """
        return lab.check(description, tags=tags, family=family, mode=mode, threshold=threshold, limit=limit)

    @register(server, title="Log an experiment run")
    def experiment_log(
        description: Annotated[str, Field(description="what this run changed")],
        status: Annotated[
            Literal["keep", "discard", "crash"],
            Field(description="keep: it improved and stays; discard: reverted; crash: it failed to finish"),
        ],
        metrics: Annotated[
            dict[str, float] | None,
            Field(description="numbers the run produced; kept runs need the primary metric (default val_bpb)"),
        ] = None,
        commit: Annotated[str | None, Field(description="the run's git commit")] = None,
        parent_commit: Annotated[str | None, Field(description="the commit it was built on (links lineages)")] = None,
        branch: str | None = None,
        family: Family = None,
        hypothesis: Annotated[str | None, Field(description="what you expected and why")] = None,
        tags: Tags = None,
        notes: str | None = None,
        error: Annotated[RunErrorInput | None, Field(description="for a crash: summary and log tail")] = None,
        log_text: Annotated[str | None, Field(description="the run's output (stored as a run_log artifact)")] = None,
        log_path: Annotated[str | None, Field(description="server-local run log file, instead of log_text")] = None,
        summary: Annotated[
            dict[str, float | int | str | bool | None] | None,
            Field(description="train.py's summary sidecar: an object of final metrics (metrics win over it)"),
        ] = None,
        patch: Annotated[str | None, Field(description="the diff the run applied (run_patch artifact)")] = None,
        patch_path: Annotated[str | None, Field(description="server-local patch file, instead of patch")] = None,
        artifact_ids: Annotated[list[str] | None, Field(description="existing artifacts to attach")] = None,
        mode: Mode = "exploit",
        ts: Annotated[str | None, Field(description="when it ran (RFC 3339); default now")] = None,
    ) -> LabRun:
        """Record a finished run and get its decision packet: the next action and why.

        next_action is one of promote (new champion), branch_followup (kept; high priority
        when close to the champion), replicate (a near miss), retry (infrastructure failure),
        abandon, fix_and_retry (out of memory) or investigate_crash. The log, patch and a
        JSON summary are stored as artifacts. A crash's error is read from the log tail when
        not given.
        """
        return lab.log(
            description, status, metrics, commit=commit, parent_commit=parent_commit, branch=branch,
            family=family, hypothesis=hypothesis, tags=tags, notes=notes,
            error=error.model_dump(exclude_none=True) if error else None, log_text=log_text, log_path=log_path,
            summary=summary, patch=patch, patch_path=patch_path, artifact_ids=artifact_ids, mode=mode, ts=ts,
        )  # fmt: skip

    @register(server, title="Write the morning report")
    def experiment_report(
        since_hours: Annotated[float, Field(description="the window to report on, in hours", gt=0)] = 16.0,
        until: Annotated[str | None, Field(description="end of the window (RFC 3339); default now")] = None,
    ) -> ExperimentReport:
        """Write the morning report on the experiment ledger: headline, decision queue, champion board,
        best lineages, failure clusters and recent runs, plus a PNG chart of the metric over runs with
        the champion frontier. Both are stored as artifacts; lab://report/latest serves the newest.
        """
        return lab.report(since_hours, until=until)

    @server.resource(
        "lab://report/latest",
        name="lab_report_latest",
        description="the newest morning report (Markdown); a fresh one if none was written yet",
        mime_type="text/markdown",
    )
    def latest_report() -> str:
        try:
            return lab.latest_report()
        except MemoryServerError as exc:
            raise ResourceError(str(exc)) from None
