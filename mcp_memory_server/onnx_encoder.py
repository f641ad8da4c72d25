"""The bundled MiniLM served by ONNX Runtime and the ``tokenizers`` library: no torch.

torch plus sentence-transformers cost ~370 MiB and ~4 s per process before the first
semantic answer. This module turns a sentence-transformers BERT folder (safetensors
weights, ``tokenizer.json``, mean pooling) into an ONNX graph once, caches the export in
the user cache folder, and encodes with ONNX Runtime. The graph is built directly from
the safetensors weights with ``onnx.helper``, so the export needs neither torch nor
transformers either; the ops (LayerNormalization, exact erf GELU, masked softmax, mean
pooling, L2 normalisation) are those of ``BertModel`` + ``Pooling`` + ``Normalize``, and
``tests/test_embeddings_onnx.py`` pins the vectors within 1e-4 cosine of sentence-transformers.

Only folders this module can reproduce exactly are accepted (``BertModel``, absolute
positions, exact GELU, a Transformer → mean Pooling [→ Normalize] pipeline); anything
else raises :class:`UnsupportedModel` and is served by sentence-transformers.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import math
import mmap
import os
import shutil
import struct
import tempfile
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._cpu import available_cores

if TYPE_CHECKING:
    import numpy as np

__all__ = ["OnnxEncoder", "UnsupportedModel", "cache_dir", "export_dir"]

# Bump when the graph changes: the version is part of the cache key, so old exports are rebuilt.
GRAPH_VERSION = "2"
OPSET = 17
# Caps per ONNX Runtime run, because a run's activations are what the server's RSS peaks
# at: 64 LoCoMo turns of ~107 tokens in one run peaked at 670 MiB (the FFN's
# tokens x 1536 floats and the heads' tokens x seq x 12 scores, for every layer's
# in-flight tensors). 2,048 tokens and 200k seq^2 per run keep the peak near 100 MiB over
# the loaded model while GEMMs of 2,048 rows stay as fast per token.
_MAX_RUN_TOKENS = 2048
_MAX_RUN_SEQ2 = 200_000
# A bulk encode (a backlog, a reindex) runs up to this many runs at once, one per core:
# a run is single-threaded GEMMs near one core's peak (~100 LoCoMo turns/s), so a second
# core halves a backlog while a lone query keeps its one thread and its latency.
_MAX_BULK_WORKERS = 4
GRAPH, WEIGHTS, WORDS, MANIFEST = "model.onnx", "weights.bin", "words.bin", "manifest.json"
_FILES = ("model.safetensors", "config.json", "modules.json", "tokenizer.json", "sentence_bert_config.json")


class UnsupportedModel(Exception):
    """The folder is not a model this runtime reproduces exactly; use sentence-transformers."""


def cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("mcp-memory-server")) / "onnx"


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _check_supported(folder: Path) -> tuple[dict[str, Any], int]:
    """The BERT config and max_seq_length, or UnsupportedModel saying what differs."""
    for name in ("model.safetensors", "config.json", "tokenizer.json", "modules.json"):
        if not (folder / name).is_file():
            raise UnsupportedModel(f"{folder} has no {name}")
    config = _read_json(folder / "config.json")
    if config.get("architectures") != ["BertModel"] or config.get("model_type") != "bert":
        raise UnsupportedModel(f"architecture {config.get('architectures')} is not BertModel")
    if config.get("hidden_act") != "gelu" or config.get("position_embedding_type", "absolute") != "absolute":
        raise UnsupportedModel("only exact GELU and absolute positions are exported")
    modules = [m.get("type", "").rsplit(".", 1)[-1] for m in _read_json(folder / "modules.json")]
    if modules not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise UnsupportedModel(f"pipeline {modules} is not Transformer -> Pooling [-> Normalize]")
    pooling_dir = next(m["path"] for m in _read_json(folder / "modules.json") if m["type"].endswith("Pooling"))
    pooling = _read_json(folder / pooling_dir / "config.json")
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode") and v}
    if modes != {"pooling_mode_mean_tokens"}:
        raise UnsupportedModel(f"pooling {sorted(modes)} is not mean pooling")
    # sentence-transformers truncates at max_seq_length (sentence_bert_config.json), else
    # at the tokenizer's model_max_length; never past the position table.
    limit = int(config.get("max_position_embeddings", 512))
    st_config = folder / "sentence_bert_config.json"
    if st_config.is_file():
        limit = min(limit, int(_read_json(st_config).get("max_seq_length") or limit))
    tok_config = folder / "tokenizer_config.json"
    if tok_config.is_file():
        limit = min(limit, int(_read_json(tok_config).get("model_max_length") or limit))
    return config, limit


def _safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file as a numpy array (copied out of a read-only map)."""
    import numpy as np

    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        (header_len,) = struct.unpack("<Q", mapped[:8])
        header = json.loads(mapped[8 : 8 + header_len])
        tensors: dict[str, np.ndarray] = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            if info["dtype"] not in dtypes:
                raise UnsupportedModel(f"tensor {name} has dtype {info['dtype']}")
            start, end = info["data_offsets"]
            raw = mapped[8 + header_len + start : 8 + header_len + end]
            array = np.frombuffer(raw, dtype=dtypes[info["dtype"]]).reshape(info["shape"])
            tensors[name] = array.astype(np.float32) if info["dtype"] == "F16" else array.copy()
        return tensors


