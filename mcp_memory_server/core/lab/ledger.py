"""The experiment ledger: runs, novelty checks, the champion board, lineages, failure clusters, reports.

Runs live in ``lab_runs``; each run's description vector (for novelty checks) lives in
``lab_run_vectors`` with the model id and the version of the reading that was embedded
(``novelty.READING``), and in memory as one float32 matrix. The matrix
follows other processes' writes: before each check the ledger's ``MAX(seq)``/``COUNT(*)``
says whether anything was added, and only the new rows are loaded.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ...embeddings import Embedder, EmbeddingUnavailable
from ...errors import InvalidInput, NotFound
from ...ids import new_id, parse_timestamp, utc_now
from ...storage.engine import Connection, Row
from .. import _validate as check
from .._context import StoreContext
from ..local_paths import LocalAccess
from . import report as report_module
from .autoresearch import merge_metrics
from .decisions import NEAR_MARGIN, categorize, classify, decide, error_kind, judge_logged, policy
from .models import (
    BoardEntry,
    ChampionBoard,
    Comparison,
    DecisionPacket,
    ExperimentReport,
    FailureCluster,
    LabRun,
    Lineage,
    LineageStep,
    Mode,
    NoveltyCheck,
    NoveltyMatch,
    RunArtifact,
    RunError,
    RunSummary,
    TsvImport,
)
from .novelty import (
    EMBEDDING_WEIGHTS,
    LEXICAL_WEIGHTS,
    READING,
    Features,
    Weights,
    analyze,
    compare,
    config_names,
    lexical_similarity,
    names_any,
    signals,
)
from .tsv import STATUSES, format_results_tsv, parse_results_tsv

if TYPE_CHECKING:
    import numpy as np

    from ...config import Config
    from ...models import ArtifactRecord
    from ..artifacts import Artifacts, PreparedArtifact

__all__ = ["Lab"]


MODES = ("explore", "exploit", "replicate")
_CANDIDATE_CAP = 4096
"""Most runs a check scores in full (the closest by cosine); beyond it counts cover only these."""
_LEDGER_NAMES = 512
"""Most config names a ledger's reading learns from its runs (each line gives at most 16)."""
_TAIL_LINES = 30
_TAIL_CHARS = 4000
_CLUSTER_HORIZON = {"embedding": 2000, "lexical": 500}
"""How many of the newest failed runs failure clustering considers (lexical matching is slower)."""
_REPLACE_VECTOR = (
    " ON CONFLICT (run_id) DO UPDATE SET model_id = excluded.model_id, dim = excluded.dim, vector = excluded.vector"
)
"""A run keeps one description vector: a newer one (another model's) replaces it."""
_ERROR_LINE = ("error", "exception", "traceback", "killed", "nan", "fatal", "failed", "abort")


@dataclass(slots=True)
class _Row:
    """A run as the novelty index needs it."""

    seq: int
    run_id: str
    ts: str
    description: str
    status: Literal["keep", "discard", "crash"]
    family: str | None
    commit: str | None
    metrics: dict[str, float]
    tags: frozenset[str]
    _features: Features | None = None

    @property
    def features(self) -> Features:
        if self._features is None:
            self._features = analyze(self.description)
        return self._features

    def read(self, names: frozenset[str]) -> Features:
        """The features with the ledger's config names recognised, as the idea checked is read."""
        # Most lines name none of them: their reading is the plain one (already cached).
        if names and names_any(self.description, names):
            return analyze(self.description, names)
        return self.features


