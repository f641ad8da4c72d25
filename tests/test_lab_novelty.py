"""Novelty matching: paraphrases match, other values are variants, different ideas stay apart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_memory_server import MemoryStore
from mcp_memory_server.core.lab import NoveltyCheck
from mcp_memory_server.core.lab import calibration as cal
from mcp_memory_server.core.lab.novelty import EMBEDDING_WEIGHTS, LEXICAL_WEIGHTS, analyze, config_names, signals
from mcp_memory_server.embeddings import Embedder

DEVSET = Path(__file__).parent / "data" / "lab_devset.json"


@pytest.fixture
def store(data_dir: Path, embedding_model: Embedder) -> Iterator[MemoryStore]:
    """A fresh store whose embedder is ready at once: the session already loaded the model."""
    with MemoryStore.open(data_dir) as opened:
        yield opened


def _setting(text: str, knob: str) -> tuple[list[float], str | None, bool, str | None]:
    s = analyze(text).settings[knob]
    return sorted(s.numbers), s.option, s.off, s.direction


@pytest.mark.parametrize(
    ("text", "knob", "setting"),
    [
        ("lr 0.04", "learning_rate", ([0.04], None, False, None)),
        ("raise the learning rate to 0.04", "learning_rate", ([0.04], None, False, "up")),
        ("lower matrix learning rate from 0.04 to 0.03", "learning_rate", ([0.03], None, False, "down")),
        ("muon momentum 0.95 -> 0.97", "muon_momentum", ([0.97], None, False, None)),
        ("embedding lr 0.9 (was 0.6)", "embedding_lr", ([0.9], None, False, None)),
        ("rope theta 1e5", "rope_base", ([100000.0], None, False, None)),
        ("rope base 100k", "rope_base", ([100000.0], None, False, None)),
        ("add 10% dropout", "dropout", ([0.1], None, False, None)),
        ("use GELU activation instead of ReLU²", "activation", ([], "gelu", False, None)),
        ("replace RMSNorm with LayerNorm", "norm_type", ([], "layernorm", False, None)),
        ("nesterov off in muon", "nesterov", ([], None, True, None)),
        ("n_layer=10", "depth", ([10.0], None, False, None)),
        ("make the model 12 layers deep", "depth", ([12.0], None, False, None)),
        ("d_model=1024", "width", ([1024.0], None, False, None)),
    ],
)
def test_descriptions_are_read_into_knob_settings(
    text: str, knob: str, setting: tuple[list[float], str | None, bool, str | None]
) -> None:
    """Abbreviations, synonyms, units and old values ("from 0.04 to", "(was 0.6)") are normalised away."""
    assert _setting(text, knob) == setting


@pytest.mark.parametrize(
    ("a", "b", "conflict", "agree", "shared_knobs"),
    [
        ("raise the learning rate to 0.04", "lr 0.04", False, True, True),
        ("lr 0.04", "lr 0.05", True, False, True),
        ("increase lr", "decrease the learning rate", True, False, True),
        ("swap relu squared for gelu", "swap relu squared for silu", True, False, True),
        ("add value embeddings", "remove value embeddings", True, False, True),
        ("warmup ratio 0.1", "warmdown ratio 0.1", False, False, False),
        ("increase depth to 12", "increase width to 12", False, False, False),
        ("ema decay 0.999", "weight decay 0.999", False, False, False),
    ],
)
def test_signals_separate_same_setting_other_value_and_other_knob(
    a: str, b: str, conflict: bool, agree: bool, shared_knobs: bool
) -> None:
    """Same knob and value agree; same knob, other value conflicts; warmup/warmdown, depth/width share no knob."""
    pair = signals(analyze(a), analyze(b))
    assert (pair.conflict, pair.agree, pair.knob_jaccard > 0) == (conflict, agree, shared_knobs)


def _ledger(store: MemoryStore, runs: list[tuple[str, str, float | None]]) -> list[str]:
    ids = []
    for description, status, value in runs:
        metrics = {"val_bpb": value} if value is not None else None
        ids.append(store.lab.log(description, status, metrics).run_id)
    return ids


def _assert_no_repeat(result: NoveltyCheck) -> None:
    """No match is a duplicate and the check does not call the idea a repeat."""
    assert all(m.relation != "duplicate" for m in result.top_matches), result.top_matches
    assert result.classification != "duplicate_run"


def _assert_repeats(result: NoveltyCheck, run_id: str) -> None:
    """The check calls the idea a repeat, of ``run_id`` first."""
    assert result.classification == "duplicate_run", result.top_matches
    assert result.top_matches[0].run_id == run_id


def test_a_paraphrase_of_a_run_is_a_duplicate(store: MemoryStore) -> None:
    """'raise the learning rate to 0.04' and 'lr 0.04' are the same run (SPEC §7's example)."""
    [run_id] = _ledger(store, [("raise the learning rate to 0.04", "keep", 0.99)])
    result = store.lab.check("lr 0.04", mode="explore")
    assert result.classification == "duplicate_run"
    assert result.policy.decision == "block"
    assert result.similarity == "embedding"
    assert result.top_matches[0].run_id == run_id and result.top_matches[0].relation == "duplicate"


def test_the_same_knob_with_another_value_is_a_variant_not_a_duplicate(store: MemoryStore) -> None:
    """lr 0.05 after a kept lr 0.04 run is a known success to build on, with the difference named."""
    _ledger(store, [("raise the learning rate to 0.04", "keep", 0.99)])
    result = store.lab.check("lr 0.05", mode="exploit")
    assert result.classification == "known_success"
    assert result.policy.decision == "allow"
    match = result.top_matches[0]
    assert match.relation == "variant" and match.category == "known_success"
    assert match.differences == ["learning_rate: 0.05 vs 0.04"]


def test_a_run_combined_with_another_change_is_a_variant_not_a_duplicate(store: MemoryStore) -> None:
    """'lr 0.03 plus warmup 0.1' builds on a logged 'lr 0.03' but does not repeat it."""
    _ledger(store, [("lower the matrix learning rate to 0.03", "keep", 0.99)])
    result = store.lab.check("lower the matrix learning rate to 0.03 and add warmup ratio 0.1", mode="exploit")
    assert result.top_matches[0].relation == "variant"
    assert (result.classification, result.policy.decision) == ("known_success", "allow")


def test_a_variant_of_a_kept_run_in_the_same_family_is_an_incremental_followup(store: MemoryStore) -> None:
    """Giving the family of a kept run turns a known success into an incremental follow-up."""
    store.lab.log("warmdown ratio 0.5", "keep", {"val_bpb": 0.99}, family="schedule")
    result = store.lab.check("warmdown ratio 0.4", family="schedule", mode="explore")
    assert result.classification == "incremental_followup"
    assert result.policy.decision == "block"


def test_a_variant_of_a_discarded_run_is_a_repeat_failure(store: MemoryStore) -> None:
    """A close variant of a failed idea is blocked in every mode until the idea changes."""
    _ledger(store, [("depth 12", "discard", 1.01)])
    for mode in ("explore", "exploit", "replicate"):
        result = store.lab.check("depth 13", mode=mode)  # type: ignore[arg-type]
        assert (result.classification, result.policy.decision) == ("repeat_failure", "block")


@pytest.mark.parametrize(
    ("prior", "probe"),
    [
        ("add linear warmup over the first 5% of steps", "add linear warmdown over the last 5% of steps"),
        ("increase depth from 8 to 10", "increase width from 8 to 10"),
        ("zero-init the output projections", "load balancing loss for the moe router"),
    ],
)
def test_different_ideas_that_look_alike_are_not_matched(store: MemoryStore, prior: str, probe: str) -> None:
    """warmup ≠ warmdown and depth ≠ width even when every other word is the same."""
    _ledger(store, [(prior, "keep", 0.99)])
    result = store.lab.check(probe, mode="explore")
    assert result.classification == "novel", result.top_matches
    assert result.policy.decision == "allow"


def test_threshold_and_limit_shape_the_answer(store: MemoryStore) -> None:
    """A threshold of 1 matches nothing; a low one matches more; limit caps top_matches."""
    _ledger(store, [("lr 0.04", "keep", 0.99), ("lr 0.05", "discard", 1.0), ("lr 0.06", "discard", 1.0)])
    assert store.lab.check("lr 0.07", threshold=1.0).classification == "novel"
    loose = store.lab.check("lr 0.07", threshold=0.3, limit=2)
    assert loose.effective_threshold == 0.3
    assert loose.counts["matches"] == 3 and len(loose.top_matches) == 2
    default = store.lab.check("lr 0.07")
    assert default.effective_threshold == EMBEDDING_WEIGHTS.match


def test_counts_tally_every_match_by_category(store: MemoryStore) -> None:
    """counts reports runs compared, matches, and matches per category."""
    _ledger(store, [("lr 0.04", "keep", 0.99), ("lr 0.05", "discard", 1.0), ("depth 12", "keep", 0.98)])
    result = store.lab.check("lr 0.04")
    assert result.counts == {
        "runs": 3, "matches": 2, "duplicate_run": 1, "repeat_failure": 1, "incremental_followup": 0,
        "known_success": 0,
    }  # fmt: skip


def test_an_empty_ledger_makes_every_idea_novel(store: MemoryStore) -> None:
    """With nothing logged there is nothing to repeat."""
    result = store.lab.check("lr 0.04", mode="replicate")
    assert (result.classification, result.policy.decision, result.top_matches) == ("novel", "block", [])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"description": ""}, "description must not be empty"),
        ({"description": "lr 0.04", "mode": "wander"}, "mode='wander' is not valid"),
        ({"description": "lr 0.04", "threshold": 1.5}, "threshold must be a number from 0 to 1"),
        ({"description": "lr 0.04", "limit": 0}, "limit must be a positive integer"),
    ],
)
def test_bad_check_arguments_are_refused_with_the_fix(store: MemoryStore, kwargs: dict, message: str) -> None:
    """Malformed checks fail with a message naming the parameter."""
    from mcp_memory_server import InvalidInput

    with pytest.raises(InvalidInput, match=message):
        store.lab.check(**kwargs)


