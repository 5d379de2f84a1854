"""The embedder training loop, the same for every loss, both modalities, CPU and CUDA.

The objective is one of ``losses.LOSSES`` (ArcFace by default), the batches come from one of
``samplers.SAMPLERS``, the optimiser is AdamW or Ranger (encoder and loss at their own learning
rates), with a linear warm-up then cosine decay and optional SAM; margin losses can ramp their
margin up and weigh examples by a focal term. On CUDA, mixed precision: float16 autocast with a
GradScaler, or bfloat16 without one; on a CPU the same autocast path runs in bfloat16 when asked
(``auto``: where the CPU has bfloat16 instructions, AVX512-BF16 or AMX), else in float32. The
losses themselves run in float32. A class loss's centres can start at the mean pretrained
embedding of each class, which lets a short run (a few epochs, ~3 postings per class on Shopee)
learn the margin instead of spending itself on placing random centres.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from .encoders import FrozenStates
from .losses import CLASS_LOSSES, LOSSES, MINERS, PAIR_LOSSES, MetricLoss, create_loss
from .ranger import Ranger
from .sam import SAM
from .samplers import SAMPLERS, batch_order
from .schedule import warmup_cosine

AMP_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}
OPTIMIZERS = {"adamw": torch.optim.AdamW, "ranger": Ranger}


@dataclass
class TrainingSettings:
    """Training settings as plain data (saved beside every checkpoint). ``recipes.RECIPES``
    names the combinations the Shopee write-ups used."""

    epochs: float = 2.0
    batch_size: int = 64
    lr: float = 1e-4
    head_lr: float = 3e-3
    weight_decay: float = 1e-2
    warmup_fraction: float = 0.1
    scale: float = 30.0
    margin: float = 0.5
    easy_margin: bool = False
    sam: bool = False
    sam_rho: float = 0.05
    init_centres: bool = True
    device: str = "auto"
    amp: bool = True
    amp_dtype: str = "float16"  # auto: float16 on CUDA, bfloat16 on a CPU that has it natively
    seed: int = 0
    loss: str = "arcface"
    miner: str = "none"
    xbm: int = 0
    xbm_start: float = 0.0  # share of training before the memory is filled and used
    optimizer: str = "adamw"
    sampler: str = "auto"
    m_per_class: int = 2
    margin_warmup: float = 0.0
    focal_gamma: float = 0.0
    triplet_margin: float = 0.1
    sub_centers: int = 3

    def validate(self) -> "TrainingSettings":
        if self.epochs <= 0 or self.batch_size < 2:
            raise ValueError("epochs must be positive and batch_size at least 2")
        if self.amp_dtype != "auto" and self.amp_dtype not in AMP_DTYPES:
            raise ValueError(f"amp_dtype must be auto or one of {sorted(AMP_DTYPES)}")
        for name, value, allowed in (("loss", self.loss, LOSSES), ("miner", self.miner, MINERS),
                                     ("optimizer", self.optimizer, tuple(OPTIMIZERS)),
                                     ("sampler", self.sampler, ("auto",) + SAMPLERS)):
            if value not in allowed:
                raise ValueError(f"unknown {name} {value!r}; one of {', '.join(allowed)}")
        if self.loss in CLASS_LOSSES and (self.miner != "none" or self.xbm):
            raise ValueError(f"{self.loss} learns class centres: miners and a cross-batch "
                             "memory are for the pair losses "
                             f"({', '.join(PAIR_LOSSES)})")
        if self.loss in PAIR_LOSSES:
            if self.margin_warmup or self.focal_gamma:
                raise ValueError("margin warm-up and the focal term apply to the margin losses "
                                 f"({', '.join(CLASS_LOSSES)})")
            if self.batch_sampler == "random":
                raise ValueError(f"{self.loss} compares the postings of a batch, so its batches "
                                 "must hold positives: use --sampler m-per-class")
        if self.xbm and self.xbm < self.batch_size:
            raise ValueError("the cross-batch memory must hold at least one batch")
        if not 0 <= self.xbm_start < 1:
            raise ValueError("xbm_start is a fraction of training in [0, 1)")
        if self.xbm_start and not self.xbm:
            raise ValueError("xbm_start delays the cross-batch memory: give its size (xbm)")
        if self.batch_sampler == "m-per-class" and (
                self.m_per_class < 2 or self.batch_size % self.m_per_class):
            raise ValueError("m-per-class sampling needs m >= 2 dividing batch_size")
        if not 0 <= self.margin_warmup <= 1 or self.focal_gamma < 0:
            raise ValueError("margin_warmup is a fraction of training in [0, 1] and "
                             "focal_gamma is non-negative")
        return self

    @property
    def batch_sampler(self) -> str:
        """``auto``: m-per-class for a pair loss (it needs positives), random otherwise."""
        if self.sampler != "auto":
            return self.sampler
        return "m-per-class" if self.loss in PAIR_LOSSES else "random"


@dataclass
class TrainResult:
    loss: MetricLoss
    losses: list[float]
    seconds: float
    samples: int
    device: str
    amp: str | None
    n_classes: int = 0
    history: dict = field(default_factory=dict)

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds else 0.0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def cpu_has_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX); elsewhere bfloat16
    autocast is emulated and slower than float32."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def autocast_dtype(settings: TrainingSettings, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for full precision. CPUs autocast only to bfloat16, and
    ``auto`` only where the CPU has it natively (on the 2-core AMD EPYC of the README, MiniLM
    trains 1.6 times as fast at batch 128 with the same held-out F1)."""
    if not settings.amp:
        return None
    if device.type == "cpu":
        wanted = settings.amp_dtype == "bfloat16" or (
            settings.amp_dtype == "auto" and cpu_has_bfloat16())
        return torch.bfloat16 if wanted else None
    if settings.sam:  # SAM's two gradients cannot share one GradScaler step; bfloat16 needs none
        return torch.bfloat16
    return AMP_DTYPES["float16" if settings.amp_dtype == "auto" else settings.amp_dtype]