class _RunIndex:
    """Every run's features and description vector, kept in step with the database."""

    def __init__(self, ctx: StoreContext, embedder: Embedder) -> None:
        self._db = ctx.db
        self._embedder = embedder
        self.lock = threading.RLock()
        self.rows: list[_Row] = []
        self._vectors: np.ndarray | None = None
        self._has_vector: np.ndarray | None = None
        self._max_seq = 0
        self.config_names: frozenset[str] = frozenset()
        """Config names the runs use that the reading's vocabulary does not know (see ``config_names``)."""

    @property
    def model_id(self) -> str:
        """The key of this index's stored vectors: the model and the reading it embedded."""
        return f"{self._embedder.model_id}+{READING}"

    def refresh(self) -> None:
        """Load runs committed since the last look, by any process (the ledger is append-only)."""
        with self.lock:
            max_seq = self._db.query("SELECT COALESCE(MAX(seq), 0) FROM lab_runs")[0][0]
            if max_seq == self._max_seq:
                return
            if max_seq < self._max_seq:  # the ledger was rebuilt under us: start again
                self.rows, self._vectors, self._has_vector, self._max_seq = [], None, None, 0
                self.config_names = frozenset()
            fetched = self._db.query(
                "SELECT r.seq, r.run_id, r.ts, r.description, r.status, r.family, r.commit_sha, r.metrics, r.tags,"
                " v.vector FROM lab_runs r LEFT JOIN lab_run_vectors v ON v.run_id = r.run_id AND v.model_id = ?"
                " WHERE r.seq > ? ORDER BY r.seq",
                (self.model_id, self._max_seq),
            )
            for row in fetched:
                self.rows.append(
                    _Row(
                        row["seq"],
                        row["run_id"],
                        row["ts"],
                        row["description"],
                        row["status"],
                        row["family"],
                        row["commit_sha"],
                        json.loads(row["metrics"]),
                        frozenset(json.loads(row["tags"])),
                    )
                )
                self._store_vector(len(self.rows) - 1, row["vector"])
            if fetched:
                self._max_seq = fetched[-1]["seq"]
                self._add_names(config_names(row["description"]) for row in fetched)

    def _add_names(self, found: Iterable[frozenset[str]]) -> None:
        """Learn the config names of new runs, the first ``_LEDGER_NAMES`` in ledger order.

        Every check reads the idea and its candidate runs knowing these names, so their number bounds its cost:
        a ledger of runs that each invent hundreds of names must not make each check slower without end.
        """
        room = _LEDGER_NAMES - len(self.config_names)
        if room <= 0:
            return
        known = set(self.config_names)
        for names in found:
            for name in sorted(names - known)[:room]:
                known.add(name)
                room -= 1
        self.config_names = frozenset(known)

    def _store_vector(self, index: int, blob: bytes | None) -> None:
        import numpy as np

        vector = np.frombuffer(blob, dtype=np.float32) if blob is not None else None
        self._reserve(index + 1, vector.shape[0] if vector is not None else None)
        if vector is not None and self._vectors is not None and vector.shape[0] == self._vectors.shape[1]:
            self._put(index, vector)

    def _reserve(self, size: int, dim: int | None) -> None:
        """Make room for ``size`` rows (capacity doubles), and allocate vectors once the dimension is known."""
        import numpy as np

        capacity = max(64, 1 << (size - 1).bit_length())
        if self._has_vector is None or len(self._has_vector) < size:
            grown = np.zeros(capacity, dtype=bool)
            if self._has_vector is not None:
                grown[: len(self._has_vector)] = self._has_vector
            self._has_vector = grown
            if self._vectors is not None:
                vectors = np.zeros((capacity, self._vectors.shape[1]), dtype=np.float32)
                vectors[: len(self._vectors)] = self._vectors
                self._vectors = vectors
        if self._vectors is None and dim is not None:
            self._vectors = np.zeros((len(self._has_vector), dim), dtype=np.float32)

    def _put(self, index: int, vector: np.ndarray) -> None:
        assert self._vectors is not None and self._has_vector is not None
        self._vectors[index] = vector
        self._has_vector[index] = True

    def ensure_vectors(self, batch: int = 256, progress: Callable[[int, int], None] | None = None) -> int:
        """Embed every loaded run that has no vector for the current model; returns how many were added.

        ``progress`` is called with (done, total) after each batch.

        Raises:
            EmbeddingUnavailable: the model cannot be loaded.
        """
        import numpy as np

        with self.lock:
            n = len(self.rows)
            if n == 0:
                return 0
            if self._has_vector is None:
                missing = list(range(n))
            else:
                missing = [int(i) for i in np.nonzero(~self._has_vector[:n])[0]]
            if not missing:
                return 0
            for start in range(0, len(missing), batch):
                chunk = missing[start : start + batch]
                vectors = self._embedder.encode([self.rows[i].features.embedding_text for i in chunk])
                self._reserve(n, int(vectors.shape[1]))
                for i, vector in zip(chunk, vectors, strict=True):
                    self._put(i, vector)
                self._save(chunk, vectors)
                if progress is not None:
                    progress(start + len(chunk), len(missing))
            return len(missing)

    def _save(self, indices: Sequence[int], vectors: np.ndarray) -> None:
        dim = int(vectors.shape[1])
        with self._db.write() as conn:
            conn.executemany(
                "INSERT INTO lab_run_vectors (run_id, model_id, dim, vector)"
                " SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM lab_runs WHERE run_id = ?)" + _REPLACE_VECTOR,
                [
                    (self.rows[i].run_id, self.model_id, dim, vector.astype("float32").tobytes(), self.rows[i].run_id)
                    for i, vector in zip(indices, vectors, strict=True)
                ],
            )

    def cosines(self, vector: np.ndarray, upto: int | None = None) -> np.ndarray:
        """Cosine of ``vector`` with every loaded run (0 where a run has no vector)."""
        import numpy as np

        n = len(self.rows) if upto is None else upto
        if self._vectors is None or n == 0:
            return np.zeros(n, dtype=np.float32)
        scores = self._vectors[:n] @ vector.astype(np.float32)
        assert self._has_vector is not None
        return np.where(self._has_vector[:n], scores, 0.0)

    def vector(self, index: int) -> np.ndarray | None:
        if self._vectors is None or self._has_vector is None or not self._has_vector[index]:
            return None
        vector: np.ndarray = self._vectors[index]
        return vector


@dataclass(frozen=True, slots=True)
class _Matched:
    row: _Row
    score: float
    relation: Literal["duplicate", "variant"]
    similarity: float = 0.0
    """The base similarity before the signals: it orders runs whose scores are both capped at 1."""


