"""LoCoMo retrieval: recall@5 and @10 of evidence turns, per category, for lexical, semantic and hybrid.

    python bench/bench_locomo.py                     # 3 conversations, about 2 minutes on a quiet machine
    python bench/bench_locomo.py --conversations 10  # the whole set (5,882 turns, 1,986 questions)
    python bench/bench_locomo.py --conversations 10 --units turn --variants --modes hybrid
                                                     # + every fusion variant of fusion_lab.py

Protocol (``../shared/data/README.md``): for each conversation a fresh store; one event per
unit, recorded in conversation order through the public API; for each question a search of
that store; recall = share of the question's distinct valid evidence turns among the top k
(capped at 1), averaged over the questions that have evidence. Two units:

- ``turn``: each dialogue turn as ``"[8 May 2023] Caroline: …"``;
- ``observation``: each observation sentence (which points at its turn).

Stores are kept in ``--work`` (default: a folder in the temp dir) so a second run reuses
their vectors; ``--fresh`` starts over. Prints a table (stderr) and the JSON (stdout), and
writes ``bench/results/locomo-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from common import add_database_url_option, machine, open_bench_store, print_table, write_results

from mcp_memory_server import MemoryStore

# ../shared/data beside the checkout (a worktree may sit one folder deeper: look upwards).
DATA = next(
    (
        p / "shared" / "data" / "locomo"
        for p in Path(__file__).resolve().parents
        if (p / "shared" / "data" / "locomo").is_dir()
    ),
    Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo",
)
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
MODES = ("lexical", "semantic", "hybrid")
KS = (5, 10)


def short_date(stamp: str) -> str:
    """ "1:56 pm on 8 May, 2023" → "8 May 2023"."""
    match = re.search(r"(\d+) (\w+),? (\d{4})", stamp)
    return f"{match.group(1)} {match.group(2)} {match.group(3)}" if match else stamp


def load(path: Path, captions: bool) -> dict[str, Any]:
    raw = json.loads(path.read_text())
    turns: list[tuple[tuple[str, ...], str]] = []  # (dia ids, text)
    observations: list[tuple[tuple[str, ...], str]] = []
    session = 1
    while f"session_{session}_date_time" in raw:
        date = short_date(raw[f"session_{session}_date_time"])
        for turn in raw.get(f"session_{session}") or []:
            text = f"[{date}] {turn['speaker']}: {turn['text']}"
            if captions and turn.get("blip_caption"):
                text += f" [shares {turn['blip_caption']}]"
            turns.append(((turn["dia_id"],), text))
        for sentences in (raw.get(f"session_{session}_observation") or {}).values():
            # An observation points at one turn, or (ten of them) at a list of turns.
            observations += [(tuple(d) if isinstance(d, list) else (d,), sentence) for sentence, d in sentences]
        session += 1
    valid = {dia_ids[0] for dia_ids, _ in turns}
    questions = []
    for qa in raw["qa"]:
        evidence = {part for entry in qa.get("evidence", []) for part in re.split(r"[;,\s]+", str(entry))} & valid
        if evidence:
            questions.append({"question": qa["question"], "evidence": evidence, "category": qa["category"]})
    return {"turn": turns, "observation": observations, "questions": questions}


def open_store(
    folder: Path, units: list[tuple[tuple[str, ...], str]], threads: int
) -> tuple[MemoryStore, dict[str, tuple[str, ...]], float]:
    """A store holding one event per unit (reused when ``folder`` already has it), and event id → dia ids."""
    store = open_bench_store(folder, sync="normal", embed_threads=threads)
    if store.events.count() != len(units):
        store.close()
        store = open_bench_store(folder, fresh=True, sync="normal", embed_threads=threads)
        store.events.record_many([{"kind": "memory", "text": text} for _, text in units])
    event_ids = [row[0] for row in store.db.query("SELECT event_id FROM events ORDER BY seq")]
    dia_of = {event_id: dia_ids for event_id, (dia_ids, _) in zip(event_ids, units, strict=True)}
    started = time.perf_counter()
    store.search.refresh()
    return store, dia_of, time.perf_counter() - started


def evaluate(conversations: list[Path], unit: str, args: argparse.Namespace) -> dict[str, Any]:
    modes = [m for m in args.modes.split(",") if m]
    recalls: dict[str, dict[str, list[float]]] = {m: defaultdict(list) for m in modes}
    variants: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    embed_seconds = 0.0
    units_total = 0
    loaded = []
    for path in conversations:
        data = load(path, args.captions)
        loaded.append(data)
        units = data[unit]
        units_total += len(units)
        store, dia_of, seconds = open_store(args.work / f"{unit}-{path.stem}", units, args.threads)
        embed_seconds += seconds
        try:
            if args.variants:
                import fusion_lab

                dia_of_doc = {
                    doc: dia_of[item] for doc, item in store.db.query("SELECT doc_id, item_id FROM search_docs")
                }
                questions = [qa["question"] for qa in data["questions"]]
                found = fusion_lab.pools(
                    args.work / f"pools-{unit}-{path.stem}.pkl",
                    lambda s=store, qs=questions: [fusion_lab.candidates(s, q) for q in qs],  # type: ignore[misc]
                )
                for qa, pool in zip(data["questions"], found, strict=True):
                    for name, variant in fusion_lab.VARIANTS.items():
                        ranked_docs = [dia_of_doc[doc] for doc in variant(pool)]
                        for k in KS:
                            retrieved = {dia_id for dia_ids in ranked_docs[:k] for dia_id in dia_ids}
                            variants[name][f"all@{k}"].append(
                                min(1.0, len(retrieved & qa["evidence"]) / len(qa["evidence"]))
                            )
            for qa in data["questions"]:
                for mode in modes:
                    page = store.events.search(qa["question"], mode=mode, limit=max(KS))
                    ranked = [dia_of[hit.event.event_id] for hit in page.hits]
                    for k in KS:
                        retrieved = {dia_id for dia_ids in ranked[:k] for dia_id in dia_ids}
                        score = min(1.0, len(retrieved & qa["evidence"]) / len(qa["evidence"]))
                        recalls[mode][f"all@{k}"].append(score)
                        recalls[mode][f"{CATEGORIES[qa['category']]}@{k}"].append(score)
        finally:
            store.close()
    result: dict[str, Any] = {"units": units_total, "questions": sum(len(d["questions"]) for d in loaded),
                              "embed_seconds": round(embed_seconds, 1)}  # fmt: skip
    for mode in modes:
        result[mode] = {key: round(100 * sum(v) / len(v), 1) for key, v in sorted(recalls[mode].items())}
    if variants:
        result["variants"] = {
            name: {key: round(100 * sum(v) / len(v), 1) for key, v in sorted(r.items())} for name, r in variants.items()
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=3, help="how many of the 10 conversations (default 3)")
    parser.add_argument("--units", default="turn,observation", help="turn, observation or both")
    parser.add_argument("--captions", action="store_true", help="append image captions to turns")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for embedding")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bench-locomo")
    parser.add_argument("--fresh", action="store_true", help="delete cached stores first")
    parser.add_argument("--variants", action="store_true", help="also rank with every fusion variant of fusion_lab.py")
    parser.add_argument("--modes", default=",".join(MODES), help="the shipped modes to measure (default all three)")
    add_database_url_option(parser)
    args = parser.parse_args()
    if args.database_url:  # open_bench_store puts each corpus in a schema of its own on that database
        os.environ["MCP_MEMORY_DATABASE_URL"] = args.database_url
    if args.fresh and args.work.exists():
        shutil.rmtree(args.work)
    args.work.mkdir(parents=True, exist_ok=True)
    conversations = sorted(DATA.glob("*.json"))[: args.conversations]
    results: dict[str, Any] = {"machine": machine(), "conversations": len(conversations),
                               "captions": args.captions}  # fmt: skip
    started = time.perf_counter()
    for unit in args.units.split(","):
        results[unit] = evaluate(conversations, unit, args)
        rows = []
        for mode in [m for m in MODES if m in results[unit]]:
            r = results[unit][mode]
            rows.append([mode, r["all@5"], r["all@10"], *(r[f"{c}@5"] for c in CATEGORIES.values())])
        print_table(
            f"LoCoMo {unit}s: recall % ({results[unit]['questions']} questions, {results[unit]['units']} units)",
            ["mode", "R@5", "R@10", *(f"{c} R@5" for c in CATEGORIES.values())],
            rows,
        )
        if args.variants:
            print_table(
                f"LoCoMo {unit}s: fusion variants (bench/fusion_lab.py), recall %",
                ["variant", "R@5", "R@10"],
                [[name, r["all@5"], r["all@10"]] for name, r in results[unit]["variants"].items()],
            )
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["machine"]["load_average_end"] = machine()["load_average"]
    path = write_results("locomo", results)
    print(json.dumps(results, indent=2))
    print(f"\nwritten to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
