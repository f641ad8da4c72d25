"""How similar two experiment descriptions are, and whether one repeats or varies the other.

Embeddings understand paraphrase ("raise the learning rate to 0.04" ≈ "lr 0.04") but
blur ideas that share words: "warmup" and "warmdown", "depth" and "width", 0.04 and
0.05 all sit close together in embedding space. So a description is first cut to the
change it names (:func:`core`: real ledgers append hypotheses, results and verdicts) and
read into *features*: a canonical text (config names, abbreviations, synonyms and
mechanism descriptions mapped to one spelling; numbers, powers, percentages and number
words normalised) and the *settings* it names (knob → numbers, option, on/off, direction).
The score of a pair is the cosine of the canonical texts, moved by those signals:

- different knobs (``depth`` vs ``width``) pull the score down;
- the same knob with another value, option, direction or on/off state is a *variant*,
  never a duplicate;
- an idea that names a knob the run did not set, or joins a second change to the run's
  ("... plus hard negatives"), does more than the run did: a variant;
- the same switch to something else ("CLS -> mean" against "CLS -> max") conflicts;
- the same knob with the same value pushes the score up.

Knobs come from a vocabulary of small-LM training and from the ledger itself: a config name
given a value (``safety_margin 0.9->1.3``) is a knob of its own in any domain.

The thresholds and weights were calibrated on the dev sources of
``bench/data/novelty_ledgers.json`` (real autoresearch ledgers), with a floor on
``tests/data/lab_devset.json``; the reading was extended on the dev splits of three more
hands; ``bench/bench_novelty.py`` reports every split, held-out ones included.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Literal

__all__ = [
    "EMBEDDING_WEIGHTS",
    "LEXICAL_WEIGHTS",
    "READING",
    "Features",
    "PairSignals",
    "Relation",
    "Weights",
    "analyze",
    "baseline_tokens",
    "compare",
    "config_names",
    "describe_differences",
    "lexical_similarity",
    "names_any",
]

Relation = Literal["duplicate", "variant", "unrelated"]

READING = "reading-2026-12-04.19"
"""The version of :func:`analyze`'s reading. Stored run vectors are keyed by it (with the
model id), so changing what a description is embedded as re-embeds every ledger's runs
instead of comparing new probes against vectors of the old text. Change it with the reading."""


@dataclass(frozen=True, slots=True)
class Weights:
    """How signals move a similarity, and where the relations start (see the module docstring)."""

    match: float
    """Score at or above which a prior run counts as a match (a variant or a duplicate)."""
    duplicate: float
    """Score at or above which a match without conflicting settings is a duplicate."""
    disjoint: float
    """Subtracted when both name knobs and share none (``depth`` vs ``width``)."""
    partial: float
    """Subtracted, times one minus the knob Jaccard, when the knobs only overlap."""
    one_sided: float
    """Subtracted when only one of the two names any knob."""
    conflict: float
    """Subtracted when a shared knob has another value, option, direction or on/off state."""
    agree: float
    """Added when both name the same knobs with the same explicit values."""
    bare: float = 0.0
    """Subtracted when neither names any knob: the cosine alone must then carry the match."""


# Calibrated on the dev ledgers of bench/data/novelty_ledgers.json, keeping >= 95% on
# tests/data/lab_devset.json (the README's Lab benchmark lists every variant measured).
# match == duplicate: on real ledgers a match with no conflicting and no extra setting is a
# repeat; variants come from the settings, not from a band of middling cosines.
EMBEDDING_WEIGHTS = Weights(
    match=0.48, duplicate=0.48, disjoint=0.50, partial=0.0, one_sided=0.15, conflict=0.0, agree=0.30, bare=0.10
)
LEXICAL_WEIGHTS = Weights(
    match=0.24, duplicate=0.52, disjoint=0.30, partial=0.20, one_sided=0.0, conflict=0.0, agree=0.30
)

# -- reading a description -----------------------------------------------------------------------

# Applied in order to lower-cased text; compound names come before their parts.
_RULES: list[tuple[str, str]] = [
    # mechanisms described instead of named, and names real ledgers use
    (
        r"\b(?:penalty|loss|regulari[sz]\w*|term)\s+on\s+(?:the\s+)?(?:squared\s+)?"
        r"(?:log[\s-]*partition(?:\s+function)?|log[\s-]*sum[\s-]*exp|logsumexp|log\s*z)(?:\s+squared)?\b"
        r"|\b(?:squared|square\s+of\s+the)\s+(?:log[\s-]*partition(?:\s+function)?|logsumexp|log[\s-]*sum[\s-]*exp|log\s*z)\b",
        " z_loss ",
    ),
    # z-loss as its formula: "the square of log(sum(exp(logits)))", "logsumexp(logits)^2", "(log Z)^2"
    (
        r"\b(?:the\s+)?square\s+of\s+(?:the\s+)?(?:log[\s-]*sum[\s-]*exp|logsumexp|log\s*\(\s*sum\s*\(\s*exp\s*\([^()]{0,20}\)\s*\)\s*\)"
        r"|log[\s-]*partition(?:\s+function)?|log\s*z)(?![a-z])(?:\s*\([^()]{0,20}\))?"
        r"|\(?\s*\b(?:log[\s-]*sum[\s-]*exp|logsumexp|log\s*z|log\s*\(\s*sum\s*\(\s*exp\s*\([^()]{0,20}\)\s*\)\s*\))"
        r"(?:\s*\([^()]{0,20}\))?\s*\)?\s*squared\b"
        r"|\bkeep\s+(?:the\s+)?log[\s-]*(?:partition|z|sum[\s-]*exp)\b[^.;]{0,40}?\bnear\s+zero\b",
        " z_loss ",
    ),
    # Muon: its polar factor
    (r"\bpolar\s+factor\b", " muon "),
    # scoped dropouts are knobs of their own ("attention dropout 0.1" is not "residual dropout 0.1")
    (
        r"\brandomly\s+zero(?:es|ing)?\s+(?:out\s+)?(?:(\d+(?:\.\d+)?\s*%?)\s+of\s+)?(?:the\s+)?(?:post[\s-]*softmax\s+)?"
        r"attention\s+(?:weights|probabilities|probs|maps?)\b",
        r" attn_dropout \1 ",
    ),
    (r"\b(?:attention|attn)[\s_-]+(?:probs?\s+|weights?\s+)?dropout\b", " attn_dropout "),
    (
        r"\bdropout((?:\s+(?:with|of))?(?:\s+p)?\s+[\d.]+%?)?\s+(?:on|in|to)\s+(?:the\s+)?attention\s+"
        r"(?:weights|probs|probabilities|matrix|maps?|scores)\b",
        r" attn_dropout \1 ",
    ),
    (
        r"\b(?:embedding|emb|wte|input)[\s_-]+dropout\b|\bdropout\s+(?:on|after)\s+(?:the\s+)?(?:token\s+)?embeddings?\b",
        " embedding_dropout ",
    ),
    (
        r"\b(?:randomly\s+)?zero(?:es|ing)?\s+(?:out\s+)?a\s+random\s+(\d+(?:\.\d+)?\s*%?)\s+of\s+(?:each|every|the)\b[^.;]{0,30}?\bactivations\b",
        r" dropout \1 ",
    ),
    (
        r"\b(?:skip|drop)(?:s|ping)?\s+(?:each|every)\s+(?:residual\s+)?(?:branch|layer|block)\s+(?:at\s+random|randomly)\b",
        " drop_path ",
    ),
    # Adam's moments said in words or abbreviated ("adam b2 0.99", "Adam second-moment decay 0.99")
    (r"\badam(?:w)?\s+b([12])\b", r" adam beta\1 "),
    (
        r"\b(?:adam(?:w)?(?:'s)?\s+)?second[\s-]+moment(?:\s+(?:decay(?:\s+rate)?|coefficient|beta|ema|average))?\b"
        r"(?![^.;]{0,60}\b(?:muon|orthogonali|matrix\s+optimi))",
        " adam_beta2 ",
    ),
    (
        r"\b(?:adam(?:w)?(?:'s)?\s+)?first[\s-]+moment(?:\s+(?:decay(?:\s+rate)?|coefficient|beta|ema|average))?\b",
        " adam_beta1 ",
    ),
    # abbreviations real ledgers use
    (r"\bls\s+(?=[-+]?\.?\d)", " label_smoothing "),
    (r"\bar\s+(?=\d)|\b(?:per[\s-]*layer\s+)?width\s+multiplier\b", " aspect_ratio "),
    (r"\bemb\s+lr\b|\b(?:input\s+)?embedding\s+(?:table\s+)?learning\s+rate\b", " embedding_lr "),
    (
        r"\b(?:learning\s+rate|lr)\s+(?:of|for)\s+(?:the\s+)?(?:output\s+(?:head|projection|layer)|lm[\s_]head|unembedding)\b"
        r"(?:\s*\(\s*lm[\s_]head\s*\))?"
        r"|\b(?:output\s+(?:head|projection)|lm[\s_]head|unembedding)(?:'s)?\s+(?:learning\s+rate|lr)\b",
        " unembedding_lr ",
    ),
    (
        r"\b(?:learning\s+rate|lr)\s+(?:for|of|on)\s+(?:the\s+)?(?:per[\s-]*layer\s+)?scalar(?:s|\s+param(?:eter)?s)\b"
        r"|\b(?:per[\s-]*layer\s+)?scalar(?:s|\s+param(?:eter)?s)(?:'s)?\s+(?:get\s+)?(?:learning\s+rate|lr)\b",
        " scalar_lr ",
    ),
    (r"\bper[\s-]*device\s+micro[\s-]*batch(?:\s+size)?\b", " device_batch_size "),
    (r"\bdecoupled\s+(?:weight\s+)?decay\b", " weight_decay "),
    (r"\b(smaller|larger|bigger|wider|narrower)\s+(?:attention\s+)?heads\b", r" \1 head_dim "),
    (
        r"\b(?:attention\s+)?heads\s+(?:to|of|with)\s+(\d+)[\s-]*dims?(?:\s+each)?\b|\b(\d+)[\s-]*dims?\s+(?:each|per\s+head)\b",
        r" head_dim \1\2 ",
    ),
    (r"\b(\d+)\s*e\s+top[\s-]*(\d)\b", r" \1 experts top \2 "),
    (
        r"\brouter\s+sends\s+(?:every|each)\s+token\s+(?:through|to)\s+(?:exactly\s+)?(\d+)\s+of\s+(\d+)\s+(?:separate\s+)?"
        r"(?:feed[\s-]*forward\s+(?:networks|blocks)|experts|mlps)\b",
        r" moe top_k \1 n_experts \2 ",
    ),
    # activations and norms written as formulas
    (r"\bmax\s*\(\s*0\s*,\s*x\s*\)\s*squared\b", " relu_squared "),
    (r"\bmax\s*\(\s*0\s*,\s*x\s*\)", " relu "),
    (r"\bx\s*\*\s*phi\s*\(\s*x\s*\)|\bgaussian[\s-]*cdf\b", " gelu "),
    (
        r"\bmultipl(?:y|ies)\s+silu\s*\([^()]{0,20}\)\s+elementwise\s+with\b|\bsilu\s*\([^()]{0,20}\)\s*\*",
        " swiglu ",
    ),
    (r"\belementwise\s+tanh\s*\(\s*alpha\s*\*?\s*x\s*\)|\bdynamic\s+tanh\b|\bdyt\b", " dyt "),
    (r"\bx\s*=?\s*norm\s*\(\s*x\s*\+\s*f\s*\(\s*x\s*\)\s*\)", " post_norm "),
    (r"\bx\s*=?\s*x\s*\+\s*f\s*\(\s*norm\s*\(\s*x\s*\)\s*\)", " pre_norm "),
    (r"\bpost[\s-]*(?:ln|norm|layer[\s-]*norm)\b", " post_norm "),
    (r"\bpre[\s-]*(?:ln|norm|layer[\s-]*norm)\b", " pre_norm "),
    (r"\bsandwich[\s-]*(?:ln|norm)\b", " sandwich_norm "),
    (r"\belementwise[\s-]*affine\b|\blearn(?:able|ed)\s+(?:per[\s-]*channel\s+)?gains?\b", " norm_affine "),
    # attention mechanisms said in words
    (
        r"\bsubtract\w*\s+(?:a\s+)?(?:head[\s-]*specific\s+|per[\s-]*head\s+)?(?:linear\s+)?slope\b[^.;]{0,50}?\bdistance\b",
        " alibi ",
    ),
    (
        r"\b(?:each|every)\s+head's\s+attention\s+(?:scores|logits)\s+by\s+its\s+own\s+(?:trainable|learn(?:ed|able))\s+(?:scalar|temperature)\b"
        r"|\b(?:learn(?:ed|able)|trainable)\s+per[\s-]*head\s+(?:attention\s+)?temperature\b",
        " attn_temperature ",
    ),
    (r"\bextra\s+softmax\s+slot\b|\battention\s+sinks?\b|\bsink\s+(?:logits?|tokens?)\b", " attn_sink "),
    (
        r"\btwo\s+softmax\s+maps\b[^.;]{0,40}\bdifference\b|\bdifferential\s+attention\b|\bdiff[\s-]*attn\b",
        " diff_attn ",
    ),
    (
        r"\b(?:apply\s+)?(?:the\s+)?(?:rotary|rope)(?:\s+(?:transform|embedding|rotation)s?)?\s+(?:to|on)\s+(?:only\s+)?"
        r"(\d+(?:\.\d+)?\s*%?)\s+of\s+(?:the\s+)?(?:channels|dims|dimensions)\b",
        r" partial_rope \1 ",
    ),
    (
        r"\b(?:trainable|learned|learnable)\s+(?:vector|embedding)\s+(?:per|for\s+each)\s+position(?:\s+index)?\b"
        r"|\blearned\s+(?:absolute\s+)?pos(?:ition(?:al)?)?\s+embeddings?\b",
        " learned_positions ",
    ),
    # residual path
    (
        r"\btrainable\s+(?:gate|scalar|scale)\s+(?:that\s+)?(?:starts|initiali[sz]ed)\s+at\s+(?:zero|0)\b(?![.\d])|\brezero\b",
        " rezero ",
    ),
    (
        r"\blearn(?:able|ed)\s+per[\s-]*layer\s+(?:multiplier|scalar|scale)s?\s+on\s+the\s+(?:running\s+)?residual(?:\s+stream)?\b",
        " resid_lambdas ",
    ),
    (
        r"\b(?:input[\s-]*)?embedding[\s-]*skip\s+(?:coefficients|scalars|weights|lambdas)\b"
        r"|\bre[\s-]*inject(?:s|ing)?\s+(?:the\s+)?(?:normali[sz]ed\s+)?(?:token\s+|input\s+)?embeddings?\s+into\s+(?:the\s+)?residual(?:\s+stream)?\b",
        " x0_mixing ",
    ),
    (r"(?<!\bx0\s)\bresid(?:ual)?[\s_]+lambdas?\b", " resid_lambdas "),
    (r"\bx0\s+skip(?:\s+mixing)?\b", " x0_mixing "),
    # training tricks said in words
    (r"\bshadow\s+copy\s+of\s+the\s+(?:model\s+)?(?:weights|parameters)\b", " ema "),
    (r"\b([a-z]+)\s*=?\s*(0?\.\d+)\s*\*\s*\1\s*\+\s*0?\.\d+\s*\*\s*[a-z]+\b", r" decay \2 "),
    (
        r"\b(?:arithmetic\s+)?(?:mean|average)\s+of\s+(?:the\s+)?(?:parameter|weight|model|checkpoint)\s+snapshots\b",
        " stochastic weight averaging ",
    ),
    (r"\btargets?\s*=?\s*0?\.\d+\s*\*\s*one[\s-]*hot\s*\+\s*(0?\.\d+)\s*/\s*v\b", r" label_smoothing \1 "),
    (
        r"\b(?:mix|blend)(?:es|ing)?\s+(?:each|every)\s+(?:one|1)[\s-]*hot\s+(?:[\w-]+\s+){0,2}targets?\s+with\s+(?:a\s+)?uniform\b",
        " label_smoothing ",
    ),
    (
        r"\brescale\s+(?:the\s+)?(?:full\s+|global\s+|whole\s+|total\s+)?(?:gradient|grads?|g)\b[^.;]{0,40}?\b(?:norm|length)\b",
        " grad_clip ",
    ),
    (
        r"\bt\s*\+\s*2\s+prediction\s+head\b|\bpredict(?:ing|s)?\s+2\s+(?:steps|tokens)\s+ahead\b",
        " multi_token_prediction ",
    ),
    (
        r"\bprogressively\s+(?:lengthen|grow|increase)\s+the\s+(?:context|sequence(?:\s+length)?)\b|\bseq(?:uence)?\s+len(?:gth)?\s+curriculum\b",
        " seq_warmup ",
    ),
    (r"\b8[\s-]*bit\s+float(?:ing[\s-]*point)?\b", " fp8 "),
    (r"\b(?:learnable\s+)?additive\s+offset(?:\s+vectors?)?\b", " bias "),
    (r"\b1\s+k\s+and\s+1\s+v\s+projections?\s+shared\b", " kv_heads 1 "),
    (r"\binterpolate\s+each\s+position's\s+embedding\s+with\s+(?:its\s+)?(?:predecessor|previous)", " token_shift "),
    (r"\btoken[\s-]*shift\b", " token_shift "),
    (
        r"\b(?:compute|run|feed)\s+(?:the\s+)?attention\s+and\s+(?:the\s+)?(?:mlp|feed[\s-]*forward)(?:\s+(?:branches|blocks|sublayers))?\s+"
        r"(?:(?:from|on|off|with)\s+)?the\s+same\s+(?:normed\s+|normali[sz]ed\s+)?input\b"
        r"(?:\s+(?:side[\s-]+by[\s-]+side|in\s+parallel))?(?:\s+and\s+(?:add|sum)\s+(?:both|their|the\s+two)(?:\s+outputs?)?"
        r"\s+(?:in)?to\s+the\s+residual(?:\s+stream)?(?:\s+(?:at\s+once|in\s+a\s+single\s+update))?)?",
        " parallel_blocks ",
    ),
    (
        r"\binto\s+the\s+(?:unembedding|lm[\s_]head|output\s+head)\s+without\s+normali[sz]ing(?:\s+it)?\b",
        " no final_norm ",
    ),
    (r"\bbatch[\s-]*size\s+(?:warm[\s-]*up|ramp|schedule|curriculum)\b", " batch_warmup "),
    (r"\bwarm[\s-]*up[\s-]+stable[\s-]+decay\b|\bwsd\b|\btrapezoidal\b", " wsd_lr "),
    (r"\bramp\s+(?:the\s+)?muon(?:'s)?\s+momentum\b", " momentum_warmup "),
    (r"\bcontext\s+of\s+(?=\d)", " seq_len "),
    (
        r"\b(?:last|final)\s+(?:rms[\s-]*)?norm(?=\s+(?:ahead\s+of|before)\s+(?:the\s+)?(?:output\s+head|lm[\s_]head|unembedding)\b)",
        " final_norm ",
    ),
    (r"\bmodel[\s_]dim\s*=?\s*depth\s*\*\s*(\d+)", r" aspect_ratio \1 "),
    (r"\bsquared\s+log\s+of\s+the\s+(?:softmax\s+)?(?:normali[sz]er|partition(?:\s+function)?)\b", " z_loss "),
    (r"\b(\d+(?:\.\d+)?\s*k?)\s+(?:bpe\s+)?(?:tokeni[sz]er|vocab(?:ulary)?)\b", r" vocab_size \1 "),
    (r"\b(?:mlp|ffn|feed[\s-]*forward)\s+hidden\s+(?:dim(?:ension)?|size|width)\s+ratio\b", " mlp_ratio "),
    (r"\b(\d+(?:\.\d+)?)\s*x\s+(?:n[\s_]embd|d[\s_]model|model[\s_]dim(?:ension)?)\b", r" \1x "),
    (r"\b(\d+(?:\.\d+)?\s*[km]?)[\s-]*tokens?\s+batch(?:es)?\b", r" batch_size \1 "),
    (r"\bdevice[\s_]+bs\b", " device_batch_size "),
    (r"\b(?:over|across)\s+(\d+)\s+micro[\s-]*batches\b", r" grad_accum \1 "),
    (r"\b(?:per[\s-]*(?:gpu|device)\s+)?micro[\s-]*batch(?:es)?(?:\s+size)?\b", " device_batch_size "),
    (
        r"\b(?:per[\s-]*head\s+)?linear\s+(?:distance\s+)?(?:penalty|bias)\s+(?:to|on)\s+(?:the\s+)?attention\s+(?:logits|scores)\b",
        " alibi ",
    ),
    (
        r"\b(?:block|mask)\s+attention\s+across\s+(?:eos|bos|document)\s+boundaries\b|\bonly\s+see\s+(?:their|its)\s+own\s+document\b",
        " doc_masking ",
    ),
    (r"\b(?:early|first[\s-]*half)\s+layers?\s+to\s+(?:its|their)\s+mirror(?:ed)?\b", " unet_skips "),
    (r"\bfa[23]\b|\bflash[\s-]*attention[\s-]*[23]\b", " flash_attention "),
    (
        r"\b(?:start|init(?:iali[sz]e)?)\s+(?:the\s+)?(?:output\s+projections?|c[\s_]proj)\b[^.;]{0,40}?\b(?:at|to)\s+(?:0|zero)\b(?![.\d])",
        " zero_init ",
    ),
    (
        r"\bmix\s+[\d.]+\s+of\s+the\s+(?:1|one)[\s-]*hot\s+with\s+([\d.]+)\s+(?:spread\s+)?uniform(?:ly)?\b",
        r" label_smoothing \1 ",
    ),
    (r"\bnormali[sz]e\s+by\s+(?:the\s+)?root[\s-]*mean[\s-]*square\b", " rmsnorm "),
    (r"\btrainable\s+per[\s-]*channel\s+(?:scale|gain)\b", " norm_affine "),
    (r"\blearnable\s+key\s*/\s*value\s+slot\b", " attn_sink "),
    (r"\bquery\s*/\s*key\s+normali[sz]ation\b|\bq\s*/\s*k\s+normali[sz]ation\b", " qk_norm "),
    (r"\btranspose\s+of\s+the\s+(?:input\s+)?(?:token\s+)?(?:embedding\s+)?(?:table|matrix)\b", " tied "),
    (r"\bper[\s-]*element\s+adaptive[\s-]*moment\b|\badaptive[\s-]*moment\s+(?:steps|updates|estimation)\b", " adamw "),
    (
        r"\b(?:feed[\s-]*forward|mlp)(?:\s+blocks?)?[^.;]{0,20}?\bhidden\s+(?:width|size|dim)\s+(\d+(?:\.\d+)?)\s*\*\s*d\b",
        r" mlp_ratio \1 ",
    ),
    (r"\b(\d+(?:\.\d+)?)\s*\*\s*d(?:[\s_]?model)?\b", r" \1x "),
    (
        r"\b(?:apply\s+)?(?:the\s+)?(?:rotary|rope)(?:\s+(?:transform|embedding|rotation)s?)?\s+(?:to|on)\s+(?:only\s+)?half\s+of\s+(?:the\s+)?(?:channels|dims|dimensions)\b",
        " partial_rope 0.5 ",
    ),
    (r"\bvalue[\s-]*embeddings?[\s-]+gat(?:e|es|ing)\b(?![\s_]+channels)", " ve_gate "),
    # a softcap written as its formula, on the attention scores or on the logits
    (
        r"\b(?:attention|attn)\s+(?:scores|logits)\b[^.;]{0,30}?(\d+(?:\.\d+)?)\s*\*\s*tanh\s*\(\s*[a-z]+\s*/\s*\1\s*\)",
        r" attn_softcap \1 ",
    ),
    (
        r"\b(?:attention|attn)\s+(?:scores?|logits?)\s+(?:soft|tanh)[\s-]*cap(?:s|ped|ping)?(?:\s+at\s+(\d+(?:\.\d+)?))?",
        r" attn_softcap \1 ",
    ),
    (r"\b(\d+(?:\.\d+)?)\s*\*\s*tanh\s*\(\s*[a-z]+\s*/\s*\1\s*\)", r" logit_softcap \1 "),
    (r"\bc\s*\*\s*tanh\s*\(\s*[a-z]\s*/\s*c\s*\)(?:\s+squash(?:ing)?)?|\btanh\s+squash(?:ing)?\b", " logit_softcap "),
    (r"\b1\s*-\s*sqrt\b(?:\s*\([^()]{0,60}\))?", " sqrt_decay "),
    # the shape of a warmdown is the schedule's, its length is the ratio's
    (r"\b(?:warmdown|cooldown|decay)\s+(?:shape|curve)\b", " lr_schedule "),
    # "decay on the Muon matrices" says where, it does not choose Muon
    (r"\b(on|for|to)\s+(?:the\s+)?(?:nor)?muon\s+(matrices|params|parameters|weights)\b", r" \1 the \2 "),
    # "a tuple of betas" is Adam's two
    (
        r"\(\s*(0?\.\d+)\s*,\s*(0?\.\d+)\s*\)\s*(?:for\s+)?(?:the\s+)?adam(?:w)?\s+betas\b(?!\s*->)"
        r"|\badam(?:w)?\s+betas\s*(?:to|of)?\s*\(\s*(0?\.\d+)\s*,\s*(0?\.\d+)\s*\)(?!\s*->)",
        r" adam_beta1 \1\3 , adam_beta2 \2\4 ",
    ),
    # what a technique does, said instead of its name (the common ones of small-LM ledgers)
    (r"\boff\s+(?=(?:the|a|an|of|each|every)\b)", " from "),  # "in parallel off the same input" switches nothing off
    (r"\bget(?:ting)?\s+rid\s+of\b", " remove "),
    (
        r"\b(?:every|all|each)\s+layers?\s+(?:to\s+)?attends?\s+(?:over|to)\s+(?:the\s+)?(?:entire|full|whole)\s+"
        r"(?:context(?:\s+window)?|sequence)\b",
        " no sliding_window ",
    ),
    (
        r"\b(?:a\s+)?(?:silu|swish)[\s-]*(?:activated|gated)?\s+(?:projection|branch)\s+"
        r"(?:multiplies|gates|times|scales)\s+(?:a\s+|the\s+)?(?:second|other)\s+(?:linear\s+)?projection\b",
        " swiglu ",
    ),
    (
        r"\b(?:per[\s-]*layer\s+)?(?:token\s+)?(?:lookup\s+)?(?:tables|embeddings)\s+(?:whose\s+(?:outputs|vectors)\s+(?:are|get)\s+)?"
        r"(?:get\s+)?(?:mixed|added|gated)\s+into\s+(?:the\s+)?(?:attention\s+)?(?:values|v)\b",
        " value_embeddings ",
    ),
    # a cap on the attention scores is not the final logit cap
    (
        r"\b(?:soft|tanh)[\s-]*cap(?:s|ped|ping)?\s+(?:the\s+)?(?:attention|attn)\s+(?:scores|logits)(?:\s+at\s+(\d+(?:\.\d+)?))?",
        r" attn_softcap \1 ",
    ),
    (
        r"\bcap(?:s|ped|ping)?\s+(?:the\s+)?(?:output\s+)?logits\s+at\s+(\d+(?:\.\d+)?)\s+with\s+(?:a\s+)?tanh\b",
        r" logit_softcap \1 ",
    ),
    (
        r"\b(?:tanh\s+)?soft[\s-]*cap(?:ping)?\s*(?:=|of)?\s*(\d+(?:\.\d+)?)?\s+(?:on|of|for)\s+(?:the\s+)?attention\s+(?:scores|logits)\b"
        r"|\b(?:attention|attn)[\s_-]+(?:scores?\s+|logits?\s+)?soft[\s-]*cap(?:ping)?\b",
        r" attn_softcap \1 ",
    ),
    (
        r"\b(?:rescale|scale|clip)\s+(?:all\s+|the\s+)?(?:gradients|grads)(?:\s+(?:all\s+)?down)?\s+(?:whenever|when|if)\s+"
        r"(?:their|the)\s+(?:global\s+|total\s+)?(?:l2\s+)?norm\s+(?:goes\s+above|exceeds|is\s+above|is\s+over)"
        r"|\bif\s+the\s+(?:global\s+|total\s+)?(?:l2\s+)?norm\s+of\s+(?:all\s+)?(?:the\s+)?(?:gradients|grads)\s+"
        r"(?:exceeds|goes\s+above|is\s+above)",
        " grad_clip ",
    ),
    (
        r"\b(?:pass(?:ing)?|send(?:ing)?|put(?:ting)?)\s+(?:the\s+)?(?:output\s+)?logits\s+through\s+(?:a\s+|the\s+)?"
        r"(?:scaled\s+)?tanh\b(?:\s+squash(?:ing)?)?",
        " logit_softcap ",
    ),
    (
        r"\bband(?:ed)?\s+(?:causal\s+)?(?:attention\s+)?mask\s+(?:of\s+)?width\s+(\d+)",
        r" sliding_window window_size \1 ",
    ),
    (r"\b(?:local\s+)?band(?:ed)?\s+(?:causal\s+)?attention\b", " sliding_window "),
    (r"\bx0[\s_-]*(?:residual\s+)?mix(?:ing)?\b", " x0_mixing "),
    (r"\bgated\s+mlp\s+with\s+(?:a\s+)?(?:silu|swish)\b", " swiglu mlp "),
    (
        r"\b(?:an?\s+)?(?:linear\s+)?distance[\s-]*(?:based\s+)?(?:penalty|bias)\s+on\s+(?:the\s+)?attention\s+(?:scores|logits)\b",
        " alibi ",
    ),
    (
        r"\b(?:mlp|ffn|feed[\s-]*forward)(?:\s+(?:hidden|ratio|expansion|layer|width|size))*\s+from\s+(\d+(?:\.\d+)?)\s*x"
        r"(?:\s+(?:the\s+)?(?:model[\s_]*dim(?:ension)?|width|n[\s_]?embd|d[\s_]?model))?\s+to\s+(\d+(?:\.\d+)?)\s*x\b"
        r"(?:\s+(?:hidden\s+)?(?:dim(?:ension)?\s+)?expansion)?",
        r" mlp_ratio \1 -> \2 ",
    ),
    (
        r"\b(?:apply|use|add)\s+(?:an?\s+)?(?:rms[\s-]*|l2[\s-]*|layer[\s-]*)?norm(?:ali[sz]ation)?\s+(?:to|on)\s+(?:both\s+)?(?:the\s+)?"
        r"(?:queries|query|q)\s+and\s+(?:the\s+)?(?:keys?|k)(?:\s+vectors)?\b"
        r"|\b(?:rms[\s-]*|l2[\s-]*)?normali[sz](?:e|es|ed|ing)\s+(?:both\s+)?(?:the\s+)?"
        r"(?:(?:queries|query(?:\s+vectors)?|q)\s+and\s+(?:the\s+)?(?:keys|key(?:\s+vectors)?|k)"
        r"|(?:keys|key(?:\s+vectors)?|k)\s+and\s+(?:the\s+)?(?:queries|query(?:\s+vectors)?|q))\b"
        r"(?:\s+with\s+(?:an?\s+)?(?:rms[\s-]*|layer[\s-]*|l2[\s-]*)?norm\w*)?",
        " qk_norm ",
    ),
    (
        r"\bsquar(?:e|es|ed|ing)\s+(?:the\s+)?(?:output\s+of\s+(?:the\s+)?)?relu(?:\s+(?:output|activations?))?\b"
        r"|\brelu\s+(?:followed\s+by|then)\s+(?:a\s+)?squar(?:e|ing)\b",
        " relu_squared ",
    ),
    (
        r"\b(?:running|moving|exponential(?:ly\s+decayed)?)\s+average\s+of\s+(?:the\s+)?(?:model(?:'s)?\s+)?(?:weights|parameters|params)\b",
        " ema ",
    ),
    (
        r"\bpredict(?:s|ing)?\s+(?:the\s+)?(?:next\s+)?(?:\d+|two|three|four|several|multiple)\s+(?:future\s+)?tokens\s+"
        r"(?:ahead|at\s+once|per\s+position|in\s+parallel)\b",
        " multi_token_prediction ",
    ),
    (
        r"\b(?:an?\s+)?(?:linear\s+)?(?:penalt(?:y|ies)|bias(?:es)?)\s+(?:on|to)\s+(?:the\s+)?attention\s+(?:scores|logits)\s+"
        r"(?:that\s+)?(?:grows?|grow(?:ing|s)|increas\w+|scal\w+)\s+(?:linearly\s+)?(?:with|by)\s+(?:the\s+)?(?:token\s+|query[\s-]*key\s+)?distance\b",
        " alibi ",
    ),
    (
        r"\b(?:don't|do\s+not|never)\s+(?:let\s+)?(?:tokens\s+)?attend\s+(?:across|to)\s+(?:tokens\s+(?:of|from|in)\s+)?"
        r"(?:other|previous|different|neighbou?ring)\s+documents\b"
        r"|\bmask(?:s|ed|ing)?\s+(?:the\s+)?attention\s+(?:across|between)\s+(?:different\s+)?documents\b"
        r"|\b(?:stop|prevent|keep|block)(?:s|ping|ing)?\s+(?:the\s+)?attention\s+from\s+(?:crossing|leaking\s+across)\s+document\s+boundaries\b"
        r"|\bblock[\s-]*diagonal\s+(?:causal\s+)?(?:attention\s+)?mask\b"
        r"|\b(?:don't|do\s+not|never)\s+attend\s+across\s+document\s+boundaries\b"
        r"|\bdoc(?:ument)?[\s_-]*mask(?:ing)?\b|\bintra[\s-]*document\s+attention(?:\s+only)?\b",
        " doc_masking ",
    ),
    (
        r"\b(?:mix|add|feed|blend)(?:es|ed|ing)?\s+(?:the\s+)?(?:initial|input|original|token)\s+embeddings?\s+(?:back\s+)?"
        r"into\s+(?:the\s+)?(?:every|each|all)\s+(?:layers?|blocks?)(?:'s?)?(?:\s+residual(?:\s+stream)?)?\b",
        " x0_mixing ",
    ),
    (
        r"\bfewer\s+(?:key\s*/\s*value|key[\s-]*value|kv)\s+heads\s+than\s+(?:query\s+)?heads\b"
        r"|\b(?:key\s*/\s*value|key[\s-]*value|kv)\s+heads?\s+shared\s+(?:by|across)\s+(?:groups\s+of\s+)?query\s+heads\b",
        " kv_heads ",
    ),
    (
        r"\b(?:1|a|the\s+same|single)\s+(?:shared\s+)?(?:weight\s+)?(?:matrix|matrices|weights?|parameters?)\s+"
        r"(?:for|between)\s+(?:both\s+)?(?:the\s+)?(?:(?:token|input)\s+){0,2}embeddings?(?:\s+(?:lookup|table|matrix))?\s+and\s+(?:the\s+)?"
        r"(?:output|unembedding|lm[\s-]*head|readout|final)\b(?:\s+(?:projection|layer|head|matrix))?"
        r"(?:\s+(?:to|onto)\s+(?:the\s+)?vocab(?:ulary)?\b)?"
        r"|\breus(?:e|ing)\s+(?:the\s+)?(?:(?:token|input)\s+){0,2}embeddings?(?:\s+(?:matrix|weights))?\s+(?:as|for)\s+"
        r"(?:the\s+)?(?:output|unembedding|lm[\s-]*head|readout)\b(?:\s+(?:projection|layer|head|matrix))?",
        " tied ",
    ),
    (
        r"\b(?:mix(?:ing)?|blend(?:ing)?)\s+(?:the\s+)?(?:(?:one|1)[\s-]*hot\s+)?(?:targets?|labels?)\s+with\s+(?:a\s+)?uniform\b"
        r"|\bsoften(?:ed|ing|s)?\s+(?:the\s+)?(?:(?:one|1)[\s-]*hot\s+)?(?:next[\s-]*token\s+)?(?:targets?|labels?)\b"
        r"|\bspread(?:s|ing)?\s+(\d+(?:\.\d+)?\s*%?)\s+of\s+(?:the\s+)?(?:probability\s+)?mass\b"
        r"|\bsmooth(?:s|ed|ing)?\s+(?:the\s+)?(?:[a-z]+(?:'s)?\s+)?(?:target|label)\s+distributions?\b",
        r" label_smoothing \1 ",
    ),
    (
        r"\b(?:rescale|cap|limit|clamp|bound)\s+(?:the\s+)?(?:global\s+)?(?:l2\s+)?(?:gradient|grad)s?(?:'s)?\s+norms?\b"
        r"|\b(?:gradient|grad)\s+norms?\s+(?:capped|clamped|limited)\b",
        " grad_clip ",
    ),
    (
        r"\brotat(?:e|es|ing)\s+(?:the\s+)?(?:query|queries|q)(?:\s*(?:/|and)\s*(?:key|keys|k))?(?:\s+(?:pairs|vectors))?\s+by\s+"
        r"(?:a\s+)?position[\s-]*(?:dependent|based)\b(?:\s+angles?)?",
        " rope ",
    ),
    (
        r"\b(?:squash|bound|cap|clamp)(?:es|ed|ing)?\s+(?:the\s+)?(?:output\s+)?logits\s+(?:with|through|by)\s+(?:a\s+)?tanh\b",
        " logit_softcap ",
    ),
    (
        r"\b(?:randomly\s+)?(?:skip|drop)(?:ping)?\s+(?:whole\s+)?(?:residual\s+)?(?:branches|layers|blocks)\s+(?:at\s+random|randomly)\b"
        r"|\bstochastic\s+depth\b|\bdrop[\s-]*path\b|\brandomly\s+(?:skip|drop)(?:ping)?\s+(?:whole\s+)?(?:residual\s+)?(?:branches|layers|blocks)\b",
        " drop_path ",
    ),
    (
        r"\brandomly\s+zero(?:ing|es)?\s+(?:out\s+)?(?:a\s+fraction\s+of\s+)?(?:the\s+)?(?:activations|units|neurons)\b",
        " dropout ",
    ),
    # Muon's Newton-Schulz steps, said as what they compute: "3 iterations of the quintic polynomial that
    # orthogonalises the update"
    (
        r"\b(?:iterations?|steps?|passes|pass|rounds?)\s+(\([^()]{0,30}\)\s+)?of\s+(?:the\s+)?"
        r"(?:quintic|cubic|polynomial|newton[\s-]*schulz)(?:\s+(?:polynomial|approximation|iteration|map))*"
        r"(?:\s+(?:that|which)\s+orthogonali[sz]es(?:\s+(?:(?:nor)?muon's|the))?(?:\s+(?:updates?|gradients?|momentum))?)?",
        r" ns_steps \1 ",
    ),
    (
        r"\b(?:quintic|polynomial|newton[\s-]*schulz)\s+iterations?\b|\borthogonali[sz]ation\s+(?:iterations?|steps?|passes)\b",
        " ns_steps ",
    ),
    (
        r"\borthogonali[sz](?:e|es|ed|ing|ation)[\s-]+(?:of\s+)?(?:the\s+)?(?:(?:2[\s-]?d|matrix|weight|hidden)\s+){0,2}(?:updates?|gradients?|momentum)\b",
        " muon ",
    ),
    # the second-moment average said in words: Adam's, or Muon's own when Muon is named with it
    (
        r"\b(?:nor)?muon's\s+(?:ema|(?:exponential\s+|running\s+)?(?:moving\s+)?average)\s+of\s+(?:the\s+)?squared\s+grad(?:ient)?s?\b"
        r"|\b(?:ema|(?:exponential\s+|running\s+)?(?:moving\s+)?average)\s+of\s+(?:the\s+)?squared\s+grad(?:ient)?s?\s+"
        r"(?:that|which)\s+(?:nor)?muon\b(?:\s+(?:uses|keeps|normali[sz]es)\b(?:\s+by\b)?)?",
        " muon_beta2 ",
    ),
    (
        r"\b(?:ema|(?:exponential\s+|running\s+)?(?:moving\s+)?average)\s+of\s+(?:the\s+)?squared\s+grad(?:ient)?s?\b"
        r"(?=[^.;]{0,40}\bmuon\b)",
        " muon_beta2 ",
    ),
    (
        r"\b(?:ema|(?:exponential\s+|running\s+)?(?:moving\s+)?average)\s+of\s+(?:the\s+)?squared\s+grad(?:ient)?s?\b",
        " adam_beta2 ",
    ),
    (
        r"\b(?:share|sharing)\s+(?:the\s+)?(?:key\s*(?:/|and)\s*value|kv)\s+(?:heads|projections)\s+across\s+(?:the\s+)?(?:query\s+)?heads\b",
        " kv_heads ",
    ),
    (
        r"\b(?:1|a)\s+(?:single\s+)?shared\s+(?:key\s*/\s*value|kv|key[\s-]*value)\s+head\b",
        " kv_heads 1 ",
    ),
    (
        r"\b(?:attention|attn)\s+and\s+(?:the\s+)?mlp\b(?:\s+(?:branches|blocks|sublayers))?[^.;]{0,60}?"
        r"\b(?:side[\s-]+by[\s-]+side|in\s+parallel|simultaneously)\b"
        r"(?:\s+and\s+(?:add|sum)\s+(?:both|their|the\s+two)\s+outputs?\b(?:\s+(?:to|into)\s+the\s+residual(?:\s+stream)?)?)?",
        " parallel_blocks ",
    ),
    (
        r"\b(?:an?\s+)?l2\s+(?:penalty|regulari[sz]ation)\s+on\s+(?:the\s+)?(?:weights|parameters)\b"
        r"|\bshrink(?:s|ing)?\s+(?:the\s+)?weights\s+toward\s+zero\b",
        " weight_decay ",
    ),
    (r"\blook[\s-]*ahead\s+momentum\b|\bmomentum\s+with\s+(?:a\s+)?look[\s-]*ahead\b", " nesterov "),
    (
        r"\b(?:ramp|increase|raise)\s+(?:the\s+)?(?:lr|learning[\s-]*rate)\s+(?:up\s+)?(?:linearly\s+)?from\s+(?:0|zero)\b(?![.\d])",
        " warmup ",
    ),
    (
        r"\bscal(?:e|es|ed|ing)\s+(?:down\s+)?(?:the\s+|each\s+)?residual\s+(?:branch(?:es)?|stream|connections?|updates?)\b",
        " residual_scale ",
    ),
    (r"\bgated\s+linear\s+units?\s+(?:with|using|of)\s+(?:a\s+)?(?:silu|swish)\b", " swiglu "),
    (r"\bgated\s+linear\s+units?\s+(?:with|using|of)\s+(?:a\s+)?gelu\b", " geglu "),
    (
        r"\b(?:update|step)(?:s)?\s+(?:with|by|using)\s+(?:only\s+)?the\s+sign\s+of\s+(?:the\s+)?"
        r"(?:interpolated\s+)?(?:momentum|gradient)\b"
        r"|\b(?:only\s+)?the\s+sign\s+of\s+(?:an?\s+|the\s+)?(?:momentum|gradient)\s*(?:/|and|-)\s*(?:gradient|momentum)\s+(?:interpolation|blend|mix)\b",
        " lion ",
    ),
    (
        r"\bfused\s+(?:attention|sdpa)\s+kernel\b|\bscaled[\s_]dot[\s_]product[\s_]attention\b|\bsdpa\b",
        " flash_attention ",
    ),
    (
        r"\b(?:mix|add|blend)(?:es|ed|ing)?\s+(?:the\s+)?first[\s-]+layer(?:'s)?\s+values?(?:\s+vectors)?\s+into\s+"
        r"(?:the\s+)?(?:later|every|all|each|subsequent|deeper)\s+(?:later\s+)?layers?\b",
        " value_residual ",
    ),
    (
        r"\brecomput(?:e|es|ed|ing)\s+(?:the\s+)?activations\s+(?:in|during)\s+(?:the\s+)?backward(?:\s+pass)?\b",
        " grad_checkpointing ",
    ),
    (
        r"\baccumulat(?:e|es|ed|ing)\s+(?:the\s+)?grad(?:ient)?s\s+(?:over|across)\s+(\d+)\s+(?:micro[\s-]*)?(?:batches|steps)\b",
        r" grad_accum \1 ",
    ),
    (
        r"\bno\s+bias(?:es)?\b|\bbias[\s-]*free\b|\b(?:remove|drop)\s+(?:the\s+|all\s+)?bias(?:es|\s+terms?)\b",
        " no bias ",
    ),
    (
        r"\b(?:square\s+root|sqrt)\s+of\s+(?:the\s+)?mean\s+(?:of\s+)?(?:the\s+)?squares?\b"
        r"|\broot[\s-]*mean[\s-]*square\s+norm(?:ali[sz]ation)?\b",
        " rmsnorm ",
    ),
    (r"\blayer\s+normali[sz]ation\b", " layernorm "),
    (
        r"\b(?:attend(?:s|ing)?|attention)\s+(?:only\s+)?(?:over|to)\s+(?:a\s+)?(?:local\s+)?(?:band|window)\s+of\s+"
        r"(?:(\d+)\s+)?(?:recent|nearby|previous|neighbou?ring)\s+tokens\b"
        r"|\b(?:short|local|small|narrow)\s+(?:attention\s+)?windows?\b(?!\s*(?:size\s*)?\d)",
        r" sliding_window \1 ",
    ),
    (r"\b(?:short|local|small|narrow)\s+(?:attention\s+)?window(?:\s+size)?\b", " window_size "),
    (
        r"\b(?:attend(?:s|ing)?|attention)\s+(?:only\s+)?(?:over|to)\s+(?:the\s+)?(?:last|previous)\s+(\d+)\s+tokens\b",
        r" sliding_window window_size \1 ",
    ),
    (
        r"\b(?:remove|drop|delete)\s+(?:the\s+)?([a-z][\w\s-]{0,40}?)\s+from\s+(?:every|all|each)\s+(?:layers?|blocks?)\s+"
        r"except\s+(?:the\s+)?(last|final|first)(?:\s+(?:one|layer|block))?\b",
        r" keep \1 only in \2 layer ",
    ),
    (r"\b(\d+(?:\.\d+)?)\s*\*?\s*tanh\s*\(\s*logits?\s*/\s*\1\s*\)", r" logit_softcap \1 "),
    (r"\btanh\s+(?:logit\s+)?(?:soft[\s-]*)?cap(?:ping)?\b|\blogits?\s+cap(?:ping)?\b", " logit_softcap "),
    (
        r"\b(?:partial\s+(?:rope|rotary)(?:\s+embeddings?)?"
        r"|(?:rope|rotary)(?:\s+embeddings?)?\s+on\s+(?:only\s+)?(?=\d+\s+(?:of|out\s+of)\s))",
        " partial_rope ",
    ),
    (r"\b(partial_rope\s+\d+)\s+(?:of|out\s+of)\s+(?:the\s+)?(\d+)(?:\s+head)?\s+dim(?:ension)?s\b", r" \1 \2 "),
    (r"\bexclusive\s+self[\s-]*attention\b|\bxsa\b", " xsa "),
    (r"\bbigram\s*hash\s*embedding\w*|\bbigramhashembedding\b", " bigram_hash "),
    # SWA is sliding-window attention in some ledgers and weight averaging in others: read before the
    # averaging rule below, so the "swa" it writes is never taken for a window
    (r"\bswa\b(?!\s+(?:over|during|for|of|from|every|steps?|start|weights?|averag))", " sliding window "),
    (
        r"\bswa\b(?=\s+(?:over|during|for|of|from|every|steps?|start|weights?|averag))|\bstochastic\s+weight\s+averag\w*",
        " swa ",
    ),
    (r"\bconv(?:olution)?(?:al)?\s+kernel(?:\s+size)?\b", " conv_kernel "),
    (r"\b(\d+)\s+(?:data\s+)?shards?\b", r" \1 data_shards "),
    (r"\bload[\s-]*balanc(?:e|ing)(?:\s+(?:loss|coefficient|weight))?\b|\blb(?=\s*\d)", " load_balance_loss "),
    (r"\b(\d+)\s+experts\b", r" n_experts \1 moe "),
    (r"\btop[\s-]*(\d+)(?:\s+routing)?\b", r" top_k \1 "),
    (r"\b(?:headwise\s+)?attention\s+gate\b|\bheadwise\s+(?:sigmoid\s+)?gate\b", " attn_gate "),
    (r"\beager(?:ly|\s+mode)?\b", " no torch_compile "),
    (r"\bgated\s+(?:silu|swish)\b|\b(?:silu|swish)[\s-]*gated\b", " swiglu "),
    (r"\bswish\b", " silu "),
    (
        r"\b(?:adam(?:w)?[\s_]*)?betas?\s*:?\s*\(?\s*(\d*\.?\d+)\s*[,/]\s*(\d*\.?\d+)\s*\)?",
        r" adam_beta1 \1 adam_beta2 \2 ",
    ),
    (r"\badam(?:w)?\s*b(?:eta)?\s*1\b", " adam_beta1 "),
    (r"\badam(?:w)?\s*b(?:eta)?\s*2\b", " adam_beta2 "),
    (r"\badam(?:w)?[\s_]*(?:peak\s+)?(?:lr|learning[\s-]*rates?)\b", " adam_lr "),
    (
        r"\b(?:mlp|ffn|feed[\s-]*forward)(?:\s+(?:hidden(?:\s+size)?|expansion|mult(?:iplier)?|ratio|width))*"
        r"\s+(?:to\s+)?(\d+(?:\.\d+)?)\s*x\b(?:\s+(?:the\s+)?(?:model[\s_]*dim(?:ension)?|width|n[\s_]?embd|d[\s_]?model))?",
        r" mlp_ratio \1 ",
    ),
    (r"\b(\d+(?:\.\d+)?)\s*x\s+(?:mlp|ffn)\b", r" mlp_ratio \1 "),
    (r"\b(\d+)l\s*x?\s*(\d+)d\b", r" depth \1 width \2 "),
    (r"\b(\d+)l\b", r" depth \1 "),
    (r"\bd(\d+)\b", r" depth \1 "),
    (r"\bshar(?:e|ed|ing)\s+(?:the\s+)?(?:input\s+and\s+output\s+)?embeddings?\b", " tied "),
    (
        r"relu\s*²|relu\s*(?:\(\s*x\s*\)\s*)?(?:\^\s*2|squared)|relu[\s-]*squared|squared[\s-]+relu|\brelu2\b|\brelusq\b",
        " relu_squared ",
    ),
    (r"\bc[\s_]proj\b", " output projection "),
    (r"\bwte\b", " token embedding "),
    (r"\blm[\s_]head\b", " lm head "),
    (r"\bevery\s+(?:other|second)\s+layers?\b|\balternat(?:e|ing)\s+layers?\b", " alternating layers "),
    # gradient-boosted trees, in their standard parameter names (XGBoost / LightGBM)
    (r"\b(\d+(?:\.\d+)?k?)\s+(?:boosting\s+)?(?:trees|rounds|estimators)\b", r" n_estimators \1 "),
    (r"\bn[\s_]est(?:imators)?\b|\bnum[\s_]boost[\s_]rounds?\b|\bnrounds\b", " n_estimators "),
    (r"\bmcw\b|\bmin[\s_]child[\s_]weight\b|\bhessian\s+sum\b", " min_child_weight "),
    (r"\b(\d+)\s+(?:histogram\s+)?(?:bins|buckets)(?:\s+per\s+feature)?\b", r" max_bin \1 "),
    (r"\bmax[\s_]bins?\b", " max_bin "),
    (
        r"\b(\d+(?:\.\d+)?\s*%|0?\.\d+)\s+of\s+(?:the\s+)?rows\b(?:\s+(?:per|for\s+each|in\s+each)\s+tree)?",
        r" subsample \1 ",
    ),
    (
        r"\b(\d+(?:\.\d+)?\s*%|0?\.\d+)\s+of\s+(?:the\s+)?(?:columns|features)\b(?:\s+(?:per|for\s+each|in\s+each)\s+tree)?",
        r" colsample_bytree \1 ",
    ),
    (r"\bcolsample[\s_]bytree\b", " colsample_bytree "),
    # schedules and learning rates
    # "cosine LR decay" is "decay the LR along a cosine"; a layer-wise LR decay scales each layer instead
    (r"(?<!wise\s)\b(?:lr|learning[\s-]*rate)\s+decay\b", " warmdown "),
    (r"\b(?:lr|learning[\s-]*rate)\s+(warm[\s-]*up|warm[\s-]*down|cool[\s-]*down)\b", r" \1 "),
    (r"\b(warm[\s-]*up|warm[\s-]*down|cool[\s-]*down)\s+(?:of\s+)?(?:the\s+)?(?:lr|learning[\s-]*rate)\b", r" \1 "),
    (r"\bmomentum\s+warm[\s-]*up\b", " momentum_warmup "),
    (
        r"\bbatch(?:[\s_]*size)?\s+(?:warm[\s-]*up|ramp(?:[\s-]*up)?)\b"
        r"|\bramp(?:ing)?\s+(?:up\s+)?(?:the\s+)?batch(?:[\s_]*size)?\b",
        " batch_warmup ",
    ),
    (
        r"\b(?:seq(?:uence)?[\s_]*len(?:gth)?|context(?:\s+length)?)\s+(?:warm[\s-]*up|ramp(?:[\s-]*up)?|curriculum)\b",
        " seq_warmup ",
    ),
    (r"\b(?:token\s+|input\s+)?embedding\s+(?:lr|learning[\s-]*rates?)\b|\bembedding[\s_]lr\b", " embedding_lr "),
    (
        r"\b(?:unembedding|lm[\s-]*head|output(?:\s+layer)?|readout)\s+(?:lr|learning[\s-]*rates?)\b"
        r"|\bunembedding[\s_]lr\b",
        " unembedding_lr ",
    ),
    (r"\bscalars?\s+(?:lr|learning[\s-]*rates?)\b|\bscalar[\s_]lr\b", " scalar_lr "),
    (
        r"\b(?:final|end[\s-]+of[\s-]+(?:schedule|training|run))\s+(?:lr|learning[\s-]*rate)\s*(?:fraction|frac|ratio|floor)\b"
        r"|\bfinal[\s_]lr[\s_]frac\b"
        r"|\bmin(?:imum)?\s+(?:lr|learning[\s-]*rate)\s+(?:ratio|fraction)\b|\b(?:final\s+)?(?:lr|learning[\s-]*rate)\s+floor\b",
        " final_lr_frac ",
    ),
    (
        r"\b(?:(?:final|end(?:ing)?)\s+(?:lr|learning[\s-]*rate)\s+)?(?:decay(?:ing)?\s+(?:the\s+)?(?:(?:lr|learning[\s-]*rate)\s+)?)?(?:to|at)\s+(\d+(?:\.\d+)?\s*%?)\s+of\s+(?:the\s+|its\s+)?(?:peak|max(?:imum)?|initial)"
        r"(?:\s+(?:lr|learning[\s-]*rate)|(?=[\s,;.)]|$))",
        r" final_lr_frac \1 ",
    ),
    (
        r"\b(?:lr|learning[\s-]*rate)\s+schedul(?:e|er)s?\b"
        r"|(?<!decay\s)(?<!\bwd\s)(?<!momentum\s)(?<!batch\s)(?<!dropout\s)(?<!noise\s)(?<!beta\s)\bschedule\b",
        " lr_schedule ",
    ),
    (
        r"\b(?:lr|learning[\s-]*rate)\s+(?:flat|constant)\b|\b(?:flat|constant)\s+(?:lr|learning[\s-]*rate)\b",
        " constant_lr ",
    ),
    # a cosine of something else is not the LR schedule: "cosine similarity", "cosine weight decay schedule"
    (
        r"\bcosine(?:\s+(?:decay|annealing|schedule))?\b(?![\s-]+(?:similarity|distance|sim|weight[\s_]*decay|wd|momentum|noise|beta|classifier|annealed\s+weight))",
        " cosine_lr ",
    ),
    (r"\bwarm[\s-]*up\b", " warmup "),
    (
        r"\bwarm[\s-]*down\b|\bcool[\s-]*down\b|\banneal(?:ing)?\b|\blinear(?:ly)?\s+decay\b"
        r"|\bdecay(?:ing|s)?\s+(?:linearly\s+)?to\s+zero\b|\bdecay\s+(?:the\s+)?(?:lr|learning[\s-]*rate)\b",
        " warmdown ",
    ),
    (
        r"\b(?:matrix\s+|peak\s+|base\s+)?(?:lr|learning[\s-]*rates?|step[\s-]*size)\b|\bmatrix[\s_]lr\b",
        " learning_rate ",
    ),
    # size and shape
    (r"\bmixture\s+of\s+depths\b", " mixture_of_depths "),
    (r"\bmulti[\s-]*query(?:\s+attention)?\b|\bmqa\b", " kv_heads 1 "),
    (
        r"\bn[\s_]?kv[\s_]?heads?\b|\bkv[\s-]*heads?\b|\bkey(?:[\s-]*|\s*/\s*)value\s+heads?\b|\bgrouped[\s-]*query\s+attention\b|\bgqa\b",
        " kv_heads ",
    ),
    (r"\bhead[\s_-]*(?:dim(?:ension)?s?|size)\b", " head_dim "),
    # the width of a head said the other ways: "256-dim heads", "heads of 64 dims", "head256"
    (r"\b(\d+)[\s-]*d(?:im(?:ension)?s?|imensional)?\s+(?:attention\s+)?heads?\b", r" head_dim \1 "),
    (r"\b(?:attention\s+)?heads?\s+(?:to|of|with|at)\s+(\d+)\s+dim(?:ension)?s?\b", r" head_dim \1 "),
    (r"\bhead(\d+)\b", r" head_dim \1 "),
    (
        r"\b(?:mlp|ffn|feed[\s-]*forward)\s+(?:expansion(?:\s+(?:ratio|multiplier|mult|factor))?|ratio|multiplier|mult|factor|hidden\s+size)\b"
        r"|\bexpansion\s+(?:ratio|factor)\b",
        " mlp_ratio ",
    ),
    (r"\b(\d+(?:\.\d+)?)\s*x\s+(?:the\s+)?(?:model[\s_]*dim(?:ension)?|width|n[\s_]?embd|d[\s_]?model)\b", r" \1 "),
    (
        r"\bn[\s_]?heads?\b|\bnum[\s_]heads\b"
        r"|\b(?:number\s+of\s+)?(?<!prediction\s)(?<!output\s)(?<!classifier\s)(?<!policy\s)(?<!value\s)(?:attention\s+)?heads\b",
        " n_heads ",
    ),
    # N layers is the depth, but "the last 2 layers", "3 of 4 layers" are where a change applies
    (
        r"(?<!last\s)(?<!first\s)(?<!final\s)(?<!\btop\s)(?<!bottom\s)(?<!upper\s)(?<!lower\s)(?<!\bof\s)(?<!\bon\s)"
        r"\b(\d+)\s+(?:transformer\s+)?(?:layers|blocks)(?:\s+deep)?\b(?!\s+(?:of|in)\b)",
        r" depth \1 ",
    ),
    (r"\bn[\s_]?layers?\b|\bnum[\s_]layers\b|\bnumber\s+of\s+(?:layers|blocks)\b|\blayers\s+deep\b", " depth "),
    (r"\b(?:\d+\s+(?:more\s+)?layers?\s+)?deeper\b", " increase depth "),
    (r"\b(?:\d+\s+(?:fewer\s+)?layers?\s+)?shallower\b", " decrease depth "),
    (
        r"\bmodel[\s_]*dim(?:ension)?\b|\bn[\s_]?embd\b|\bd[\s_]?model\b|\bhidden[\s_]*(?:size|dim(?:ension)?)\b"
        r"|\bembedding[\s_]*dim(?:ension)?\b",
        " width ",
    ),
    (r"\bwider\b", " increase width "),
    (r"\bnarrower\b", " decrease width "),
    (r"\baspect[\s_]*ratio\b", " aspect_ratio "),
    (
        r"\b(?:untie[ds]?|untying)\b|\bseparate\s+(?:embedding\s+)?(?:weights|matrices|parameters)\b|\bdecoupled?\b",
        " untied ",
    ),
    # ("break ties in the ranking" ties nothing)
    (r"\bweight\s+tying\b|\b(?:tie|tied|tying)\b|\bshared\s+(?:input\s+and\s+output\s+)?embeddings?\b", " tied "),
    # norms, positions, attention
    (
        r"\bqk[\s_-]*(?:rms[\s_-]*|layer[\s_-]*)?norm(?:ali[sz]ation)?\b|\bquery[\s-]*key\s+norm(?:ali[sz]ation)?\b",
        " qk_norm ",
    ),
    (r"\bfinal\s+(?:layer\s*)?norm\b|\bnorm\s+before\s+the\s+lm\s+head\b", " final_norm "),
    (r"\brms[\s_-]*norm\b", " rmsnorm "),
    (r"\blayer[\s_-]*norm\b", " layernorm "),
    (
        r"\b(?:rope|rotary)(?:\s+position(?:al)?)?(?:\s+(?:embeddings?|encodings?))?\s+(?:base|theta|frequency|freq)\b|\brope[\s_]theta\b",
        " rope_base ",
    ),
    (r"\brotary(?:\s+(?:position(?:al)?\s+)?embeddings?)?\b|\brope\b", " rope "),
    (r"\balibi(?:\s+positional\s+bias)?\b", " alibi "),
    (r"\bno\s+positional\s+(?:encodings?|embeddings?)\b|\bnope\b", " nope "),
    (r"\blearned\s+(?:absolute\s+)?(?:positional|position)\s+(?:embeddings?|encodings?)\b", " learned_positions "),
    (r"\b(\d+)[\s-]*token\s+window\b", r" window_size \1 "),
    (r"\bwindow[\s_]*(?:size|length)\b", " window_size "),
    (
        r"\bsliding[\s-]*windows?(?:\s+attention)?\b|\bwindowed\s+attention\b|\blocal\s+attention\b",
        " sliding_window ",
    ),
    # a number given the window is its size: "sliding window 256", "sliding window attention with window 256"
    (r"\bsliding_window\s+(?=\d)|\bwindow\s+(?=\d)", " sliding_window window_size "),
    (r"\b(?=[sl]*s)(?=[sl]*l)([sl]{3,8})\b", r" window_pattern_\1 "),
    (
        r"\b(?:global\s+)?full[\s-]+(?:context\s+)?attention\b|\bglobal\s+attention\b|\ball\s+layers\s+(?:are\s+)?global\b",
        " no sliding_window ",
    ),
    (
        r"\b(?:logit|output\s+logits?)\s+soft[\s-]*cap(?:ping)?\b|\bsoft[\s-]*cap(?:ping)?(?:\s+the)?(?:\s+output)?\s+logits\b"
        r"|\bsoft[\s-]*cap(?:ping)?\b",
        " logit_softcap ",
    ),
    (r"\bvalue[\s_-]*embed(?:ding)?s?\b|\bve\b(?!\s+gate)", " value_embeddings "),  # ve_gate_channels is the gate's
    (r"\bvalue[\s_-]*residuals?(?:\s+learning)?\b", " value_residual "),
    (r"\bflash[\s-]*attention(?:[\s-]*\d)?\b", " flash_attention "),
    # optimisers
    (r"\bnesterov(?:\s+momentum)?\b", " nesterov "),
    (
        r"\bmuon(?:\s+optimizer)?(?:'s)?\s+(?:initial\s+|final\s+|start(?:ing)?\s+|peak\s+)?momentum(?:\s+coefficient)?\b"
        r"|\bmomentum\s+(?:of|for)\s+(?:the\s+)?muon\b",
        " muon_momentum ",
    ),
    # NorMuon's second moment is Muon's own, not Adam's: "Muon beta2 0.95->0.90"
    (r"\b(?:nor)?muon(?:'s)?\s+beta[\s_]*2\b", " muon_beta2 "),
    (r"\badam(?:w)?\s+beta[\s_]*1\b|(?<!\bkl\s)(?<!\bdpo\s)\bbeta[\s_]*1\b", " adam_beta1 "),  # a KL's β is not Adam's
    (r"\badam(?:w)?\s+beta[\s_]*2\b|\bbeta[\s_]*2\b", " adam_beta2 "),
    (r"\badam(?:w)?\s+eps(?:ilon)?\b", " adam_eps "),
    (r"\bnewton[\s-]*schulz(?:\s+(?:steps|iterations|iters))?\b|\bns[\s_]*(?:steps|iters|iterations)\b", " ns_steps "),
    (r"\badamw?\b", " adamw "),
    # decay on the embedding tables is a knob of its own (the matrices' decay is weight_decay)
    (
        r"\b(?:weight[\s_]*decay|wd)\b(?=(?:\s+(?:of\s+)?[-+]?\.?\d[\d.e+-]*)?(?:\s+from\s+[\d.e+-]+\s+to\s+[\d.e+-]+)?"
        r"\s+(?:on|to|for)\s+(?:the\s+)?(?:token\s+|value\s+)?embeddings?(?:\s+(?:tables?|matri(?:x|ces)|weights))?\b)"
        r"|\b(?:token\s+|value\s+)?embeddings?(?:\s+(?:tables?|matri(?:x|ces)))?\s+(?:weight[\s_]*decay|wd)\b",
        " embedding_weight_decay ",
    ),
    (r"\bweight[\s_]*decay\b|\bwd\b", " weight_decay "),
    (
        r"\bgrad(?:ient)?s?[\s_-]*(?:norm[\s_-]*)?clip(?:ping)?\b|\bclip(?:ping)?\s+(?:the\s+)?(?:global\s+)?grad(?:ient)?s?(?:[\s_-]*norms?)?\b|\bmax[\s_]norm\b"
        r"|\bmax[\s_]*grad[\s_]*norm\b",
        " grad_clip ",
    ),
    (r"\bgrad(?:ient)?[\s_-]*accum(?:ulation)?(?:[\s_-]*steps)?\b|\bmicro[\s-]*steps?\b", " grad_accum "),
    (r"\bgrad(?:ient)?[\s_-]*checkpoint(?:ing)?\b|\bactivation\s+checkpointing\b", " grad_checkpointing "),
    # data
    (
        r"\bdevice[\s_]*batch(?:[\s_]*size)?\b|\bmicro[\s_]*batch[\s_]*size\b|\bper[\s-]*device\s+batch(?:\s+size)?\b",
        " device_batch_size ",
    ),
    (r"\b(?:total\s+)?batch(?:[\s_]*size)?\b(?![\s_-]*norm)|\bbs\b", " batch_size "),  # batch norm is no batch size
    (
        r"\bmax[\s_]seq[\s_]len\b|\bseq(?:uence)?[\s_]*len(?:gth)?\b|\bcontext[\s_]*(?:length|len|window|size)\b"
        r"|(?<!in-)(?<!retriever\s)\bcontext\b(?=\s*(?:=|:|to|from)?\s*\d)"
        r"|\bblock[\s_]*size\b|\bctx(?:[\s_]*len)?\b",
        " seq_len ",
    ),
    (r"\bvocab(?:ulary)?(?:[\s_]*size)?\b", " vocab_size "),
    (
        r"\btoken[\s-]*drop(?:out|ping)?\b|\bdrop(?:ping)?\s+(?:\d+(?:\.\d+)?\s*%?\s+of\s+(?:the\s+)?)?tokens\b",
        " token_dropout ",
    ),
    (r"\bdropout\b", " dropout "),
    (r"\blabel[\s_-]*smooth(?:ing)?\b|\bsmooth(?:ed|ing)?\s+(?:the\s+)?labels\b", " label_smoothing "),
    (r"\bz[\s_-]*loss\b", " z_loss "),
    (r"\bema\b|\bexponential(?:ly)?\s+moving\s+averag(?:e|ing)\b|\bpolyak\s+averaging\b", " ema "),
    # initialisation and residual path
    (
        r"\bembedding\s+init(?:iali[sz]ation)?(?:\s+(?:std|scale))?\b|\bscale\s+(?:the\s+)?embedding\s+init\w*\b",
        " embedding_init ",
    ),
    (r"\binit(?:ialization)?[\s_]*(?:std|scale)\b|\bstd\s+init(?:ialization)?\b", " init_std "),
    (r"\bzero[\s-]*init(?:iali[sz]e[ds]?|ialization)?\b", " zero_init "),
    (r"\binit(?:iali[sz]e[ds]?)?\b([^.;]{0,80}?)\bto\s+zeros?\b", r" zero_init \1 "),
    (r"\bresidual[\s_]*scal(?:e|ing)\b", " residual_scale "),
    (
        r"\bu[\s-]*net(?:[\s-]*style)?\b|\blong[\s-]*(?:range\s+)?skips?(?:\s+connections?)?\b|\bskip[\s-]*connections?\b",
        " unet_skips ",
    ),
    (r"\b(?:learnable\s+)?x0\s+(?:residual\s+)?(?:mixing\s+)?lambdas?\b|\bresidual\s+mixing\b", " x0_mixing "),
    (
        r"\bparallel\s+(?:attention\s+and\s+mlp|blocks|attn)\b|\battention\s+and\s+mlp\s+in\s+parallel\b|\bgpt[\s-]*j[\s-]*style\b",
        " parallel_blocks ",
    ),
    (r"\btorch\.?compile\b|\bcompil(?:e|ation)\b", " torch_compile "),
    (
        r"\bmulti[\s-]*token\s+prediction\b|\bmtp\b|\bpredict(?:ing|s)?\s+the\s+token\s+after\s+next\b"
        r"|\bnext[\s-]*next[\s-]*token\b",
        " multi_token_prediction ",
    ),
    (
        r"\bdocument\s+masking\b|\bcross[\s-]*document\s+attention\b"
        r"|\battention\s+(?:does\s+not\s+|doesn't\s+)?cross(?:es)?\s+document\s+boundaries\b",
        " doc_masking ",
    ),
    (r"\bmoe\b|\bmixture\s+of\s+experts\b", " moe "),
    (r"\bfloat8\b|\bfp8\b", " fp8 "),
    (r"\bbfloat16\b|\bbf16\b", " bf16 "),
    (r"\bfloat16\b|\bfp16\b|\bhalf\s+precision\b", " fp16 "),
    (r"\bfloat32\b|\bfp32\b|\bfull\s+precision\b|\btf32\b", " fp32 "),
    (r"\b(?:the\s+)?(?:last|final|first|second)\s+half\b", " 0.5 "),
]


@lru_cache(maxsize=1)
def _compiled_rules() -> list[tuple[re.Pattern[str], str]]:
    # Compiled on first use: a server that never checks novelty should not pay for it at start-up.
    return [(re.compile(pattern), replacement) for pattern, replacement in _RULES]


# Knobs that take a number (or a direction); an option names a value of its slot.
_NUMERIC_KNOBS = frozenset(
    {
        "learning_rate", "embedding_lr", "unembedding_lr", "scalar_lr", "final_lr_frac", "warmup", "warmdown",
        "momentum_warmup", "batch_warmup", "seq_warmup", "x0_mixing", "kv_heads", "head_dim", "mlp_ratio", "n_heads", "depth",
        "width", "aspect_ratio", "rope_base", "window_size", "logit_softcap", "muon_momentum", "adam_beta1",
        "adam_beta2", "adam_eps", "ns_steps", "weight_decay", "grad_clip", "grad_accum", "device_batch_size",
        "batch_size", "seq_len", "vocab_size", "token_dropout", "dropout", "label_smoothing", "z_loss", "ema",
        "embedding_init", "init_std", "residual_scale", "adam_lr", "partial_rope", "xsa", "bigram_hash", "swa",
        "conv_kernel", "data_shards", "load_balance_loss", "n_experts", "top_k", "attn_gate", "drop_path",
        "muon_beta2", "attn_softcap", "embedding_weight_decay", "attn_dropout", "embedding_dropout", "n_estimators", "min_child_weight", "max_bin", "subsample", "colsample_bytree",
    }
)  # fmt: skip
# On/off features: "remove X", "no X", "X off" switch them off.
_FEATURE_KNOBS = frozenset(
    {
        "warmup", "warmdown", "qk_norm", "final_norm", "value_embeddings", "value_residual", "sliding_window",
        "nesterov", "torch_compile", "unet_skips", "x0_mixing", "parallel_blocks", "doc_masking", "ema",
        "multi_token_prediction", "flash_attention", "zero_init", "grad_checkpointing", "z_loss", "dropout",
        "label_smoothing", "grad_clip", "mixture_of_depths", "moe", "logit_softcap", "partial_rope", "xsa", "swa",
        "bigram_hash", "attn_gate", "drop_path", "bias", "attn_softcap", "attn_dropout", "embedding_dropout", "rezero",
        "attn_temperature", "attn_sink", "diff_attn", "norm_affine", "token_shift", "resid_lambdas", "ve_gate",
    }
)  # fmt: skip
_OPTIONS: dict[str, str] = {
    "relu_squared": "activation", "gelu": "activation", "swiglu": "activation", "geglu": "activation",
    "silu": "activation", "swish": "activation", "relu": "activation", "tanh": "activation",
    "rmsnorm": "norm_type", "layernorm": "norm_type", "dyt": "norm_type",
    "pre_norm": "norm_placement", "post_norm": "norm_placement", "sandwich_norm": "norm_placement",
    "rope": "positions", "alibi": "positions", "nope": "positions", "learned_positions": "positions",
    "muon": "optimizer", "adamw": "optimizer", "lion": "optimizer", "sgd": "optimizer", "soap": "optimizer",
    "shampoo": "optimizer", "sophia": "optimizer", "adafactor": "optimizer",
    "fp8": "precision", "bf16": "precision", "fp16": "precision", "fp32": "precision",
    "cosine_lr": "lr_schedule", "constant_lr": "lr_schedule", "sqrt_decay": "lr_schedule", "wsd_lr": "lr_schedule",
    "tied": "embedding_tying", "untied": "embedding_tying",
}  # fmt: skip
# Slots whose name is a plain word the model knows (see _name_slot).
_SLOT_WORDS = frozenset({"optimizer", "activation", "precision"})
# Knobs that belong to an option: "nesterov off in muon" sets nesterov, it does not choose muon.
_OWNED_BY = {
    "adamw": frozenset({"adam_beta1", "adam_beta2", "adam_eps", "adam_lr"}),
    "muon": frozenset({"muon_momentum", "nesterov", "ns_steps", "momentum_warmup"}),
    "rope": frozenset({"rope_base", "qk_norm"}),
}
_KNOBS = _NUMERIC_KNOBS | _FEATURE_KNOBS | {"lr_schedule", "window_pattern"}
# A config name the vocabulary above does not know ("lookahead_curvature_gain", "scale_pos_weight",
# "MIN_CHILD_WEIGHT") is still a knob: ledgers name the keys they change, whatever the domain.
# Names whose words the vocabulary reads ("warmdown_ratio", "max_depth") are read as those words.
# Only a name given a value counts ("safety_margin 0.9->1.3", "scale_pos_weight=3"): a module's name
# ("lm_head.weight=wte.weight") is not a setting.
_CONFIG_NAME = re.compile(r"\b([a-z][a-z0-9]*(?:_[a-z0-9]+)+)\s*(?:=|:|\bto\b|\bfrom\b|\bof\b|\bat\b)?\s*[-+]?\.?\d")


def _is_knob(token: str) -> bool:
    return token in _KNOBS or _is_config_name(token)


def _is_config_name(token: str) -> bool:
    return "_" in token and token not in _OPTIONS and not token.startswith("window_pattern_")


def _takes_number(knob: str) -> bool:
    return knob in _NUMERIC_KNOBS or (knob not in _KNOBS and _is_config_name(knob))


_UP = frozenset(
    [
        "increase",
        "increased",
        "increasing",
        "raise",
        "raised",
        "raising",
        "higher",
        "bump",
        "bumped",
        "bigger",
        "larger",
        "more",
        "double",
        "doubled",
        "doubling",
        "grow",
        "boost",
        "longer",
        "lengthen",
        "lengthened",
        "extend",
        "extended",
        "up",
    ]
)
_DOWN = frozenset(
    [
        "decrease",
        "decreased",
        "decreasing",
        "lower",
        "lowered",
        "lowering",
        "reduce",
        "reduced",
        "reducing",
        "smaller",
        "less",
        "halve",
        "halved",
        "halving",
        "cut",
        "shrink",
        "shorter",
        "shorten",
        "shortened",
        "down",
    ]
)
_OFF = frozenset(
    [
        "no",
        "not",
        "without",
        "remove",
        "removed",
        "removing",
        "disable",
        "disabled",
        "disabling",
        "drop",
        "dropped",
        "dropping",
        "off",
        "ablate",
        "stop",
        "delete",
        "deleted",
        "deleting",
    ]
)
_OFF_AFTER = frozenset({"off", "removed", "disabled", "dropped", "deleted"})
# Numeric knobs whose absence is the value 0: "drop weight decay entirely" is "WEIGHT_DECAY = 0.0".
_ZERO_IS_OFF = frozenset({"weight_decay", "embedding_weight_decay"})
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "to",
        "of",
        "for",
        "in",
        "on",
        "at",
        "by",
        "with",
        "and",
        "or",
        "from",
        "into",
        "than",
        "as",
        "is",
        "are",
        "be",
        "it",
        "its",
        "this",
        "that",
        "use",
        "using",
        "used",
        "set",
        "try",
        "trying",
        "add",
        "adding",
        "instead",
        "rather",
        "was",
        "were",
        "over",
        "per",
        "all",
        "every",
        "each",
        "so",
    ]
)
_TOKEN = re.compile(r"[a-z_][a-z0-9_]*|(?:\d+(?:\.\d+)?|\.\d+)(?:e[+-]?\d+)?(?:\s*%|k\b|m\b|x\b)?")
_NUMBER = re.compile(r"^((?:\d+(?:\.\d+)?|\.\d+)(?:e[+-]?\d+)?)\s*(%|k|m|x)?$")
_OLD_VALUE_SPANS = [
    re.compile(r"\((?:\s*)(?:was|from|previously|default|baseline|base|now|currently|current)\b[^)]*\)"),
    re.compile(r"\(\s*[-+]?\.?\d[\d.e+-]*\s*(?:now|currently|at\s+present)\s*\)"),
    # "from its initial value of 1000", "from its 0.02 base": the value a factor applies to
    re.compile(
        r"\bfrom\s+(?:its|the)\s+(?:(?:initial|current|default|base)\s+)?(?:value\s+(?:of\s+)?)?[-+]?\.?\d[\d.e+-]*(?:\s+base)?\b"
    ),
    re.compile(r"\b(?:instead\s+of|rather\s+than|in\s+place\s+of)\b[^,;()]*"),
    re.compile(r"\bfrom\s+[^,;()]{1,80}?\s+(?=to\b)"),
    # The token starts after a delimiter: "(?:[^\s,;()]+)" alone retried from every character of a
    # long token with no arrow, quadratic (40 s on 50,000 digits).
    re.compile(r"(?<![^\s,;()])[^\s,;()]+(?:\s+(?:tokens?|steps?|layers?|heads?|seqs?|sequences?|dims?))?\s*->\s*"),
    re.compile(r"\breplac(?:e|ed|ing)\s+(?:(?!\bto\b)[^,;()]){1,80}?\s+(?:with|by)\b"),
    re.compile(r"\bswap(?:ped|ping)?\s+(?:(?!\bto\b)[^,;()]){1,80}?\s+(?:for|with)\b"),
    re.compile(
        r"\breplaces\s+(?:the\s+)?[^\s,;()]+(?:\s+(?:activation|mlp|norm|optimizer|schedule))?"
    ),  # "SwiGLU replaces ReLU^2"
    re.compile(r"\b(?:up|down)\s+from\s+[^,;()]+"),
    # a value compared with, not set: "EMBEDDING_LR=1.2: push the embedding LR well past 0.8", "halfway
    # between 1.0 and the current 1.5"
    # ("the past 512 tokens", "beyond 512 tokens", "between -1 and 1" are values)
    re.compile(r"\b(?:well|far|way|much)\s+(?:past|beyond)\s+[-+]?\.?\d[\d.e+-]*"),
    re.compile(
        r"\b(?:half[\s-]*way|mid[\s-]*way)\s+between\s+[-+]?\.?\d[\d.e+-]*\s+and\s+(?:the\s+current\s+)?[-+]?\.?\d[\d.e+-]*"
    ),
]


@dataclass(frozen=True, slots=True)
class Setting:
    """What one description says about one knob."""

    numbers: frozenset[float] = frozenset()
    option: str | None = None
    off: bool = False
    direction: Literal["up", "down"] | None = None
    factor: float | None = None
    """What the change multiplies the knob by: "halve" 0.5, "0.04 -> 0.06" 1.5 (None when unsaid)."""

    def explicit(self) -> bool:
        return bool(self.numbers) or self.option is not None or self.off


@dataclass(frozen=True, slots=True)
class Features:
    """A description read for comparison: canonical text, content tokens and named settings."""

    text: str
    canonical: str
    tokens: frozenset[str]
    settings: dict[str, Setting] = field(default_factory=dict)
    loose_numbers: frozenset[float] = frozenset()
    knobs: frozenset[str] = frozenset()
    additions: tuple[frozenset[str], ...] = ()
    """The content words of each change added with "plus", "+", "and add", "as well as"…"""
    becomes: str | None = None
    """The word a change switches to when no knob reads it: "pooling: CLS -> mean" becomes "mean"."""
    changed: frozenset[str] = frozenset()
    """The knobs it changes: those it gives a value, direction or option, and the on/off features it names."""
    edited: tuple[str, ...] = ()
    """In a terse edit ("smoothing alpha 0.2 -> 0.5"), the last two words before the old value."""
    words: tuple[str, ...] = ()
    """The canonical content words in their order (``tokens`` is their set)."""

    @property
    def embedding_text(self) -> str:
        """The text to embed: canonical spellings, with underscores read as spaces (and "1.5x" as "1.5")."""
        return _MULTIPLE.sub("", self.canonical).replace("_", " ")


@dataclass(frozen=True, slots=True)
class PairSignals:
    """The non-embedding evidence about a pair, computed once and reused by scoring and calibration."""

    knob_jaccard: float
    both_have_knobs: bool
    one_sided: bool
    conflict: bool
    agree: bool
    differences: tuple[str, ...]
    extra: bool = False
    """The first description (the idea checked) names a knob the second (the logged run) does not:
    it does more than the run did ("lr 0.03 plus warmup 0.1" after "lr 0.03"), so it is no duplicate."""


def _format_number(value: float) -> str:
    if not math.isfinite(value):  # "1e999", or 400 digits in a row: no setting's value, kept as written
        return "inf" if value > 0 else "-inf" if value < 0 else "nan"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def _parse_number(token: str) -> float | None:
    match = _NUMBER.match(token.strip())
    if not match:
        return None
    try:
        value = float(match.group(1))
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    suffix = match.group(2)
    if suffix == "%":
        value /= 100
    elif suffix == "k":
        value *= 1_000
    elif suffix == "m":
        value *= 1_000_000
    return round(value, 12)


_NUMBER_WORDS = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8",
    "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "sixteen": "16", "thirty-two": "32",
}  # fmt: skip
_SUBUNITS = {"cm": 100.0, "mm": 1000.0, "ms": 1000.0}
_DAYS = {"day": 1.0, "week": 7.0, "wk": 7.0, "month": 30.4375, "mo": 30.4375, "year": 365.25, "yr": 365.25, "y": 365.25}
_DURATION = re.compile(r"\b(\d+(?:\.\d+)?)(?:\s*(day|week|wk|month|mo|year|yr)s?|(y))\b")


def _days(m: re.Match[str]) -> str:
    days = float(m.group(1)) * _DAYS[m.group(2) or m.group(3)]
    # a number past a float ("1e999", 400 digits) stays as written: it is no value (see _parse_number)
    return f"{_format_number(round(days))} days" if math.isfinite(days) else m.group(0)


_SUBUNIT = re.compile(r"\b(\d+(?:\.\d+)?)\s*(cm|mm|ms)\b")
# "the last fifth", "one half": a share of the run or of a value. "cut by a third" is a change, not a value.
_FRACTIONS = {"half": "0.5", "third": "0.333333", "quarter": "0.25", "fifth": "0.2", "tenth": "0.1"}
# A fraction is a value where a quantity follows or nothing does ("the last fifth of training", "a quarter"),
# not where it qualifies a noun ("a half cosine wave", "a half-sized expert").
_FRACTION = re.compile(
    r"(?<!\bby )\b(?:one|a|the\s+(?:last|final|first))\s+(half|third|quarter|fifth|tenth)\b"
    r"(?=\s*$|\s*[,.;:)]|\s+(?:of|and|or|for|in|on|at|to|with|then|as|is|but|over|during|through)\b)"
)
# ... and "half of the columns", "a random tenth of each sublayer's activations": a share of something
_FRACTION_OF = re.compile(r"(?<![\w-])(half|third|quarter|fifth|tenth)(?=\s+of\s+(?:the|each|every|all)\b)")
_NUMBER_WORD = re.compile(r"\b(" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r")\b")
_INDEXED = re.compile(r"\b([a-z_][a-z0-9_]*)\[(\d{1,3})\]")
_RATIO = re.compile(
    r"(=|:|\bto|\bat|\bis|->)\s*(\d{1,3})\s*/\s*([1-9]\d{0,3})\b(?!\s*[/.\d])"
    r"|(\s)(\d{1,3})\s*/\s*([1-9]\d{0,3})(?=\s*(?:->|$|[,;)]|of\b))"
)
_POWER = re.compile(r"\b(\d{1,2})\s*(?:\^|\*\*)\s*(\d{1,2})\b")
# Commentary real ledgers append to the change itself: the result, the reasoning, a verdict.
_COMMENTARY = re.compile(
    r"\s+[\u2014\u2013]\s|(?<!\b1)\s--?\s|[(;:,]?\s*\b(?:hypothesis|evidence|result|bottleneck)\b\s*:"
    r"|[(;:,]?\s*\(?\s*hypothesis\b|:\s*(?:val_bpb|crash|crashed|failed|skipped|hung|loss)\b|\bval_bpb\s+\d"
    # a result set off by a spaced colon: "double DQN : median HNS 1.12", "... : recall@50 +2.1%" (the number
    # ends it: "Window pattern : short window 512 on 3 of 4 layers" is a label and its change)
    r"|\s:\s+[a-z][\w@./-]*(?:\s+[a-z][\w@./-]*)?\s+[-+]?\d[\d.]*\s*%?(?=\s*(?:$|[(,;]|->|\u2192|vs\b))",
    re.IGNORECASE,
)
# A verdict after a colon: "GeLU activation: much worse than ReLU²", "softcap 15->10: tighter cap improves".
# Only after a change (two words or a value) and when no edit follows: "MLP: better activation, ReLU² ->
# SwiGLU" and "Init: improved init, zero-init the output projections" are a label and the change.
_VERDICT = re.compile(
    r":\s+(?:[a-z'-]+\s+){0,5}(?:worse|better|improv\w*|regress\w*|hurts?|helps?|neutral|noise|wins?|optimal"
    r"|diverg\w*|unstable|slower|faster|marginal\w*|identical)\b(?![^:;(]{0,40}?(?:->|\u2192))",
    re.IGNORECASE,
)
_TAG = re.compile(r"^\s*(?:exp\s*\d+\s*[:.)-]\s*)?(?:\[[^\]]{1,20}\]\s*)*", re.IGNORECASE)
# Parentheses that only comment ("(slightly worse)", "(no effect vs exp10)"); those naming an old
# value ("(was 0.6)", "(down from 0.1)") or holding a tuple of values are kept for _OLD_VALUE_SPANS.
_ASIDE_HEAD = (
    r"(?<![\w*/^])\((?![^()]*(?:->|\u2192))(?!\s*(?:was|from|previously|default|baseline|up\s+from|down\s+from)\b)"
    r"(?![\d.,\s]+\))"
)
_ASIDE = re.compile(_ASIDE_HEAD + r"[^()]*\)")
# When the line outside them states no value, parentheses that hold settings are the change's own
# ("gentler hairpin cap (threshold 0.65, floor 4.0)", "z-loss (1e-4 coefficient)", "(2.5 rad/s)");
# beside a value they are the context it was set in ("n_estimators 300->600 (learning_rate=0.05)").
_VALUE = r"[-+]?(?:\d+(?:\.\d+)?|\.\d+)(?:e[-+]?\d+)?"
_COMMENT_ONLY = re.compile(
    _ASIDE_HEAD
    + rf"(?![^()]*\b[a-z][a-z0-9_]*\s*=\s*{_VALUE})"
    + rf"(?!\s*{_VALUE}\s*[a-z/]*\s*\))"
    # "(3 instead of 5)": the change's value and the one it replaces
    + rf"(?!\s*{_VALUE}\s*[a-z%]*\s+(?:instead\s+of|rather\s+than|not)\s+{_VALUE})"
    + rf"(?!\s*[a-z_]+\s+{_VALUE}(?:\s*,\s*[a-z_]+\s+{_VALUE})*\s*\))"
    + r"[^()]*\)",
    re.IGNORECASE,
)
# Quantities a run reports about itself rather than sets: "19.7M params", "180K tok/s", "0.86% MFU".
_REPORTED = re.compile(
    r"\b\d+(?:\.\d+)?\s*[mkb]?\s*(?:params|parameters)\b|\b\d+(?:\.\d+)?\s*k?\s*tok/s\b"
    r"|\b\d+(?:\.\d+)?\s*%?\s*mfu\b"
    # time and memory a run took ("exceeded 10 minute timeout", "19.4GB"): never a setting's value
    r"|\b\d+(?:\.\d+)?\s*(?:minutes?|mins?|seconds?|secs?|hours?|hrs?|gb|gib|mb|mib)\b",
    re.IGNORECASE,
)
# Context the change was made in ("lower scalar lr to 0.2 after 3x MLP", "... at batch 2^13").
# So is what it leaves alone: "lengthen the base lookahead, leaving lookahead_curvature_gain at 0.25".
_CHANGE_VERBS = (
    "add|enable|disable|switch|raise|lower|increase|decrease|halve|double|clip|use|try|set|remove|drop|turn|replace"
    "|swap|cut|reduce|give|apply|move|make|shrink|grow|widen|narrow|bump|tune|change|scale|freeze|unfreeze|tie|untie"
)
# The cause a line gives before its change: "loss spikes at lr 0.06 so add QK-norm" changes QK-norm.
_CAUSE = re.compile(
    r"^.*?\b(?:so|hence|therefore|thus)\s+(?=(?:(?:we|i)\s+)?(?:" + _CHANGE_VERBS + r")\b)", re.IGNORECASE
)
_CONTEXT = re.compile(
    r"\s+(?:after\s+(?=\d|remov|add|switch|chang|rais|lower|increas|decreas|halv|doubl)|at\s+(?=batch|bs\b|depth|width|lr\b)).*$"
    r"|\s*,\s*(?:while\s+)?leaving\s+.*$"
    # and what the change brings about: "HEAD_DIM 128->64, giving 4 heads instead of 2", "... so each step is one micro-batch"
    # ("so" only where no change follows: "loss spikes at lr 0.06 so add QK-norm" is the cause, then the change)
    r"|\s*,\s*(?:giving|gives|which\s+(?:gives|means|makes|keeps)|resulting\s+in)\s+.*$"
    r"|\s*,?\s+(?:->\s*)?(?:(?:should|would|will)\s+give|so\s+that"
    r"|so(?!\s+(?:far|much|many|long)\b)(?!\s+(?:(?:we|i)\s+)?(?:" + _CHANGE_VERBS + r")\b))\s+.*$",
    re.IGNORECASE,
)
# A setting a line says it keeps, up to the end of its clause: ", WARMDOWN_RATIO unchanged at 0.5", "; depth stays at 8".
_KEPT = re.compile(
    r"\s*(?:[,;]|\bwith\b)\s*[a-z][\w\s]{0,40}?\b(?:unchanged|stays|remains|still)(?:\s+(?:(?:at|=)\s*)?[-+]?\.?\d[\d.e+-]*\s*%?)?"
    r"\s*(?=$|[,;)])",
    re.IGNORECASE,
)


# What a line keeps before its change, or after it: "keep DEPTH at 8 but ASPECT_RATIO 64 -> 80",
# "reduce the Muon momentum to 0.90; keep its warmup from 0.85".
_KEEP_BUT = re.compile(
    r"^\s*keep(?:ing)?\s+[^,;]{1,40}?\s*(?:,\s*)?\bbut\s+|\s*;\s*keep(?:ing)?\s+(?:its|the)\s+[^,;]{1,40}$"
    # ", keeping peak lr at 6e-4 and batch at 256": settings held where they were, each "at" a value
    r"|\s*,\s*keeping\s+[^,;]{1,40}?\bat\s+[-+]?\.?\d[\d.e+-]*(?:\s*(?:and|,)\s*[^,;]{1,30}?\bat\s+[-+]?\.?\d[\d.e+-]*)*\s*$",
    re.IGNORECASE,
)


def core(text: str) -> str:
    """The change a description names, without the commentary real ledgers append to it.

    "MATRIX_LR 0.03→0.04 (hypothesis: ...): val_bpb 1.283→1.269 ..." is compared as
    "MATRIX_LR 0.03→0.04"; "exp5: MLP 6x->8x (near miss, +0.003)" as "MLP 6x->8x". A
    description that is all commentary ("Hypothesis: smaller batch ...") is kept whole.
    """
    # One space for every run of them: "\s*,?\s+" over a run of n spaces backtracks n^2 ways from
    # each of n places, and a description is a line whatever its line breaks.
    text = _SPACES.sub(" ", text)
    head = _TAG.sub("", text, count=1)
    cut = _COMMENTARY.search(head)
    verdict = _VERDICT.search(head)
    if verdict is not None and (cut is None or verdict.start() < cut.start()):
        before = head[: verdict.start()]
        if re.search(r"\d|->|\u2192", before) or len(before.split()) >= 2:
            cut = verdict
    if cut is not None and cut.start() >= 3:
        head = head[: cut.start()]
    head = _KEPT.sub("", _CAUSE.sub("", head, count=1))
    head = _KEEP_BUT.sub("", head, count=1)
    kept = _REPORTED.sub(" ", _ASIDE.sub(" ", head))
    if not re.search(r"\d", kept):
        kept = _REPORTED.sub(" ", _COMMENT_ONLY.sub(" ", head))
    head = _CONTEXT.sub("", kept)
    # "increased WARMDOWN_RATIO to 0.7 -> val_bpb 0.9921 (keep)": the arrow led to the result, now cut
    head = re.sub(r"\s*(?:->|\u2192)\s*$", "", head).strip(" .,;:")
    return head if len(head) >= 3 else text


# A description is a line or a paragraph: past this many characters nothing is a change to compare
# (the longest of 2,213 real ledger lines and probes in bench/data is 1,014; the model reads ~1,000
# characters, 256 tokens). Every rule is linear in the length it reads, about 10 ms a kilobyte for all
# of them, and a check reads each candidate run once per process: a ledger of 4 KB lines made a
# fresh process's check 40 ms a run (a text field may be a megabyte).
_READ_LIMIT = 1024
_SPACES = re.compile(r"\s+")
_NAMES_PER_LINE = 16
"""A line names a few knobs: past this many config names the rest are not recognised as knobs."""


def config_names(text: str) -> frozenset[str]:
    """The config names a description uses that the vocabulary does not read ("safety_margin").

    A ledger's names are passed to :func:`analyze` for a new idea, so that "loosen the safety
    margin" names the knob a run logged as ``safety_margin 0.9->1.3``.
    """
    lowered = _SPACES.sub(" ", text[:_READ_LIMIT].lower().replace("\u2192", " -> "))
    lowered = _spell_names(lowered)
    found = dict.fromkeys(_CONFIG_NAME.findall(lowered))
    return frozenset(itertools.islice((name for name in found if _unread(name)), _NAMES_PER_LINE))


def names_any(text: str, names: frozenset[str]) -> bool:
    """Whether the part of ``text`` that is read names any of ``names``, with underscores or as words.

    One pass over the words, whatever the number of names (a ledger may know hundreds): every run
    of up to ``_NAME_PARTS`` words, joined by underscores, is looked up in the set.
    """
    words = _WORD.findall(text[:_READ_LIMIT].lower())
    for size in range(1, _NAME_PARTS + 1):
        if not names.isdisjoint("_".join(words[i : i + size]) for i in range(len(words) - size + 1)):
            return True
    lowered = text[:_READ_LIMIT].lower()
    return any(name.count("_") >= _NAME_PARTS and name in lowered for name in names)


_WORD = re.compile(r"[a-z0-9]+")
_NAME_PARTS = 6


@lru_cache(maxsize=4096)
def _unread(name: str) -> bool:
    """Whether the vocabulary leaves a config name's words as they are (``matrix_lr`` it reads as the LR)."""
    spaced = name.replace("_", " ")
    read = spaced
    for pattern, replacement in _compiled_rules():
        read = pattern.sub(replacement, read)
    words = spaced.split()
    return re.sub(r"\s+", " ", read).strip() == spaced and not any(
        word in _KNOBS or word in _OPTIONS or word in _REPORTS for word in words
    )