def test_without_a_model_the_check_falls_back_to_lexical_and_says_so(data_dir: Path) -> None:
    """If the embedding model cannot load, matching still works on canonical words, with a warning."""
    with MemoryStore.open(data_dir, embed_model=str(data_dir / "no-such-model")) as store:
        store.lab.log("raise the learning rate to 0.04", "keep", {"val_bpb": 0.99})
        result = store.lab.check("lr 0.04")
        assert result.similarity == "lexical"
        assert result.warning and "lexical" in result.warning
        assert result.classification == "duplicate_run"
        assert result.effective_threshold == LEXICAL_WEIGHTS.match
        assert store.lab.check("increase width to 768").classification == "novel"


_TABLES: dict[str, tuple[cal.DevSet, cal.DevSet, cal.PairTable, cal.PairTable]] = {}


def _devset_tables(model: Embedder) -> tuple[cal.DevSet, cal.DevSet, cal.PairTable, cal.PairTable]:
    """The dev set and held-out probes, with every pair's cosine and signals (built once per session)."""
    if "tables" not in _TABLES:
        devset = cal.load_devset(DEVSET)
        holdout = cal.DevSet(devset.runs, json.loads(DEVSET.read_text())["holdout"])
        base = cal.embedding_base(model.encode)
        _TABLES["tables"] = (devset, holdout, cal.pair_table(devset, base), cal.pair_table(holdout, base))
    return _TABLES["tables"]


def test_the_development_set_is_big_enough_and_covers_every_kind() -> None:
    """At least 150 probes against at least 80 runs: repeats, paraphrases, variants, novel ideas, hard negatives."""
    devset = cal.load_devset(DEVSET)
    assert len(devset.runs) >= 80 and len(devset.probes) >= 150
    kinds = {p["kind"] for p in devset.probes}
    assert kinds == {"exact", "paraphrase", "numeric_variant", "novel", "hard_negative"}


def test_the_calibrated_matcher_is_accurate_on_the_development_set_and_beats_the_lexical_baseline(
    embedding_model: Embedder,
) -> None:
    """Shipped weights: ≥ 95% on the tuning probes, ≥ 80% on held-out probes, far above raw word overlap."""
    devset, _, table, held = _devset_tables(embedding_model)
    tuned = cal.evaluate(table, EMBEDDING_WEIGHTS)
    unseen = cal.evaluate(held, EMBEDDING_WEIGHTS)
    raw = cal.pair_table(devset, cal.raw_jaccard_base, use_signals=False)
    _, baseline = cal.calibrate(raw, use_signals=False)
    assert tuned.accuracy >= 0.95
    assert unseen.accuracy >= 0.80
    assert tuned.accuracy - baseline >= 0.25
    assert all(score >= 0.85 for score in tuned.by_kind.values()), tuned.by_kind


def test_calibration_finds_the_shipped_weights_accuracy_when_they_are_in_the_grid(embedding_model: Embedder) -> None:
    """The search over weights and thresholds reaches at least the shipped accuracy."""
    _, _, table, _ = _devset_tables(embedding_model)
    w = EMBEDDING_WEIGHTS
    grid = {"disjoint": (w.disjoint,), "partial": (w.partial,), "one_sided": (w.one_sided,),
            "conflict": (w.conflict,), "agree": (w.agree,), "bare": (w.bare,)}  # fmt: skip
    weights, accuracy = cal.calibrate(table, grid=grid, thresholds=(0.3, w.match, w.duplicate, 0.9))
    assert accuracy >= cal.evaluate(table, EMBEDDING_WEIGHTS).accuracy
    assert (weights.match, weights.duplicate) == (w.match, w.duplicate)


# -- real ledgers: what issue 14 found missing ------------------------------------------------------

LEDGERS = Path(__file__).parents[1] / "bench" / "data" / "novelty_ledgers.json"
OTHER_HAND = LEDGERS.with_name("novelty_ledgers_other_hand.json")


def test_the_real_ledger_set_names_its_sources_and_splits_them_by_repository() -> None:
    """Every source is a public results.tsv at a commit; dev and held-out sources never share a repository."""
    sources = json.loads(LEDGERS.read_text(encoding="utf-8"))["sources"]
    splits: dict[str, set[str]] = {"dev": set(), "held_out": set()}
    for source in sources:
        assert source["path"].endswith("results.tsv") and len(source["commit"]) == 40
        splits[source["split"]].add(source["repo"])
        keys = {run["key"] for run in source["runs"]}
        for probe in source["probes"]:
            assert set(probe["targets"]) <= keys and (probe["label"] == "novel") == (not probe["targets"])
    assert len(splits["dev"]) >= 3 and len(splits["held_out"]) >= 3
    assert not splits["dev"] & splits["held_out"]


def test_the_other_hand_ledger_set_adds_new_repositories_with_labelled_probes() -> None:
    """Probes of another author on three more forks: valid targets, and no repository shared with the first set."""
    first = {s["repo"] for s in json.loads(LEDGERS.read_text(encoding="utf-8"))["sources"]}
    other = json.loads(OTHER_HAND.read_text(encoding="utf-8"))["sources"]
    assert {s["split"] for s in other} == {"other_dev", "other_hand"}
    assert not first & {s["repo"] for s in other}
    for source in other:
        assert source["path"].endswith("results.tsv") and len(source["commit"]) == 40
        keys = {run["key"] for run in source["runs"]}
        assert {run["status"] for run in source["runs"]} <= {"keep", "discard", "crash"}
        for probe in source["probes"]:
            assert probe["label"] in ("duplicate", "variant", "novel")
            assert set(probe["targets"]) <= keys and (probe["label"] == "novel") == (not probe["targets"])


