"""ArcFace training of a text or image embedder on labelled postings (``python cli.py
train-embedder``), optionally per fold for protocol P2's out-of-fold vectors."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from common.errors import InputError
from common.postings import fingerprint, has_labels, label_codes, load_postings

log = logging.getLogger(__name__)


def train_embedder(postings: str | Path, modality: str, out: str | Path, settings,
                   oof: bool = False, folds: int = 5, seed: int = 42,
                   max_steps: int | None = None, images: str | Path | None = None,
                   model_path: str | None = None, max_seq_length: int = 32,
                   freeze_layers: int = 4, backbone: str = "tf_efficientnet_lite0",
                   checkpoint: str | None = None, pooling: str = "gem",
                   image_size: int | None = None) -> dict:
    """Train and save the encoder (and, with ``oof``, one per fold and the out-of-fold vectors
    in ``out/oof``); ``settings`` is an :class:`embedders.arcface.TrainingSettings`. Returns the
    training report."""
    from embedders.arcface import ImageEncoder, TextEncoder
    from embedders.arcface.folds import train_folds

    frame = load_postings(postings)
    if not has_labels(frame):
        raise InputError("ArcFace training needs a label_group column", file=str(postings),
                         column="label_group")
    if modality == "text":
        from common.text import clean_titles

        items = clean_titles(frame["title"])
        keep = np.array([t != "" for t in items])

        def make_encoder():
            return TextEncoder(model_path, max_seq_length, freeze_layers)
    else:
        if not images or "image" not in frame.columns:
            raise InputError("image training needs --images and an image column",
                             file=str(postings), column="image")
        from embedders.image import ImagePreprocessor, create_backbone, read_images

        preprocess = ImagePreprocessor.for_backbone(create_backbone(backbone, checkpoint),
                                                    image_size)
        items, missing = read_images(frame["image"].to_list(), Path(images), preprocess)
        keep = ~missing
        if missing.any():
            log.warning(f"{int(missing.sum())} images missing or unreadable; trained without them")

        def make_encoder():
            return ImageEncoder(backbone, checkpoint, pooling, image_size=image_size)
    if not keep.all():
        if oof:
            raise InputError(f"{int((~keep).sum())} postings have no {modality}; "
                             "out-of-fold training needs every posting", file=str(postings))
        items = items[keep] if isinstance(items, np.ndarray) else \
            [t for t, k in zip(items, keep) if k]
    labels = label_codes(frame)[keep]
    try:
        report = train_folds(make_encoder, items, labels, settings, Path(out), folds, oof,
                             fingerprint(frame), seed, max_steps)
    except ValueError as exc:
        raise InputError(str(exc), file=str(postings)) from None
    return {**report, "postings": int(len(labels))}