# Words of the quantities a run reports rather than sets (``val_bpb``, ``final_loss``, ``peak_mem``).
_REPORTS = frozenset({"val", "loss", "bpb", "acc", "accuracy", "auc", "mfu", "mem", "memory", "time", "tok", "tokens"})


_SHARES = {"half": 0.5, "a half": 0.5, "a third": 1 / 3, "a quarter": 0.25, "a fifth": 0.2, "a tenth": 0.1}
_BY_SHARE = re.compile(
    r"\b(raise|increase|scale\s+up|up|grow|bump|boost|cut|reduce|lower|decrease|down|shrink|drop|scale\s+down)\b"
    r"([^.;,()]{0,40}?)\bby\s+(\d+(?:\.\d+)?\s*[%x]|half|a\s+(?:half|third|quarter|fifth|tenth))(?![\w.%])"
)
_RAISING = frozenset({"raise", "increase", "scale up", "up", "grow", "bump", "boost"})


def _by_share(m: re.Match[str]) -> str:
    verb, between, share = m.group(1), m.group(2), re.sub(r"\s+", " ", m.group(3))
    raising = re.sub(r"\s+", " ", verb) in _RAISING
    if share.endswith("x"):  # "cut the lr by 10x" divides it
        times = float(share.rstrip("x "))
        factor = times if raising else 1 / times if times else 0.0
    else:
        part = float(share.rstrip("% ")) / 100 if share.endswith("%") else _SHARES[share]
        factor = 1 + part if raising else 1 - part
    return f"{verb}{between}by {_format_number(factor)}x" if factor > 0 else m.group(0)


