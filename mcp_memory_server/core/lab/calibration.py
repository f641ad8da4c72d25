"""Measure and calibrate novelty matching on a labelled development set.

A development set is a ledger of runs plus probes, each labelled with its relation to
the best prior run (``duplicate``, ``variant`` or ``novel``) and the runs that count as
a correct best match. The repository's set is ``tests/data/lab_devset.json``;
``bench/bench_lab.py`` reports accuracy with it and ``--calibrate`` searches the weights.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InvalidInput
from .novelty import Features, Weights, analyze, baseline_tokens, lexical_similarity, signals

__all__ = ["DevSet", "Evaluation", "PairTable", "calibrate", "evaluate", "load_devset", "pair_table"]

LABELS = ("duplicate", "variant", "novel")


@dataclass(frozen=True, slots=True)
class DevSet:
    runs: list[dict[str, Any]]
    probes: list[dict[str, Any]]

    def subset(self, indices: Sequence[int]) -> DevSet:
        return DevSet(self.runs, [self.probes[i] for i in indices])


def load_devset(path: str | Path) -> DevSet:
    """Read a development set file.

    Raises:
        InvalidInput: the file is not a development set.
    """
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or not isinstance(doc.get("runs"), list) or not isinstance(doc.get("probes"), list):
        raise InvalidInput(f"{path} is not a development set: expected an object with runs and probes lists")
    return DevSet(doc["runs"], doc["probes"])


@dataclass(frozen=True, slots=True)
class PairTable:
    """Every probe x run pair's base similarity and signals, as arrays for fast evaluation."""

    base: np.ndarray
    jaccard: np.ndarray
    both: np.ndarray
    one_sided: np.ndarray
    conflict: np.ndarray
    agree: np.ndarray
    targets: np.ndarray
    labels: list[str]
    kinds: list[str]
    extra: np.ndarray | None = None
    """The probe names a knob the run does not (it cannot be a duplicate); None: never."""

    def select(self, rows: Sequence[int]) -> PairTable:
        index = np.asarray(rows, dtype=np.int64)
        return PairTable(
            self.base[index], self.jaccard[index], self.both[index], self.one_sided[index], self.conflict[index],
            self.agree[index], self.targets[index], [self.labels[i] for i in rows], [self.kinds[i] for i in rows],
            None if self.extra is None else self.extra[index],
        )  # fmt: skip


def pair_table(
    devset: DevSet,
    base: Callable[[list[Features], list[Features]], np.ndarray],
    *,
    use_signals: bool = True,
) -> PairTable:
    """Build the table; ``base(probe_features, run_features)`` returns the PxR base similarity."""
    runs = [analyze(r["description"]) for r in devset.runs]
    probes = [analyze(p["text"]) for p in devset.probes]
    matrix = np.asarray(base(probes, runs), dtype=np.float64)
    shape = matrix.shape
    jaccard, both, one_sided = np.zeros(shape), np.zeros(shape, bool), np.zeros(shape, bool)
    conflict, agree, extra = np.zeros(shape, bool), np.zeros(shape, bool), np.zeros(shape, bool)
    if use_signals:
        for i, probe in enumerate(probes):
            for j, run in enumerate(runs):
                pair = signals(probe, run)
                jaccard[i, j] = pair.knob_jaccard
                both[i, j] = pair.both_have_knobs
                one_sided[i, j] = pair.one_sided
                conflict[i, j] = pair.conflict
                agree[i, j] = pair.agree
                extra[i, j] = pair.extra
    keys = {r["key"]: j for j, r in enumerate(devset.runs)}
    targets = np.zeros(shape, bool)
    for i, labelled in enumerate(devset.probes):
        for key in labelled["targets"]:
            targets[i, keys[key]] = True
    return PairTable(
        matrix, jaccard, both, one_sided, conflict, agree, targets,
        [p["label"] for p in devset.probes], [p["kind"] for p in devset.probes], extra,
    )  # fmt: skip


def embedding_base(encode: Callable[[list[str]], np.ndarray]) -> Callable[[list[Features], list[Features]], np.ndarray]:
    """Cosine of the embedded canonical texts."""

    def base(probes: list[Features], runs: list[Features]) -> np.ndarray:
        left = encode([f.embedding_text for f in probes])
        right = encode([f.embedding_text for f in runs])
        return np.asarray(np.clip(left @ right.T, 0.0, 1.0))

    return base


def lexical_base(probes: list[Features], runs: list[Features]) -> np.ndarray:
    """Jaccard of canonical content tokens (the fallback without a model)."""
    return np.array([[lexical_similarity(p, r) for r in runs] for p in probes])


def raw_jaccard_base(probes: list[Features], runs: list[Features]) -> np.ndarray:
    """Jaccard of raw words: the purely lexical baseline, blind to synonyms and to what numbers mean."""
    left = [baseline_tokens(p.text) for p in probes]
    right = [baseline_tokens(r.text) for r in runs]
    return np.array([[len(a & b) / len(a | b) if a | b else 0.0 for b in right] for a in left])


