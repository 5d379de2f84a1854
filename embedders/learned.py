"""Learned embedders as pipeline elements: ``arcface_text`` (any sentence-transformers folder,
MiniLM by default) and ``arcface_image`` (any timm backbone), trained by metric learning
(:mod:`embedders.arcface`) on the catalog's own label groups.

``checkpoint`` sets the mode:

- **training** (``checkpoint`` None): on a labelled catalog, train protocol P2's fold models and
  return their out-of-fold vectors (every posting embedded by a model that never saw its label
  group, so the candidates, the ranker's features and P1's cross-validation see no leaked label),
  then train the all-rows model, which the vectors' manifest names (``encoder``) and a fitted
  model carries. The models land in ``workspace`` (the embedder's cache folder in a work
  directory, else a temporary folder); a rerun reuses every model trained under the same key.
- **applying** (``checkpoint``: a trained model folder holding ``encoder/``, as a fitted model
  records it, or ``train-embedder``'s ``OUT/final``): embed any catalog with that encoder.

The training settings (``recipe``, ``epochs``, any other
:class:`~embedders.arcface.TrainingSettings` field in ``training``) are config, hence part of
the cache key and of the model.
"""
from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl

from common.errors import InputError
from common.postings import fingerprint, has_labels, label_codes

from .base import Embedder, Embedding
from .weights import folder_digest

log = logging.getLogger(__name__)

ENCODER_FOLDER = "encoder"   # inside a trained model folder: what the applying embedder loads
RECORD_FILE = "arcface.json"  # beside it: the settings it was trained with
DEFAULT_RECIPE = "arcface-focal-ramp"
# The text element's ``training`` when none is given; a given one replaces it whole, so that a
# recorded config, ``{}`` included, always means the settings it meant when written. With four
# of MiniLM's six layers trained, batches of 128 at twice the step size, and bfloat16 autocast
# on a CPU that multiplies it natively (float32 elsewhere), fold 0's held-out text-only F1 is
# 0.8032 against 0.7947 with two layers in float32 at batch 64 and lr 1e-4, and the fold
# models train faster (bench/recipes_layers_cpu.json, bench/learned_text_pipeline.json).
TEXT_TRAINING = {"batch_size": 128, "lr": 2e-4, "amp_dtype": "auto"}


class LearnedEmbedder(Embedder):
    """What the learned embedders share: the two modes, the fold training, the checkpoint."""

    kind = "dense"
    learned: ClassVar[bool] = True

    def _common(self, recipe: str, epochs: float, training: dict | None, folds: int, seed: int,
                checkpoint: str | None, max_steps: int | None) -> None:
        if not isinstance(training, (dict, type(None))):
            raise ValueError("training must be a dict of training settings")
        self.recipe = recipe
        self.epochs = epochs
        self.training = dict(training or {})
        self.folds = folds
        self.seed = seed
        self.checkpoint = checkpoint
        self.max_steps = max_steps
        if folds < 2:
            raise ValueError("folds must be at least 2")
        self.training_settings()  # an unknown recipe or setting is refused here, by name

    @property
    def trains(self) -> bool:
        return self.checkpoint is None

    @property
    def cache_name(self) -> str:
        # Applying a model to the training catalog must not overwrite its out-of-fold vectors.
        return self.name if self.trains else f"{self.name}.applied"

    def training_settings(self):
        from .arcface import recipe_settings

        return recipe_settings(self.recipe, **{"epochs": self.epochs, **self.training})

    def trained_folder(self) -> Path:
        """The checkpoint folder, refused by name unless it holds a trained encoder."""
        folder = Path(self.checkpoint)
        if not (folder / ENCODER_FOLDER).is_dir():
            raise InputError(f"{self.name}: no trained encoder here (expected {ENCODER_FOLDER}/, "
                             f"as train-embedder or train-ranker writes it)", file=str(folder))
        return folder

    def model_fingerprint(self) -> str:
        if self.checkpoint is not None:
            return folder_digest(self.trained_folder() / ENCODER_FOLDER)
        return self.base_fingerprint()

    def embed(self, postings: pl.DataFrame, images_dir: Path | None = None,
              workspace: Path | None = None) -> Embedding:
        if self.checkpoint is not None:
            embedding = self.applying_embedder().embed(postings, images_dir)
            embedding.name = self.name
            return embedding
        return self._train(postings, images_dir, workspace)

    def _train(self, postings: pl.DataFrame, images_dir: Path | None,
               workspace: Path | None) -> Embedding:
        from .arcface.folds import train_folds

        if not has_labels(postings):
            raise InputError(f"{self.name} trains on the catalog's label groups and these "
                             f"postings have none; to embed an unlabelled catalog, name a trained "
                             f"model ({self.name}:checkpoint=DIR; a fitted model carries its own)",
                             column="label_group")
        items, present = self.training_items(postings, images_dir)
        folder = Path(workspace) if workspace is not None else _temporary_workspace()
        postings_key = fingerprint(postings, self.input_columns)
        try:
            # oof/ is a `precomputed` folder of these postings, like train-embedder --oof's.
            report = train_folds(self.make_encoder, items, label_codes(postings)[present],
                                 self.training_settings(), folder, self.folds, True,
                                 fingerprint(postings), self.seed, self.max_steps,
                                 resume=self.cache_key(postings_key, str(images_dir or "")),
                                 missing=~present)
        except ValueError as exc:
            raise InputError(f"{self.name}: {exc}", column="label_group") from None
        vectors = np.load(folder / "oof" / "vectors.npy", allow_pickle=False)
        training = {k: report[k] for k in ("fold_seconds", "final_seconds", "device", "amp",
                                           "samples_per_second")}
        return Embedding(self.name, self.kind, vectors, ~present,
                         {"encoder": report["final"], "training": training})

    # what each modality defines
    def base_fingerprint(self) -> str:
        raise NotImplementedError

    def training_items(self, postings: pl.DataFrame, images_dir: Path | None
                       ) -> tuple[Any, np.ndarray]:
        """What the encoder trains on, for the postings that have it, and that mask."""
        raise NotImplementedError

    def make_encoder(self):
        raise NotImplementedError

    def applying_embedder(self) -> Embedder:
        raise NotImplementedError