_ONE_MINUS = re.compile(
    r"\b1\s*-\s*([a-z][a-z0-9_]*)\s*=\s*((?:\d+(?:\.\d+)?|\.\d+)e-\d{1,2}|0?\.\d+)\b"
    r"|(?<![\d.])\b1\s*-\s*((?:\d+(?:\.\d+)?|\.\d+)e-\d{1,2}|0?\.\d+)\b"
)


def _one_minus(m: re.Match[str]) -> str:
    name, value = (m.group(1), m.group(2)) if m.group(1) is not None else ("", m.group(3))
    return f"{name} {_format_number(1 - float(value))}".strip()


def _power(m: re.Match[str]) -> str:
    """ "2^19" is 524288; a power past 15 digits is no setting and stays as written ("99^99" would be 197)."""
    value = int(m.group(1)) ** int(m.group(2))
    return str(value) if value < 10**15 else m.group(0)


def _ratio(m: re.Match[str]) -> str:
    lead, top, bottom = m.group(1, 2, 3) if m.group(1) is not None else m.group(4, 5, 6)
    return f"{lead} {_format_number(int(top) / int(bottom))}"


_PRIVATE = re.compile(r"(?<!\w)_+(?=[a-z])")


def _spell_names(lowered: str) -> str:
    """Names as the reading and the ledger's name list both spell them.

    An index belongs to the name it follows ("LINE_SCORES[2] from 5 to 8" sets line_scores_2, not 2), and a
    private constant's leading underscore is no part of it ("_CANDIDATE_CAP 12->8" is candidate_cap).
    """
    return _PRIVATE.sub("", _INDEXED.sub(r"\1_\2", lowered))


