"""Benchmark the experiment lab: novelty-check accuracy on the labelled dev set, and latency at scale.

Accuracy (tests/data/lab_devset.json): the shipped matcher (embedding cosine + signals) against
the same without signals, the no-model fallback (canonical words + signals) and a purely
lexical baseline (raw word Jaccard, thresholds calibrated on the same set). "tuned" is the
set the rules and weights were tuned on; "held-out" probes were written afterwards.

Latency: ``novelty_check`` p50/p99 with a warm model at each ledger size, plus one
``experiment_log`` p50 at the largest size.

    python bench/bench_lab.py                       # accuracy + latency at 1k and 10k runs
    python bench/bench_lab.py --sizes 1000          # smaller
    python bench/bench_lab.py --calibrate           # rerun the weight search (+ 2-fold cross-validation)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mcp_memory_server import MemoryStore  # noqa: E402
from mcp_memory_server.core.lab import calibration as cal  # noqa: E402
from mcp_memory_server.core.lab.novelty import EMBEDDING_WEIGHTS, LEXICAL_WEIGHTS  # noqa: E402
from mcp_memory_server.embeddings import Embedder  # noqa: E402

DEVSET = ROOT / "tests" / "data" / "lab_devset.json"

KNOBS = [
    ("matrix lr", [0.01, 0.02, 0.025, 0.03, 0.035, 0.04, 0.05, 0.06, 0.08]),
    ("embedding lr", [0.2, 0.3, 0.4, 0.6, 0.8, 0.9, 1.2]),
    ("warmup ratio", [0.0, 0.01, 0.02, 0.05, 0.1, 0.2]),
    ("warmdown ratio", [0.2, 0.3, 0.4, 0.5, 0.6, 0.7]),
    ("depth", [6, 8, 9, 10, 11, 12, 14, 16]),
    ("model width", [512, 640, 768, 896, 1024]),
    ("weight decay", [0.0, 0.01, 0.05, 0.1, 0.2]),
    ("muon momentum", [0.85, 0.9, 0.95, 0.97, 0.99]),
    ("total batch size", ["128k", "256k", "384k", "512k", "1M"]),
    ("sequence length", [512, 1024, 2048, 4096]),
    ("rope base", [10000, 20000, 50000, 100000, 500000]),
    ("logit softcap", [10, 15, 20, 30, 50]),
    ("dropout", [0.0, 0.05, 0.1, 0.2]),
    ("ema decay", [0.99, 0.995, 0.999, 0.9999]),
]
EXTRAS = ["", "", " with seed {s}", " on branch {s}", " (retry {s})", " and longer eval", " plus grad clip 1.0"]
IDEAS = [
    "swap relu squared for gelu",
    "swiglu mlp",
    "add qk norm",
    "untie embeddings",
    "value embeddings on every layer",
    "sliding window attention 1024",
    "zero-init output projections",
    "U-net skip connections",
    "parallel attention and mlp blocks",
    "document masking",
    "multi-token prediction head",
]


def synthetic_tsv(n: int, seed: int = 0) -> str:
    """``n`` plausible, mostly distinct runs in results.tsv form."""
    rng = random.Random(seed)
    lines = ["commit\tval_bpb\tmemory_gb\tstatus\tdescription"]
    best = 1.0
    for i in range(n):
        if rng.random() < 0.2:
            description = rng.choice(IDEAS)
        else:
            knob, values = rng.choice(KNOBS)
            description = f"{knob} {rng.choice(values)}"
        description += rng.choice(EXTRAS).format(s=rng.randint(0, 999))
        if rng.random() < 0.05:
            lines.append(f"c{i:07x}\t0.000000\t0.0\tcrash\t{description}")
            continue
        value = best + rng.gauss(0.002, 0.004)
        status = "keep" if value < best else "discard"
        best = min(best, value)
        lines.append(f"c{i:07x}\t{value:.6f}\t{rng.uniform(40, 60):.1f}\t{status}\t{description}")
    return "\n".join(lines) + "\n"


def probes(count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        if rng.random() < 0.3:
            out.append(rng.choice(IDEAS))
        else:
            knob, values = rng.choice(KNOBS)
            out.append(f"{rng.choice(['set', 'try', 'use'])} {knob} {rng.choice(values)}")
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def accuracy(embedder: Embedder, calibrate: bool) -> dict[str, Any]:
    devset = cal.load_devset(DEVSET)
    holdout = cal.DevSet(devset.runs, json.loads(DEVSET.read_text())["holdout"])
    embed = cal.embedding_base(embedder.encode)
    methods: dict[str, Any] = {}

    def row(name: str, base: Any, signals: bool, weights: Any | None) -> None:
        table = cal.pair_table(devset, base, use_signals=signals)
        held = cal.pair_table(holdout, base, use_signals=signals)
        if weights is None:  # a baseline: give it the thresholds that suit it best on the tuning set
            weights, _ = cal.calibrate(table, use_signals=False)
        tuned, unseen = cal.evaluate(table, weights), cal.evaluate(held, weights)
        methods[name] = {
            "tuned": round(tuned.accuracy, 4),
            "held_out": round(unseen.accuracy, 4),
            "by_kind": {k: round(v, 3) for k, v in tuned.by_kind.items()},
            "thresholds": {"match": weights.match, "duplicate": weights.duplicate},
        }

    row("embedding + signals (shipped)", embed, True, EMBEDDING_WEIGHTS)
    row("embedding only", embed, False, None)
    row("lexical + signals (no-model fallback)", cal.lexical_base, True, LEXICAL_WEIGHTS)
    row("raw word Jaccard (lexical baseline)", cal.raw_jaccard_base, False, None)
    result: dict[str, Any] = {
        "runs": len(devset.runs), "probes": len(devset.probes), "held_out_probes": len(holdout.probes),
        "methods": methods,
    }  # fmt: skip
    if calibrate:
        table = cal.pair_table(devset, embed)
        started = time.perf_counter()
        weights, best = cal.calibrate(table)
        result["calibrated"] = {"weights": dataclasses.asdict(weights),
                                "accuracy": round(best, 4), "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
        folds = []
        indices = list(range(len(devset.probes)))
        for fold in (0, 1):
            train = [i for i in indices if i % 2 == fold]
            test = [i for i in indices if i % 2 != fold]
            fitted, _ = cal.calibrate(table.select(train))
            folds.append(cal.evaluate(table.select(test), fitted).accuracy)
        result["cross_validated"] = round(sum(folds) / len(folds), 4)
    return result


def latency(sizes: list[int], checks: int) -> list[dict[str, Any]]:
    out = []
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp, MemoryStore.open(tmp) as store:
            lab = store.lab
            started = time.perf_counter()
            lab.import_tsv(synthetic_tsv(size))
            imported = time.perf_counter() - started
            store.embedder.wait()
            started = time.perf_counter()
            lab.embed_missing()
            embedded = time.perf_counter() - started
            queries = probes(checks + 10)
            for text in queries[:10]:  # warm-up: model, caches, matrix
                lab.check(text)
            timings, encode, overhead = [], [], []
            classes: dict[str, int] = {}
            for text in queries[10:]:
                t = time.perf_counter()
                result = lab.check(text)
                checked = (time.perf_counter() - t) * 1000
                # Encode the same text right after, so machine load affects both alike.
                t = time.perf_counter()
                store.embedder.encode([text])
                encoded = (time.perf_counter() - t) * 1000
                timings.append(checked)
                encode.append(encoded)
                overhead.append(checked - encoded)
                classes[result.classification] = classes.get(result.classification, 0) + 1
            entry: dict[str, Any] = {
                "runs": size,
                "import_s": round(imported, 2),
                "embed_ledger_s": round(embedded, 2),
                "check_p50_ms": round(statistics.median(timings), 2),
                "check_p99_ms": round(percentile(timings, 0.99), 2),
                "encode_one_p50_ms": round(statistics.median(encode), 2),
                "check_minus_encode_p50_ms": round(statistics.median(overhead), 2),
                "classifications": classes,
            }
            if size == max(sizes):
                logs = []
                for i, text in enumerate(queries[10:40]):
                    t = time.perf_counter()
                    lab.log(text, "discard", {"val_bpb": 1.0 + i / 1e4})
                    logs.append((time.perf_counter() - t) * 1000)
                entry["log_p50_ms"] = round(statistics.median(logs), 2)
                t = time.perf_counter()
                lab.report(since_hours=16)
                entry["report_s"] = round(time.perf_counter() - t, 2)
            out.append(entry)
        with tempfile.TemporaryDirectory() as tmp, MemoryStore.open(tmp, embed_model=str(Path(tmp) / "none")) as store:
            store.lab.import_tsv(synthetic_tsv(size))
            timings = []
            for text in probes(checks, seed=2):
                t = time.perf_counter()
                store.lab.check(text)
                timings.append((time.perf_counter() - t) * 1000)
            out[-1]["lexical_check_p50_ms"] = round(statistics.median(timings), 2)
    return out


# Descriptions an attack found slow to read (stop 30), each against the floor of a plain line of the same length.
HOSTILE = {
    "a run of 4,000 spaces": "x" + " " * 4000 + "x",
    "4,000 no-break spaces and line breaks": "x" + "\u00a0\n" * 2000 + "x",
    "400 'init' and 400 '99^99'": "init " * 400 + "99^99 " * 400,
    "800 'from'": "from " * 800,
    "500 'replace'": "replace " * 500,
    "500 config names": " ".join(f"q5x{i}_z=1" for i in range(500)),
    "800 arrows": "a -> " * 800,
    "2,000 open parentheses": "(" * 2000,
}


def hostile_reading(repeat: int = 5) -> dict[str, Any]:
    """Seconds to read each hostile description, and the ratio to a plain ledger line cut to the same length."""
    from mcp_memory_server.core.lab.novelty import analyze, config_names

    def seconds(text: str) -> float:
        best = math.inf
        for i in range(repeat):
            probe = f"{text} {i}"  # a new text each time: analyze caches its readings
            start = time.perf_counter()
            analyze(probe)
            config_names(probe)
            best = min(best, time.perf_counter() - start)
        return best

    analyze("warm the rules up")
    plain = ("raise MATRIX_LR from 0.04 to 0.05 and lower the warmdown ratio to 0.3, keeping depth 8; " * 60)[:4100]
    floor = seconds(plain)
    cases = {name: seconds(text) for name, text in HOSTILE.items()}
    return {
        "plain_line_ms": round(floor * 1000, 2),
        "cases": {name: {"ms": round(t * 1000, 2), "ratio": round(t / floor, 2)} for name, t in cases.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000", help="ledger sizes for the latency runs")
    parser.add_argument("--checks", type=int, default=200, help="timed novelty checks per size")
    parser.add_argument("--calibrate", action="store_true", help="rerun the weight search and 2-fold CV")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--only-hostile", action="store_true", help="only time reading the hostile descriptions")
    args = parser.parse_args()
    if args.only_hostile:
        reading = hostile_reading()
        print(json.dumps(reading, indent=2))
        print(f"plain 4 KB line (read to its first 1 KB): {reading['plain_line_ms']:.2f} ms")
        for name, case in reading["cases"].items():
            print(f"{name:40} {case['ms']:8.2f} ms  {case['ratio']:6.2f}x the plain line")
        return
    embedder = Embedder()
    embedder.wait()
    result: dict[str, Any] = {
        "machine": f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}",
        "accuracy": accuracy(embedder, args.calibrate),
    }
    if not args.skip_latency:
        result["latency"] = latency([int(s) for s in args.sizes.split(",") if s], args.checks)
    print(json.dumps(result, indent=2))
    print()
    print(f"{'method':42} {'tuned':>7} {'held-out':>9}")
    for name, m in result["accuracy"]["methods"].items():
        print(f"{name:42} {m['tuned']:7.1%} {m['held_out']:9.1%}")
    if "cross_validated" in result["accuracy"]:
        print(f"{'embedding + signals, 2-fold cross-validated':42} {result['accuracy']['cross_validated']:7.1%}")
    for entry in result.get("latency", []):
        print(
            f"novelty_check at {entry['runs']:>6} runs: p50 {entry['check_p50_ms']:6.2f} ms, "
            f"p99 {entry['check_p99_ms']:6.2f} ms (encode alone {entry['encode_one_p50_ms']:.2f} ms, "
            f"the rest {entry['check_minus_encode_p50_ms']:.2f} ms; "
            f"no-model fallback p50 {entry['lexical_check_p50_ms']:.2f} ms)"
            + (f"; experiment_log p50 {entry['log_p50_ms']:.1f} ms" if "log_p50_ms" in entry else "")
            + (f"; experiment_report {entry['report_s']:.2f} s" if "report_s" in entry else "")
        )


if __name__ == "__main__":
    main()
