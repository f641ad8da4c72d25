"""MemoryLab's decision rules: the policy matrix, classification precedence, and decision packets."""

from __future__ import annotations

import pytest

from mcp_memory_server.core.lab.decisions import (
    NEAR_MARGIN,
    POLICY,
    categorize,
    classify,
    decide,
    error_kind,
    policy,
)
from mcp_memory_server.core.lab.models import Comparison, NoveltyCheck, Policy, RunError, RunSummary

MATRIX = [
    ("novel", "explore", "allow"),
    ("novel", "exploit", "caution"),
    ("novel", "replicate", "block"),
    ("duplicate_run", "explore", "block"),
    ("duplicate_run", "exploit", "block"),
    ("duplicate_run", "replicate", "allow"),
    ("repeat_failure", "explore", "block"),
    ("repeat_failure", "exploit", "block"),
    ("repeat_failure", "replicate", "block"),
    ("incremental_followup", "explore", "block"),
    ("incremental_followup", "exploit", "allow"),
    ("incremental_followup", "replicate", "allow"),
    ("known_success", "explore", "block"),
    ("known_success", "exploit", "allow"),
    ("known_success", "replicate", "allow"),
]


@pytest.mark.parametrize(("classification", "mode", "decision"), MATRIX)
def test_policy_matrix_cell_gives_the_specified_decision(classification: str, mode: str, decision: str) -> None:
    """Each of the 15 classification x mode cells maps to the decision in SPEC §7, with a rationale."""
    result = policy(classification, mode, "run_x 'lr 0.04', keep")  # type: ignore[arg-type]
    assert result.decision == decision
    assert mode in result.rationale and classification in result.rationale and "run_x" in result.rationale


def test_policy_matrix_has_exactly_the_fifteen_cells() -> None:
    """The table holds five classifications x three modes and nothing else."""
    assert {(c, m) for c, modes in POLICY.items() for m in modes} == {(c, m) for c, m, _ in MATRIX}


@pytest.mark.parametrize(
    ("relation", "status", "run_family", "family", "category"),
    [
        ("duplicate", "keep", "lr", "lr", "duplicate_run"),
        ("duplicate", "crash", None, None, "duplicate_run"),
        ("duplicate", "discard", "lr", "arch", "duplicate_run"),
        ("variant", "discard", "lr", "lr", "repeat_failure"),
        ("variant", "crash", None, None, "repeat_failure"),
        ("variant", "keep", "lr", "lr", "incremental_followup"),
        ("variant", "keep", "lr", "arch", "known_success"),
        ("variant", "keep", None, None, "known_success"),
        ("variant", "keep", "lr", None, "known_success"),
    ],
)
def test_a_match_is_categorised_duplicate_then_failure_then_family_then_success(
    relation: str, status: str, run_family: str | None, family: str | None, category: str
) -> None:
    """A duplicate wins; else a discarded/crashed run; else a kept run of the same family; else a known success."""
    assert categorize(relation, status, run_family, family) == category  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("categories", "classification"),
    [
        ([], "novel"),
        (["known_success"], "known_success"),
        (["known_success", "incremental_followup"], "incremental_followup"),
        (["incremental_followup", "repeat_failure", "known_success"], "repeat_failure"),
        (["repeat_failure", "duplicate_run"], "duplicate_run"),
        (["known_success", "duplicate_run", "incremental_followup", "repeat_failure"], "duplicate_run"),
    ],
)
def test_classification_is_the_first_category_present_in_precedence_order(
    categories: list[str], classification: str
) -> None:
    """duplicate_run > repeat_failure > incremental_followup > known_success > novel."""
    assert classify(categories) == classification  # type: ignore[arg-type]


def _run(status: str, metric: float | None = None) -> RunSummary:
    return RunSummary(run_id="run_new", commit="abc1234", status=status, description="lr 0.04", metric=metric)  # type: ignore[arg-type]


def _comparison(value: float | None, champion: float | None, *, new: bool = False) -> Comparison:
    improvement = None if value is None or champion is None else champion - value
    return Comparison(
        metric="val_bpb", direction="min", value=value, champion_run_id="run_champ" if champion is not None else None,
        champion_value=champion, delta=None if improvement is None else -improvement, improvement=improvement,
        new_champion=new,
    )  # fmt: skip


def _novelty(classification: str) -> NoveltyCheck:
    return NoveltyCheck(
        classification=classification,  # type: ignore[arg-type]
        policy=Policy(decision="block", rationale="r"),
        mode="exploit",
        effective_threshold=0.58,
        counts={},
        similarity="embedding",
    )