def _canonical(text: str, known: frozenset[str] = frozenset()) -> str:
    lowered = (
        text.lower()
        .replace("→", " -> ")
        .replace("=>", " -> ")
        .replace("\u2019", "'")
        .replace("\u2013", "-")
        .replace("β₁", "beta1")
        .replace("β₂", "beta2")
        .replace("β", "beta")
    )
    lowered = _spell_names(lowered)
    # A factor written "x1.5" is "1.5x": read as a word, "x1" and ".5" would be two tokens.
    lowered = re.sub(r"(?<![\w.])[x\u00d7]\s*([1-9]\d*(?:\.\d+)?|0\.\d+)(?![\w.])", r"\1x", lowered)
    # "raise matrix lr by a quarter", "scale it up by 50%": the factor the change applies ("by 1.25x").
    lowered = _BY_SHARE.sub(_by_share, lowered)
    # "1 - decay = 1e-3" is a decay of 0.999, "beta2 = 1 - 1e-3" a beta2 of 0.999.
    lowered = _ONE_MINUS.sub(_one_minus, lowered)
    names = config_names(lowered) | known
    # Config names ("WARMDOWN_RATIO=0.3") read as words, like the prose that names the same knobs.
    # A value given as a fraction is that fraction: "WARMUP_RATIO = 1/50" is 0.02 (a "16/64" span is no value).
    lowered = _RATIO.sub(_ratio, lowered)
    lowered = lowered.replace("_", " ").replace("=", " ")
    lowered = _FRACTION.sub(lambda m: _FRACTIONS[m.group(1)], lowered)
    lowered = _FRACTION_OF.sub(lambda m: _FRACTIONS[m.group(1)], lowered)
    # A count of steps taken is no value set: "one more pass" (5 -> 6), "two fewer layers".
    lowered = re.sub(r"\b(?:one|two|three|four|a\s+couple|[1-4])\s+(more|fewer|extra|additional)\b", r"\1", lowered)
    lowered = _NUMBER_WORD.sub(lambda m: _NUMBER_WORDS[m.group(1)], lowered)
    lowered = re.sub(r"(?<=[a-z)])\s*\^\s*2\b", " squared", lowered)
    lowered = _POWER.sub(_power, lowered)
    lowered = re.sub(r"(\d),(\d{3})\b", r"\1\2", lowered)
    lowered = re.sub(r"(\d)\s*(?:percent|pct)\b", r"\1%", lowered)
    # Lengths and times in the unit a ledger uses most: "90 cm" is the 0.9 (m) a run logged, "250 ms" 0.25 (s).
    lowered = _SUBUNIT.sub(lambda m: _format_number(float(m.group(1)) / _SUBUNITS[m.group(2)]), lowered)
    # Durations in days: "the last 12 months" is "the last 365 days", "2y" is "24 months".
    lowered = _DURATION.sub(_days, lowered)
    for pattern, replacement in _compiled_rules():
        lowered = pattern.sub(replacement, lowered)
    # Normalise every number so "1e5", "100000" and "100k" read the same to the model too.
    lowered = _TOKEN.sub(lambda m: _normalise_token(m.group(0)), lowered)
    # ... and those the vocabulary does not know are joined again, to be read as knobs of their own.
    for name in sorted(names, key=len, reverse=True):
        spaced = name.replace("_", " ")
        if spaced in lowered:
            lowered = re.sub(rf"\b{re.escape(spaced)}\b", name, lowered)
    return re.sub(r"\s+", " ", lowered).strip()


