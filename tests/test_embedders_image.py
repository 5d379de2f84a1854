"""Image embedder: the mapped Lite0 ImageNet weights, copy retrieval against phash on the real
train photos, missing/corrupt images, and a few CPU steps of ArcFace image training."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from PIL import Image, ImageDraw, ImageEnhance

from embedders import create_embedder, embed_catalog, hamming
from embedders.image import ImagePreprocessor, create_backbone

COPIES = ("crop", "rotate", "jitter", "rescale", "text")


def real_images(shopee_dir: Path) -> list[Path]:
    paths = sorted((shopee_dir / "train_images").glob("*.jpg"))
    if len(paths) < 30:
        pytest.skip(f"fewer than 30 train images under {shopee_dir / 'train_images'}")
    return paths


def make_copy(image: Image.Image, kind: str, rng: np.random.Generator) -> Image.Image:
    w, h = image.size
    if kind == "crop":
        dx, dy = int(w * rng.uniform(0.05, 0.15)), int(h * rng.uniform(0.05, 0.15))
        return image.crop((dx, dy, w - dx, h - dy))
    if kind == "rotate":
        return image.rotate(float(rng.uniform(10, 20)), fillcolor=(255, 255, 255))
    if kind == "jitter":
        image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.7, 1.3))
        return ImageEnhance.Color(image).enhance(rng.uniform(0.5, 1.5))
    if kind == "rescale":
        return image.resize((max(w // 3, 8), max(h // 3, 8))).resize((w, h))
    draw_on = image.copy()
    draw = ImageDraw.Draw(draw_on)
    for row in range(3):
        draw.text((w * 0.05, h * (0.1 + 0.3 * row)), "PROMO 50% ORIGINAL", fill=(255, 0, 0),
                  font_size=max(h // 12, 10))
    return draw_on


@pytest.fixture(scope="module")
def copies_catalog(shopee_dir, tmp_path_factory):
    """Each real photo plus five edited copies, as postings with image_phash left out."""
    import imagehash

    folder = tmp_path_factory.mktemp("copies")
    rng = np.random.default_rng(0)
    names, groups, hashes = [], [], []
    for g, path in enumerate(real_images(shopee_dir)):
        original = Image.open(path).convert("RGB")
        for kind, image in [("orig", original)] + [(k, make_copy(original, k, rng))
                                                   for k in COPIES]:
            name = f"{path.stem}_{kind}.jpg"
            image.save(folder / name, quality=90)
            names.append(name)
            groups.append(g)
            hashes.append(np.uint64(int(str(imagehash.phash(image)), 16)))
    postings = pl.DataFrame({"posting_id": [f"p{i}" for i in range(len(names))],
                             "title": ["x"] * len(names), "image": names})
    return postings, folder, np.array(groups), np.array(hashes, dtype=np.uint64)


def recall_at_k(distance: np.ndarray, groups: np.ndarray, k: int) -> float:
    """Share of each original's copies found among its k nearest other images."""
    np.fill_diagonal(distance, np.inf)
    originals = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    nearest = np.argsort(distance[originals], axis=1, kind="stable")[:, :k]
    hits = groups[nearest] == groups[originals][:, None]
    return float(hits.sum() / (len(originals) * len(COPIES)))


def test_lite0_weights_classify_real_photos_sensibly(shopee_dir):
    model = create_backbone(classifier=True)
    preprocess = ImagePreprocessor.for_backbone(model)
    expected = {"003524b707": {567},  # "Kangaroo Teflon Fry Pan" → frying pan
                "001be52b2b": {630, 774}}  # "sepatu pantofel kulit" (leather shoes) → loafer
    for prefix, classes in expected.items():
        path = next((shopee_dir / "train_images").glob(prefix + "*.jpg"), None)
        if path is None:
            pytest.skip(f"train image {prefix}* not found")
        with torch.no_grad():
            logits = model(torch.from_numpy(preprocess(Image.open(path))[None]))
        assert int(logits.argmax()) in classes
    # A network with shuffled weights would not: the mapping must pair tensors correctly.