class ArcFaceTextEmbedder(LearnedEmbedder):
    """A sentence-transformers model (``model_path``; None: the offline MiniLM) fine-tuned on
    the cleaned titles, ``freeze_layers`` lowest layers frozen (see
    :class:`~embedders.arcface.TextEncoder`), with :data:`TEXT_TRAINING` under ``training``."""

    name = "arcface_text"
    input_columns = ("posting_id", "title", "label_group")

    def __init__(self, recipe: str = DEFAULT_RECIPE, epochs: float = 2.0,
                 training: dict | None = None, folds: int = 5, seed: int = 42,
                 model_path: str | None = None, max_seq_length: int = 32,
                 freeze_layers: int = 2, batch_size: int = 128, checkpoint: str | None = None,
                 max_steps: int | None = None):
        self.model_path = model_path
        self.max_seq_length = max_seq_length
        self.freeze_layers = freeze_layers
        self.batch_size = batch_size
        self._common(recipe, epochs, dict(TEXT_TRAINING) if training is None else training,
                     folds, seed, checkpoint, max_steps)

    def base_fingerprint(self) -> str:
        from .text import default_minilm_path

        return folder_digest(Path(self.model_path) if self.model_path else default_minilm_path())

    def training_items(self, postings, images_dir):
        return text_training_items(postings)

    def make_encoder(self):
        from .arcface import TextEncoder

        return TextEncoder(self.model_path, self.max_seq_length, self.freeze_layers)

    def applying_embedder(self) -> Embedder:
        from .text import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(str(self.trained_folder() / ENCODER_FOLDER),
                                           self.max_seq_length, self.batch_size)


class ArcFaceImageEmbedder(LearnedEmbedder):
    """A timm backbone (ImageNet weights from ``backbone_checkpoint`` or the offline
    efficientnet-lite0) fine-tuned on the postings' images, GeM or average pooled."""

    name = "arcface_image"
    modality = "image"
    input_columns = ("posting_id", "image", "label_group")

    def __init__(self, recipe: str = DEFAULT_RECIPE, epochs: float = 2.0,
                 training: dict | None = None, folds: int = 5, seed: int = 42,
                 backbone: str = "tf_efficientnet_lite0", backbone_checkpoint: str | None = None,
                 pooling: str = "gem", gem_p: float = 3.0, image_size: int | None = None,
                 batch_size: int = 32, checkpoint: str | None = None,
                 max_steps: int | None = None):
        from .image import check_pooling

        check_pooling(pooling)
        self.backbone = backbone
        self.backbone_checkpoint = backbone_checkpoint
        self.pooling = pooling
        self.gem_p = gem_p
        self.image_size = image_size
        self.batch_size = batch_size
        self._common(recipe, epochs, training, folds, seed, checkpoint, max_steps)

    def base_fingerprint(self) -> str:
        from .image import ImageEmbedder

        return ImageEmbedder(self.backbone, self.backbone_checkpoint).model_fingerprint()

    def training_items(self, postings, images_dir):
        if images_dir is None or "image" not in postings.columns:
            raise InputError(f"{self.name} trains on the postings' images: give an images "
                             f"folder and an image column", column="image")
        return image_training_items(postings, Path(images_dir), self.backbone,
                                    self.backbone_checkpoint, self.image_size)

    def make_encoder(self):
        from .arcface import ImageEncoder

        return ImageEncoder(self.backbone, self.backbone_checkpoint, self.pooling, self.gem_p,
                            self.image_size)

    def applying_embedder(self) -> Embedder:
        from .image import ImageEmbedder

        return ImageEmbedder(self.backbone, str(self.trained_folder() / ENCODER_FOLDER),
                             self.pooling, self.gem_p, self.image_size, self.batch_size)


def text_training_items(postings: pl.DataFrame) -> tuple[list[str], np.ndarray]:
    """Cleaned titles of the postings that have one, and that mask."""
    from common.text import clean_titles

    titles = clean_titles(postings["title"])
    present = np.array([t != "" for t in titles], dtype=bool)
    return [t for t, keep in zip(titles, present) if keep], present


def image_training_items(postings: pl.DataFrame, images_dir: Path, backbone: str,
                         checkpoint: str | None, image_size: int | None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Preprocessed images of the postings whose image reads, and that mask (one warning
    counts the others)."""
    from .image import ImagePreprocessor, create_backbone, read_images

    preprocess = ImagePreprocessor.for_backbone(create_backbone(backbone, checkpoint),
                                                image_size)
    batch, missing = read_images(postings["image"].to_list(), images_dir, preprocess)
    if missing.any():
        log.warning(f"{int(missing.sum())} images missing or unreadable; trained without them")
    return batch[~missing], ~missing


def copy_trained(source: str | Path, target: Path) -> None:
    """A trained model's encoder and settings record (not the training head) into ``target``."""
    source = Path(source)
    target.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source / ENCODER_FOLDER, target / ENCODER_FOLDER)
    if (source / RECORD_FILE).is_file():
        shutil.copy2(source / RECORD_FILE, target / RECORD_FILE)


def _temporary_workspace() -> Path:
    """Where models trained without a work directory live until the interpreter exits (a
    fitted Matcher's model names its encoder there until it is saved)."""
    folder = Path(tempfile.mkdtemp(prefix="listing-matcher-encoders-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder
