"""The networks ArcFace trains, one per modality, behind one interface: ``forward(inputs)`` gives
(N, d) embeddings, ``prepare(items)`` turns raw items (titles, image files) into ``inputs`` on
the encoder's device, ``save(folder)`` writes weights (safetensors) that the matching embedder
loads, and ``embedder_config(folder)`` names that embedder's parameters."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn


class FrozenStates:
    """Output of a text encoder's frozen lower layers for a list of titles: hidden states
    (N, L, d) stored as float16 and the attention mask (N, L). Indexable like the titles."""

    def __init__(self, hidden: torch.Tensor, mask: torch.Tensor):
        self.hidden, self.mask = hidden, mask

    def __len__(self) -> int:
        return len(self.mask)

    def __getitem__(self, rows) -> "FrozenStates":
        rows = torch.as_tensor(rows) if not isinstance(rows, slice) else rows
        return FrozenStates(self.hidden[rows], self.mask[rows])


class TextEncoder(nn.Module):
    """A sentence-transformers model with its token embeddings and ``freeze_layers`` lowest
    transformer layers frozen. Frozen layers never change, so ``precompute_frozen`` runs them
    once per title and training continues from their cached output: each step then costs only
    the upper layers' forward and backward (about a third of the model with 4 of 6 frozen),
    which is what makes CPU fine-tuning fit in minutes. (The frozen layers run in eval mode, so
    their dropout is off; the trained layers keep theirs.)"""

    modality = "text"

    def __init__(self, model_path: str | None = None, max_seq_length: int = 32,
                 freeze_layers: int = 0):
        super().__init__()
        from ..text import load_sentence_model

        self.model = load_sentence_model(model_path, max_seq_length, device="cpu")
        transformer = self.model[0].auto_model
        layers = transformer.encoder.layer
        if not 0 <= freeze_layers <= len(layers):
            raise ValueError(f"freeze_layers must be in [0, {len(layers)}]")
        frozen = [transformer.embeddings, *layers[:freeze_layers]]
        for module in frozen:
            module.requires_grad_(False)
        self.max_seq_length, self.freeze_layers = max_seq_length, freeze_layers
        self.embedding_dim = self.model[1].get_embedding_dimension() \
            if hasattr(self.model[1], "get_embedding_dimension") \
            else self.model[1].get_sentence_embedding_dimension()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def precompute_frozen(self, items, batch_size: int = 256):
        """Titles → :class:`FrozenStates` after the frozen layers (titles unchanged if none).
        Batches hold titles of like token length, shortest first: a batch runs at its longest
        title's width, and most titles are far shorter than the longest (Shopee: median 18
        tokens of 32), so this skips most of the padding."""
        if self.freeze_layers == 0 or isinstance(items, FrozenStates):
            return items
        from common.console import track

        was_training = self.training
        self.eval()
        tokens = self._tokenise(items)
        order = np.argsort(tokens["attention_mask"].sum(dim=1).cpu().numpy(), kind="stable")
        hidden = torch.zeros((len(items), self.max_seq_length, self.embedding_dim),
                             dtype=torch.float16)
        mask = torch.zeros((len(items), self.max_seq_length), dtype=torch.bool)
        types = tokens.get("token_type_ids")
        starts = range(0, len(items), batch_size)
        for start in track(starts, "frozen layers", len(starts)):
            rows = torch.from_numpy(order[start:start + batch_size]).to(tokens["input_ids"].device)
            batch_mask = tokens["attention_mask"][rows]
            width = max(int(batch_mask.sum(dim=1).max()), 1)
            out = self.model[0].auto_model(
                input_ids=tokens["input_ids"][rows, :width],
                attention_mask=batch_mask[:, :width],
                token_type_ids=None if types is None else types[rows, :width],
                output_hidden_states=True)
            rows = rows.cpu()
            hidden[rows, :width] = out.hidden_states[self.freeze_layers].to(torch.float16).cpu()
            mask[rows, :width] = batch_mask[:, :width].bool().cpu()
        self.train(was_training)
        return FrozenStates(hidden, mask)

    @staticmethod
    def batch_order(items) -> np.ndarray:
        """Titles (or their frozen states) shortest first: a batch runs at its longest title's
        width, so batching titles of like length skips most of the padding."""
        lengths = items.mask.sum(dim=1).numpy() if isinstance(items, FrozenStates) \
            else np.fromiter(map(len, items), np.int64, len(items))
        return np.argsort(lengths, kind="stable")

    def _tokenise(self, items) -> dict:
        tokenise = getattr(self.model, "preprocess", None) or self.model.tokenize
        features = tokenise(list(items))
        return {k: v.to(self.device) if isinstance(v, torch.Tensor) else v
                for k, v in features.items()}

    def prepare(self, items):
        if isinstance(items, FrozenStates):
            width = max(int(items.mask.sum(dim=1).max()), 1)  # trim the batch's padding
            return FrozenStates(items.hidden[:, :width].float().to(self.device),
                                items.mask[:, :width].to(self.device))
        return self._tokenise(items)

    def forward(self, inputs) -> torch.Tensor:
        if not isinstance(inputs, FrozenStates):
            return self.model(inputs)["sentence_embedding"]
        from transformers.masking_utils import create_bidirectional_mask

        transformer = self.model[0].auto_model
        hidden = inputs.hidden
        attention = create_bidirectional_mask(config=transformer.config, inputs_embeds=hidden,
                                              attention_mask=inputs.mask.long())
        for layer in transformer.encoder.layer[self.freeze_layers:]:
            hidden = layer(hidden, attention_mask=attention)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        # The model's own head: mean pooling over real tokens, then L2 normalisation.
        weights = inputs.mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=1)

    def save(self, folder: Path) -> None:
        self.model.save(str(folder), safe_serialization=True)

    def embedder_config(self, folder: Path) -> dict:
        return {"name": "minilm", "config": {"model_path": str(folder),
                                             "max_seq_length": self.max_seq_length}}


class ImageEncoder(nn.Module):
    """A timm backbone plus average or GeM pooling; training adds a random horizontal flip."""

    modality = "image"

    def __init__(self, backbone: str = "tf_efficientnet_lite0", checkpoint: str | None = None,
                 pooling: str = "gem", gem_p: float = 3.0, image_size: int | None = None,
                 images_dir: str | None = None):
        super().__init__()
        from ..image import ImagePreprocessor, create_backbone

        self.backbone_name, self.pooling, self.gem_p = backbone, pooling, gem_p
        self.backbone = create_backbone(backbone, checkpoint)
        self.preprocess = ImagePreprocessor.for_backbone(self.backbone, image_size)
        self.images_dir = Path(images_dir) if images_dir else None
        self.embedding_dim = self.backbone.num_features

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    def prepare(self, items) -> torch.Tensor:
        """``items``: file names under ``images_dir``, or preprocessed (N, 3, S, S) arrays."""
        if isinstance(items, np.ndarray):
            batch = items
        else:
            from ..image import read_images

            batch, missing = read_images(list(items), self.images_dir, self.preprocess)
            if missing.any():
                raise ValueError(f"{int(missing.sum())} training images are unreadable")
        tensor = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
        if self.training:
            flip = torch.rand(len(tensor), device=tensor.device) < 0.5
            tensor = torch.where(flip[:, None, None, None], tensor.flip(-1), tensor)
        return tensor

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        from ..image import pool_features

        return pool_features(self.backbone.forward_features(inputs), self.pooling, self.gem_p)

    def precompute_frozen(self, items):
        return items

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.backbone.state_dict().items()}
        save_file(state, str(folder / "backbone.safetensors"),
                  metadata={"backbone": self.backbone_name})

    def embedder_config(self, folder: Path) -> dict:
        return {"name": "image", "config": {"backbone": self.backbone_name,
                                            "checkpoint": str(folder), "pooling": self.pooling,
                                            "gem_p": self.gem_p,
                                            "image_size": self.preprocess.size}}
