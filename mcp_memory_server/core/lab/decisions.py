"""MemoryLab's decision rules: match categories, the mode policy matrix, and decision packets.

These are pure functions over plain values, so every rule can be read (and tested) as a table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from .models import (
    Category,
    Classification,
    Comparison,
    DecisionPacket,
    HypothesisStatus,
    Mode,
    NextAction,
    NoveltyCheck,
    Policy,
    Priority,
    RunError,
    RunSummary,
    Status,
)

__all__ = [
    "NEAR_MARGIN",
    "POLICY",
    "PRECEDENCE",
    "categorize",
    "classify",
    "decide",
    "error_kind",
    "policy",
]

NEAR_MARGIN = 0.0015
"""A kept run this close to the champion is worth a high-priority follow-up (val_bpb units)."""

PRECEDENCE: tuple[Category, ...] = ("duplicate_run", "repeat_failure", "incremental_followup", "known_success")
"""The overall classification is the first category present among the matches, else ``novel``."""

Decision = Literal["allow", "caution", "block"]
POLICY: dict[Classification, dict[Mode, Decision]] = {
    "novel": {"explore": "allow", "exploit": "caution", "replicate": "block"},
    "duplicate_run": {"explore": "block", "exploit": "block", "replicate": "allow"},
    "repeat_failure": {"explore": "block", "exploit": "block", "replicate": "block"},
    "incremental_followup": {"explore": "block", "exploit": "allow", "replicate": "allow"},
    "known_success": {"explore": "block", "exploit": "allow", "replicate": "allow"},
}

_WHY: dict[tuple[Classification, Decision], str] = {
    ("novel", "allow"): "nothing in the ledger is this idea; trying new ideas is what explore mode is for",
    ("novel", "caution"): "nothing in the ledger is this idea; exploit mode prefers refining what already works, "
    "so run it only if it is cheap or promising",
    ("novel", "block"): "replicate mode re-runs ideas already in the ledger, and none matches this one",
    ("duplicate_run", "block"): "this change was already run; read its result instead of spending a run on it",
    ("duplicate_run", "allow"): "a deliberate replication of a run already in the ledger",
    ("repeat_failure", "block"): "a run close to this one was discarded or crashed; change the idea or fix "
    "the cause before trying again",
    ("incremental_followup", "block"): "a follow-up of a kept run in the same family; explore mode wants new ideas",
    ("incremental_followup", "allow"): "a follow-up of a kept run in the same family",
    ("known_success", "block"): "close to an idea that already worked; explore mode wants new ideas",
    ("known_success", "allow"): "builds on an idea that already worked",
}


def categorize(relation: str, status: Status, run_family: str | None, family: str | None) -> Category:
    """A match's category: duplicate, else failure, else same-family follow-up, else known success."""
    if relation == "duplicate":
        return "duplicate_run"
    if status in ("discard", "crash"):
        return "repeat_failure"
    if family and run_family == family:
        return "incremental_followup"
    return "known_success"


def classify(categories: Iterable[Category]) -> Classification:
    present = set(categories)
    for category in PRECEDENCE:
        if category in present:
            return category
    return "novel"


def policy(classification: Classification, mode: Mode, example: str | None = None) -> Policy:
    """The decision for a classification in a mode, with a rationale naming the closest run."""
    decision = POLICY[classification][mode]
    rationale = f"{mode} mode, {classification}: {_WHY[(classification, decision)]}"
    if example:
        rationale += f" (closest: {example})"
    return Policy(decision=decision, rationale=rationale)


_LOGGED_WHY: dict[Classification, tuple[Decision, str]] = {
    "novel": ("allow", "a new idea: nothing in the ledger was this change"),
    "known_success": ("allow", "built on an idea that had already worked"),
    "incremental_followup": ("allow", "a follow-up of a kept run in the same family"),
    "duplicate_run": ("caution", "this change had already been run; check the ledger before the next run"),
    "repeat_failure": ("caution", "an idea close to this had already been discarded or had crashed; "
                       "check the ledger before the next run"),
}  # fmt: skip


def judge_logged(classification: Classification, example: str | None = None) -> Policy:
    """The novelty verdict on a run already made (logging judges the past, it does not advise a future run)."""
    decision, why = _LOGGED_WHY[classification]
    rationale = f"logged run, {classification}: {why}"
    if example:
        rationale += f" (closest: {example})"
    return Policy(decision=decision, rationale=rationale)


_MEMORY = re.compile(
    r"out\s+of\s+(?:\w+\s+)?memory|\boom\b|oom[-_ ]?kill|memoryerror|outofmemory|cannot\s+allocate|failed\s+to\s+allocate"
    r"|allocation\s+failed|not\s+enough\s+memory|insufficient\s+memory|\bmemory\b(?!\s+access)",
    re.IGNORECASE,
)
_ILLEGAL_ACCESS = re.compile(r"illegal\s+memory\s+access|memory\s+access\s+fault", re.IGNORECASE)
_TRANSIENT = re.compile(
    r"connection\s+(?:reset|refused|aborted|closed|timed\s+out)|\bnccl\b|preempt|sigterm|terminated\s+by\s+signal"
    r"|killed\s+by\s+signal\s+15|broken\s+pipe|temporarily\s+unavailable|node\s+failure|ecc\s+error"
    r"|network\s+is\s+unreachable|no\s+cuda\s+gpus\s+are\s+available|device\s+or\s+resource\s+busy"
    r"|\bxid\b|lost\s+connection",
    re.IGNORECASE,
)