class Lab:
    """The experiment ledger of one data directory. Get it as ``MemoryStore.lab``.

    The primary metric and its direction come from the ``lab_metric`` and ``lab_direction``
    settings (default ``val_bpb``, lower is better).
    """

    def __init__(
        self, ctx: StoreContext, embedder: Embedder, artifacts: Artifacts, *, near_margin: float = NEAR_MARGIN
    ) -> None:
        self._ctx = ctx
        self._db = ctx.db
        self._config = ctx.config
        self._embedder = embedder
        self._artifacts = artifacts
        self._index = _RunIndex(ctx, embedder)
        self.near_margin = near_margin

    def _tail_of(self, prepared: PreparedArtifact) -> str:
        """The end of a copied log, read from its blob (never the path again, which may have changed)."""
        return prepared.tail(65536).decode("utf-8", errors="replace")

    @property
    def metric(self) -> str:
        return self._config.lab_metric

    @property
    def direction(self) -> Literal["min", "max"]:
        return "max" if self._config.lab_direction == "max" else "min"

    def _metric_sql(self) -> tuple[str, list[Any]]:
        """The primary metric of a run as SQL: its number, NULL when absent or not a number."""
        return self._db.dialect.json_number("metrics", self.metric)

    def _champion(self, conn: Connection) -> Row | None:
        """The best kept run with a numeric primary metric (ties: the earliest), as ``run_id, value``."""
        number, params = self._metric_sql()
        order = "ASC" if self.direction == "min" else "DESC"
        row: Row | None = conn.execute(
            f"SELECT run_id, {number} AS value FROM lab_runs WHERE status = 'keep' AND {number} IS NOT NULL"
            f" ORDER BY value {order}, seq ASC LIMIT 1",
            [*params, *params],
        ).fetchone()
        return row

    # -- novelty ---------------------------------------------------------------------------------

    def check(
        self,
        description: str,
        tags: Sequence[str] | None = None,
        family: str | None = None,
        mode: Mode = "explore",
        threshold: float | None = None,
        limit: int = 5,
    ) -> NoveltyCheck:
        """Compare an idea with every logged run: classification, policy decision and closest runs.

        Raises:
            InvalidInput: an argument is malformed (empty description, unknown mode, threshold outside 0-1).
        """
        description = check.text(description, field="description", config=self._config, allow_empty=False)
        tags = check.tags(tags, config=self._config)
        family = self._short(family, "family")
        mode = self._mode(mode)
        limit = check.limit(limit, config=self._config)
        if threshold is not None and (
            isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1
        ):
            raise InvalidInput(f"threshold must be a number from 0 to 1, got {threshold!r}")
        result, _ = self._check(description, tags, family, mode, threshold, limit)
        return result

    def _check(
        self,
        description: str,
        tags: Sequence[str],
        family: str | None,
        mode: Mode,
        threshold: float | None,
        limit: int,
        *,
        logged: bool = False,
    ) -> tuple[NoveltyCheck, np.ndarray | None]:
        features = analyze(description)
        warning = None
        probe_vector: np.ndarray | None = None
        try:
            probe_vector = self._embedder.encode([features.embedding_text])[0]
        except EmbeddingUnavailable as exc:
            warning = f"embedding model unavailable, so lexical similarity was used: {exc}"
        weights = EMBEDDING_WEIGHTS if probe_vector is not None else LEXICAL_WEIGHTS
        if threshold is not None:
            weights = replace(weights, match=float(threshold), duplicate=max(weights.duplicate, float(threshold)))
        with self._index.lock:
            self._index.refresh()
            if probe_vector is not None:
                self._index.ensure_vectors()
            # Both sides are read knowing the ledger's config names ("the safety margin" is safety_margin);
            # the embedded text is the same with or without them.
            names = self._index.config_names
            if names:
                features = analyze(description, names)
            matched = self._matches(features, probe_vector, weights, names)
            compared = len(self._index.rows)
        wanted = set(tags)
        # Equally similar runs: the closer text, then those sharing more of the given tags, then the earliest.
        matched.sort(key=lambda m: (-round(m.score, 6), -round(m.similarity, 6), -len(wanted & m.row.tags), m.row.seq))
        categories = {m.row.run_id: categorize(m.relation, m.row.status, m.row.family, family) for m in matched}
        classification = classify(categories.values())
        counts = {"runs": compared, "matches": len(matched)}
        for category in ("duplicate_run", "repeat_failure", "incremental_followup", "known_success"):
            counts[category] = sum(1 for c in categories.values() if c == category)
        example = next((m for m in matched if categories[m.row.run_id] == classification), None)
        closest = self._describe(example.row) if example else None
        decision = judge_logged(classification, closest) if logged else policy(classification, mode, closest)
        top = [
            NoveltyMatch(
                run_id=m.row.run_id,
                description=m.row.description,
                status=m.row.status,
                family=m.row.family,
                commit=m.row.commit,
                metric=m.row.metrics.get(self.metric),
                score=round(m.score, 4),
                relation=m.relation,
                category=categories[m.row.run_id],
                differences=list(signals(features, m.row.read(names), explain=True).differences),
            )
            for m in matched[:limit]
        ]
        result = NoveltyCheck(
            classification=classification,
            policy=decision,
            mode=mode,
            effective_threshold=round(weights.match, 4),
            probe_text=description,
            counts=counts,
            top_matches=top,
            similarity="embedding" if probe_vector is not None else "lexical",
            warning=warning,
        )
        return result, probe_vector

    def _matches(
        self, features: Features, vector: np.ndarray | None, weights: Weights, names: frozenset[str]
    ) -> list[_Matched]:
        import numpy as np

        rows = self._index.rows
        if not rows:
            return []
        floor = weights.match - weights.agree - 1e-9
        if vector is not None:
            base = self._index.cosines(vector)
            candidates = np.nonzero(base >= floor)[0]
            if len(candidates) > _CANDIDATE_CAP:
                keep = np.argpartition(-base[candidates], _CANDIDATE_CAP)[:_CANDIDATE_CAP]
                candidates = candidates[keep]
            pairs: Iterable[tuple[int, float]] = zip(candidates.tolist(), base[candidates].tolist(), strict=True)
        else:
            pairs = ((i, lexical_similarity(features, row.read(names))) for i, row in enumerate(rows))
        out = []
        match = weights.match
        for i, similarity in pairs:
            if similarity < floor:
                continue
            row = rows[i]
            run = row.read(names) if names else row.features
            # Below the match threshold only the agreement bonus can lift a run, and that needs the same
            # knobs changed (``same_knobs_changed``, inlined: this loop sees thousands of runs per check).
            if similarity < match and run.knobs != features.knobs and run.changed != features.changed:
                continue
            score, relation, _ = compare(features, run, similarity, weights)
            if relation != "unrelated":
                out.append(_Matched(row, score, relation, similarity))
        return out

    def _describe(self, row: _Row) -> str:
        value = row.metrics.get(self.metric)
        shown = f", {self.metric} {value:.6g}" if value is not None else ""
        return f"{row.run_id} '{row.description[:80]}', {row.status}{shown}"

    # -- logging ---------------------------------------------------------------------------------

    def log(
        self,
        description: str,
        status: str,
        metrics: Mapping[str, float] | None = None,
        *,
        commit: str | None = None,
        parent_commit: str | None = None,
        branch: str | None = None,
        family: str | None = None,
        hypothesis: str | None = None,
        tags: Sequence[str] | None = None,
        notes: str | None = None,
        error: str | Mapping[str, Any] | None = None,
        log_text: str | None = None,
        log_path: str | None = None,
        summary: Mapping[str, Any] | None = None,
        patch: str | None = None,
        patch_path: str | None = None,
        artifact_ids: Sequence[str] | None = None,
        mode: Mode = "exploit",
        ts: str | None = None,
    ) -> LabRun:
        """Append a run, with its novelty guard and decision packet; store its log, patch and summary.

        Metrics come from ``metrics``, then ``summary`` (autoresearch's summary sidecar, an
        object of final metrics), then the ``---`` footer of the log (``log_text``/``log_path``),
        the earlier source winning. Nothing is written unless every argument is valid.

        Raises:
            InvalidInput: an unknown status, a kept run without the primary metric, or another bad argument.
            AccessDenied: log_path or patch_path is outside the allowed roots.
            NotFound: log_path, patch_path or an artifact id does not exist.
        """
        config = self._config
        if status not in STATUSES:
            raise InvalidInput(f"status={status!r} is not valid; use keep, discard or crash")
        description = check.text(description, field="description", config=config, allow_empty=False)
        commit = self._commit(commit, "commit")
        parent_commit = self._commit(parent_commit, "parent_commit")
        branch = self._short(branch, "branch")
        family = self._short(family, "family")
        hypothesis = check.text(hypothesis, field="hypothesis", config=config) if hypothesis is not None else None
        notes = check.text(notes, field="notes", config=config) if notes is not None else None
        clean_tags = check.tags(tags, config=config)
        mode = self._mode(mode)
        stamp = parse_timestamp(ts, field="ts") if ts is not None else utc_now()
        if log_text is not None:
            check.text(log_text, field="log_text", config=config)
        if patch is not None:
            check.text(patch, field="patch", config=config)
        if log_text is not None and log_path is not None:
            raise InvalidInput("give log_text or log_path, not both")
        if patch is not None and patch_path is not None:
            raise InvalidInput("give patch or patch_path, not both")
        attached = [self._artifacts.get(check.short(a, field="artifact_ids entry")) for a in artifact_ids or ()]
        run_id = new_id("run")
        labels: dict[str, str | int | float | bool] = {"lab_run_id": run_id}
        if commit:
            labels["commit"] = commit
        # Copy the log and patch into blobs now, outside the write lock: a large log must not
        # stall every other writer. Only the records are inserted under the lock below.
        log_file = patch_file = None
        if log_path is not None:
            log_file = self._artifacts.prepare_file(log_path, "run_log", file_field="log_path", labels=labels)
        if patch_path is not None:
            patch_file = self._artifacts.prepare_file(patch_path, "run_patch", file_field="patch_path", labels=labels)
        try:
            return self._log_prepared(
                run_id, labels, stamp, config, status, description, commit, parent_commit, branch, family,
                hypothesis, notes, clean_tags, mode, metrics, summary, error, log_text, patch, log_file, patch_file,
                attached,
            )  # fmt: skip
        finally:  # staged copies not recorded (a refused argument) are dropped; recorded ones already were
            for prepared in (log_file, patch_file):
                if prepared is not None:
                    prepared.discard()

    def _log_prepared(
        self,
        run_id: str,
        labels: dict[str, str | int | float | bool],
        stamp: str,
        config: Config,
        status: str,
        description: str,
        commit: str | None,
        parent_commit: str | None,
        branch: str | None,
        family: str | None,
        hypothesis: str | None,
        notes: str | None,
        clean_tags: list[str],
        mode: Mode,
        metrics: Mapping[str, Any] | None,
        summary: Any,
        error: Any,
        log_text: str | None,
        patch: str | None,
        log_file: PreparedArtifact | None,
        patch_file: PreparedArtifact | None,
        attached: list[ArtifactRecord],
    ) -> LabRun:
        log_tail = log_text if log_text is not None else (self._tail_of(log_file) if log_file is not None else None)
        # autoresearch's train.py reports its final metrics in the log footer and the summary sidecar.
        clean_metrics = check.metrics(merge_metrics(check.metrics(metrics, config=config), summary, log_tail),
                                      config=config)  # fmt: skip
        if status == "keep" and self.metric not in clean_metrics:
            given = summary.get(self.metric) if isinstance(summary, Mapping) else None
            if given is not None:  # there, but merge_metrics dropped it: not a finite number
                raise InvalidInput(
                    f"a kept run needs metrics[{self.metric!r}] as a finite number; summary[{self.metric!r}]="
                    f"{repr(given)[:40]} is not one: fix it, or log the run as discard or crash"
                )
            raise InvalidInput(
                f"a kept run needs metrics[{self.metric!r}] (the primary metric, lab_metric): pass it, a summary "
                f"with it, or a log whose final '---' footer has '{self.metric}: …'; or log the run as discard or crash"
            )
        run_error = self._error(error, status, log_tail)

        novelty, vector = self._check(description, clean_tags, family, mode, None, 3, logged=True)
        value = clean_metrics.get(self.metric)
        with self._db.write() as conn:
            comparison = self._compare(conn, status, value, parent_commit)
            run_summary = RunSummary(
                run_id=run_id, commit=commit, parent_commit=parent_commit, branch=branch, family=family,
                status=status, description=description, metric=value,
            )  # fmt: skip
            packet = decide(run_summary, comparison, error=run_error, novelty=novelty, near_margin=self.near_margin)
            stored: list[RunArtifact] = []
            if log_text is not None:
                record = self._artifacts.save_text(log_text, "run_log", name="run.log", labels=labels)
                stored.append(_artifact("log", record))
            elif log_file is not None:
                stored.append(_artifact("log", self._artifacts.insert_prepared(log_file)))
            if patch is not None:
                record = self._artifacts.save_text(patch, "run_patch", name="patch.diff", labels=labels,
                                                   mime="text/x-diff")  # fmt: skip
                stored.append(_artifact("patch", record))
            elif patch_file is not None:
                stored.append(_artifact("patch", self._artifacts.insert_prepared(patch_file)))
            stored += [_artifact("attached", record) for record in attached]
            run_doc = {
                "run_id": run_id, "ts": stamp, "branch": branch, "commit": commit, "parent_commit": parent_commit,
                "family": family, "status": status, "description": description, "hypothesis": hypothesis,
                "tags": clean_tags, "notes": notes, "metrics": clean_metrics,
                "error": run_error.model_dump() if run_error else None,
                "artifacts": [a.model_dump() for a in stored], "decision_packet": packet.model_dump(mode="json"),
            }  # fmt: skip
            summary_record = self._artifacts.save_json(run_doc, "run_summary", name="summary.json", labels=labels)
            stored.append(_artifact("summary", summary_record))
            self._insert(conn, [self._run_values(
                run_id=run_id, ts=stamp, branch=branch, commit=commit, parent_commit=parent_commit,
                family=family, status=status, description=description, hypothesis=hypothesis, tags=clean_tags,
                notes=notes, metrics=clean_metrics, error=run_error, artifacts=stored, novelty=novelty,
                packet=packet, source=None,
            )])  # fmt: skip
            if vector is not None:
                conn.execute(
                    "INSERT INTO lab_run_vectors (run_id, model_id, dim, vector) VALUES (?, ?, ?, ?)" + _REPLACE_VECTOR,
                    (run_id, self._index.model_id, int(vector.shape[0]), vector.astype("float32").tobytes()),
                )
        return self.get(run_id)

    def _insert(self, conn: Connection, runs: Sequence[tuple[Any, ...]]) -> None:
        """Append runs (each from :meth:`_run_values`) in one batch, in order: their seq is their order."""
        conn.executemany(
            "INSERT INTO lab_runs (run_id, ts, branch, commit_sha, parent_commit, family, status, description,"
            " hypothesis, tags, notes, metrics, error, artifacts, novelty_guard, decision_packet, source,"
            " server_run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            runs,
        )

    def _run_values(
        self,
        *,
        run_id: str,
        ts: str,
        branch: str | None,
        commit: str | None,
        parent_commit: str | None,
        family: str | None,
        status: str,
        description: str,
        hypothesis: str | None,
        tags: Sequence[str],
        notes: str | None,
        metrics: Mapping[str, float],
        error: RunError | None,
        artifacts: Sequence[RunArtifact],
        novelty: NoveltyCheck | None,
        packet: DecisionPacket | None,
        source: Mapping[str, Any] | None,
    ) -> tuple[Any, ...]:
        """One ``lab_runs`` row's values, in the column order of :meth:`_insert`."""
        return (
            run_id, ts, branch, commit, parent_commit, family, status, description, hypothesis,
            check.canonical_json(list(tags)), notes, check.canonical_json(dict(metrics)),
            error.model_dump_json() if error else None,
            json.dumps([a.model_dump() for a in artifacts]),
            novelty.model_dump_json() if novelty else None,
            packet.model_dump_json() if packet else None,
            json.dumps(source) if source else None,
            self._ctx.run_id,
        )  # fmt: skip

    def _compare(self, conn: Connection, status: str, value: float | None, parent_commit: str | None) -> Comparison:
        champion = self._champion(conn)
        parent = None
        if parent_commit:
            number, params = self._metric_sql()
            # The parent commit's latest kept run, else its latest run of any status.
            parent = conn.execute(
                f"SELECT run_id, {number} AS value FROM lab_runs WHERE commit_sha = ?"
                " ORDER BY CASE WHEN status = 'keep' THEN 0 ELSE 1 END, seq DESC LIMIT 1",
                [*params, parent_commit],
            ).fetchone()
        return self._comparison(status, value, champion, parent)

    def _comparison(
        self,
        status: str,
        value: float | None,
        champion: Row | Mapping[str, Any] | None,
        parent: Row | Mapping[str, Any] | None,
    ) -> Comparison:
        champion_value = champion["value"] if champion else None
        improvement = self._improvement(value, champion_value)
        parent_value = parent["value"] if parent else None
        return Comparison(
            metric=self.metric,
            direction=self.direction,
            value=value,
            champion_run_id=champion["run_id"] if champion else None,
            champion_value=champion_value,
            delta=_round(value - champion_value) if value is not None and champion_value is not None else None,
            improvement=improvement,
            new_champion=status == "keep" and value is not None and (champion is None or (improvement or 0) > 0),
            parent_run_id=parent["run_id"] if parent else None,
            parent_value=parent_value,
            parent_improvement=self._improvement(value, parent_value),
        )

    def _improvement(self, value: float | None, reference: float | None) -> float | None:
        if value is None or reference is None:
            return None
        return _round(reference - value if self.direction == "min" else value - reference)

    def _error(self, error: str | Mapping[str, Any] | None, status: str, log_tail: str | None) -> RunError | None:
        tail = _tail(log_tail) if log_tail else ""
        if error is None:
            if status != "crash" or not tail:
                return None
            summary = _error_line(tail)
            return RunError(summary=summary, tail=tail, source="log", kind=error_kind(summary + "\n" + tail))
        if isinstance(error, str):
            summary, given_tail = error, ""
        elif isinstance(error, Mapping):
            unknown = set(error) - {"summary", "tail", "source", "kind"}
            if unknown:
                raise InvalidInput(f"unknown error field(s) {sorted(unknown)}; give summary and optionally tail")
            summary = error.get("summary") or ""
            given_tail = error.get("tail") or ""
            if not isinstance(summary, str) or not isinstance(given_tail, str):
                raise InvalidInput("error.summary and error.tail must be strings")
        else:
            raise InvalidInput("error must be a string or an object {summary, tail}")
        summary = check.text(summary, field="error.summary", config=self._config).replace("\x00", "\ufffd").strip()
        if not summary:
            raise InvalidInput("error.summary must not be empty")
        tail = _tail(given_tail) if given_tail else tail
        return RunError(summary=summary[:1000], tail=tail, source="caller", kind=error_kind(summary + "\n" + tail))

    def _short(self, value: str | None, field: str) -> str | None:
        if value is None or value == "":
            return None
        return check.short(value, field=field, max_chars=256).strip() or None

    def _commit(self, value: str | None, field: str) -> str | None:
        """A commit id as results.tsv holds it: one word, so that what export-tsv writes import-tsv reads back."""
        commit = self._short(value, field)
        if commit is not None and any(c.isspace() for c in commit):
            raise InvalidInput(f"{field}={commit!r} must be an id without spaces (a git hash, a tag or a branch name)")
        return commit

    def _mode(self, mode: str) -> Mode:
        if mode not in MODES:
            raise InvalidInput(f"mode={mode!r} is not valid; use explore, exploit or replicate")
        return mode  # type: ignore[return-value]

    # -- reading ---------------------------------------------------------------------------------

    def get(self, run_id: str) -> LabRun:
        """One run by id.

        Raises:
            NotFound: no such run.
        """
        rows = self._db.query("SELECT * FROM lab_runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise NotFound(f"no lab run {run_id!r}; list runs with `mcp-memory-server lab report`")
        return _run(rows[0])

    def runs(self, *, limit: int | None = None, status: str | None = None) -> list[LabRun]:
        """Runs in ledger order (oldest first); ``limit`` keeps the newest."""
        if status is not None and status not in STATUSES:
            raise InvalidInput(f"status={status!r} is not valid; use keep, discard or crash")
        where = "WHERE status = ?" if status else ""
        params: list[Any] = [status] if status else []
        if limit is None:
            rows = self._db.query(f"SELECT * FROM lab_runs {where} ORDER BY seq", params)
        else:
            rows = self._db.query(
                f"SELECT * FROM (SELECT * FROM lab_runs {where} ORDER BY seq DESC LIMIT ?) AS newest ORDER BY seq",
                [*params, limit],
            )
        return [_run(r) for r in rows]

    def count(self) -> int:
        return int(self._db.query("SELECT COUNT(*) FROM lab_runs")[0][0])

    def board(self) -> ChampionBoard:
        """The champion (best kept run; ties: earliest) and the next three eligible runs with their deltas."""
        number, params = self._metric_sql()
        order = "ASC" if self.direction == "min" else "DESC"
        rows = self._db.query(
            f"SELECT run_id, commit_sha, status, description, ts, {number} AS value FROM lab_runs"
            f" WHERE status != 'crash' AND {number} IS NOT NULL"
            f" ORDER BY CASE WHEN status = 'keep' THEN 0 ELSE 1 END, value {order}, seq ASC LIMIT 4",
            [*params, *params],
        )
        if not rows:
            return ChampionBoard(metric=self.metric, direction=self.direction)
        best = rows[0]["value"]
        entries = [
            BoardEntry(
                rank=i,
                run_id=r["run_id"],
                commit=r["commit_sha"],
                status=r["status"],
                description=r["description"],
                value=r["value"],
                delta=_round(r["value"] - best),
                ts=r["ts"],
            )
            for i, r in enumerate(rows, 1)
        ]
        return ChampionBoard(
            metric=self.metric,
            direction=self.direction,
            champion=entries[0],
            challengers=entries[1:],
            provisional=entries[0].status != "keep",
        )

    def lineages(self, limit: int = 3) -> list[Lineage]:
        """The best distinct chains of runs linked by ``parent_commit`` (a cycle is cut, never followed)."""
        number, params = self._metric_sql()
        rows = self._db.query(
            f"SELECT seq, run_id, commit_sha, parent_commit, status, description, {number} AS value"
            " FROM lab_runs ORDER BY seq",
            params,
        )
        by_commit: dict[str, Row] = {}
        for row in rows:
            commit = row["commit_sha"]
            if not commit:
                continue
            current = by_commit.get(commit)
            if current is None or (row["status"] == "keep") >= (current["status"] == "keep"):
                by_commit[commit] = row
        sign = 1 if self.direction == "min" else -1
        tips = sorted(
            (r for r in rows if r["status"] == "keep" and r["value"] is not None),
            key=lambda r: (sign * r["value"], r["seq"]),
        )
        seen: set[str] = set()
        out: list[Lineage] = []
        for tip in tips:
            if tip["run_id"] in seen:
                continue
            chain, cycle = [tip], False
            visited = {tip["run_id"]}
            current = tip
            while current["parent_commit"]:
                parent = by_commit.get(current["parent_commit"])
                if parent is None:
                    break
                if parent["run_id"] in visited:
                    cycle = True
                    break
                chain.append(parent)
                visited.add(parent["run_id"])
                current = parent
            chain.reverse()
            seen |= visited
            if len(chain) < 2 and out:
                continue
            root_value, tip_value = chain[0]["value"], chain[-1]["value"]
            gain = self._improvement(tip_value, root_value)
            out.append(
                Lineage(
                    tip_run_id=tip["run_id"],
                    steps=[
                        LineageStep(
                            run_id=r["run_id"],
                            commit=r["commit_sha"],
                            status=r["status"],
                            value=r["value"],
                            description=r["description"],
                        )
                        for r in chain
                    ],
                    gain=gain,
                    cycle=cycle,
                )
            )
            if len(out) >= limit:
                break
        return out

    def failure_clusters(self, *, since: str | None = None, limit: int = 5) -> list[FailureCluster]:
        """Groups of discarded/crashed runs that tried the same idea (duplicates or variants), largest first."""
        import numpy as np

        use_vectors = self._embedder.wait()
        weights = EMBEDDING_WEIGHTS if use_vectors else LEXICAL_WEIGHTS
        with self._index.lock:
            self._index.refresh()
            if use_vectors:
                self._index.ensure_vectors()
            indexed = [(i, row) for i, row in enumerate(self._index.rows) if row.status != "keep"]
            indexed = indexed[-_CLUSTER_HORIZON["embedding" if use_vectors else "lexical"] :]
            vectors = [self._index.vector(i) for i, _ in indexed] if use_vectors else [None] * len(indexed)
        dim = next((v.shape[0] for v in vectors if v is not None), 1)
        seed_matrix = np.zeros((len(indexed), dim), dtype=np.float32)
        groups: list[list[_Row]] = []
        seeds: list[_Row] = []
        floor = weights.match - weights.agree - 1e-9
        for (_, row), vector in zip(indexed, vectors, strict=True):
            if vector is not None:
                base = seed_matrix[: len(seeds)] @ vector
                candidates = [(int(k), float(base[k])) for k in np.nonzero(base >= floor)[0]]
            else:
                candidates = [(k, lexical_similarity(row.features, seed.features)) for k, seed in enumerate(seeds)]
            best: tuple[float, int] | None = None
            for k, similarity in candidates:
                if similarity < floor:
                    continue
                score, relation, _ = compare(row.features, seeds[k].features, similarity, weights)
                if relation != "unrelated" and (best is None or score > best[0]):
                    best = (score, k)
            if best is None:
                if vector is not None:
                    seed_matrix[len(seeds)] = vector
                seeds.append(row)
                groups.append([row])
            else:
                groups[best[1]].append(row)
        clusters = [
            FailureCluster(
                label=group[0].description,
                size=len(group),
                discarded=sum(1 for r in group if r.status == "discard"),
                crashed=sum(1 for r in group if r.status == "crash"),
                run_ids=[r.run_id for r in group][:50],
                examples=list(dict.fromkeys(r.description for r in group))[:5],
                in_window=sum(1 for r in group if since is not None and r.ts >= since),
            )
            for group in groups
            if len(group) >= 2
        ]
        clusters.sort(key=lambda c: (-c.size, -c.in_window, c.label))
        return clusters[:limit]

    # -- the morning report -------------------------------------------------------------------

    def report(
        self, since_hours: float = 16.0, *, until: str | None = None, save: bool = True, chart: bool = True
    ) -> ExperimentReport:
        """The morning report over the last ``since_hours`` (until ``until``, default now).

        With ``save`` the Markdown and the PNG chart are stored as artifacts (kinds
        ``lab_report`` and ``lab_chart``); ``lab://report/latest`` serves the newest report.

        Raises:
            InvalidInput: ``since_hours`` is not a positive number, or ``until`` is not a timestamp.
        """
        if isinstance(since_hours, bool) or not isinstance(since_hours, int | float) or not since_hours > 0:
            raise InvalidInput(f"since_hours must be a positive number, got {since_hours!r}")
        if not math.isfinite(since_hours) or since_hours > 24 * 365 * 100:
            raise InvalidInput(f"since_hours={since_hours!r} is too large; use at most a century")
        end = parse_timestamp(until, field="until") if until is not None else utc_now()
        start = (datetime.fromisoformat(end.replace("Z", "+00:00")) - timedelta(hours=since_hours)).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ"
        )
        number, params = self._metric_sql()
        points = [
            report_module.Point(r[0], r[1], r[2], r[3])
            for r in self._db.query(
                f"SELECT run_id, ts, status, {number} FROM lab_runs WHERE ts <= ? ORDER BY seq", [*params, end]
            )
        ]
        window = [
            _run(r)
            for r in self._db.query("SELECT * FROM lab_runs WHERE ts >= ? AND ts <= ? ORDER BY seq", (start, end))
        ]
        frontier_before = report_module.frontier([p for p in points if p.ts < start], self.direction)
        start_best = frontier_before[-1].value if frontier_before else None
        steps = [p for p in report_module.frontier(points, self.direction) if p.ts >= start]
        data = report_module.ReportData(
            generated_at=utc_now(),
            since=start,
            until=end,
            since_hours=float(since_hours),
            metric=self.metric,
            direction=self.direction,
            window=window,
            frontier_in_window=steps,
            start_best=start_best,
            board=self.board(),
            lineages=self.lineages(),
            clusters=self.failure_clusters(since=start),
            followed_up=frozenset(
                r[0]
                for r in self._db.query("SELECT DISTINCT parent_commit FROM lab_runs WHERE parent_commit IS NOT NULL")
            ),
        )
        chart_record = None
        if chart and save:
            first = next((i for i, p in enumerate(points, 1) if p.ts >= start), None)
            png = report_module.render_chart(points, metric=self.metric, direction=self.direction, window_start=first)
            chart_record = self._artifacts.save_bytes(
                png, "lab_chart", name=f"lab-chart-{end[:19].replace(':', '')}.png", mime="image/png",
                labels={"until": end, "since_hours": float(since_hours)},
            )  # fmt: skip
            data = replace(data, chart_uri=chart_record.uri)
        markdown = report_module.render_markdown(data)
        report_record = None
        if save:
            report_record = self._artifacts.save_text(
                markdown, "lab_report", name=f"morning-report-{end[:19].replace(':', '')}.md", mime="text/markdown",
                labels={"until": end, "since_hours": float(since_hours), "runs": len(window)},
                preview_uri=chart_record.uri if chart_record else None,  # the chart previews the report
            )  # fmt: skip
        limit = self._config.max_response_bytes
        encoded = markdown.encode("utf-8")
        truncated = len(encoded) > limit
        shown = encoded[:limit].decode("utf-8", errors="ignore") if truncated else markdown
        if truncated:
            shown += "\n\n… (truncated; read the lab_report artifact for the rest)"
        return ExperimentReport(
            generated_at=data.generated_at,
            since=start,
            until=end,
            headline=report_module.headline(data),
            counts=report_module.counts(data),
            champion=data.board.champion,
            report_artifact_id=report_record.artifact_id if report_record else None,
            report_uri=report_record.uri if report_record else None,
            chart_artifact_id=chart_record.artifact_id if chart_record else None,
            chart_uri=chart_record.uri if chart_record else None,
            markdown=shown,
            truncated=truncated,
        )

    def latest_report(self) -> str:
        """The newest stored report's Markdown, or a fresh unsaved one when none is stored yet."""
        page = self._artifacts.search(kind="lab_report", limit=1)
        if page.items:
            return self._artifacts.read_bytes(page.items[0]).decode("utf-8")
        return self.report(save=False, chart=False).markdown

    # -- results.tsv ---------------------------------------------------------------------------

    def import_tsv(
        self,
        text: str | None = None,
        *,
        path: str | Path | None = None,
        branch: str | None = None,
        family: str | None = None,
        parent_commit: str | None = None,
    ) -> TsvImport:
        """Bootstrap the ledger from an autoresearch ``results.tsv`` (all rows or none).

        Each row's parent is the last kept commit before it (autoresearch resets discarded
        commits), starting from ``parent_commit``. A row already in the ledger (same commit,
        status and description) is skipped, so importing the file again, or after the loop
        appended to it, adds only the new rows.

        Raises:
            InvalidInput: a malformed line (all are listed), or neither/both of text and path.
            AccessDenied / NotFound: ``path`` is outside the allowed roots or missing.
        """
        if (text is None) == (path is None):
            raise InvalidInput("give the results.tsv content as text or its path, exactly one")
        if path is not None:
            with LocalAccess.of(self._config).open_file(path) as opened:
                resolved = opened.path
                raw = opened.read(self._config.max_base64_bytes, what="results.tsv")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(f"{resolved} is not UTF-8 text") from None
        assert text is not None
        branch = self._short(branch, "branch")
        family = self._short(family, "family")
        parent = self._short(parent_commit, "parent_commit")
        header, rows = parse_results_tsv(text, metric=self.metric)
        stamp = utc_now()
        run_ids: list[str] = []
        skipped = 0
        with self._db.write() as conn:
            champion = self._champion(conn)
            best = dict(champion) if champion else None
            values_by_commit: dict[str, dict[str, Any]] = {}
            batch: list[tuple[Any, ...]] = []
            known = {tuple(r) for r in conn.execute("SELECT commit_sha, status, description FROM lab_runs")}
            for row in rows:
                if (row.commit, row.status, row.description) in known:
                    skipped += 1
                    if row.status == "keep":  # still the parent of the rows after it
                        parent = row.commit
                    continue
                run_id = new_id("run")
                run_ids.append(run_id)
                value = row.metrics.get(self.metric)
                comparison = self._comparison(row.status, value, best, values_by_commit.get(parent or ""))
                summary = RunSummary(
                    run_id=run_id, commit=row.commit, parent_commit=parent, branch=branch, family=family,
                    status=row.status, description=row.description, metric=value,
                )  # fmt: skip
                packet = decide(summary, comparison, error=None, novelty=None, near_margin=self.near_margin)
                source: dict[str, Any] = {"format": "results.tsv", "line": row.line, "columns": header,
                                          "cells": row.cells}  # fmt: skip
                batch.append(self._run_values(
                    run_id=run_id, ts=stamp, branch=branch, commit=row.commit, parent_commit=parent,
                    family=family, status=row.status, description=row.description, hypothesis=None, tags=[],
                    notes=None, metrics=row.metrics, error=None, artifacts=[], novelty=None, packet=packet,
                    source=source,
                ))  # fmt: skip
                if comparison.new_champion:
                    best = {"run_id": run_id, "value": value}
                if row.status == "keep":
                    values_by_commit[row.commit or ""] = {"run_id": run_id, "value": value}
                    parent = row.commit
            self._insert(conn, batch)
        if self._embedder.state == "ready":
            with self._index.lock:
                self._index.refresh()
                self._index.ensure_vectors()
        return TsvImport(imported=len(run_ids), skipped=skipped, run_ids=run_ids[:100], metric=self.metric,
                         champion=self.board().champion)  # fmt: skip

    def export_tsv(self, *, branch: str | None = None, extra_metrics: bool = False) -> str:
        """The ledger (or one branch) as autoresearch's five-column ``results.tsv`` (``extra_metrics``: every metric)."""
        where, params = ("WHERE branch = ?", [branch]) if branch else ("", [])
        rows = self._db.query(
            f"SELECT commit_sha, status, description, metrics, source FROM lab_runs {where} ORDER BY seq", params
        )
        runs = [
            {
                "commit": r["commit_sha"],
                "status": r["status"],
                "description": r["description"],
                "metrics": json.loads(r["metrics"]),
                "source": json.loads(r["source"]) if r["source"] else None,
            }
            for r in rows
        ]
        return format_results_tsv(runs, metric=self.metric, extra_metrics=extra_metrics)

    def export_run_tsv(self, run_id: str) -> str:
        """One run as a results.tsv (header + its row), in autoresearch's five columns."""
        run = self.get(run_id)
        row = {"commit": run.commit, "status": run.status, "description": run.description, "metrics": run.metrics or {}}
        return format_results_tsv([row], metric=self.metric)

    def embed_missing(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Embed every run without a vector for the current model (after an import, a model change).

        ``progress`` is called with (done, total) as batches finish.

        Raises:
            EmbeddingUnavailable: the model cannot be loaded.
        """
        with self._index.lock:
            self._index.refresh()
            return self._index.ensure_vectors(progress=progress)


def run_artifact_ids(conn: Connection) -> set[str]:
    """Ids of the artifacts some run references (its log, patch, summary and attachments).

    They are part of the run's record, which gc never removes, so gc's retention keeps them
    too: a discarded run's patch is often the only copy of what it tried.
    """
    return {
        entry["artifact_id"]
        for (text,) in conn.execute("SELECT artifacts FROM lab_runs WHERE artifacts <> '[]'")
        for entry in json.loads(text)
    }


def _artifact(role: Literal["log", "patch", "summary", "attached"], record: Any) -> RunArtifact:
    return RunArtifact(role=role, artifact_id=record.artifact_id, uri=record.uri, name=record.name)


def _round(delta: float) -> float:
    """A metric difference without float noise (0.9911 - 0.9979 is -0.0068, not -0.006800000000000028)."""
    return round(delta, 10)


def _tail(text: str) -> str:
    # A crashed run's log can end in binary noise; NUL is the one character PostgreSQL's text and
    # jsonb cannot hold, so the excerpt shows it as U+FFFD on both engines (the log itself is
    # archived byte for byte).
    lines = text.replace("\x00", "\ufffd").rstrip().splitlines()[-_TAIL_LINES:]
    joined = "\n".join(lines)
    return joined[-_TAIL_CHARS:]


def _error_line(tail: str) -> str:
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    for line in reversed(lines):
        lowered = line.lower()
        if any(word in lowered for word in _ERROR_LINE):
            return line[:500]
    return lines[-1][:500] if lines else "crashed"


def _run(row: Row) -> LabRun:
    return LabRun(
        run_id=row["run_id"],
        ts=row["ts"],
        branch=row["branch"],
        commit=row["commit_sha"],
        parent_commit=row["parent_commit"],
        family=row["family"],
        status=row["status"],
        description=row["description"],
        hypothesis=row["hypothesis"],
        tags=json.loads(row["tags"]),
        notes=row["notes"],
        # A crash measured nothing: null, not an empty object that reads as "measured, no values".
        metrics=json.loads(row["metrics"]) or (None if row["status"] == "crash" else {}),
        error=RunError.model_validate_json(row["error"]) if row["error"] else None,
        artifacts=[RunArtifact.model_validate(a) for a in json.loads(row["artifacts"])],
        novelty_guard=NoveltyCheck.model_validate_json(row["novelty_guard"]) if row["novelty_guard"] else None,
        decision_packet=DecisionPacket.model_validate_json(row["decision_packet"]) if row["decision_packet"] else None,
    )
