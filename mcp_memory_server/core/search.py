"""Search by words and by meaning over everything a store holds.

Every searchable record has one row in ``search_docs`` (source, item id, text, metadata,
context), kept by triggers on the record's own table, so it commits in the same
transaction as the record. The engine's word index over it (``db.fulltext``, see
:class:`..storage.engine.FullText`) answers lexical queries; the vector index
(:mod:`..storage.vectors`) answers semantic ones. Hybrid search fuses the two by a convex
combination of normalised scores in which the lexical share depends on how much of the
query the lexical hits match (:func:`fuse`).

Results cover everything committed before the search began. An engine whose word index
is not transactional with the write catches up first (``fulltext.catch_up``); vectors are
filled pull-style: before a semantic search, documents committed since the index last
caught up (by any process) are embedded. A server also runs a background indexer that
catches up between searches. An update gives a document a new ``doc_id``, so it is
re-embedded; a model change (id or dimension) drops the old model's vectors and
re-embeds instead of mixing vectors of two models.

A capability makes its rows searchable with one migration per engine (``index_source`` in
each engine's ``schema/search.py``).
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..embeddings import Embedder
from ..errors import InvalidInput, NotFound, StorageError
from . import _validate as check
from ._context import StoreContext

if TYPE_CHECKING:
    import numpy as np

    from ..storage.vectors import VectorIndex

__all__ = [
    "FILES_JOIN",
    "SOURCES",
    "Mode",
    "ProgressFn",
    "Ranked",
    "Ranking",
    "SearchIndex",
    "SourceFilter",
    "query_terms",
]

logger = logging.getLogger(__name__)

Mode = Literal["hybrid", "semantic", "lexical"]
MODES: tuple[str, ...] = ("hybrid", "semantic", "lexical")
SOURCES: tuple[str, ...] = ("events", "artifacts", "files", "graph", "lab")
"""Every source a store indexes (each engine's ``schema/search.py`` keeps its documents)."""
ProgressFn = Callable[[float, float | None, str], None]
"""Called with (done, total or None, message) while a search waits for the model or embeds."""

# Hybrid fusion (see :func:`fuse`), chosen on LoCoMo turns and the dev split of
# bench/data/agent_queries_dev.json (bench/bench_agent_memory.py --ablation): the lexical share
# of a hit's score reaches LEXICAL_SHARE when some hit matches at least COVERAGE_FULL of the
# query's term weight, and falls to LEXICAL_FLOOR of it when none matches more than
# COVERAGE_NONE (a paraphrase whose words only land on unrelated notes).
LEXICAL_SHARE = 0.55
LEXICAL_FLOOR = 0.2
COVERAGE_NONE = 0.2
COVERAGE_FULL = 0.45
# And it shrinks, down to CONFIDENT_KEEP of itself, as the cosine list grows confident: as its
# best hit stands from CONFIDENT_FROM to CONFIDENT_AT above the tenth (a note that clearly means
# what was asked should not lose its place to notes that share the question's phrasing).
# Chosen on the same dev split and LoCoMo on both engines (2 Dec, stop 22), where the tenth lies
# within 0.2 of the best for nine questions in ten: conversation turns are alike, distinct notes
# are not.
CONFIDENT_FROM = 0.22
CONFIDENT_AT = 0.4
CONFIDENT_KEEP = 0.5
CHUNK_CHARS = 1000
MAX_CHUNKS = 16
_EMBED_BATCH = 256
_MAX_QUERY_TERMS = 32
_QUERY_CACHE = 256
_DF_CAP = 10_000
_COVERAGE_CHARS = 20_000


# The join that restricts a search to a file's row: item ids are "<namespace>/<path>".
FILES_JOIN = (
    "files.namespace = substr(d.item_id, 1, instr(d.item_id, '/') - 1)"
    " AND files.path = substr(d.item_id, instr(d.item_id, '/') + 1)"
)
# File contents past this many bytes are not indexed.
_FILE_INDEX_BYTES = 1_048_576


@dataclass(frozen=True, slots=True)
class SourceFilter:
    """Restricts a search to documents whose record in ``table`` matches ``where``.

    ``on`` joins the table to the documents (``d``), e.g. ``"events.event_id = d.item_id"``.
    """

    table: str
    on: str
    where: str = ""
    params: Sequence[Any] = ()


@dataclass(frozen=True, slots=True)
class Ranked:
    item_id: str
    score: float
    lexical_rank: int | None = None
    semantic_rank: int | None = None
    similarity: float | None = None
    source: str = ""


@dataclass(frozen=True, slots=True)
class Ranking:
    items: list[Ranked]
    mode: Mode
    warning: str | None = None
    next_offset: int | None = None


_STOPWORD_TEXT = """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most
    my myself no nor not now of off on once only or other our ours ourselves out over own same she should
    so some such than that the their theirs them themselves then there these they this those through to
    too under until up very was we were what when where which while who whom why will with would you your
    yours yourself yourselves whose whoever whatever whichever might must shall also within without upon onto"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def query_terms(query: str) -> list[str]:
    """The words a lexical search matches: lower case, unique, stopwords dropped unless that leaves none.

    Single letters go too: "Caroline's" would otherwise ask for every document with an "s".
    A word joined by underscores (``deploy_v2``) stays one term, matched as a phrase.
    """
    words = re.findall(r"\w+", query.lower())
    kept = [w for w in words if w not in _STOPWORDS and not (len(w) == 1 and w.isalpha())] or words
    return list(dict.fromkeys(kept))[:_MAX_QUERY_TERMS]


_SUFFIXES = ("ations", "ation", "ings", "ing", "edly", "ed", "ies", "es", "ly", "s")


def stem(word: str) -> str:
    """A light suffix-stripper, close enough to the engines' stemmers to tell which query terms a hit matched.

    It only weighs matches that the word index already made; it never decides whether a document matches.
    """
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + ("y" if suffix == "ies" else "")
            break
    return word[:-1] if len(word) > 3 and word.endswith("e") else word


def term_weights(db: Any, terms: Sequence[str]) -> dict[str, float]:
    """Each term's inverse document frequency (BM25's) over the whole lexical index."""
    # The highest doc id stands in for the document count: COUNT(*) scans the table (ms at
    # 100k documents), and an overcount (deleted or updated documents) scales every weight
    # alike. Counting stops at a cap so that a very common term does not cost a scan of a
    # long posting list; past it every term weighs the same (the floor only matters in
    # stores of well over 10k documents).
    total = db.query("SELECT MAX(doc_id) FROM search_docs")[0][0] or 1
    found = db.fulltext.doc_frequency(terms, _DF_CAP)
    return {term: math.log(1.0 + (total - found[term] + 0.5) / (found[term] + 0.5)) for term in terms}


def document_terms(db: Any, doc_ids: Sequence[int]) -> dict[int, tuple[set[str], set[str]]]:
    """Stemmed words of each document: (its text and metadata, its context)."""
    found: dict[int, tuple[set[str], set[str]]] = {}
    for start in range(0, len(doc_ids), 500):
        batch = list(doc_ids[start : start + 500])
        rows = db.query(
            f"SELECT doc_id, doc_text, doc_meta, doc_context FROM search_docs WHERE doc_id IN ({','.join('?' * len(batch))})",
            batch,
        )
        for doc_id, text, meta, context in rows:
            # The engines' tokenizers split at underscores too ("block_size" is "block" "size").
            own = {stem(w) for w in re.findall(r"[^\W_]+", f"{text[:_COVERAGE_CHARS]} {meta}".lower())}
            near = {stem(w) for w in re.findall(r"[^\W_]+", context.lower())}
            found[doc_id] = (own, near)
    return found


def coverage(terms: Sequence[str], weights: dict[str, float], words: tuple[set[str], set[str]]) -> float:
    """Share of the query's term weight a document matches; a match in its context counts half."""
    own, near = words
    total = sum(weights.get(t, 0.0) for t in terms)
    if total <= 0:
        return 0.0
    got = 0.0
    for term in terms:
        parts = {stem(p) for p in term.split("_") if p}  # "deploy_v2" is matched as a phrase
        if parts <= own:
            got += weights.get(term, 0.0)
        elif parts <= own | near:
            got += 0.5 * weights.get(term, 0.0)
    return got / total