@dataclass(frozen=True, slots=True)
class Evaluation:
    accuracy: float
    correct: int
    total: int
    by_kind: dict[str, float]
    confusion: dict[str, dict[str, int]]
    errors: list[dict[str, Any]]


def _scores(table: PairTable, weights: Weights) -> np.ndarray:
    score = table.base.copy()
    score -= np.where(table.both & (table.jaccard == 0), weights.disjoint, 0.0)
    score -= np.where(table.both & (table.jaccard > 0), weights.partial * (1 - table.jaccard), 0.0)
    score -= np.where(table.one_sided, weights.one_sided, 0.0)
    score -= np.where(~table.both & ~table.one_sided, weights.bare, 0.0)
    score -= np.where(table.conflict, weights.conflict, 0.0)
    score += np.where(~table.conflict & table.agree, weights.agree, 0.0)
    return np.asarray(np.clip(score, 0.0, 1.0))


def _best(table: PairTable, weights: Weights) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per probe: best overall (score, run) and best without conflicting settings (score, run)."""
    score = _scores(table, weights)
    top_run = score.argmax(axis=1)
    top = score[np.arange(len(score)), top_run]
    blocked = table.conflict if table.extra is None else table.conflict | table.extra
    clean = np.where(blocked, -1.0, score)
    clean_run = clean.argmax(axis=1)
    clean_top = clean[np.arange(len(clean)), clean_run]
    return top, top_run, clean_top, clean_run


def _predict(
    best: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], match: float, duplicate: float
) -> tuple[np.ndarray, np.ndarray]:
    top, top_run, clean_top, clean_run = best
    is_dup = clean_top >= duplicate
    is_var = ~is_dup & (top >= match)
    label = np.where(is_dup, 0, np.where(is_var, 1, 2))
    chosen = np.where(is_dup, clean_run, top_run)
    return label, chosen


def _correct(table: PairTable, label: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    want = np.array([LABELS.index(x) for x in table.labels])
    hit = table.targets[np.arange(len(chosen)), chosen]
    return np.asarray((label == want) & ((want == 2) | hit))


def evaluate(table: PairTable, weights: Weights, devset: DevSet | None = None) -> Evaluation:
    """Accuracy of ``weights``: a probe is right when its relation and (if any) its best match are."""
    label, chosen = _predict(_best(table, weights), weights.match, weights.duplicate)
    ok = _correct(table, label, chosen)
    by_kind: dict[str, list[bool]] = {}
    confusion: dict[str, Counter[str]] = {x: Counter() for x in LABELS}
    errors = []
    for i, good in enumerate(ok):
        by_kind.setdefault(table.kinds[i], []).append(bool(good))
        confusion[table.labels[i]][LABELS[label[i]]] += 1
        if not good and devset is not None:
            errors.append({
                "probe": devset.probes[i]["text"], "kind": table.kinds[i], "want": table.labels[i],
                "got": LABELS[label[i]], "match": devset.runs[int(chosen[i])]["description"],
            })  # fmt: skip
    return Evaluation(
        accuracy=float(ok.mean()) if len(ok) else 0.0,
        correct=int(ok.sum()),
        total=len(ok),
        by_kind={k: sum(v) / len(v) for k, v in sorted(by_kind.items())},
        confusion={k: dict(v) for k, v in confusion.items()},
        errors=errors,
    )


DEFAULT_GRID: dict[str, Sequence[float]] = {
    "disjoint": (0.1, 0.2, 0.25, 0.3, 0.4),
    "partial": (0.0, 0.1, 0.2),
    "one_sided": (0.0, 0.04, 0.08),
    "conflict": (0.0, 0.04, 0.08),
    "agree": (0.0, 0.1, 0.2, 0.3),
    "bare": (0.0, 0.1),
}


THRESHOLDS = tuple(round(0.2 + 0.02 * k, 2) for k in range(39))
"""0.20, 0.22, … 0.96: the thresholds the search tries for match and duplicate."""


def calibrate(
    table: PairTable,
    *,
    grid: dict[str, Sequence[float]] | None = None,
    use_signals: bool = True,
    thresholds: Sequence[float] = THRESHOLDS,
) -> tuple[Weights, float]:
    """The weights with the best accuracy on ``table`` (ties: the first found, i.e. smaller penalties)."""
    grid = grid or DEFAULT_GRID
    names = ("disjoint", "partial", "one_sided", "conflict", "agree", "bare")
    combos = itertools.product(*(grid[n] for n in names)) if use_signals else [(0.0,) * len(names)]
    want = np.array([LABELS.index(x) for x in table.labels])
    best: tuple[float, Weights] | None = None
    for combo in combos:
        weights = Weights(0.0, 0.0, **dict(zip(names, combo, strict=True)))
        ranked = _best(table, weights)
        for match in thresholds:
            for duplicate in thresholds:
                if duplicate < match:
                    continue
                label, chosen = _predict(ranked, match, duplicate)
                hit = table.targets[np.arange(len(chosen)), chosen]
                accuracy = float(((label == want) & ((want == 2) | hit)).mean())
                if best is None or accuracy > best[0] + 1e-12:
                    best = (accuracy, replace(weights, match=match, duplicate=duplicate))
    assert best is not None
    return best[1], best[0]