@torch.no_grad()
def embed_items(encoder, items: Sequence, batch_size: int = 128, description: str = "embed"
                ) -> np.ndarray:
    """L2-normalised float32 embeddings of ``items`` in eval mode, in order (batched in the
    encoder's ``batch_order`` where it has one: text by length)."""
    from common.console import track

    encoder.eval()
    order = encoder.batch_order(items) if hasattr(encoder, "batch_order") else None
    chunks = []
    starts = range(0, len(items), batch_size)
    for start in track(starts, description, len(starts)):
        stop = start + batch_size
        rows = slice(start, stop) if order is None else order[start:stop]
        out = encoder(encoder.prepare(take_rows(items, rows)))
        chunks.append(F.normalize(out.float(), dim=1).cpu().numpy())
    if not chunks:
        return np.zeros((0, encoder.embedding_dim), np.float32)
    embeddings = np.concatenate(chunks)
    if order is not None:
        embeddings[order] = embeddings.copy()
    return embeddings


def class_centres(embeddings: np.ndarray, labels: np.ndarray, n_classes: int) -> torch.Tensor:
    sums = np.zeros((n_classes, embeddings.shape[1]), np.float64)
    np.add.at(sums, labels, embeddings)
    return F.normalize(torch.from_numpy(sums.astype(np.float32)), dim=1)


