"""Embedder training beyond ArcFace: each loss, miner, sampler, the cross-batch memory, Ranger,
the focal term, the margin warm-up, the named recipes, checkpoints and P2 folds, on tiny data."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from embedders.arcface import (CLASS_LOSSES, LOSSES, PAIR_LOSSES, RECIPES, CurricularFaceHead,
                               FocalCrossEntropy, Ranger, TrainingSettings, batch_order,
                               create_loss, load_loss, recipe_settings, save_checkpoint,
                               train_encoder)
from embedders.arcface.folds import train_folds

from test_embedders_arcface import TinyEncoder, toy_data


class SavableTinyEncoder(TinyEncoder):
    """TinyEncoder plus what checkpoints need."""

    def save(self, folder):
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict(), folder / "weights.pt")

    def embedder_config(self, folder):
        return {"name": "toy", "config": {"path": str(folder)}}


def fast(loss: str, **overrides) -> TrainingSettings:
    settings = dict(epochs=25, batch_size=16, lr=3e-3, head_lr=3e-2, scale=10, margin=0.2,
                    device="cpu", amp=False, init_centres=False, loss=loss, m_per_class=4)
    return TrainingSettings(**{**settings, **overrides})


@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_falls_on_a_toy_problem(loss):
    x, y = toy_data()
    result = train_encoder(TinyEncoder(), x, y, fast(loss, epochs=60))
    assert np.isfinite(result.losses).all()
    assert np.mean(result.losses[-5:]) < 0.7 * np.mean(result.losses[:5])


@pytest.mark.parametrize("loss,miner", [("contrastive", "multi-similarity"),
                                        ("triplet", "batch-hard"),
                                        ("multi-similarity", "multi-similarity")])
def test_pair_losses_with_a_miner_and_with_a_cross_batch_memory_learn(loss, miner):
    x, y = toy_data()
    for xbm in (0, 32):
        result = train_encoder(TinyEncoder(), x, y, fast(loss, miner=miner, xbm=xbm))
        assert np.mean(result.losses[-5:]) < np.mean(result.losses[:5])


def test_cross_batch_memory_holds_the_last_size_embeddings():
    loss = create_loss(TrainingSettings(loss="contrastive", xbm=32, miner="multi-similarity"),
                       embedding_dim=4, n_classes=4)
    memory = loss.module
    batches = [torch.randn(16, 4) for _ in range(3)]
    labels = [torch.randint(0, 4, (16,)) for _ in range(3)]
    for e, l in zip(batches, labels):
        loss(e, l)
    assert memory.has_been_filled and memory.embedding_memory.shape == (32, 4)
    held = {tuple(np.round(r, 5)) for r in memory.embedding_memory.numpy()}
    last_two = {tuple(np.round(r, 5)) for r in torch.cat(batches[1:]).numpy()}
    assert held == last_two  # the first batch has been pushed out
    assert sorted(memory.label_memory.tolist()) == sorted(torch.cat(labels[1:]).tolist())


def test_cross_batch_memory_is_neither_filled_nor_used_before_it_starts():
    loss = create_loss(TrainingSettings(loss="contrastive", xbm=32, miner="multi-similarity"),
                       embedding_dim=4, n_classes=4)
    memory = loss.module
    loss.memory_on = False
    batch, labels = torch.randn(16, 4), torch.randint(0, 4, (16,))
    in_batch = loss(batch, labels)
    assert memory.queue_idx == 0 and not memory.has_been_filled
    assert in_batch == memory.loss(batch, labels, memory.miner(batch, labels))
    loss.memory_on = True
    loss(batch, labels)
    assert memory.queue_idx == 16
    x, y = toy_data()  # trained with the memory from halfway: it learns, and the memory fills
    result = train_encoder(TinyEncoder(), x, y, fast("contrastive", miner="multi-similarity",
                                                     xbm=32, xbm_start=0.5))
    assert result.loss.module.has_been_filled and result.loss.memory_on
    assert np.mean(result.losses[-5:]) < np.mean(result.losses[:5])


def test_m_per_class_batches_hold_m_of_each_class():
    labels = np.repeat(np.arange(10), [2, 3, 4, 5, 6, 2, 3, 4, 5, 6])
    order = batch_order(labels, "m-per-class", 8, 20, np.random.default_rng(0), m_per_class=2)
    assert len(order) == 160
    for batch in order.reshape(20, 8):
        _, counts = np.unique(labels[batch], return_counts=True)
        assert len(counts) == 4 and (counts == 2).all()
    again = batch_order(labels, "m-per-class", 8, 20, np.random.default_rng(0), m_per_class=2)
    np.testing.assert_array_equal(order, again)  # seeded


def test_class_balanced_sampler_draws_small_groups_as_often_as_large_ones():
    labels = np.repeat([0, 1], [2, 98])
    order = batch_order(labels, "class-balanced", 50, 200, np.random.default_rng(0))
    share_small = np.mean(labels[order] == 0)
    assert 0.45 < share_small < 0.55  # 2 % of the postings, half the draws


def test_random_sampler_is_one_permutation_per_epoch():
    order = batch_order(np.zeros(40, int), "random", 8, 10, np.random.default_rng(0))
    assert sorted(order[:40]) == list(range(40)) and sorted(order[40:80]) == list(range(40))


def test_focal_term_is_cross_entropy_at_gamma_0_and_discounts_easy_examples():
    logits, target = torch.tensor([[4.0, 0.0], [0.2, 0.0]]), torch.tensor([0, 0])
    ce = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    torch.testing.assert_close(FocalCrossEntropy(0.0, "none")(logits, target), ce)
    focal = FocalCrossEntropy(2.0, "none")(logits, target)
    assert (focal < ce).all() and focal[0] / ce[0] < focal[1] / ce[1]
    with pytest.raises(ValueError):
        FocalCrossEntropy(-1.0)


def test_curricularface_weighs_hard_negatives_by_the_running_target_cosine():
    head = CurricularFaceHead(2, 2, scale=1.0, margin=0.3)
    head.weight.data = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    x, y = torch.tensor([[1.0, 1.1]]), torch.tensor([0])  # class 1 is closer: a hard negative
    head.t.fill_(0.5)
    head.eval()
    with torch.no_grad():
        logits, cos = head(x, y), head.cosine(x)
    c1 = float(cos[0, 1])
    assert float(logits[0, 1]) == pytest.approx(c1 * (0.5 + c1), abs=1e-5)
    assert float(logits[0, 0]) == pytest.approx(np.cos(np.arccos(float(cos[0, 0])) + 0.3),
                                                abs=1e-5)
    head.train()
    head(x, y)
    assert float(head.t) == pytest.approx(0.99 * 0.5 + 0.01 * float(cos[0, 0]), abs=1e-6)


def test_ranger_lowers_a_quadratic_and_syncs_the_slow_weights_every_k_steps():
    w = nn.Parameter(torch.tensor([3.0, -2.0]))
    optimizer = Ranger([w], lr=0.1, k=5, alpha=0.5)
    for step in range(1, 201):
        optimizer.zero_grad()
        (w ** 2).sum().backward()
        optimizer.step()
        if step % 5 == 0:
            torch.testing.assert_close(w.detach(), optimizer.slow_weights[w])
    assert float((w.detach() ** 2).sum()) < 0.1 * 13.0


def test_margin_warmup_ends_at_the_full_margin():
    x, y = toy_data()
    result = train_encoder(TinyEncoder(), x, y, fast("arcface", margin_warmup=0.5,
                                                      focal_gamma=2.0))
    assert result.loss.module.margin == pytest.approx(0.2)
    assert np.mean(result.losses[-5:]) < np.mean(result.losses[:5])


@pytest.mark.parametrize("bad,match", [
    (dict(loss="arcface", miner="batch-hard"), "pair losses"),
    (dict(loss="curricularface", xbm=64), "pair losses"),
    (dict(loss="triplet", sampler="random"), "m-per-class"),
    (dict(loss="triplet", focal_gamma=2.0), "margin losses"),
    (dict(loss="contrastive", xbm=8, batch_size=16), "at least one batch"),
    (dict(loss="contrastive", m_per_class=3, batch_size=16), "dividing"),
    (dict(loss="hinge"), "unknown loss"),
    (dict(optimizer="sgd"), "unknown optimizer"),
    (dict(margin_warmup=1.5), "fraction"),
    (dict(loss="contrastive", xbm_start=0.5), "give its size"),
    (dict(loss="contrastive", xbm=64, xbm_start=1.0), "fraction"),
])
def test_inconsistent_settings_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        TrainingSettings(**bad).validate()


def test_every_recipe_is_valid_and_explicit_options_override_it():
    for name in RECIPES:
        recipe_settings(name)
    settings = recipe_settings("contrastive-xbm", xbm=256, epochs=1.0)
    assert (settings.loss, settings.xbm, settings.epochs, settings.batch_sampler) == \
        ("contrastive", 256, 1.0, "m-per-class")
    assert recipe_settings("arcface-sam-ranger").sam and \
        recipe_settings("arcface-sam-ranger").optimizer == "ranger"
    with pytest.raises(ValueError, match="unknown recipe"):
        recipe_settings("nope")
    with pytest.raises(ValueError, match="unknown training settings"):
        recipe_settings("arcface", colour="red")


@pytest.mark.parametrize("loss", LOSSES)
def test_checkpoints_round_trip_every_loss(loss, tmp_path):
    x, y = toy_data()
    settings = fast(loss, epochs=2, init_centres=loss in CLASS_LOSSES)
    encoder = SavableTinyEncoder()
    result = train_encoder(encoder, x, y, settings)
    record = save_checkpoint(tmp_path / "ckpt", encoder, result, settings)
    assert record["settings"]["loss"] == loss
    reloaded = load_loss(tmp_path / "ckpt")
    saved = result.loss.state_to_save()
    assert (len(saved) == 0) == (loss in PAIR_LOSSES)
    for key, value in reloaded.state_to_save().items():
        torch.testing.assert_close(value, saved[key])


def test_checkpoints_from_before_the_other_losses_load_as_arcface(tmp_path):
    x, y = toy_data()
    settings = fast("arcface", epochs=2)
    encoder = SavableTinyEncoder()
    save_checkpoint(tmp_path / "old", encoder, train_encoder(encoder, x, y, settings), settings)
    record = json.loads((tmp_path / "old" / "arcface.json").read_text())
    for name in ("loss", "miner", "xbm", "optimizer", "sampler", "m_per_class",
                 "margin_warmup", "focal_gamma", "triplet_margin", "sub_centers"):
        del record["settings"][name]
    (tmp_path / "old" / "arcface.json").write_text(json.dumps(record))
    assert load_loss(tmp_path / "old").name == "arcface"


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_out_of_fold_training_works_with_every_recipe(recipe, tmp_path):
    x, y = toy_data(n_classes=8, per_class=4)
    settings = recipe_settings(recipe, epochs=1, batch_size=8, lr=3e-3, head_lr=3e-2,
                               device="cpu", amp=False, xbm=16 if recipe == "contrastive-xbm"
                               else 0)
    report = train_folds(SavableTinyEncoder, x, y, settings, tmp_path, n_folds=2)
    vectors = np.load(tmp_path / "oof" / "vectors.npy")
    assert vectors.shape == (len(y), 8) and np.isfinite(vectors).all()
    assert report["folds"] == 2
    assert json.loads((tmp_path / "final" / "arcface.json").read_text())["settings"]["loss"] == \
        settings.loss


def test_fold_training_embeds_the_class_centres_once_for_every_model(tmp_path, monkeypatch):
    """The untrained encoder is the same for every fold and the all-rows model, so the centres'
    embedding pass runs once; each model's centres come out as if it had run its own."""
    import embedders.arcface.folds as folds
    import embedders.arcface.train as train

    x, y = toy_data(n_classes=8, per_class=4)
    settings = fast("arcface", epochs=1, batch_size=8, init_centres=True)
    passes, given = [], []
    embed, fit = train.embed_items, train.train_encoder
    monkeypatch.setattr(folds, "embed_items", lambda *a, **k: passes.append(
        k.get("description")) or embed(*a, **k))
    monkeypatch.setattr(folds, "train_encoder", lambda *a, **k: given.append(
        (a[1], a[5])) or fit(*a, **k))
    train_folds(SavableTinyEncoder, x, y, settings, tmp_path, n_folds=2)
    assert passes.count("class centres") == 1 and len(given) == 3
    for items, pretrained in given:
        torch.manual_seed(settings.seed)  # as every model starts, random weights included
        np.testing.assert_allclose(pretrained, embed(SavableTinyEncoder(), items), atol=1e-6)
    with pytest.raises(ValueError, match="3 pretrained embeddings for"):
        fit(SavableTinyEncoder(), x, y, settings, pretrained=given[0][1][:3])


def test_text_batches_by_length_give_each_title_its_own_embedding():
    from embedders.arcface import TextEncoder, embed_items

    titles = ["kopi", "kaos polos cotton combed 30s lengan pendek pria wanita unisex murah",
              "tas", "sepatu sneakers", "masker", "minyak goreng 2 liter pouch isi ulang"]
    encoder = TextEncoder(max_seq_length=32, freeze_layers=4)
    alone = np.concatenate([embed_items(encoder, [t]) for t in titles])
    for items in (titles, encoder.precompute_frozen(titles)):
        np.testing.assert_allclose(embed_items(encoder, items, batch_size=2), alone, atol=2e-3)
