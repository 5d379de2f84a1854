"""Named training recipes: the loss, sampler, optimiser and schedule combinations the Shopee
write-ups trained their embedders with, each one word on the command line (``--recipe``).

A recipe sets only what distinguishes it; epochs, batch size and learning rates stay the
caller's (the benchmarked MiniLM defaults), and any option given explicitly overrides the
recipe's value. README's "Embedder training recipes" says where each comes from.
"""
from __future__ import annotations

from .train import TrainingSettings

RECIPES: dict[str, dict] = {
    # the toolkit's own: ArcFace head, AdamW, linear warm-up then cosine decay
    "arcface": {},
    # in-batch contrastive loss on cosine similarity (positives to 1, negatives below 0), a
    # cross-batch memory of recent embeddings, multi-similarity mining over batch and memory;
    # the memory starts halfway, once the embeddings drift slowly (XBM's warm-up)
    "contrastive-xbm": {"loss": "contrastive", "miner": "multi-similarity", "xbm": 4096,
                        "xbm_start": 0.5, "sampler": "m-per-class"},
    # ArcFace with sharpness-aware minimisation around Ranger (RAdam + LookAhead), warm-up
    "arcface-sam-ranger": {"sam": True, "optimizer": "ranger"},
    # ArcFace with small groups drawn as often as large ones
    "arcface-balanced": {"sampler": "class-balanced"},
    # focal loss on the margin logits, the margin ramped up over the first half of training
    "arcface-focal-ramp": {"focal_gamma": 2.0, "margin_warmup": 0.5},
    # triplet loss (margin 0.1) on the hardest positive and negative of each anchor
    "triplet": {"loss": "triplet", "miner": "batch-hard", "sampler": "m-per-class"},
    # CurricularFace: ArcFace's margin plus hard negatives weighed more as training goes on
    "curricularface": {"loss": "curricularface"},
    # sub-centre ArcFace: three centres per group, robust to a group's odd postings
    "subcenter-arcface": {"loss": "subcenter-arcface"},
    # multi-similarity loss with its own miner
    "multi-similarity": {"loss": "multi-similarity", "miner": "multi-similarity",
                         "sampler": "m-per-class"},
}


def recipe_settings(recipe: str = "arcface", **overrides) -> TrainingSettings:
    """The settings of ``recipe``, with ``overrides`` (any :class:`TrainingSettings` field)
    applied on top; validated."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; one of {', '.join(RECIPES)}")
    unknown = set(overrides) - set(TrainingSettings.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown training settings: {', '.join(sorted(unknown))}")
    return TrainingSettings(**{**RECIPES[recipe], **overrides}).validate()