def _name_slot(canonical: str, settings: dict[str, Setting]) -> str:
    """Name the slot of a bare option: "try lion" is embedded as "try lion optimizer".

    When an option is all a description sets, nothing around it tells the model what it is,
    and "try lion" shares one word with "swap the optimizer to lion with weight decay 0.1"
    (cosine 0.41, against 0.65 with the slot named). Descriptions that set anything else
    keep their text: there the word would only dilute what they say.
    """
    if len(settings) != 1:
        return canonical
    ((slot, setting),) = settings.items()
    option = setting.option
    if slot not in _SLOT_WORDS or option is None or setting.numbers or re.search(rf"\b{slot}s?\b", canonical):
        return canonical
    return re.sub(rf"\b{re.escape(option)}\b", f"{option} {slot}", canonical, count=1)


def _normalise_token(token: str) -> str:
    if token[0].isdigit() or token[0] == ".":
        value = _parse_number(token)
        if value is not None:
            # "2x" stays a multiple: "2x the softcap" doubles it, where "softcap 2" would set it
            return _format_number(value) + ("x" if token.endswith("x") else "")
    return token


def _target_view(canonical: str) -> str:
    """The canonical text without old values ("from 0.04 to", "instead of relu", "(was 0.6)")."""
    view = canonical
    for pattern in _OLD_VALUE_SPANS:
        view = pattern.sub(" ", view)
    return view


