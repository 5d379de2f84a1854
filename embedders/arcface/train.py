"""The ArcFace training loop, the same for both modalities and for CPU and CUDA.

AdamW (encoder and head at their own learning rates), linear warm-up then cosine decay, optional
SAM. On CUDA, mixed precision: float16 autocast with a GradScaler, or bfloat16 without one; the
same autocast path runs on a CPU with bfloat16. The head's class centres can start at the mean
pretrained embedding of each class, which lets a short run (a few epochs, ~3 postings per class
on Shopee) learn the margin instead of spending itself on placing random centres.
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

from .head import ArcMarginHead
from .sam import SAM
from .schedule import warmup_cosine

AMP_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class ArcFaceSettings:
    """Training settings as plain data (saved beside every checkpoint)."""

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
    amp_dtype: str = "float16"
    seed: int = 0

    def validate(self) -> "ArcFaceSettings":
        if self.epochs <= 0 or self.batch_size < 2:
            raise ValueError("epochs must be positive and batch_size at least 2")
        if self.amp_dtype not in AMP_DTYPES:
            raise ValueError(f"amp_dtype must be one of {sorted(AMP_DTYPES)}")
        return self


@dataclass
class TrainResult:
    head: ArcMarginHead
    losses: list[float]
    seconds: float
    samples: int
    device: str
    amp: str | None
    history: dict = field(default_factory=dict)

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds else 0.0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast_dtype(settings: ArcFaceSettings, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for full precision. CPUs autocast only to bfloat16."""
    if not settings.amp:
        return None
    if device.type == "cpu":
        return torch.bfloat16 if settings.amp_dtype == "bfloat16" else None
    if settings.sam:  # SAM's two gradients cannot share one GradScaler step; bfloat16 needs none
        return torch.bfloat16
    return AMP_DTYPES[settings.amp_dtype]


@torch.no_grad()
def embed_items(encoder, items: Sequence, batch_size: int = 128, description: str = "embed"
                ) -> np.ndarray:
    """L2-normalised float32 embeddings of ``items`` in eval mode, in order."""
    from common.console import track

    encoder.eval()
    chunks = []
    starts = range(0, len(items), batch_size)
    for start in track(starts, description, len(starts)):
        out = encoder(encoder.prepare(items[start:start + batch_size]))
        chunks.append(F.normalize(out.float(), dim=1).cpu().numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, encoder.embedding_dim), np.float32)


def class_centres(embeddings: np.ndarray, labels: np.ndarray, n_classes: int) -> torch.Tensor:
    sums = np.zeros((n_classes, embeddings.shape[1]), np.float64)
    np.add.at(sums, labels, embeddings)
    return F.normalize(torch.from_numpy(sums.astype(np.float32)), dim=1)


def train_arcface(encoder, items: Sequence, labels: np.ndarray, settings: ArcFaceSettings,
                  max_steps: int | None = None) -> TrainResult:
    """Train ``encoder`` in place with an ArcFace head over ``labels`` (codes 0..C-1).

    ``items`` are what ``encoder.prepare`` takes (titles, image names, or an array of
    preprocessed images). Returns the head and the per-step losses.
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
    head = ArcMarginHead(encoder.embedding_dim, n_classes, settings.scale, settings.margin,
                         settings.easy_margin)
    if settings.init_centres:
        head.weight.data.copy_(class_centres(
            embed_items(encoder, items, description="class centres"), labels, n_classes))
    head.to(device)
    dtype = autocast_dtype(settings, device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16
                                  and not settings.sam)
    groups = [{"params": [p for p in encoder.parameters() if p.requires_grad], "lr": settings.lr},
              {"params": head.parameters(), "lr": settings.head_lr, "weight_decay": 0.0}]
    if settings.sam:
        optimizer = SAM(groups, torch.optim.AdamW, rho=settings.sam_rho,
                        weight_decay=settings.weight_decay)
    else:
        optimizer = torch.optim.AdamW(groups, weight_decay=settings.weight_decay)
    steps_per_epoch = max(len(items) // settings.batch_size, 1)
    total = int(round(settings.epochs * steps_per_epoch))
    if max_steps is not None:
        total = min(total, max_steps)
    schedule = warmup_cosine(optimizer, total, int(settings.warmup_fraction * total))
    order = np.concatenate([rng.permutation(len(items))
                            for _ in range(int(np.ceil(total / steps_per_epoch)))])

    def loss_of(rows: np.ndarray) -> torch.Tensor:
        batch = encoder.prepare(_take(items, rows))
        target = torch.from_numpy(labels[rows]).to(device)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = head(encoder(batch), target)
        return F.cross_entropy(logits, target)

    encoder.train()
    head.train()
    losses = []
    start = time.perf_counter()
    for step in track(range(total), f"arcface {getattr(encoder, 'modality', '')}", total):
        rows = order[step * settings.batch_size:(step + 1) * settings.batch_size]
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
    return TrainResult(head, losses, seconds, total * settings.batch_size, device.type,
                       str(dtype).removeprefix("torch.") if dtype else None)


def _take(items: Sequence, rows: np.ndarray):
    if isinstance(items, np.ndarray) or hasattr(items, "hidden"):
        return items[rows]
    return [items[r] for r in rows]


def save_checkpoint(folder: Path, encoder, result: TrainResult, settings: ArcFaceSettings,
                    extra: dict | None = None) -> dict:
    """Encoder weights and head as safetensors, plus ``arcface.json`` (settings, the embedder
    config that loads the encoder, loss history). Written to a temporary folder, then renamed."""
    import shutil
    import tempfile

    from safetensors.torch import save_file

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        encoder.save(tmp / "encoder")
        save_file({"weight": result.head.weight.detach().cpu().contiguous()},
                  str(tmp / "head.safetensors"))
        record = {"modality": encoder.modality, "settings": asdict(settings),
                  "embedder": encoder.embedder_config(folder / "encoder"),
                  "head": {"embedding_dim": result.head.embedding_dim,
                           "n_classes": result.head.n_classes},
                  "losses": [round(v, 5) for v in result.losses],
                  "seconds": round(result.seconds, 3), "device": result.device,
                  "amp": result.amp, "samples_per_second": round(result.samples_per_second, 2),
                  **(extra or {})}
        (tmp / "arcface.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return record


def load_head(folder: Path) -> ArcMarginHead:
    """The saved head, rebuilt from ``arcface.json``; a shape mismatch is a clear error, a
    damaged file an InputError naming it."""
    from safetensors.torch import load_file

    from common.atomic import check_safetensors, read_json

    record = read_json(Path(folder) / "arcface.json", "train-embedder")
    s = record["settings"]
    head = ArcMarginHead(record["head"]["embedding_dim"], record["head"]["n_classes"],
                         s["scale"], s["margin"], s["easy_margin"])
    weights = check_safetensors(Path(folder) / "head.safetensors", "train-embedder")
    head.load_state_dict(load_file(str(weights)), strict=True)
    return head
