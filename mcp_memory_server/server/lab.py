"""The ``lab`` tool group: thin adapters over :class:`~mcp_memory_server.core.lab.Lab`, plus ``lab://report/latest``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from pydantic import BaseModel, Field

from ..core.lab import DecisionPacket, ExperimentReport, NoveltyCheck
from ..core.lab.models import RunArtifact
from ..errors import MemoryServerError
from ..store import MemoryStore
from ._tools import register

Mode = Annotated[
    Literal["explore", "exploit", "replicate"],
    Field(description="explore new ideas, exploit (refine) or replicate"),
]
Tags = Annotated[list[str] | None, Field(description="free-form tags, e.g. optimizer")]
Family = Annotated[str | None, Field(description="the line of work, e.g. lr-sweep")]


class LoggedRun(BaseModel):
    """What experiment_log stored and decided; the run's own fields are what you sent."""

    run_id: str
    ts: str
    artifacts: list[RunArtifact] = []
    decision_packet: DecisionPacket | None = Field(None, description="the next action, why, and the novelty check")


class RunErrorInput(BaseModel):
    summary: str = Field(description="what went wrong, one line")
    tail: str | None = Field(None, description="the output's last lines")


def register_tools(server: MCPServer, store: MemoryStore) -> None:
    lab = store.lab

    @register(server, read_only=True, idempotent=True, title="Check an experiment idea for novelty")
    def novelty_check(
        description: Annotated[str, Field(description="the change to try, e.g. 'lr 0.04'")],
        tags: Tags = None,
        family: Family = None,
        mode: Mode = "explore",
        threshold: Annotated[
            float | None, Field(description="match threshold 0-1 (default calibrated)", ge=0, le=1)
        ] = None,
        limit: Annotated[int, Field(description="how many closest runs to return")] = 5,
    ) -> NoveltyCheck:
        """Before an experiment: was it (or something close) already run, how did it go, and may it run again?"""
        return lab.check(description, tags=tags, family=family, mode=mode, threshold=threshold, limit=limit)

    @register(server, title="Log an experiment run")
    def experiment_log(
        description: Annotated[str, Field(description="what this run changed")],
        status: Annotated[
            Literal["keep", "discard", "crash"],
            Field(description="keep (improved), discard (reverted) or crash"),
        ],
        metrics: Annotated[
            dict[str, float] | None,
            Field(description="the run's numbers; a kept run needs the primary one"),
        ] = None,
        commit: Annotated[str | None, Field(description="the run's git commit")] = None,
        parent_commit: Annotated[str | None, Field(description="the commit it built on")] = None,
        branch: Annotated[str | None, Field(description="the git branch")] = None,
        family: Family = None,
        hypothesis: Annotated[str | None, Field(description="what you expected and why")] = None,
        tags: Tags = None,
        notes: Annotated[str | None, Field(description="anything else worth keeping")] = None,
        error: Annotated[RunErrorInput | None, Field(description="for a crash: summary and log tail")] = None,
        log_text: Annotated[str | None, Field(description="the run's output (saved)")] = None,
        log_path: Annotated[str | None, Field(description="server-local log file instead")] = None,
        summary: Annotated[dict[str, Any] | None, Field(description="train.py's summary JSON")] = None,
        patch: Annotated[str | None, Field(description="the run's diff (saved)")] = None,
        patch_path: Annotated[str | None, Field(description="server-local patch file instead")] = None,
        artifact_ids: Annotated[list[str] | None, Field(description="artifacts to attach")] = None,
        mode: Mode = "exploit",
        ts: Annotated[str | None, Field(description="when it ran (RFC 3339); default now")] = None,
    ) -> LoggedRun:
        """Record a finished run; get its decision packet: the next action (promote, replicate, retry, …) and why."""
        run = lab.log(
            description, status, metrics, commit=commit, parent_commit=parent_commit, branch=branch,
            family=family, hypothesis=hypothesis, tags=tags, notes=notes,
            error=error.model_dump(exclude_none=True) if error else None, log_text=log_text, log_path=log_path,
            summary=summary, patch=patch, patch_path=patch_path, artifact_ids=artifact_ids, mode=mode, ts=ts,
        )  # fmt: skip
        # The novelty check travels once, inside the packet (the record also keeps it as novelty_guard).
        return LoggedRun(run_id=run.run_id, ts=run.ts, artifacts=run.artifacts, decision_packet=run.decision_packet)

    @register(server, title="Write the morning report")
    def experiment_report(
        since_hours: Annotated[float, Field(description="the window to report on, in hours", gt=0)] = 16.0,
        until: Annotated[str | None, Field(description="window end (RFC 3339; default now)")] = None,
    ) -> ExperimentReport:
        """Write the morning report on the experiment ledger: decisions, champions, failures, chart."""
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