@lru_cache(maxsize=65536)
def analyze(text: str, names: frozenset[str] = frozenset()) -> Features:
    """Read a description into :class:`Features` (cached: descriptions repeat).

    ``names``: config names to recognise when the text spells them as words (a ledger's
    :func:`config_names`); the embedded text is the same with or without them.
    """
    canonical = _canonical(core(text[:_READ_LIMIT]), names)
    # Distances between a value and its knob skip stop words ("ema of weights with decay 0.999").
    tokens = [t for t in _TOKEN.findall(_target_view(canonical)) if t not in _STOP or t in _OFF]
    knob_at: list[tuple[int, str]] = []
    options: dict[str, list[tuple[int, str]]] = {}
    for index, token in enumerate(tokens):
        if _is_knob(token):
            knob_at.append((index, token))
        elif token in _OPTIONS:
            # "the muon learning rate" sets the learning rate of the optimizer in use; it does not choose muon.
            if (
                _OPTIONS[token] == "optimizer" and index + 1 < len(tokens) and _is_knob(tokens[index + 1])
                and re.search(rf"\b{token}\s+{tokens[index + 1]}\b", canonical)
            ):  # fmt: skip
                continue
            options.setdefault(_OPTIONS[token], []).append((index, token))
        elif token.startswith("window_pattern_"):
            options.setdefault("window_pattern", []).append((index, token.removeprefix("window_pattern_")))
    knob_names = {name for _, name in knob_at}
    numbers: dict[str, set[float]] = {}
    loose: set[float] = set()
    directions: dict[str, str] = {}
    off: set[str] = set()
    factors = _edit_factors(canonical, knob_names)
    for index, token in enumerate(tokens):
        value = _parse_number(token) if token[0].isdigit() or token[0] == "." else None
        if value is not None:
            owner = _nearest_knob(knob_at, index, before=4, after=3, numeric_only=True)
            if owner is None:
                loose.add(value)
            elif token.endswith("x") and owner not in _MULTIPLE_VALUED and value:
                factors.setdefault(owner, value)  # "lr 1.5x", "2x the logit softcap"
            else:
                numbers.setdefault(owner, set()).add(value)
        elif token in _UP or token in _DOWN:
            owner = _nearest_knob(knob_at, index, before=1, after=4, prefer_after=True)
            if owner is not None:
                directions[owner] = "up" if token in _UP else "down"
                if token in _FACTOR_WORDS:
                    factors[owner] = _FACTOR_WORDS[token]
        elif token in _OFF:
            # "qk norm removed", "warmup off": these follow the knob they switch off
            owner = _nearest_knob(knob_at, index, before=1 if token in _OFF_AFTER else 0, after=3, prefer_after=True)
            if owner is None or (
                token == "stop" and re.search(rf"\bstop\s+(?:the\s+)?{owner}\s+(?:at|final_lr_frac)\b", canonical)
            ):
                continue  # "stop the cooldown at a tenth of the peak" ends it there, it does not remove it
            if owner in _FEATURE_KNOBS:
                off.add(owner)
            elif owner in _ZERO_IS_OFF and token not in ("stop", "not"):
                numbers.setdefault(owner, set()).add(0.0)
    settings: dict[str, Setting] = {}
    # A config name counts as a knob where it is given something; a bare mention is only words.
    knob_names = {name for name in knob_names if name in _KNOBS or name in numbers or name in directions or name in off}
    for name in knob_names:
        settings[name] = Setting(
            numbers=frozenset(numbers.get(name, ())),
            off=name in off,
            direction=directions.get(name),  # type: ignore[arg-type]
            factor=factors.get(name),
        )
    for slot, mentions in options.items():
        chosen = mentions[-1][1]
        if any(knob in knob_names for knob in _OWNED_BY.get(chosen, ())) and len(mentions) == 1:
            continue
        existing = settings.get(slot, Setting())
        settings[slot] = Setting(existing.numbers, chosen, existing.off, existing.direction, existing.factor)
    canonical = _name_slot(canonical, settings)
    # Past an opening parenthesis a "+" is commentary: "(too aggressive + .item() sync slowed it)".
    additions = tuple(
        words for clause in _ADDITION.split(_target_view(canonical).split("(", 1)[0])[1:]
        if (words := frozenset(t for t in _TOKEN.findall(clause) if t not in _VERBS and not t[0].isdigit()))
    )  # fmt: skip
    switched = _BECOMES.findall(canonical)
    becomes = switched[-1] if switched and switched[-1] not in _VERBS and not _is_knob(switched[-1]) else None
    if becomes in _OPTIONS:
        becomes = None  # an option is a setting already
    changed = frozenset(k for k, setting in settings.items() if _changes(k, setting))
    edit = _EDIT.search(canonical)
    edited = tuple(w for w in (edit.group(1), edit.group(2)) if w and w not in _VERBS) if edit else ()
    content = tuple(t for t in _TOKEN.findall(canonical) if t not in _STOP)
    return Features(
        text, canonical, frozenset(content), settings, frozenset(loose), frozenset(settings), additions, becomes,
        changed, edited, content,
    )  # fmt: skip


