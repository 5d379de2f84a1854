"""ArcFace training of a text or image embedder on labelled postings (``python cli.py
train-embedder``), optionally per fold for protocol P2's out-of-fold vectors."""
from __future__ import annotations

from pathlib import Path

from common.errors import InputError
from common.postings import fingerprint, has_labels, label_codes, load_postings


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
    from embedders.arcface.folds import train_folds
    from embedders.learned import ArcFaceImageEmbedder, ArcFaceTextEmbedder

    frame = load_postings(postings)
    if not has_labels(frame):
        raise InputError("ArcFace training needs a label_group column", file=str(postings),
                         column="label_group")
    # The pipeline's learned embedders define what each modality trains on and its encoder.
    if modality == "text":
        embedder = ArcFaceTextEmbedder(model_path=model_path, max_seq_length=max_seq_length,
                                       freeze_layers=freeze_layers)
    else:
        if not images or "image" not in frame.columns:
            raise InputError("image training needs --images and an image column",
                             file=str(postings), column="image")
        embedder = ArcFaceImageEmbedder(backbone=backbone, backbone_checkpoint=checkpoint,
                                        pooling=pooling, image_size=image_size)
    items, keep = embedder.training_items(frame, Path(images) if images else None)
    if oof and not keep.all():
        raise InputError(f"{int((~keep).sum())} postings have no {modality}; out-of-fold "
                         "training needs every posting (the arcface_text / arcface_image "
                         "embedders train without them)", file=str(postings))
    labels = label_codes(frame)[keep]
    try:
        report = train_folds(embedder.make_encoder, items, labels, settings, Path(out), folds,
                             oof, fingerprint(frame), seed, max_steps)
    except ValueError as exc:
        raise InputError(str(exc), file=str(postings)) from None
    return {**report, "postings": int(len(labels))}