def _error(summary: str) -> RunError:
    return RunError(summary=summary, kind=error_kind(summary))


@pytest.mark.parametrize(
    ("status", "value", "champion", "new", "error", "novelty", "action", "priority", "hypothesis"),
    [
        ("crash", None, 0.99, False, "torch.OutOfMemoryError: CUDA out of memory", None,
         "fix_and_retry", "high", "untested"),
        ("crash", None, 0.99, False, "RuntimeError: ran out of GPU memory at step 3", None,
         "fix_and_retry", "high", "untested"),
        ("crash", None, 0.99, False, "NCCL error: connection reset by peer", None, "retry", "medium", "untested"),
        ("crash", None, 0.99, False, "job preempted by the scheduler", None, "retry", "medium", "untested"),
        ("crash", None, 0.99, False, "CUDA error: an illegal memory access was encountered", None,
         "investigate_crash", "high", "untested"),
        ("crash", None, 0.99, False, "AssertionError: shapes do not match", None,
         "investigate_crash", "high", "untested"),
        ("crash", None, 0.99, False, None, None, "investigate_crash", "medium", "untested"),
        ("keep", 0.98, 0.99, True, None, None, "promote", "high", "supported"),
        ("keep", 0.99, None, True, None, None, "promote", "high", "supported"),
        ("keep", 0.9910, 0.9900, False, None, None, "branch_followup", "high", "supported"),
        ("keep", 0.9900 + NEAR_MARGIN, 0.9900, False, None, None, "branch_followup", "high", "supported"),
        ("keep", 0.9950, 0.9900, False, None, None, "branch_followup", "medium", "supported"),
        ("discard", 0.9910, 0.9900, False, None, None, "replicate", "medium", "inconclusive"),
        ("discard", 0.9890, 0.9900, False, None, None, "replicate", "medium", "inconclusive"),
        ("discard", 1.0100, 0.9900, False, None, _novelty("repeat_failure"), "abandon", "high", "refuted"),
        ("discard", 1.0100, 0.9900, False, None, _novelty("novel"), "abandon", "low", "refuted"),
        ("discard", None, 0.9900, False, None, None, "abandon", "low", "refuted"),
    ],
)  # fmt: skip
def test_decision_packet_rule_sets_next_action_priority_and_hypothesis_status(
    status: str,
    value: float | None,
    champion: float | None,
    new: bool,
    error: str | None,
    novelty: NoveltyCheck | None,
    action: str,
    priority: str,
    hypothesis: str,
) -> None:
    """Every next_action rule (and the hypothesis status that goes with it) fires on its own case."""
    packet = decide(
        _run(status, value), _comparison(value, champion, new=new),
        error=_error(error) if error else None, novelty=novelty,
    )  # fmt: skip
    assert (packet.next_action, packet.priority, packet.hypothesis_status) == (action, priority, hypothesis)
    assert packet.rationale and action in packet.summary and packet.run.run_id == "run_new"


def test_every_next_action_is_reachable() -> None:
    """The rule table above covers all seven actions of SPEC §7."""
    assert set(decide.__doc__.split()) >= {  # type: ignore[union-attr]
        "promote", "branch_followup", "replicate", "retry", "abandon", "fix_and_retry", "investigate_crash",
    }  # fmt: skip


def test_a_wider_near_margin_turns_a_medium_followup_into_a_high_one() -> None:
    """The near-champion margin is a parameter (metrics on another scale need another margin)."""
    comparison = _comparison(0.9950, 0.9900)
    assert decide(_run("keep", 0.995), comparison, error=None, novelty=None).priority == "medium"
    assert decide(_run("keep", 0.995), comparison, error=None, novelty=None, near_margin=0.01).priority == "high"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", "memory"),
        ("Killed (oom-kill)", "memory"),
        ("MemoryError", "memory"),
        ("peak memory exceeded the 80 GB budget", "memory"),
        ("CUDA error: an illegal memory access was encountered", "other"),
        ("NCCL WARN connection closed", "transient"),
        ("received SIGTERM, shutting down", "transient"),
        ("ValueError: loss is nan", "other"),
    ],
)
def test_crash_errors_are_classified_by_what_fixes_them(text: str, kind: str) -> None:
    """Out-of-memory errors are fixable, infrastructure failures retryable, the rest need a look."""
    assert error_kind(text) == kind