_MULTIPLE = re.compile(r"(?<=\d)x\b")
# Knobs whose value is itself written as a multiple: "MLP 4x" is an expansion ratio of 4, not a factor.
_MULTIPLE_VALUED = frozenset({"mlp_ratio"})
_FACTOR_WORDS = {
    "halve": 0.5, "halved": 0.5, "halving": 0.5, "double": 2.0, "doubled": 2.0, "doubling": 2.0,
    "triple": 3.0, "tripled": 3.0, "quadruple": 4.0,
}  # fmt: skip
_FROM_TO = re.compile(
    rf"\b([a-z][a-z0-9_]*)(?:\s+[a-z]+){{0,3}}?\s+(?:from\s+)?({_VALUE})\s*[a-z%]*\s*(?:->|\bto\b)\s*({_VALUE})(?![\d.])"
)


def _edit_factors(canonical: str, knobs: set[str]) -> dict[str, float]:
    """Each knob's old -> new ratio where the line states both: "lr 0.04 -> 0.02" halves it."""
    factors: dict[str, float] = {}
    for m in _FROM_TO.finditer(canonical):
        old, new = _parse_number(m.group(2)), _parse_number(m.group(3))
        if m.group(1) in knobs and old and new is not None and m.group(1) not in factors:
            factors[m.group(1)] = round(new / old, 9)
    return factors


# "KNOB a -> b": the words naming what a terse edit changes.
_EDIT = re.compile(r"(?:^|[\s:(,])(?:([a-z][a-z0-9_]*)\s+)?([a-z][a-z0-9_]*)\s+[-+]?\.?\d[\d.e+-]*\s*[a-z%]*\s*->")


# What a change switches to: "loss CTC -> RNN-T", "algorithm PPO -> SAC", "from uniform to in-batch negatives".
_BECOMES = re.compile(r"(?:->|\bfrom\s+[a-z][\w-]*(?:\s+[a-z][\w-]*)?\s+to)\s*([a-z][a-z0-9_]*)")


_VERBS = _STOP | _UP | _DOWN | _OFF | _SLOT_WORDS
# A second change joined to the first: "drop the 12 lowest-gain features and add the debt/income ratio",
# "torch.compile the model and capture the step with CUDA graphs", "... plus BM25 hard negatives".
_ADDITION = re.compile(
    r"\s(?:plus|\+|and\s+also|along\s+with|together\s+with|as\s+well\s+as|combined\s+with|on\s+top\s+of)\s"
    r"|\s(?:,\s*)?and\s+(?:also\s+)?(?:add|capture|enable|apply)\s"
)


def _nearest_knob(
    knob_at: Sequence[tuple[int, str]],
    index: int,
    *,
    before: int,
    after: int,
    numeric_only: bool = False,
    prefer_after: bool = False,
) -> str | None:
    best: tuple[int, int, str] | None = None
    for position, name in knob_at:
        if numeric_only and not _takes_number(name):
            continue
        distance = position - index
        if (distance < 0 and -distance <= before) or (0 < distance <= after):
            # Ties break towards the preferred side.
            side = 0 if (distance > 0) == prefer_after else 1
            key = (abs(distance), side, name)
            if best is None or key < best:
                best = key
    return best[2] if best else None


# -- comparing two descriptions --------------------------------------------------------------------


def signals(a: Features, b: Features, *, explain: bool = False) -> PairSignals:
    """The setting-level evidence about a pair (symmetric but for ``extra``: ``a`` is the idea, ``b`` the run).

    Without ``explain`` the first conflicting setting settles ``conflict`` and ``differences``
    holds only that one; with it every difference is listed (for the matches shown to a user).
    """
    if _other_edit(a, b):
        # The same terse edit of another knob ("generation temperature 0.7 -> 1.0" against "generation
        # top_p 0.7 -> 1.0", "smoothing alpha 0.2 -> 0.5" against "smoothing beta 0.2 -> 0.5").
        shown = f"edits {' '.join(a.edited)} vs {' '.join(b.edited)}"
        return PairSignals(0.0, True, False, False, False, (shown,), extra=True)
    pair = _setting_signals(a, b, explain=explain)
    if not pair.extra and (_adds_change(a, b) or (len(b.tokens) <= _TERSE_RUN and _adds_change(b, a))):
        # Either does more: the idea adds a change the run lacked, or a terse run tried two changes
        # together ("resizing 128->224 plus label smoothing 0.1") and the idea only the first. In a
        # long run description a "+" or "plus" is mostly how it was built ("via a residual projection
        # + a shared head") or the stack it went on ("on the current stack plus …").
        pair = replace(pair, extra=True)
    swapped = None if pair.conflict else _swapped(a, b)
    if swapped is not None:
        # One line with one thing swapped for another ("random horizontal flip" against
        # "random vertical flip", "attention dropout 0 -> 0.1" against "residual dropout 0 -> 0.1").
        pair = replace(pair, conflict=True, agree=False, differences=(*pair.differences, swapped))
    if (
        not pair.conflict and a.becomes and b.becomes and a.becomes != b.becomes
        and not _has_word(b.tokens, a.becomes) and not _has_word(a.tokens, b.becomes)
    ):  # fmt: skip
        # The same switch to something else ("CLS -> mean pooling" against "CLS -> max pooling").
        pair = replace(
            pair, conflict=True, agree=False, differences=(*pair.differences, f"to {a.becomes} vs {b.becomes}")
        )
    return pair