def chunks(text: str) -> list[str]:
    """Pieces of ``text`` short enough for the model (about 250 tokens), split at whitespace."""
    text = text.strip()
    if len(text) <= CHUNK_CHARS:
        return [text]
    pieces: list[str] = []
    while text and len(pieces) < MAX_CHUNKS:
        if len(text) <= CHUNK_CHARS:
            pieces.append(text)
            break
        cut = max(
            text.rfind("\n", 0, CHUNK_CHARS), text.rfind(". ", 0, CHUNK_CHARS) + 1, text.rfind(" ", 0, CHUNK_CHARS)
        )
        if cut < CHUNK_CHARS // 2:
            cut = CHUNK_CHARS
        pieces.append(text[:cut].strip())
        text = text[cut:].strip()
    return [p for p in pieces if p] or [text[:CHUNK_CHARS]]


class SearchIndex:
    """Lexical, semantic and hybrid search over the store's ``search_docs``.

    Get it as ``MemoryStore.search``. Capabilities call :meth:`rank` with their filters;
    the server calls :meth:`start_background` after the handshake.
    """

    def __init__(self, ctx: StoreContext, embedder: Embedder, *, poll_seconds: float = 1.0) -> None:
        self._db = ctx.db
        self._blobs = ctx.blobs
        self._config = ctx.config
        self.embedder = embedder
        self._poll_seconds = poll_seconds
        self._vectors: VectorIndex | None = None
        self._vectors_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._embedded_upto = 0
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._queries_lock = threading.Lock()
        self._stop = threading.Event()
        self._indexer: threading.Thread | None = None
        self._indexer_lock = threading.Lock()
        self._helpers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="search-lexical")

    # -- the model and the vectors -----------------------------------------------------------------

    def start_background(self, model_delay: float = 0.0) -> None:
        """Keep the indexes up to date between searches; load the model after ``model_delay`` seconds.

        A search that needs the model earlier starts loading it at once.
        """
        with self._indexer_lock:
            if self._indexer is None:
                self._indexer = threading.Thread(
                    target=self._index_loop, args=(time.monotonic() + model_delay,), name="search-indexer", daemon=True
                )
                self._indexer.start()

    def _index_loop(self, load_model_at: float) -> None:
        while not self._stop.is_set():
            try:
                if time.monotonic() >= load_model_at:
                    self.embedder.start()
                self.index_pending()
                self.sync_lexical()
                if self.embedder.state == "ready":
                    self.refresh()
            except StorageError:
                return  # the store was closed or the disk failed; searches report it
            except Exception:
                logger.exception("background indexing stopped")
                return
            self._stop.wait(self._poll_seconds)

    def close(self) -> None:
        """Stop background indexing (waiting briefly for a batch in progress) and release connections."""
        self._stop.set()
        if self._indexer is not None and self._indexer is not threading.current_thread():
            self._indexer.join(timeout=10)
        self._helpers.shutdown(wait=True)
        if self._vectors is not None:
            self._vectors.close()

    def _wait_for_model(self, progress: ProgressFn | None) -> bool:
        """Wait until the model loaded (True) or failed (False), reporting progress meanwhile."""
        while not self.embedder.wait(0.5):
            if self.embedder.settled:
                return False
            if progress is not None:
                progress(round(self.embedder.waited_seconds, 1), None, "loading the embedding model")
        return True

    def vectors(self) -> VectorIndex:
        """The vector index of the loaded model (created on first use; waits for the model).

        The engine chooses its kind (``Database.vector_index``): the exact in-memory matrix, or
        pgvector on a PostgreSQL database that has it.

        Raises:
            EmbeddingUnavailable: the model could not be loaded.
        """
        with self._vectors_lock:
            if self._vectors is None:
                from ..embeddings import EmbeddingUnavailable

                if not self.embedder.wait():
                    raise EmbeddingUnavailable(self.embedder.error or "embedding model unavailable")
                index = self._db.vector_index(self.embedder.model_id, self.embedder.dim or 0)
                stale = index.delete_other_models()
                if stale:
                    logger.info("embedding model changed to %s: re-embedding %d vectors", index.model_id, stale)
                self._vectors = index
            return self._vectors

    def refresh(self, progress: ProgressFn | None = None) -> int:
        """Embed every document the current model has not embedded yet; returns how many.

        Raises:
            EmbeddingUnavailable: the model could not be loaded.
        """
        index = self.vectors()
        self.index_pending()
        with self._refresh_lock:
            removed = sorted(set(index.sync()))
            for start in range(0, len(removed), 500):
                # Vectors deleted while their documents live (a reindex elsewhere): look again from there.
                batch = removed[start : start + 500]
                alive = self._db.query(
                    f"SELECT MIN(doc_id) FROM search_docs WHERE doc_id IN ({','.join('?' * len(batch))})", batch
                )[0][0]
                if alive is not None:
                    self._embedded_upto = min(self._embedded_upto, alive - 1)
                    break
            top = self._db.query("SELECT MAX(doc_id) FROM search_docs")[0][0] or 0
            if top <= self._embedded_upto:
                return 0
            pending = [
                row[0]
                for row in self._db.query(
                    "SELECT d.doc_id FROM search_docs AS d WHERE d.doc_id > ? AND d.doc_id <= ? AND NOT EXISTS"
                    " (SELECT 1 FROM vectors AS v WHERE v.collection = d.source AND v.item = d.doc_id"
                    " AND v.model = ?) ORDER BY d.doc_id",
                    (self._embedded_upto, top, index.model),
                )
            ]
            for start in range(0, len(pending), _EMBED_BATCH):
                self._embed(index, pending[start : start + _EMBED_BATCH])
                if progress is not None:
                    progress(min(start + _EMBED_BATCH, len(pending)), len(pending), "embedding new documents")
            self._embedded_upto = top
            index.sync()
            return len(pending)

    def _embed(self, index: VectorIndex, doc_ids: list[int]) -> None:
        marks = ",".join("?" * len(doc_ids))
        rows = self._db.query(
            f"SELECT doc_id, source, doc_text, doc_meta FROM search_docs WHERE doc_id IN ({marks})", doc_ids
        )
        texts: list[str] = []
        keys: list[tuple[str, int, int]] = []
        for row in rows:
            for number, piece in enumerate(chunks(row["doc_text"] or row["doc_meta"])):
                texts.append(piece)
                keys.append((row["source"], row["doc_id"], number))
        vectors = self.embedder.encode(texts)
        with self._db.write() as conn:
            alive = {r[0] for r in conn.execute(f"SELECT doc_id FROM search_docs WHERE doc_id IN ({marks})", doc_ids)}
            by_source: dict[str, list[int]] = {}
            for position, (source, doc_id, _) in enumerate(keys):
                if doc_id in alive:
                    by_source.setdefault(source, []).append(position)
            for source, positions in by_source.items():
                index.add(conn, source, [keys[p][1:] for p in positions], vectors[positions])

    def reindex(self, progress: ProgressFn | None = None) -> int:
        """Drop every vector and embed every document again; also rebuilds the lexical index.

        Raises:
            EmbeddingUnavailable: the model could not be loaded.
        """
        index = self.vectors()
        self._db.fulltext.rebuild()
        with self._refresh_lock:
            index.delete_all()
            self._embedded_upto = 0
        return self.refresh(progress)

    def sync_lexical(self) -> int:
        """Add documents committed since the word index last caught up; returns how many."""
        return self._db.fulltext.catch_up()

    def index_pending(self) -> int:
        """Index records whose text lives outside the database (file contents); returns how many."""
        pending = self._db.query("SELECT source, item_id FROM search_pending LIMIT 1000")
        done = 0
        while pending:
            for source, item_id in pending:
                if source == "files":
                    done += self._index_file(item_id)
            if len(pending) < 1000:
                break
            pending = self._db.query("SELECT source, item_id FROM search_pending LIMIT 1000")
        return done

    def _index_file(self, item_id: str) -> int:
        namespace, _, path = item_id.partition("/")
        rows = self._db.query("SELECT sha256 FROM files WHERE namespace = ? AND path = ?", (namespace, path))
        sha = rows[0][0] if rows else None
        text = ""
        if sha is not None:
            try:
                # A ranged read: from a bucket, only the indexed head of a big file travels.
                text = self._blobs.read(sha, 0, _FILE_INDEX_BYTES).decode("utf-8", errors="ignore")
                # PostgreSQL text cannot hold NUL: one such file failed this insert, and with it
                # every later search of every source. A NUL separates words, on both engines.
                text = text.replace("\x00", " ")
            except NotFound:
                # One lost blob (removed by hand, or by gc of an older version) must not stop
                # every search: the file stays findable by its path, and the loss is logged.
                logger.warning("the content of %s (blob %s) is missing; indexing it by path only", item_id, sha)
        with self._db.write() as conn:
            current = conn.execute(
                "SELECT sha256 FROM files WHERE namespace = ? AND path = ?", (namespace, path)
            ).fetchone()
            if current is not None and current[0] != sha:
                return 0  # rewritten meanwhile: the next round indexes the new content
            conn.execute("DELETE FROM search_docs WHERE source = 'files' AND item_id = ?", (item_id,))
            if sha is not None:
                conn.execute(
                    "INSERT INTO search_docs (source, item_id, doc_text, doc_meta) VALUES ('files', ?, ?, ?)",
                    (item_id, text, f"{namespace} {path}"),
                )
            conn.execute("DELETE FROM search_pending WHERE source = 'files' AND item_id = ?", (item_id,))
        return 1

    def _query_vector(self, query: str) -> np.ndarray:
        with self._queries_lock:
            cached = self._queries.get(query)
            if cached is not None:
                self._queries.move_to_end(query)
                return cached
        vector: np.ndarray = self.embedder.encode([query])[0]
        with self._queries_lock:
            self._queries[query] = vector
            if len(self._queries) > _QUERY_CACHE:
                self._queries.popitem(last=False)
        return vector

    # -- searching ---------------------------------------------------------------------------------

    def rank(
        self,
        source: str,
        query: str,
        *,
        mode: str = "hybrid",
        limit: int = 10,
        offset: int = 0,
        filter: SourceFilter | None = None,
        progress: ProgressFn | None = None,
    ) -> Ranking:
        """Rank ``source``'s documents for ``query``; returns item ids, best first.

        ``hybrid`` and ``semantic`` wait for the model (reporting progress); if it cannot be
        loaded they fall back to ``lexical`` and say so in ``warning``.

        Raises:
            InvalidInput: empty query or unknown mode.
        """
        return self.rank_sources({source: filter}, query, mode=mode, limit=limit, offset=offset, progress=progress)

    def rank_sources(
        self,
        sources: Mapping[str, SourceFilter | None],
        query: str,
        *,
        mode: str = "hybrid",
        limit: int = 10,
        offset: int = 0,
        progress: ProgressFn | None = None,
    ) -> Ranking:
        """Rank the documents of several sources (each with its filter) together; each item names its source.

        One fusion over the merged lists, so scores compare across sources: BM25 and cosine
        are each on one scale over the whole index.

        Raises:
            InvalidInput: empty query, unknown mode, or no source.
        """
        check.text(query, field="query", config=self._config, allow_empty=False)
        if mode not in MODES:
            raise InvalidInput(f"mode={mode!r} is not valid; use hybrid, semantic or lexical")
        if not sources:
            raise InvalidInput(f"give at least one source to search: {', '.join(SOURCES)}")
        limit = check.limit(limit, config=self._config)
        depth = max(50, 2 * (offset + limit + 1))
        if "files" in sources:
            self.index_pending()
        lexical_future: Future[tuple[list[tuple[int, str, float]], dict[int, str], dict[int, float]]] | None = None
        if mode != "semantic":
            self.sync_lexical()
            if mode == "hybrid":  # words are ranked on a helper thread while the query is embedded
                lexical_future = self._helpers.submit(self._lexical_with_coverage, sources, query, depth)
        warning = None
        query_vector = None
        if mode != "lexical":
            if self._wait_for_model(progress):
                self.refresh(progress)
                query_vector = self._query_vector(query)
            else:
                warning = f"semantic search is unavailable ({self.embedder.error}); these are lexical results"
                mode = "lexical"
                self.sync_lexical()
        origin: dict[int, str] = {}
        semantic = self._semantic_many(sources, query_vector, depth, origin) if query_vector is not None else []
        coverage: dict[int, float] = {}
        if lexical_future is not None:
            lexical, found_in, coverage = lexical_future.result()
        else:
            lexical, found_in = self._lexical_many(sources, query, depth) if mode != "semantic" else ([], {})
        origin.update(found_in)
        fused = self._fuse(mode, origin, lexical, semantic, query_vector, coverage)  # type: ignore[arg-type]
        page = fused[offset : offset + limit]
        more = len(fused) > offset + limit
        next_offset = offset + limit if more else None
        return Ranking(items=page, mode=mode, warning=warning, next_offset=next_offset)  # type: ignore[arg-type]

    def texts(self, items: Sequence[Ranked], chars: int) -> dict[tuple[str, str], str]:
        """The start of each ranked document's own text, by (source, item id); documents gone meanwhile are left out."""
        found: dict[tuple[str, str], str] = {}
        by_source: dict[str, list[str]] = {}
        for item in items:
            by_source.setdefault(item.source, []).append(item.item_id)
        for source, ids in by_source.items():
            for start in range(0, len(ids), 500):
                batch = ids[start : start + 500]
                rows = self._db.query(
                    f"SELECT item_id, substr(doc_text, 1, ?) FROM search_docs WHERE source = ?"
                    f" AND item_id IN ({','.join('?' * len(batch))})",
                    (chars, source, *batch),
                )
                found.update(((source, row[0]), row[1]) for row in rows)
        return found

    def _join(self, filter: SourceFilter | None) -> tuple[str, str, list[Any]]:
        if filter is None or not filter.where:
            return "", "", []  # every document's record exists (triggers keep them in step)
        join = f" JOIN {filter.table} ON {filter.on}"
        return join, f" AND ({filter.where})", list(filter.params)

    def _accept(self, source: str, filter: SourceFilter | None, doc_ids: list[int]) -> dict[int, str]:
        """Which of ``doc_ids`` belong to ``source`` and pass ``filter``, with their item ids."""
        join, where, params = self._join(filter)
        allowed: dict[int, str] = {}
        for start in range(0, len(doc_ids), 500):
            batch = doc_ids[start : start + 500]
            rows = self._db.query(
                f"SELECT d.doc_id, d.item_id FROM search_docs AS d{join}"
                f" WHERE d.doc_id IN ({','.join('?' * len(batch))}) AND d.source || '' = ?{where}",
                (*batch, source, *params),
            )
            allowed.update((row[0], row[1]) for row in rows)
        return allowed

    def _lexical_with_coverage(
        self, sources: Mapping[str, SourceFilter | None], query: str, depth: int
    ) -> tuple[list[tuple[int, str, float]], dict[int, str], dict[int, float]]:
        """The lexical list, each hit's source and the share of the query's term weight each hit matches."""
        hits, origin = self._lexical_many(sources, query, depth)
        if not hits:
            return hits, origin, {}
        terms = query_terms(query)
        weights = term_weights(self._db, terms)
        words = document_terms(self._db, [doc for doc, _, _ in hits])
        return hits, origin, {doc: coverage(terms, weights, words.get(doc, (set(), set()))) for doc, _, _ in hits}

    def _lexical_many(
        self, sources: Mapping[str, SourceFilter | None], query: str, depth: int
    ) -> tuple[list[tuple[int, str, float]], dict[int, str]]:
        """Each source's best lexical hits merged by BM25 (one scale over the whole index), and each hit's source."""
        terms = query_terms(query)
        if not terms:
            return [], {}
        rows = self._db.fulltext.top(terms, 4 * depth)  # the best matches of any source, once for all
        merged: list[tuple[int, str, float]] = []
        origin: dict[int, str] = {}
        for source, filter in sources.items():
            hits = self._lexical(source, query, depth, filter, rows)
            merged += hits
            origin.update((doc, source) for doc, _, _ in hits)
        merged.sort(key=lambda hit: -hit[2])  # stable: one source's list keeps its order
        return merged[:depth], origin

    def _lexical(
        self,
        source: str,
        query: str,
        depth: int,
        filter: SourceFilter | None,
        rows: list[tuple[int, float]] | None = None,
    ) -> list[tuple[int, str, float]]:
        terms = query_terms(query)
        if not terms:
            return []
        fulltext = self._db.fulltext
        # First the best matches of any source, filtered afterwards: joining every match
        # before sorting costs more than the ranking itself on large stores.
        wanted = 4 * depth
        if rows is None:
            rows = fulltext.top(terms, wanted)
        allowed = self._accept(source, filter, [doc for doc, _ in rows])
        hits = [(doc, allowed[doc], score) for doc, score in rows if doc in allowed]
        if len(hits) >= depth or len(rows) < wanted:
            return hits[:depth]
        # Selective filters or a small source: rank only the documents that pass them.
        join, where, params = self._join(filter)
        return fulltext.top_within(terms, depth, source, join, where, params)

    def _semantic(
        self, source: str, query_vector: np.ndarray, depth: int, filter: SourceFilter | None
    ) -> list[tuple[int, str, float]]:
        assert self._vectors is not None
        item_ids: dict[int, str] = {}

        def accept(doc_ids: list[int]) -> set[int]:
            allowed = self._accept(source, filter, doc_ids)
            item_ids.update(allowed)
            return set(allowed)

        hits = self._vectors.search(source, query_vector, depth, accept)
        return [(hit.item, item_ids[hit.item], hit.score) for hit in hits]

    def _semantic_many(
        self, sources: Mapping[str, SourceFilter | None], query_vector: np.ndarray, depth: int, origin: dict[int, str]
    ) -> list[tuple[int, str, float]]:
        """Each source's nearest documents merged by cosine; records each hit's source in ``origin``."""
        merged: list[tuple[int, str, float]] = []
        for source, filter in sources.items():
            hits = self._semantic(source, query_vector, depth, filter)
            merged += hits
            origin.update((doc, source) for doc, _, _ in hits)
        merged.sort(key=lambda hit: -hit[2])
        return merged[:depth]

    def _fuse(
        self,
        mode: Mode,
        origin: dict[int, str],
        lexical: list[tuple[int, str, float]],
        semantic: list[tuple[int, str, float]],
        query_vector: np.ndarray | None,
        coverage: dict[int, float],
    ) -> list[Ranked]:
        if mode == "lexical":
            return [
                Ranked(item, round(score, 6), lexical_rank=i + 1, source=origin[doc])
                for i, (doc, item, score) in enumerate(lexical)
            ]
        if mode == "semantic":
            return [
                Ranked(item, round(score, 6), semantic_rank=i + 1, similarity=round(score, 6), source=origin[doc])
                for i, (doc, item, score) in enumerate(semantic)
            ]
        similarity = {doc: score for doc, _, score in semantic}
        missing: dict[str, list[int]] = {}
        for doc, _, _ in lexical:
            if doc not in similarity:
                missing.setdefault(origin[doc], []).append(doc)
        if query_vector is not None and self._vectors is not None:
            for source, docs in missing.items():
                similarity.update(self._vectors.scores(source, query_vector, docs))
        return fuse(lexical, semantic, similarity, coverage, origin)

    # -- reporting ---------------------------------------------------------------------------------

    def status(self, counters: Mapping[str, int] | None = None) -> dict[str, Any]:
        """The model's state plus how many documents and vectors the index holds.

        The counts are the engine's counters (``storage/*/schema/stats.py``), not COUNT(*):
        pass ``counters`` when they were just read (``MemoryStore.stats`` does).
        """
        if counters is None:
            counters = {row[0]: int(row[1]) for row in self._db.query("SELECT name, value FROM store_counters")}
        status = self.embedder.status()
        documents = counters.get("search_docs", 0)
        status["documents"] = documents
        # A model not loaded yet has no dimension: any of its id's vectors count.
        dim, dim_params = (" AND dim = ?", [self.embedder.dim]) if self.embedder.dim is not None else ("", [])
        model = self._db.query(
            f"SELECT model FROM vector_models WHERE model_id = ?{dim}", (self.embedder.model_id, *dim_params)
        )
        if model:
            embedded = counters.get(f"vectors:{model[0][0]}", 0)
            status["embedded_documents"] = embedded
            status["pending_documents"] = max(0, documents - embedded)
        else:
            status["embedded_documents"] = 0
            status["pending_documents"] = documents
        return status


def ramp(value: float, low: float, high: float) -> float:
    """0 at ``low`` or below, 1 at ``high`` or above, linear between."""
    return min(1.0, max(0.0, (value - low) / (high - low)))


def lead(cosines: Sequence[float]) -> float:
    """How far the best of a cosine list (best first) stands above its tenth (or its last): its confidence."""
    return cosines[0] - cosines[min(10, len(cosines)) - 1] if cosines else 0.0


def fuse(
    lexical: list[tuple[int, str, float]],
    semantic: list[tuple[int, str, float]],
    similarity: dict[int, float],
    coverage: dict[int, float],
    origin: Mapping[int, str] | None = None,
) -> list[Ranked]:
    """Hybrid ranking of the BM25 list and the cosine list (doc id, item id, score; best first).

    A hit scores ``a * coverage * bm25 / best_bm25 + (1 - a) * cosine``: a convex
    combination of normalised scores, where the lexical part is weighted by how much of the
    query the hit matches (``coverage``, IDF-weighted). ``a`` depends on the query: a BM25
    list in which no hit matches much of the query (incidental OR-matches of a paraphrase)
    weighs little, so the memory found by meaning alone can still come first; and a cosine
    list whose best hit stands clear of the tenth weighs more. Rank fusion
    (RRF 2:1, k = 10) could not do that: a hit found only by meaning scored at most 1/11,
    below any note that shared one word and ranked second by meaning. ``origin`` names each
    document's source (for hits of several sources).
    """
    lexical_rank = {doc: i + 1 for i, (doc, _, _) in enumerate(lexical)}
    semantic_rank = {doc: i + 1 for i, (doc, _, _) in enumerate(semantic)}
    bm25 = {doc: score for doc, _, score in lexical}
    items = {doc: item for doc, item, _ in (*lexical, *semantic)}
    top = max(bm25.values(), default=0.0)
    best = max((coverage.get(doc, 0.0) for doc in bm25), default=0.0)
    share = LEXICAL_SHARE * (LEXICAL_FLOOR + (1.0 - LEXICAL_FLOOR) * ramp(best, COVERAGE_NONE, COVERAGE_FULL))
    share *= 1.0 - (1.0 - CONFIDENT_KEEP) * ramp(
        lead([score for _, _, score in semantic]), CONFIDENT_FROM, CONFIDENT_AT
    )
    fused = []
    for doc, item in items.items():
        words = coverage.get(doc, 0.0) * bm25[doc] / top if doc in bm25 and top > 0 else 0.0
        sim = similarity.get(doc)
        score = share * words + (1.0 - share) * (sim or 0.0)
        fused.append(Ranked(item, round(score, 6), lexical_rank.get(doc), semantic_rank.get(doc),
                            None if sim is None else round(sim, 6), (origin or {}).get(doc, "")))  # fmt: skip
    fused.sort(key=lambda r: (-r.score, r.lexical_rank or 1 << 30, r.semantic_rank or 1 << 30))
    return fused