def test_the_hard_pair_set_is_balanced_and_labelled() -> None:
    """240 run/idea pairs of another hand in ten domains, half dev and half held out, every kind in both."""
    pairs = json.loads(LEDGERS.with_name("novelty_pairs_hard.json").read_text(encoding="utf-8"))["pairs"]
    assert len(pairs) == 240 and len({p["id"] for p in pairs}) == 240
    assert {p["label"] for p in pairs} == {"duplicate", "variant", "novel"}
    for split in ("hard_dev", "hard_held"):
        chosen = [p for p in pairs if p["split"] == split]
        assert len(chosen) == 120 and len({p["domain"] for p in chosen}) == 10
        assert {p["kind"] for p in chosen} == {"swap", "other_knob", "other_value", "combo", "paraphrase", "context"}


def test_a_sixth_hand_adds_held_out_pairs_in_ten_other_domains() -> None:
    """200 run/idea pairs in ten domains the first pair set does not have, all held out, every kind in each."""
    first = json.loads(LEDGERS.with_name("novelty_pairs_hard.json").read_text(encoding="utf-8"))["pairs"]
    pairs = json.loads(LEDGERS.with_name("novelty_pairs_hard2.json").read_text(encoding="utf-8"))["pairs"]
    assert len(pairs) == 200 and len({p["id"] for p in pairs}) == 200
    assert {p["split"] for p in pairs} == {"hard2_held"}
    domains = {p["domain"] for p in pairs}
    assert len(domains) == 10 and not domains & {p["domain"] for p in first}
    expected = {"paraphrase": {"duplicate"}, "context": {"duplicate"}, "swap": {"novel", "variant"},
                "other_knob": {"novel"}, "other_value": {"variant"}, "combo": {"variant"}}  # fmt: skip
    for domain in domains:
        chosen = [p for p in pairs if p["domain"] == domain]
        assert len(chosen) == 20 and {p["kind"] for p in chosen} == set(expected)
    assert all(p["label"] in expected[p["kind"]] and p["run"].strip() and p["idea"].strip() for p in pairs)


@pytest.mark.parametrize(
    ("name", "split", "size"),
    [
        ("mech_dev", "mech_dev", 240),
        ("mech_held", "mech_held", 200),
        ("lm3_dev", "lm3_dev", 200),
        ("lm4_held", "lm4_held", 200),
    ],
)
def test_the_lm_pretraining_pair_sets_of_four_more_hands_are_labelled(name: str, split: str, size: int) -> None:
    """Run/idea pairs about small-LM pretraining, each set by another helper: mechanisms, abbreviations, units,
    restatements (all duplicates), values (variants) and hard negatives (variant or novel), one split each."""
    pairs = json.loads(LEDGERS.with_name(f"novelty_pairs_{name}.json").read_text(encoding="utf-8"))["pairs"]
    assert len(pairs) == size and len({p["id"] for p in pairs}) == size
    assert {p["split"] for p in pairs} == {split} and {p["domain"] for p in pairs} == {"lm_pretraining"}
    expected = {"mechanism": {"duplicate"}, "abbreviation": {"duplicate"}, "units": {"duplicate"},
                "restated": {"duplicate"}, "value": {"variant"}, "hard_negative": {"variant", "novel"}}  # fmt: skip
    assert {p["kind"] for p in pairs} == set(expected)
    assert all(p["label"] in expected[p["kind"]] for p in pairs)
    # each line is one description column of a results.tsv
    assert all(p["run"].strip() and p["idea"].strip() and "\t" not in p["run"] + p["idea"] for p in pairs)


@pytest.mark.parametrize(
    ("name", "split"),
    [
        ("hand3", "hand3_dev"),
        ("hand4", "hand4_held"),
        ("hand5", "hand5_held"),
        ("hand6", "hand6_dev"),
        ("hand7", "hand7_held"),
        ("hand8", "hand8_dev"),
        ("hand9", "hand9_dev"),
    ],
)
def test_more_hands_add_new_repositories_with_labelled_probes(name: str, split: str) -> None:
    """Each of seven more authors labelled two more forks: valid targets, one split, no repository seen before."""
    earlier = [
        LEDGERS,
        OTHER_HAND,
        *(LEDGERS.with_name(f"novelty_ledgers_hand{n}.json") for n in range(3, int(name[-1]))),
    ]
    seen = {s["repo"] for path in earlier for s in json.loads(path.read_text(encoding="utf-8"))["sources"]}
    sources = json.loads(LEDGERS.with_name(f"novelty_ledgers_{name}.json").read_text(encoding="utf-8"))["sources"]
    assert len(sources) == 2 and {s["split"] for s in sources} == {split}
    assert not seen & {s["repo"] for s in sources}
    for source in sources:
        assert source["path"].endswith(".tsv") and len(source["commit"]) == 40 and len(source["runs"]) >= 30
        keys = {run["key"] for run in source["runs"]}
        assert {run["status"] for run in source["runs"]} <= {"keep", "discard", "crash"}
        for probe in source["probes"]:
            assert probe["label"] in ("duplicate", "variant", "novel")
            assert set(probe["targets"]) <= keys and (probe["label"] == "novel") == (not probe["targets"])


