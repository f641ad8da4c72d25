"""The experiment lab: a ledger of runs with novelty checks, decision packets and a morning report.

Use it as ``MemoryStore.lab``::

    lab = store.lab
    verdict = lab.check("raise the learning rate to 0.04", mode="explore")
    run = lab.log("lr 0.04", "keep", {"val_bpb": 0.9912}, commit="a1b2c3d", parent_commit="9f8e7d6")
    run.decision_packet.next_action   # "promote", "branch_followup", …
    lab.report(since_hours=16)        # Markdown + PNG chart, stored as artifacts
"""

from .decisions import NEAR_MARGIN, POLICY, PRECEDENCE
from .ledger import Lab
from .models import (
    BoardEntry,
    ChampionBoard,
    Comparison,
    DecisionPacket,
    ExperimentReport,
    FailureCluster,
    LabRun,
    Lineage,
    NoveltyCheck,
    NoveltyMatch,
    RunError,
    TsvImport,
)

__all__ = [
    "NEAR_MARGIN",
    "POLICY",
    "PRECEDENCE",
    "BoardEntry",
    "ChampionBoard",
    "Comparison",
    "DecisionPacket",
    "ExperimentReport",
    "FailureCluster",
    "Lab",
    "LabRun",
    "Lineage",
    "NoveltyCheck",
    "NoveltyMatch",
    "RunError",
    "TsvImport",
]
