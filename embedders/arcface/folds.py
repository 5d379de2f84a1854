"""Group-aware k-fold ArcFace training: out-of-fold embeddings for protocol P2.

Postings are dealt into the same label-grouped folds as protocol P1 (``common.folds``, same
seed). For each fold f a fresh encoder is trained on the other folds and embeds only fold f,
so every posting's vector comes from a model that never saw its label group. The stacked
out-of-fold matrix is written as a ``precomputed`` embedding; a final model trained on every
posting is what embeds new catalogs at submit time.

With a ``resume`` key (the training's inputs and settings, hashed), a fold or final model whose
checkpoint records the same key is reused rather than trained again: an interrupted run picks
up after its last finished model.
"""
from __future__ import annotations

import functools
import logging
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from common.atomic import read_json, save_npy, write_json
from common.folds import group_folds

from .losses import CLASS_LOSSES
from .train import (TrainingSettings, embed_items, resolve_device, save_checkpoint, take_rows,
                    train_encoder)

log = logging.getLogger(__name__)


def train_folds(make_encoder: Callable[[], object], items, labels: np.ndarray,
                settings: TrainingSettings, out: Path, n_folds: int = 5,
                out_of_fold: bool = True, postings_fingerprint: str = "", seed: int = 42,
                max_steps: int | None = None, resume: str = "",
                missing: np.ndarray | None = None) -> dict:
    """Train per fold (when ``out_of_fold``) and on everything; returns the report it writes.

    Writes ``out/fold_<f>/`` checkpoints (with ``held.npy``, the held-out fold's vectors),
    ``out/oof/`` (vectors.npy, missing.npy, manifest.json) and ``out/final/``. ``missing``
    marks the postings without input (``items`` and ``labels`` are the others'): ``oof/``
    still holds one row per posting, theirs zero and flagged.
    """
    out = Path(out)
    labels = np.asarray(labels)
    report = {"folds": n_folds if out_of_fold else 0, "seed": seed, "fold_seconds": []}

    device = resolve_device(settings.device)

    def fresh_encoder():
        # Every model starts from the same weights, randomly initialised parts included, so
        # one untrained encoder's passes below stand for every model's.
        torch.manual_seed(settings.seed)
        return make_encoder()

    # Frozen lower layers are the same pretrained weights in every fold: run them once, not
    # once per fold and again for the final model.
    items = fresh_encoder().to(device).precompute_frozen(items)

    @functools.cache
    def pretrained() -> np.ndarray | None:
        """Every item's embedding by the untrained encoder, for the class centres: the same
        pass for every model, so it runs once (when a model is trained at all), not once per
        fold and again for the final model."""
        if not (settings.init_centres and settings.loss in CLASS_LOSSES):
            return None
        encoder = fresh_encoder().to(device)
        return embed_items(encoder, items, description="class centres")

    def pretrained_rows(rows: np.ndarray | None = None) -> np.ndarray | None:
        every = pretrained()
        return every if every is None or rows is None else every[rows]

    if out_of_fold:
        fold = group_folds(labels, n_folds, seed)
        vectors = None
        for f in range(n_folds):
            start = time.perf_counter()
            train_rows, held_rows = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
            held = _finished(out / f"fold_{f}", resume, len(held_rows))
            if held is None:
                _, codes = np.unique(labels[train_rows], return_inverse=True)
                encoder = fresh_encoder()
                result = train_encoder(encoder, take_rows(items, train_rows), codes, settings,
                                       max_steps, pretrained_rows(train_rows))
                held = embed_items(encoder, take_rows(items, held_rows),
                                   description=f"fold {f} oof")
                save_checkpoint(out / f"fold_{f}", encoder, result, settings,
                                {"fold": f, "trained_postings": len(train_rows),
                                 "resume_key": resume}, {"held.npy": held})
                log.info(f"train-embedder: fold {f + 1}/{n_folds} trained on "
                         f"{len(train_rows):,} postings, loss {np.mean(result.losses[:5]):.3f}"
                         f" → {np.mean(result.losses[-5:]):.3f}")
            else:
                log.info(f"train-embedder: fold {f + 1}/{n_folds} reused from {out}")
            if vectors is None:
                vectors = np.zeros((len(labels), held.shape[1]), np.float32)
            vectors[held_rows] = held
            report["fold_seconds"].append(round(time.perf_counter() - start, 2))
        missing = np.zeros(len(labels), bool) if missing is None else np.asarray(missing, bool)
        every = np.zeros((len(missing), vectors.shape[1]), np.float32)
        every[~missing] = vectors
        (out / "oof").mkdir(parents=True, exist_ok=True)
        (out / "oof" / "manifest.json").unlink(missing_ok=True)
        save_npy(out / "oof" / "vectors.npy", every)
        save_npy(out / "oof" / "missing.npy", missing)
        write_json(out / "oof" / "manifest.json", {
            "postings_fingerprint": postings_fingerprint, "rows": len(missing),
            "dims": int(vectors.shape[1]), "folds": n_folds, "seed": seed,
            "fold_of_row": fold.tolist()})
    record = _record(out / "final", resume)
    if record is None:
        _, codes = np.unique(labels, return_inverse=True)
        encoder = fresh_encoder()
        result = train_encoder(encoder, items, codes, settings, max_steps, pretrained_rows())
        record = save_checkpoint(out / "final", encoder, result, settings,
                                 {"trained_postings": len(labels), "resume_key": resume})
    losses = record["losses"]
    report.update({"final": str(out / "final"), "embedder": record["embedder"],
                   "device": record["device"], "amp": record["amp"],
                   "samples_per_second": record["samples_per_second"],
                   "final_loss_first": round(float(np.mean(losses[:5])), 5),
                   "final_loss_last": round(float(np.mean(losses[-5:])), 5),
                   "final_seconds": record["seconds"]})
    write_json(out / "train_embedder.json", report)
    return report


def _record(folder: Path, resume: str) -> dict | None:
    """The checkpoint record of a model trained under the same ``resume`` key, else None."""
    if not resume or not (folder / "arcface.json").is_file():
        return None
    try:
        record = read_json(folder / "arcface.json")
    except (OSError, ValueError):  # a damaged record: train again
        return None
    return record if isinstance(record, dict) and record.get("resume_key") == resume else None


def _finished(folder: Path, resume: str, rows: int) -> np.ndarray | None:
    """The held-out vectors of a fold model trained under the same ``resume`` key, else None."""
    if _record(folder, resume) is None:
        return None
    try:
        held = np.load(folder / "held.npy", allow_pickle=False)
    except (OSError, ValueError):
        return None
    return held if held.ndim == 2 and len(held) == rows else None