@pytest.mark.parametrize(
    ("logged", "probe"),
    [
        ("z-loss regularization 1e-4", "add a penalty on the squared log partition function of the logits, 1e-4"),
        ("logit softcap 15", "cap logits with 15*tanh(logits/15)"),
        ("SwiGLU MLP", "gated SiLU MLP"),
        ("partial RoPE 16/64 dims", "rotary embeddings on only 16 of the 64 head dims"),
        ("tie the input and output embeddings", "reuse the token embedding matrix as the lm head"),
        ("label smoothing 0.1", "mix the one-hot targets with a uniform distribution, 0.1"),
        ("grad clip 1.0", "rescale the gradient norm to at most 1.0"),
        ("sliding window attention in the lower layers", "lower layers attend only over a local band of recent tokens"),
        ("stochastic depth 0.1", "randomly skip residual branches, rate 0.1"),
        ("remove biases from all linear layers", "bias-free linear layers"),
        ("MQA with n_kv_head=1", "have every query head attend using one single shared key/value head"),
        ("parallel attn+MLP blocks", "compute the attention and MLP branches side by side from the same input"),
        ("label smoothing 0.1", "soften the one-hot next-token targets by spreading 10% of the probability mass"),
        (
            "weight tying",
            "use one shared matrix for the input token embedding and the output projection to the vocabulary",
        ),
        ("weight decay 0.1", "add an L2 penalty on the weights, 0.1"),
        ("nesterov momentum in muon", "use look-ahead momentum in muon"),
        ("add 3 percent lr warmup", "ramp the learning rate up linearly from zero over the first 3% of steps"),
        ("residual scaling 1/sqrt(2L)", "scale each residual branch by 1/sqrt(2L)"),
        ("SwiGLU MLP", "MLP with gated linear units using SiLU"),
        ("swap the optimizer to Lion", "update with only the sign of the interpolated momentum"),
        ("use flash attention", "use the fused attention kernel"),
        ("value residual learning", "mix the first layer's values into every later layer"),
        ("QK norm", "apply RMSNorm to the query and key vectors in every attention layer"),
        ("ReLU^2 activation in the MLP", "square the output of the ReLU in the MLP"),
        ("keep an EMA of the weights for eval", "evaluate with a running average of the model weights"),
        ("multi-token prediction", "train extra heads to predict the next two tokens at once"),
        (
            "ALiBi instead of RoPE",
            "replace RoPE with a linear penalty on attention scores that grows with token distance",
        ),
        ("document masking", "don't let tokens attend to other documents packed in the same sequence"),
        ("x0 residual mixing", "mix the input embedding back into every layer's residual stream"),
        ("GQA with 2 kv heads", "use 2 key/value heads shared by groups of query heads"),
        ("use GQA", "fewer key/value heads than query heads"),
        ("label smoothing 0.1 on the decoder", "smooth the decoder's target distribution with epsilon 0.1"),
        ("grad clip 1.0", "rescale all gradients whenever their global L2 norm goes above 1.0"),
        ("grad clip 1.0", "if the total L2 norm of all gradients exceeds 1, scale them all down proportionally"),
        ("remove the logit softcap", "stop passing the output logits through the scaled tanh before the loss"),
        ("sliding window attention in the first layer", "limit the first layer to local banded attention"),
        ("parallel attn+MLP (PaLM-style)", "run attention and MLP in parallel off the same normed input and sum them"),
        ("reduce MLP expansion from 4x to 3x", "shrink the MLP hidden layer from 4x the model dimension to 3x"),
        (
            "weight tying",
            "use one shared matrix for the token embedding lookup and the output projection to vocabulary",
        ),
        ("full attention in every layer", "let every layer attend over the entire context window"),
        ("SwiGLU MLP", "an MLP where a SiLU-activated projection multiplies a second linear projection elementwise"),
        (
            "remove value embeddings",
            "get rid of the per-layer token lookup tables whose outputs are mixed into the values",
        ),
        ("cosine LR decay instead of linear warmdown", "decay the learning rate along a cosine curve"),
        (
            "SwiGLU activation replaces ReLU^2",
            "an MLP where a SiLU-activated projection gates a second linear projection",
        ),
        (
            "Muon ns_steps 5->3",
            "run fewer iterations (3 instead of 5) of the polynomial that orthogonalizes the updates",
        ),
        ("add z-loss 1e-4 on final logits", "add 1e-4 times the square of log(sum(exp(logits))) to the loss"),
        ("z_loss = 1e-4", "keep the log-partition near zero by adding 1e-4 * (log Z)^2 to the cross-entropy"),
        ("exp22: bound attention scores with s -> 50*tanh(s/50)", "attention logit soft-capping at 50"),
        ("feed raw lm_head outputs to the loss, no tanh squashing", "drop the logit softcap entirely"),
        ("attention dropout p=0.1", "randomly zero 10% of the post-softmax attention weights"),
        ("stochastic depth p=0.1", "skip each residual block at random with probability 0.1"),
        ("ALiBi instead of rotary", "subtract a head-specific slope times the query-key distance from each score"),
        ("one K and one V projection shared by every query head", "switch attention to multi-query"),
        ("qk-norm removed", "no query/key normalization"),
        ("exp40: x = norm(x + f(x)) instead of x = x + f(norm(x))", "switch from pre-norm to post-norm"),
        ("GELU instead of relu^2 in MLP", "use the smooth activation x*Phi(x) in the feed-forward block"),
        ("plain ReLU activation in the MLP", "MLP nonlinearity: max(0,x)^2 -> max(0,x), i.e. stop squaring"),
        (
            "evaluate with EMA of params, decay 0.999",
            "keep a shadow copy of the weights, shadow = 0.999*shadow + 0.001*w",
        ),
        ("MoE MLP: 4 experts, top-1 routing", "a learned router sends every token through exactly one of four experts"),
        ("tie lm_head.weight = wte.weight", "score the vocabulary with the transpose of the input token table"),
        ("muon momentum 0.95 -> 0.9", "Reduce the Muon momentum target to 0.90; keep its warmup from 0.85."),
        ("warmup 500 -> 1000 steps", "warmup 500 -> 1000 steps, keeping peak lr at 6e-4 and batch at 256"),
        ("add z-loss (1e-4)", "penalize the squared log of the softmax normalizer with coefficient 1e-4"),
        (
            "ALiBi instead of RoPE",
            "drop rotary embeddings and add a per-head linear distance penalty to the attention logits",
        ),
        ("document masking", "block attention across EOS boundaries so tokens only see their own document"),
        ("FA3 for attention", "use FlashAttention-3 kernels in the attention layers"),
        ("RMSNorm without learnable gain", "normalize by root-mean-square but drop the trainable per-channel scale"),
        ("x0 residual lambdas removed", "delete the x0 skip mixing from every block"),
        ("WD 0.2 -> 0.3", "exp19 stronger decoupled decay on the Muon matrices: 0.3"),
        (
            "increase ns_steps from 5 to 6",
            "one more pass of the quintic iteration that orthogonalises Muon's update, 6",
        ),
        ("raise Muon beta2 from 0.95 to 0.98", "the EMA of squared gradients that Muon normalises by: 0.95 -> 0.98"),
        ("Muon momentum 0.85 -> 0.95", "the orthogonalized-update optimizer's momentum coefficient from 0.85 to 0.95"),
    ],
)
def test_a_paraphrase_that_describes_the_mechanism_is_a_duplicate(store: MemoryStore, logged: str, probe: str) -> None:
    """Describing what a run did instead of naming it still finds the run as a duplicate."""
    [run_id] = _ledger(store, [(logged, "discard", 1.01)])
    result = store.lab.check(probe, mode="explore")
    _assert_repeats(result, run_id)


def test_an_idea_close_to_a_discarded_run_is_caught_with_the_run_named(store: MemoryStore) -> None:
    """'use the Lion optimizer' after a discarded 'swap the optimizer to Lion with weight decay 0.1' is not novel."""
    [run_id] = _ledger(store, [("swap the optimizer to Lion with weight decay 0.1", "discard", 1.01)])
    result = store.lab.check("use the Lion optimizer", mode="explore")
    assert result.classification in ("duplicate_run", "repeat_failure")
    assert result.policy.decision == "block"
    assert result.top_matches[0].run_id == run_id and result.top_matches[0].status == "discard"
    assert "swap the optimizer to Lion" in result.policy.rationale


@pytest.mark.parametrize(
    ("logged", "probe"),
    [
        ("swap the optimizer to Lion with weight decay 0.1", "try Lion"),
        ("replace the MLP activation with GELU", "gelu"),
    ],
)
def test_an_idea_that_only_names_an_option_finds_the_run_that_chose_it(
    store: MemoryStore, logged: str, probe: str
) -> None:
    """'try Lion' names an optimizer without saying so; it is still the idea of the run that chose Lion."""
    [run_id] = _ledger(store, [(logged, "discard", 1.01)])
    result = store.lab.check(probe, mode="explore")
    assert result.classification != "novel", result.top_matches
    assert result.top_matches[0].run_id == run_id


def test_an_idea_that_sets_a_value_the_run_left_unset_is_no_repeat(store: MemoryStore) -> None:
    """'raise muon weight decay to 0.3' does not repeat 'keep muon weight decay constant': it sets a value that run never chose."""
    _ledger(store, [("keep muon weight decay constant", "discard", 1.01)])
    result = store.lab.check("raise muon weight decay to 0.3", mode="explore")
    _assert_no_repeat(result)


def test_a_run_line_with_more_numbers_than_its_change_still_matches_its_value(store: MemoryStore) -> None:
    """'DEPTH 12→14 (768→896 dim)' is repeated by 'depth 14 layers'; 'depth 16' stays a variant of it."""
    [run_id] = _ledger(store, [("DEPTH 12→14 (768→896 dim, 226M params)", "discard", 1.01)])
    repeat = store.lab.check("increase depth from 12 to 14 layers", mode="explore")
    _assert_repeats(repeat, run_id)
    _assert_no_repeat(store.lab.check("depth 16", mode="explore"))