def _setting_signals(a: Features, b: Features, *, explain: bool = False) -> PairSignals:
    knobs_a, knobs_b = a.knobs, b.knobs
    if not knobs_a or not knobs_b:
        # A config name the vocabulary does not know, against a line naming no knob, says nothing either
        # way: "use 500 trees" may well be "n_estimators 300->500". Only the values are compared.
        if not any(k in _KNOBS for k in knobs_a | knobs_b):
            idea_values, run_values = _all_numbers(a), _all_numbers(b)
            if idea_values and run_values and not _within(idea_values, run_values):
                shown = f"values: {_show(idea_values)} vs {_show(run_values)}"
                return PairSignals(0.0, False, False, True, False, (shown,))
            # ... and a value where the run gave none does more than the run did.
            return _NO_KNOBS_EXTRA if idea_values and not run_values else _NO_KNOBS
        if knobs_a or knobs_b:
            return _ONE_SIDED_EXTRA if knobs_a else _ONE_SIDED
        loose = _loose_difference(a, b)
        return PairSignals(0.0, False, False, True, False, (loose,)) if loose else _NO_KNOBS
    shared = knobs_a & knobs_b
    if not shared:
        return _DISJOINT_EXTRA
    differences: list[str] = []
    for knob in sorted(shared) if explain else shared:
        left, right = a.settings[knob], b.settings[knob]
        if left == right:
            continue
        difference = _difference(knob, left, right, explain)
        if difference is not None:
            differences.append(difference)
            if not explain:
                break
    same_knobs = same_knobs_changed(a, b)
    if same_knobs and (explain or not differences):
        loose = _loose_difference(a, b)
        if loose:
            differences.append(loose)
    # Agreement is only what was checked: a value one side states and the other does not
    # ("weight decay 0.3" against "keep weight decay constant") is no agreement.
    agree = (
        same_knobs and not differences
        and any(_explicit(k, a.settings[k]) and _explicit(k, b.settings[k]) for k in shared)
        and all(_same_values(a.settings[k], b.settings[k]) for k in shared)
    )  # fmt: skip
    return PairSignals(
        knob_jaccard=len(shared) / len(knobs_a | knobs_b),
        both_have_knobs=True,
        one_sided=False,
        conflict=bool(differences),
        agree=agree,
        differences=tuple(differences),
        extra=bool(a.changed - shared) or any(_adds_value(a.settings[k], b.settings[k]) for k in shared),
    )


_TERSE_RUN = 10
"""Content words in a run description short enough that each joined clause is a change of its own."""


def _swapped(a: Features, b: Features) -> str | None:
    """ "X vs Y" where two descriptions are one line with a few words in one place swapped, else None.

    The words both start with and end with are the frame, at least three; what lies between
    is the swap, up to three words a side ("hour of day" / "day of week", "bm25" / "current
    dense retriever"). Another form of the same word ("flip" / "flipping", "params" /
    "parameters") or a synonym is no swap.
    """
    left, right = a.words, b.words
    start = 0
    while start < min(len(left), len(right)) and left[start] == right[start]:
        start += 1
    end = 0
    while end < min(len(left), len(right)) - start and left[-1 - end] == right[-1 - end]:
        end += 1
    mine, theirs = left[start : len(left) - end], right[start : len(right) - end]
    if not mine or not theirs or len(mine) > 3 or len(theirs) > 3 or start + end < 3:
        return None
    swapped = (*mine, *theirs)
    if any(w[0].isdigit() or w[0] == "." or w in _VERBS or w in _KNOBS or w in _CHANGE_WORDS for w in swapped):
        # Values, directions ("lower" / "decrease") and the knobs the vocabulary reads are compared by
        # the settings; so is a swap holding a number, which may be a value in other words ("the
        # second half", 0.5, against "the late layers").
        return None
    if all(w in _GENERIC_KNOB_WORDS for w in swapped):
        return None  # "dropout rate" is "dropout prob"
    if all(_has_word(frozenset(theirs), w) or _abbreviates(w, theirs) for w in mine) and all(
        _has_word(frozenset(mine), w) or _abbreviates(w, mine) for w in theirs
    ):
        return None  # the same words, in other forms or order
    if len(mine) == len(theirs) == 1 and any(mine[0] in group and theirs[0] in group for group in _SAME_THING):
        return None
    return f"{' '.join(mine)} vs {' '.join(theirs)}"


# Words that name one thing where a line swaps only them ("the dev split" is "the validation split").
_SAME_THING = (
    frozenset({"validation", "val", "dev", "eval", "evaluation", "holdout", "heldout"}),
    frozenset({"normalize", "normalise", "standardize", "standardise", "normalization", "standardization"}),
    frozenset({"inputs", "features", "input", "feature"}),
    frozenset({"layer", "layers", "block", "blocks", "module", "modules"}),
    frozenset({"model", "network", "net"}),
    frozenset({"data", "dataset", "corpus"}),
    frozenset({"big", "bigger", "large", "larger"}),
    frozenset({"small", "smaller", "tiny"}),
)

# How a line says it makes its change: "replace relu with gelu" is "swap relu for gelu".
_CHANGE_WORDS = frozenset(
    {"replace", "swap", "switch", "change", "use", "using", "try", "apply", "add", "enable", "set", "make",
     "introduce", "adopt", "instead", "rather", "put", "turn", "run", "train", "do", "plus", "and", "with"}
)  # fmt: skip


def _abbreviates(word: str, others: Sequence[str]) -> bool:
    """Whether ``word`` and one of ``others`` are one word, prefixed ("reshuffle") or abbreviated ("params")."""
    for other in others:
        short, long = sorted((word, other), key=len)
        if len(short) >= 4 and long.endswith(short):
            return True
        common = next((i for i, (x, y) in enumerate(zip(short, long, strict=False)) if x != y), len(short))
        if common >= 4 and common * 2 >= len(short):
            return True
    return False


def _other_edit(a: Features, b: Features) -> bool:
    """Whether two terse edits are one line with another knob's name swapped in, values and all."""
    name_a, name_b = _edit_name(a.edited), _edit_name(b.edited)
    if name_a is None or name_b is None or name_a == name_b or a.knobs & b.knobs & _KNOBS:
        return False  # a knob the vocabulary reads on both sides is compared by its settings
    # Only one word swapped in the same line: "image size 224 -> 288" against "input resolution 224 -> 288"
    # may be one knob in other words; "generation temperature" against "generation top_p" is not.
    frame = a.tokens - {name_a}
    return bool(frame) and frame == b.tokens - {name_b}


def _edit_name(edited: tuple[str, ...]) -> str | None:
    """The word that names an edit's knob: the last, unless it is a generic one ("dropout rate", "image size")."""
    words = [w for w in edited if w not in _GENERIC_KNOB_WORDS]
    return words[-1] if words else None


_GENERIC_KNOB_WORDS = frozenset(
    {"rate", "prob", "probability", "size", "length", "len", "steps", "ratio", "factor", "value", "count",
     "number", "num", "weight", "scale", "coef", "coefficient", "frac", "fraction", "max", "min", "dim"}
)  # fmt: skip


def _adds_change(idea: Features, run: Features) -> bool:
    """Whether the idea joins a second change to the first, most of whose words the run does not have.

    A word the run has in another form counts as had ("lag features" against "lagged covariates"
    is half had): the run may well have made the same second change in other words.
    """
    return any(sum(not _has_word(run.tokens, word) for word in words) * 2 > len(words) for words in idea.additions)


def _has_word(tokens: frozenset[str], word: str) -> bool:
    """Whether ``word`` or another form of it ("lag" / "lagged", "feature" / "features") is among ``tokens``."""
    if word in tokens:
        return True
    stem = word[: max(3, len(word) - 3)]
    return len(stem) >= 3 and any(
        other.startswith(stem) or (len(other) >= 3 and word.startswith(other[: len(stem)])) for other in tokens
    )  # a word of one or two letters ("n" in "n-step") is no form of anything


def same_knobs_changed(a: Features, b: Features) -> bool:
    """Whether two descriptions change the same knobs: only then can they agree (and earn its bonus).

    A knob either side only mentions (no value, direction or option) neither blocks nor earns it.
    """
    return a.knobs == b.knobs or a.changed == b.changed


def _changes(knob: str, setting: Setting) -> bool:
    """Whether a knob only the idea names is a change of its own, not a mention.

    "hold the LR at peak and only start the decay in the last fifth" changes the decay; the
    learning rate it names has no value, direction or option, so it adds nothing the run
    lacked. An on/off feature named at all is switched on (or off): that is a change.
    """
    return knob in _FEATURE_KNOBS or setting.explicit() or setting.direction is not None


def _adds_value(idea: Setting, run: Setting) -> bool:
    """Whether the idea gives a knob a value where the run gave it none (no number or option).

    "raise muon weight decay to 0.3" does more than "keep muon weight decay constant", as an
    idea that names a knob the run did not set does: a variant, not a repeat. A direction is
    no value: whether "learning rate 0.08" is what "lower the learning rate" tried depends on
    a baseline neither line states.
    """
    if _same_factor(idea, run):
        return False  # "MATRIX_LR 0.04 -> 0.02" is the "halve MATRIX_LR" a run did
    return bool(idea.numbers) and not (run.numbers or run.option)


def _explicit(knob: str, setting: Setting) -> bool:
    """Whether a setting states a value: a number, an option, a factor, or (for an on/off feature) its state."""
    return setting.explicit() or knob in _FEATURE_KNOBS or setting.factor is not None


def _same_factor(left: Setting, right: Setting) -> bool:
    return bool(left.factor and right.factor and math.isclose(left.factor, right.factor, rel_tol=0.02))


def _same_values(left: Setting, right: Setting) -> bool:
    """The same numbers, or, where one side gives none, the same factor ("halve" and "0.04 -> 0.02")."""
    if _same_numbers(left.numbers, right.numbers):
        return True
    return not (left.numbers and right.numbers) and _same_factor(left, right)


_NO_KNOBS = PairSignals(0.0, False, False, False, False, ())
_NO_KNOBS_EXTRA = PairSignals(0.0, False, False, False, False, (), extra=True)
_ONE_SIDED = PairSignals(0.0, False, True, False, False, ())
_ONE_SIDED_EXTRA = PairSignals(0.0, False, True, False, False, (), extra=True)
_DISJOINT_EXTRA = PairSignals(0.0, True, False, False, False, (), extra=True)


def _difference(knob: str, left: Setting, right: Setting, explain: bool) -> str | None:
    """How a shared knob differs, or None; without ``explain`` just the knob's name (cheaper)."""
    if left.numbers and right.numbers and not _within(left.numbers, right.numbers):
        return f"{knob}: {_show(left.numbers)} vs {_show(right.numbers)}" if explain else knob
    if left.factor and right.factor and not math.isclose(left.factor, right.factor, rel_tol=0.02):
        return f"{knob}: x{_format_number(left.factor)} vs x{_format_number(right.factor)}" if explain else knob
    if left.option and right.option and left.option != right.option:
        return f"{knob}: {left.option} vs {right.option}" if explain else knob
    if knob in _FEATURE_KNOBS and left.off != right.off:
        return f"{knob}: {'off' if left.off else 'on'} vs {'off' if right.off else 'on'}" if explain else knob
    if (
        left.direction and right.direction and left.direction != right.direction
        and not (left.numbers and right.numbers)
    ):  # fmt: skip
        return f"{knob}: {left.direction} vs {right.direction}" if explain else knob
    return None


def _all_numbers(f: Features) -> frozenset[float]:
    return f.loose_numbers.union(*(setting.numbers for setting in f.settings.values()))


def _loose_difference(a: Features, b: Features) -> str | None:
    # Numbers no knob owns: the idea's within the run's ("decay 0.98" against "(decay=0.98, every 5
    # steps)") are no conflict; more of them than the run had are, as the idea does something else.
    if a.loose_numbers and b.loose_numbers and not _all_in(a.loose_numbers, b.loose_numbers):
        return f"values: {_show(a.loose_numbers)} vs {_show(b.loose_numbers)}"
    return None


def _within(left: frozenset[float], right: frozenset[float]) -> bool:
    """Whether every value of one side is a value of the other.

    A real ledger's line names more numbers than its change ("DEPTH 12→14 (768→896 dim)"),
    and some of them land on the knob: "depth 14" is within that line's values. Sharing some
    is not enough: "window 1024 on layers 1-7" and "window 2048 on layers 1-7" share 1 and 7.
    """

    return _all_in(left, right) or _all_in(right, left)


def _all_in(values: frozenset[float], others: frozenset[float]) -> bool:
    """Whether every value is (within tolerance) one of the others."""
    return all(any(math.isclose(x, y, rel_tol=_tolerance(x, y), abs_tol=1e-12) for y in others) for x in values)


def _same_numbers(left: frozenset[float], right: frozenset[float]) -> bool:
    if left == right:
        return True
    left_sorted, right_sorted = sorted(left), sorted(right)
    return len(left_sorted) == len(right_sorted) and all(
        math.isclose(x, y, rel_tol=_tolerance(x, y), abs_tol=1e-12)
        for x, y in zip(left_sorted, right_sorted, strict=True)
    )


def _tolerance(x: float, y: float) -> float:
    # "8k" tokens means 8192 as often as 8000, and "2k" context 2048: large counts match within 2.5%;
    # "0.5M" and "1M" tokens are as often 2^19 and 2^20 (4.9% apart): counts past 100k within 5%.
    smaller = min(abs(x), abs(y))
    return 0.05 if smaller >= 100_000 else 0.025 if smaller >= 1000 else 1e-6


def _show(values: Iterable[float]) -> str:
    return ", ".join(_format_number(v) for v in sorted(values))


def adjust(base: float, pair: PairSignals, weights: Weights) -> float:
    """Move a base similarity by the pair's signals; the result is clamped to [0, 1]."""
    score = base
    if pair.both_have_knobs:
        score -= weights.disjoint if pair.knob_jaccard == 0 else weights.partial * (1 - pair.knob_jaccard)
    elif pair.one_sided:
        score -= weights.one_sided
    else:
        score -= weights.bare
    if pair.conflict:
        score -= weights.conflict
    elif pair.agree:
        score += weights.agree
    return min(1.0, max(0.0, score))


def relation(score: float, pair: PairSignals, weights: Weights) -> Relation:
    """Duplicate, variant or unrelated, from an adjusted score and the pair's signals."""
    if score >= weights.duplicate and not pair.conflict and not pair.extra:
        return "duplicate"
    if score >= weights.match:
        return "variant"
    return "unrelated"


def compare(
    a: Features, b: Features, base: float, weights: Weights, *, explain: bool = False
) -> tuple[float, Relation, PairSignals]:
    """Score and relate a pair whose base similarity (cosine or lexical) is ``base``."""
    pair = signals(a, b, explain=explain)
    score = adjust(base, pair, weights)
    return score, relation(score, pair, weights), pair


def describe_differences(pair: PairSignals) -> list[str]:
    return list(pair.differences)


def lexical_similarity(a: Features, b: Features) -> float:
    """Jaccard similarity of canonical content tokens: the fallback when no model is available."""
    if not a.tokens or not b.tokens:
        return 1.0 if a.canonical == b.canonical else 0.0
    return len(a.tokens & b.tokens) / len(a.tokens | b.tokens)


_RAW_WORD = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")


def baseline_tokens(text: str) -> frozenset[str]:
    """Lower-cased words minus stop words: the purely lexical baseline's view of a description."""
    return frozenset(w for w in _RAW_WORD.findall(text.lower()) if w not in _STOP)
