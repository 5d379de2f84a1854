"""ArcFace head, schedule, SAM and the device-agnostic training loop (CPU, autocast path)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from embedders.arcface import TrainingSettings, ArcMarginHead, SAM, train_encoder, warmup_cosine
from embedders.arcface.train import autocast_dtype


def test_head_adds_the_margin_to_the_true_class_angle_only():
    torch.manual_seed(0)
    head = ArcMarginHead(8, 5, scale=10.0, margin=0.3)
    x = torch.randn(6, 8)
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    logits = head(x, y)
    cos = head.cosine(x)
    theta = torch.acos(cos.clamp(-1, 1))
    target = torch.zeros_like(cos, dtype=torch.bool)
    target[torch.arange(6), y] = True
    expected_true = torch.where(cos > math.cos(math.pi - 0.3), torch.cos(theta + 0.3),
                                cos - math.sin(math.pi - 0.3) * 0.3)
    torch.testing.assert_close(logits[target], 10 * expected_true[target], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(logits[~target], 10 * cos[~target], atol=1e-5, rtol=1e-5)


def test_easy_margin_leaves_obtuse_angles_alone():
    head = ArcMarginHead(2, 2, scale=1.0, margin=0.5, easy_margin=True)
    head.weight.data = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    x = torch.tensor([[-1.0, 0.2], [1.0, 0.3]])  # row 0: obtuse to class 0; row 1: acute
    with torch.no_grad():
        logits = head(x, torch.tensor([0, 0]))
        cos = head.cosine(x)
    assert logits[0, 0] == pytest.approx(float(cos[0, 0]), abs=1e-6)
    assert logits[1, 0] == pytest.approx(math.cos(math.acos(float(cos[1, 0])) + 0.5), abs=1e-5)


def test_head_rejects_bad_settings():
    with pytest.raises(ValueError):
        ArcMarginHead(4, 1)
    with pytest.raises(ValueError):
        ArcMarginHead(4, 3, margin=2.0)


def test_warmup_then_cosine_schedule():
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = warmup_cosine(optimizer, total_steps=20, warmup_steps=4)
    lrs = []
    for _ in range(20):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert all(a >= b for a, b in zip(lrs[3:], lrs[4:]))  # non-increasing after warm-up
    assert lrs[-1] < 0.05


def test_sam_lowers_a_quadratic_and_restores_weights_between_gradients():
    torch.manual_seed(0)
    w = nn.Parameter(torch.tensor([3.0, -2.0]))
    optimizer = SAM([w], torch.optim.SGD, rho=0.1, lr=0.1)
    start = float((w.detach() ** 2).sum())
    for _ in range(20):
        optimizer.zero_grad()
        (w ** 2).sum().backward()

        def closure():
            loss = (w ** 2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
    assert float((w.detach() ** 2).sum()) < 0.1 * start
    assert all("sam_offset" not in optimizer.state[p] for p in [w])


class TinyEncoder(nn.Module):
    """A stand-in encoder with the training loop's interface, for fast loop tests."""

    modality = "toy"

    def __init__(self, dims_in: int = 16, dims_out: int = 8):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dims_in, 32), nn.ReLU(), nn.Linear(32, dims_out))
        self.embedding_dim = dims_out

    def prepare(self, items):
        return torch.from_numpy(np.asarray(items, np.float32))

    def precompute_frozen(self, items):
        return items

    def forward(self, x):
        return self.net(x)


def toy_data(n_classes=6, per_class=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, 16)) * 0.3
    x = np.repeat(centres, per_class, axis=0) + rng.normal(size=(n_classes * per_class, 16))
    return x.astype(np.float32), np.repeat(np.arange(n_classes), per_class)


@pytest.mark.parametrize("amp,sam", [(False, False), (True, False), (True, True)])
def test_training_loop_loss_falls_on_cpu_with_and_without_autocast_and_sam(amp, sam):
    x, y = toy_data()
    settings = TrainingSettings(epochs=20, batch_size=16, lr=3e-3, head_lr=3e-2, scale=10,
                               margin=0.2, device="cpu", amp=amp, amp_dtype="bfloat16", sam=sam,
                               init_centres=False)
    result = train_encoder(TinyEncoder(), x, y, settings)
    assert result.device == "cpu"
    assert result.amp == ("bfloat16" if amp else None)
    assert np.isfinite(result.losses).all()
    assert np.mean(result.losses[-5:]) < 0.6 * np.mean(result.losses[:5])


def test_float16_autocast_is_cuda_only_and_settings_are_validated():
    cpu = torch.device("cpu")
    assert autocast_dtype(TrainingSettings(amp=True, amp_dtype="float16"), cpu) is None
    assert autocast_dtype(TrainingSettings(amp=True, amp_dtype="bfloat16"), cpu) == torch.bfloat16
    assert autocast_dtype(TrainingSettings(amp=True), torch.device("cuda")) == torch.float16
    assert autocast_dtype(TrainingSettings(amp=True, sam=True), torch.device("cuda")) == \
        torch.bfloat16
    assert autocast_dtype(TrainingSettings(amp=False), torch.device("cuda")) is None
    with pytest.raises(ValueError):
        TrainingSettings(amp_dtype="int8").validate()


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_float16_on_cuda_and_bfloat16_only_on_a_cpu_that_has_it(
        native, monkeypatch):
    from embedders.arcface import train

    monkeypatch.setattr(train, "cpu_has_bfloat16", lambda: native)
    auto = TrainingSettings(amp_dtype="auto")
    assert autocast_dtype(auto, torch.device("cpu")) == (torch.bfloat16 if native else None)
    assert autocast_dtype(auto, torch.device("cuda")) == torch.float16
    # asked for by name, bfloat16 is used whatever the CPU
    assert autocast_dtype(TrainingSettings(amp_dtype="bfloat16"), torch.device("cpu")) == \
        torch.bfloat16