def train_encoder(encoder, items: Sequence, labels: np.ndarray, settings: TrainingSettings,
                  max_steps: int | None = None, pretrained: np.ndarray | None = None
                  ) -> TrainResult:
    """Train ``encoder`` in place with the objective ``settings`` name over ``labels`` (codes
    0..C-1).

    ``items`` are what ``encoder.prepare`` takes (titles, image names, or an array of
    preprocessed images). ``pretrained``: the items' embeddings by the untrained encoder, where
    the caller has them, for the class centres (else one embedding pass here makes them).
    Returns the trained loss (a class loss's centres) and the per-step losses.
    """
    from common.console import track

    settings.validate()
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    labels = np.asarray(labels, dtype=np.int64)
    n_classes = int(labels.max()) + 1
    device = resolve_device(settings.device)
    encoder.to(device)
    items = encoder.precompute_frozen(items)
    loss_fn = create_loss(settings, encoder.embedding_dim, n_classes)
    if settings.init_centres and loss_fn.is_classifier:
        if pretrained is None:
            pretrained = embed_items(encoder, items, description="class centres")
        elif len(pretrained) != len(items):
            raise ValueError(f"{len(pretrained)} pretrained embeddings for {len(items)} items")
        loss_fn.init_centres(class_centres(pretrained, labels, n_classes))
    loss_fn.to(device)
    dtype = autocast_dtype(settings, device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16
                                  and not settings.sam)
    groups = [{"params": [p for p in encoder.parameters() if p.requires_grad], "lr": settings.lr}]
    if any(p.requires_grad for p in loss_fn.parameters()):
        groups.append({"params": list(loss_fn.parameters()), "lr": settings.head_lr,
                       "weight_decay": 0.0})
    base = OPTIMIZERS[settings.optimizer]
    if settings.sam:
        optimizer = SAM(groups, base, rho=settings.sam_rho, weight_decay=settings.weight_decay)
    else:
        optimizer = base(groups, weight_decay=settings.weight_decay)
    steps_per_epoch = max(len(items) // settings.batch_size, 1)
    total = int(round(settings.epochs * steps_per_epoch))
    if max_steps is not None:
        total = min(total, max_steps)
    schedule = warmup_cosine(optimizer, total, int(settings.warmup_fraction * total))
    order = batch_order(labels, settings.batch_sampler, settings.batch_size, total, rng,
                        settings.m_per_class)
    ramp = max(int(settings.margin_warmup * total), 1)
    memory_from = int(settings.xbm_start * total)

    def loss_of(rows: np.ndarray) -> torch.Tensor:
        batch = encoder.prepare(take_rows(items, rows))
        target = torch.from_numpy(labels[rows]).to(device)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            embeddings = encoder(batch)
        return loss_fn(embeddings, target)

    encoder.train()
    loss_fn.train()
    losses = []
    start = time.perf_counter()
    for step in track(range(total), f"{settings.loss} {getattr(encoder, 'modality', '')}", total):
        rows = order[step * settings.batch_size:(step + 1) * settings.batch_size]
        if settings.margin_warmup:
            loss_fn.set_margin(settings.margin * min(1.0, (step + 1) / ramp))
        loss_fn.memory_on = step >= memory_from
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of(rows)
        if settings.sam:
            loss.backward()

            def closure():
                again = loss_of(rows)
                again.backward()
                return again

            optimizer.step(closure)
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        schedule.step()
        losses.append(float(loss.detach()))
    seconds = time.perf_counter() - start
    encoder.eval()
    loss_fn.eval()
    return TrainResult(loss_fn, losses, seconds, total * settings.batch_size, device.type,
                       str(dtype).removeprefix("torch.") if dtype else None, n_classes)


def take_rows(items: Sequence, rows: np.ndarray | slice):
    """``items[rows]`` for arrays and cached frozen states, a list for titles or file names."""
    if isinstance(items, (np.ndarray, FrozenStates)) or isinstance(rows, slice):
        return items[rows]
    return [items[r] for r in rows]


def save_checkpoint(folder: Path, encoder, result: TrainResult, settings: TrainingSettings,
                    extra: dict | None = None, arrays: dict[str, np.ndarray] | None = None
                    ) -> dict:
    """Encoder weights and the loss's learned state (class centres; empty for a pair loss) as
    safetensors, plus ``arcface.json`` (settings, the embedder config that loads the encoder,
    loss history) and ``arrays`` (file name → array, saved as .npy). Written to a temporary
    folder, then renamed."""
    import shutil
    import tempfile

    from safetensors.torch import save_file

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        encoder.save(tmp / "encoder")
        save_file(result.loss.state_to_save(), str(tmp / "head.safetensors"))
        record = {"modality": encoder.modality, "settings": asdict(settings),
                  "embedder": encoder.embedder_config(folder / "encoder"),
                  "head": {"embedding_dim": encoder.embedding_dim,
                           "n_classes": result.n_classes},
                  "losses": [round(v, 5) for v in result.losses],
                  "seconds": round(result.seconds, 3), "device": result.device,
                  "amp": result.amp, "samples_per_second": round(result.samples_per_second, 2),
                  **(extra or {})}
        (tmp / "arcface.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        for name, array in (arrays or {}).items():
            np.save(tmp / name, array, allow_pickle=False)
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return record


def load_loss(folder: Path) -> MetricLoss:
    """The saved loss (a class loss's centres), rebuilt from ``arcface.json``; a shape mismatch
    is a clear error, a damaged file an InputError naming it. Checkpoints written before the
    other losses existed load as ArcFace, which they are."""
    from safetensors.torch import load_file

    from common.atomic import check_safetensors, read_json

    record = read_json(Path(folder) / "arcface.json", "train-embedder")
    known = TrainingSettings.__dataclass_fields__
    settings = TrainingSettings(**{k: v for k, v in record["settings"].items() if k in known})
    loss = create_loss(settings, record["head"]["embedding_dim"], record["head"]["n_classes"])
    weights = check_safetensors(Path(folder) / "head.safetensors", "train-embedder")
    loss.module.load_state_dict(load_file(str(weights)), strict=True)
    return loss