def test_image_embedder_finds_copies_better_than_phash(copies_catalog):
    postings, folder, groups, hashes = copies_catalog
    embedding = create_embedder("image").embed(postings, folder)
    assert not embedding.missing.any()
    vectors = embedding.vectors
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    image_recall = recall_at_k(1.0 - vectors @ vectors.T, groups, len(COPIES))
    phash_recall = recall_at_k(hamming(hashes[:, None], hashes[None, :]).astype(np.float64),
                               groups, len(COPIES))
    print(f"recall@5 of edited copies: image {image_recall:.3f}, phash {phash_recall:.3f}")
    assert image_recall > phash_recall
    assert image_recall > 0.8


def test_missing_and_corrupt_images_are_flagged_with_one_warning(shopee_dir, tmp_path, caplog):
    real = real_images(shopee_dir)[0]
    (tmp_path / "ok.jpg").write_bytes(real.read_bytes())
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    postings = pl.DataFrame({"posting_id": ["a", "b", "c", "d"], "title": ["t"] * 4,
                             "image": ["ok.jpg", "broken.jpg", "absent.jpg", None]})
    embedder = create_embedder("image", pooling="avg", image_size=96)
    with caplog.at_level(logging.INFO, logger="embedders"):
        embedding = embed_catalog(embedder, postings, tmp_path / "cache", tmp_path)
    assert embedding.missing.tolist() == [False, True, True, True]
    assert np.all(embedding.vectors[1:] == 0)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "2 images missing or unreadable" in warnings[0], warnings


def test_fingerprint_follows_the_weights(tmp_path):
    from safetensors.torch import save_file

    default = create_embedder("image")
    state = {k: v.contiguous() for k, v in create_backbone().state_dict().items()}
    save_file(state, str(tmp_path / "a.safetensors"))
    state["conv_stem.weight"] = state["conv_stem.weight"] + 1
    save_file(state, str(tmp_path / "b.safetensors"))
    prints = {create_embedder("image", checkpoint=str(tmp_path / f)).model_fingerprint()
              for f in ("a.safetensors", "b.safetensors")}
    assert len(prints | {default.model_fingerprint()}) == 3


def test_arcface_image_training_few_steps_loss_falls_and_checkpoint_round_trips(
        copies_catalog, tmp_path):
    from embedders.arcface import ImageEncoder, TrainingSettings, load_loss, save_checkpoint, \
        train_encoder
    from embedders.image import read_images

    postings, folder, groups, _ = copies_catalog
    rows = np.flatnonzero(groups < 4)[::2][:8]  # a tiny batch: 8 photos of 4 products
    encoder = ImageEncoder(pooling="gem", image_size=64)
    images, missing = read_images([postings["image"][int(r)] for r in rows], folder,
                                  encoder.preprocess)
    assert not missing.any()
    _, labels = np.unique(groups[rows], return_inverse=True)
    settings = TrainingSettings(epochs=8, batch_size=8, lr=1e-3, head_lr=1e-2, scale=16,
                               margin=0.2, device="cpu", init_centres=False)
    result = train_encoder(encoder, images, labels, settings)
    assert np.mean(result.losses[-3:]) < np.mean(result.losses[:3])
    record = save_checkpoint(tmp_path / "ckpt", encoder, result, settings)
    assert (tmp_path / "ckpt" / "encoder" / "backbone.safetensors").is_file()
    loss = load_loss(tmp_path / "ckpt")
    torch.testing.assert_close(loss.module.weight, result.loss.module.weight.detach())
    reloaded = create_embedder(record["embedder"]["name"], **record["embedder"]["config"])
    sub = postings[[int(r) for r in rows]]
    vectors = reloaded.embed(sub, folder).vectors
    with torch.no_grad():
        expected = torch.nn.functional.normalize(encoder(encoder.prepare(images)), dim=1)
    np.testing.assert_allclose(vectors, expected.numpy(), atol=1e-4)