def _build(folder: Path, out: Path) -> None:
    """Write ``out/model.onnx`` (the graph: word_emb, attention_mask -> unit-length
    sentence_embedding), ``out/weights.bin`` (its large initializers as external data) and
    ``out/words.bin`` (the word-embedding table, float32 rows, which the graph does not hold).

    The weights live outside the graph, each at a 64 KiB-aligned offset, because ONNX
    Runtime then maps them from the file instead of copying them, and several server
    processes share one page cache (measured: 102 MiB RSS after a query vs 171 with the
    weights embedded in the graph).

    The word-embedding table is not mapped at all: :class:`OnnxEncoder` reads the rows a
    batch needs with ``pread``. Mapped, each row touched faulted in its 64 KiB neighbourhood
    (the kernel's fault-around), so embedding 200 LoCoMo turns made 32 of the table's 45 MiB
    resident in every server process; read, the rows sit in the page cache, not in RSS.
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    config, _ = _check_supported(folder)
    weights = _safetensors(folder / "model.safetensors")
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    head_dim = hidden // heads
    eps = float(config.get("layer_norm_eps", 1e-12))
    inits: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []
    blob = (out / WEIGHTS).open("wb")
    offset = 0

    def init(name: str, array: np.ndarray) -> str:
        nonlocal offset
        array = np.ascontiguousarray(array)
        dtype = helper.np_dtype_to_tensor_dtype(array.dtype)
        if array.nbytes < 4096:
            inits.append(helper.make_tensor(name, dtype, array.shape, array.tobytes(), raw=True))
            return name
        pad = -offset % 65536
        blob.write(b"\0" * pad)
        offset += pad
        blob.write(array.tobytes())
        tensor = TensorProto(name=name, data_type=dtype, dims=array.shape)
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (("location", WEIGHTS), ("offset", str(offset)), ("length", str(array.nbytes))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        offset += array.nbytes
        inits.append(tensor)
        return name

    def w(key: str) -> np.ndarray:
        return weights[prefix + key]

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def linear(x: str, key: str, out: str) -> str:
        # torch Linear is x @ W.T + b; ONNX MatMul wants W as [in, out].
        weight = init(f"{key}.wT", w(f"{key}.weight").T)
        bias = init(f"{key}.b", w(f"{key}.bias"))
        return node("Add", [node("MatMul", [x, weight], f"{out}.mm"), bias], out)

    def layer_norm(x: str, key: str, out: str) -> str:
        scale = init(f"{key}.g", w(f"{key}.weight"))
        bias = init(f"{key}.beta", w(f"{key}.bias"))
        return node("LayerNormalization", [x, scale, bias], out, axis=-1, epsilon=eps)

    # Embeddings: word + token type 0 (sentence-transformers passes all-zero token types for
    # one sentence) + absolute positions 0..T-1.
    table = np.ascontiguousarray(w("embeddings.word_embeddings.weight"), dtype=np.float32)
    with (out / WORDS).open("wb") as f:
        f.write(table.tobytes())
        f.flush()
        os.fsync(f.fileno())
    type0 = init("token_type0", w("embeddings.token_type_embeddings.weight")[0])
    positions = init("position_embeddings", w("embeddings.position_embeddings.weight"))
    init("zero", np.array([0], dtype=np.int64))
    init("one", np.array([1], dtype=np.int64))
    init("two", np.array([2], dtype=np.int64))
    seq_len = node("Slice", [node("Shape", ["attention_mask"], "mask_shape"), "one", "two"], "seq_len")
    pos = node("Slice", [positions, "zero", seq_len, "zero"], "pos_emb")
    emb = node("Add", [node("Add", ["word_emb", type0], "wt_emb"), pos], "emb")
    x = layer_norm(emb, "embeddings.LayerNorm", "emb_ln")

    # Additive attention mask [B, 1, 1, T]: 0 where attended, float32 min where padded (as HF does).
    mask_f = node("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    init("f_one", np.array(1.0, dtype=np.float32))
    init("f_min", np.array(np.finfo(np.float32).min, dtype=np.float32))
    inverted = node("Sub", ["f_one", mask_f], "mask_inv")
    bias_bt = node("Mul", [inverted, "f_min"], "mask_bias_bt")
    init("mask_axes", np.array([1, 2], dtype=np.int64))
    mask_bias = node("Unsqueeze", [bias_bt, "mask_axes"], "mask_bias")
    init("split_heads", np.array([0, 0, heads, head_dim], dtype=np.int64))
    init("merge_heads", np.array([0, 0, hidden], dtype=np.int64))
    init("attn_scale", np.array(1.0 / math.sqrt(head_dim), dtype=np.float32))
    init("sqrt_half", np.array(1.0 / math.sqrt(2.0), dtype=np.float32))
    init("f_half", np.array(0.5, dtype=np.float32))

    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}"
        q = node("Reshape", [linear(x, f"{p}.attention.self.query", f"l{i}.q"), "split_heads"], f"l{i}.q4")
        k = node("Reshape", [linear(x, f"{p}.attention.self.key", f"l{i}.k"), "split_heads"], f"l{i}.k4")
        v = node("Reshape", [linear(x, f"{p}.attention.self.value", f"l{i}.v"), "split_heads"], f"l{i}.v4")
        q = node("Transpose", [q], f"l{i}.qt", perm=[0, 2, 1, 3])
        k = node("Transpose", [k], f"l{i}.kt", perm=[0, 2, 3, 1])
        v = node("Transpose", [v], f"l{i}.vt", perm=[0, 2, 1, 3])
        scores = node("Mul", [node("MatMul", [q, k], f"l{i}.qk"), "attn_scale"], f"l{i}.scores")
        probs = node("Softmax", [node("Add", [scores, mask_bias], f"l{i}.masked")], f"l{i}.probs", axis=-1)
        ctx = node("Transpose", [node("MatMul", [probs, v], f"l{i}.ctx")], f"l{i}.ctxt", perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, "merge_heads"], f"l{i}.ctx3")
        attn = linear(ctx, f"{p}.attention.output.dense", f"l{i}.attn_out")
        x = layer_norm(node("Add", [attn, x], f"l{i}.attn_res"), f"{p}.attention.output.LayerNorm", f"l{i}.attn_ln")
        h = linear(x, f"{p}.intermediate.dense", f"l{i}.inter")
        # Exact GELU, as BERT's "gelu": 0.5 * h * (1 + erf(h / sqrt(2))).
        erf = node("Erf", [node("Mul", [h, "sqrt_half"], f"l{i}.hs")], f"l{i}.erf")
        gelu = node(
            "Mul", [node("Mul", [h, "f_half"], f"l{i}.hh"), node("Add", [erf, "f_one"], f"l{i}.erf1")], f"l{i}.gelu"
        )
        ffn = linear(gelu, f"{p}.output.dense", f"l{i}.ffn_out")
        x = layer_norm(node("Add", [ffn, x], f"l{i}.ffn_res"), f"{p}.output.LayerNorm", f"l{i}.out")

    # Mean pooling over attended tokens (count clamped at 1e-9), then L2 normalisation
    # (norm clamped at 1e-12), exactly as sentence-transformers' Pooling and Normalize.
    init("pool_axis", np.array([1], dtype=np.int64))
    init("last_axis", np.array([-1], dtype=np.int64))
    init("count_floor", np.array(1e-9, dtype=np.float32))
    init("norm_floor", np.array(1e-12, dtype=np.float32))
    mask3 = node("Unsqueeze", [mask_f, "last_axis"], "mask3")
    summed = node("ReduceSum", [node("Mul", [x, mask3], "masked_h"), "pool_axis"], "summed", keepdims=0)
    counts = node("Max", [node("ReduceSum", [mask3, "pool_axis"], "counts_raw", keepdims=0), "count_floor"], "counts")
    mean = node("Div", [summed, counts], "mean")
    norm = node("ReduceL2", [mean], "norm_raw", axes=[-1], keepdims=1)
    node("Div", [mean, node("Max", [norm, "norm_floor"], "norm")], "sentence_embedding")

    with blob:
        blob.flush()
        os.fsync(blob.fileno())
    graph = helper.make_graph(
        nodes, "sentence_embedding",
        [helper.make_tensor_value_info("word_emb", TensorProto.FLOAT, ["batch", "seq", hidden]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", hidden])],
        initializer=inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="mcp-memory-server")
    model.ir_version = 8  # what ONNX Runtime of the last few years reads for opset 17
    with (out / GRAPH).open("wb") as f:
        f.write(model.SerializeToString())
        f.flush()
        os.fsync(f.fileno())
    onnx.checker.check_model(str(out / GRAPH))  # the path form checks the external data too
    manifest = {
        "graph_sha256": hashlib.sha256((out / GRAPH).read_bytes()).hexdigest(),
        "weights_bytes": offset,
        "words_shape": list(table.shape),
    }
    (out / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")


def _intact(export: Path) -> bool:
    """The export is whole: its manifest (written last) matches the graph's hash and the
    sizes of the weights and the word table. A short weights file must never reach ONNX
    Runtime, which maps it, and reading a mapped page past the end of a file kills the
    process (SIGBUS)."""
    try:
        manifest = json.loads((export / MANIFEST).read_text(encoding="utf-8"))
        rows, hidden = manifest["words_shape"]
        return bool(
            (export / WEIGHTS).stat().st_size == manifest["weights_bytes"]
            and (export / WORDS).stat().st_size == rows * hidden * 4
            and hashlib.sha256((export / GRAPH).read_bytes()).hexdigest() == manifest["graph_sha256"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def export_dir(folder: Path, root: Path | None = None) -> Path:
    """Where the export of ``folder`` is cached: keyed by its path, its files' sizes and
    mtimes, the safetensors header and the graph version, so any change rebuilds it."""
    folder = folder.resolve()
    state = hashlib.sha256(f"graph={GRAPH_VERSION};opset={OPSET}".encode())
    for name in _FILES:
        file = folder / name
        if file.is_file():
            st = file.stat()
            state.update(f";{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    with (folder / "model.safetensors").open("rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        state.update(f.read(min(header_len, 1 << 20)))
    where = hashlib.sha256(str(folder).encode()).hexdigest()[:12]
    return (root or cache_dir()) / f"{where}-{state.hexdigest()[:16]}"


def _export(folder: Path, target: Path) -> None:
    """Build into a temp folder beside ``target`` and rename it into place, so a reader
    sees a whole export or none; a process that loses the race uses the winner's."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent))
    try:
        _build(folder, tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / GRAPH).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # Exports of older versions of the same folder are dead weight (90 MB each).
    for stale in target.parent.glob(target.name.split("-", 1)[0] + "-*"):
        if stale != target and not stale.name.endswith(".tmp"):
            shutil.rmtree(stale, ignore_errors=True)


class OnnxEncoder:
    """Encode texts into unit-length vectors with ONNX Runtime.

    Args:
        folder: a sentence-transformers folder this module supports (see module docstring).
        threads: ONNX Runtime intra-op threads (the ``embed_threads`` setting). A bulk
            encode also runs up to ``cores // threads`` runs at once (at most 4).
        cache_root: where exports are cached; default the user cache folder.

    Raises:
        UnsupportedModel: the folder cannot be reproduced exactly by this runtime.
        ImportError: onnxruntime or tokenizers is not installed.
    """

    def __init__(self, folder: str | Path, *, threads: int = 1, cache_root: Path | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        config, self.max_seq_length = _check_supported(self.folder)
        self.dim = int(config["hidden_size"])
        self.rebuilt = False
        self.export_dir = export_dir(self.folder, cache_root)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No arena and no memory pattern: either would keep the largest batch's activations
        # for the process's life (measured: 441 vs 269 MiB after 320 turns).
        options.enable_cpu_mem_arena = False
        options.enable_mem_pattern = False
        # Worker threads that spin while idle take CPU from everything else on a busy machine.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # ORT warnings go to stderr, which is the client's log
        self._session, self._words = self._open(ort, options)
        weakref.finalize(self, os.close, self._words)
        self._row_bytes = self.dim * 4
        self._vocab = os.fstat(self._words).st_size // self._row_bytes
        tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        # tokenizer.json of MiniLM ships "truncate at 128, pad to 128"; sentence-transformers
        # truncates at max_seq_length (256) and pads to the longest text of the batch.
        tokenizer.enable_truncation(max_length=self.max_seq_length)
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        self._lock = threading.Lock()
        self.bulk_workers = max(1, min(_MAX_BULK_WORKERS, available_cores()) // max(1, threads))

    def _open(self, ort: Any, options: Any) -> tuple[Any, int]:
        """The session and an open descriptor of its word table."""
        providers = ["CPUExecutionProvider"]

        def load(export: Path) -> tuple[Any, int]:
            session = ort.InferenceSession(str(export / GRAPH), options, providers=providers)
            return session, os.open(export / WORDS, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))

        if _intact(self.export_dir):
            try:
                return load(self.export_dir)
            except Exception:  # an export ONNX Runtime rejects: build it again below
                pass
        shutil.rmtree(self.export_dir, ignore_errors=True)
        self.rebuilt = True
        try:
            _export(self.folder, self.export_dir)
        except OSError:
            # An unwritable cache costs one export per process, nothing more. The session
            # has mapped the weights and the word table is open by the time this returns;
            # on POSIX both outlive the files' names, so the temp folder can go at once.
            with tempfile.TemporaryDirectory(prefix="mcp-memory-onnx-", ignore_cleanup_errors=True) as tmp:
                _build(self.folder, Path(tmp))
                return load(Path(tmp))
        return load(self.export_dir)

    def _word_vectors(self, ids: np.ndarray) -> np.ndarray:
        """float32 [*ids.shape, dim]: the word-table rows of ``ids``, each distinct row read once."""
        import numpy as np

        distinct, where = np.unique(ids, return_inverse=True)
        if len(distinct) and not 0 <= int(distinct[0]) <= int(distinct[-1]) < self._vocab:
            raise ValueError(
                f"token id {int(distinct[-1])} is outside the word table of {self._vocab} rows:"
                f" {self.folder}'s tokenizer.json and its weights disagree"
            )
        size = self._row_bytes
        raw = b"".join(os.pread(self._words, size, int(token) * size) for token in distinct)
        if len(raw) != len(distinct) * size:
            raise OSError(f"the word table {self.export_dir / WORDS} is shorter than its manifest says")
        return np.frombuffer(raw, dtype=np.float32).reshape(len(distinct), self.dim)[where.reshape(ids.shape)]

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        """float32 [len(texts), dim], unit rows, in input order."""
        import numpy as np

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        with self._lock:  # a tokenizer used from two threads at once fails ("Already borrowed")
            encodings = self._tokenizer.encode_batch(texts, add_special_tokens=True)
        # Longest first, like sentence-transformers, so each run pads little.
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        # With several workers, runs small enough that each gets several and none waits
        # long for the last (a 200-turn backlog is only ~4 runs of the full size).
        total = sum(len(e.ids) for e in encodings)
        run_tokens = (
            _MAX_RUN_TOKENS
            if self.bulk_workers == 1
            else max(256, min(_MAX_RUN_TOKENS, total // (4 * self.bulk_workers)))
        )
        runs: list[list[int]] = []
        start = 0
        while start < len(order):
            longest = len(encodings[order[start]].ids)
            size = max(1, min(batch_size, run_tokens // longest, _MAX_RUN_SEQ2 // (longest * longest)))
            runs.append(order[start : start + size])
            start += size

        def run(chunk: list[int]) -> None:
            longest = len(encodings[chunk[0]].ids)
            ids = np.zeros((len(chunk), longest), dtype=np.int64)
            mask = np.zeros((len(chunk), longest), dtype=np.int64)
            for row, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            feed = {"word_emb": self._word_vectors(ids), "attention_mask": mask}
            (vectors,) = self._session.run(["sentence_embedding"], feed)  # ONNX Runtime allows concurrent runs
            out[chunk] = vectors

        workers = min(self.bulk_workers, len(runs))
        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embed-run") as pool:
                list(pool.map(run, runs))
        else:
            for chunk in runs:
                run(chunk)
        if len(runs) > 1:
            _release_freed_memory()
        return out


def _release_freed_memory() -> None:
    """Hand the heap's freed pages back to the OS after a bulk encode (glibc only).

    The activations of a run are freed, but glibc keeps the pages for reuse, so a server
    that once embedded a backlog would keep its peak RSS for good; ``malloc_trim`` returns
    them (measured: RSS back to within a few MiB of the loaded model's)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL(None).malloc_trim(0)