def error_kind(text: str) -> Literal["memory", "transient", "other"]:
    """memory: the run ran out of memory; transient: the infrastructure failed; other: anything else."""
    if _MEMORY.search(text) and not _ILLEGAL_ACCESS.search(text):
        return "memory"
    if _TRANSIENT.search(text):
        return "transient"
    return "other"


def decide(
    run: RunSummary,
    comparison: Comparison,
    *,
    error: RunError | None,
    novelty: NoveltyCheck | None,
    near_margin: float = NEAR_MARGIN,
) -> DecisionPacket:
    """The decision packet of a run; the first rule that applies sets the next action.

    =====================================================  ==================  ========  ============
    rule                                                   next_action         priority  hypothesis
    =====================================================  ==================  ========  ============
    crash, the error mentions memory                       fix_and_retry       high      untested
    crash, the infrastructure failed (network, preempt)    retry               medium    untested
    crash, anything else                                   investigate_crash   high      untested
    keep, better than the champion (or the first kept)     promote             high      supported
    keep, within ``near_margin`` of the champion           branch_followup     high      supported
    keep, further behind                                   branch_followup     medium    supported
    discard, within ``near_margin`` of the champion        replicate           medium    inconclusive
    discard, and a similar run had failed before           abandon             high      refuted
    discard                                                abandon             low       refuted
    =====================================================  ==================  ========  ============
    """
    action: NextAction
    priority: Priority
    hypothesis: HypothesisStatus
    metric = comparison.metric
    behind = -comparison.improvement if comparison.improvement is not None else None
    closest = _closest(novelty)
    if run.status == "crash":
        hypothesis = "untested"
        kind = error.kind if error else "other"
        if kind == "memory":
            action, priority = "fix_and_retry", "high"
            why = "it ran out of memory: lower the device batch size or model size (or add gradient "
            why += "checkpointing) and run it again"
        elif kind == "transient":
            action, priority = "retry", "medium"
            why = "the failure looks like infrastructure (network, preemption, driver), not the idea: run it again"
        else:
            action, priority = "investigate_crash", "high" if error else "medium"
            why = "read the error and the log tail, fix the bug, then decide whether the idea is worth a rerun"
            if not error:
                why = "it crashed without an error message; " + why
    elif run.status == "keep":
        hypothesis = "supported"
        if comparison.new_champion:
            action, priority = "promote", "high"
            if comparison.champion_run_id is None:
                why = f"the first kept run with {metric}: it becomes the champion to beat"
            else:
                why = (
                    f"new champion: {metric} {_fmt(comparison.value)} beats {_fmt(comparison.champion_value)} "
                    f"by {_fmt(comparison.improvement)}; make it the base for the next runs"
                )
        elif behind is not None and behind <= near_margin:
            action, priority = "branch_followup", "high"
            why = (
                f"kept, and within {_fmt(behind)} of the champion ({near_margin} margin): a follow-up on this "
                "branch may overtake it"
            )
        else:
            action, priority = "branch_followup", "medium"
            why = "kept, but behind the champion" + (f" by {_fmt(behind)}" if behind is not None else "")
            why += "; follow up only if the idea combines with the champion's"
    else:
        if behind is not None and behind <= near_margin:
            action, priority, hypothesis = "replicate", "medium", "inconclusive"
            if behind < 0:
                why = f"discarded, yet it beats the champion by {_fmt(-behind)}: rerun it to see which result holds"
            else:
                why = (
                    f"discarded, yet within {_fmt(behind)} of the champion: the gap is inside run-to-run noise, "
                    "so rerun it (another seed) before giving up on the idea"
                )
        elif novelty is not None and novelty.classification == "repeat_failure":
            action, priority, hypothesis = "abandon", "high", "refuted"
            why = "discarded, and a similar run had already failed" + (f" ({closest})" if closest else "")
            why += ": drop this line of ideas"
        else:
            action, priority, hypothesis = "abandon", "low", "refuted"
            why = "discarded: it did not beat the branch it was tried on"
            if behind is not None:
                why += f" and trails the champion by {_fmt(behind)}"
    summary = _summary(run, comparison, action)
    return DecisionPacket(
        summary=summary,
        next_action=action,
        priority=priority,
        rationale=why,
        hypothesis_status=hypothesis,
        run=run,
        novelty=novelty,
        comparison=comparison,
        error=error,
    )


def _closest(novelty: NoveltyCheck | None) -> str | None:
    if novelty is None or not novelty.top_matches:
        return None
    match = novelty.top_matches[0]
    return f"{match.run_id} '{match.description[:80]}', {match.status}"


def _summary(run: RunSummary, comparison: Comparison, action: NextAction) -> str:
    commit = f" ({run.commit[:12]})" if run.commit else ""
    value = f" {comparison.metric} {_fmt(comparison.value)}" if comparison.value is not None else ""
    tail = ""
    if comparison.new_champion:
        tail = ", new champion"
    elif comparison.improvement is not None:
        tail = f", {_fmt(-comparison.improvement)} behind the champion"
    return f"{run.status} {run.run_id}{commit}{value}{tail}: {run.description[:120]} → {action}"


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.6g}" if abs(value) >= 1e-4 or value == 0 else f"{value:.2e}"