@pytest.mark.parametrize(
    ("logged", "probe"),
    [
        ("window size 1024 on layers 1-7", "window size 2048 on layers 1-7"),
        ("EMA decay 0.999 every 10 steps", "EMA decay 0.9999 every 10 steps"),
        ("weight decay 0.1 for 3 epochs", "weight decay 0.2 for 3 epochs"),
        ("lr 0.02 to 0.04", "lr 0.04 to 0.06"),
        ("MATRIX_LR 0.02/0.04/0.06 sweep", "MATRIX_LR 0.08"),
        ("lower the learning rate", "learning rate 0.08"),
        ("n_heads 6 -> 8", "n_heads 8 with 2 kv heads"),
        ("untie embeddings", "untie embeddings and raise embedding lr to 0.6"),
        ("momentum warmup 300 steps", "momentum warmup 300 steps and lr warmup 100 steps"),
        ("embedding learning rate 0.6", "embedding lr 0.6 and matrix lr 0.03"),
    ],
)
def test_a_sweep_step_or_a_follow_up_of_a_run_is_a_variant_not_a_repeat(
    store: MemoryStore, logged: str, probe: str
) -> None:
    """The main value changed with the context kept, a value the run never chose, or one more knob."""
    _ledger(store, [(logged, "keep", 0.99)])
    result = store.lab.check(probe, mode="exploit")
    _assert_no_repeat(result)


@pytest.mark.parametrize(
    ("logged", "probe"),
    [("MATRIX_LR 0.02/0.04/0.06 sweep", "MATRIX_LR 0.04"), ("DEPTH 12→14 (768→896 dim)", "DEPTH 14")],
)
def test_a_value_within_a_runs_values_repeats_it(store: MemoryStore, logged: str, probe: str) -> None:
    """A sweep that tried 0.04, or a line naming more numbers than its change, is repeated by that value."""
    [run_id] = _ledger(store, [(logged, "discard", 1.01)])
    result = store.lab.check(probe, mode="explore")
    _assert_repeats(result, run_id)


@pytest.mark.parametrize(
    ("logged", "probe"),
    [
        ("delay the warmdown to the final 20 percent", "hold the LR at peak and delay the warmdown to the final 20%"),
        ("depth 5 run exceeded 10 minute timeout", "depth 5"),
        ("depth 5 used 19.4GB", "go one layer deeper, to 5 layers"),
    ],
)
def test_a_knob_mentioned_without_a_value_or_a_runs_cost_does_not_make_a_repeat_a_variant(
    store: MemoryStore, logged: str, probe: str
) -> None:
    """A knob the idea names without changing it ("hold the LR at peak") adds nothing the run lacked, and
    the time or memory a run took ("10 minute timeout", "19.4GB") is no value of the knob next to it."""
    [run_id] = _ledger(store, [(logged, "discard", 1.01)])
    _assert_repeats(store.lab.check(probe, mode="explore"), run_id)


def test_a_config_name_the_vocabulary_does_not_know_is_a_knob_of_its_own(store: MemoryStore) -> None:
    """Ledgers outside small-LM training name their own keys: "the safety margin" is the run's
    ``safety_margin``, another value of it is a variant, and another key with the same value is not a match."""
    [run_id] = _ledger(store, [("loosen safety_margin 0.9->1.3: the truck falls off", "discard", 1.01)])
    _assert_repeats(store.lab.check("loosen the safety margin to 1.3"), run_id)
    variant = store.lab.check("safety_margin 1.5")
    assert variant.classification == "repeat_failure" and variant.top_matches[0].relation == "variant"
    assert variant.top_matches[0].differences == ["safety_margin: 1.5 vs 1.3"]
    _assert_no_repeat(store.lab.check("raise braking_margin to 1.3"))


@pytest.mark.parametrize(
    ("logged", "probe"),
    [
        ("loosen safety_margin 0.9->1.3", "loosen safety_margin from 90 cm to 130 cm"),
        (
            "gentler hairpin cap (threshold 0.65, floor 4.0): very close",
            "hairpin cap with threshold 0.65 and floor 4.0",
        ),
        ("z-loss regularization (1e-4 coefficient)", "add z-loss with weight 1e-4"),
        ("lengthen curvature_preview 14->18", "lengthen curvature_preview to 18, leaving cross_track_gain at 0.5"),
        # a second change the run made too, in other words
        ("DeepAR with student-t likelihood + lagged covariates", "DeepAR, student-t likelihood plus lag features"),
        # one knob under two names in a terse edit
        ("dropout rate 0.1 -> 0.2", "dropout prob 0.1 -> 0.2"),
        ("image size 224 -> 288", "input resolution 224 -> 288"),
        # one word swapped for another form or a synonym of it
        ("evaluate on the validation split every 500 steps", "evaluate on the dev split every 500 steps"),
        ("shuffle the training data every epoch", "reshuffle the training data every epoch"),
        # a "+" past a parenthesis is commentary, not a second change
        (
            "global gradient norm clipping max_norm=1.0 (too aggressive + .item() sync slowed training)",
            "clip the global gradient norm to a maximum of 1.0",
        ),
    ],
)
def test_settings_in_parentheses_units_and_what_an_idea_leaves_alone(
    store: MemoryStore, logged: str, probe: str
) -> None:
    """A line whose only values are in parentheses states its change there; 90 cm is the 0.9 m a run logged;
    "leaving X at 0.5" changes nothing; "dev" is "validation" and "reshuffle" is "shuffle"."""
    [run_id] = _ledger(store, [(logged, "discard", 1.01)])
    _assert_repeats(store.lab.check(probe, mode="explore"), run_id)


@pytest.mark.parametrize(
    ("logged", "probe"),
    [
        # beside a value of its own, a parenthesis is the context the change was made in
        ("raise n_estimators 300->600 (learning_rate=0.05)", "raise learning_rate to 0.05"),
        # another value of a setting stated only in parentheses
        ("rate-limit applied steering (2.5 rad/s)", "rate-limit applied steering at 5.0 rad/s"),
        # a config name with a value against a line with other values and no knob
        ("rate-limit applied steering (2.5 rad/s)", "increase max_steer from 0.4 to 0.5 rad"),
        # the optimizer named on its own is a choice, not a qualifier
        ("swap the optimizer to Lion with weight decay 0.1", "lower weight decay to 0.1 with AdamW"),
        # the run plus a second change
        ("torch.compile the model", "torch.compile the model and capture the step with CUDA graphs"),
        ("add MUSAN noise at 5-20 dB SNR", "add MUSAN noise at 5-20 dB SNR plus RIR reverb"),
        # the same terse edit of another knob
        ("rejection sampling: generation temperature 0.7 -> 1.0", "rejection sampling: generation top_p 0.7 -> 1.0"),
        ("Holt-Winters smoothing alpha 0.2 -> 0.5", "Holt-Winters smoothing beta 0.2 -> 0.5"),
        # the same switch, to something else
        ("bi-encoder pooling: CLS -> mean pooling", "bi-encoder pooling: CLS -> max pooling"),
        ("algorithm PPO -> SAC on HalfCheetah", "switch the algorithm from PPO to TD3 on HalfCheetah"),
        # one line with one thing in it swapped for another
        (
            "add random horizontal flip to the training augmentations",
            "add random vertical flip to the training augmentations",
        ),
        ("add a day-of-week embedding to the demand model", "add an hour-of-day embedding to the demand model"),
        # a terse run of two changes, and only the first
        ("mixup alpha 0.2 + cutmix", "mixup alpha 0.2"),
        ("warmup 1000 steps plus z-loss 1e-4", "warmup 1000 steps"),
    ],
)
def test_context_values_and_other_values_are_no_repeat(store: MemoryStore, logged: str, probe: str) -> None:
    """Values of the context, other values of a setting in parentheses, other knobs' values, a second change
    joined to the run's, the same switch to something else, one thing swapped in the same line and the first
    half of a terse run of two changes are no repeat."""
    _ledger(store, [(logged, "discard", 1.01)])
    _assert_no_repeat(store.lab.check(probe, mode="explore"))


