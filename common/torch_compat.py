"""Make ``import torchvision`` work on CPU-only torch where torchvision's C++ library cannot load.

PyPI's torchvision 0.28 wheel is a CUDA build; with the CPU build of torch 2.13 its ``_C``
extension fails to load, and torchvision's import then fails on
``register_fake("torchvision::nms")`` with "operator torchvision::nms does not exist". That breaks
``import timm`` and ``import sentence_transformers``, which import torchvision. Defining the
schemas of the operators that torchvision registers fake kernels for at import time lets the
import succeed; the operators themselves (detection ops the toolkit never calls) stay without a
kernel and raise if called. Where torchvision's own library loads, this does nothing.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path

# Operators that torchvision/_meta_registrations.py decorates with torch.library.register_fake
# unconditionally (the others are guarded by torchvision.extension._has_ops()).
_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_library = None  # keeps the torch.library.Library alive: dropping it would unregister the schemas


def ensure_torchvision_importable() -> bool:
    """Register the missing schemas if needed. Returns True when the shim was applied."""
    global _library
    if "torchvision" in sys.modules or _library is not None:
        return False
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    import torch

    if _native_library_loads(Path(next(iter(spec.submodule_search_locations)))):
        return False
    missing = [name for name in _SCHEMAS if not _has_op(torch, name)]
    if not missing:
        return False
    _library = torch.library.Library("torchvision", "DEF")
    for name in missing:
        _library.define(_SCHEMAS[name])
    return True


def _native_library_loads(package_dir: Path) -> bool:
    import torch

    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = package_dir / f"_C{suffix}"
        if candidate.exists():
            try:
                torch.ops.load_library(str(candidate))
                return True
            except (OSError, ImportError, RuntimeError):
                return False
    return False


def _has_op(torch, name: str) -> bool:
    try:
        getattr(torch.ops.torchvision, name)
        return True
    except (AttributeError, RuntimeError):
        return False
