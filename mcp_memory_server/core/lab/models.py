"""Records the lab returns; the MCP tools return them unchanged (they are the output schemas)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BoardEntry",
    "ChampionBoard",
    "Classification",
    "Comparison",
    "DecisionPacket",
    "ExperimentReport",
    "FailureCluster",
    "LabRun",
    "Lineage",
    "LineageStep",
    "Mode",
    "NextAction",
    "NoveltyCheck",
    "NoveltyMatch",
    "Policy",
    "RunArtifact",
    "RunError",
    "RunSummary",
    "Status",
    "TsvImport",
]

Status = Literal["keep", "discard", "crash"]
Mode = Literal["explore", "exploit", "replicate"]
Classification = Literal["novel", "known_success", "incremental_followup", "repeat_failure", "duplicate_run"]
Category = Literal["duplicate_run", "repeat_failure", "incremental_followup", "known_success"]
NextAction = Literal[
    "promote", "branch_followup", "replicate", "retry", "abandon", "fix_and_retry", "investigate_crash"
]
Priority = Literal["high", "medium", "low"]
HypothesisStatus = Literal["supported", "refuted", "inconclusive", "untested"]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class RunError(_Record):
    """Why a run failed: a one-line summary, the end of its log, and where that came from."""

    summary: str
    tail: str = Field("", description="the last lines of the run's output")
    source: Literal["caller", "log"] = Field("caller", description="given by the caller, or read from the log")
    kind: Literal["memory", "transient", "other"] = Field(
        "other", description="memory: out of memory; transient: infrastructure (network, preemption); other"
    )


class RunArtifact(_Record):
    role: Literal["log", "patch", "summary", "attached"]
    artifact_id: str
    uri: str
    name: str


class NoveltyMatch(_Record):
    """A prior run close to the checked idea."""

    run_id: str
    description: str
    status: Status
    family: str | None = None
    commit: str | None = None
    metric: float | None = Field(None, description="the run's primary metric, if it has one")
    score: float = Field(description="similarity after signals, 0-1")
    relation: Literal["duplicate", "variant"] = Field(
        description="duplicate: the same change; variant: the same knob with another value, option or direction"
    )
    category: Category
    differences: list[str] = Field([], description="settings that differ, e.g. 'learning_rate: 0.04 vs 0.05'")


class Policy(_Record):
    decision: Literal["allow", "caution", "block"]
    rationale: str


class NoveltyCheck(_Record):
    """Has this idea, or something close, been tried, and what should happen now?"""

    classification: Classification
    policy: Policy
    mode: Mode
    effective_threshold: float = Field(description="the match threshold used: yours, else the calibrated default")
    probe_text: str = Field("", description="the description that was checked")
    counts: dict[str, int] = Field(description="runs compared, matches, and matches per category")
    top_matches: list[NoveltyMatch] = []
    similarity: Literal["embedding", "lexical"] = Field(
        description="embedding: model cosine plus signals; lexical: the fallback when the model is unavailable"
    )
    warning: str | None = None

    # MemoryLab's names for what is already here (properties: nothing is sent twice).
    @property
    def threshold(self) -> float:
        return self.effective_threshold

    @property
    def match_count(self) -> int:
        return self.counts.get("matches", 0)


class RunSummary(_Record):
    run_id: str
    commit: str | None = None
    parent_commit: str | None = None
    branch: str | None = None
    family: str | None = None
    status: Status
    description: str
    metric: float | None = None


class Comparison(_Record):
    """The run's primary metric against the champion before it (and its parent, if logged)."""

    metric: str
    direction: Literal["min", "max"]
    value: float | None = None
    champion_run_id: str | None = Field(None, description="the champion before this run")
    champion_value: float | None = None
    delta: float | None = Field(None, description="value minus the champion's value")
    improvement: float | None = Field(None, description="how much better than the champion (negative: worse)")
    new_champion: bool = False
    parent_run_id: str | None = None
    parent_value: float | None = None
    parent_improvement: float | None = None


class DecisionPacket(_Record):
    """What a run means and what to do next."""

    summary: str
    next_action: NextAction
    priority: Priority
    rationale: str
    hypothesis_status: HypothesisStatus
    run: RunSummary
    novelty: NoveltyCheck | None = None
    comparison: Comparison
    error: RunError | None = None


class LabRun(_Record):
    """One experiment run in the ledger."""

    run_id: str
    ts: str
    branch: str | None = None
    commit: str | None = None
    parent_commit: str | None = None
    family: str | None = None
    status: Status
    description: str
    hypothesis: str | None = None
    tags: list[str] = []
    notes: str | None = None
    metrics: dict[str, float] | None = Field(None, description="null for a crash that measured nothing")
    error: RunError | None = None
    artifacts: list[RunArtifact] = []
    novelty_guard: NoveltyCheck | None = None
    decision_packet: DecisionPacket | None = None


class BoardEntry(_Record):
    rank: int
    run_id: str
    commit: str | None = None
    status: Status
    description: str
    value: float
    delta: float = Field(description="value minus the champion's value (0 for the champion)")
    ts: str


class ChampionBoard(_Record):
    metric: str
    direction: Literal["min", "max"]
    champion: BoardEntry | None = None
    challengers: list[BoardEntry] = []
    provisional: bool = Field(False, description="true when no kept run has the metric and a discarded run leads")


class LineageStep(_Record):
    run_id: str
    commit: str | None = None
    status: Status
    value: float | None = None
    description: str


class Lineage(_Record):
    """A chain of runs linked by parent_commit, from its root to a tip."""

    tip_run_id: str
    steps: list[LineageStep]
    gain: float | None = Field(None, description="improvement from the root to the tip (positive: better)")
    cycle: bool = Field(False, description="the parent chain looped back on itself and was cut")


class FailureCluster(_Record):
    """Discarded or crashed runs that tried the same idea."""

    label: str
    size: int
    discarded: int
    crashed: int
    run_ids: list[str]
    examples: list[str]
    in_window: int = 0


class ExperimentReport(_Record):
    generated_at: str
    since: str
    until: str
    headline: str
    counts: dict[str, int]
    champion: BoardEntry | None = None
    report_artifact_id: str | None = None
    report_uri: str | None = None
    chart_artifact_id: str | None = None
    chart_uri: str | None = None
    markdown: str = Field(description="the report; cut at max_response_bytes (read the artifact for all of it)")
    truncated: bool = False


class TsvImport(_Record):
    imported: int
    skipped: int = Field(0, description="rows already in the ledger (same commit, status and description)")
    run_ids: list[str] = Field([], description="up to 100 of the new run ids, in file order")
    metric: str
    champion: BoardEntry | None = None