def test_numbers_past_a_float_and_megabyte_descriptions_are_checked_not_crashed(store: MemoryStore) -> None:
    """ "1e999", 400 digits in a row or a description of a megabyte: the check answers; such values are no setting."""
    huge = "1" * 400
    _ledger(
        store,
        [("lr 1e999", "discard", 1.01), (f"depth {huge} cm", "discard", 1.02), (f"lookback {huge} days", "keep", 1.0)],
    )
    assert analyze("lr 1e999").settings["learning_rate"].numbers == frozenset()
    assert analyze(f"{huge} cm").loose_numbers == frozenset()
    assert analyze(f"lookback {huge} weeks").loose_numbers == frozenset()  # a duration past a float is no value
    result = store.lab.check("7" * 1_000_000)
    assert result.classification == "novel" and result.counts["runs"] == 3
    assert store.lab.check(f"depth {huge} cm").classification == "duplicate_run"


def test_hostile_descriptions_are_read_in_a_bounded_way() -> None:
    """What an attack found slow, made structurally bounded: a run of whitespace is one space (a regex backtracked
    over it cubically), a power past 15 digits stays as written (99^99 grew 6 characters into 197 before every
    rule), a line gives at most 16 config names, and only the first kilobyte of a line is read."""
    assert analyze("x" + " " * 1000 + "lr 0.1").canonical == analyze("x lr 0.1").canonical
    assert analyze("x" + "\u00a0\n\t" * 300 + "lr 0.1").canonical == analyze("x lr 0.1").canonical
    assert "99^99" in analyze("99^99").canonical and analyze("2^19 tokens").canonical.startswith("524288")
    assert len(config_names(" ".join(f"knob{i}_z={i}" for i in range(500)))) == 16
    assert analyze("depth 8 " + "x" * 2000 + " lr 0.1").knobs == {"depth"}


def test_a_ledger_learns_a_bounded_number_of_config_names(store: MemoryStore) -> None:
    """Runs that each invent 16 names: the ledger stops learning at 512, the first in ledger order, so a check
    reads each candidate knowing at most 512 names."""
    _ledger(store, [(" ".join(f"r{r}k{i}_z={i}" for i in range(40)), "discard", 1.0) for r in range(40)])
    store.lab.check("r0k1 z 2")
    names = store.lab._index.config_names
    assert len(names) == 512 and "r0k0_z" in names and not any(n.startswith("r39k") for n in names)


def test_names_are_found_as_words_or_with_underscores_in_one_pass() -> None:
    from mcp_memory_server.core.lab.novelty import names_any

    names = frozenset({"safety_margin", "lookahead_curvature_gain"})
    assert names_any("loosen the Safety Margin a little", names)
    assert names_any("lookahead_curvature_gain 0.0->0.5", names)
    assert not names_any("a marginal safety gain", names)


def test_a_module_name_or_a_reported_quantity_is_no_config_name() -> None:
    """Only a name given a value is a setting, and not the metrics a run reports."""
    assert config_names("weight tying (lm_head.weight=wte.weight): val_bpb 1.02, final_loss=3.1") == frozenset()
    assert config_names("matrix_lr 0.04, scale_pos_weight=3, max_delta_step to .8") == {
        "scale_pos_weight",
        "max_delta_step",
    }
    # a name the vocabulary reads is a knob already, not a config name of the ledger's own
    assert config_names("colsample_bytree=0.8") == frozenset()
    assert "colsample_bytree" in analyze("colsample_bytree=0.8").settings


def test_a_knob_named_only_in_a_runs_commentary_is_still_extra(store: MemoryStore) -> None:
    """A run that only muses about warmup in its hypothesis did not set it: adding warmup is a variant."""
    _ledger(store, [("lower the matrix learning rate to 0.03 (hypothesis: a warmup might help later)", "keep", 0.99)])
    result = store.lab.check("lower the matrix learning rate to 0.03 and add warmup ratio 0.1", mode="exploit")
    assert result.top_matches[0].relation == "variant"


def test_a_ledger_learns_indexed_and_private_names_as_the_reading_spells_them() -> None:
    assert config_names("increase LINE_SCORES[4] from 1000 to 1500, _ROOT_CAP 12->20") == {"line_scores_4", "root_cap"}


def test_an_index_and_a_leading_underscore_belong_to_the_name() -> None:
    """ "LINE_SCORES[2] 5 -> 8" sets line_scores_2 to 8; "_DELTA_WEIGHT" is the config name delta_weight."""
    up, down = analyze("increase LINE_SCORES[2] from 5 to 8"), analyze("decrease LINE_SCORES[2] from 5 to 2")
    assert up.settings["line_scores_2"].numbers == {8.0}
    assert signals(up, down).conflict
    halfway = analyze("drop _DELTA_WEIGHT to 1.25, halfway between 1.0 and the current 1.5")
    assert set(halfway.settings) == {"delta_weight"} and halfway.settings["delta_weight"].numbers == {1.25}
    assert signals(halfway, analyze("increase _DELTA_WEIGHT from 1.0 to 1.5")).conflict


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("recency features over the last 12 months", "recency features, last 365 days"),
        ("lookback 2y", "lookback 24 months"),
    ],
)
def test_durations_are_read_in_days(a: str, b: str) -> None:
    """12 months = 365 days and 2y = 24 months: the same value however the duration is written."""
    assert analyze(a).loose_numbers == analyze(b).loose_numbers != frozenset()


def test_a_fraction_that_qualifies_a_noun_is_no_value() -> None:
    """ "a half cosine wave" is a shape, "the last fifth of training" a value."""
    assert analyze("shape the LR cooldown as a half cosine wave").settings["warmdown"].numbers == frozenset()
    assert analyze("warmdown over the last fifth of training").settings["warmdown"].numbers == {0.2}


@pytest.mark.parametrize(
    ("logged", "probe"),
    [
        # a label before a colon is not a change followed by its verdict
        ("MLP: better activation, ReLU² -> SwiGLU", "MLP: better activation, ReLU² -> GELU"),
        (
            "Speed: faster attention kernel, FA3 instead of SDPA",
            "Speed: faster dataloader with pin_memory and 8 workers",
        ),
        ("Init: improved init, zero-init the output projections", "Init: improved init, init std 0.02 -> 0.01"),
        ("Window pattern : short window 512 on 3 of 4 layers", "Window pattern : short window 256 on 3 of 4 layers"),
        # the cause before "so" is context; the change is what follows it
        ("Loss spikes at lr 0.06 so add QK-norm", "Loss spikes at lr 0.06 so add z-loss 1e-4"),
        ("OOM at DEPTH 12 so halve DEVICE_BATCH_SIZE 64 -> 32", "OOM at DEPTH 12 so enable activation checkpointing"),
        # a held setting is part of the line, and only its clause is context
        (
            "Window pattern SSSL, long window held at 2048, short window 1024 -> 512",
            "Window pattern SSSL, long window held at 2048, short window 1024 -> 256",
        ),
        (
            "WSD schedule, LR held at peak until 60% then linear decay",
            "WSD schedule, LR held at peak until 85% then linear decay",
        ),
        # "the past N", "beyond N", "between a and b" are values
        ("sliding window attending to the past 512 tokens", "sliding window attending to the past 1024 tokens"),
        ("truncate documents beyond 512 tokens", "truncate documents beyond 2048 tokens"),
        ("clamp rewards between -1 and 1", "clamp rewards between -10 and 10"),
        ("halve the current 0.04 matrix LR", "halve the current 0.02 matrix LR"),
        # knobs misread before
        ("tie embeddings", "break ties in the ranking randomly by adding jitter"),
        ("logit softcap 50", "attn softcap 50"),
        ("activation GELU -> tanh", "cap logits at 15 with tanh"),
        ("SwiGLU replaces ReLU²", "SwiGLU replaces ReLU² and the hidden size drops 4x -> 8/3x"),
        ("add sliding window attention, window 512, on 3 of 4 layers", "SWA from 75% of training"),
        ("WARMDOWN_RATIO 0.5 -> 0.7", "layer-wise LR decay 0.65 -> 0.75"),
        ("Adam beta1 0.9 -> 0.8", "KL β 1 -> 4"),
    ],
)
def test_attacked_lines_that_are_different_experiments_are_not_repeats(
    store: MemoryStore, logged: str, probe: str
) -> None:
    """Found by an attack on this stop's reading: each pair was called a duplicate (most at cosine 1.0 of a cut line)."""
    _ledger(store, [(logged, "discard", 1.01)])
    _assert_no_repeat(store.lab.check(probe, mode="explore"))


@pytest.mark.parametrize(
    ("logged", "probe"),
    [
        ("value embeddings only on the last 2 layers", "DEPTH 8 -> 10"),
        ("batch size 256 -> 512", "batch norm momentum 0.1 -> 0.01"),
        ("MTP with 2 extra prediction heads", "N_HEAD 6 -> 8"),
        ("context length 1024 -> 2048", "in-context examples 4 -> 8"),
        ("label smoothing 0.1", "distill from the teacher with soft targets, temperature 2"),
        ("drop path 0.1 on the last 4 blocks", "ViT depth 12 -> 16"),
    ],
)
def test_a_scope_or_a_lookalike_word_is_not_the_knob_it_resembles(store: MemoryStore, logged: str, probe: str) -> None:
    """ "the last 2 layers" is where a change applies, batch norm is no batch size, prediction heads are not attention heads."""
    _ledger(store, [(logged, "discard", 1.01)])
    result = store.lab.check(probe, mode="explore")
    assert result.classification == "novel", result.top_matches


@pytest.mark.parametrize(
    ("logged", "probe"),
    [
        ("attention softcap 50", "softcap the attention logits at 50"),
        ("attention softcap 30", "tanh-cap the attention scores at 30"),
        ("add QK-norm", "QK RMSNorm"),
        ("add QK-norm", "normalize keys and queries with RMSNorm before the dot product"),
        ("ReLU² activation", "ReLU(x)^2 activation in the MLP"),
        ("ReLU² MLP", "squared-ReLU MLP"),
        ("document masking in attention", "don't attend across document boundaries"),
        ("doc masking", "document masking"),
        ("x0 mixing", "learnable x0 lambdas"),
        ("sliding window attention with window 256", "banded causal mask of width 256"),
        ("ALiBi positional bias instead of RoPE", "linear distance penalty on attention scores instead of rotary"),
        ("logit softcap 15", "cap logits at 15 with tanh"),
        ("SwiGLU MLP", "gated MLP with SiLU"),
        ("WARMDOWN_RATIO = 1/3", "warmdown over the last third of training"),
        ("WARMUP_RATIO = 0.02", "WARMUP_RATIO 1/50"),
        ("Adam β2 0.95 -> 0.99", "Adam β₂ 0.95 → 0.99"),
        ("add QK-norm", "Loss spikes at lr 0.06 so add QK-norm"),
        ("DEVICE_BATCH_SIZE 64 -> 32", "OOM at depth 12 so halve DEVICE_BATCH_SIZE to 32"),
        ("DEPTH 8 -> 10", "DEPTH 8 -> 10 with MATRIX_LR unchanged at 0.04"),
    ],
)
def test_attacked_rewordings_are_still_repeats(store: MemoryStore, logged: str, probe: str) -> None:
    """Found by the same attack: rewordings the new rules missed."""
    [run_id] = _ledger(store, [(logged, "discard", 1.01)])
    _assert_repeats(store.lab.check(probe, mode="explore"), run_id)


def test_a_value_compared_with_is_not_a_value_set() -> None:
    """ "push the embedding LR well past 0.8" sets 1.2, not 0.8."""
    features = analyze("EMBEDDING_LR=1.2: push the embedding LR well past 0.8")
    assert features.settings["embedding_lr"].numbers == {1.2}
    assert not signals(features, analyze("EMBEDDING_LR=0.8")).agree


def test_another_option_of_the_same_slot_is_not_a_duplicate(store: MemoryStore) -> None:
    """Naming the slot of a bare option must not make Lion a repeat of a run that tried Sophia."""
    _ledger(store, [("swap the optimizer to Sophia", "discard", 1.01)])
    result = store.lab.check("try Lion", mode="explore")
    _assert_no_repeat(result)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("matrix lr 3e-4", "MATRIX_LR=0.0003"),
        ("warmup over 1k steps", "warmup over 1000 steps"),
        ("TOTAL_BATCH_SIZE 2^16", "total batch size 65536"),
        ("batch 8K tokens", "batch size 8192"),
        ("WD 0.1", "weight decay 0.1"),
        ("bs 32", "batch size 32"),
        ("warmup ratio 2%", "WARMUP_RATIO=0.02"),
        ("use two full attention layers", "2 full attention layers"),
        ("GQA with 2 kv heads", "grouped query attention, 2 key-value heads"),
        ("Muon wd 1.8e-1 with 256-dim heads", "lower muon weight decay to 0.18 on head256"),
        ("shrink attention heads to 64 dims each", "head_dim 64"),
        ("FINAL_LR_FRAC=0.1", "stop the decay at 10% of the peak learning rate"),
        ("FINAL_LR_FRAC=0.29", "final LR at 29% of peak"),
        ("WARMUP_RATIO = 1/50", "WARMUP_RATIO=0.02"),
        ("final_lr_frac 1/10 -> 1/20", "final LR fraction 0.05"),
        ("heavier Adam averaging: betas 0.95 / 0.999", "ADAM_BETAS=(0.95, 0.999)"),
        ("Adam β1 0.8→0.9", "adam beta1 0.9"),
        ("lower the end-of-schedule LR fraction 0.1 -> 0.05", "FINAL_LR_FRAC=0.05"),
        ("MLP_EXPANSION 4->8", "MLP ratio 8"),
        ("n_estimators 400->600", "boost for 600 rounds instead of 400"),
        ("n_est=1000", "grow 1k trees"),
        ("mcw=3", "require a hessian sum of at least 3 in every child"),
        ("max_bin=512", "512 histogram buckets per feature"),
        ("subsample=0.7", "each tree sees a random 70% of the rows"),
        ("set warmdown ratio to 1/4", "warmdown ratio 0.25"),
        ("SHORT_WINDOW 1024->256", "sliding window size 256"),
        ("warmdown over the final 20% of training", "warmdown over the last fifth of training"),
        ("raise the matrix lr to 0.05", "raise the Muon matrix learning rate to 0.05"),
        ("Muon lr x1.5", "learning rate 1.5x"),
        ("EMA of weights, decay 0.999", "EMA of weights with 1 - decay = 1e-3"),
        ("ADAM_BETAS beta2 = 1 - 1e-3", "adam beta2 0.999"),
        ("adam b2 0.95 -> 0.99", "Adam second-moment decay rate 0.99"),
        ("LS 0.1", "label smoothing of 0.1"),
        ("AR 64 -> 80", "set ASPECT_RATIO to 80"),
        ("rope theta 1e5", "rotary position embedding base of 1e5"),
        ("emb lr 0.6 -> 0.8", "EMBEDDING_LR = 0.8"),
        ("UNEMBEDDING_LR 0.004 -> 0.006", "raise the learning rate of the output projection (lm_head) to 0.006"),
        ("SCALAR_LR=0.3", "learning rate for the per-layer scalar parameters: 0.3"),
        ("use (0.9, 0.95) for Adam betas", "beta1 0.9, beta2 0.95"),
        ("MLP ratio 4->3", "Thinner feed-forward blocks: hidden width 3*d instead of 4*d."),
        ("drop weight decay entirely", "WEIGHT_DECAY = 0.0"),
        ("halve MATRIX_LR", "MATRIX_LR 0.04 -> 0.02"),
        ("softcap 15 -> 30", "2x the logit softcap (15 now)"),
        ("SCALAR_LR 0.5 -> 0.25", "SCALAR_LR x0.5 (base 0.5)"),
        ("batch-size warmup 2^17 -> 2^19 tokens", "ramp the batch linearly from 131072 to 524288 tokens"),
        ("WSD schedule", "warmup-stable-decay learning rate schedule"),
        ("Muon ns_steps 5->4", "Would four Newton\u2013Schulz iterations be enough?"),
        ("double the total batch size", "TOTAL_BATCH_SIZE 2^18 -> 2^19"),
        ("total batch 0.5M tokens -> 1M tokens", "TOTAL_BATCH_SIZE=2^20 (was 2^19)"),
        ("vocab 8192 -> 16384", "train a 16K BPE tokenizer instead of the 8K one"),
        ("ffn mult 4 -> 3", "MLP hidden dim ratio 3x n_embd instead of 4x"),
        ("device bs 128 -> 64", "DEVICE_BATCH_SIZE from 128 to 64"),
        ("exp7 weight decay off", "set WEIGHT_DECAY to 0"),
        ("increased WARMDOWN_RATIO to 0.7 -> val_bpb 0.9921 (keep)", "warmdown ratio 0.7"),
        ("attn dropout 0.1", "dropout with p=0.1 on the attention probabilities"),
        ("colsample_bytree=0.5", "sample half of the columns for each tree"),
        ("MATRIX_LR 0.02 -> 0.025", "raise matrix lr by a quarter from its 0.02 base"),
        ("LR 0.04 -> 0.004", "lower the lr by 10x"),
        ("resid dropout 0.1", "zero a random tenth of each sublayer's output activations before the residual add"),
        ("x0_lambdas init 0.1 -> 0.2", "start the learned input-embedding skip coefficients at 0.2"),
    ],
)
def test_units_and_abbreviations_read_as_the_same_setting(a: str, b: str) -> None:
    """3e-4 = 0.0003, 1k = 1000, 2^16 = 65536, 8K ≈ 8192 tokens, WD = weight decay, bs = batch size, head256 = 256-dim heads,
    "at 10% of the peak" = a final LR fraction of 0.1, a short window's size = the sliding window's."""
    pair = signals(analyze(a), analyze(b))
    assert pair.agree and not pair.conflict, (analyze(a).settings, analyze(b).settings)


@pytest.mark.parametrize(
    ("described", "knob", "numbers", "option"),
    [
        ("GeLU activation: much worse than ReLU²", "activation", set(), "gelu"),
        ("softcap 15->10: tighter logit cap significantly improves", "logit_softcap", {10.0}, None),
        ("HEAD_DIM 128->64, giving 4 attention heads instead of 2", "head_dim", {64.0}, None),
        ("DEVICE_BATCH_SIZE 16→32 so each optimizer step is one micro-batch with no grad accumulation",
         "device_batch_size", {32.0}, None),
    ],
)  # fmt: skip
def test_a_verdict_after_a_colon_and_what_a_change_brings_about_are_not_settings(
    described: str, knob: str, numbers: set[float], option: str | None
) -> None:
    """ "X: much worse than Y" does not choose Y, and ", giving …" / "so …" name consequences, not changes."""
    features = analyze(described)
    assert set(features.settings) == {knob}
    assert features.settings[knob].numbers == numbers
    assert features.settings[knob].option == option


def test_a_ledger_description_is_read_without_its_commentary() -> None:
    """Real ledgers append reasoning and results; only the change itself is compared."""
    described = (
        "MATRIX_LR 0.03→0.04 (hypothesis: higher Muon LR for faster convergence per step, evidence: community "
        "best practice is 0.04): val_bpb 1.283→1.269 (0.014 improvement). 689 steps vs 658"
    )
    features = analyze(described)
    assert set(features.settings) == {"learning_rate"}
    assert features.settings["learning_rate"].numbers == {0.04}
    assert signals(features, analyze("matrix lr 0.04")).agree


@pytest.mark.parametrize(
    ("logged", "probe"),
    [
        ("WARMDOWN_RATIO=0.05 (down from 0.1)", "warmup ratio 0.05"),
        ("UNEMBEDDING_LR 0.004", "embedding lr 0.004"),
        ("lower scalar lr to 0.3 after 3x MLP", "embedding lr 0.3"),
        ("DEPTH=8, n_embd=512", "depth 8, n_embd 768"),
        ("raise adam beta1 to 0.85", "adam beta2 0.85"),
        ("add QK-norm", "normalise the values before the output projection"),
        ("keep an EMA of the weights for eval", "average the gradients over 4 micro-batches"),
        ("document masking in attention", "mask 15% of input tokens"),
        ("GQA with 2 kv heads", "use 4 key/value heads shared by groups of query heads"),
        ("ADAM_BETAS (0.8,0.95)->(0.9,0.99)", "Muon beta2 0.95->0.90"),
        (
            "softcap 15->30",
            "softcap=30 on the attention scores inside each layer (the final logit softcap stays at 15)",
        ),
        (
            "increase Muon initial momentum from 0.85 to 0.9",
            "optimize the unembedding (lm_head) with Muon instead of Adam",
        ),
        ("cosine LR decay instead of linear warmdown", "cosine weight decay schedule instead of linear decay"),
        ("all-layers value embeddings", "ve_gate_channels 32->64 for the value-embedding gate"),
        ("WARMDOWN_RATIO=0.3", "cosine-shaped warmdown instead of the linear ramp, WARMDOWN_RATIO unchanged at 0.5"),
        ("reduce weight decay from 0.2 to 0.01", "increase weight decay on the embedding tables from 0 to 0.01"),
        ("WEIGHT_DECAY=0.01", "apply weight decay 0.01 to the embedding tables as well"),
        ("Muon ns_steps 5->6", "Muon momentum 0.95 -> 0.96, 6 more warmup steps"),
        ("attention dropout 0.1", "residual dropout 0.1"),
        ("residual dropout 0.1", "embedding dropout 0.1 right after wte"),
        ("stop scheduling the Muon weight decay and keep it fixed", "WEIGHT_DECAY=0"),
        ("DEPTH 8 -> 10", "keep DEPTH at 8 but ASPECT_RATIO 64 -> 80 (width 640)"),
        ("halve MATRIX_LR", "MATRIX_LR 0.04 -> 0.03"),
        ("MATRIX_LR 0.04 -> 0.06", "Muon lr x2"),
        ("HEAD_DIM 128 -> 64", "n_kv_head 4 -> 2 (GQA), HEAD_DIM stays 128"),
        ("ramp the learning rate up from zero over 300 steps", "raise the learning rate from 0.04 to 0.06"),
        ("warmdown shape linear -> cosine", "WARMDOWN_RATIO 0.5 -> 0.7, still linear"),
    ],
)
def test_hard_negatives_from_real_ledgers_are_not_duplicates(store: MemoryStore, logged: str, probe: str) -> None:
    """warmup ≠ warmdown, embedding ≠ unembedding lr, beta1 ≠ beta2, another width is a variant at most."""
    _ledger(store, [(logged, "keep", 0.99)])
    result = store.lab.check(probe, mode="explore")
    _assert_no_repeat(result)
